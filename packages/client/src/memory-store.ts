/**
 * The in-memory Store: everything in Maps, nothing at rest (tests, ephemeral apps, a browser
 * session that must leave no trace). Platform-neutral. Same semantics as SqliteStore, checked by
 * the same contract suite (test/store-contract.ts):
 *
 * - atomic batches: a batch is validated, then applied to a draft that copies (on first touch)
 *   only the maps it changes, and the draft replaces the live state only when every change
 *   applied; a batch that throws half-way leaves nothing;
 * - copies on the way in and out: stored records are never the caller's objects, and reads
 *   return fresh ones, so nobody can change what is stored except through `write`;
 * - the same references as SQLite's foreign keys: a message needs its conversation, a group
 *   event or message its group (ClientError('invalid-argument') otherwise).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex } from '@umbra/protocol';
import { ClientError } from './errors.ts';
import { checkBytes, checkLimit, checkPosition, checkSeq, checkString, compareBytes, comparePosition, compareStrings, ENVELOPE_HASH_BYTES, MESSAGE_ID_BYTES, validateBatch } from './store-validation.ts';
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

const bytes = (b: Uint8Array): Uint8Array => new Uint8Array(b);
const bytesOrNull = (b: Uint8Array | null): Uint8Array | null => (b === null ? null : new Uint8Array(b));

const copyAccount = (a: StoredAccount): StoredAccount => ({ publicKey: bytes(a.publicKey), secretKey: bytes(a.secretKey), profileName: a.profileName, createdAt: a.createdAt });
const copyInbox = (i: StoredInbox): StoredInbox => ({ invitationId: bytes(i.invitationId), state: bytes(i.state), isDefault: i.isDefault, expiresAt: i.expiresAt, createdAt: i.createdAt });
const copyMeta = (m: ConversationMeta): ConversationMeta => ({
  id: m.id,
  consent: m.consent,
  origin: m.origin,
  lamport: m.lamport,
  recentIds: m.recentIds.map(bytes),
  createdAt: m.createdAt,
  lastActivityAt: m.lastActivityAt,
});
const copyConversation = (c: StoredConversation): StoredConversation => ({ meta: copyMeta(c.meta), state: bytes(c.state) });
const copyMessage = (m: StoredMessage): StoredMessage => ({
  conversationId: m.conversationId,
  messageId: bytes(m.messageId),
  outgoing: m.outgoing,
  lamport: m.lamport,
  sentAt: m.sentAt,
  receivedAt: m.receivedAt,
  body: bytes(m.body),
  status: m.status,
  read: m.read,
  ...(m.group === true ? { group: true } : {}),
});
const copyOutbox = (o: OutboxEntry): OutboxEntry => ({
  conversationId: o.conversationId,
  messageId: bytes(o.messageId),
  kind: o.kind,
  lamport: o.lamport,
  envelope: bytesOrNull(o.envelope),
  hintHour: o.hintHour,
  hintIndex: o.hintIndex,
  attempts: o.attempts,
  nextAttemptAt: o.nextAttemptAt,
  createdAt: o.createdAt,
});
const copySeen = (e: SeenEnvelope): SeenEnvelope => ({ hash: bytes(e.hash), conversationId: e.conversationId, messageId: bytesOrNull(e.messageId), seenAt: e.seenAt });
const copyGroup = (g: StoredGroup): StoredGroup => ({ chatId: g.chatId, record: bytes(g.record), updatedAt: g.updatedAt });
const copyGroupMessage = (m: StoredGroupMessage, seq?: number): StoredGroupMessage => ({
  chatId: m.chatId,
  messageId: m.messageId,
  author: m.author,
  outgoing: m.outgoing,
  clock: m.clock,
  sentAt: m.sentAt,
  receivedAt: m.receivedAt,
  entity: bytes(m.entity),
  seq: seq ?? m.seq!,
});

/** The whole state. Stored records are never mutated: a change stores a new record. */
interface State {
  account: StoredAccount | null;
  inboxes: Map<string, StoredInbox>;
  conversations: Map<string, StoredConversation>;
  cursors: Map<string, string>;
  /** conversation id → message id (hex) → message */
  messages: Map<string, Map<string, StoredMessage>>;
  seen: Map<string, SeenEnvelope>;
  /** conversation id → message id (hex) → entry */
  outbox: Map<string, Map<string, OutboxEntry>>;
  groups: Map<string, StoredGroup>;
  /** chat id → SHA-256 of the wire (hex) → wire */
  groupEvents: Map<string, Map<string, Uint8Array>>;
  /** chat id → message id → message */
  groupMessages: Map<string, Map<string, StoredGroupMessage>>;
  lastSeq: number;
  serviceAccount: string | null;
  directory: Map<string, string>;
  settings: Map<string, string>;
}

function emptyState(): State {
  return {
    account: null,
    inboxes: new Map(),
    conversations: new Map(),
    cursors: new Map(),
    messages: new Map(),
    seen: new Map(),
    outbox: new Map(),
    groups: new Map(),
    groupEvents: new Map(),
    groupMessages: new Map(),
    lastSeq: 0,
    serviceAccount: null,
    directory: new Map(),
    settings: new Map(),
  };
}

type Nested = 'messages' | 'outbox' | 'groupEvents' | 'groupMessages';
type Flat = 'inboxes' | 'conversations' | 'cursors' | 'seen' | 'groups' | 'directory' | 'settings';

/** A copy-on-first-touch view of a State: the live state is never written until `commit`. */
class Draft {
  readonly next: State;
  private readonly copiedFlat = new Set<Flat>();
  private readonly copiedNested = new Map<Nested, Set<string>>();
  readonly touchedConversations = new Set<string>();

  constructor(live: State) {
    this.next = { ...live };
  }

  flat<K extends Flat>(name: K): State[K] {
    if (!this.copiedFlat.has(name)) {
      this.copiedFlat.add(name);
      (this.next[name] as Map<string, unknown>) = new Map(this.next[name] as Map<string, unknown>);
    }
    return this.next[name];
  }

  /** The inner map for `key` of a nested map, copied (or created) on first touch. */
  inner<K extends Nested>(name: K, key: string): State[K] extends Map<string, infer V> ? V : never {
    let copied = this.copiedNested.get(name);
    if (copied === undefined) {
      copied = new Set();
      this.copiedNested.set(name, copied);
      (this.next[name] as Map<string, unknown>) = new Map(this.next[name] as Map<string, unknown>);
    }
    const outer = this.next[name] as Map<string, Map<string, unknown>>;
    if (!copied.has(key)) {
      copied.add(key);
      outer.set(key, new Map(outer.get(key) ?? []));
    }
    return outer.get(key) as never;
  }

  /** Every inner map of a nested map (for a change that may touch any of them). */
  innerKeys(name: Nested): string[] {
    return [...(this.next[name] as Map<string, unknown>).keys()];
  }
}

function unknownReference(what: string): never {
  throw new ClientError('invalid-argument', `store: ${what} that is not stored`);
}

export class MemoryStore implements Store {
  private state: State = emptyState();
  private closed = false;
  /** conversation id → its messages in (lamport, message id) order; dropped when the conversation's messages change. */
  private readonly ordered = new Map<string, StoredMessage[]>();

  readonly account: AccountReads = {
    get: () => this.read((s) => (s.account === null ? null : copyAccount(s.account))),
    inboxes: () => this.read((s) => [...s.inboxes.values()].sort((a, b) => a.createdAt - b.createdAt || compareBytes(a.invitationId, b.invitationId)).map(copyInbox)),
  };

  readonly conversations: ConversationReads = {
    all: () =>
      this.read((s) => [...s.conversations.values()].sort((a, b) => a.meta.createdAt - b.meta.createdAt || compareStrings(a.meta.id, b.meta.id)).map(copyConversation)),
    cursor: (route) => this.read((s) => (checkString(route, 'route'), s.cursors.get(route) ?? null)),
    // This store was never written by a release that kept missing-message rows.
    legacyMissing: () => this.read(() => []),
  };

  readonly messages: MessageReads = {
    get: (conversationId, messageId) =>
      this.read((s) => {
        checkKey(conversationId, messageId);
        const m = s.messages.get(conversationId)?.get(toHex(messageId));
        return m === undefined ? null : copyMessage(m);
      }),
    state: (conversationId, messageId) =>
      this.read((s) => {
        checkKey(conversationId, messageId);
        const m = s.messages.get(conversationId)?.get(toHex(messageId));
        return m === undefined ? null : { outgoing: m.outgoing, status: m.status, lamport: m.lamport };
      }),
    history: (conversationId, limit, before) =>
      this.read(() => {
        checkString(conversationId, 'conversationId');
        checkLimit(limit);
        checkPosition(before);
        const out: StoredMessage[] = [];
        const list = this.inOrder(conversationId);
        for (let i = list.length - 1; i >= 0 && out.length < limit; i--) {
          const m = list[i]!;
          if (m.group === true || (before !== null && comparePosition(m, before) >= 0)) continue;
          out.push(copyMessage(m));
        }
        return out;
      }),
    unreadCount: (conversationId) =>
      this.read((s) => {
        checkString(conversationId, 'conversationId');
        let n = 0;
        for (const m of s.messages.get(conversationId)?.values() ?? []) if (!m.read) n++;
        return n;
      }),
    count: (conversationId) =>
      this.read((s) => {
        checkString(conversationId, 'conversationId');
        let n = 0;
        for (const m of s.messages.get(conversationId)?.values() ?? []) if (m.group !== true) n++;
        return n;
      }),
    incomingIds: (conversationId, limit) =>
      this.read(() => {
        checkString(conversationId, 'conversationId');
        checkLimit(limit);
        const out: Uint8Array[] = [];
        const list = this.inOrder(conversationId);
        for (let i = list.length - 1; i >= 0 && out.length < limit; i--) if (!list[i]!.outgoing) out.push(bytes(list[i]!.messageId));
        return out;
      }),
    seenEnvelope: (hash) =>
      this.read((s) => {
        checkBytes(hash, 'hash', ENVELOPE_HASH_BYTES);
        const e = s.seen.get(toHex(hash));
        return e === undefined ? null : copySeen(e);
      }),
  };

  readonly outbox: OutboxReads = {
    entry: (conversationId, messageId) =>
      this.read((s) => {
        checkKey(conversationId, messageId);
        const o = s.outbox.get(conversationId)?.get(toHex(messageId));
        return o === undefined ? null : copyOutbox(o);
      }),
    forConversation: (conversationId) =>
      this.read((s) => {
        checkString(conversationId, 'conversationId');
        return [...(s.outbox.get(conversationId)?.values() ?? [])].sort((a, b) => a.createdAt - b.createdAt || compareBytes(a.messageId, b.messageId)).map(copyOutbox);
      }),
    queued: (conversationId, limit) =>
      this.read((s) => {
        checkString(conversationId, 'conversationId');
        checkLimit(limit);
        return [...(s.outbox.get(conversationId)?.values() ?? [])]
          .filter((o) => o.envelope === null)
          .sort(comparePosition)
          .slice(0, limit)
          .map(copyOutbox);
      }),
    conversationsWithQueued: () =>
      this.read((s) =>
        [...s.outbox.entries()]
          .filter(([, entries]) => [...entries.values()].some((o) => o.envelope === null))
          .map(([id]) => id)
          .sort(compareStrings),
      ),
    pendingCount: (conversationId) =>
      this.read((s) => {
        if (conversationId === undefined) {
          let n = 0;
          for (const entries of s.outbox.values()) n += entries.size;
          return n;
        }
        checkString(conversationId, 'conversationId');
        return s.outbox.get(conversationId)?.size ?? 0;
      }),
  };

  readonly groups: GroupReads = {
    all: () =>
      this.read((s) =>
        [...s.groups.values()]
          .sort((a, b) => compareStrings(a.chatId, b.chatId))
          .map((g) => ({
            group: copyGroup(g),
            events: [...(s.groupEvents.get(g.chatId)?.entries() ?? [])].sort(([a], [b]) => compareStrings(a, b)).map(([, wire]) => bytes(wire)),
          })),
      ),
    message: (chatId, messageId) =>
      this.read((s) => {
        checkString(chatId, 'chatId');
        checkString(messageId, 'messageId');
        const m = s.groupMessages.get(chatId)?.get(messageId);
        return m === undefined ? null : copyGroupMessage(m);
      }),
    messages: (chatId, limit, beforeSeq) =>
      this.read((s) => {
        checkString(chatId, 'chatId');
        checkLimit(limit);
        checkSeq(beforeSeq);
        return [...(s.groupMessages.get(chatId)?.values() ?? [])]
          .filter((m) => beforeSeq === null || m.seq! < beforeSeq)
          .sort((a, b) => b.seq! - a.seq!)
          .slice(0, limit)
          .map((m) => copyGroupMessage(m));
      }),
  };

  readonly serviceAccount: ServiceAccountReads = {
    get: () => this.read((s) => s.serviceAccount),
  };

  readonly directory: DirectoryReads = {
    get: (url) => this.read((s) => (checkString(url, 'url'), s.directory.get(url) ?? null)),
  };

  readonly settings: SettingsReads = {
    get: (key) => this.read((s) => (checkString(key, 'key'), s.settings.get(key) ?? null)),
  };

  /** Same shape as the other stores' `open` (nothing to open). */
  static async open(): Promise<MemoryStore> {
    return new MemoryStore();
  }

  private live(): void {
    if (this.closed) throw new ClientError('client-closed', 'the store is closed');
  }

  private async read<T>(query: (s: State) => T): Promise<T> {
    this.live();
    return query(this.state);
  }

  private inOrder(conversationId: string): StoredMessage[] {
    let list = this.ordered.get(conversationId);
    if (list === undefined) {
      list = [...(this.state.messages.get(conversationId)?.values() ?? [])].sort(comparePosition);
      this.ordered.set(conversationId, list);
    }
    return list;
  }

  async write(batch: StoreBatch): Promise<void> {
    this.live();
    validateBatch(batch);
    const draft = new Draft(this.state);
    applyBatch(draft, batch);
    // Every change applied: the draft becomes the state in one step.
    this.state = draft.next;
    for (const id of draft.touchedConversations) this.ordered.delete(id);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.state = emptyState();
    this.ordered.clear();
  }
}

function checkKey(conversationId: string, messageId: Uint8Array): void {
  checkString(conversationId, 'conversationId');
  checkBytes(messageId, 'messageId', MESSAGE_ID_BYTES);
}

/** In the order of StoreBatch's fields (store.ts), as SqliteStore applies them. */
function applyBatch(d: Draft, b: StoreBatch): void {
  const s = d.next;
  if (b.account !== undefined) s.account = copyAccount(b.account);
  if (b.inboxes !== undefined) {
    const inboxes = d.flat('inboxes');
    for (const i of b.inboxes) inboxes.set(toHex(i.invitationId), copyInbox(i));
  }
  if (b.conversations !== undefined) {
    const conversations = d.flat('conversations');
    for (const c of b.conversations) conversations.set(c.meta.id, copyConversation(c));
  }
  if (b.conversationMeta !== undefined) {
    const conversations = d.flat('conversations');
    for (const m of b.conversationMeta) {
      const existing = conversations.get(m.id);
      if (existing === undefined) continue;
      const meta: ConversationMeta = { ...existing.meta, consent: m.consent, lamport: m.lamport, recentIds: m.recentIds.map(bytes), lastActivityAt: m.lastActivityAt };
      conversations.set(m.id, { meta, state: existing.state });
    }
  }
  if (b.cursors !== undefined) {
    const cursors = d.flat('cursors');
    for (const c of b.cursors) cursors.set(c.route, c.cursor);
  }
  // missingDelete: this store holds no legacy missing rows, so there is nothing to delete.
  for (const m of b.messages ?? []) {
    if (!s.conversations.has(m.conversationId)) unknownReference('a message for a conversation');
    const messages = d.inner('messages', m.conversationId);
    const key = toHex(m.messageId);
    if (messages.has(key)) continue;
    messages.set(key, copyMessage(m));
    d.touchedConversations.add(m.conversationId);
  }
  for (const m of b.messageStatus ?? []) {
    if (s.messages.get(m.conversationId)?.has(toHex(m.messageId)) !== true) continue;
    const messages = d.inner('messages', m.conversationId);
    const key = toHex(m.messageId);
    messages.set(key, { ...messages.get(key)!, status: m.status });
    d.touchedConversations.add(m.conversationId);
  }
  for (const r of b.markRead ?? []) {
    if (!s.messages.has(r.conversationId)) continue;
    const messages = d.inner('messages', r.conversationId);
    const upTo = { lamport: r.upToLamport, messageId: r.upToMessageId };
    for (const [key, m] of messages) if (!m.read && comparePosition(m, upTo) <= 0) messages.set(key, { ...m, read: true });
    d.touchedConversations.add(r.conversationId);
  }
  if (b.seenEnvelopes !== undefined) {
    const seen = d.flat('seen');
    for (const e of b.seenEnvelopes) {
      const key = toHex(e.hash);
      if (!seen.has(key)) seen.set(key, copySeen(e));
    }
  }
  if (b.pruneSeenBefore !== undefined) {
    const seen = d.flat('seen');
    for (const [key, e] of seen) if (e.seenAt < b.pruneSeenBefore) seen.delete(key);
  }
  for (const o of b.outboxPut ?? []) d.inner('outbox', o.conversationId).set(toHex(o.messageId), copyOutbox(o));
  for (const k of b.outboxDelete ?? []) {
    if (s.outbox.get(k.conversationId)?.has(toHex(k.messageId)) === true) d.inner('outbox', k.conversationId).delete(toHex(k.messageId));
  }
  for (const id of b.abandonOutbox ?? []) {
    const entries = s.outbox.get(id);
    if (entries === undefined) continue;
    if (s.messages.has(id)) {
      const messages = d.inner('messages', id);
      for (const key of entries.keys()) {
        const m = messages.get(key);
        if (m !== undefined && (m.status === 'queued' || m.status === 'sent')) messages.set(key, { ...m, status: 'failed' });
      }
      d.touchedConversations.add(id);
    }
    d.inner('outbox', id).clear();
  }
  if (b.groups !== undefined) {
    const groups = d.flat('groups');
    for (const g of b.groups) groups.set(g.chatId, copyGroup(g));
  }
  for (const e of b.groupEvents ?? []) {
    if (!s.groups.has(e.chatId)) unknownReference('a group event for a group');
    const events = d.inner('groupEvents', e.chatId);
    const digest = toHex(sha256(e.wire));
    if (!events.has(digest)) events.set(digest, bytes(e.wire));
  }
  for (const m of b.groupMessages ?? []) {
    if (!s.groups.has(m.chatId)) unknownReference('a group message for a group');
    const messages = d.inner('groupMessages', m.chatId);
    if (messages.has(m.messageId)) continue;
    s.lastSeq += 1;
    messages.set(m.messageId, copyGroupMessage(m, s.lastSeq));
  }
  if (b.serviceAccount !== undefined) s.serviceAccount = b.serviceAccount;
  if (b.directoryStates !== undefined) {
    const directory = d.flat('directory');
    for (const x of b.directoryStates) {
      if (x.state === null) directory.delete(x.url);
      else directory.set(x.url, x.state);
    }
  }
  if (b.settings !== undefined) {
    const settings = d.flat('settings');
    for (const x of b.settings) {
      if (x.value === null) settings.delete(x.key);
      else settings.set(x.key, x.value);
    }
  }
}
