/**
 * The SQLite store (better-sqlite3-multiple-ciphers, WAL) behind the asynchronous Store
 * contract: better-sqlite3 is synchronous, so every read and every transaction runs at once.
 * Schema and migrations: see docs/STORE.md. One StoreBatch = one SQLite transaction.
 *
 * Durability is synchronous=FULL's (a resolved write survives a power loss: persist before
 * publish), with the fsync off the event loop: SQLite commits under synchronous=NORMAL and the
 * store fsyncs the -wal file on the thread pool; `write` resolves only once an fsync that began
 * after its COMMIT has finished. Writes that commit while an fsync runs share the next one (group
 * commit), and a read waits for the fsync of every commit before it, so nothing a caller can
 * observe is lost by a power cut. docs/STORE.md, "Durability".
 *
 * The whole file (and its WAL) is encrypted by SQLite3 Multiple Ciphers (AEGIS-256 per page;
 * ChaCha20-Poly1305 in stores made before 3 December 2026, as their key header says) under a raw key derived from the app's key or the passphrase (at-rest.ts); no column is
 * readable without it. A wrong key is reported as ClientError('wrong-passphrase') before anything
 * is written. A store made before this format (clear file, secrets sealed per row) is migrated
 * at open (legacy-store-migration.ts).
 *
 * The database is opened in exclusive locking mode: a second process (or a second client in this
 * process) that opens the same file gets ClientError('store-locked') instead of forking the
 * ratchet state.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { utf8, fromUtf8, concat, type CryptoProvider } from '@umbra/protocol';
import { nodeProvider } from './crypto/node-provider.ts';
import { ClientError } from './errors.ts';
import { checkUnlock } from './at-rest-scheme.ts';
import { deriveSubkey, fsyncDirectory, keyHeaderPath, keySqliteDatabase, makePrivateDirectory, makePrivateFiles, readKeyHeader, sqlitePageCipher, unlockMasterKey, type Argon2idParams } from './at-rest.ts';
import { isClearSqliteFile, migrateLegacyStore } from './legacy-store-migration.ts';
import { checkBytes, checkLimit, checkPosition, checkSeq, checkString, compareStrings, ENVELOPE_HASH_BYTES, MESSAGE_ID_BYTES, validateBatch } from './store-validation.ts';
import type {
  AccountReads,
  ConversationMeta,
  ConversationReads,
  DirectoryReads,
  GroupReads,
  MessageReads,
  MessageStatus,
  MissingEntry,
  OutboxEntry,
  OutboxReads,
  ServiceAccountReads,
  SettingsReads,
  Store,
  StoreBatch,
  StoredGroupMessage,
  StoredInbox,
  StoredMessage,
} from './store.ts';

type Db = Database.Database;

/** Versioned migrations: entry i brings user_version from i to i + 1. Never edit a shipped one. */
export const MIGRATIONS: readonly string[] = [
  // 0 → 1: the first schema.
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
  CREATE TABLE account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    public_key BLOB NOT NULL,
    secret BLOB NOT NULL,            -- sealed: Ed25519 seed
    profile BLOB NOT NULL,           -- sealed: UTF-8 display name
    created_at INTEGER NOT NULL
  );
  CREATE TABLE inboxes (
    invitation_id BLOB PRIMARY KEY,
    state BLOB NOT NULL,             -- sealed: serializeInbox (identity, prekeys, one-time key)
    is_default INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    state BLOB NOT NULL,             -- sealed: serializeConversation (ratchet, skipped keys, hints)
    consent TEXT NOT NULL CHECK (consent IN ('allowed', 'unknown', 'denied')),
    origin TEXT NOT NULL CHECK (origin IN ('accepted', 'invitation', 'default-inbox')),
    lamport INTEGER NOT NULL,
    recent_ids BLOB NOT NULL,        -- up to 8 × 16-byte message ids, oldest first
    created_at INTEGER NOT NULL,
    last_activity_at INTEGER NOT NULL
  );
  CREATE TABLE messages (
    seq INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    message_id BLOB NOT NULL,
    outgoing INTEGER NOT NULL,
    lamport INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    received_at INTEGER,
    body BLOB NOT NULL,              -- sealed: encoded umbra.v1.Content
    status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'acked', 'failed', 'received')),
    read INTEGER NOT NULL,
    UNIQUE (conversation_id, message_id)
  );
  CREATE INDEX messages_order ON messages (conversation_id, lamport, message_id);
  CREATE INDEX messages_unread ON messages (conversation_id) WHERE read = 0;
  CREATE TABLE outbox (
    conversation_id TEXT NOT NULL,
    message_id BLOB NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('content', 'handshake')),
    lamport INTEGER NOT NULL,        -- the message's Lamport time: queued entries go out in this order
    envelope BLOB,                   -- wire bytes (already end-to-end encrypted); NULL while queued
    hint_hour INTEGER NOT NULL,
    hint_index INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, message_id)
  ) WITHOUT ROWID;
  CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE envelope IS NOT NULL;
  CREATE INDEX outbox_queued ON outbox (conversation_id, lamport) WHERE envelope IS NULL;
  CREATE INDEX outbox_in_flight ON outbox (conversation_id) WHERE envelope IS NOT NULL AND kind = 'content';
  CREATE TABLE seen_envelopes (
    hash BLOB PRIMARY KEY,           -- SHA-256 of the envelope bytes
    conversation_id TEXT,
    message_id BLOB,
    seen_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX seen_envelopes_age ON seen_envelopes (seen_at);
  CREATE TABLE missing (
    conversation_id TEXT NOT NULL,
    message_id BLOB NOT NULL,
    noticed_at INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    next_request_at INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, message_id)
  ) WITHOUT ROWID;
  CREATE INDEX missing_due ON missing (next_request_at);
  CREATE TABLE cursors (route TEXT PRIMARY KEY, cursor TEXT NOT NULL) WITHOUT ROWID;
  `,
  // 1 → 2: group/v1 (docs/GROUPS.md, client section).
  `
  ALTER TABLE messages ADD COLUMN is_group INTEGER NOT NULL DEFAULT 0; -- 1: a group frame carried pairwise (not 1:1 history)
  CREATE TABLE groups (
    chat_id TEXT PRIMARY KEY,
    record BLOB NOT NULL,            -- sealed: JSON (status, group key, bindings, cards, pending work)
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE group_events (
    chat_id TEXT NOT NULL REFERENCES groups(chat_id),
    digest BLOB NOT NULL,            -- SHA-256 of the wire bytes (de-duplication)
    wire BLOB NOT NULL,              -- sealed: signature ‖ raw, verbatim
    PRIMARY KEY (chat_id, digest)
  ) WITHOUT ROWID;
  CREATE TABLE group_messages (
    seq INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL REFERENCES groups(chat_id),
    message_id TEXT NOT NULL,
    author TEXT NOT NULL,
    outgoing INTEGER NOT NULL,
    clock INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    received_at INTEGER,
    entity BLOB NOT NULL,            -- sealed: GroupChatMessage bytes, verbatim
    UNIQUE (chat_id, message_id)
  );
  `,
  // 2 → 3: the state that lived in side files (issue 15): the services account, directory
  // client states, app settings. Documents are JSON text, written whole by one batch.
  `
  CREATE TABLE service_account (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    document TEXT NOT NULL           -- ServicesState JSON (issuer secret, inbox keys, seeds, tokens)
  );
  CREATE TABLE directory_states (
    url TEXT PRIMARY KEY,            -- the directory's base URL
    document TEXT NOT NULL           -- DirectoryClient state JSON
  ) WITHOUT ROWID;
  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
];


export const SCHEMA_VERSION = MIGRATIONS.length;

export interface SqliteStoreOptions {
  /** A file path, or ':memory:' (tests). */
  readonly path: string;
  /** Derive the store key from this passphrase (Argon2id). */
  readonly passphrase?: string;
  /** Or use this 32-byte key supplied by the app (OS keychain, tests). */
  readonly key?: Uint8Array;
  readonly crypto?: CryptoProvider;
  /** Argon2id parameters for a *new* store (an existing store keeps its own). */
  readonly argon2id?: Argon2idParams;
}

const RECENT_ID_BYTES = MESSAGE_ID_BYTES;

function packIds(ids: readonly Uint8Array[]): Uint8Array {
  return concat(...ids);
}

/** Shared by every meta without recent ids (most, at open): one array instead of a Buffer, a view and an array each. */
const NO_IDS: readonly Uint8Array[] = Object.freeze([]);

/**
 * The literals of the short enum columns, which the open reads as one integer (loadConversations):
 * each meta shares these strings instead of keeping two of its own.
 */
const CONSENTS: readonly ConversationMeta['consent'][] = ['allowed', 'unknown', 'denied'];
const ORIGINS: readonly ConversationMeta['origin'][] = ['accepted', 'invitation', 'default-inbox'];

function unpackIds(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i + RECENT_ID_BYTES <= b.length; i += RECENT_ID_BYTES) out.push(b.slice(i, i + RECENT_ID_BYTES));
  return out;
}

/**
 * A blob as a plain Uint8Array. better-sqlite3 gives each blob a Buffer of its own memory, so a
 * view over it is enough (no copy: at open that is every conversation's state); a Buffer that
 * shares its memory (a pool slice) is copied, so no caller ever holds bytes of another value.
 */
const u8 = (b: Buffer | Uint8Array): Uint8Array =>
  b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? new Uint8Array(b.buffer, 0, b.byteLength) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();

function sqliteCode(e: unknown): string {
  return (e as { code?: string }).code ?? '';
}

function isBusy(e: unknown): boolean {
  const code = sqliteCode(e);
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

interface Row {
  [k: string]: unknown;
}

function rowToMessage(r: Row): StoredMessage {
  return {
    conversationId: r.conversation_id as string,
    messageId: u8(r.message_id as Buffer),
    outgoing: r.outgoing === 1,
    lamport: r.lamport as number,
    sentAt: r.sent_at as number,
    receivedAt: (r.received_at as number | null) ?? null,
    body: u8(r.body as Buffer),
    status: r.status as MessageStatus,
    read: r.read === 1,
    ...(r.is_group === 1 ? { group: true } : {}),
  };
}

function rowToOutbox(r: Row): OutboxEntry {
  return {
    conversationId: r.conversation_id as string,
    messageId: u8(r.message_id as Buffer),
    kind: r.kind as OutboxEntry['kind'],
    lamport: r.lamport as number,
    envelope: r.envelope === null ? null : u8(r.envelope as Buffer),
    hintHour: r.hint_hour as number,
    hintIndex: r.hint_index as number,
    attempts: r.attempts as number,
    nextAttemptAt: r.next_attempt_at as number,
    createdAt: r.created_at as number,
  };
}

function rowToMissing(r: Row): MissingEntry {
  return {
    conversationId: r.conversation_id as string,
    messageId: u8(r.message_id as Buffer),
    noticedAt: r.noticed_at as number,
    requests: r.requests as number,
    nextRequestAt: r.next_request_at as number,
  };
}

function rowToGroupMessage(r: Row): StoredGroupMessage {
  return {
    chatId: r.chat_id as string,
    messageId: r.message_id as string,
    author: r.author as string,
    outgoing: r.outgoing === 1,
    clock: r.clock as number,
    sentAt: r.sent_at as number,
    receivedAt: (r.received_at as number | null) ?? null,
    entity: u8(r.entity as Buffer),
    seq: r.seq as number,
  };
}

function prepareStatements(db: Db) {
  const p = (sql: string) => db.prepare(sql);
  return {
    putAccount: p(`INSERT OR REPLACE INTO account (id, public_key, secret, profile, created_at) VALUES (1, ?, ?, ?, ?)`),
    putInbox: p(`INSERT OR REPLACE INTO inboxes (invitation_id, state, is_default, expires_at, created_at) VALUES (?, ?, ?, ?, ?)`),
    putConversation: p(`INSERT INTO conversations (id, state, consent, origin, lamport, recent_ids, created_at, last_activity_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET state = excluded.state, consent = excluded.consent, origin = excluded.origin, lamport = excluded.lamport,
        recent_ids = excluded.recent_ids, created_at = excluded.created_at, last_activity_at = excluded.last_activity_at`),
    putMeta: p(`UPDATE conversations SET consent = ?, lamport = ?, recent_ids = ?, last_activity_at = ? WHERE id = ?`),
    putCursor: p(`INSERT OR REPLACE INTO cursors (route, cursor) VALUES (?, ?)`),
    delMissing: p(`DELETE FROM missing WHERE conversation_id = ? AND message_id = ?`),
    putMessage: p(`INSERT OR IGNORE INTO messages (conversation_id, message_id, outgoing, lamport, sent_at, received_at, body, status, read, is_group)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    setStatus: p(`UPDATE messages SET status = ? WHERE conversation_id = ? AND message_id = ?`),
    markRead: p(`UPDATE messages SET read = 1 WHERE conversation_id = ? AND read = 0
      AND (lamport < ? OR (lamport = ? AND message_id <= ?))`),
    putSeen: p(`INSERT OR IGNORE INTO seen_envelopes (hash, conversation_id, message_id, seen_at) VALUES (?, ?, ?, ?)`),
    prune: p(`DELETE FROM seen_envelopes WHERE seen_at < ?`),
    putOutbox: p(`INSERT OR REPLACE INTO outbox (conversation_id, message_id, kind, lamport, envelope, hint_hour, hint_index, attempts, next_attempt_at, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    delOutbox: p(`DELETE FROM outbox WHERE conversation_id = ? AND message_id = ?`),
    failOutbox: p(`UPDATE messages SET status = 'failed' WHERE conversation_id = ? AND status IN ('queued', 'sent')
      AND message_id IN (SELECT message_id FROM outbox WHERE conversation_id = ?)`),
    dropOutbox: p(`DELETE FROM outbox WHERE conversation_id = ?`),
    putGroup: p(`INSERT OR REPLACE INTO groups (chat_id, record, updated_at) VALUES (?, ?, ?)`),
    putGroupEvent: p(`INSERT OR IGNORE INTO group_events (chat_id, digest, wire) VALUES (?, ?, ?)`),
    putGroupMessage: p(`INSERT OR IGNORE INTO group_messages (chat_id, message_id, author, outgoing, clock, sent_at, received_at, entity)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
    putServiceAccount: p(`INSERT OR REPLACE INTO service_account (id, document) VALUES (1, ?)`),
    delServiceAccount: p(`DELETE FROM service_account`),
    putDirectory: p(`INSERT OR REPLACE INTO directory_states (url, document) VALUES (?, ?)`),
    delDirectory: p(`DELETE FROM directory_states WHERE url = ?`),
    putSetting: p(`INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)`),
    delSetting: p(`DELETE FROM settings WHERE key = ?`),

    loadAccount: p(`SELECT * FROM account WHERE id = 1`),
    loadInboxes: p(`SELECT * FROM inboxes ORDER BY created_at, invitation_id`),
    // Rowid order, sorted in JS: ORDER BY on the unindexed created_at made SQLite sort every row
    // with its state (a temp b-tree of the whole table: 1.8 s at 100,000 conversations). No
    // recent ids come back as NULL, not as an empty Buffer (an allocation per row at open).
    // consent and origin as one small integer (CONSENTS[k & 3], ORIGINS[k >> 2]; the columns'
    // CHECKs admit nothing else): a value per row instead of two strings, 13 % of this read's
    // CPU at 100,000 rows.
    loadConversations: p(
      `SELECT id, (CASE consent WHEN 'allowed' THEN 0 WHEN 'unknown' THEN 1 ELSE 2 END) | (CASE origin WHEN 'accepted' THEN 0 WHEN 'invitation' THEN 4 ELSE 8 END), lamport, nullif(recent_ids, x''), created_at, last_activity_at, state FROM conversations`,
    ).raw(true),
    getCursor: p(`SELECT cursor FROM cursors WHERE route = ?`),
    legacyMissing: p(`SELECT * FROM missing ORDER BY conversation_id, noticed_at, message_id`),
    getMessage: p(`SELECT * FROM messages WHERE conversation_id = ? AND message_id = ?`),
    getMessageState: p(`SELECT outgoing, status, lamport FROM messages WHERE conversation_id = ? AND message_id = ?`),
    historyLatest: p(`SELECT * FROM messages WHERE conversation_id = ? AND is_group = 0 ORDER BY lamport DESC, message_id DESC LIMIT ?`),
    historyBefore: p(`SELECT * FROM messages WHERE conversation_id = ? AND is_group = 0 AND (lamport < ? OR (lamport = ? AND message_id < ?))
      ORDER BY lamport DESC, message_id DESC LIMIT ?`),
    unread: p(`SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ? AND read = 0`),
    count: p(`SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ? AND is_group = 0`),
    incomingIds: p(`SELECT message_id FROM messages WHERE conversation_id = ? AND outgoing = 0 ORDER BY lamport DESC, message_id DESC LIMIT ?`),
    getSeen: p(`SELECT * FROM seen_envelopes WHERE hash = ?`),
    getOutbox: p(`SELECT * FROM outbox WHERE conversation_id = ? AND message_id = ?`),
    outboxOf: p(`SELECT * FROM outbox WHERE conversation_id = ? ORDER BY created_at, message_id`),
    queuedOf: p(`SELECT * FROM outbox INDEXED BY outbox_queued WHERE conversation_id = ? AND envelope IS NULL ORDER BY lamport, message_id LIMIT ?`),
    queuedConvs: p(`SELECT DISTINCT conversation_id FROM outbox WHERE envelope IS NULL ORDER BY conversation_id`),
    pendingAll: p(`SELECT COUNT(*) AS n FROM outbox`),
    pendingOf: p(`SELECT COUNT(*) AS n FROM outbox WHERE conversation_id = ?`),
    loadGroups: p(`SELECT * FROM groups ORDER BY chat_id`),
    loadGroupEvents: p(`SELECT chat_id, wire FROM group_events ORDER BY chat_id, digest`),
    getGroupMessage: p(`SELECT * FROM group_messages WHERE chat_id = ? AND message_id = ?`),
    groupLatest: p(`SELECT * FROM group_messages WHERE chat_id = ? ORDER BY seq DESC LIMIT ?`),
    groupBefore: p(`SELECT * FROM group_messages WHERE chat_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`),
    getServiceAccount: p(`SELECT document FROM service_account WHERE id = 1`),
    getDirectory: p(`SELECT document FROM directory_states WHERE url = ?`),
    getSetting: p(`SELECT value FROM settings WHERE key = ?`),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export class SqliteStore implements Store {
  private readonly db: Db;
  private closed = false;
  private readonly s: Statements;
  private readonly writeTx: (batch: StoreBatch) => void;
  /** The -wal file to fsync after each COMMIT; null in memory (nothing is at rest). */
  private readonly walPath: string | null;
  private walFd: number | null = null;
  /** Transactions committed so far, and how many of them a finished fsync covers. */
  private committed = 0;
  private synced = 0;
  /** Callers waiting for `synced` to reach their commit, in commit order. */
  private waiters: { upTo: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private syncLoop: Promise<void> = Promise.resolve();
  private syncRunning = false;
  /** An fsync failed: the kernel may have dropped the dirty pages, so nothing committed since can be promised durable. */
  private syncFailure: ClientError | null = null;

  readonly account: AccountReads = {
    get: () =>
      this.read((s) => {
        const a = s.loadAccount.get() as Row | undefined;
        if (a === undefined) return null;
        return {
          publicKey: u8(a.public_key as Buffer),
          secretKey: u8(a.secret as Buffer),
          profileName: fromUtf8(u8(a.profile as Buffer)) ?? '',
          createdAt: a.created_at as number,
        };
      }),
    inboxes: () =>
      this.read((s) =>
        (s.loadInboxes.all() as Row[]).map(
          (r): StoredInbox => ({
            invitationId: u8(r.invitation_id as Buffer),
            state: u8(r.state as Buffer),
            isDefault: r.is_default === 1,
            expiresAt: r.expires_at as number,
            createdAt: r.created_at as number,
          }),
        ),
      ),
  };

  readonly conversations: ConversationReads = {
    all: () =>
      this.read((s) => {
        // Raw rows (arrays in the SELECT's column order): no object with eight named properties per row.
        const out = (s.loadConversations.all() as unknown[][]).map(([id, kinds, lamport, recentIds, createdAt, lastActivityAt, state]) => ({
          meta: {
            id: id as string,
            consent: CONSENTS[(kinds as number) & 3]!,
            origin: ORIGINS[(kinds as number) >> 2]!,
            lamport: lamport as number,
            recentIds: recentIds === null ? NO_IDS : unpackIds(u8(recentIds as Buffer)),
            createdAt: createdAt as number,
            lastActivityAt: lastActivityAt as number,
          },
          state: u8(state as Buffer),
        }));
        return out.sort((a, b) => a.meta.createdAt - b.meta.createdAt || compareStrings(a.meta.id, b.meta.id));
      }),
    cursor: (route) =>
      this.read((s) => {
        checkString(route, 'route');
        const r = s.getCursor.get(route) as { cursor: string } | undefined;
        return r === undefined ? null : r.cursor;
      }),
    legacyMissing: () => this.read((s) => (s.legacyMissing.all() as Row[]).map(rowToMissing)),
  };

  readonly messages: MessageReads = {
    get: (conversationId, messageId) =>
      this.read((s) => {
        checkKey(conversationId, messageId);
        const r = s.getMessage.get(conversationId, messageId) as Row | undefined;
        return r === undefined ? null : rowToMessage(r);
      }),
    state: (conversationId, messageId) =>
      this.read((s) => {
        checkKey(conversationId, messageId);
        const r = s.getMessageState.get(conversationId, messageId) as Row | undefined;
        return r === undefined ? null : { outgoing: r.outgoing === 1, status: r.status as MessageStatus, lamport: r.lamport as number };
      }),
    history: (conversationId, limit, before) =>
      this.read((s) => {
        checkString(conversationId, 'conversationId');
        checkLimit(limit);
        checkPosition(before);
        const rows = (
          before === null ? s.historyLatest.all(conversationId, limit) : s.historyBefore.all(conversationId, before.lamport, before.lamport, before.messageId, limit)
        ) as Row[];
        return rows.map(rowToMessage);
      }),
    unreadCount: (conversationId) => this.read((s) => (checkString(conversationId, 'conversationId'), (s.unread.get(conversationId) as { n: number }).n)),
    count: (conversationId) => this.read((s) => (checkString(conversationId, 'conversationId'), (s.count.get(conversationId) as { n: number }).n)),
    incomingIds: (conversationId, limit) =>
      this.read((s) => {
        checkString(conversationId, 'conversationId');
        checkLimit(limit);
        return (s.incomingIds.all(conversationId, limit) as Row[]).map((r) => u8(r.message_id as Buffer));
      }),
    seenEnvelope: (hash) =>
      this.read((s) => {
        checkBytes(hash, 'hash', ENVELOPE_HASH_BYTES);
        const r = s.getSeen.get(hash) as Row | undefined;
        if (r === undefined) return null;
        return {
          hash: u8(r.hash as Buffer),
          conversationId: (r.conversation_id as string | null) ?? null,
          messageId: r.message_id === null ? null : u8(r.message_id as Buffer),
          seenAt: r.seen_at as number,
        };
      }),
  };

  readonly outbox: OutboxReads = {
    entry: (conversationId, messageId) =>
      this.read((s) => {
        checkKey(conversationId, messageId);
        const r = s.getOutbox.get(conversationId, messageId) as Row | undefined;
        return r === undefined ? null : rowToOutbox(r);
      }),
    forConversation: (conversationId) => this.read((s) => (checkString(conversationId, 'conversationId'), (s.outboxOf.all(conversationId) as Row[]).map(rowToOutbox))),
    queued: (conversationId, limit) =>
      this.read((s) => {
        checkString(conversationId, 'conversationId');
        checkLimit(limit);
        return (s.queuedOf.all(conversationId, limit) as Row[]).map(rowToOutbox);
      }),
    conversationsWithQueued: () => this.read((s) => (s.queuedConvs.all() as Row[]).map((r) => r.conversation_id as string)),
    pendingCount: (conversationId) =>
      this.read((s) => {
        if (conversationId === undefined) return (s.pendingAll.get() as { n: number }).n;
        checkString(conversationId, 'conversationId');
        return (s.pendingOf.get(conversationId) as { n: number }).n;
      }),
  };

  readonly groups: GroupReads = {
    all: () =>
      this.read((s) => {
        const events = new Map<string, Uint8Array[]>();
        for (const r of s.loadGroupEvents.all() as Row[]) {
          const chatId = r.chat_id as string;
          const list = events.get(chatId) ?? [];
          list.push(u8(r.wire as Buffer));
          events.set(chatId, list);
        }
        return (s.loadGroups.all() as Row[]).map((r) => {
          const chatId = r.chat_id as string;
          return { group: { chatId, record: u8(r.record as Buffer), updatedAt: r.updated_at as number }, events: events.get(chatId) ?? [] };
        });
      }),
    message: (chatId, messageId) =>
      this.read((s) => {
        checkString(chatId, 'chatId');
        checkString(messageId, 'messageId');
        const r = s.getGroupMessage.get(chatId, messageId) as Row | undefined;
        return r === undefined ? null : rowToGroupMessage(r);
      }),
    messages: (chatId, limit, beforeSeq) =>
      this.read((s) => {
        checkString(chatId, 'chatId');
        checkLimit(limit);
        checkSeq(beforeSeq);
        const rows = (beforeSeq === null ? s.groupLatest.all(chatId, limit) : s.groupBefore.all(chatId, beforeSeq, limit)) as Row[];
        return rows.map(rowToGroupMessage);
      }),
  };

  readonly serviceAccount: ServiceAccountReads = {
    get: () => this.read((s) => (s.getServiceAccount.get() as { document: string } | undefined)?.document ?? null),
  };

  readonly directory: DirectoryReads = {
    get: (url) => this.read((s) => (checkString(url, 'url'), (s.getDirectory.get(url) as { document: string } | undefined)?.document ?? null)),
  };

  readonly settings: SettingsReads = {
    get: (key) => this.read((s) => (checkString(key, 'key'), (s.getSetting.get(key) as { value: string } | undefined)?.value ?? null)),
  };

  private constructor(db: Db, walPath: string | null) {
    this.db = db;
    this.walPath = walPath;
    this.s = prepareStatements(db);
    this.writeTx = db.transaction((batch: StoreBatch) => this.applyBatch(batch));
  }

  /**
   * Open (creating and migrating if needed). Rejects with ClientError on bad options, a wrong
   * key, a locked or corrupt file. With a passphrase this takes one Argon2id derivation (two
   * when a store of the per-row format is migrated: its old key, then the new one).
   */
  static async open(options: SqliteStoreOptions): Promise<SqliteStore> {
    const { store, masterKey } = await SqliteStore.openWithMasterKey(options);
    masterKey?.fill(0);
    return store;
  }

  /**
   * As `open`, and also hands back the master key (null for ':memory:'), for the data dir's
   * side files made under the same key (legacy-side-files.ts). The caller zeroes it.
   */
  static async openWithMasterKey(options: SqliteStoreOptions): Promise<{ store: SqliteStore; masterKey: Uint8Array | null }> {
    if (options === null || typeof options !== 'object' || typeof options.path !== 'string' || options.path.length === 0) {
      throw new ClientError('invalid-argument', 'SqliteStore.open needs a path');
    }
    checkUnlock(options);
    const crypto = options.crypto ?? nodeProvider;
    const { path } = options;
    const inMemory = path === ':memory:';
    let db: Db | null = null;
    let master: Uint8Array | null = null;
    try {
      if (!inMemory) {
        master = await SqliteStore.prepareFile(options, crypto);
        master ??= await unlockMasterKey(keyHeaderPath(path), options, true);
      }
      db = new Database(path, { timeout: 250 });
      if (master !== null) {
        const rawKey = deriveSubkey(master, 'store');
        keySqliteDatabase(db, rawKey, sqlitePageCipher(keyHeaderPath(path)));
        rawKey.fill(0);
      }
      // The first read decrypts page 1: a wrong key fails here, before any write.
      db.prepare('SELECT count(*) FROM sqlite_master').get();
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN IMMEDIATE; COMMIT;'); // takes the exclusive lock now
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw new ClientError('store-unsupported-version', `the store has schema version ${version}; this client knows up to ${SCHEMA_VERSION}`);
      }
      SqliteStore.migrate(db, version);
      db.prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES ('created_at', ?)`).run(utf8(String(Date.now())));
      if (!inMemory) makePrivateFiles(path, `${path}-wal`, `${path}-shm`, `${path}-journal`);
      return { store: new SqliteStore(db, inMemory ? null : `${path}-wal`), masterKey: master };
    } catch (e) {
      db?.close();
      master?.fill(0);
      throw SqliteStore.openError(e);
    }
  }

  /**
   * The directory made private; an old clear store migrated (returning the master key it
   * unlocked, so it is not derived twice); an encrypted one without its key header refused.
   */
  private static async prepareFile(options: SqliteStoreOptions, crypto: CryptoProvider): Promise<Uint8Array | null> {
    const { path } = options;
    if (!existsSync(dirname(path))) throw new ClientError('store-corrupt', `cannot open the store: ${dirname(path)} does not exist`);
    makePrivateDirectory(dirname(path));
    if (isClearSqliteFile(path)) {
      let master: Uint8Array | null = null;
      try {
        await migrateLegacyStore(path, options, crypto, {
          schemaVersion: SCHEMA_VERSION,
          createSchema: (db, version) => SqliteStore.migrate(db, 0, version),
          newStoreKey: async () => {
            master = await unlockMasterKey(keyHeaderPath(path), options, true);
            return { rawKey: deriveSubkey(master, 'store'), cipher: sqlitePageCipher(keyHeaderPath(path)) };
          },
        });
      } catch (e) {
        (master as Uint8Array | null)?.fill(0);
        throw e;
      }
      return master;
    }
    if (existsSync(path) && statSync(path).size > 0 && readKeyHeader(keyHeaderPath(path)) === null) {
      throw new ClientError('store-corrupt', `the store's key header ${keyHeaderPath(path)} is missing`);
    }
    return null;
  }

  private static openError(e: unknown): ClientError {
    if (e instanceof ClientError) return e;
    if (isBusy(e)) return new ClientError('store-locked', 'the store is open in another client or process', { cause: e });
    // SQLite3 Multiple Ciphers reports a page that does not decrypt (wrong key) as "not a database".
    if (sqliteCode(e) === 'SQLITE_NOTADB') return new ClientError('wrong-passphrase', 'wrong passphrase or key for this store (or the file is damaged)', { cause: e });
    return new ClientError('store-corrupt', `cannot open the store: ${(e as Error).message}`, { cause: e });
  }

  private static migrate(db: Db, from: number, to: number = SCHEMA_VERSION): void {
    for (let v = from; v < to; v++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[v]!);
        db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  private live(): void {
    if (this.closed) throw new ClientError('client-closed', 'the store is closed');
  }

  /**
   * Runs one synchronous read. A page that fails its authentication tag (a damaged or edited
   * file) is store-corrupt, never a half-read answer.
   */
  private async read<T>(query: (s: Statements) => T): Promise<T> {
    this.live();
    const upTo = this.committed;
    let result: T;
    try {
      result = query(this.s);
    } catch (e) {
      if (e instanceof ClientError) throw e;
      if (isBusy(e)) throw new ClientError('store-locked', 'the store is busy', { cause: e });
      throw new ClientError('store-corrupt', `the store cannot be read: ${(e as Error).message}`, { cause: e });
    }
    // The answer may show a commit whose fsync is still running: hand it over only once that is on disk.
    if (this.synced < upTo) await this.durable(upTo);
    return result;
  }

  /** Resolves once a finished fsync covers the first `upTo` commits. */
  private durable(upTo: number): Promise<void> {
    if (this.syncFailure !== null) return Promise.reject(this.syncFailure);
    if (this.synced >= upTo) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ upTo, resolve, reject }));
    if (!this.syncRunning) {
      this.syncRunning = true;
      this.syncLoop = this.syncAll();
    }
    return done;
  }

  /** fsyncs the WAL for every commit made before each fsync began; again while more arrive. */
  private async syncAll(): Promise<void> {
    try {
      while (this.synced < this.committed && this.syncFailure === null) {
        const upTo = this.committed;
        try {
          // SQLite keeps one -wal file for the connection's life (it restarts it in place after a
          // checkpoint), so one descriptor serves; the first time, its directory entry is synced too.
          if (this.walFd === null) {
            // Opened for writing (never written): Windows flushes only a handle with write access.
            this.walFd = openSync(this.walPath!, 'r+');
            fsyncDirectory(dirname(this.walPath!));
          }
          const fd = this.walFd;
          await new Promise<void>((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())));
        } catch (e) {
          this.syncFailure = new ClientError('store-corrupt', `the store could not be flushed to disk (${(e as Error).message}); no write is accepted until it is reopened`, { cause: e });
          for (const w of this.waiters) w.reject(this.syncFailure);
          this.waiters = [];
          return;
        }
        this.synced = upTo;
        const ready = this.waiters.filter((w) => w.upTo <= upTo);
        this.waiters = this.waiters.filter((w) => w.upTo > upTo);
        for (const w of ready) w.resolve();
      }
    } finally {
      // In the same turn as the last check of `committed` (no await between): a later commit starts a new loop.
      this.syncRunning = false;
    }
  }

  // ---- writes --------------------------------------------------------------------------

  async write(batch: StoreBatch): Promise<void> {
    this.live();
    if (this.syncFailure !== null) throw this.syncFailure;
    validateBatch(batch);
    try {
      this.writeTx(batch);
    } catch (e) {
      throw SqliteStore.writeError(e);
    }
    if (this.walPath === null) return;
    await this.durable(++this.committed);
  }

  private static writeError(e: unknown): ClientError {
    if (e instanceof ClientError) return e;
    const code = sqliteCode(e);
    if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
      return new ClientError('invalid-argument', 'store: a message, group event or group message for a conversation or group that is not stored', { cause: e });
    }
    if (code.startsWith('SQLITE_CONSTRAINT')) return new ClientError('invalid-argument', `store: ${(e as Error).message}`, { cause: e });
    if (isBusy(e)) return new ClientError('store-locked', 'the store is busy', { cause: e });
    if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB') return new ClientError('store-corrupt', `the store cannot be written: ${(e as Error).message}`, { cause: e });
    return new ClientError('internal', `the store write failed: ${(e as Error).message}`, { cause: e });
  }

  /** In the order of StoreBatch's fields (store.ts). */
  private applyBatch(b: StoreBatch): void {
    const s = this.s;
    if (b.account !== undefined) {
      const a = b.account;
      s.putAccount.run(a.publicKey, a.secretKey, utf8(a.profileName), a.createdAt);
    }
    for (const i of b.inboxes ?? []) s.putInbox.run(i.invitationId, i.state, i.isDefault ? 1 : 0, i.expiresAt, i.createdAt);
    for (const c of b.conversations ?? []) {
      const m = c.meta;
      s.putConversation.run(m.id, c.state, m.consent, m.origin, m.lamport, packIds(m.recentIds), m.createdAt, m.lastActivityAt);
    }
    for (const m of b.conversationMeta ?? []) s.putMeta.run(m.consent, m.lamport, packIds(m.recentIds), m.lastActivityAt, m.id);
    for (const c of b.cursors ?? []) s.putCursor.run(c.route, c.cursor);
    for (const k of b.missingDelete ?? []) s.delMissing.run(k.conversationId, k.messageId);
    for (const m of b.messages ?? []) {
      s.putMessage.run(m.conversationId, m.messageId, m.outgoing ? 1 : 0, m.lamport, m.sentAt, m.receivedAt, m.body, m.status, m.read ? 1 : 0, m.group === true ? 1 : 0);
    }
    for (const m of b.messageStatus ?? []) s.setStatus.run(m.status, m.conversationId, m.messageId);
    for (const r of b.markRead ?? []) s.markRead.run(r.conversationId, r.upToLamport, r.upToLamport, r.upToMessageId);
    for (const e of b.seenEnvelopes ?? []) s.putSeen.run(e.hash, e.conversationId, e.messageId, e.seenAt);
    if (b.pruneSeenBefore !== undefined) s.prune.run(b.pruneSeenBefore);
    for (const o of b.outboxPut ?? []) {
      s.putOutbox.run(o.conversationId, o.messageId, o.kind, o.lamport, o.envelope, o.hintHour, o.hintIndex, o.attempts, o.nextAttemptAt, o.createdAt);
    }
    for (const k of b.outboxDelete ?? []) s.delOutbox.run(k.conversationId, k.messageId);
    for (const id of b.abandonOutbox ?? []) {
      s.failOutbox.run(id, id);
      s.dropOutbox.run(id);
    }
    for (const g of b.groups ?? []) s.putGroup.run(g.chatId, g.record, g.updatedAt);
    for (const e of b.groupEvents ?? []) s.putGroupEvent.run(e.chatId, createHash('sha256').update(e.wire).digest(), e.wire);
    for (const m of b.groupMessages ?? []) {
      s.putGroupMessage.run(m.chatId, m.messageId, m.author, m.outgoing ? 1 : 0, m.clock, m.sentAt, m.receivedAt, m.entity);
    }
    if (b.serviceAccount !== undefined) {
      if (b.serviceAccount === null) s.delServiceAccount.run();
      else s.putServiceAccount.run(b.serviceAccount);
    }
    for (const d of b.directoryStates ?? []) {
      if (d.state === null) s.delDirectory.run(d.url);
      else s.putDirectory.run(d.url, d.state);
    }
    for (const x of b.settings ?? []) {
      if (x.value === null) s.delSetting.run(x.key);
      else s.putSetting.run(x.key, x.value);
    }
  }

  // ---- other ---------------------------------------------------------------------------

  /** Size of the database file's pages in use (for benchmarks). */
  sizeBytes(): number {
    this.live();
    const pageCount = this.db.pragma('page_count', { simple: true }) as number;
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    return pageCount * pageSize;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Writes already committed still get their fsync (and their answer) before the file closes.
    await this.syncLoop;
    if (this.walFd !== null) closeSync(this.walFd);
    this.db.close();
  }

  /** For tests: the raw database handle (to inspect what is stored in clear). */
  rawForTests(): Db {
    return this.db;
  }
}

function checkKey(conversationId: string, messageId: Uint8Array): void {
  checkString(conversationId, 'conversationId');
  checkBytes(messageId, 'messageId', MESSAGE_ID_BYTES);
}
