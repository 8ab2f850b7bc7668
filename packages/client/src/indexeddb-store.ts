/**
 * The IndexedDB Store (browsers): the platform's IndexedDB API directly, every value sealed.
 * Platform-neutral code (no Node builtin); Node tests run it on fake-indexeddb. Same semantics as
 * SqliteStore and MemoryStore, checked by the same contract suite (test/store-contract.ts).
 *
 * - One StoreBatch = one readwrite transaction over the object stores the batch touches
 *   (durability 'strict' by default, see the option); anything that fails aborts the
 *   transaction, so nothing of the batch is written. All crypto here is synchronous (noble), so a transaction never waits on
 *   anything but its own requests and never auto-commits half-way.
 * - At rest (docs/STORE.md, "IndexedDB"): the key header (salt and Argon2id parameters, or
 *   "app-key") is a clear record; HKDF gives the `indexeddb` subkey, and from it a sealing key
 *   (ChaCha20-Poly1305, random nonce, the record's slot as associated data so a record cannot
 *   be moved to another key) and a blinding key (HMAC-SHA256 of conversation ids, chat ids,
 *   routes, URLs, setting names, envelope hashes). A sealed check value tells a wrong
 *   passphrase (ClientError('wrong-passphrase')) from a right one before anything is read.
 * - What stays in clear, for the indexes: message ids, Lamport times, outbox creation times,
 *   seen-envelope times, group seq numbers, and which messages are unread / incoming / group
 *   frames and which outbox entries are queued. No body, name, id or key.
 */
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromBase64Url, fromHex, nobleProvider, toBase64Url, toHex } from '@umbra/protocol';
import {
  checkUnlock,
  deriveSubkey,
  newKeyHeader,
  nobleArgon2id,
  parseKeyHeader,
  serializeKeyHeader,
  unlockMasterKey,
  type Argon2idFunction,
  type Argon2idParams,
} from './at-rest-scheme.ts';
import { ClientError } from './errors.ts';
import { checkBytes, checkLimit, checkPosition, checkSeq, checkString, compareBytes, compareStrings, ENVELOPE_HASH_BYTES, MESSAGE_ID_BYTES, validateBatch } from './store-validation.ts';
import type {
  AccountReads,
  ConversationMeta,
  ConversationReads,
  DirectoryReads,
  GroupReads,
  MessageReads,
  OutboxEntry,
  OutboxReads,
  SeenEnvelope,
  ServiceAccountReads,
  SettingsReads,
  Store,
  StoreBatch,
  StoredAccount,
  StoredConversation,
  StoredGroup,
  StoredGroupMessage,
  StoredInbox,
  StoredMessage,
} from './store.ts';

export interface IndexedDbStoreOptions {
  /** The IndexedDB database name. */
  readonly name: string;
  /** Derive the master key from this passphrase (Argon2id, parameters in the key header)… */
  readonly passphrase?: string;
  /** …or use this 32-byte key supplied by the app. */
  readonly key?: Uint8Array;
  /** Argon2id parameters for a *new* store (an existing one keeps its own). */
  readonly argon2id?: Argon2idParams;
  /** Who runs Argon2id (default: @noble/hashes, pure JS). */
  readonly argon2idFunction?: Argon2idFunction;
  /** Default: globalThis.indexedDB. */
  readonly indexedDB?: IDBFactory;
  /**
   * 'strict' (default): a write resolves once the browser has flushed it to disk, so a batch
   * that resolved survives a browser or OS crash too (docs/STORE.md: about +0.9 to +1.5 ms per
   * write in Chromium). 'relaxed': resolves once the browser process has it (survives the tab
   * closing or crashing, not necessarily a browser or OS crash).
   */
  readonly durability?: 'relaxed' | 'strict';
}

const DB_VERSION = 1;
const CHECK_TEXT = 'umbra-indexeddb-check/v1';
const NONCE_BYTES = 12;

/** Object store names. */
const META = 'meta';
const DOCS = 'docs';
const INBOXES = 'inboxes';
const CONVERSATIONS = 'conversations';
const MESSAGES = 'messages';
const SEEN = 'seen';
const OUTBOX = 'outbox';
const GROUPS = 'groups';
const GROUP_EVENTS = 'groupEvents';
const GROUP_MESSAGES = 'groupMessages';
const ALL_STORES = [META, DOCS, INBOXES, CONVERSATIONS, MESSAGES, SEEN, OUTBOX, GROUPS, GROUP_EVENTS, GROUP_MESSAGES];

/** The stored shape of a row: sealed value `v` plus the clear fields its indexes need. */
interface Row {
  v: Uint8Array;
  [field: string]: unknown;
}

// ---- IndexedDB plumbing ---------------------------------------------------------------------

function storeError(e: unknown, what: string): ClientError {
  if (e instanceof ClientError) return e;
  const name = (e as { name?: string } | null)?.name;
  if (name === 'QuotaExceededError') return new ClientError('internal', `IndexedDB refused to ${what}: the browser's storage quota is exhausted`, { cause: e });
  if (name === 'InvalidStateError') return new ClientError('store-closed', `IndexedDB refused to ${what}: the database connection was closed`, { cause: e });
  return new ClientError('internal', `IndexedDB failed to ${what}${name ? ` (${name})` : ''}`, { cause: e });
}

function req<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** Walks a cursor; `visit` is synchronous (the transaction must not wait on anything else). */
function eachCursor(request: IDBRequest<IDBCursorWithValue | null>, visit: (cursor: IDBCursorWithValue) => boolean | void): Promise<void> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => {
      const cursor = request.result;
      if (cursor === null) return resolve();
      try {
        if (visit(cursor) === false) return resolve();
        cursor.continue();
      } catch (e) {
        reject(e);
      }
    };
    request.onerror = () => reject(request.error);
  });
}

function keyRange(): typeof IDBKeyRange {
  const range = (globalThis as { IDBKeyRange?: typeof IDBKeyRange }).IDBKeyRange;
  if (range === undefined) throw new ClientError('invalid-argument', 'IndexedDB is not available here (no IDBKeyRange)');
  return range;
}

/** Every key [prefix, …] of a compound key (an array sorts after every number, string and binary). */
const within = (prefix: string): IDBKeyRange => keyRange().bound([prefix], [prefix, []]);

function openDatabase(factory: IDBFactory, name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    let request: IDBOpenDBRequest;
    try {
      request = factory.open(name, DB_VERSION);
    } catch (e) {
      return reject(storeError(e, 'open the database'));
    }
    request.onupgradeneeded = (event) => {
      const db = request.result;
      if (event.oldVersion >= 1) return;
      for (const s of [META, DOCS, INBOXES, CONVERSATIONS, GROUPS]) db.createObjectStore(s);
      const messages = db.createObjectStore(MESSAGES, { keyPath: ['c', 'm'] });
      messages.createIndex('pos', ['c', 'l', 'm']);
      // Sparse indexes: a row without the field is not in the index.
      messages.createIndex('hist', ['hc', 'l', 'm']);
      messages.createIndex('unread', ['uc', 'l', 'm']);
      messages.createIndex('incoming', ['ic', 'l', 'm']);
      db.createObjectStore(SEEN).createIndex('t', 't');
      const outbox = db.createObjectStore(OUTBOX, { keyPath: ['c', 'm'] });
      outbox.createIndex('created', ['c', 't', 'm']);
      outbox.createIndex('queue', ['qc', 'l', 'm']);
      db.createObjectStore(GROUP_EVENTS, { keyPath: ['g', 'e'] });
      db.createObjectStore(GROUP_MESSAGES, { keyPath: ['g', 'm'] }).createIndex('seq', ['g', 's']);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(storeError(request.error, 'open the database'));
    request.onblocked = () => reject(new ClientError('store-locked', 'the IndexedDB database is held open by an older version of this app in another tab'));
  });
}

// ---- sealing and blinding -------------------------------------------------------------------

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** JSON with byte arrays as {"$b": base64url}: the sealed plaintext of every record. */
function pack(value: unknown): Uint8Array {
  return utf8(JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? { $b: toBase64Url(v) } : v)));
}

function unpack(bytes: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(bytes), (_k, v: unknown) => {
    if (v !== null && typeof v === 'object' && typeof (v as { $b?: unknown }).$b === 'string') {
      const b = fromBase64Url((v as { $b: string }).$b);
      if (b === null) throw new ClientError('store-corrupt', 'a stored record is malformed');
      return b;
    }
    return v;
  });
}

/** A record's slot (object store + key): the associated data of its seal. */
function slot(store: string, key: IDBValidKey): Uint8Array {
  return utf8(`${store}\u0000${Array.isArray(key) ? key.join('\u0000') : String(key)}`);
}

class Sealer {
  private readonly sealKey: Uint8Array;
  private readonly blindKey: Uint8Array;

  constructor(masterKey: Uint8Array) {
    const sub = deriveSubkey(masterKey, 'indexeddb');
    this.sealKey = hkdf(sha256, sub, new Uint8Array(0), utf8('umbra/v2/indexeddb/seal'), 32);
    this.blindKey = hkdf(sha256, sub, new Uint8Array(0), utf8('umbra/v2/indexeddb/blind'), 32);
    sub.fill(0);
  }

  /** A stable pseudonym for an identifier (128 bits of HMAC, hex: sorts, compares, no meaning). */
  blind(namespace: string, value: string | Uint8Array): string {
    const data = typeof value === 'string' ? utf8(value) : value;
    const ns = utf8(`${namespace}\u0000`);
    const input = new Uint8Array(ns.length + data.length);
    input.set(ns);
    input.set(data, ns.length);
    return toHex(hmac(sha256, this.blindKey, input).subarray(0, 16));
  }

  seal(store: string, key: IDBValidKey, value: unknown): Uint8Array {
    const nonce = nobleProvider.randomBytes(NONCE_BYTES);
    const sealed = nobleProvider.aeadSeal(this.sealKey, nonce, pack(value), slot(store, key));
    const out = new Uint8Array(NONCE_BYTES + sealed.length);
    out.set(nonce);
    out.set(sealed, NONCE_BYTES);
    return out;
  }

  /** The plaintext, or null when it does not open under this key in this slot. */
  tryOpen(store: string, key: IDBValidKey, sealed: unknown): unknown {
    if (!(sealed instanceof Uint8Array) || sealed.length <= NONCE_BYTES) return null;
    const plain = nobleProvider.aeadOpen(this.sealKey, sealed.subarray(0, NONCE_BYTES), sealed.subarray(NONCE_BYTES), slot(store, key));
    if (plain === null) return null;
    try {
      return unpack(plain);
    } catch {
      return null;
    }
  }

  open<T>(store: string, key: IDBValidKey, row: unknown): T {
    const value = this.tryOpen(store, key, (row as Row | undefined)?.v);
    if (value === null) throw new ClientError('store-corrupt', `a record in ${store} does not open: it was changed or moved`);
    return value as T;
  }

  wipe(): void {
    this.sealKey.fill(0);
    this.blindKey.fill(0);
  }
}

// ---- records --------------------------------------------------------------------------------

function toMessage(m: StoredMessage): StoredMessage {
  return {
    conversationId: m.conversationId,
    messageId: m.messageId,
    outgoing: m.outgoing,
    lamport: m.lamport,
    sentAt: m.sentAt,
    receivedAt: m.receivedAt,
    body: m.body,
    status: m.status,
    read: m.read,
    ...(m.group === true ? { group: true } : {}),
  };
}

function toOutbox(o: OutboxEntry): OutboxEntry {
  return {
    conversationId: o.conversationId,
    messageId: o.messageId,
    kind: o.kind,
    lamport: o.lamport,
    envelope: o.envelope,
    hintHour: o.hintHour,
    hintIndex: o.hintIndex,
    attempts: o.attempts,
    nextAttemptAt: o.nextAttemptAt,
    createdAt: o.createdAt,
  };
}

function toMeta(m: ConversationMeta): ConversationMeta {
  return { id: m.id, consent: m.consent, origin: m.origin, lamport: m.lamport, recentIds: [...m.recentIds], createdAt: m.createdAt, lastActivityAt: m.lastActivityAt };
}

function unknownReference(what: string): never {
  throw new ClientError('invalid-argument', `store: ${what} that is not stored`);
}

/** The object stores a batch reads or writes (a transaction's scope). */
function scopeOf(b: StoreBatch): string[] {
  const s = new Set<string>();
  if (b.account !== undefined || b.cursors !== undefined || b.serviceAccount !== undefined || b.directoryStates !== undefined || b.settings !== undefined) s.add(DOCS);
  if (b.inboxes !== undefined) s.add(INBOXES);
  if (b.conversations !== undefined || b.conversationMeta !== undefined) s.add(CONVERSATIONS);
  if (b.messages !== undefined) s.add(MESSAGES).add(CONVERSATIONS);
  if (b.messageStatus !== undefined || b.markRead !== undefined) s.add(MESSAGES);
  if (b.seenEnvelopes !== undefined || b.pruneSeenBefore !== undefined) s.add(SEEN);
  if (b.outboxPut !== undefined || b.outboxDelete !== undefined) s.add(OUTBOX);
  if (b.abandonOutbox !== undefined) s.add(OUTBOX).add(MESSAGES);
  if (b.groups !== undefined) s.add(GROUPS);
  if (b.groupEvents !== undefined) s.add(GROUP_EVENTS).add(GROUPS);
  if (b.groupMessages !== undefined) s.add(GROUP_MESSAGES).add(GROUPS).add(META);
  return [...s];
}

export class IndexedDbStore implements Store {
  private closed = false;

  private constructor(
    private readonly db: IDBDatabase,
    private readonly sealer: Sealer,
    private readonly durability: 'relaxed' | 'strict',
  ) {
    // Another tab deleting or upgrading the database: let it, and fail our calls as closed.
    db.onversionchange = () => db.close();
  }

  /**
   * Opens (or creates) the database `name`. A new one gets a key header (Argon2id with a fresh
   * salt for a passphrase, "app-key" for a key) and a sealed check value in one transaction; an
   * existing one is unlocked under its own header, and a wrong secret is
   * ClientError('wrong-passphrase').
   */
  static async open(options: IndexedDbStoreOptions): Promise<IndexedDbStore> {
    if (options === null || typeof options !== 'object' || typeof options.name !== 'string' || options.name.length === 0) {
      throw new ClientError('invalid-argument', 'IndexedDbStore.open needs a database name');
    }
    const unlock = { passphrase: options.passphrase, key: options.key, argon2id: options.argon2id };
    checkUnlock(unlock);
    const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (factory === undefined) throw new ClientError('invalid-argument', 'IndexedDB is not available here');
    const argon2id = options.argon2idFunction ?? nobleArgon2id;
    const durability = options.durability ?? 'strict';
    if (durability !== 'relaxed' && durability !== 'strict') throw new ClientError('invalid-argument', "durability must be 'relaxed' or 'strict'");
    const db = await openDatabase(factory, options.name);
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const { header, check } = await readHeader(db);
        if (header !== undefined) {
          const masterKey = await unlockMasterKey(parseKeyHeader(header, `of IndexedDB database "${options.name}"`), unlock, argon2id);
          const sealer = new Sealer(masterKey);
          masterKey.fill(0);
          if (check === undefined) throw new ClientError('store-corrupt', `IndexedDB database "${options.name}" has a key header but no check value`);
          if (sealer.tryOpen(META, 'check', check) !== CHECK_TEXT) {
            sealer.wipe();
            throw new ClientError('wrong-passphrase', 'wrong passphrase or key for this store');
          }
          return new IndexedDbStore(db, sealer, durability);
        }
        const fresh = newKeyHeader(unlock, (n) => nobleProvider.randomBytes(n));
        const masterKey = await unlockMasterKey(fresh, unlock, argon2id);
        const sealer = new Sealer(masterKey);
        masterKey.fill(0);
        if (await writeHeaderIfAbsent(db, serializeKeyHeader(fresh), sealer.seal(META, 'check', CHECK_TEXT))) return new IndexedDbStore(db, sealer, durability);
        // Another tab created the header while we derived: unlock under theirs.
        sealer.wipe();
      }
      throw new ClientError('store-locked', 'the store is being created in another tab');
    } catch (e) {
      db.close();
      throw storeError(e, 'open the store');
    }
  }

  /** Whether `name` holds a store (a database with a key header); opens nothing that is not there. */
  static async exists(name: string, factory: IDBFactory | undefined = (globalThis as { indexedDB?: IDBFactory }).indexedDB): Promise<boolean> {
    checkString(name, 'name');
    if (factory === undefined) return false;
    // databases() spares creating an empty database just to look; where it is missing, opening does no harm.
    if (typeof factory.databases === 'function' && !(await factory.databases()).some((d) => d.name === name)) return false;
    const db = await openDatabase(factory, name);
    try {
      return (await readHeader(db)).header !== undefined;
    } finally {
      db.close();
    }
  }

  /** Deletes the database (an app's "forget this identity"; tests). */
  static async destroy(name: string, factory: IDBFactory | undefined = (globalThis as { indexedDB?: IDBFactory }).indexedDB): Promise<void> {
    checkString(name, 'name');
    if (factory === undefined) return;
    await req(factory.deleteDatabase(name)).catch((e: unknown) => {
      throw storeError(e, 'delete the database');
    });
  }

  // ---- reads ----------------------------------------------------------------------------------

  private async read<T>(stores: string[], query: (tx: IDBTransaction) => Promise<T>): Promise<T> {
    this.live();
    let tx: IDBTransaction;
    try {
      tx = this.db.transaction(stores, 'readonly');
    } catch (e) {
      throw storeError(e, 'read');
    }
    try {
      return await query(tx);
    } catch (e) {
      throw storeError(e, 'read');
    }
  }

  private async doc(key: string): Promise<string | null> {
    return this.read([DOCS], async (tx) => {
      const row = await req(tx.objectStore(DOCS).get(key));
      return row === undefined ? null : this.sealer.open<string>(DOCS, key, row);
    });
  }

  private message(tx: IDBTransaction, conversationId: string, messageId: Uint8Array): Promise<StoredMessage | null> {
    const key = [this.sealer.blind('conversation', conversationId), toHex(messageId)];
    return req(tx.objectStore(MESSAGES).get(key)).then((row) => (row === undefined ? null : this.sealer.open<StoredMessage>(MESSAGES, key, row)));
  }

  readonly account: AccountReads = {
    get: () => this.doc(this.sealer.blind('account', '')).then((s) => (s === null ? null : (unpackDoc(s) as StoredAccount))),
    inboxes: () =>
      this.read([INBOXES], async (tx) => {
        const store = tx.objectStore(INBOXES);
        const [keys, rows] = await Promise.all([req(store.getAllKeys()), req(store.getAll())]);
        return rows.map((row, i) => this.sealer.open<StoredInbox>(INBOXES, keys[i]!, row)).sort((a, b) => a.createdAt - b.createdAt || compareBytes(a.invitationId, b.invitationId));
      }),
  };

  readonly conversations: ConversationReads = {
    all: () =>
      this.read([CONVERSATIONS], async (tx) => {
        const store = tx.objectStore(CONVERSATIONS);
        const [keys, rows] = await Promise.all([req(store.getAllKeys()), req(store.getAll())]);
        return rows.map((row, i) => this.sealer.open<StoredConversation>(CONVERSATIONS, keys[i]!, row)).sort((a, b) => a.meta.createdAt - b.meta.createdAt || compareStrings(a.meta.id, b.meta.id));
      }),
    cursor: async (route) => {
      this.live();
      checkString(route, 'route');
      return this.doc(this.sealer.blind('cursor', route));
    },
    // No release ever wrote missing-message rows into IndexedDB.
    legacyMissing: async () => (this.live(), []),
  };

  readonly messages: MessageReads = {
    get: async (conversationId, messageId) => {
      this.live();
      checkKey(conversationId, messageId);
      return this.read([MESSAGES], (tx) => this.message(tx, conversationId, messageId));
    },
    state: async (conversationId, messageId) => {
      this.live();
      checkKey(conversationId, messageId);
      const m = await this.read([MESSAGES], (tx) => this.message(tx, conversationId, messageId));
      return m === null ? null : { outgoing: m.outgoing, status: m.status, lamport: m.lamport };
    },
    history: async (conversationId, limit, before) => {
      this.live();
      checkString(conversationId, 'conversationId');
      checkLimit(limit);
      checkPosition(before);
      if (limit === 0) return [];
      const c = this.sealer.blind('conversation', conversationId);
      const range = before === null ? within(c) : keyRange().bound([c], [c, before.lamport, toHex(before.messageId)], false, true);
      return this.read([MESSAGES], async (tx) => {
        const out: StoredMessage[] = [];
        await eachCursor(tx.objectStore(MESSAGES).index('hist').openCursor(range, 'prev'), (cursor) => {
          out.push(this.sealer.open<StoredMessage>(MESSAGES, cursor.primaryKey, cursor.value));
          return out.length < limit;
        });
        return out;
      });
    },
    unreadCount: async (conversationId) => {
      this.live();
      checkString(conversationId, 'conversationId');
      const range = within(this.sealer.blind('conversation', conversationId));
      return this.read([MESSAGES], (tx) => req(tx.objectStore(MESSAGES).index('unread').count(range)));
    },
    count: async (conversationId) => {
      this.live();
      checkString(conversationId, 'conversationId');
      const range = within(this.sealer.blind('conversation', conversationId));
      return this.read([MESSAGES], (tx) => req(tx.objectStore(MESSAGES).index('hist').count(range)));
    },
    incomingIds: async (conversationId, limit) => {
      this.live();
      checkString(conversationId, 'conversationId');
      checkLimit(limit);
      if (limit === 0) return [];
      const range = within(this.sealer.blind('conversation', conversationId));
      return this.read([MESSAGES], async (tx) => {
        const out: Uint8Array[] = [];
        await eachCursor(tx.objectStore(MESSAGES).index('incoming').openCursor(range, 'prev'), (cursor) => {
          out.push(fromHex((cursor.primaryKey as string[])[1]!)!);
          return out.length < limit;
        });
        return out;
      });
    },
    seenEnvelope: async (hash) => {
      this.live();
      checkBytes(hash, 'hash', ENVELOPE_HASH_BYTES);
      const key = this.sealer.blind('seen', hash);
      return this.read([SEEN], async (tx) => {
        const row = await req(tx.objectStore(SEEN).get(key));
        return row === undefined ? null : this.sealer.open<SeenEnvelope>(SEEN, key, row);
      });
    },
  };

  readonly outbox: OutboxReads = {
    entry: async (conversationId, messageId) => {
      this.live();
      checkKey(conversationId, messageId);
      const key = [this.sealer.blind('conversation', conversationId), toHex(messageId)];
      return this.read([OUTBOX], async (tx) => {
        const row = await req(tx.objectStore(OUTBOX).get(key));
        return row === undefined ? null : this.sealer.open<OutboxEntry>(OUTBOX, key, row);
      });
    },
    forConversation: async (conversationId) => {
      this.live();
      checkString(conversationId, 'conversationId');
      const range = within(this.sealer.blind('conversation', conversationId));
      return this.read([OUTBOX], (tx) => this.rows<OutboxEntry>(tx.objectStore(OUTBOX).index('created'), range));
    },
    queued: async (conversationId, limit) => {
      this.live();
      checkString(conversationId, 'conversationId');
      checkLimit(limit);
      if (limit === 0) return [];
      const range = within(this.sealer.blind('conversation', conversationId));
      return this.read([OUTBOX], (tx) => this.rows<OutboxEntry>(tx.objectStore(OUTBOX).index('queue'), range, limit));
    },
    conversationsWithQueued: () =>
      this.read([OUTBOX], async (tx) => {
        const entries = await this.rows<OutboxEntry>(tx.objectStore(OUTBOX).index('queue'));
        return [...new Set(entries.map((o) => o.conversationId))].sort(compareStrings);
      }),
    pendingCount: async (conversationId) => {
      this.live();
      if (conversationId !== undefined) checkString(conversationId, 'conversationId');
      const range = conversationId === undefined ? undefined : within(this.sealer.blind('conversation', conversationId));
      return this.read([OUTBOX], (tx) => req(tx.objectStore(OUTBOX).count(range)));
    },
  };

  readonly groups: GroupReads = {
    all: () =>
      this.read([GROUPS, GROUP_EVENTS], async (tx) => {
        const groupStore = tx.objectStore(GROUPS);
        const [keys, rows] = await Promise.all([req(groupStore.getAllKeys()), req(groupStore.getAll())]);
        const groups = rows.map((row, i) => this.sealer.open<StoredGroup>(GROUPS, keys[i]!, row)).sort((a, b) => compareStrings(a.chatId, b.chatId));
        const events = new Map<string, Uint8Array[]>();
        for (const { g, wire } of await this.rows<{ g: string; wire: Uint8Array }>(tx.objectStore(GROUP_EVENTS), undefined, undefined, (row, v) => ({ g: row.g as string, wire: v as Uint8Array }))) {
          let list = events.get(g);
          if (list === undefined) events.set(g, (list = []));
          list.push(wire);
        }
        return groups.map((group) => ({ group, events: events.get(this.sealer.blind('group', group.chatId)) ?? [] }));
      }),
    message: async (chatId, messageId) => {
      this.live();
      checkString(chatId, 'chatId');
      checkString(messageId, 'messageId');
      const key = [this.sealer.blind('group', chatId), this.sealer.blind('group-message', messageId)];
      return this.read([GROUP_MESSAGES], async (tx) => {
        const row = await req(tx.objectStore(GROUP_MESSAGES).get(key));
        return row === undefined ? null : this.sealer.open<StoredGroupMessage>(GROUP_MESSAGES, key, row);
      });
    },
    messages: async (chatId, limit, beforeSeq) => {
      this.live();
      checkString(chatId, 'chatId');
      checkLimit(limit);
      checkSeq(beforeSeq);
      if (limit === 0) return [];
      const g = this.sealer.blind('group', chatId);
      const range = beforeSeq === null ? within(g) : keyRange().bound([g], [g, beforeSeq], false, true);
      return this.read([GROUP_MESSAGES], async (tx) => {
        const out: StoredGroupMessage[] = [];
        await eachCursor(tx.objectStore(GROUP_MESSAGES).index('seq').openCursor(range, 'prev'), (cursor) => {
          out.push(this.sealer.open<StoredGroupMessage>(GROUP_MESSAGES, cursor.primaryKey, cursor.value));
          return out.length < limit;
        });
        return out;
      });
    },
  };

  readonly serviceAccount: ServiceAccountReads = {
    get: () => this.doc(this.sealer.blind('service-account', '')),
  };

  readonly directory: DirectoryReads = {
    get: async (url) => {
      this.live();
      checkString(url, 'url');
      return this.doc(this.sealer.blind('directory', url));
    },
  };

  readonly settings: SettingsReads = {
    get: async (key) => {
      this.live();
      checkString(key, 'key');
      return this.doc(this.sealer.blind('setting', key));
    },
  };

  /** Every row of a store or index (in key order, up to `limit`), opened. */
  private async rows<T>(source: IDBObjectStore | IDBIndex, range?: IDBKeyRange, limit?: number, map?: (row: Row, value: unknown) => T): Promise<T[]> {
    const storeName = 'objectStore' in source ? source.objectStore.name : source.name;
    const out: T[] = [];
    await eachCursor(source.openCursor(range), (cursor) => {
      const value = this.sealer.open<unknown>(storeName, cursor.primaryKey, cursor.value);
      out.push(map ? map(cursor.value as Row, value) : (value as T));
      return limit === undefined || out.length < limit;
    });
    return out;
  }

  private live(): void {
    if (this.closed) throw new ClientError('client-closed', 'the store is closed');
  }

  // ---- writes ---------------------------------------------------------------------------------

  async write(batch: StoreBatch): Promise<void> {
    this.live();
    validateBatch(batch);
    const scope = scopeOf(batch);
    if (scope.length === 0) return;
    let tx: IDBTransaction;
    try {
      tx = this.db.transaction(scope, 'readwrite', { durability: this.durability });
    } catch (e) {
      throw storeError(e, 'write');
    }
    const done = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onabort = () => reject(tx.error ?? new ClientError('internal', 'the write was aborted'));
    });
    try {
      await this.apply(tx, batch);
    } catch (e) {
      try {
        tx.abort();
      } catch {
        // already finished (a request error aborts it by itself)
      }
      await done.catch(() => undefined);
      throw storeError(e, 'write');
    }
    try {
      await done;
    } catch (e) {
      throw storeError(e, 'write');
    }
  }

  /** In the order of StoreBatch's fields (store.ts), as SqliteStore applies them. */
  private async apply(tx: IDBTransaction, b: StoreBatch): Promise<void> {
    const s = this.sealer;
    const put = (store: string, key: IDBValidKey, value: unknown, fields: Record<string, unknown> = {}): Promise<IDBValidKey> => {
      const row: Row = { ...fields, v: s.seal(store, key, value) };
      const os = tx.objectStore(store);
      return req(os.keyPath === null ? os.put(row, key) : os.put(row));
    };
    const putDoc = (key: string, value: string | null): Promise<unknown> => (value === null ? req(tx.objectStore(DOCS).delete(key)) : put(DOCS, key, value));
    const exists = async (store: string, key: IDBValidKey): Promise<boolean> => (await req(tx.objectStore(store).count(key))) > 0;

    if (b.account !== undefined) {
      const a = b.account;
      await putDoc(s.blind('account', ''), packDoc({ publicKey: a.publicKey, secretKey: a.secretKey, profileName: a.profileName, createdAt: a.createdAt }));
    }
    for (const i of b.inboxes ?? []) {
      await put(INBOXES, s.blind('inbox', i.invitationId), { invitationId: i.invitationId, state: i.state, isDefault: i.isDefault, expiresAt: i.expiresAt, createdAt: i.createdAt });
    }
    for (const c of b.conversations ?? []) await put(CONVERSATIONS, s.blind('conversation', c.meta.id), { meta: toMeta(c.meta), state: c.state });
    for (const m of b.conversationMeta ?? []) {
      const key = s.blind('conversation', m.id);
      const row = await req(tx.objectStore(CONVERSATIONS).get(key));
      if (row === undefined) continue;
      const existing = s.open<StoredConversation>(CONVERSATIONS, key, row);
      const meta: ConversationMeta = { ...existing.meta, consent: m.consent, lamport: m.lamport, recentIds: [...m.recentIds], lastActivityAt: m.lastActivityAt };
      await put(CONVERSATIONS, key, { meta, state: existing.state });
    }
    for (const c of b.cursors ?? []) await putDoc(s.blind('cursor', c.route), c.cursor);
    // missingDelete: this store never held legacy missing rows, so there is nothing to delete.

    const knownConversations = new Set<string>();
    for (const m of b.messages ?? []) {
      const c = s.blind('conversation', m.conversationId);
      if (!knownConversations.has(c)) {
        if (!(await exists(CONVERSATIONS, c))) unknownReference('a message for a conversation');
        knownConversations.add(c);
      }
      const key = [c, toHex(m.messageId)];
      if (await exists(MESSAGES, key)) continue;
      await this.putMessage(tx, key, toMessage(m));
    }
    for (const m of b.messageStatus ?? []) {
      const key = [s.blind('conversation', m.conversationId), toHex(m.messageId)];
      const row = await req(tx.objectStore(MESSAGES).get(key));
      if (row === undefined) continue;
      await this.putMessage(tx, key, { ...s.open<StoredMessage>(MESSAGES, key, row), status: m.status });
    }
    for (const r of b.markRead ?? []) {
      const c = s.blind('conversation', r.conversationId);
      const range = keyRange().bound([c], [c, r.upToLamport, toHex(r.upToMessageId)]);
      // The unread index holds only unread rows; marking one read takes it out of the index.
      await eachCursor(tx.objectStore(MESSAGES).index('unread').openCursor(range), (cursor) => {
        const m = s.open<StoredMessage>(MESSAGES, cursor.primaryKey, cursor.value);
        cursor.update(this.messageRow(cursor.primaryKey as string[], { ...m, read: true }));
      });
    }
    for (const e of b.seenEnvelopes ?? []) {
      const key = s.blind('seen', e.hash);
      if (await exists(SEEN, key)) continue;
      await put(SEEN, key, { hash: e.hash, conversationId: e.conversationId, messageId: e.messageId, seenAt: e.seenAt }, { t: e.seenAt });
    }
    if (b.pruneSeenBefore !== undefined) {
      await eachCursor(tx.objectStore(SEEN).index('t').openCursor(keyRange().upperBound(b.pruneSeenBefore, true)), (cursor) => {
        cursor.delete();
      });
    }
    for (const o of b.outboxPut ?? []) {
      const c = s.blind('conversation', o.conversationId);
      const m = toHex(o.messageId);
      await put(OUTBOX, [c, m], toOutbox(o), { c, m, t: o.createdAt, l: o.lamport, ...(o.envelope === null ? { qc: c } : {}) });
    }
    for (const k of b.outboxDelete ?? []) await req(tx.objectStore(OUTBOX).delete([s.blind('conversation', k.conversationId), toHex(k.messageId)]));
    for (const id of b.abandonOutbox ?? []) {
      const c = s.blind('conversation', id);
      const keys = (await req(tx.objectStore(OUTBOX).getAllKeys(within(c)))) as string[][];
      for (const key of keys) {
        const row = await req(tx.objectStore(MESSAGES).get(key));
        if (row !== undefined) {
          const m = s.open<StoredMessage>(MESSAGES, key, row);
          if (m.status === 'queued' || m.status === 'sent') await this.putMessage(tx, key, { ...m, status: 'failed' });
        }
        await req(tx.objectStore(OUTBOX).delete(key));
      }
    }
    for (const g of b.groups ?? []) await put(GROUPS, s.blind('group', g.chatId), { chatId: g.chatId, record: g.record, updatedAt: g.updatedAt });
    const knownGroups = new Set<string>();
    const groupStored = async (chatId: string, what: string): Promise<string> => {
      const g = s.blind('group', chatId);
      if (!knownGroups.has(g)) {
        if (!(await exists(GROUPS, g))) unknownReference(what);
        knownGroups.add(g);
      }
      return g;
    };
    for (const e of b.groupEvents ?? []) {
      const g = await groupStored(e.chatId, 'a group event for a group');
      const key = [g, s.blind('group-event', e.wire)];
      if (await exists(GROUP_EVENTS, key)) continue;
      await put(GROUP_EVENTS, key, e.wire, { g, e: key[1] });
    }
    if (b.groupMessages !== undefined && b.groupMessages.length > 0) {
      const lastSeqRow: unknown = await req(tx.objectStore(META).get('lastSeq'));
      let lastSeq = typeof lastSeqRow === 'number' ? lastSeqRow : 0;
      for (const m of b.groupMessages) {
        const g = await groupStored(m.chatId, 'a group message for a group');
        const key = [g, s.blind('group-message', m.messageId)];
        if (await exists(GROUP_MESSAGES, key)) continue;
        lastSeq += 1;
        const stored: StoredGroupMessage = { chatId: m.chatId, messageId: m.messageId, author: m.author, outgoing: m.outgoing, clock: m.clock, sentAt: m.sentAt, receivedAt: m.receivedAt, entity: m.entity, seq: lastSeq };
        await put(GROUP_MESSAGES, key, stored, { g, m: key[1], s: lastSeq });
      }
      await req(tx.objectStore(META).put(lastSeq, 'lastSeq'));
    }
    if (b.serviceAccount !== undefined) await putDoc(s.blind('service-account', ''), b.serviceAccount);
    for (const d of b.directoryStates ?? []) await putDoc(s.blind('directory', d.url), d.state);
    for (const x of b.settings ?? []) await putDoc(s.blind('setting', x.key), x.value);
  }

  private messageRow(key: string[], m: StoredMessage): Row {
    const [c, id] = key as [string, string];
    return {
      c,
      m: id,
      l: m.lamport,
      ...(m.group !== true ? { hc: c } : {}),
      ...(!m.read ? { uc: c } : {}),
      ...(!m.outgoing ? { ic: c } : {}),
      v: this.sealer.seal(MESSAGES, key, m),
    };
  }

  private putMessage(tx: IDBTransaction, key: string[], m: StoredMessage): Promise<IDBValidKey> {
    return req(tx.objectStore(MESSAGES).put(this.messageRow(key, m)));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
    this.sealer.wipe();
  }
}

/** Documents are strings; the account is one too (its fields packed), so DOCS holds one kind of value. */
function packDoc(value: unknown): string {
  return new TextDecoder().decode(pack(value));
}

function unpackDoc(text: string): unknown {
  return unpack(utf8(text));
}

function checkKey(conversationId: string, messageId: Uint8Array): void {
  checkString(conversationId, 'conversationId');
  checkBytes(messageId, 'messageId', MESSAGE_ID_BYTES);
}

async function readHeader(db: IDBDatabase): Promise<{ header: string | undefined; check: unknown }> {
  const tx = db.transaction([META], 'readonly');
  const meta = tx.objectStore(META);
  const [header, check] = await Promise.all([req(meta.get('kdf')), req(meta.get('check'))]);
  if (header !== undefined && typeof header !== 'string') throw new ClientError('store-corrupt', 'the key header in IndexedDB is malformed');
  return { header, check };
}

/** Writes the header and check value unless a header is there already (another tab won): true when written. */
async function writeHeaderIfAbsent(db: IDBDatabase, header: string, check: Uint8Array): Promise<boolean> {
  const tx = db.transaction([META], 'readwrite', { durability: 'strict' });
  const done = new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new ClientError('internal', 'writing the key header was aborted'));
  });
  const meta = tx.objectStore(META);
  if ((await req(meta.count('kdf'))) > 0) {
    await done;
    return false;
  }
  await req(meta.put(header, 'kdf'));
  await req(meta.put(check, 'check'));
  await done;
  return true;
}

export { ALL_STORES as INDEXEDDB_OBJECT_STORES };
