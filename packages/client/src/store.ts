/**
 * The Store interface: what the client persists, as plain records. The client says *what* to
 * write (a StoreBatch: every change of one operation); the store decides *how*, and applies one
 * batch in one transaction, so an operation is either fully on disk or not at all. Secrets
 * (engine state, message bodies, the account key) are passed in clear and sealed by the store.
 * docs/STORE.md documents the SQLite implementation's schema.
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
  /** serializeConversation(...): ratchet, skipped keys, hint windows, endpoints, presentation. */
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

/** One group: the client's bookkeeping (status, own key, bindings, cards, pending work) as sealed JSON. */
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
  /** Insertion order (set by the store). */
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

/** Every write of one client operation. Applied atomically, in the order of the fields below. */
export interface StoreBatch {
  account?: StoredAccount;
  inboxes?: StoredInbox[];
  conversations?: StoredConversation[];
  /** Update only the bookkeeping columns of existing conversations (no state re-seal). */
  conversationMeta?: ConversationMeta[];
  /** Insert; an existing (conversation, message id) is left as it is. */
  messages?: StoredMessage[];
  messageStatus?: (MessageKey & { status: MessageStatus })[];
  outboxPut?: OutboxEntry[];
  outboxDelete?: MessageKey[];
  seenEnvelopes?: SeenEnvelope[];
  missingPut?: MissingEntry[];
  missingDelete?: MessageKey[];
  cursors?: { route: string; cursor: string }[];
  /** Mark incoming messages of a conversation read, up to and including this Lamport position. */
  markRead?: { conversationId: string; upToLamport: number; upToMessageId: Uint8Array }[];
  /** Drop a conversation's queued and in-flight outbox entries and mark those messages failed. */
  abandonOutbox?: string[];
  groups?: StoredGroup[];
  /** Insert; an event already stored (same chat, same bytes) is left as it is. */
  groupEvents?: StoredGroupEvent[];
  /** Insert; an existing (chat, message id) is left as it is. */
  groupMessages?: StoredGroupMessage[];
}

export interface StoreSnapshot {
  readonly account: StoredAccount | null;
  readonly inboxes: readonly StoredInbox[];
  readonly conversations: readonly StoredConversation[];
}

export interface HistoryPosition {
  readonly lamport: number;
  readonly messageId: Uint8Array;
}

export interface Store {
  load(): StoreSnapshot;
  write(batch: StoreBatch): void;

  message(conversationId: string, messageId: Uint8Array): StoredMessage | null;
  /** Direction and status only (no body to decrypt). */
  messageState(conversationId: string, messageId: Uint8Array): { outgoing: boolean; status: MessageStatus; lamport: number } | null;
  /** Up to `limit` messages strictly before `before` (newest first); all when before is null. */
  history(conversationId: string, limit: number, before: HistoryPosition | null): StoredMessage[];
  unreadCount(conversationId: string): number;
  messageCount(conversationId: string): number;
  /** Ids of incoming messages of a conversation (for acknowledging a request once allowed). */
  incomingIds(conversationId: string, limit: number): Uint8Array[];

  seenEnvelope(hash: Uint8Array): SeenEnvelope | null;
  outboxEntry(conversationId: string, messageId: Uint8Array): OutboxEntry | null;
  outbox(conversationId: string): OutboxEntry[];
  /** Queued (not yet encrypted) entries of a conversation, in Lamport order. */
  queued(conversationId: string, limit: number): OutboxEntry[];
  /** The lowest hint index among in-flight content entries sent in `hour`, or null. */
  oldestInFlightHintIndex(conversationId: string, hour: number): number | null;
  /** In-flight content entries older (in Lamport time) than `lamport`: candidates for a fast retransmit. */
  firstTriesBefore(conversationId: string, lamport: number): OutboxEntry[];
  /** Content entries published but not yet acknowledged. */
  inFlightCount(conversationId: string): number;
  /** Entries with an envelope whose nextAttemptAt ≤ now, oldest first. */
  dueOutbox(now: number, limit: number): OutboxEntry[];
  /** Conversations that have queued (not yet encrypted) entries. */
  conversationsWithQueued(): string[];
  /** Earliest nextAttemptAt / nextRequestAt of any pending work, or null. */
  nextWakeAt(): number | null;
  pendingCount(conversationId?: string): number;

  missing(conversationId: string, messageId: Uint8Array): MissingEntry | null;
  missingCount(conversationId: string): number;
  oldestMissing(conversationId: string): MissingEntry | null;
  dueMissing(now: number, limit: number): MissingEntry[];

  cursor(route: string): string | null;
  /** Delete seen-envelope records older than `before` (ms). Returns how many. */
  pruneSeenEnvelopes(before: number): number;

  /** Every group with its events (verbatim), for loading at open. */
  loadGroups(): { group: StoredGroup; events: Uint8Array[] }[];
  groupMessage(chatId: string, messageId: string): StoredGroupMessage | null;
  /** Up to `limit` messages of a group before `beforeSeq` (newest first); all when null. */
  groupMessages(chatId: string, limit: number, beforeSeq: number | null): StoredGroupMessage[];
  close(): void;
}
