/**
 * The Client's public vocabulary: its limits, options, events, and the views it returns
 * (conversations, messages, history pages, stats). Types, constants and an empty stats record, so every client
 * module (and the directory client) can name them without importing the facade.
 */
import { reliability as rel, type CryptoProvider, type HandshakeRefused, type HandshakeRefusalReason } from '@umbra/protocol';
import type { Argon2idParams } from './at-rest.ts';
import type { Delivery } from './delivery.ts';
import type { ClientError } from './errors.ts';
import type { GroupEventMap } from './group/groups.ts';
import type { Consent, ConversationOrigin, MessageStatus, Store } from './store.ts';

// ---- limits ------------------------------------------------------------------------------

/** Largest text accepted by send(), in UTF-8 bytes (the frame must fit the 64 KiB padding bucket). */
export const MAX_TEXT_BYTES = 60 * 1024;
export const MAX_INVITATION_CHARS = 64 * 1024;
export const MAX_PROFILE_NAME_CHARS = 128;
/** Reliability limits live with the machine (@umbra/protocol `reliability`); re-exported here. */
export const CAUSAL_HISTORY_IDS = rel.CAUSAL_HISTORY_IDS;
export const MAX_MISSING_PER_CONVERSATION = rel.MAX_MISSING_IDS;
export const MAX_RETRANSMIT_REQUESTS = rel.MAX_RETRANSMIT_REQUESTS;
export const MAX_RETRANSMIT_IDS = rel.MAX_RETRANSMIT_IDS;
export const ACK_IDS_PER_FRAME = rel.ACK_IDS_PER_FRAME;
/** Envelope hashes are kept this long (longer than any envelope stays decryptable). */
export const SEEN_ENVELOPE_RETENTION_MS = 31 * 24 * 3600 * 1000;
/** Most unread events an events() iterator keeps. */
export const EVENT_QUEUE_LIMIT = 10_000;
export const MESSAGE_ID_BYTES = 16;
/** Most gossip bytes accepted from a peer frame (a CheckpointGossip is well under 1 KiB). */
export const MAX_GOSSIP_BYTES = 8192;

// ---- public types ------------------------------------------------------------------------

export interface ClientOptions {
  readonly delivery: Delivery;
  /** Directory of the platform's store (Node: umbra.db, SQLite), created if missing; the client closes the store it opens. Needs `@umbra/client/node`. */
  readonly dataDir?: string;
  /** Or an already open store, shared with the app's other parts (services, directory): the caller keeps ownership and closes it. */
  readonly store?: Store;
  /** Protects a dataDir store (Argon2id). Give this or `key`. */
  readonly passphrase?: string;
  /** A 32-byte store key supplied by the app (OS keychain). */
  readonly key?: Uint8Array;
  /** Argon2id parameters for a new passphrase store (tests use cheaper ones). */
  readonly argon2id?: Argon2idParams;
  /** Display name for a new identity (and to update an existing one). */
  readonly profile?: { readonly name: string };
  /** Create the identity from this account key (32-byte Ed25519 seed) instead of a fresh one. */
  readonly restoreAccountKey?: Uint8Array;
  /** Default: the platform's (node:crypto through @umbra/client/node, noble otherwise). */
  readonly crypto?: CryptoProvider;
  /** Clock (unix ms); defaults to Date.now. */
  readonly now?: () => number;
  /** Outbox backoff: first retry after initialMs, doubling up to maxMs (defaults 2 s, 5 min). */
  readonly retry?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Unacknowledged content envelopes per conversation (default 24, at most 28). */
  readonly maxInFlight?: number;
  /** Acks are batched for this long (default 20 ms). */
  readonly ackDelayMs?: number;
  /**
   * A duplicate envelope (the peer's retry after a lost ack, or anyone re-delivering captured
   * bytes) is re-acknowledged at most once per this interval per conversation: it joins an ack
   * already pending, or waits until this long after the conversation's last ack, so replaying
   * bytes cannot make us spend a delivery token per replay (default: half the first retry delay,
   * at most 1 s).
   */
  readonly duplicateAckIntervalMs?: number;
  /** A missing id is requested after this grace period (default 1 s): it may only be late. */
  readonly missingGraceMs?: number;
  /**
   * Fast retransmit: an envelope still unacknowledged when the peer acknowledges a later one is
   * re-sent at once if it was last sent at least this long ago (default 200 ms).
   */
  readonly fastRetransmitMs?: number;
  /** Periodic fetch from the delivery network (default 30 s; 0 = only at open and on sync()). */
  readonly syncIntervalMs?: number;
}

/**
 * Directory checkpoint gossip carried inside conversations (docs/DIRECTORY.md, "Gossip"); a
 * DirectoryClient registers itself with Client.addGossipSource. `outgoing` is asked, in the same
 * flush as each outgoing message, for bytes to send as a `checkpointGossip` frame (null: nothing
 * new for this conversation); `sent` confirms they went out. `incoming` receives a peer's gossip
 * after its envelope is stored. Gossip is never acknowledged, stored, or shown; errors thrown by a
 * source are swallowed (gossip never breaks a conversation).
 */
export interface GossipSource {
  outgoing(conversationId: string): Uint8Array | null;
  sent(conversationId: string, bytes: Uint8Array): void;
  incoming(conversationId: string, bytes: Uint8Array): void;
}

export interface ConversationInfo {
  readonly id: string;
  readonly peerName: string;
  readonly consent: Consent;
  readonly origin: ConversationOrigin;
  readonly createdAt: number;
  readonly lastActivityAt: number;
  readonly unreadCount: number;
  /** Outgoing messages not yet acknowledged by the peer. */
  readonly pendingCount: number;
  /** 60 digits to compare out of band. */
  readonly safetyNumber: string;
  /**
   * Set when the inviter refused our first contact (its invitation was already used, or had
   * expired): the conversation will never be answered, and sending to it fails.
   */
  readonly refusal: HandshakeRefused | null;
}

/** Signs with one conversation's relationship key; see Client.relationshipSigner. */
export interface RelationshipSigner {
  /** The relationship identity key (Ed25519, 32 bytes). */
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export interface RelationshipInfo {
  /** The invitation this conversation was started from (32 hex characters). */
  readonly invitationId: string;
  /** The peer's relationship identity key (Ed25519, 32 bytes). */
  readonly peerIdentityKey: Uint8Array;
}

export interface MessageInfo {
  readonly conversationId: string;
  /** 32 hex characters. */
  readonly id: string;
  readonly outgoing: boolean;
  readonly kind: 'text' | 'reaction' | 'edit' | 'delete' | 'unknown';
  readonly text: string | null;
  readonly replyTo: string | null;
  readonly lamport: number;
  /** The sender's claim (unix ms). */
  readonly sentAt: number;
  readonly receivedAt: number | null;
  readonly status: MessageStatus;
  readonly read: boolean;
}

export interface HistoryPage {
  /** Oldest first. */
  readonly messages: readonly MessageInfo[];
  /** Pass as `before` for the previous (older) page; null when there is none. */
  readonly cursor: string | null;
}

export interface InvitationInfo {
  readonly text: string;
  readonly invitationId: string;
  /** Unix seconds; 0 = never. */
  readonly expiresAt: number;
  /** The short link, when createInvitation was asked for one (`shortLink`). */
  readonly link?: string;
  /** Unix seconds: when the link's service forgets the invitation (at most 7 days ahead). */
  readonly linkExpiresAt?: number;
}

export interface ClientEventMap {
  message: MessageInfo;
  /** A service (or the network) accepted one of our messages: its status went from 'queued' to 'sent'. */
  sent: { readonly conversationId: string; readonly messageId: string };
  acked: { readonly conversationId: string; readonly messageId: string };
  missing: { readonly conversationId: string; readonly messageIds: readonly string[] };
  request: ConversationInfo;
  'conversation-started': ConversationInfo;
  /** The inviter refused our first contact (info.refusal says why). */
  'conversation-refused': ConversationInfo & { readonly refusal: HandshakeRefused };
  /** Someone answered one of our invitations that is used up or expired; they were sent a signed refusal. */
  'first-contact-refused': { readonly invitationId: string; readonly reason: HandshakeRefusalReason };
  error: ClientError;
  'group-invited': GroupEventMap['group-invited'];
  'group-updated': GroupEventMap['group-updated'];
  'group-message': GroupEventMap['group-message'];
  'group-change': GroupEventMap['group-change'];
  'group-rejected': GroupEventMap['group-rejected'];
}

export type ClientEvent = { [K in keyof ClientEventMap]: { readonly type: K; readonly data: ClientEventMap[K] } }[keyof ClientEventMap];

export interface ClientStats {
  received: number;
  duplicateEnvelopes: number;
  duplicateMessages: number;
  notForMe: number;
  badlyFormed: Record<string, number>;
  published: number;
  retries: number;
  reencrypted: number;
  acksSent: number;
  retransmitRequestsSent: number;
  retransmitRequestsAnswered: number;
  publishFailures: number;
  listenerErrors: number;
  /** Signed refusals sent to first contacts on used or expired invitations. */
  refusalsSent: number;
  /** Frames this version does not act on (session resets, unknown bodies), by kind: reported, never silently dropped. */
  unhandledFrames: Record<string, number>;
}

export function emptyStats(): ClientStats {
  return {
    received: 0,
    duplicateEnvelopes: 0,
    duplicateMessages: 0,
    notForMe: 0,
    badlyFormed: {},
    published: 0,
    retries: 0,
    reencrypted: 0,
    acksSent: 0,
    retransmitRequestsSent: 0,
    retransmitRequestsAnswered: 0,
    publishFailures: 0,
    listenerErrors: 0,
    refusalsSent: 0,
    unhandledFrames: {},
  };
}
