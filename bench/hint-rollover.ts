/**
 * `node --expose-gc --import tsx bench/hint-rollover.ts`: the hint table at N conversations (issue 17 item 3), A/B of how
 * the window blocks are MACed, in one process over one engine:
 *   new: `hmacSha512Batch` (noble's SHA-512 from precomputed pad states, nothing allocated per MAC);
 *   old: one node:crypto `hmacSha512` per block (a createHmac object and a Buffer per MAC), which
 *        is what `HintTable.addWindow` called before.
 * Prints the post-open indexing (in `--open` mode, default new: run the script once per mode to
 * compare it) and `--hours` rollover hours in alternating modes: tick() slices (count, longest,
 * p99, median, over 10 ms, total; one slice per macrotask, as the client's indexHints runs them)
 * and the longest young/full GC pause inside them, and the slices' process CPU time (longest, over
 * 10 ms: what a slice costs when the OS does not preempt it, on a loaded VM); then MAC/s of
 * both in alternating rounds, and memory per conversation. Run with --expose-gc for the memory line.
 * `--records encoded` (default: serialized records, kept encoded by the engine, as the client
 * opens) or `--records decoded` (the engine given decoded records, as before).
 */
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { nodeProvider } from '../packages/client/src/crypto/node-provider.ts';
import { Engine, deserializeConversation, serializeConversation, type CryptoProvider, type PrivateConversation } from '../packages/protocol/src/index.ts';
import { HOUR_MS } from '../packages/protocol/src/hints.ts';
import { syntheticConversation } from '../packages/protocol/test/synthetic.ts';
import { T0, median, sliceFigures, type SliceFigures } from './protocol.ts';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1]! : dflt;
};
const N = Number(arg('--conversations', '100000'));
const HOURS = Number(arg('--hours', '6'));
const OPEN_MODE = arg('--open', 'new') as Mode;
/** How the engine gets its conversations: `encoded` (serialized, as the client opens since the engine keeps idle ones encoded) or `decoded`. */
const RECORDS = arg('--records', 'encoded') as 'encoded' | 'decoded';
const json = process.argv.includes('--json');
const log = (s: string): void => {
  if (!json) console.log(s);
};
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

type Mode = 'new' | 'old';
let mode: Mode = OPEN_MODE;
const perCall = (key: Uint8Array, messages: Uint8Array, messageLength: number, count: number, out: Uint8Array, outOffset = 0): void => {
  for (let m = 0; m < count; m++) out.set(nodeProvider.hmacSha512(key, messages.subarray(m * messageLength, (m + 1) * messageLength)), outOffset + 64 * m);
};
const crypto: CryptoProvider = {
  ...nodeProvider,
  name: 'node (hint MAC A/B)',
  hmacSha512Batch(key, messages, messageLength, count, out, outOffset) {
    if (mode === 'old') perCall(key, messages, messageLength, count, out, outOffset);
    else nodeProvider.hmacSha512Batch(key, messages, messageLength, count, out, outOffset);
  },
};

// GC pauses, by start time, to tell which slices a collection lengthened.
const gcs: { start: number; ms: number; young: boolean }[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
    gcs.push({ start: e.startTime, ms: e.duration, young: kind === constants.NODE_PERFORMANCE_GC_MINOR });
  }
}).observe({ entryTypes: ['gc'] });
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50));

interface Phase extends SliceFigures {
  mode: Mode;
  /** The same slices in process CPU time (all threads): what a slice costs when the OS does not preempt it. */
  maxCpuMs: number;
  cpuOver10Ms: number;
  maxYoungGcMs: number;
  maxFullGcMs: number;
}

const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** As the client drives it (indexHints): one tick() slice per macrotask, so V8's GC tasks run between slices. */
async function phase(engine: Engine, nowMs: number): Promise<Phase> {
  // Start from an empty young generation: the previous phase's garbage (of the other mode) is not counted here.
  (global.gc as ((o: { type: string }) => void) | undefined)?.({ type: 'minor' });
  await settle();
  const ms: number[] = [];
  const cpuMs: number[] = [];
  const from = performance.now();
  do {
    await nextMacrotask();
    const c = process.cpuUsage();
    const t = performance.now();
    engine.tick(nowMs);
    ms.push(performance.now() - t);
    const used = process.cpuUsage(c);
    cpuMs.push((used.user + used.system) / 1000);
  } while (engine.hintWorkPending());
  const to = performance.now();
  await settle();
  const inside = gcs.filter((g) => g.start >= from && g.start <= to);
  const max = (xs: number[]): number => (xs.length === 0 ? 0 : Math.max(...xs));
  const cpu = sliceFigures(cpuMs);
  return { mode, ...sliceFigures(ms), maxCpuMs: cpu.maxCallMs, cpuOver10Ms: cpu.callsOver10Ms, maxYoungGcMs: max(inside.filter((g) => g.young).map((g) => g.ms)), maxFullGcMs: max(inside.filter((g) => !g.young).map((g) => g.ms)) };
}

const memory = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

const bob = Engine.create(crypto, T0);
global.gc?.();
const before = memory();
process.stderr.write(`… ${fmt(N)} synthetic conversations\n`);
// As a store hands them over: each record decoded from its own buffer; only the engine keeps them.
const encoded = (): Uint8Array[] => Array.from({ length: N }, (_, i) => serializeConversation(syntheticConversation(crypto, i, T0)));
const records = (): PrivateConversation[] => encoded().map((bytes) => deserializeConversation(bytes));
const made = RECORDS === 'encoded' ? encoded() : records();
// --collect-before-open: a full collection of the making's garbage (the synthetic sessions' key
// generation and objects) first, so the post-open slices show the engine's own collections only.
if (process.argv.includes('--collect-before-open')) global.gc?.();
const openStart = performance.now();
const engine =
  RECORDS === 'encoded'
    ? new Engine(crypto, { account: bob.account, inboxes: bob.allInboxes(), conversations: [], storedConversations: made as Uint8Array[] }, T0)
    : new Engine(crypto, { account: bob.account, inboxes: bob.allInboxes(), conversations: made as PrivateConversation[] }, T0);
const openMs = performance.now() - openStart;
made.length = 0;
process.stderr.write(`… post-open indexing (${mode})\n`);
const opened = await phase(engine, T0);
global.gc?.();
const bytesPerConversation = (memory() - before) / N;

const row = (what: string, p: Phase): string =>
  `  ${what.padEnd(22)} ${p.mode.padEnd(4)} ${String(p.calls).padStart(6)} ${p.maxCallMs.toFixed(1).padStart(8)} ${p.p99CallMs.toFixed(2).padStart(7)} ${p.medianCallMs.toFixed(2).padStart(7)} ${String(p.callsOver10Ms).padStart(5)} ${fmt(p.totalMs).padStart(8)} ${p.maxYoungGcMs.toFixed(1).padStart(8)} ${p.maxFullGcMs.toFixed(1).padStart(8)} ${p.maxCpuMs.toFixed(1).padStart(8)} ${String(p.cpuOver10Ms).padStart(6)}`;
log(`hint table at N = ${fmt(N)} conversations (${RECORDS} records; new Engine ${fmt(openMs)} ms), node provider; tick() slices (ms):`);
log('                         mode  calls  longest     p99  median  >10ms    total young GC  full GC  max CPU CPU>10');
log(row('post-open indexing', opened));
const hours: Phase[] = [];
for (let h = 1; h <= HOURS; h++) {
  mode = h % 2 === 1 ? 'old' : 'new'; // old first, then alternate
  process.stderr.write(`… rollover hour ${h} (${mode})\n`);
  hours.push(await phase(engine, T0 + h * HOUR_MS));
  log(row(`rollover hour ${h}`, hours[hours.length - 1]!));
}
for (const m of ['old', 'new'] as const) {
  const mine = hours.filter((p) => p.mode === m);
  if (mine.length === 0) continue;
  log(`  ${m}: longest slice per hour ${mine.map((p) => p.maxCallMs.toFixed(1)).join(' / ')} ms; over 10 ms ${mine.map((p) => p.callsOver10Ms).join(' / ')}; hour total median ${fmt(median(mine.map((p) => p.totalMs)))} ms`);
}

// MAC/s: one window's 8 blocks per call (a fresh window), alternating rounds.
const key = nodeProvider.randomBytes(32);
const input = nodeProvider.randomBytes(21 * 8);
const out = new Uint8Array(64 * 8);
const rate = (m: Mode, windows: number): number => {
  mode = m;
  const t = performance.now();
  for (let i = 0; i < windows; i++) crypto.hmacSha512Batch(key, input, 21, 8, out);
  return (windows * 8) / ((performance.now() - t) / 1000);
};
rate('old', 2000);
rate('new', 2000);
const rates: Record<Mode, number[]> = { old: [], new: [] };
for (let r = 0; r < 9; r++) for (const m of r % 2 === 0 ? (['old', 'new'] as const) : (['new', 'old'] as const)) rates[m].push(rate(m, 10_000));
log(`hint-block MACs/s (windows of 8 blocks, 9 alternating rounds, median): old ${fmt(median(rates.old))}, new ${fmt(median(rates.new))}`);
log(`memory per conversation (${RECORDS} records: engine + records + hint table built, heapUsed + arrayBuffers${global.gc ? '' : '; run with --expose-gc'}): ${fmt(bytesPerConversation)} B`);
if (json) console.log(JSON.stringify({ conversations: N, opened, hours, macsPerSec: rates, bytesPerConversation }, null, 2));
