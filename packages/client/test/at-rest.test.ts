/**
 * Secrets at rest (issue 14, row 7, client half): the store is encrypted as a whole file, a wrong
 * passphrase changes nothing, stores and services.json made by the previous release migrate,
 * and every file is 0600 in a 0700 directory.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, MemoryNetwork, SqliteStore, FileStateStore, MailboxDelivery, type StoreBatch, type ServicesState } from '../src/node.ts';
import { SqliteStore as LegacySqliteStore } from './fixtures/legacy-store/sqlite-store.ts';
import { FileStateStore as LegacyFileStateStore } from './fixtures/legacy-store/services-state.ts';
import { FAST, KEY_A, tempDir } from './helpers.ts';

const CHEAP = { m: 256, t: 1, p: 1 };
const cleanups: (() => void)[] = [];
const children = new Set<ReturnType<typeof spawn>>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const c of cleanups) c();
});
function scratch(): string {
  const t = tempDir('umbra-at-rest-');
  cleanups.push(t.cleanup);
  return t.dir;
}

const CONV_ID = 'c0ffee' + randomBytes(13).toString('hex');
const MESSAGE_ID = randomBytes(16);
const GROUP_CHAT_ID = 'group-' + randomBytes(8).toString('hex');
const BODY = 'BODY-MARKER-' + randomBytes(6).toString('hex');
const PROFILE = 'ProfileNameMarker' + randomBytes(4).toString('hex');
const SECRET_KEY = randomBytes(32);

/** A batch touching every table, with values we can look for in the raw bytes. */
function everyTable(): StoreBatch {
  const now = 1_760_000_000_000;
  return {
    account: { publicKey: randomBytes(32), secretKey: SECRET_KEY, profileName: PROFILE, createdAt: now },
    inboxes: [{ invitationId: randomBytes(16), state: Buffer.from('INBOX-STATE-MARKER'), isDefault: true, expiresAt: now + 1, createdAt: now }],
    conversations: [
      {
        meta: { id: CONV_ID, consent: 'allowed', origin: 'accepted', lamport: 3, recentIds: [MESSAGE_ID], createdAt: now, lastActivityAt: now },
        state: Buffer.from('RATCHET-STATE-MARKER'),
      },
    ],
    messages: [
      { conversationId: CONV_ID, messageId: MESSAGE_ID, outgoing: true, lamport: 3, sentAt: now, receivedAt: null, body: Buffer.from(BODY), status: 'sent', read: true },
    ],
    outboxPut: [
      { conversationId: CONV_ID, messageId: MESSAGE_ID, kind: 'content', lamport: 3, envelope: Buffer.from('ENVELOPE'), hintHour: 1, hintIndex: 2, attempts: 0, nextAttemptAt: now, createdAt: now },
    ],
    seenEnvelopes: [{ hash: randomBytes(32), conversationId: CONV_ID, messageId: MESSAGE_ID, seenAt: now }],
    missingPut: [{ conversationId: CONV_ID, messageId: randomBytes(16), noticedAt: now, requests: 1, nextRequestAt: now }],
    cursors: [{ route: 'route-marker', cursor: '42' }],
    groups: [{ chatId: GROUP_CHAT_ID, record: Buffer.from('GROUP-RECORD-MARKER'), updatedAt: now }],
    groupEvents: [{ chatId: GROUP_CHAT_ID, wire: Buffer.from('GROUP-EVENT-MARKER') }],
    groupMessages: [
      { chatId: GROUP_CHAT_ID, messageId: 'gm-' + randomBytes(8).toString('hex'), author: 'author-marker', outgoing: false, clock: 1, sentAt: now, receivedAt: now, entity: Buffer.from('GROUP-ENTITY-MARKER') },
    ],
  };
}

/** Everything a reader of the file could see: the store, its WAL, and its key header. */
function rawFiles(path: string): Buffer {
  return Buffer.concat(['', '-wal', '-shm', '.kdf'].map((s) => (existsSync(path + s) ? readFileSync(path + s) : Buffer.alloc(0))));
}

const NEEDLES = (): [string, Buffer][] => [
  ['conversation id', Buffer.from(CONV_ID)],
  ['message id', MESSAGE_ID],
  ['message id (hex)', Buffer.from(MESSAGE_ID.toString('hex'))],
  ['group chat id', Buffer.from(GROUP_CHAT_ID)],
  ['body', Buffer.from(BODY)],
  ['profile name', Buffer.from(PROFILE)],
  ['account secret', SECRET_KEY],
  ['ratchet state', Buffer.from('RATCHET-STATE-MARKER')],
  ['route', Buffer.from('route-marker')],
  ['group author', Buffer.from('author-marker')],
];

function assertNoPlaintext(path: string, open: boolean): void {
  const raw = rawFiles(path);
  for (const [what, needle] of NEEDLES()) assert.equal(raw.includes(needle), false, `${what} readable in the file (store ${open ? 'open' : 'closed'})`);
  assert.equal(raw.includes(Buffer.from('SQLite format 3')), false, 'the file is a clear SQLite database');
}

function assertEveryTable(store: SqliteStore, batch: StoreBatch): void {
  const snap = store.load();
  assert.equal(snap.account?.profileName, PROFILE);
  assert.deepEqual(Buffer.from(snap.account!.secretKey), SECRET_KEY);
  assert.deepEqual(Buffer.from(snap.conversations[0]!.state).toString(), 'RATCHET-STATE-MARKER');
  assert.equal(snap.conversations[0]!.meta.id, CONV_ID);
  assert.deepEqual(Buffer.from(snap.inboxes[0]!.state).toString(), 'INBOX-STATE-MARKER');
  assert.equal(Buffer.from(store.message(CONV_ID, MESSAGE_ID)!.body).toString(), BODY);
  assert.equal(store.outbox(CONV_ID).length, 1);
  assert.equal(store.missingCount(CONV_ID), 1);
  assert.notEqual(store.seenEnvelope(batch.seenEnvelopes![0]!.hash), null);
  assert.equal(store.cursor('route-marker'), '42');
  const groups = store.loadGroups();
  assert.equal(Buffer.from(groups[0]!.group.record).toString(), 'GROUP-RECORD-MARKER');
  assert.equal(Buffer.from(groups[0]!.events[0]!).toString(), 'GROUP-EVENT-MARKER');
  assert.equal(Buffer.from(store.groupMessages(GROUP_CHAT_ID, 10, null)[0]!.entity).toString(), 'GROUP-ENTITY-MARKER');
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('the whole file is encrypted: no id, body, name or secret in the store, its WAL or its key header', () => {
  const dir = scratch();
  for (const unlock of [{ passphrase: 'correct horse', argon2id: CHEAP }, { key: KEY_A }]) {
    const path = join(dir, `${'key' in unlock ? 'key' : 'pw'}.db`);
    const batch = everyTable();
    const store = SqliteStore.open({ path, ...unlock });
    store.write(batch);
    assertNoPlaintext(path, true); // with the WAL holding the last transactions
    store.close();
    assertNoPlaintext(path, false);
    const again = SqliteStore.open({ path, ...unlock });
    assertEveryTable(again, batch);
    again.close();
  }
  // The control: the same grep finds the ids in a store made by the previous release.
  const legacy = join(dir, 'legacy.db');
  const old = LegacySqliteStore.open({ path: legacy, key: KEY_A });
  old.write(everyTable());
  old.close();
  const raw = rawFiles(legacy);
  assert.ok(raw.includes(Buffer.from(CONV_ID)) && raw.includes(MESSAGE_ID), 'the previous format kept ids in clear');
});

test('a wrong passphrase or key is a typed error and leaves the files byte for byte as they were', () => {
  const dir = scratch();
  const path = join(dir, 'umbra.db');
  const batch = everyTable();
  const store = SqliteStore.open({ path, passphrase: 'correct horse', argon2id: CHEAP });
  store.write(batch);
  store.close();
  const before = sha(rawFiles(path));
  assert.throws(() => SqliteStore.open({ path, passphrase: 'wrong horse' }), { code: 'wrong-passphrase' });
  assert.throws(() => SqliteStore.open({ path, key: KEY_A }), { code: 'wrong-passphrase' });
  assert.equal(sha(rawFiles(path)), before, 'a failed unlock wrote nothing');
  const again = SqliteStore.open({ path, passphrase: 'correct horse' });
  assertEveryTable(again, batch);
  again.close();
  // An app-key store refuses other keys the same way.
  const keyed = join(dir, 'keyed.db');
  SqliteStore.open({ path: keyed, key: KEY_A }).close();
  const keyedBefore = sha(rawFiles(keyed));
  assert.throws(() => SqliteStore.open({ path: keyed, key: new Uint8Array(32).fill(7) }), { code: 'wrong-passphrase' });
  assert.equal(sha(rawFiles(keyed)), keyedBefore);
});

test('a damaged page, a lost key header or a hostile header is a typed error, never a crash or a half-read store', () => {
  const dir = scratch();
  const path = join(dir, 'umbra.db');
  const store = SqliteStore.open({ path, key: KEY_A });
  store.write(everyTable());
  store.close();
  const pristine = readFileSync(path);
  assert.ok(pristine.length >= 3 * 4096, 'several pages');
  let detected = 0;
  for (let page = 1; page < pristine.length / 4096; page++) {
    const damaged = Buffer.from(pristine);
    damaged[page * 4096 + 100]! ^= 0x01;
    writeFileSync(path, damaged);
    let opened: SqliteStore | null = null;
    try {
      opened = SqliteStore.open({ path, key: KEY_A });
      opened.load();
      opened.loadGroups();
      opened.groupMessages(GROUP_CHAT_ID, 10, null);
      opened.message(CONV_ID, MESSAGE_ID);
    } catch (e) {
      assert.ok(['store-corrupt', 'wrong-passphrase'].includes((e as { code?: string }).code ?? ''), `page ${page}: ${(e as Error).message}`);
      detected++;
      continue;
    } finally {
      opened?.close();
    }
    // A page no read above touches (a free page or an index the reads did not use) is acceptable to miss.
  }
  assert.ok(detected >= 3, `damage detected on ${detected} pages`);
  writeFileSync(path, pristine);
  const header = readFileSync(`${path}.kdf`);
  writeFileSync(`${path}.kdf`, '{"format":"umbra-store-kdf/v2","alg":"argon2id","version":19,"m":4294967295,"t":1,"p":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA"}');
  assert.throws(() => SqliteStore.open({ path, passphrase: 'x' }), { code: 'store-corrupt' }); // out-of-range memory: refused, not attempted
  writeFileSync(`${path}.kdf`, 'not json');
  assert.throws(() => SqliteStore.open({ path, key: KEY_A }), { code: 'store-corrupt' });
  writeFileSync(`${path}.kdf`, header);
  SqliteStore.open({ path, key: KEY_A }).close();
});

/** A data dir exactly as the previous release left it: a clear store with per-row sealing, services.json under scrypt. */
function makeLegacyDataDir(dir: string, passphrase: string): { batch: StoreBatch; services: ServicesState } {
  mkdirSync(dir, { recursive: true });
  const batch = everyTable();
  const old = LegacySqliteStore.open({ path: join(dir, 'umbra.db'), passphrase }); // its own defaults: Argon2id t=1, 19 MiB
  old.write(batch);
  old.close();
  const services: ServicesState = {
    v: 1,
    issuer: { url: 'http://127.0.0.1:1/issuer', secret: 'issuer-secret-marker', serviceKey: 'k1' },
    ssa: { url: 'http://127.0.0.1:1/ssa', serviceKey: 'k2' },
    rsas: [],
    tokens: { 'http://127.0.0.1:1': ['token-marker'] },
  };
  new LegacyFileStateStore(join(dir, 'services.json'), passphrase).save(services);
  return { batch, services };
}

test('a data dir made by the previous release opens with the same passphrase and is migrated', () => {
  const dir = join(scratch(), 'data');
  const { batch, services } = makeLegacyDataDir(dir, 'old pass');
  const path = join(dir, 'umbra.db');
  assert.ok(readFileSync(path).subarray(0, 15).equals(Buffer.from('SQLite format 3')), 'the fixture is a clear store');
  const legacyBytes = sha(rawFiles(path));
  const legacyServices = readFileSync(join(dir, 'services.json'), 'utf8');

  // A wrong passphrase changes neither file.
  assert.throws(() => SqliteStore.open({ path, passphrase: 'not it' }), { code: 'wrong-passphrase' });
  assert.throws(() => new FileStateStore(join(dir, 'services.json'), 'not it').load(), { code: 'wrong-passphrase' });
  assert.equal(sha(rawFiles(path)), legacyBytes);
  assert.equal(readFileSync(join(dir, 'services.json'), 'utf8'), legacyServices);

  // services.json first (the CLI opens the delivery before the store), then the store: one key header for both.
  assert.deepEqual(new FileStateStore(join(dir, 'services.json'), 'old pass').load(), services);
  assert.match(readFileSync(join(dir, 'services.json'), 'utf8'), /umbra-services-state-v2/);
  const store = SqliteStore.open({ path, passphrase: 'old pass' });
  assertEveryTable(store, batch);
  store.close();
  assertNoPlaintext(path, false);
  assert.equal(existsSync(`${path}.migrating`), false);
  const header = JSON.parse(readFileSync(`${path}.kdf`, 'utf8')) as Record<string, unknown>;
  assert.deepEqual([header.alg, header.t, header.p, header.m], ['argon2id', 3, 4, 65536], 'RFC 9106 parameters for the new key');
  // Both open again without a second migration, and services.json is no longer under scrypt.
  const reopened = SqliteStore.open({ path, passphrase: 'old pass' });
  assertEveryTable(reopened, batch);
  reopened.close();
  assert.deepEqual(new FileStateStore(join(dir, 'services.json'), 'old pass').load(), services);
  assert.throws(() => new LegacyFileStateStore(join(dir, 'services.json'), 'old pass').load());
});

test('an app-key store of the previous release, with transactions still in its WAL, migrates; a stale half-written migration is discarded', () => {
  const root = scratch();
  const live = join(root, 'live');
  mkdirSync(live);
  const old = LegacySqliteStore.open({ path: join(live, 'umbra.db'), key: KEY_A });
  const batch = everyTable();
  old.write(batch);
  // Copy the files while the old store is open: as after a crash, the last transactions are only in the WAL.
  const crashed = join(root, 'crashed');
  cpSync(live, crashed, { recursive: true });
  old.close();
  assert.ok(existsSync(join(crashed, 'umbra.db-wal')), 'the copy holds a WAL');
  writeFileSync(join(crashed, 'umbra.db.migrating'), randomBytes(5000)); // left by an interrupted earlier attempt
  const path = join(crashed, 'umbra.db');
  const store = SqliteStore.open({ path, key: KEY_A });
  assertEveryTable(store, batch);
  store.close();
  assertNoPlaintext(path, false);
  assert.equal(existsSync(`${path}.migrating`), false);
});

test('a migration killed at any point loses nothing: the next open finds the old store or the new one', async () => {
  const root = scratch();
  const pristine = join(root, 'pristine');
  const { batch } = makeLegacyDataDir(pristine, 'old pass');
  const child = join(import.meta.dirname, 'fixtures', 'open-store-child.ts');
  const seen = { old: 0, migrated: 0 };
  const run = (path: string, killAfterMs: number | null) =>
    new Promise<number>((resolve) => {
      const t0 = performance.now();
      const proc = spawn(process.execPath, ['--import', 'tsx', child, path], { env: { ...process.env, UMBRA_TEST_PASSPHRASE: 'old pass' }, stdio: 'ignore' });
      children.add(proc);
      const timer = killAfterMs === null ? null : setTimeout(() => proc.kill('SIGKILL'), killAfterMs);
      proc.on('exit', () => {
        if (timer !== null) clearTimeout(timer);
        children.delete(proc);
        resolve(performance.now() - t0);
      });
    });
  // One run to the end gives the child's duration (start-up, two key derivations, the copy, the rename).
  const full = join(root, 'full');
  cpSync(pristine, full, { recursive: true });
  const totalMs = await run(join(full, 'umbra.db'), null);
  assert.equal(readFileSync(join(full, 'umbra.db')).subarray(0, 15).equals(Buffer.from('SQLite format 3')), false, 'the child migrates');
  for (const fraction of [0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1]) {
    const dir = join(root, `kill-${fraction}`);
    cpSync(pristine, dir, { recursive: true });
    const path = join(dir, 'umbra.db');
    await run(path, Math.round(totalMs * fraction));
    if (readFileSync(path).subarray(0, 15).equals(Buffer.from('SQLite format 3'))) seen.old++;
    else seen.migrated++;
    const store = SqliteStore.open({ path, passphrase: 'old pass' });
    assertEveryTable(store, batch);
    store.close();
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.migrating')), []);
  }
  console.log(`# kill points over ${totalMs.toFixed(0)} ms: ${seen.old} found the old store, ${seen.migrated} the migrated one`);
});

test('file modes: a fresh store, its WAL and key header, services.json and the mailbox are 0600 in 0700 directories (even with umask 0)', () => {
  const root = scratch();
  const previous = process.umask(0);
  try {
    const dataDir = join(root, 'data');
    mkdirSync(dataDir, { mode: 0o755 }); // as Client.open creates it
    const path = join(dataDir, 'umbra.db');
    const store = SqliteStore.open({ path, passphrase: 'pw', argon2id: CHEAP });
    store.write(everyTable());
    new FileStateStore(join(dataDir, 'services.json'), 'pw').save({ v: 1, issuer: { url: 'u', secret: 's', serviceKey: 'k' }, ssa: { url: 'u', serviceKey: 'k' }, rsas: [], tokens: {} });
    assert.equal(statSync(dataDir).mode & 0o777, 0o700, 'data dir');
    for (const f of ['umbra.db', 'umbra.db-wal', 'umbra.db.kdf', 'services.json']) {
      assert.equal(statSync(join(dataDir, f)).mode & 0o777, 0o600, f);
    }
    store.close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const mailboxPath = join(root, 'mailbox-dir', 'mailbox.db');
    const mailbox = new MailboxDelivery(mailboxPath);
    void mailbox.publish('r', new Uint8Array([1]));
    assert.equal(statSync(join(root, 'mailbox-dir')).mode & 0o777, 0o700, 'mailbox dir');
    for (const f of ['mailbox.db', 'mailbox.db-wal', 'mailbox.db-shm']) assert.equal(statSync(join(root, 'mailbox-dir', f)).mode & 0o777, 0o600, f);
    mailbox.close();
  } finally {
    process.umask(previous);
  }
});

test('file modes of a fresh client data dir made by Client.open', async () => {
  const dataDir = join(scratch(), 'fresh-client');
  const client = await Client.open({ delivery: new MemoryNetwork().adapter(), dataDir, passphrase: 'pw', argon2id: CHEAP, profile: { name: 'x' }, ...FAST });
  await client.createInvitation();
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  for (const f of readdirSync(dataDir)) assert.equal(statSync(join(dataDir, f)).mode & 0o777, 0o600, f);
  assert.ok(readdirSync(dataDir).includes('umbra.db.kdf'));
  await client.close();
  for (const f of readdirSync(dataDir)) assert.equal(statSync(join(dataDir, f)).mode & 0o777, 0o600, f);
});
