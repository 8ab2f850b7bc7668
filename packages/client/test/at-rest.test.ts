/**
 * Secrets at rest (issue 14, row 7, client half; issue 15): the store is encrypted as a whole
 * file, a wrong passphrase changes nothing, stores and services.json made by the previous
 * releases migrate (services.json into the store, then deleted), every file is 0600 in a 0700
 * directory, and the native and noble Argon2id agree.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, MemoryNetwork, SqliteStore, MailboxDelivery, openStore, type Store, type StoreBatch } from '../src/node.ts';
import Database from 'better-sqlite3-multiple-ciphers';
import { deriveSubkey, keySqliteDatabase, nativeArgon2id } from '../src/at-rest.ts';
import { nobleArgon2id, DEFAULT_ARGON2ID } from '../src/at-rest-scheme.ts';
import type { StoreBatch as LegacyStoreBatch } from './fixtures/legacy-store/store.ts';
import { SqliteStore as LegacySqliteStore } from './fixtures/legacy-store/sqlite-store.ts';
import { FileStateStore as LegacyFileStateStore } from './fixtures/legacy-store/services-state.ts';
import { FileStateStore as ReleaseFileStateStore } from './fixtures/legacy-store/v2/file-state-store.ts';
import { SqliteStore as ReleaseSqliteStore } from './fixtures/legacy-store/v2/sqlite-store.ts';
import type { ServicesState } from './fixtures/legacy-store/v2/state.ts';
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

/** A batch touching every table of the earlier releases, with values we can look for in the raw bytes. */
function everyTable(): LegacyStoreBatch {
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

/** The same for today's schema: no missing rows (that table is legacy), plus the concepts that were side files. */
function everyTableNow(): StoreBatch {
  const { missingPut: _legacyOnly, ...rest } = everyTable();
  return {
    ...rest,
    serviceAccount: JSON.stringify({ issuerSecret: 'SERVICE-ACCOUNT-MARKER' }),
    directoryStates: [{ url: 'https://directory-marker.example', state: '{"DIRECTORY-STATE-MARKER":1}' }],
    settings: [{ key: 'setting-key-marker', value: 'SETTING-VALUE-MARKER' }],
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
  ['service account', Buffer.from('SERVICE-ACCOUNT-MARKER')],
  ['directory state', Buffer.from('DIRECTORY-STATE-MARKER')],
  ['setting', Buffer.from('SETTING-VALUE-MARKER')],
];

function assertNoPlaintext(path: string, open: boolean): void {
  const raw = rawFiles(path);
  for (const [what, needle] of NEEDLES()) assert.equal(raw.includes(needle), false, `${what} readable in the file (store ${open ? 'open' : 'closed'})`);
  assert.equal(raw.includes(Buffer.from('SQLite format 3')), false, 'the file is a clear SQLite database');
}

async function assertEveryTable(store: Store, batch: LegacyStoreBatch | StoreBatch): Promise<void> {
  const account = await store.account.get();
  assert.equal(account?.profileName, PROFILE);
  assert.deepEqual(Buffer.from(account!.secretKey), SECRET_KEY);
  const conversations = await store.conversations.all();
  assert.deepEqual(Buffer.from(conversations[0]!.state).toString(), 'RATCHET-STATE-MARKER');
  assert.equal(conversations[0]!.meta.id, CONV_ID);
  assert.deepEqual(Buffer.from((await store.account.inboxes())[0]!.state).toString(), 'INBOX-STATE-MARKER');
  assert.equal(Buffer.from((await store.messages.get(CONV_ID, MESSAGE_ID))!.body).toString(), BODY);
  assert.equal((await store.outbox.forConversation(CONV_ID)).length, 1);
  assert.equal((await store.conversations.legacyMissing()).length, 'missingPut' in batch ? 1 : 0);
  assert.notEqual(await store.messages.seenEnvelope(batch.seenEnvelopes![0]!.hash), null);
  assert.equal(await store.conversations.cursor('route-marker'), '42');
  const groups = await store.groups.all();
  assert.equal(Buffer.from(groups[0]!.group.record).toString(), 'GROUP-RECORD-MARKER');
  assert.equal(Buffer.from(groups[0]!.events[0]!).toString(), 'GROUP-EVENT-MARKER');
  assert.equal(Buffer.from((await store.groups.messages(GROUP_CHAT_ID, 10, null))[0]!.entity).toString(), 'GROUP-ENTITY-MARKER');
  if ('serviceAccount' in batch) {
    assert.equal(await store.serviceAccount.get(), batch.serviceAccount);
    assert.equal(await store.directory.get('https://directory-marker.example'), '{"DIRECTORY-STATE-MARKER":1}');
    assert.equal(await store.settings.get('setting-key-marker'), 'SETTING-VALUE-MARKER');
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('the whole file is encrypted: no id, body, name or secret in the store, its WAL or its key header', async () => {
  const dir = scratch();
  for (const unlock of [{ passphrase: 'correct horse', argon2id: CHEAP }, { key: KEY_A }]) {
    const path = join(dir, `${'key' in unlock ? 'key' : 'pw'}.db`);
    const batch = everyTableNow();
    const store = await SqliteStore.open({ path, ...unlock });
    await store.write(batch);
    assertNoPlaintext(path, true); // with the WAL holding the last transactions
    await store.close();
    assertNoPlaintext(path, false);
    const again = await SqliteStore.open({ path, ...unlock });
    await assertEveryTable(again, batch);
    await again.close();
  }
  // The control: the same grep finds the ids in a store made by the first release.
  const legacy = join(dir, 'legacy.db');
  const old = LegacySqliteStore.open({ path: legacy, key: KEY_A });
  old.write(everyTable());
  old.close();
  const raw = rawFiles(legacy);
  assert.ok(raw.includes(Buffer.from(CONV_ID)) && raw.includes(MESSAGE_ID), 'the previous format kept ids in clear');
});

test('a wrong passphrase or key is a typed error and leaves the files byte for byte as they were', async () => {
  const dir = scratch();
  const path = join(dir, 'umbra.db');
  const batch = everyTableNow();
  const store = await SqliteStore.open({ path, passphrase: 'correct horse', argon2id: CHEAP });
  await store.write(batch);
  await store.close();
  const before = sha(rawFiles(path));
  await assert.rejects(SqliteStore.open({ path, passphrase: 'wrong horse' }), { code: 'wrong-passphrase' });
  await assert.rejects(SqliteStore.open({ path, key: KEY_A }), { code: 'wrong-passphrase' });
  assert.equal(sha(rawFiles(path)), before, 'a failed unlock wrote nothing');
  const again = await SqliteStore.open({ path, passphrase: 'correct horse' });
  await assertEveryTable(again, batch);
  await again.close();
  // An app-key store refuses other keys the same way.
  const keyed = join(dir, 'keyed.db');
  await (await SqliteStore.open({ path: keyed, key: KEY_A })).close();
  const keyedBefore = sha(rawFiles(keyed));
  await assert.rejects(SqliteStore.open({ path: keyed, key: new Uint8Array(32).fill(7) }), { code: 'wrong-passphrase' });
  assert.equal(sha(rawFiles(keyed)), keyedBefore);
});

test('a damaged page, a lost key header or a hostile header is a typed error, never a crash or a half-read store', async () => {
  const dir = scratch();
  const path = join(dir, 'umbra.db');
  const store = await SqliteStore.open({ path, key: KEY_A });
  await store.write(everyTableNow());
  await store.close();
  const pristine = readFileSync(path);
  assert.ok(pristine.length >= 3 * 4096, 'several pages');
  let detected = 0;
  for (let page = 1; page < pristine.length / 4096; page++) {
    const damaged = Buffer.from(pristine);
    damaged[page * 4096 + 100]! ^= 0x01;
    writeFileSync(path, damaged);
    let opened: SqliteStore | null = null;
    try {
      opened = await SqliteStore.open({ path, key: KEY_A });
      await opened.account.get();
      await opened.account.inboxes();
      await opened.conversations.all();
      await opened.groups.all();
      await opened.groups.messages(GROUP_CHAT_ID, 10, null);
      await opened.messages.get(CONV_ID, MESSAGE_ID);
      await opened.serviceAccount.get();
      await opened.settings.get('setting-key-marker');
    } catch (e) {
      assert.ok(['store-corrupt', 'wrong-passphrase'].includes((e as { code?: string }).code ?? ''), `page ${page}: ${(e as Error).message}`);
      detected++;
      continue;
    } finally {
      await opened?.close();
    }
    // A page no read above touches (a free page or an index the reads did not use) is acceptable to miss.
  }
  assert.ok(detected >= 3, `damage detected on ${detected} pages`);
  writeFileSync(path, pristine);
  const header = readFileSync(`${path}.kdf`);
  writeFileSync(`${path}.kdf`, '{"format":"umbra-store-kdf/v2","alg":"argon2id","version":19,"m":4294967295,"t":1,"p":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA"}');
  await assert.rejects(SqliteStore.open({ path, passphrase: 'x' }), { code: 'store-corrupt' }); // out-of-range memory: refused, not attempted
  writeFileSync(`${path}.kdf`, 'not json');
  await assert.rejects(SqliteStore.open({ path, key: KEY_A }), { code: 'store-corrupt' });
  writeFileSync(`${path}.kdf`, header);
  await (await SqliteStore.open({ path, key: KEY_A })).close();
});

/** Whether the store file at `path` opens under `cipher` with the app key's store subkey (the header not consulted). */
function opensAs(path: string, cipher: 'aegis' | 'chacha20'): boolean {
  const db = new Database(path, { readonly: true });
  try {
    keySqliteDatabase(db, deriveSubkey(KEY_A, 'store'), cipher);
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return true;
  } catch {
    return false;
  } finally {
    db.close();
  }
}

test('a new store is AEGIS-256 and its key header says so; a store made in ChaCha20-Poly1305 before keeps opening and writing in it; an unknown cipher is store-corrupt', async () => {
  const fresh = join(scratch(), 'umbra.db');
  const store = await SqliteStore.open({ path: fresh, key: KEY_A });
  await store.write(everyTableNow());
  await store.close();
  assert.equal((JSON.parse(readFileSync(`${fresh}.kdf`, 'utf8')) as { cipher?: string }).cipher, 'aegis');
  assert.deepEqual([opensAs(fresh, 'aegis'), opensAs(fresh, 'chacha20')], [true, false]);

  // The release before: no cipher in its header, ChaCha20-Poly1305 pages.
  const dir = join(scratch(), 'data');
  const batch = await makeReleaseDataDir(dir, { key: KEY_A });
  const old = join(dir, 'umbra.db');
  const oldHeader = readFileSync(`${old}.kdf`, 'utf8');
  assert.equal((JSON.parse(oldHeader) as { cipher?: string }).cipher, undefined);
  const opened = await openStore({ dataDir: dir, key: KEY_A });
  await assertEveryTable(opened, batch);
  await opened.write({ settings: [{ key: 'after-the-cipher-change', value: 'kept' }] });
  await opened.close();
  assert.equal(readFileSync(`${old}.kdf`, 'utf8'), oldHeader, 'the header is left as it was');
  assert.deepEqual([opensAs(old, 'aegis'), opensAs(old, 'chacha20')], [false, true]);
  const again = await openStore({ dataDir: dir, key: KEY_A });
  assert.equal(await again.settings.get('after-the-cipher-change'), 'kept');
  await again.close();

  writeFileSync(`${fresh}.kdf`, '{"format":"umbra-store-kdf/v2","alg":"app-key","cipher":"rc4"}');
  await assert.rejects(SqliteStore.open({ path: fresh, key: KEY_A }), { code: 'store-corrupt' });
  // A header naming the other cipher than the file's: the pages do not open, nothing is written.
  writeFileSync(`${fresh}.kdf`, '{"format":"umbra-store-kdf/v2","alg":"app-key","cipher":"chacha20"}');
  const before = rawFiles(fresh);
  await assert.rejects(SqliteStore.open({ path: fresh, key: KEY_A }), { code: 'wrong-passphrase' });
  assert.ok(rawFiles(fresh).equals(before), 'the files are as they were');
});

const SERVICES: ServicesState = {
  v: 1,
  issuer: { url: 'http://127.0.0.1:1/issuer', secret: 'issuer-secret-marker', serviceKey: 'k1' },
  ssa: { url: 'http://127.0.0.1:1/ssa', serviceKey: 'k2' },
  rsas: [],
  tokens: { 'http://127.0.0.1:1': ['token-marker'] },
};

/** A data dir exactly as the first release left it: a clear store with per-row sealing, services.json under scrypt. */
function makeLegacyDataDir(dir: string, passphrase: string): { batch: LegacyStoreBatch; services: ServicesState } {
  mkdirSync(dir, { recursive: true });
  const batch = everyTable();
  const old = LegacySqliteStore.open({ path: join(dir, 'umbra.db'), passphrase }); // its own defaults: Argon2id t=1, 19 MiB
  old.write(batch);
  old.close();
  new LegacyFileStateStore(join(dir, 'services.json'), passphrase).save(SERVICES);
  return { batch, services: SERVICES };
}

test('a data dir made by the first release opens with the same passphrase: the store is migrated, services.json imported and removed', async () => {
  const dir = join(scratch(), 'data');
  const { batch, services } = makeLegacyDataDir(dir, 'old pass');
  const path = join(dir, 'umbra.db');
  assert.ok(readFileSync(path).subarray(0, 15).equals(Buffer.from('SQLite format 3')), 'the fixture is a clear store');
  assert.match(readFileSync(join(dir, 'services.json'), 'utf8'), /umbra-services-state-v1/);
  const legacyBytes = sha(rawFiles(path));
  const legacyServices = readFileSync(join(dir, 'services.json'), 'utf8');

  // A wrong passphrase changes neither file.
  await assert.rejects(openStore({ dataDir: dir, passphrase: 'not it' }), { code: 'wrong-passphrase' });
  assert.equal(sha(rawFiles(path)), legacyBytes);
  assert.equal(readFileSync(join(dir, 'services.json'), 'utf8'), legacyServices);

  const store = await openStore({ dataDir: dir, passphrase: 'old pass' });
  await assertEveryTable(store, batch);
  assert.deepEqual(JSON.parse((await store.serviceAccount.get())!), services);
  assert.equal(existsSync(join(dir, 'services.json')), false, 'services.json is gone once it is in the store');
  await store.close();
  assertNoPlaintext(path, false);
  assert.equal(rawFiles(path).includes(Buffer.from('issuer-secret-marker')), false, 'the services account is encrypted with the store');
  assert.equal(existsSync(`${path}.migrating`), false);
  const header = JSON.parse(readFileSync(`${path}.kdf`, 'utf8')) as Record<string, unknown>;
  assert.deepEqual([header.alg, header.t, header.p, header.m], ['argon2id', 3, 4, 65536], 'RFC 9106 parameters for the new key');
  // It opens again without a second migration or import.
  const reopened = await openStore({ dataDir: dir, passphrase: 'old pass' });
  await assertEveryTable(reopened, batch);
  assert.deepEqual(JSON.parse((await reopened.serviceAccount.get())!), services);
  await reopened.close();
});

/** A data dir exactly as the release before issue 15 left it: encrypted store at schema 2, services.json v2 (or plain). */
async function makeReleaseDataDir(dir: string, unlock: { passphrase: string } | { key: Uint8Array }): Promise<LegacyStoreBatch> {
  mkdirSync(dir, { recursive: true });
  const batch = everyTable();
  // As the CLI ran it: services.json first (it creates the shared key header), then the store.
  const passphrase = 'passphrase' in unlock ? unlock.passphrase : undefined;
  new ReleaseFileStateStore(join(dir, 'services.json'), passphrase, { argon2id: CHEAP }).save(SERVICES);
  const old = ReleaseSqliteStore.open({ path: join(dir, 'umbra.db'), ...unlock, argon2id: CHEAP });
  old.write(batch);
  old.close();
  return batch;
}

test('a data dir of the release before issue 15: schema 2 → 3 and services.json (v2, or plain JSON with an app key) imported in one open', async () => {
  for (const unlock of [{ passphrase: 'release pass' }, { key: KEY_A }]) {
    const dir = join(scratch(), 'data');
    const batch = await makeReleaseDataDir(dir, unlock);
    const services = readFileSync(join(dir, 'services.json'), 'utf8');
    if ('passphrase' in unlock) assert.match(services, /umbra-services-state-v2/);
    else assert.deepEqual(JSON.parse(services), SERVICES, 'without a passphrase the release wrote plain JSON');
    writeFileSync(join(dir, 'services.json.tmp'), 'left by an interrupted write');
    if ('passphrase' in unlock) {
      const before = sha(Buffer.concat([rawFiles(join(dir, 'umbra.db')), readFileSync(join(dir, 'services.json'))]));
      await assert.rejects(openStore({ dataDir: dir, passphrase: 'not it' }), { code: 'wrong-passphrase' });
      assert.equal(sha(Buffer.concat([rawFiles(join(dir, 'umbra.db')), readFileSync(join(dir, 'services.json'))])), before, 'a wrong passphrase changed nothing');
    }
    const store = await openStore({ dataDir: dir, ...unlock });
    assert.equal((store as SqliteStore).rawForTests().pragma('user_version', { simple: true }), 3);
    await assertEveryTable(store, batch);
    assert.deepEqual(JSON.parse((await store.serviceAccount.get())!), SERVICES);
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('services')), [], 'services.json and its temp file are removed');
    await store.close();
    const again = await openStore({ dataDir: dir, ...unlock });
    assert.deepEqual(JSON.parse((await again.serviceAccount.get())!), SERVICES);
    await again.close();
  }
});

test('services.json that does not open is a typed error and stays; the store is left closed and opens once the file is fixed', async () => {
  const dir = join(scratch(), 'data');
  await makeReleaseDataDir(dir, { passphrase: 'pw' });
  const good = readFileSync(join(dir, 'services.json'), 'utf8');
  const file = JSON.parse(good) as { ct: string };
  const damaged = JSON.stringify({ ...file, ct: Buffer.from(Buffer.from(file.ct, 'base64url').map((b, i) => (i === 3 ? b ^ 1 : b))).toString('base64url') });
  for (const [content, code] of [
    [damaged, 'store-corrupt'],
    ['{"not": "closed', 'store-corrupt'],
    [JSON.stringify(SERVICES), 'store-corrupt'], // plain JSON under a passphrase: the releases refused it too
    [JSON.stringify({ format: 'umbra-services-state-v1', kdf: { alg: 'scrypt', N: 2, r: 1, p: 1, salt: 'AAAA' }, nonce: 'x', ct: 'y' }), 'store-corrupt'],
  ] as const) {
    writeFileSync(join(dir, 'services.json'), content);
    await assert.rejects(openStore({ dataDir: dir, passphrase: 'pw' }), { code }, content.slice(0, 40));
    assert.equal(readFileSync(join(dir, 'services.json'), 'utf8'), content, 'the file is kept');
  }
  writeFileSync(join(dir, 'services.json'), good);
  const store = await openStore({ dataDir: dir, passphrase: 'pw' }); // not store-locked: the failed opens closed it
  assert.deepEqual(JSON.parse((await store.serviceAccount.get())!), SERVICES);
  await store.close();
  // A v1 file under another passphrase than the store's.
  new LegacyFileStateStore(join(dir, 'services.json'), 'another pass').save(SERVICES);
  await assert.rejects(openStore({ dataDir: dir, passphrase: 'pw' }), { code: 'wrong-passphrase' });
});

test('the store already holding a services account keeps it; a re-found services.json is only removed', async () => {
  // As after a crash between the import's write and the file's removal, or a file put back by hand.
  const dir = join(scratch(), 'data');
  await makeReleaseDataDir(dir, { key: KEY_A });
  const store = await openStore({ dataDir: dir, key: KEY_A });
  await store.write({ serviceAccount: '{"v":1,"newer":true}' });
  await store.close();
  writeFileSync(join(dir, 'services.json'), JSON.stringify(SERVICES));
  const again = await openStore({ dataDir: dir, key: KEY_A });
  assert.equal(await again.serviceAccount.get(), '{"v":1,"newer":true}');
  assert.equal(existsSync(join(dir, 'services.json')), false);
  await again.close();
});

test('an app-key store of the first release, with transactions still in its WAL, migrates; a stale half-written migration is discarded', async () => {
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
  const store = await SqliteStore.open({ path, key: KEY_A });
  await assertEveryTable(store, batch);
  await store.close();
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
    const store = await SqliteStore.open({ path, passphrase: 'old pass' });
    await assertEveryTable(store, batch);
    await store.close();
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.migrating')), []);
  }
  console.log(`# kill points over ${totalMs.toFixed(0)} ms: ${seen.old} found the old store, ${seen.migrated} the migrated one`);
});

test('file modes: a fresh store, its WAL and key header, and the mailbox are 0600 in 0700 directories (even with umask 0)', async () => {
  const root = scratch();
  const previous = process.umask(0);
  try {
    const dataDir = join(root, 'data');
    mkdirSync(dataDir, { mode: 0o755 }); // as Client.open creates it
    const path = join(dataDir, 'umbra.db');
    const store = await SqliteStore.open({ path, passphrase: 'pw', argon2id: CHEAP });
    await store.write(everyTableNow());
    assert.equal(statSync(dataDir).mode & 0o777, 0o700, 'data dir');
    for (const f of ['umbra.db', 'umbra.db-wal', 'umbra.db.kdf']) {
      assert.equal(statSync(join(dataDir, f)).mode & 0o777, 0o600, f);
    }
    await store.close();
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

test('file modes of a fresh data dir made by openStore (as Client.open does), with nothing beside the store', async () => {
  const dataDir = join(scratch(), 'fresh');
  const store = await openStore({ dataDir, passphrase: 'pw', argon2id: CHEAP });
  await store.write(everyTableNow());
  assert.equal(statSync(dataDir).mode & 0o777, 0o700);
  for (const f of readdirSync(dataDir)) assert.equal(statSync(join(dataDir, f)).mode & 0o777, 0o600, f);
  await store.close();
  assert.deepEqual(readdirSync(dataDir).filter((f) => !f.startsWith('umbra.db')), [], 'no side files');
  for (const f of readdirSync(dataDir)) assert.equal(statSync(join(dataDir, f)).mode & 0o777, 0o600, f);
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

test('one Argon2id: the native addon and @noble/hashes derive the same key', async () => {
  const salt = randomBytes(16);
  const password = new TextEncoder().encode('correct horse battery staple');
  for (const params of [CHEAP, { m: 1024, t: 2, p: 4 }]) {
    const native = await nativeArgon2id(password, salt, params, 32);
    const noble = await nobleArgon2id(password, salt, params, 32);
    assert.deepEqual(Buffer.from(native), Buffer.from(noble), JSON.stringify(params));
  }
  assert.deepEqual(DEFAULT_ARGON2ID, { m: 65536, t: 3, p: 4 });
});
