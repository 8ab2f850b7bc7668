/**
 * Signed-request nonce cache: insert cost with 1,000,000 live nonces (a benchmark, not a test).
 * `node --expose-gc --import tsx bench/nonce-cache.ts [LIVE]`  (npm run bench:nonce-cache)
 *
 * - windowed: the services' NonceCache (time buckets) in steady state: a fake clock advances so
 *   that LIVE nonces are live (240 s lifetime, the longest a signature can be accepted), windows
 *   expire as the run goes, and each insert is timed in batches of 100k pre-built keys.
 * - previous: the algorithm NonceCache had before (one Map, a full scan on every add past 50k
 *   entries), kept here only to compare in the same run, with LIVE unexpired entries.
 * Keys look like the real ones: `<43-char keyid>:<22-char nonce>`. Heap per nonce is heapUsed
 * after a GC with the cache full, minus before, divided by LIVE.
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { MAX_SKEW_S, NonceCache } from '../packages/services/src/httpsig.ts';

const LIVE = Number(process.argv[2] ?? 1_000_000);
const LIFETIME_MS = 2 * MAX_SKEW_S * 1000;
const STEP_MS = LIFETIME_MS / LIVE; // clock advance per insert: LIVE inserts per lifetime
const BATCH = 100_000;
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) console.warn('run with --expose-gc for the heap figure');

const keyids = Array.from({ length: 64 }, () => randomBytes(32).toString('base64url'));
let serial = 0;
function keys(n: number): string[] {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = `${keyids[serial % 64]}:${randomBytes(16).toString('base64url')}${(serial++).toString(36)}`;
  return out;
}

/** The pre-bucket NonceCache, verbatim in behaviour (5-minute TTL, scan past 50k). */
class PreviousNonceCache {
  readonly seen = new Map<string, number>();
  constructor(private readonly now: () => number) {}
  add(nonce: string): boolean {
    const t = this.now();
    if (this.seen.size > 50_000) for (const [k, exp] of this.seen) if (exp < t) this.seen.delete(k);
    const exp = this.seen.get(nonce);
    if (exp !== undefined && exp >= t) return false;
    this.seen.set(nonce, t + 5 * 60_000);
    return true;
  }
}

function heap(): number {
  gc?.();
  return process.memoryUsage().heapUsed;
}

// ---- windowed ---------------------------------------------------------------------------------
let clock = 0;
const cache = new NonceCache(() => clock, { maxLive: 2 * LIVE });
const heap0 = heap();
// Fill to steady state (LIVE inserts over one lifetime), untimed but batched the same way.
for (let filled = 0; filled < LIVE; filled += BATCH) {
  for (const k of keys(Math.min(BATCH, LIVE - filled))) {
    clock += STEP_MS;
    cache.checkAndRemember(k, clock + LIFETIME_MS);
  }
}
const heapFull = heap();
let ns = 0;
let inserted = 0;
let minLive = Infinity;
let maxLive = 0;
for (let round = 0; round < 10; round++) {
  const batch = keys(BATCH);
  const expiries = batch.map((_, i) => clock + (i + 1) * STEP_MS + LIFETIME_MS);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < BATCH; i++) {
    clock += STEP_MS;
    if (cache.checkAndRemember(batch[i]!, expiries[i]!) !== 'new') throw new Error('unexpected verdict');
  }
  ns += Number(process.hrtime.bigint() - t0);
  inserted += BATCH;
  minLive = Math.min(minLive, cache.size);
  maxLive = Math.max(maxLive, cache.size);
}
const windowedNs = ns / inserted;
const bytesPerNonce = (heapFull - heap0) / LIVE;
console.log(
  `windowed NonceCache: ${windowedNs.toFixed(0)} ns per insert at ${minLive.toLocaleString('en')}–${maxLive.toLocaleString('en')} live nonces ` +
    `(${inserted.toLocaleString('en')} inserts, windows expiring as the clock runs); heap ≈ ${bytesPerNonce.toFixed(0)} B per live nonce ` +
    `(${((bytesPerNonce * LIVE) / 1e6).toFixed(0)} MB at ${LIVE.toLocaleString('en')})`,
);

// ---- previous -----------------------------------------------------------------------------------
clock = 0;
const previous = new PreviousNonceCache(() => clock);
// Filled directly: through add() every insert past 50k would scan, hours for 1M.
for (let filled = 0; filled < LIVE; filled += BATCH) for (const k of keys(Math.min(BATCH, LIVE - filled))) previous.seen.set(k, clock + 5 * 60_000);
// Only the next inserts are timed; each scans all LIVE entries (none has expired).
const PREVIOUS_INSERTS = 100;
const batch = keys(PREVIOUS_INSERTS);
const t0 = process.hrtime.bigint();
for (const k of batch) previous.add(k);
const previousNs = Number(process.hrtime.bigint() - t0) / PREVIOUS_INSERTS;
console.log(`previous NonceCache (scan past 50k): ${(previousNs / 1e6).toFixed(2)} ms per insert at ${LIVE.toLocaleString('en')} live nonces (${PREVIOUS_INSERTS} inserts)`);
console.log(`ratio: ${(previousNs / windowedNs).toFixed(0)}× cheaper per insert; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (a shared machine: compare within a run)`);
