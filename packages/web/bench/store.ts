/**
 * `node --import tsx packages/web/bench/store.ts [--memory-profile]`: the IndexedDB store's costs
 * in headless Debian Chromium (docs/STORE.md "IndexedDB" cites them). By default on a persistent
 * profile on disk (what a user's browser has); `--memory-profile` runs it in an off-the-record
 * context, where IndexedDB lives in memory (what most tests use).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { bundleForBrowser, chromiumPath, CHROMIUM_ARGS, PAGE_HTML, serveRoutes } from '../test/harness/chromium.ts';

interface Row {
  store: string;
  what: string;
  ms: number;
}

const here = dirname(fileURLToPath(import.meta.url));
const onDisk = !process.argv.includes('--memory-profile');
const executablePath = chromiumPath();
if (executablePath === null) throw new Error('chromium is not installed (apt-get install chromium)');
const js = await bundleForBrowser(join(here, 'store.entry.ts'), { minify: true });
const server = await serveRoutes({ '/': { type: 'text/html', body: PAGE_HTML }, '/bundle.js': { type: 'text/javascript', body: js } });
const profile = onDisk ? mkdtempSync(join(tmpdir(), 'umbra-idb-bench-')) : null;
const browser = profile === null ? await chromium.launch({ executablePath, args: CHROMIUM_ARGS }) : null;
const context: BrowserContext = profile !== null ? await chromium.launchPersistentContext(profile, { executablePath, args: CHROMIUM_ARGS }) : await browser!.newContext();
try {
  const page = await context.newPage();
  await page.goto(server.url);
  const handle = await page.waitForFunction(() => (globalThis as { __umbraResults?: unknown }).__umbraResults, undefined, { timeout: 600_000, polling: 250 });
  const rows = (await handle.jsonValue()) as Row[] | { fatal: string };
  if (!Array.isArray(rows)) throw new Error(rows.fatal);
  console.log(`Chromium ${context.browser()?.version() ?? ''} headless, ${onDisk ? 'persistent profile on disk' : 'off-the-record context (IndexedDB in memory)'}; ms per call`);
  console.log('| store | operation | ms |');
  console.log('|---|---|---|');
  for (const r of rows) console.log(`| ${r.store} | ${r.what} | ${r.ms.toFixed(2)} |`);
} finally {
  await context.close();
  await browser?.close();
  await server.close();
  if (profile !== null) rmSync(profile, { recursive: true, force: true });
}
