/**
 * The Store contract: everything the client persists, as plain records, behind one asynchronous
 * interface that SQLite (Node), memory (tests, ephemeral apps) and IndexedDB (browsers) all
 * implement and that one contract suite (test/store-contract.ts) checks.
 *
 * Reads are grouped by concept (account, conversations, messages, outbox, groups, service
 * account, directory, settings). Writes are not: the client says *what* one operation changes
 * (a StoreBatch, possibly across concepts) and the store applies it in ONE transaction, so an
 * operation is either fully durable or not there at all. Nothing the client keeps between runs
 * lives anywhere else (no side files): the services account, directory state and app settings
 * are concepts here too.
 *
 * Secrets (engine state, message bodies, the account key) are passed in clear; keeping them
 * confidential at rest is the store's job (SQLite: the whole file encrypted; IndexedDB: every
 * value sealed). docs/STORE.md documents the SQLite schema.
 *
 * What comes next is designed to fit: linked devices add a per-account sync-log concept (an
 * append-only sequence written in the same batch as the change it records); large files add a
 * blob concept of fixed-size chunks keyed by (blob id, index), so a transfer is resumable and
 * never one huge transaction.
 */
export type Consent = 'allowed' | 'unknown' | 'denied';
/** How a conversation began: we accepted their invitation, they accepted ours, or they wrote to our default inbox. */
export type ConversationOrigin = 'accepted' | 'invitation' | 'default-inbox';
/** queued: persisted, not yet encrypted; sent: published at least once; acked: the peer has it. */
export type MessageStatus = 'queued' | 'sent' | 'acked' | 'failed' | 'received';
export type OutboxKind = 'content' | 'handshake';

export interface StoredAccount {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
  readonly profileName: string;
  readonly createdAt: number;
}

export interface StoredInbox {
  readonly invitationId: Uint8Array;
  /** serializeInbox(...) */
  readonly state: Uint8Array;
  readonly isDefault: boolean;
  readonly expiresAt: number;
  readonly createdAt: number;
}

/** Client-side bookkeeping of one conversation (reliability and consent). */
export interface ConversationMeta {
  readonly id: string;
  readonly consent: Consent;
  readonly origin: ConversationOrigin;
  /** Lamport clock: the highest timestamp sent or seen. */
  readonly lamport: number;
  /** The most recent content message ids (both directions), oldest first, at most 8. */
  readonly recentIds: readonly Uint8Array[];
  readonly createdAt: number;
  readonly lastActivityAt: number;
}

export interface StoredConversation {
  readonly meta: ConversationMeta;
  /** A ConversationRecord (state.proto): engine state and reliability state, one blob. */
  readonly state: Uint8Array;
}

export interface StoredMessage {
  readonly conversationId: string;
  readonly messageId: Uint8Array;
  readonly outgoing: boolean;
  readonly lamport: number;
  readonly sentAt: number;
  readonly receivedAt: number | null;
  /** An encoded umbra.v1.Content. */
  readonly body: Uint8Array;
  readonly status: MessageStatus;
  readonly read: boolean;
  /** A group/v1 frame carried for a group (body = an encoded PrivateV1Frame with only `group` set): kept out of the 1:1 history. */
  readonly group?: boolean;
}

// ---- group/v1 (packages/client/src/group/) ----------------------------------------------

/** One group: the client's bookkeeping (status, own key, bindings, cards, pending work) as JSON bytes. */
export interface StoredGroup {
  readonly chatId: string;
  readonly record: Uint8Array;
  readonly updatedAt: number;
}

/** One membership event of a group, verbatim (signature ‖ raw). */
export interface StoredGroupEvent {
  readonly chatId: string;
  readonly wire: Uint8Array;
}

export interface StoredGroupMessage {
  readonly chatId: string;
  /** "0x" + keccak256 hex: identical for every member. */
  readonly messageId: string;
  /** The author's member id ("0x04…"). */
  readonly author: string;
  readonly outgoing: boolean;
  readonly clock: number;
  readonly sentAt: number;
  readonly receivedAt: number | null;
  /** The entity bytes (GroupChatMessage), verbatim. */
  readonly entity: Uint8Array;
  /** Insertion order (set by the store: strictly increasing per store). */
  readonly seq?: number;
}

export interface OutboxEntry {
  readonly conversationId: string;
  readonly messageId: Uint8Array;
  readonly kind: OutboxKind;
  /** The message's Lamport time (0 for a handshake): queued entries are encrypted in this order. */
  readonly lamport: number;
  /** Null while queued (not yet encrypted). */
  readonly envelope: Uint8Array | null;
  /** Hint slot of `envelope` (hour, index); -1 when not applicable. */
  readonly hintHour: number;
  readonly hintIndex: number;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly createdAt: number;
}

/** A missing-message row of a store written before reliability moved into the protocol (read once, at migration). */
export interface MissingEntry {
  readonly conversationId: string;
  readonly messageId: Uint8Array;
  readonly noticedAt: number;
  readonly requests: number;
  readonly nextRequestAt: number;
}

export interface SeenEnvelope {
  readonly hash: Uint8Array;
  readonly conversationId: string | null;
  readonly messageId: Uint8Array | null;
  readonly seenAt: number;
}

export interface MessageKey {
  readonly conversationId: string;
  readonly messageId: Uint8Array;
}

export interface HistoryPosition {
  readonly lamport: number;
  readonly messageId: Uint8Array;
}

// ---- writes ------------------------------------------------------------------------------

/** Every write of one client operation. Applied atomically, in the order of the fields below. */
export interface StoreBatch {
  // account
  account?: StoredAccount;
  inboxes?: StoredInbox[];
  // conversations
  /** Insert or replace (meta and state). */
  conversations?: StoredConversation[];
  /** Update only the bookkeeping of existing conversations (state untouched); unknown ids are ignored. */
  conversationMeta?: ConversationMeta[];
  cursors?: { route: string; cursor: string }[];
  /** Legacy missing-message rows to drop (migration). */
  missingDelete?: MessageKey[];
  // messages
  /** Insert; an existing (conversation, message id) is left as it is. */
  messages?: StoredMessage[];
  /** Set the status of existing messages; unknown keys are ignored. */
  messageStatus?: (MessageKey & { status: MessageStatus })[];
  /** Mark incoming messages of a conversation read, up to and including this (lamport, message id) position. */
  markRead?: { conversationId: string; upToLamport: number; upToMessageId: Uint8Array }[];
  /** Insert; an existing hash is left as it is. */
  seenEnvelopes?: SeenEnvelope[];
  /** Delete seen-envelope records with seenAt < this (ms). */
  pruneSeenBefore?: number;
  // outbox
  /** Insert or replace. */
  outboxPut?: OutboxEntry[];
  outboxDelete?: MessageKey[];
  /** Drop a conversation's queued and in-flight outbox entries and mark those messages failed. */
  abandonOutbox?: string[];
  // groups
  /** Insert or replace. */
  groups?: StoredGroup[];
  /** Insert; an event already stored (same chat, same bytes) is left as it is. */
  groupEvents?: StoredGroupEvent[];
  /** Insert; an existing (chat, message id) is left as it is. The store assigns `seq`. */
  groupMessages?: StoredGroupMessage[];
  // service account, directory, settings
  /** Replace the services account document (ServicesState JSON); null deletes it. */
  serviceAccount?: string | null;
  /** Replace a directory client's state document (JSON), keyed by the directory's URL; null deletes it. */
  directoryStates?: { url: string; state: string | null }[];
  /** App settings (the CLI's transport, handles…); a null value deletes the key. */
  settings?: { key: string; value: string | null }[];
}

// ---- reads, by concept ---------------------------------------------------------------------

export interface AccountReads {
  get(): Promise<StoredAccount | null>;
  inboxes(): Promise<StoredInbox[]>;
}

export interface ConversationReads {
  /** Every conversation (loaded at open). */
  all(): Promise<StoredConversation[]>;
  cursor(route: string): Promise<string | null>;
  /** Missing-message rows of a pre-reliability store (empty for any store made since). */
  legacyMissing(): Promise<MissingEntry[]>;
}

export interface MessageReads {
  get(conversationId: string, messageId: Uint8Array): Promise<StoredMessage | null>;
  /** Direction, status and position only (no body). */
  state(conversationId: string, messageId: Uint8Array): Promise<{ outgoing: boolean; status: MessageStatus; lamport: number } | null>;
  /**
   * Up to `limit` non-group messages strictly before `before` in (lamport, message id) order,
   * newest first; from the newest when before is null.
   */
  history(conversationId: string, limit: number, before: HistoryPosition | null): Promise<StoredMessage[]>;
  /** Messages not read (incoming ones: outgoing and group frames are stored read). */
  unreadCount(conversationId: string): Promise<number>;
  /** Non-group messages. */
  count(conversationId: string): Promise<number>;
  /** Ids of incoming messages of a conversation (group frames included), newest first in (lamport, message id) order: for acknowledging a request once allowed. */
  incomingIds(conversationId: string, limit: number): Promise<Uint8Array[]>;
  seenEnvelope(hash: Uint8Array): Promise<SeenEnvelope | null>;
}

export interface OutboxReads {
  entry(conversationId: string, messageId: Uint8Array): Promise<OutboxEntry | null>;
  /** Every entry of a conversation, in (createdAt, message id) order. */
  forConversation(conversationId: string): Promise<OutboxEntry[]>;
  /** Queued (not yet encrypted) entries of a conversation, in (lamport, message id) order. */
  queued(conversationId: string, limit: number): Promise<OutboxEntry[]>;
  /** Conversations that have queued entries. */
  conversationsWithQueued(): Promise<string[]>;
  /** Outbox entries of one conversation, or of all when undefined. */
  pendingCount(conversationId?: string): Promise<number>;
}

export interface GroupReads {
  /** Every group with its events (verbatim), for loading at open. */
  all(): Promise<{ group: StoredGroup; events: Uint8Array[] }[]>;
  message(chatId: string, messageId: string): Promise<StoredGroupMessage | null>;
  /** Up to `limit` messages of a group with seq < beforeSeq (newest first); from the newest when null. */
  messages(chatId: string, limit: number, beforeSeq: number | null): Promise<StoredGroupMessage[]>;
}

export interface ServiceAccountReads {
  /** The services account document (ServicesState JSON), or null. */
  get(): Promise<string | null>;
}

export interface DirectoryReads {
  /** The state document of the directory client for this URL, or null. */
  get(url: string): Promise<string | null>;
}

export interface SettingsReads {
  get(key: string): Promise<string | null>;
}

export interface Store {
  readonly account: AccountReads;
  readonly conversations: ConversationReads;
  readonly messages: MessageReads;
  readonly outbox: OutboxReads;
  readonly groups: GroupReads;
  readonly serviceAccount: ServiceAccountReads;
  readonly directory: DirectoryReads;
  readonly settings: SettingsReads;
  /** Apply one operation's changes in one transaction: all of them are durable, or none. */
  write(batch: StoreBatch): Promise<void>;
  /** Idempotent. Any call after close rejects with ClientError('client-closed'). */
  close(): Promise<void>;
}
