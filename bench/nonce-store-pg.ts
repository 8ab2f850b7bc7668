/**
 * Cost of the signed-request replay check on PostgreSQL (DbNonceStore, shared by instances)
 * against the in-process NonceCache (the SQLite/hub path). A private PostgreSQL on loopback
 * (packages/services/test/pg.ts: fsync=off, so commits cost no disk flush here; on a real
 * server each INSERT batch also waits for its WAL flush).
 *
 *   node --import tsx bench/nonce-store-pg.ts [--n 20000]
 *
 * Prints µs per check one at a time (latency) and with 100 checks in flight (what a busy
 * instance pays: checks of one event-loop turn share one INSERT).
 */
import { randomBytes } from 'node:crypto';
import { PgDriver } from '../packages/services/src/db.ts';
import { NonceCache, nonceKey } from '../packages/services/src/httpsig.ts';
import { DbNonceStore, initSharedState } from '../packages/services/src/shared-state.ts';
import { startPostgres } from '../packages/services/test/pg.ts';

const i = process.argv.indexOf('--n');
const N = i >= 0 ? Number(process.argv[i + 1]) : 20_000;
const key = () => nonceKey('keyid', String(Math.floor(Date.now() / 1000)), randomBytes(16).toString('base64url'));
const expires = () => Date.now() + 120_000;

async function timeIt(label: string, n: number, inFlight: number, check: () => Promise<unknown> | unknown): Promise<void> {
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < n) await check();
    }),
  );
  console.log(`${label.padEnd(48)} ${(((performance.now() - t) * 1000) / n).toFixed(1)} µs per check`);
}

const pg = await startPostgres();
try {
  const db = new PgDriver(await pg.createDb());
  await initSharedState(db);
  const store = new DbNonceStore(db, Date.now);
  const cache = new NonceCache(Date.now);
  await timeIt('warm-up (PostgreSQL)', 2000, 100, () => store.checkAndRemember(key(), expires()));
  await timeIt('in-process NonceCache, one at a time', N, 1, () => cache.checkAndRemember(key(), expires()));
  await timeIt('PostgreSQL DbNonceStore, one at a time', Math.min(N, 5000), 1, () => store.checkAndRemember(key(), expires()));
  await timeIt('PostgreSQL DbNonceStore, 100 in flight', N, 100, () => store.checkAndRemember(key(), expires()));
  const replay = key();
  await store.checkAndRemember(replay, expires());
  console.log(`replay refused: ${(await store.checkAndRemember(replay, expires())) === 'replay'}`);
  store.close();
  await db.close();
} finally {
  await pg.stop();
}
