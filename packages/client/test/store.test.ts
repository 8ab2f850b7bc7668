/**
 * The SQLite store only: schema migrations (including 2 → 3 on a store made by the release
 * before issue 15), encryption at rest, wrong keys, locking, the legacy missing-message rows.
 * What every Store must do is in store-contract.ts (run by store-contract.test.ts).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, MemoryNetwork, SqliteStore, SCHEMA_VERSION, DEFAULT_ARGON2ID } from '../src/node.ts';
import { MIGRATIONS } from '../src/sqlite-store.ts';
import { SqliteStore as ReleaseSqliteStore } from './fixtures/legacy-store/v2/sqlite-store.ts';
import { FAST, KEY_A, KEY_B, connect, tempDir, texts, waitFor } from './helpers.ts';

const CHEAP = { m: 256, t: 1, p: 1 };
const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});
function scratch(): string {
  const t = tempDir('umbra-store-');
  cleanups.push(t.cleanup);
  return t.dir;
}

test('a new store is migrated to the current schema (3); WAL; a newer schema is refused', async () => {
  const path = join(scratch(), 's.db');
  const store = await SqliteStore.open({ path, key: KEY_A });
  const db = store.rawForTests();
  assert.equal(SCHEMA_VERSION, 3);
  assert.equal(MIGRATIONS.length, SCHEMA_VERSION);
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map((t) => t.name);
  for (const t of ['service_account', 'directory_states', 'settings']) assert.ok(tables.includes(t), t);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  await store.close();
  await assert.rejects(SqliteStore.open({ path, key: KEY_A }), { code: 'store-unsupported-version' });
});

/** A data dir's store exactly as the release before issue 15 left it (schema 2, whole-file encrypted). */
function releaseBatch() {
  const now = 1_770_000_000_000;
  const conversationId = 'c1' + randomBytes(15).toString('hex');
  const messageId = randomBytes(16);
  return {
    conversationId,
    messageId,
    batch: {
      account: { publicKey: randomBytes(32), secretKey: randomBytes(32), profileName: 'Release Profile', createdAt: now },
      inboxes: [{ invitationId: randomBytes(16), state: Buffer.from('inbox'), isDefault: true, expiresAt: now + 5, createdAt: now }],
      conversations: [{ meta: { id: conversationId, consent: 'allowed' as const, origin: 'accepted' as const, lamport: 4, recentIds: [messageId], createdAt: now, lastActivityAt: now }, state: Buffer.from('record') }],
      messages: [{ conversationId, messageId, outgoing: false, lamport: 4, sentAt: now, receivedAt: now, body: Buffer.from('hello from the release'), status: 'received' as const, read: false }],
      outboxPut: [{ conversationId, messageId: randomBytes(16), kind: 'content' as const, lamport: 5, envelope: null, hintHour: -1, hintIndex: -1, attempts: 0, nextAttemptAt: now, createdAt: now }],
      seenEnvelopes: [{ hash: randomBytes(32), conversationId, messageId, seenAt: now }],
      missingPut: [{ conversationId, messageId: randomBytes(16), noticedAt: now, requests: 2, nextRequestAt: now + 1 }],
      cursors: [{ route: 'route-1', cursor: 'c-9' }],
      groups: [{ chatId: 'chat-1', record: Buffer.from('{"status":"member"}'), updatedAt: now }],
      groupEvents: [{ chatId: 'chat-1', wire: Buffer.from('event-1') }],
      groupMessages: [{ chatId: 'chat-1', messageId: 'gm-1', author: '0x04aa', outgoing: false, clock: 1, sentAt: now, receivedAt: now, entity: Buffer.from('entity-1') }],
    },
  };
}

test('migration 2 → 3: a store made by the release before issue 15 opens with its key or passphrase, keeps everything, gains the new concepts', async () => {
  for (const unlock of [{ key: KEY_A }, { passphrase: 'release pass', argon2id: CHEAP }]) {
    const dir = join(scratch(), 'data');
    mkdirSync(dir);
    const path = join(dir, 'umbra.db');
    const { batch, conversationId, messageId } = releaseBatch();
    const old = ReleaseSqliteStore.open({ path, ...unlock });
    assert.equal(old.rawForTests().pragma('user_version', { simple: true }), 2, 'the fixture writes schema 2');
    old.write(batch);
    old.close();

    const store = await SqliteStore.open({ path, ...('key' in unlock ? { key: unlock.key } : { passphrase: unlock.passphrase }) });
    assert.equal(store.rawForTests().pragma('user_version', { simple: true }), 3);
    const account = await store.account.get();
    assert.deepEqual(Buffer.from(account!.secretKey), Buffer.from(batch.account.secretKey));
    assert.equal(account!.profileName, 'Release Profile');
    assert.equal((await store.account.inboxes()).length, 1);
    const [conv] = await store.conversations.all();
    assert.equal(conv!.meta.id, conversationId);
    assert.deepEqual(conv!.meta.recentIds.map((b) => Buffer.from(b)), [messageId]);
    assert.equal(Buffer.from((await store.messages.get(conversationId, messageId))!.body).toString(), 'hello from the release');
    assert.equal(await store.messages.unreadCount(conversationId), 1);
    assert.equal((await store.outbox.queued(conversationId, 10)).length, 1);
    assert.notEqual(await store.messages.seenEnvelope(batch.seenEnvelopes[0]!.hash), null);
    assert.equal(await store.conversations.cursor('route-1'), 'c-9');
    const missing = await store.conversations.legacyMissing();
    assert.equal(missing.length, 1);
    assert.equal(missing[0]!.requests, 2);
    const [group] = await store.groups.all();
    assert.equal(Buffer.from(group!.events[0]!).toString(), 'event-1');
    assert.equal((await store.groups.message('chat-1', 'gm-1'))!.author, '0x04aa');
    // The new concepts, written and read back across a reopen.
    await store.write({ serviceAccount: '{"v":1}', directoryStates: [{ url: 'https://dir.example', state: '{"d":1}' }], settings: [{ key: 'transport', value: 'waku' }], missingDelete: [missing[0]!] });
    await store.close();
    const again = await SqliteStore.open({ path, ...('key' in unlock ? { key: unlock.key } : { passphrase: unlock.passphrase }) });
    assert.equal(await again.serviceAccount.get(), '{"v":1}');
    assert.equal(await again.directory.get('https://dir.example'), '{"d":1}');
    assert.equal(await again.settings.get('transport'), 'waku');
    assert.deepEqual(await again.conversations.legacyMissing(), []);
    await again.close();
  }
});

test('passphrase store: wrong passphrase, wrong key kind, and a second opener are typed errors', async () => {
  const dir = scratch();
  const path = join(dir, 's.db');
  const store = await SqliteStore.open({ path, passphrase: 'correct horse', argon2id: CHEAP });
  await assert.rejects(SqliteStore.open({ path, passphrase: 'correct horse', argon2id: CHEAP }), { code: 'store-locked' });
  await store.close();
  await assert.rejects(SqliteStore.open({ path, passphrase: 'wrong horse' }), { code: 'wrong-passphrase' });
  await assert.rejects(SqliteStore.open({ path, key: KEY_A }), { code: 'wrong-passphrase' });
  await (await SqliteStore.open({ path, passphrase: 'correct horse' })).close(); // stored parameters are used, not the defaults
  const keyed = join(dir, 'k.db');
  await (await SqliteStore.open({ path: keyed, key: KEY_A })).close();
  await assert.rejects(SqliteStore.open({ path: keyed, key: KEY_B }), { code: 'wrong-passphrase' });
  await assert.rejects(SqliteStore.open({ path: keyed, passphrase: 'x' }), { code: 'wrong-passphrase' });
});

test('bad open options are typed errors', async () => {
  await assert.rejects(SqliteStore.open({ path: ':memory:' } as never), { code: 'invalid-argument' });
  await assert.rejects(SqliteStore.open({ path: ':memory:', key: new Uint8Array(31) }), { code: 'invalid-argument' });
  await assert.rejects(SqliteStore.open({ path: ':memory:', key: KEY_A, passphrase: 'x' }), { code: 'invalid-argument' });
  await assert.rejects(SqliteStore.open({ path: ':memory:', passphrase: '' }), { code: 'invalid-argument' });
  await assert.rejects(SqliteStore.open({ path: ':memory:', key: 'k'.repeat(32) as never }), { code: 'invalid-argument' });
  await assert.rejects(SqliteStore.open({ path: '', key: KEY_A }), { code: 'invalid-argument' });
  await assert.rejects(SqliteStore.open(null as never), { code: 'invalid-argument' });
  await assert.rejects(SqliteStore.open({ path: '/nonexistent-dir/x/y.db', key: KEY_A }), { code: 'store-corrupt' });
  await assert.rejects(SqliteStore.open({ path: join(scratch(), 'p.db'), passphrase: 'x', argon2id: { m: 1, t: 0, p: 1 } }), { code: 'invalid-argument' });
});

test('default Argon2id parameters are not trivially cheap (the cost is printed)', async () => {
  const dir = scratch();
  const t0 = performance.now();
  await (await SqliteStore.open({ path: join(dir, 's.db'), passphrase: 'pw' })).close();
  const ms = performance.now() - t0;
  console.log(`# Argon2id m=${DEFAULT_ARGON2ID.m} KiB t=${DEFAULT_ARGON2ID.t} p=${DEFAULT_ARGON2ID.p}: store creation ${ms.toFixed(0)} ms`);
  assert.ok(ms > 50, 'the KDF is not trivially cheap');
});

test('legacy missing-message rows (a pre-reliability store) are read once and deleted by missingDelete', async () => {
  const path = join(scratch(), 'm.db');
  const store = await SqliteStore.open({ path, key: KEY_A });
  const insert = store.rawForTests().prepare(`INSERT INTO missing (conversation_id, message_id, noticed_at, requests, next_request_at) VALUES (?, ?, ?, ?, ?)`);
  const ids = [randomBytes(16), randomBytes(16), randomBytes(16)];
  insert.run('conv-b', ids[0], 5, 1, 9);
  insert.run('conv-a', ids[1], 7, 0, 8);
  insert.run('conv-a', ids[2], 6, 3, 7);
  const rows = await store.conversations.legacyMissing();
  assert.deepEqual(
    rows.map((r) => [r.conversationId, r.noticedAt, r.requests, r.nextRequestAt]),
    [['conv-a', 6, 3, 7], ['conv-a', 7, 0, 8], ['conv-b', 5, 1, 9]],
    'ordered by conversation, then noticedAt',
  );
  assert.deepEqual(Buffer.from(rows[0]!.messageId), ids[2]);
  await store.write({ missingDelete: [{ conversationId: 'conv-a', messageId: ids[2]! }, { conversationId: 'conv-b', messageId: ids[0]! }] });
  assert.deepEqual((await store.conversations.legacyMissing()).map((r) => Buffer.from(r.messageId)), [ids[1]]);
  await store.close();
});

test('a write that breaks a constraint inside the transaction rolls all of it back', async () => {
  // validateBatch stops malformed input before SQLite; this reaches SQLite's own foreign key check.
  const store = await SqliteStore.open({ path: ':memory:', key: KEY_A });
  await assert.rejects(
    store.write({ settings: [{ key: 'k', value: 'v' }], groupEvents: [{ chatId: 'no-such-group', wire: new Uint8Array([1]) }] }),
    { code: 'invalid-argument' },
  );
  assert.equal(await store.settings.get('k'), null);
  assert.equal(store.rawForTests().inTransaction, false);
  await store.close();
});

test('secrets are encrypted at rest: no key, body or name appears in the file', async () => {
  const dir = scratch();
  const net = new MemoryNetwork();
  const alice = await Client.open({ delivery: net.adapter(), dataDir: join(dir, 'a'), passphrase: 'pw', argon2id: CHEAP, profile: { name: 'AliceUniqueName' }, ...FAST });
  const bob = await Client.open({ delivery: net.adapter(), dataDir: join(dir, 'b'), key: KEY_B, profile: { name: 'BobUniqueName' }, ...FAST });
  const conv = await connect(alice, bob);
  await alice.send(conv.id, 'SECRET-PLAINTEXT-MARKER');
  await waitFor(async () => (await texts(bob, conv.id)).length === 1);
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
  assert.deepEqual(await texts(again, conv.id), ['>SECRET-PLAINTEXT-MARKER']);
  await again.close();
});

test('swapped or edited pages of the file are reported as store-corrupt, never half-loaded', async () => {
  // Rows are no longer sealed one by one: the whole file is (docs/STORE.md). What the row-key
  // binding used to stop, someone without the key moving one conversation's secrets to another
  // row, now means moving pages, and each page's tag binds its page number.
  const path = join(scratch(), 'x.db');
  const store = await SqliteStore.open({ path, key: KEY_A });
  for (let i = 0; i < 40; i++) {
    await store.write({
      inboxes: [{ invitationId: new Uint8Array(16).fill(i), state: new Uint8Array(300).fill(i), isDefault: i === 0, expiresAt: 1, createdAt: i }],
    });
  }
  await store.close();
  const pristine = readFileSync(path);
  const page = 4096;
  assert.ok(pristine.length >= 4 * page);
  const swapped = Buffer.from(pristine);
  pristine.copy(swapped, 2 * page, 3 * page, 4 * page);
  pristine.copy(swapped, 3 * page, 2 * page, 3 * page);
  writeFileSync(path, swapped);
  await assert.rejects(async () => {
    const s = await SqliteStore.open({ path, key: KEY_A });
    try {
      await s.account.inboxes();
    } finally {
      await s.close();
    }
  }, { code: 'store-corrupt' });
  writeFileSync(path, pristine);
  const again = await SqliteStore.open({ path, key: KEY_A });
  assert.equal((await again.account.inboxes()).length, 40);
  await again.close();
});

test('identity restore from an exported account key; a store holding another identity refuses it', async () => {
  const dir = scratch();
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
});
