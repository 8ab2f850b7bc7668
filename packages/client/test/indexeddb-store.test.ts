/**
 * IndexedDbStore on fake-indexeddb: the shared Store contract (with a reopen), and what the
 * contract cannot see: nothing readable in the raw database, a wrong passphrase or key refused
 * by the check value, a tampered or moved record refused, the key header's kinds.
 */
import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IDBFactory } from 'fake-indexeddb';
import { IndexedDbStore } from '../src/indexeddb-store.ts';
import type { StoreBatch } from '../src/store.ts';
import { storeContract } from './store-contract.ts';

/** Cheap Argon2id for tests (the cost is not what is tested here). */
const FAST = { m: 64, t: 1, p: 1 };
const KEY = new Uint8Array(32).fill(9);

storeContract('IndexedDB (fake-indexeddb)', async () => {
  const factory = new IDBFactory();
  let store = await IndexedDbStore.open({ name: 'contract', key: KEY, indexedDB: factory });
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await IndexedDbStore.open({ name: 'contract', key: KEY, indexedDB: factory });
      return store;
    },
    cleanup: async () => IndexedDbStore.destroy('contract', factory),
  };
});

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const mid = (n: number): Uint8Array => new Uint8Array(16).fill(n);
const NOW = 1_780_000_000_000;

/** Every concept, with markers that must not appear anywhere in the raw database. */
const MARKERS = {
  profile: 'Marker-Profile-Ada',
  conversation: 'marker-conversation-id',
  body: 'marker-secret-body',
  state: 'marker-engine-state',
  route: 'marker-route',
  cursor: 'marker-cursor',
  chat: 'marker-chat-id',
  groupRecord: 'marker-group-record',
  groupMessageId: 'marker-group-message',
  entity: 'marker-entity',
  event: 'marker-event-wire',
  service: 'marker-service-account',
  url: 'https://marker-directory.example',
  directory: 'marker-directory-state',
  settingKey: 'marker-setting-key',
  settingValue: 'marker-setting-value',
  inboxState: 'marker-inbox-state',
  envelope: 'marker-envelope',
};
const SECRET_KEY = new Uint8Array(32).map((_, i) => 0xa0 + (i % 16));
const ENVELOPE_HASH = new Uint8Array(32).map((_, i) => 0x50 + (i % 7));

function everything(): StoreBatch {
  const m = MARKERS;
  return {
    account: { publicKey: new Uint8Array(32).fill(1), secretKey: SECRET_KEY, profileName: m.profile, createdAt: NOW },
    inboxes: [{ invitationId: mid(2), state: text(m.inboxState), isDefault: true, expiresAt: NOW + 1, createdAt: NOW }],
    conversations: [{ meta: { id: m.conversation, consent: 'allowed', origin: 'accepted', lamport: 1, recentIds: [], createdAt: NOW, lastActivityAt: NOW }, state: text(m.state) }],
    cursors: [{ route: m.route, cursor: m.cursor }],
    messages: [{ conversationId: m.conversation, messageId: mid(3), outgoing: false, lamport: 1, sentAt: NOW, receivedAt: NOW, body: text(m.body), status: 'received', read: false }],
    seenEnvelopes: [{ hash: ENVELOPE_HASH, conversationId: m.conversation, messageId: mid(3), seenAt: NOW }],
    outboxPut: [{ conversationId: m.conversation, messageId: mid(4), kind: 'content', lamport: 2, envelope: text(m.envelope), hintHour: 1, hintIndex: 1, attempts: 0, nextAttemptAt: NOW, createdAt: NOW }],
    groups: [{ chatId: m.chat, record: text(m.groupRecord), updatedAt: NOW }],
    groupEvents: [{ chatId: m.chat, wire: text(m.event) }],
    groupMessages: [{ chatId: m.chat, messageId: m.groupMessageId, author: '0x04ab', outgoing: false, clock: 1, sentAt: NOW, receivedAt: NOW, entity: text(m.entity) }],
    serviceAccount: m.service,
    directoryStates: [{ url: m.url, state: m.directory }],
    settings: [{ key: m.settingKey, value: m.settingValue }],
  };
}

function reqP<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function rawDatabase(factory: IDBFactory, name: string): Promise<IDBDatabase> {
  return reqP(factory.open(name));
}

/** Every key and value of every object store, flattened to bytes (strings as UTF-8, and as hex of their bytes). */
async function rawDump(factory: IDBFactory, name: string): Promise<{ bytes: Uint8Array[]; strings: string[] }> {
  const db = await rawDatabase(factory, name);
  const bytes: Uint8Array[] = [];
  const strings: string[] = [];
  const walk = (x: unknown): void => {
    if (x instanceof Uint8Array) bytes.push(x);
    else if (x instanceof ArrayBuffer) bytes.push(new Uint8Array(x));
    else if (typeof x === 'string') strings.push(x);
    else if (typeof x === 'number') strings.push(String(x));
    else if (Array.isArray(x)) x.forEach(walk);
    else if (x !== null && typeof x === 'object') Object.entries(x).forEach(([k, v]) => (strings.push(k), walk(v)));
  };
  try {
    for (const storeName of Array.from(db.objectStoreNames)) {
      const store = db.transaction(storeName, 'readonly').objectStore(storeName);
      const [keys, values] = await Promise.all([reqP(store.getAllKeys()), reqP(store.getAll())]);
      strings.push(storeName);
      keys.forEach(walk);
      values.forEach(walk);
    }
  } finally {
    db.close();
  }
  for (const s of strings) bytes.push(new TextEncoder().encode(s));
  return { bytes, strings };
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const b64 = (b: Uint8Array): string => btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

describe('IndexedDbStore at rest', () => {
  it('the raw database holds no body, name, id, document or key in any form', async () => {
    const factory = new IDBFactory();
    const store = await IndexedDbStore.open({ name: 'raw', passphrase: 'correct horse', argon2id: FAST, indexedDB: factory });
    await store.write(everything());
    // The store reads it all back, so the markers were really written.
    assert.equal((await store.account.get())?.profileName, MARKERS.profile);
    assert.equal(new TextDecoder().decode((await store.messages.history(MARKERS.conversation, 1, null))[0]!.body), MARKERS.body);
    assert.equal(await store.settings.get(MARKERS.settingKey), MARKERS.settingValue);
    await store.close();

    const dump = await rawDump(factory, 'raw');
    assert.ok(dump.bytes.length > 20, 'the dump read the rows');
    const needles: [string, Uint8Array][] = [
      ...Object.entries(MARKERS).flatMap(([k, v]) => [
        [k, text(v)],
        [`${k} (base64url)`, text(b64(text(v)))],
      ] as [string, Uint8Array][]),
      ['secret key', SECRET_KEY],
      ['secret key (hex)', text(hex(SECRET_KEY))],
      ['secret key (base64url)', text(b64(SECRET_KEY))],
      ['envelope hash', ENVELOPE_HASH],
      ['envelope hash (hex)', text(hex(ENVELOPE_HASH))],
    ];
    for (const [what, needle] of needles) {
      for (const b of dump.bytes) assert.ok(!contains(b, needle), `${what} is readable in the raw database`);
    }
    // The dump does see clear index fields (message ids are clear by design), so a miss above means something.
    assert.ok(dump.strings.includes(hex(mid(3))));
    // The one clear record is the key header (salt and parameters, no secret).
    assert.ok(dump.strings.some((s) => s.includes('"alg":"argon2id"')));
  });

  it('a wrong passphrase is wrong-passphrase (the check value), and the right one opens what was written', async () => {
    const factory = new IDBFactory();
    const store = await IndexedDbStore.open({ name: 'pw', passphrase: 'correct horse', argon2id: FAST, indexedDB: factory });
    await store.write({ settings: [{ key: 'k', value: 'v' }] });
    await store.close();
    await assert.rejects(IndexedDbStore.open({ name: 'pw', passphrase: 'wrong horse', indexedDB: factory }), { code: 'wrong-passphrase' });
    await assert.rejects(IndexedDbStore.open({ name: 'pw', key: KEY, indexedDB: factory }), { code: 'wrong-passphrase' });
    const again = await IndexedDbStore.open({ name: 'pw', passphrase: 'correct horse', indexedDB: factory });
    assert.equal(await again.settings.get('k'), 'v');
    await again.close();
  });

  it('a wrong app key is wrong-passphrase; a passphrase for an app-key store too', async () => {
    const factory = new IDBFactory();
    const store = await IndexedDbStore.open({ name: 'key', key: KEY, indexedDB: factory });
    await store.close();
    await assert.rejects(IndexedDbStore.open({ name: 'key', key: new Uint8Array(32).fill(8), indexedDB: factory }), { code: 'wrong-passphrase' });
    await assert.rejects(IndexedDbStore.open({ name: 'key', passphrase: 'x', indexedDB: factory }), { code: 'wrong-passphrase' });
  });

  it('bad options are invalid-argument', async () => {
    const factory = new IDBFactory();
    await assert.rejects(IndexedDbStore.open({ name: '', key: KEY, indexedDB: factory }), { code: 'invalid-argument' });
    await assert.rejects(IndexedDbStore.open({ name: 'x', indexedDB: factory }), { code: 'invalid-argument' });
    await assert.rejects(IndexedDbStore.open({ name: 'x', key: new Uint8Array(31), indexedDB: factory }), { code: 'invalid-argument' });
    await assert.rejects(IndexedDbStore.open({ name: 'x', key: KEY, passphrase: 'p', indexedDB: factory }), { code: 'invalid-argument' });
    await assert.rejects(IndexedDbStore.open({ name: 'x', key: KEY, durability: 'sometimes' as never, indexedDB: factory }), { code: 'invalid-argument' });
  });

  it('exists: false before, true after a store is made; destroy removes it', async () => {
    const factory = new IDBFactory();
    assert.equal(await IndexedDbStore.exists('e', factory), false);
    const store = await IndexedDbStore.open({ name: 'e', key: KEY, indexedDB: factory });
    assert.equal(await IndexedDbStore.exists('e', factory), true);
    await store.close();
    await IndexedDbStore.destroy('e', factory);
    assert.equal(await IndexedDbStore.exists('e', factory), false);
  });

  it('a record changed in the database, or moved to another key, is store-corrupt, not garbage', async () => {
    const factory = new IDBFactory();
    const store = await IndexedDbStore.open({ name: 't', key: KEY, indexedDB: factory });
    await store.write({ settings: [{ key: 'a', value: 'value-a' }, { key: 'b', value: 'value-b' }] });
    await store.close();
    const db = await rawDatabase(factory, 't');
    const docs = db.transaction('docs', 'readwrite').objectStore('docs');
    const keys = (await reqP(docs.getAllKeys())) as string[];
    const rows = (await reqP(docs.getAll())) as { v: Uint8Array }[];
    assert.equal(keys.length, 2);
    // Swap the two sealed values between their keys.
    const tx = db.transaction('docs', 'readwrite');
    await reqP(tx.objectStore('docs').put(rows[1], keys[0]!));
    await reqP(tx.objectStore('docs').put(rows[0], keys[1]!));
    db.close();
    const reopened = await IndexedDbStore.open({ name: 't', key: KEY, indexedDB: factory });
    await assert.rejects(reopened.settings.get('a'), { code: 'store-corrupt' });
    await reopened.close();

    const db2 = await rawDatabase(factory, 't');
    const tx2 = db2.transaction('docs', 'readwrite');
    const flipped = new Uint8Array(rows[0]!.v);
    flipped[flipped.length - 1]! ^= 1;
    await reqP(tx2.objectStore('docs').put({ v: flipped }, keys[0]!));
    db2.close();
    const again = await IndexedDbStore.open({ name: 't', key: KEY, indexedDB: factory });
    const results = await Promise.allSettled([again.settings.get('a'), again.settings.get('b')]);
    assert.ok(results.some((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'store-corrupt'));
    await again.close();
  });
});
