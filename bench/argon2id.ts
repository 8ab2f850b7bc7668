/**
 * Unlock cost (a benchmark, not a test): `node --import tsx bench/argon2id.ts [runs]`.
 * Median and range over `runs` (default 9) of: the store's Argon2id derivation at the default
 * parameters (native addon in a worker thread, as SqliteStore.open runs it; the first one in a
 * process, which starts the worker, is printed on its own), a whole
 * SqliteStore.open of an existing passphrase store, and for reference the previous release's
 * derivation (@noble/hashes, pure JS, t = 1, 19 MiB).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { argon2id as nobleArgon2id } from '@noble/hashes/argon2.js';
import { DEFAULT_ARGON2ID, SqliteStore, deriveStoreKey } from '../packages/client/src/node.ts';

const RUNS = Number(process.argv[2] ?? 9);
const salt = randomBytes(16);

async function measure(name: string, f: () => Promise<unknown>): Promise<void> {
  await f(); // warm-up (module load, worker start-up code paths)
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await f();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  console.log(`  ${name.padEnd(58)} median ${ms[ms.length >> 1]!.toFixed(0)} ms  (min ${ms[0]!.toFixed(0)}, max ${ms[ms.length - 1]!.toFixed(0)})`);
}

const { m, t, p } = DEFAULT_ARGON2ID;
console.log(`Argon2id per unlock, ${RUNS} runs each`);
const first = performance.now();
await deriveStoreKey('correct horse battery staple', salt);
console.log(`  ${'first derivation in this process (starts the KDF worker)'.padEnd(58)} ${(performance.now() - first).toFixed(0)} ms`);
await measure(`store KDF: native argon2, t=${t} p=${p} m=${m / 1024} MiB (worker)`, () => deriveStoreKey('correct horse battery staple', salt));
const dir = mkdtempSync(join(tmpdir(), 'umbra-bench-argon2id-'));
const path = join(dir, 'umbra.db');
await (await SqliteStore.open({ path, passphrase: 'pw' })).close();
await measure('SqliteStore.open of an existing passphrase store', async () => (await SqliteStore.open({ path, passphrase: 'pw' })).close());
rmSync(dir, { recursive: true, force: true });
await measure('previous release: @noble/hashes, t=1 p=1 m=19 MiB', async () => nobleArgon2id('correct horse battery staple', salt, { t: 1, p: 1, m: 19 * 1024, dkLen: 32 }));
