/**
 * SQLite group commit with the WAL fsync inside COMMIT (synchronous=FULL, on the event loop)
 * against the fsync on the thread pool after COMMIT (synchronous=NORMAL + fsync of the -wal file,
 * the default): the SSA's enqueue transaction (idempotency lookup, spent token, queue row with a
 * 512-byte payload), 100 callers at a time, alternating rounds in one run.
 *
 *   node --import tsx bench/sqlite-commit.ts [--rounds 3] [--count 5000]
 *
 * Prints per round: transactions/s, the event loop's busy share (performance.eventLoopUtilization)
 * and its busy milliseconds per transaction (CPU the loop cannot spend on requests), p50/p99.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SqliteDriver } from '../packages/services/src/db.ts';
import { SqlSsaStore } from '../packages/services/src/store.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const ROUNDS = arg('rounds', 3);
const COUNT = arg('count', 5000);
const CONC = 100;

async function round(asyncFsync: boolean): Promise<{ rate: number; elu: number; busyMsPerTx: number; p50: number; p99: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'umbra-commit-'));
  const store = new SqlSsaStore(new SqliteDriver(join(dir, 'ssa.db'), { asyncFsync }));
  await store.init();
  const payload = new Uint8Array(randomBytes(512));
  const lat: number[] = [];
  let next = 0;
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < COUNT) {
        next++;
        const s = performance.now();
        const now = Date.now();
        const r = await store.enqueue(
          { sid: new Uint8Array(randomBytes(16)), rsa: 'https://rsa.example', sealedAddr: new Uint8Array(randomBytes(96)), payload, created: now, expires: now + 3_600_000, attempts: 0 },
          new Uint8Array(randomBytes(16)),
          new Uint8Array(randomBytes(32)),
          now + 1e9,
          now,
        );
        if (r.kind !== 'ok') throw new Error(`enqueue: ${r.kind}`);
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const elu = performance.eventLoopUtilization(elu0);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  return { rate: COUNT / secs, elu: elu.utilization, busyMsPerTx: elu.active / COUNT, p50: lat[Math.floor(lat.length / 2)]!, p99: lat[Math.floor(lat.length * 0.99)]! };
}

console.log(`SSA enqueue, ${COUNT} transactions per round, ${CONC} in flight, group commit on (one file per round in ${tmpdir()})`);
console.log('mode                         tx/s    loop busy   loop ms/tx   p50 ms   p99 ms');
for (let r = 0; r < ROUNDS; r++)
  for (const asyncFsync of [false, true]) {
    const x = await round(asyncFsync);
    const name = asyncFsync ? 'fsync on the thread pool' : 'fsync inside COMMIT (FULL)';
    console.log(
      `${name.padEnd(27)} ${x.rate.toFixed(0).padStart(6)}   ${(x.elu * 100).toFixed(0).padStart(6)} %   ${x.busyMsPerTx.toFixed(3).padStart(8)}   ${x.p50.toFixed(1).padStart(6)}   ${x.p99.toFixed(1).padStart(6)}`,
    );
  }
