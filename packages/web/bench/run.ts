/**
 * `node --import tsx packages/web/bench/run.ts [--json] [--rounds N]`: the Chromium row of the
 * benchmarks (issue 19). In headless Debian Chromium (the test harness's launch), beside Node in
 * the same run:
 *
 *  - the protocol engine's one-way and ping-pong messages/s and session setup (invitation → first
 *    message read), with the runners of bench/protocol.ts bundled unchanged by esbuild: Chromium
 *    on the browser provider (the web app's) and on noble, Node on node:crypto (`npm run bench`'s
 *    figure) and on noble (same JavaScript as the browser). Rounds are interleaved, rotating who
 *    goes first, so the shared machine's drift hits all four alike; ratios are medians of the
 *    per-round ratios;
 *  - the web app's bundle, minified and gzipped (packages/web/build.ts);
 *  - page load → open conversation list for an existing identity with one chat, through a real
 *    hub, on a profile on disk: the page's boot (navigation → unlock form), unlock → list shown,
 *    and the web app's Argon2id alone (measured in the same browser) to take out of the unlock.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium as playwrightChromium, type Page } from 'playwright-core';
import { nobleProvider } from '@umbra/protocol';
import { nodeProvider } from '../../client/src/crypto/node-provider.ts';
import { median, umbraRunner } from '../../../bench/protocol.ts';
import { buildWebApp } from '../build.ts';
import { bundleForBrowser, CHROMIUM_ARGS, chromiumPath, launchChromium, PAGE_HTML, serveRoutes } from '../test/harness/chromium.ts';
import { acceptInvitation, invitationText, PASSPHRASE, send, signIn, startTestHub, waitForMessage } from '../test/harness/app.ts';
import type { BrowserBench, BrowserProviderName } from './protocol.entry.ts';

const here = dirname(fileURLToPath(import.meta.url));
const json = process.argv.includes('--json');
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const ROUNDS = arg('--rounds', 9);
const ONE_WAY_PER_RUN = 1000;
// noble's X25519 makes a ping-pong message ~10x dearer than a one-way one: fewer per run.
const PING_PONG_PER_RUN = 200;
const SETUP_ROUNDS = 15;
const PAGE_LOADS = 7;
const ARGON2ID_RUNS = 5;

const log = (s: string) => {
  if (!json) console.log(s);
};
const progress = (s: string) => process.stderr.write(`… ${s}\n`);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => `${n.toFixed(n < 10 ? 2 : 0)} ms`;
const ratio = (xs: number[]) => `${median(xs).toFixed(2)}× (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;

type Who = 'node' | 'nodeNoble' | 'chromium' | 'chromiumNoble';
const WHO: readonly Who[] = ['node', 'nodeNoble', 'chromium', 'chromiumNoble'];
const LABEL: Record<Who, string> = {
  node: 'Node, node:crypto',
  nodeNoble: 'Node, noble',
  chromium: 'Chromium, browser provider',
  chromiumNoble: 'Chromium, noble',
};
interface Runner {
  oneWay(n: number): Promise<number>;
  pingPong(n: number): Promise<number>;
  setup(): Promise<number>;
}

function inPage(page: Page, provider: BrowserProviderName): Runner {
  return {
    oneWay: (n) => page.evaluate(([p, k]) => (globalThis as unknown as { __umbraBench: BrowserBench }).__umbraBench.oneWay(p, k), [provider, n] as const),
    pingPong: (n) => page.evaluate(([p, k]) => (globalThis as unknown as { __umbraBench: BrowserBench }).__umbraBench.pingPong(p, k), [provider, n] as const),
    setup: () => page.evaluate((p) => (globalThis as unknown as { __umbraBench: BrowserBench }).__umbraBench.setup(p), provider),
  };
}

interface EngineFigures {
  oneWay: Record<Who, number[]>;
  pingPong: Record<Who, number[]>;
  setupMs: Record<Who, number[]>;
  /** Per round: Chromium's rate over Node's on the same provider code (noble/noble) and app vs npm run bench (browser/node:crypto). */
  oneWayNobleRatio: number[];
  pingPongNobleRatio: number[];
  setupNobleRatio: number[];
  argon2idMs: number[];
  chromiumVersion: string;
}

async function benchEngine(): Promise<EngineFigures> {
  const js = await bundleForBrowser(join(here, 'protocol.entry.ts'), { minify: true });
  const server = await serveRoutes({ '/': { type: 'text/html', body: PAGE_HTML }, '/bundle.js': { type: 'text/javascript', body: js } });
  const launched = await launchChromium();
  try {
    const page = await (await launched.newContext()).newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(server.url);
    const ready = await page.waitForFunction(() => (globalThis as { __umbraResults?: unknown }).__umbraResults, undefined, { timeout: 120_000, polling: 100 });
    const state = (await ready.jsonValue()) as 'ready' | { fatal: string };
    if (state !== 'ready') throw new Error(`browser bench failed to start: ${state.fatal}`);
    const runners: Record<Who, Runner> = {
      node: await umbraRunner(nodeProvider),
      nodeNoble: await umbraRunner(nobleProvider),
      chromium: inPage(page, 'browser'),
      chromiumNoble: inPage(page, 'noble'),
    };
    const empty = () => ({ node: [], nodeNoble: [], chromium: [], chromiumNoble: [] }) as Record<Who, number[]>;
    const f: EngineFigures = {
      oneWay: empty(),
      pingPong: empty(),
      setupMs: empty(),
      oneWayNobleRatio: [],
      pingPongNobleRatio: [],
      setupNobleRatio: [],
      argon2idMs: [],
      chromiumVersion: launched.browser.version(),
    };
    // Warm-up: a round's worth each, not recorded (JIT tiers in both engines).
    for (const who of WHO) {
      await runners[who].oneWay(ONE_WAY_PER_RUN);
      await runners[who].pingPong(PING_PONG_PER_RUN);
      for (let i = 0; i < 3; i++) await runners[who].setup();
    }
    progress(`engine: ${ROUNDS} interleaved rounds of ${ONE_WAY_PER_RUN} one-way + ${PING_PONG_PER_RUN} ping-pong messages, 4 runners`);
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < WHO.length; k++) {
        const who = WHO[(r + k) % WHO.length]!;
        f.oneWay[who].push(await runners[who].oneWay(ONE_WAY_PER_RUN));
        f.pingPong[who].push(await runners[who].pingPong(PING_PONG_PER_RUN));
      }
      f.oneWayNobleRatio.push(f.oneWay.chromiumNoble[r]! / f.oneWay.nodeNoble[r]!);
      f.pingPongNobleRatio.push(f.pingPong.chromiumNoble[r]! / f.pingPong.nodeNoble[r]!);
    }
    progress(`session setup: ${SETUP_ROUNDS} interleaved rounds`);
    for (let r = 0; r < SETUP_ROUNDS; r++) {
      for (let k = 0; k < WHO.length; k++) {
        const who = WHO[(r + k) % WHO.length]!;
        f.setupMs[who].push(await runners[who].setup());
      }
      f.setupNobleRatio.push(f.setupMs.chromiumNoble[r]! / f.setupMs.nodeNoble[r]!);
    }
    progress(`Argon2id of the web app's unlock, ${ARGON2ID_RUNS} runs`);
    for (let i = 0; i < ARGON2ID_RUNS; i++) f.argon2idMs.push(await page.evaluate(() => (globalThis as unknown as { __umbraBench: BrowserBench }).__umbraBench.argon2id()));
    if (pageErrors.length > 0) throw new Error(`page errors: ${pageErrors.join('; ')}`);
    return f;
  } finally {
    await launched.close();
    await server.close();
  }
}

interface PageLoadFigures {
  /** navigation start → the unlock form is on screen (HTML, bundle parse, app boot, store lookup). */
  bootMs: number[];
  /** unlock clicked → the conversation list shows the chat (Argon2id, store open, Client.open, first render). */
  unlockToListMs: number[];
  totalMs: number[];
  /** Argon2id alone with the app's parameters, in the same page right after each load. */
  argon2idMs: number[];
  /** totalMs minus that load's argon2idMs. */
  withoutArgon2idMs: number[];
}

/**
 * Alice's identity on a profile on disk, with one chat with Bob (an in-memory context), made
 * through the hub's web app; then Alice's page is loaded PAGE_LOADS times and unlocked.
 */
async function benchPageLoad(): Promise<PageLoadFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'umbra-web-bench-'));
  const hub = await startTestHub(join(dir, 'hub'));
  const executablePath = chromiumPath();
  if (executablePath === null) throw new Error('chromium is not installed (apt-get install chromium)');
  const aliceContext = await playwrightChromium.launchPersistentContext(join(dir, 'alice-profile'), { executablePath, args: CHROMIUM_ARGS, viewport: { width: 390, height: 780 } });
  const bobBrowser = await launchChromium();
  try {
    progress('page load: Alice and Bob connect through the hub');
    const alice = aliceContext.pages()[0] ?? (await aliceContext.newPage());
    const bob = await (await bobBrowser.newContext()).newPage();
    await signIn(alice, hub.webUrl, { name: 'Alice' });
    await signIn(bob, hub.webUrl, { name: 'Bob' });
    await acceptInvitation(alice, await invitationText(bob));
    await send(alice, 'hello Bob');
    await waitForMessage(alice, 'hello Bob', 'delivered', 60_000);
    await bobBrowser.close();
    const argon2idScript = (
      await build({ entryPoints: [join(here, 'argon2id.entry.ts')], bundle: true, format: 'iife', platform: 'browser', target: 'es2022', minify: true, write: false, logLevel: 'silent' })
    ).outputFiles[0]!.text;
    const f: PageLoadFigures = { bootMs: [], unlockToListMs: [], totalMs: [], argon2idMs: [], withoutArgon2idMs: [] };
    progress(`page load: ${PAGE_LOADS} loads of Alice's page, unlock, conversation list`);
    for (let i = 0; i < PAGE_LOADS; i++) {
      await alice.goto('about:blank');
      const t0 = performance.now();
      await alice.goto(hub.webUrl);
      await alice.locator('[data-test=unlock-form]').waitFor({ timeout: 60_000 });
      const t1 = performance.now();
      await alice.fill('input[name=passphrase]', PASSPHRASE);
      const t2 = performance.now();
      await alice.click('[data-test=gate-submit]');
      await alice.locator('[data-test=chat-row][data-peer="Bob"]').waitFor({ timeout: 60_000 });
      const t3 = performance.now();
      f.bootMs.push(t1 - t0);
      f.unlockToListMs.push(t3 - t2);
      f.totalMs.push(t1 - t0 + (t3 - t2));
      await alice.evaluate(argon2idScript);
      const kdf = await alice.evaluate(() => (globalThis as unknown as { __umbraArgon2idMs: () => Promise<number> }).__umbraArgon2idMs());
      f.argon2idMs.push(kdf);
      f.withoutArgon2idMs.push(f.totalMs.at(-1)! - kdf);
    }
    return f;
  } finally {
    await bobBrowser.close();
    await aliceContext.close().catch(() => undefined);
    await hub.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

progress('web app bundle');
const bundleDir = mkdtempSync(join(tmpdir(), 'umbra-web-bundle-'));
const bundle = await buildWebApp({ outDir: bundleDir });
rmSync(bundleDir, { recursive: true, force: true });
const engine = await benchEngine();
const pageLoad = await benchPageLoad();

const argon2 = median(engine.argon2idMs);
log('');
log(`Chromium ${engine.chromiumVersion} (headless, Debian) beside Node ${process.versions.node} in the same run; the engine code is bench/protocol.ts's, bundled`);
log(`with esbuild; 100 B messages, encrypt + decrypt per message; ${ROUNDS} interleaved rounds (${ONE_WAY_PER_RUN} one way, ${PING_PONG_PER_RUN} ping-pong), median msgs/s:`);
log('');
log('                              one way msgs/s   ping-pong msgs/s   session setup');
for (const who of WHO) log(`  ${LABEL[who].padEnd(28)} ${fmt(median(engine.oneWay[who])).padStart(14)}   ${fmt(median(engine.pingPong[who])).padStart(16)}   ${ms(median(engine.setupMs[who])).padStart(13)}`);
log('');
log(`  Chromium / Node on the same code (noble both), median of per-round ratios: one way ${ratio(engine.oneWayNobleRatio)}, ping-pong ${ratio(engine.pingPongNobleRatio)},`);
log(`  session setup time ${ratio(engine.setupNobleRatio)}`);
log('');
log(`web app bundle: app.js ${(bundle.scriptBytes / 1024).toFixed(1)} KiB minified; app.js + index.html + app.css ${(bundle.gzipBytes / 1024).toFixed(1)} KiB gzipped`);
log('');
log(`page load → open conversation list (existing identity with one chat, profile on disk, through the hub; median of ${PAGE_LOADS}):`);
log(`  boot (navigation → unlock form)        ${ms(median(pageLoad.bootMs))}   (${pageLoad.bootMs.map((x) => x.toFixed(0)).join(', ')})`);
log(`  unlock → conversation list             ${ms(median(pageLoad.unlockToListMs))}   (${pageLoad.unlockToListMs.map((x) => x.toFixed(0)).join(', ')})`);
log(`  total                                  ${ms(median(pageLoad.totalMs))}`);
log(`  Argon2id alone (19 MiB, t=2, p=1), in the app's page right after each load ${ms(median(pageLoad.argon2idMs))}   (${pageLoad.argon2idMs.map((x) => x.toFixed(0)).join(', ')})`);
log(`  total without it (per load: total − that load's Argon2id) ${ms(median(pageLoad.withoutArgon2idMs))}   (${pageLoad.withoutArgon2idMs.map((x) => x.toFixed(0)).join(', ')})`);
log(`  (Argon2id in the bench page, median of ${ARGON2ID_RUNS}: ${ms(argon2)})`);
if (json) console.log(JSON.stringify({ chromium: engine.chromiumVersion, node: process.versions.node, engine, bundle, pageLoad }, null, 2));
