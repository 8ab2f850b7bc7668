/**
 * Signed-request nonce cache: insert cost with 1,000,000 live nonces (a benchmark, not a test).
 * `node --expose-gc --import tsx bench/nonce-cache.ts [LIVE]`  (npm run bench:nonce-cache)
 *
 * - windowed: the services' NonceCache (time buckets) in steady state: a fake clock advances so
 *   that LIVE nonces are live (240 s lifetime, the longest a signature can be accepted), windows
 *   expire as the run goes, and each insert is timed in batches of 100k pre-built keys.
 * - all windows: the same windows, but each nonce looked up in every live window (≤ 10), the
 *   first design of this change, kept here to show why one lookup is enough and what it saves.
 * - previous: the algorithm NonceCache had before (one Map, a full scan on every add past 50k
 *   entries), kept here only to compare in the same run, with LIVE unexpired entries.
 * Keys are verifyRequest's (nonceKey: 16 bytes of SHA-256 over keyid, created and nonce), built
 * before the timed part; their cost is timed on its own. Heap per nonce is heapUsed after a GC
 * with the cache full, minus before, divided by LIVE.
 */
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { MAX_SKEW_S, NONCE_WINDOW_MS, NonceCache, nonceKey } from '../packages/services/src/httpsig.ts';

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
  for (let i = 0; i < n; i++) out[i] = nonceKey(keyids[serial++ % 64]!, String(1_800_000_000 + (serial >> 12)), randomBytes(16).toString('base64url'));
  return out;
}

/** The same windows, but each nonce looked up in every live window (this file's first design). */
class AllWindowsNonceCache {
  private readonly windows = new Map<number, Set<string>>();
  private swept = -Infinity;
  size = 0;
  constructor(
    private readonly now: () => number,
    private readonly windowMs = NONCE_WINDOW_MS,
  ) {}
  checkAndRemember(nonce: string, expiresAtMs: number): string {
    const now = this.now();
    const current = Math.floor(now / this.windowMs);
    if (current > this.swept) {
      this.swept = current;
      for (const [index, w] of this.windows)
        if (index < current) {
          this.size -= w.size;
          this.windows.delete(index);
        }
    }
    for (const w of this.windows.values()) if (w.has(nonce)) return 'replay';
    const index = Math.floor(expiresAtMs / this.windowMs);
    let w = this.windows.get(index);
    if (w === undefined) this.windows.set(index, (w = new Set()));
    w.add(nonce);
    this.size++;
    return 'new';
  }
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

// ---- windowed (and the all-windows variant) ---------------------------------------------------
interface Cache {
  checkAndRemember(nonce: string, expiresAtMs: number): string;
  readonly size: number;
}

function steadyState(make: (now: () => number) => Cache): { ns: number; minLive: number; maxLive: number; bytesPerNonce: number; inserted: number } {
  let clock = 0;
  const heap0 = heap();
  const cache = make(() => clock);
  // Fill to steady state (LIVE inserts over one lifetime), untimed but batched the same way.
  for (let filled = 0; filled < LIVE; filled += BATCH) {
    for (const k of keys(Math.min(BATCH, LIVE - filled))) {
      clock += STEP_MS;
      cache.checkAndRemember(k, clock + LIFETIME_MS);
    }
  }
  const bytesPerNonce = (heap() - heap0) / LIVE;
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
  return { ns: ns / inserted, minLive, maxLive, bytesPerNonce, inserted };
}

const w = steadyState((now) => new NonceCache(now, { maxLive: 2 * LIVE }));
const windowedNs = w.ns;
console.log(
  `windowed NonceCache: ${w.ns.toFixed(0)} ns per insert at ${w.minLive.toLocaleString('en')}–${w.maxLive.toLocaleString('en')} held nonces ` +
    `(${LIVE.toLocaleString('en')} unexpired; ${w.inserted.toLocaleString('en')} inserts, windows expiring as the clock runs); heap ≈ ${w.bytesPerNonce.toFixed(0)} B per nonce ` +
    `(${((w.bytesPerNonce * LIVE) / 1e6).toFixed(0)} MB at ${LIVE.toLocaleString('en')})`,
);
const all = steadyState((now) => new AllWindowsNonceCache(now));
console.log(`same windows, lookup in every live window: ${all.ns.toFixed(0)} ns per insert (${(all.ns / w.ns).toFixed(1)}× the windowed cache)`);

// ---- the key itself ----------------------------------------------------------------------------
{
  const parts = Array.from({ length: BATCH }, () => randomBytes(16).toString('base64url'));
  const t0 = process.hrtime.bigint();
  for (const p of parts) nonceKey(keyids[0]!, '1800000000', p);
  console.log(`nonceKey (SHA-256 of keyid:created:nonce, per verified request): ${(Number(process.hrtime.bigint() - t0) / BATCH).toFixed(0)} ns`);
}

// ---- previous -----------------------------------------------------------------------------------
const clock = 0;
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
