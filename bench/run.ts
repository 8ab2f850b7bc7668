/**
 * `npm run bench`: our protocol beside libsignal (installed on demand, AGPL, benchmark only) and
 * beside its primitive floor (the same provider calls with no protocol code), session setup
 * with its breakdown, classify throughput at 10 and 100,000 conversations (`--conversations N`
 * for another size), the node:crypto primitives the ratchet is made of, then the Chromium row
 * (packages/web/bench/run.ts, skipped with `--no-web`). Prints one table;
 * `--json` prints the raw figures (without the Chromium row: `npm run bench:web -- --json`).
 */
import { nodeProvider } from '../packages/client/src/crypto/node-provider.ts';
import { nobleProvider } from '../packages/protocol/src/index.ts';
import { benchProtocol, classifyReceiver, floorRunner, median, messageSplit, umbraRunner, type SliceFigures } from './protocol.ts';
import { benchSessionSetup, printSessionSetup } from './session-setup.ts';
import { ensureLibsignal } from './libsignal/ensure.ts';
import { benchLibsignal, libsignalRunner } from './libsignal/libsignal-bench.ts';
import { measurePrimitives } from './crypto-primitives.ts';

interface ClassifyFigures {
  conversations: number;
  msgsPerSec: number;
  hintEntries: number;
  heapBytesPerConversation: number;
  engineOpenMs: number;
  indexing: SliceFigures;
  rollover: SliceFigures;
}

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const LARGE_N = arg('--conversations', 100_000);

const json = process.argv.includes('--json');
const log = (s: string) => {
  if (!json) console.log(s);
};
const progress = (s: string) => process.stderr.write(`… ${s}\n`);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

progress('libsignal (installing on first use)');
const libsignal = (await ensureLibsignal()) ? await benchLibsignal({ messages: 2000, runs: 5 }) : null;
progress('umbra, node:crypto provider');
const ours = await benchProtocol(nodeProvider, 2000, 5);
// The throughput comparison: short runs of each implementation and of the primitive floor,
// interleaved (rotating which goes first), so a change in machine load hits all alike; each
// ratio is the median of the per-round ratios. This VM's speed drifts by ±30% over tens of
// seconds.
const ROUNDS = 21;
const PER_RUN = 1000;
/**
 * One timed run that pays for its own garbage and nobody else's: the young generation is
 * collected before the clock starts (what the previous run left) and again before it stops
 * (what this run left). Without it, a run of 1,000 messages (~30-50 ms) sets off the scavenge
 * of whatever came before it, whose cost is mostly the dead native objects (a KeyObject or a
 * Cipheriv each) of the previous implementation's ping-pong: the one that allocates most in
 * its own run paid most of the others' collections (one way measured 2.05-2.37× the floor
 * plainly and 1.33-1.34× this way, four alternating processes). Needs --expose-gc (npm run
 * bench has it); without it the runner's own figure is used.
 */
const collectYoung = (): void => global.gc?.({ type: 'minor', execution: 'sync' });
async function ownGarbageRun(n: number, run: () => Promise<number> | number): Promise<number> {
  if (global.gc === undefined) return run();
  collectYoung();
  const t = performance.now();
  await run();
  collectYoung();
  return n / ((performance.now() - t) / 1000);
}
type Who = 'ours' | 'libsignal' | 'floor';
const rates = () => ({ oneWay: [] as number[], pingPong: [] as number[] });
const paired = { ours: rates(), libsignal: rates(), floor: rates(), oneWayRatio: [] as number[], pingPongRatio: [] as number[], oneWayOverFloor: [] as number[], pingPongOverFloor: [] as number[] };
{
  progress(`umbra${libsignal ? ', libsignal' : ''} and the primitive floor interleaved (${ROUNDS} rounds × ${PER_RUN} messages each way)`);
  const floor = floorRunner(nodeProvider);
  const runners: Partial<Record<Who, { oneWay(n: number): Promise<number> | number; pingPong(n: number): Promise<number> | number }>> = {
    ours: await umbraRunner(nodeProvider),
    floor,
    ...(libsignal ? { libsignal: await libsignalRunner() } : {}),
  };
  const order = Object.keys(runners) as Who[];
  for (let r = 0; r < ROUNDS; r++) {
    const round: Partial<Record<Who, { oneWay: number; pingPong: number }>> = {};
    for (let k = 0; k < order.length; k++) {
      const who = order[(r + k) % order.length]!;
      const runner = runners[who]!;
      const oneWay = await ownGarbageRun(PER_RUN, () => runner.oneWay(PER_RUN));
      const pingPong = await ownGarbageRun(PER_RUN, () => runner.pingPong(PER_RUN));
      round[who] = { oneWay, pingPong };
      paired[who].oneWay.push(oneWay);
      paired[who].pingPong.push(pingPong);
    }
    // "over floor": how many times the floor's time per message ours takes (1.0 = the floor).
    paired.oneWayOverFloor.push(round.floor!.oneWay / round.ours!.oneWay);
    paired.pingPongOverFloor.push(round.floor!.pingPong / round.ours!.pingPong);
    if (round.libsignal) {
      paired.oneWayRatio.push(round.ours!.oneWay / round.libsignal.oneWay);
      paired.pingPongRatio.push(round.ours!.pingPong / round.libsignal.pingPong);
    }
  }
}
progress('umbra: time per message inside the provider vs the rest (timed provider)');
const split = await messageSplit(nodeProvider);
// Session setup, the same way: one setup of each per round, alternating which goes first.
const SETUP_ROUNDS = 31;
const setupMs = { ours: [] as number[], libsignal: [] as number[], ratio: [] as number[] };
{
  progress(`session setup${libsignal ? ', umbra and libsignal interleaved' : ''} (${SETUP_ROUNDS} rounds)`);
  const ours = await umbraRunner(nodeProvider);
  const theirs = libsignal ? await libsignalRunner() : null;
  for (let i = 0; i < 5; i++) {
    await ours.setup();
    await theirs?.setup();
  }
  for (let r = 0; r < SETUP_ROUNDS; r++) {
    let a: number;
    let b = 0;
    if (r % 2 === 0 || theirs === null) {
      a = await ours.setup();
      if (theirs) b = await theirs.setup();
    } else {
      b = await theirs.setup();
      a = await ours.setup();
    }
    setupMs.ours.push(a);
    if (theirs) {
      setupMs.libsignal.push(b);
      setupMs.ratio.push(a / b);
    }
  }
}
progress('session setup breakdown (instrumented provider)');
const setupBreakdown = await benchSessionSetup(nodeProvider, 31);
progress('umbra, noble provider (browser path)');
const oursNoble = await benchProtocol(nobleProvider, 300, 3);
// Classify: receivers with 10 and with 10,000 conversations, measured in alternating rounds
// (like the libsignal comparison) so the VM's speed phases hit both; ratio = median of the
// per-round ratios.
progress(`classify: receivers with 10 and ${fmt(LARGE_N)} conversations, interleaved`);
const CLASSIFY_ROUNDS = 9;
const CLASSIFY_PER_RUN = 2000;
const CLASSIFY_WARMUP = 1000;
const receivers = [
  await classifyReceiver(nodeProvider, 10, CLASSIFY_WARMUP + CLASSIFY_ROUNDS * CLASSIFY_PER_RUN),
  await classifyReceiver(nodeProvider, LARGE_N, CLASSIFY_WARMUP + CLASSIFY_ROUNDS * CLASSIFY_PER_RUN),
] as const;
for (const r of receivers) await r.run(CLASSIFY_WARMUP);
const classifyRates: [number[], number[]] = [[], []];
const classifyRatio: number[] = [];
for (let r = 0; r < CLASSIFY_ROUNDS; r++) {
  const order = r % 2 === 0 ? [0, 1] : [1, 0];
  for (const i of order) classifyRates[i]!.push(await receivers[i]!.run(CLASSIFY_PER_RUN));
  classifyRatio.push(classifyRates[1][r]! / classifyRates[0][r]!);
}
const rollovers = [await receivers[0].tickRollover(), await receivers[1].tickRollover()];
const [c10, c10k] = receivers.map((r, i) => ({
  conversations: r.conversations,
  msgsPerSec: median(classifyRates[i]!),
  hintEntries: r.hintEntries(),
  heapBytesPerConversation: r.heapBytesPerConversation,
  engineOpenMs: r.engineOpenMs,
  indexing: r.indexing,
  rollover: rollovers[i]!,
})) as [ClassifyFigures, ClassifyFigures];
progress('primitives');
const primitives = await measurePrimitives();

log('');
const pairedRatio = (xs: number[]) => (xs.length === 0 ? 'n/a' : `${median(xs).toFixed(2)}× (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`);
const pairedRate = (xs: number[]) => (xs.length === 0 ? 'n/a' : fmt(median(xs)));
log(`100 B messages, encrypt + decrypt per message; umbra (node), libsignal and the primitive floor interleaved, ${ROUNDS} rounds of ${PER_RUN}${global.gc ? ', each run paying for its own garbage (young generation collected before the clock and inside it at the end)' : ''}`);
log('(median msgs/s; ratio = median of the per-round ratios, range in brackets); noble: median of 3 runs:');
log(`                         umbra (node)   umbra (noble)   libsignal   umbra/libsignal           target`);
log(`  one way   msgs/s       ${pairedRate(paired.ours.oneWay).padStart(10)}   ${fmt(oursNoble.oneWayMsgsPerSec).padStart(12)}   ${pairedRate(paired.libsignal.oneWay).padStart(9)}   ${pairedRatio(paired.oneWayRatio).padEnd(24)}  ≥ 3×`);
log(`  ping-pong msgs/s       ${pairedRate(paired.ours.pingPong).padStart(10)}   ${fmt(oursNoble.pingPongMsgsPerSec).padStart(12)}   ${pairedRate(paired.libsignal.pingPong).padStart(9)}   ${pairedRatio(paired.pingPongRatio).padEnd(24)}  ≥ 2×`);
log(`  (separately, median of 5 runs of 2000: umbra ${fmt(ours.oneWayMsgsPerSec)} / ${fmt(ours.pingPongMsgsPerSec)}, libsignal ${libsignal ? `${fmt(libsignal.oneWayMsgsPerSec)} / ${fmt(libsignal.pingPongMsgsPerSec)}` : 'n/a'} one way / ping-pong)`);
log(`  first message bytes    ${String(ours.firstMessageBytes).padStart(10)}   ${''.padStart(12)}   ${String(libsignal?.prekeyMessageBytes ?? 'n/a').padStart(9)}`);
log(`  message bytes          ${String(ours.messageBytes).padStart(10)}   ${''.padStart(12)}   ${String(libsignal?.messageBytes ?? 'n/a').padStart(9)}   (ours: whole envelope, padded to 256 B)`);
log('');
log('the primitive floor (bench/protocol.ts floorRunner: the provider calls of one message, no protocol code), same rounds:');
log(`  one way   floor ${pairedRate(paired.floor.oneWay).padStart(8)} msgs/s   umbra takes ${pairedRatio(paired.oneWayOverFloor)} the floor's time per message (target ≤ 1.5×)`);
log(`  ping-pong floor ${pairedRate(paired.floor.pingPong).padStart(8)} msgs/s   umbra takes ${pairedRatio(paired.pingPongOverFloor)} the floor's time per message (target ≤ 1.3×)`);
const us = (x: number) => `${x.toFixed(1)} µs`;
log(`  where umbra's time goes (a provider that times its calls; medians of 7 runs of 1,000): one way ${us(split.oneWay.totalUs)} per message,`);
log(`    ${us(split.oneWay.primitivesUs)} in provider calls, ${us(split.oneWay.restUs)} protocol code and GC;  ping-pong ${us(split.pingPong.totalUs)}: ${us(split.pingPong.primitivesUs)} in provider calls, ${us(split.pingPong.restUs)} the rest`);
log('');
const setupRange = (xs: number[]) => (xs.length === 0 ? 'n/a' : `${median(xs).toFixed(2)} ms`);
log(`session setup, ${SETUP_ROUNDS} alternating rounds (invitation → first message read; engines and invitation made before the clock, like libsignal's bundle):`);
log(`  umbra (node) ${setupRange(setupMs.ours)}   libsignal ${setupRange(setupMs.libsignal)}   umbra/libsignal time ${pairedRatio(setupMs.ratio)} (target ≤ 1.0×)   umbra (noble) ${oursNoble.sessionSetupMs.toFixed(2)} ms`);
printSessionSetup(setupBreakdown, null, (line) => log(`  ${line}`));
log('');
log(`classify (+ commit) throughput, one peer streaming to a receiver with N conversations (${CLASSIFY_ROUNDS} alternating rounds of ${fmt(CLASSIFY_PER_RUN)};`);
log('ratio = median of the per-round ratios, range in brackets):');
log(`  N = 10        ${fmt(c10.msgsPerSec).padStart(8)} msgs/s   hint entries ${fmt(c10.hintEntries)}`);
log(`  N = ${fmt(LARGE_N).padEnd(9)} ${fmt(c10k.msgsPerSec).padStart(8)} msgs/s   hint entries ${fmt(c10k.hintEntries)}   ratio ${pairedRatio(classifyRatio)} (target ≥ 0.80)`);
log(`  memory per conversation at N = ${fmt(LARGE_N)} (open engine over the encoded records, as the client opens; table built; not the store) ≈ ${fmt(c10k.heapBytesPerConversation)} B (target ≤ 4,096 B with the store's indexes)`);
log(`  new Engine over ${fmt(LARGE_N)} encoded records (the protocol's share of opening a client; no hint computed): ${fmt(c10k.engineOpenMs)} ms (target: whole client open < 2,000 ms)`);
const calls = (s: SliceFigures) => `${s.calls} tick() calls, longest ${s.maxCallMs.toFixed(1)} ms, p99 ${s.p99CallMs.toFixed(1)} ms, ${s.callsOver10Ms} over 10 ms, total ${fmt(s.totalMs)} ms`;
log(`  its hint table, built after open in slices: N = 10: ${calls(c10.indexing)};  N = ${fmt(LARGE_N)}: ${calls(c10k.indexing)}`);
log(`  hourly hint-window rollover: N = 10: ${calls(c10.rollover)};  N = ${fmt(LARGE_N)}: ${calls(c10k.rollover)} (target: no call over 10 ms)`);
log('');
log('primitives the ratchet calls (ops/s):            node:crypto      noble');
for (const [name, v] of Object.entries(primitives)) log(`  ${name.padEnd(44)} ${fmt(v.node).padStart(10)} ${fmt(v.noble).padStart(10)}`);
log('');
log('A one-way message costs: 2 HMAC-SHA512 (chain) + 2 AEAD seal + 2 AEAD open (header, body) + ½ HMAC-SHA512 (hints, 4 per MAC) + protobuf;');
log('a ping-pong message adds one X25519 keygen and two X25519 DH (DH ratchet) and two HKDF.');
if (json) console.log(JSON.stringify({ libsignal, ours, oursNoble, paired, split, setupMs, setupBreakdown, classify: [c10, c10k], classifyRatio, primitives }, null, 2));

// The Chromium row (issue 19): the same protocol code in headless Debian Chromium beside Node, in
// its own process (it needs a browser and a hub; about 4 minutes). `--no-web` skips it, and so
// does `--json` (one JSON document; `npm run bench:web -- --json` prints the row's).
if (!process.argv.includes('--no-web') && !json) {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  progress('the Chromium row (packages/web/bench/run.ts; --no-web skips it)');
  const web = fileURLToPath(new URL('../packages/web/bench/run.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', web], { stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = r.status ?? 1;
}
