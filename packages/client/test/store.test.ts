/** The SQLite store: migrations, encryption at rest, wrong keys, locking. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, MemoryNetwork, SqliteStore, SCHEMA_VERSION, DEFAULT_ARGON2ID } from '../src/index.ts';
import { FAST, KEY_A, KEY_B, connect, tempDir, texts, waitFor } from './helpers.ts';

const CHEAP = { m: 256, t: 1, p: 1 };

test('a new store is migrated to the current schema; WAL; a newer schema is refused', () => {
  const { dir, cleanup } = tempDir();
  const path = join(dir, 's.db');
  const store = SqliteStore.open({ path, key: KEY_A });
  const db = store.rawForTests();
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  store.close();
  assert.throws(() => SqliteStore.open({ path, key: KEY_A }), { code: 'store-unsupported-version' });
  cleanup();
});

test('passphrase store: wrong passphrase, wrong key kind, and a second opener are typed errors', () => {
  const { dir, cleanup } = tempDir();
  const path = join(dir, 's.db');
  const store = SqliteStore.open({ path, passphrase: 'correct horse', argon2id: CHEAP });
  assert.throws(() => SqliteStore.open({ path, passphrase: 'correct horse', argon2id: CHEAP }), { code: 'store-locked' });
  store.close();
  assert.throws(() => SqliteStore.open({ path, passphrase: 'wrong horse' }), { code: 'wrong-passphrase' });
  assert.throws(() => SqliteStore.open({ path, key: KEY_A }), { code: 'wrong-passphrase' });
  SqliteStore.open({ path, passphrase: 'correct horse' }).close(); // stored parameters are used, not the defaults
  const keyed = join(dir, 'k.db');
  SqliteStore.open({ path: keyed, key: KEY_A }).close();
  assert.throws(() => SqliteStore.open({ path: keyed, key: KEY_B }), { code: 'wrong-passphrase' });
  assert.throws(() => SqliteStore.open({ path: keyed, passphrase: 'x' }), { code: 'wrong-passphrase' });
  cleanup();
});

test('default Argon2id parameters are not trivially cheap (the cost is printed)', () => {
  const { dir, cleanup } = tempDir();
  const t0 = performance.now();
  SqliteStore.open({ path: join(dir, 's.db'), passphrase: 'pw' }).close();
  const ms = performance.now() - t0;
  console.log(`# Argon2id m=${DEFAULT_ARGON2ID.m} KiB t=${DEFAULT_ARGON2ID.t} p=${DEFAULT_ARGON2ID.p}: store creation ${ms.toFixed(0)} ms`);
  assert.ok(ms > 50, 'the KDF is not trivially cheap');
  cleanup();
});

test('secrets are encrypted at rest: no key, body or name appears in the file', async () => {
  const { dir, cleanup } = tempDir();
  const net = new MemoryNetwork();
  const alice = await Client.open({ delivery: net.adapter(), dataDir: join(dir, 'a'), passphrase: 'pw', argon2id: CHEAP, profile: { name: 'AliceUniqueName' }, ...FAST });
  const bob = await Client.open({ delivery: net.adapter(), dataDir: join(dir, 'b'), key: KEY_B, profile: { name: 'BobUniqueName' }, ...FAST });
  const conv = await connect(alice, bob);
  await alice.send(conv.id, 'SECRET-PLAINTEXT-MARKER');
  await waitFor(() => texts(bob, conv.id).length === 1);
  const accountKey = Buffer.from(alice.exportAccountKey()).toString('hex');
  await alice.close();
  await bob.close();
  for (const side of ['a', 'b']) {
    const raw = Buffer.concat(['umbra.db', 'umbra.db-wal'].map((f) => { try { return readFileSync(join(dir, side, f)); } catch { return Buffer.alloc(0); } }));
    for (const needle of ['SECRET-PLAINTEXT-MARKER', 'AliceUniqueName', 'BobUniqueName']) assert.equal(raw.includes(needle), false, `${needle} in ${side}`);
    assert.equal(raw.toString('hex').includes(accountKey), false, 'account key in clear');
  }
  await assert.rejects(Client.open({ delivery: net.adapter(), dataDir: join(dir, 'a'), passphrase: 'nope' }), { code: 'wrong-passphrase' });
  const again = await Client.open({ delivery: net.adapter(), dataDir: join(dir, 'a'), passphrase: 'pw', ...FAST });
  assert.equal(Buffer.from(again.exportAccountKey()).toString('hex'), accountKey, 'identity restored');
  assert.deepEqual(texts(again, conv.id), ['>SECRET-PLAINTEXT-MARKER']);
  await again.close();
  cleanup();
});

test('a tampered or swapped row is reported as store-corrupt, never half-loaded', async () => {
  const { dir, cleanup } = tempDir();
  const net = new MemoryNetwork();
  const path = join(dir, 'x');
  const alice = await Client.open({ delivery: net.adapter(), dataDir: path, key: KEY_A, ...FAST });
  await alice.createInvitation();
  await alice.createInvitation();
  await alice.close();
  const store = SqliteStore.open({ path: join(path, 'umbra.db'), key: KEY_A });
  const db = store.rawForTests();
  const rows = db.prepare('SELECT invitation_id, state FROM inboxes').all() as { invitation_id: Buffer; state: Buffer }[];
  db.prepare('UPDATE inboxes SET state = ? WHERE invitation_id = ?').run(rows[1]!.state, rows[0]!.invitation_id);
  store.close();
  await assert.rejects(Client.open({ delivery: net.adapter(), dataDir: path, key: KEY_A }), { code: 'store-corrupt' });
  cleanup();
});

test('identity restore from an exported account key; a store holding another identity refuses it', async () => {
  const { dir, cleanup } = tempDir();
  const net = new MemoryNetwork();
  const a = await Client.open({ delivery: net.adapter(), dataDir: join(dir, '1'), key: KEY_A, ...FAST });
  const key = a.exportAccountKey();
  const id = a.accountId;
  await a.close();
  const restored = await Client.open({ delivery: net.adapter(), dataDir: join(dir, '2'), key: KEY_A, restoreAccountKey: key, ...FAST });
  assert.equal(restored.accountId, id);
  await restored.close();
  await assert.rejects(
    Client.open({ delivery: net.adapter(), dataDir: join(dir, '2'), key: KEY_A, restoreAccountKey: new Uint8Array(32).fill(9) }),
    { code: 'invalid-argument' },
  );
  cleanup();
});
