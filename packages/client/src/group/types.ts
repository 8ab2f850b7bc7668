/**
 * The group layer's public types (what Client.groups returns and emits) and its port to the
 * client (GroupHost): group/groups.ts implements the layer, the client supplies the host.
 */
import type { CryptoProvider, group as G } from '@umbra/protocol';
import { ClientError } from '../errors.ts';
import type { Store, StoreBatch } from '../store.ts';

export type GroupStatus = G.MembershipStatus;

export interface GroupInfo {
  readonly chatId: string;
  readonly name: string;
  readonly color: string;
  readonly hasImage: boolean;
  readonly status: GroupStatus;
  /** Our member id in this group ("0x04…"), null before we accept. */
  readonly self: string | null;
  readonly admin: boolean;
  readonly memberCount: number;
  /** Members we cannot reach yet (no session). */
  readonly pendingCount: number;
  /** The conversation the invitation came through (invited/joining). */
  readonly invitedBy: string | null;
  /** The last update we could not apply, if any. */
  readonly lastError: string | null;
}

export interface GroupMemberInfo {
  /** "0x04…"; null for someone invited who has not accepted yet. */
  readonly memberId: string | null;
  readonly state: 'self' | 'connected' | 'pending' | 'invited';
  readonly admin: boolean;
  readonly creator: boolean;
  /** The pairwise conversation with this member, when there is one. */
  readonly conversationId: string | null;
  readonly name: string | null;
}

export interface GroupMessageInfo {
  readonly chatId: string;
  /** "0x" + keccak256(author key ‖ entity): the same for every member. */
  readonly id: string;
  readonly author: string;
  readonly authorName: string | null;
  readonly outgoing: boolean;
  readonly text: string;
  readonly clock: number;
  readonly sentAt: number;
  readonly receivedAt: number | null;
  readonly replyTo: string | null;
}

export interface GroupHistoryPage {
  /** Oldest first. */
  readonly messages: readonly GroupMessageInfo[];
  readonly cursor: string | null;
}

/** What a membership change did (the protocol fold's history: docs/GROUPS.md). */
export type GroupChangeKind = G.ChangeKind;

/** A member named in a change. */
export interface GroupMemberRef {
  readonly memberId: string;
  /** The display name of our session with them, when we have one. */
  readonly name: string | null;
  /** One of our own keys in this group (now or before a re-add). */
  readonly me: boolean;
}

/** One applied membership change: the same list, in the same order, at every member. */
export interface GroupChangeInfo {
  readonly chatId: string;
  /** Hex SHA-256 of the event's bytes: the same at every member. */
  readonly id: string;
  readonly kind: GroupChangeKind;
  /** The member id that signed it. */
  readonly author: string;
  readonly authorName: string | null;
  readonly byMe: boolean;
  /** Added, removed or promoted members (empty for the other kinds). */
  readonly targets: readonly GroupMemberRef[];
  /** 'created' and 'renamed': the name; null otherwise. */
  readonly name: string | null;
  /** 'color': the colour; null otherwise. */
  readonly color: string | null;
  /** The event's Lamport clock (ms-based, set by its author). */
  readonly clock: number;
  /** When this client first saw it applied (ms). */
  readonly seenAt: number;
}

/**
 * Why something was refused: the protocol fold's RejectReason for an event, or for a binding
 * 'binding-redirect' (it named another key for a bound session) or 'binding-unasked' (a binding
 * frame on a session we did not invite).
 */
export type GroupRejectReason = G.RejectReason | 'binding-redirect' | 'binding-unasked';

/** An event (or frame) this client refused: never applied. */
export interface GroupRejectedInfo {
  readonly chatId: string;
  /** The fold's reason for an event, or the client's for a binding. */
  readonly reason: GroupRejectReason;
  readonly detail: string;
  /** The event's signer, or the member the session is bound to; null when unknown. */
  readonly author: string | null;
  /** The rejected event's id (hex), for events. */
  readonly eventId: string | null;
  /** The conversation it arrived on, when it arrived in this client's receive. */
  readonly conversationId: string | null;
}

/** What add() did for one conversation. */
export type GroupAddOutcome = 'invited' | 're-invited' | 'already-invited';

export interface GroupAddResult {
  readonly group: GroupInfo;
  readonly conversationId: string;
  /** 'invited': a first invitation; 're-invited': the peer was a member before (removed or left); 'already-invited': an invitation is pending (nothing sent). */
  readonly outcome: GroupAddOutcome;
}

export interface GroupInviteResult {
  readonly group: GroupInfo;
  readonly results: readonly { readonly conversationId: string; readonly outcome: GroupAddOutcome }[];
}

/** Per-member status of one send. */
export interface GroupRecipientInfo {
  readonly memberId: string;
  readonly name: string | null;
  /**
   * 'queued': in our session's outbox (sent, retried until acknowledged); 'waiting': no session
   * yet, sent once it opens; 'dropped': no session, and 1000 messages already wait for them.
   */
  readonly status: 'queued' | 'waiting' | 'dropped';
  readonly conversationId: string | null;
}

export interface GroupSendResult extends GroupMessageInfo {
  readonly recipients: readonly GroupRecipientInfo[];
}

export interface GroupEventMap {
  'group-invited': GroupInfo;
  'group-updated': GroupInfo;
  'group-message': GroupMessageInfo;
  'group-change': GroupChangeInfo;
  'group-rejected': GroupRejectedInfo;
}

export type GroupErrorCode = 'unknown-group' | 'not-a-member' | 'not-allowed' | 'not-invited' | 'rejected' | 'already-member' | 'no-recipients';

/** A ClientError ('invalid-argument') with a group-specific reason. */
export class GroupError extends ClientError {
  readonly groupCode: GroupErrorCode;
  constructor(groupCode: GroupErrorCode, message: string) {
    super('invalid-argument', message);
    this.groupCode = groupCode;
  }
}

/** One group event for the app, as the client's event stream carries it. */
export type GroupEvent = { [K in keyof GroupEventMap]: { readonly type: K; readonly data: GroupEventMap[K] } }[keyof GroupEventMap];

/**
 * What the group layer needs from the client, and nothing more: no engine, no conversation
 * state, no session's secret key (the client signs bindings itself). The client constructs
 * Groups with one; this module does not import the client.
 */
export interface GroupHost {
  /** Group keys and event signatures. */
  readonly crypto: CryptoProvider;
  /** Reads group messages (history, de-duplication, deferred sends); writes go through sendFramesLocked. */
  readonly store: Store;
  now(): number;
  /** Runs fn as one client operation (the client's queue); rejects once the client is closed. */
  serial<T>(fn: () => T | Promise<T>): Promise<T>;
  /** Throws ClientError 'client-closed' once closed (for reads that do not queue). */
  assertOpen(): void;
  /** Our pairwise sessions, as far as groups use them. */
  readonly sessions: GroupSessions;
  /**
   * Locked (inside serial): persist `extra` and the frames (as hidden messages + outbox) in one
   * transaction, then send. Resolves once the transaction is durable; rejects (nothing written,
   * nothing sent) when it fails, and the group layer then keeps its state as it was.
   */
  sendFramesLocked(frames: readonly { conversationId: string; frame: Uint8Array }[], extra: StoreBatch): Promise<void>;
  emit(e: GroupEvent): void;
  emitError(e: ClientError): void;
}

/** A session our identity is bound through: a conversation, or a card's invitation (by hex id). */
export type GroupSessionRef = { readonly conversationId: string } | { readonly invitationId: string };

/** The pairwise sessions groups ride on. */
export interface GroupSessions {
  /** The peer of a conversation we hold (its identity key and name), or undefined. */
  peer(conversationId: string): { readonly identityKey: Uint8Array; readonly name: string } | undefined;
  /** Our binding of that session's identity to the group key, signed by the client; undefined if the session is unknown. */
  bind(session: GroupSessionRef, chatId: string, groupKey: G.GroupKeyPair): G.GroupBinding | undefined;
  /** A new reusable invitation to hand out as our card. */
  newCard(ttlSeconds: number): Promise<{ readonly text: string; readonly invitationId: string }>;
  /** Accepts a member's card; resolves to the new conversation's id. */
  accept(card: string): Promise<string>;
}

