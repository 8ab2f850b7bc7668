/**
 * The Client facade: what an app developer uses. It glues the sans-I/O engine to a Store and a
 * Delivery adapter and never loses or duplicates a message:
 *
 * - Persist before publish: every envelope is encrypted on a copy of the conversation, the new
 *   state and the outbox entry are written in one transaction, then the engine adopts the state,
 *   then the envelope is published.
 * - Receive: dedupe by SHA-256 of the envelope bytes before classify; classify decrypts on a copy;
 *   state + message + envelope hash are written in one transaction; then engine.commit.
 *   Replays and duplicates are re-acknowledged, never re-delivered.
 * - Reliability is decided by the sans-I/O machine of @umbra/protocol (`reliability`: acks,
 *   duplicate-ack gating, Lamport clock, causal history, missing ids, retransmission requests,
 *   retries, the in-flight window, the frame-type switch). Its state is one value per
 *   conversation, stored with the engine's state in one record (`ConversationRecord`); this
 *   class only executes its effects: store writes, publishes, events, one wake timer.
 * - Outbox: the store keeps each outgoing message's envelope (or, while the in-flight window is
 *   full, the queued message) until the peer acknowledges it; the machine says when to retry and
 *   whether the same bytes will do or the frame must be re-encrypted under the same message id.
 * - Consent: allowed / unknown (a request) / denied. Invitations we created or accepted →
 *   allowed; first contact through the default inbox → unknown (no acks until allowed);
 *   denied → dropped without any reaction.
 *
 * All state-changing work runs one operation at a time (an internal queue), so the engine and
 * the store never diverge.
 */
import {
  Engine,
  UmbraError,
  deserializeConversation,
  deserializeInbox,
  fromHex,
  group as G,
  reliability as rel,
  safetyNumber,
  serializeConversation,
  serializeInbox,
  toHex,
  wire,
  type CryptoProvider,
  type FrameBody,
  type Inbox,
  type PrivateConversation,
} from '@umbra/protocol';
import type { Argon2idParams } from './at-rest.ts';
import { hasServiceEndpoints, type DeliveredEnvelope, type Delivery, type ServiceEndpointDelivery, type Subscription } from './delivery.ts';
import { ClientError, toClientError } from './errors.ts';
import { decodeContent, encodeContent, sealFrame, textContent } from './frames.ts';
import { EventEmitter } from './event-emitter.ts';
import { platform } from './platform.ts';
import { Groups, decodeGroupFrameBody, type GroupEventMap, type GroupHost } from './group/groups.ts';
import type {
  Consent,
  ConversationMeta,
  ConversationOrigin,
  MessageStatus,
  MissingEntry,
  OutboxEntry,
  Store,
  StoreBatch,
  StoredConversation,
  StoredInbox,
  StoredMessage,
} from './store.ts';

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
const EVENT_QUEUE_LIMIT = 10_000;
const MESSAGE_ID_BYTES = 16;

// ---- public types ------------------------------------------------------------------------

export interface ClientOptions {
  readonly delivery: Delivery;
  /** Directory for the SQLite store (umbra.db); created if missing. Needs `@umbra/client/node`. */
  readonly dataDir?: string;
  /** Or an already open store (the caller keeps ownership and closes it). */
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

/** Most gossip bytes accepted from a peer frame (a CheckpointGossip is well under 1 KiB). */
const MAX_GOSSIP_BYTES = 8192;
/** Frames whose envelope is re-acknowledged when it arrives again (those the machine acknowledges). */
function isAcknowledged(frame: wire.PrivateV1Frame): boolean {
  const kind = rel.frameKind(frame.body);
  return kind === 'content' || kind === 'group' || kind === 'particle-update';
}

/** Cursor-table key marking an invitation whose first contact arrives as a request (see createInvitation). */
const requestInboxKey = (invitationIdHex: string): string => `umbra:arrives-as-request:${invitationIdHex}`;

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
}

export interface ClientEventMap {
  message: MessageInfo;
  acked: { readonly conversationId: string; readonly messageId: string };
  missing: { readonly conversationId: string; readonly messageIds: readonly string[] };
  request: ConversationInfo;
  'conversation-started': ConversationInfo;
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
  /** Frames this version does not act on (session resets, unknown bodies), by kind: reported, never silently dropped. */
  unhandledFrames: Record<string, number>;
}

// ---- helpers -----------------------------------------------------------------------------

const utf8Length = (s: string) => Buffer.byteLength(s, 'utf8');
const idHex = (id: Uint8Array) => toHex(id);
const MAX_LAMPORT = Number.MAX_SAFE_INTEGER;

function clampTime(v: bigint): number {
  return v > 8_640_000_000_000_000n ? 8_640_000_000_000_000 : Number(v);
}

function parseMessageId(id: unknown, what = 'message id'): Uint8Array {
  if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id)) throw new ClientError('invalid-argument', `${what} must be 32 lowercase hex characters`);
  return fromHex(id)!;
}

function checkConversationId(id: unknown): string {
  if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id)) {
    throw new ClientError('invalid-argument', 'a conversation id is 32 lowercase hex characters');
  }
  return id;
}

function messageInfo(m: StoredMessage): MessageInfo {
  const content = decodeContent(m.body);
  let kind: MessageInfo['kind'] = 'unknown';
  let text: string | null = null;
  let replyTo: string | null = null;
  switch (content?.kind.case) {
    case 'text':
      kind = 'text';
      text = content.kind.value.body;
      replyTo = content.kind.value.replyTo.length === MESSAGE_ID_BYTES ? idHex(content.kind.value.replyTo) : null;
      break;
    case 'reaction':
      kind = 'reaction';
      text = content.kind.value.emoji;
      break;
    case 'edit':
      kind = 'edit';
      text = content.kind.value.body;
      break;
    case 'delete':
      kind = 'delete';
      break;
  }
  return {
    conversationId: m.conversationId,
    id: idHex(m.messageId),
    outgoing: m.outgoing,
    kind,
    text,
    replyTo,
    lamport: m.lamport,
    sentAt: m.sentAt,
    receivedAt: m.receivedAt,
    status: m.status,
    read: m.read,
  };
}

// ---- the client --------------------------------------------------------------------------

export class Client {
  private engine: Engine;
  private readonly metas = new Map<string, ConversationMeta>();
  /**
   * Each conversation's reliability state. Written in the transaction of every operation that
   * writes the conversation; its soft parts (pending acks, retry and request times) may run
   * ahead of the disk between writes: a crash then costs a re-acknowledgement on the peer's
   * retry, and everything in flight is retried at open anyway.
   */
  private readonly reliability = new Map<string, rel.ReliabilityState>();
  /** When each conversation's machine is next due (only conversations with pending work). */
  private readonly dueAt = new Map<string, number>();
  private readonly subscribed = new Set<string>();
  private readonly subscriptions: Subscription[] = [];
  private readonly emitter = new EventEmitter();
  private readonly iterators = new Set<{ push(e: ClientEvent): void; end(): void }>();
  private chain: Promise<unknown> = Promise.resolve();
  private closing = false;
  private closed = false;
  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeAt = Infinity;
  private tickTimer: NodeJS.Timeout | null = null;
  private syncTimer: NodeJS.Timeout | null = null;
  private lastPrune = 0;
  private readonly inflightPublishes = new Set<Promise<void>>();
  private readonly statsData: ClientStats = {
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
    unhandledFrames: {},
  };

  private readonly policy: rel.ReliabilityPolicy;
  private readonly syncIntervalMs: number;
  /** The delivery's receiving-service side, when it has one (ServicesDelivery). */
  private readonly services: ServiceEndpointDelivery | null;
  private readonly gossipSources = new Set<GossipSource>();
  /** group/v1: create, join and talk in groups (packages/client/src/group/). */
  readonly groups: Groups;

  private constructor(
    private readonly crypto: CryptoProvider,
    private readonly store: Store,
    private readonly ownsStore: boolean,
    private readonly delivery: Delivery,
    engine: Engine,
    private profileName: string,
    private readonly clock: () => number,
    options: ClientOptions,
  ) {
    this.engine = engine;
    this.services = hasServiceEndpoints(delivery) ? delivery : null;
    const num = (v: unknown, dflt: number, min: number, max: number, what: string) => {
      if (v === undefined) return dflt;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new ClientError('invalid-argument', `${what} must be a number in [${min}, ${max}]`);
      return v;
    };
    const retryInitialMs = num(options.retry?.initialMs, 2000, 1, 86_400_000, 'retry.initialMs');
    this.policy = {
      retryInitialMs,
      retryMaxMs: num(options.retry?.maxMs, 300_000, retryInitialMs, 86_400_000 * 7, 'retry.maxMs'),
      // Keep a few hint slots for acks and requests: a same-bytes retry needs its slot within HINT_WINDOW.
      maxInFlight: Math.floor(num(options.maxInFlight, 24, 1, rel.MAX_IN_FLIGHT, 'maxInFlight')),
      ackDelayMs: num(options.ackDelayMs, 20, 0, 60_000, 'ackDelayMs'),
      duplicateAckIntervalMs: num(options.duplicateAckIntervalMs, Math.min(1000, retryInitialMs / 2), 0, 3_600_000, 'duplicateAckIntervalMs'),
      missingGraceMs: num(options.missingGraceMs, 1000, 0, 86_400_000, 'missingGraceMs'),
      fastRetransmitMs: num(options.fastRetransmitMs, 200, 0, 86_400_000, 'fastRetransmitMs'),
    };
    this.syncIntervalMs = num(options.syncIntervalMs, 30_000, 0, 86_400_000, 'syncIntervalMs');
    this.groups = new Groups(this.groupHost());
  }

  /**
   * What the group layer may use: the lock, the store, pairwise sending, and our sessions as
   * peers and bindings; identity secrets stay here (bindings are signed in this class).
   */
  private groupHost(): GroupHost {
    return {
      crypto: this.crypto,
      store: this.store,
      now: () => this.clock(),
      serial: (fn) => this.serial(fn),
      assertOpen: () => this.assertOpen(),
      sessions: {
        peer: (id) => {
          const c = this.engine.conversation(id);
          return c === undefined ? undefined : { identityKey: c.peerIdentity, name: c.peerPresentation.name };
        },
        bind: (session, chatId, groupKey) => {
          const identity = 'conversationId' in session
            ? this.engine.conversation(session.conversationId)?.identity
            : this.engine.allInboxes().find((i) => toHex(i.invitationId) === session.invitationId)?.identity;
          return identity === undefined ? undefined : G.createGroupBinding(this.crypto, chatId, groupKey, identity);
        },
        newCard: async (ttlSeconds) => this.createInvitation({ reusable: true, ttlSeconds }),
        accept: async (text) => (await this.accept(text)).id,
      },
      sendFramesLocked: (frames, extra) => this.sendGroupFramesLocked(frames, extra),
      emit: (e) => this.emit(e),
      emitError: (e) => this.emitError(e),
    };
  }

  /**
   * Queue group frames for pairwise delivery: every frame becomes a (hidden) message of its
   * conversation with an outbox entry, written in ONE transaction together with `extra`; then
   * they go out like 1:1 messages (in-flight window, retries, acks, re-encryption).
   */
  private sendGroupFramesLocked(frames: readonly { conversationId: string; frame: Uint8Array }[], extra: StoreBatch): void {
    const now = this.clock();
    const messages: StoredMessage[] = [];
    const outboxPut: OutboxEntry[] = [];
    const states = new Map<string, rel.ReliabilityState>();
    for (const f of frames) {
      const meta = this.metas.get(f.conversationId);
      if (meta === undefined || meta.consent === 'denied' || this.engine.conversation(f.conversationId) === undefined) continue;
      const next = rel.nextLamport(states.get(f.conversationId) ?? this.rstate(f.conversationId));
      states.set(f.conversationId, next.state);
      const messageId = this.crypto.randomBytes(MESSAGE_ID_BYTES);
      messages.push({ conversationId: f.conversationId, messageId, outgoing: true, lamport: next.lamport, sentAt: now, receivedAt: null, body: f.frame, status: 'queued', read: true, group: true });
      outboxPut.push({ conversationId: f.conversationId, messageId, kind: 'content', lamport: next.lamport, envelope: null, hintHour: -1, hintIndex: -1, attempts: 0, nextAttemptAt: now, createdAt: now });
    }
    const records = [...states].map(([id, state]) => this.record({ ...this.metas.get(id)!, lastActivityAt: now }, this.engine.conversation(id)!, state));
    this.store.write({
      ...extra,
      conversations: [...(extra.conversations ?? []), ...records],
      messages: [...(extra.messages ?? []), ...messages],
      outboxPut: [...(extra.outboxPut ?? []), ...outboxPut],
    });
    for (const r of records) this.metas.set(r.meta.id, r.meta);
    for (const [id, state] of states) this.setReliability(id, state);
    for (const id of states.keys()) this.pumpLocked(id, now);
  }

  // ---- reliability state -----------------------------------------------------------------

  private rstate(id: string): rel.ReliabilityState {
    return this.reliability.get(id) ?? rel.EMPTY_RELIABILITY;
  }

  /** Adopt a conversation's new reliability state and keep the wake timer in step with it. */
  private setReliability(id: string, state: rel.ReliabilityState): void {
    this.reliability.set(id, state);
    const at = rel.nextDueAt(state);
    if (at === null) {
      this.dueAt.delete(id);
      return;
    }
    this.dueAt.set(id, at);
    this.armWake(at);
  }

  /** A conversation as stored: its meta (Lamport clock and recent ids mirror the machine's) and one record of engine and reliability state. */
  private record(meta: ConversationMeta, conversation: PrivateConversation, state: rel.ReliabilityState): StoredConversation {
    return {
      meta: { ...meta, lamport: state.lamport, recentIds: state.recentIds },
      state: rel.encodeConversationRecord(serializeConversation(conversation), state),
    };
  }

  /**
   * Read stored conversations: a record holds the engine's state and the reliability state; a
   * conversation written before reliability moved into the protocol package is migrated from
   * what the client stored then (Lamport clock and recent ids in its columns, missing ids in
   * their table, in-flight and handshake entries in the outbox). Returns the migrated ones too,
   * to be written back (and the old missing rows deleted) in one transaction.
   */
  private static readStoredConversations(store: Store, stored: readonly StoredConversation[]) {
    const conversations: PrivateConversation[] = [];
    const states = new Map<string, rel.ReliabilityState>();
    const migrated: string[] = [];
    let legacyMissing: Map<string, MissingEntry[]> | null = null;
    for (const c of stored) {
      const decoded = rel.decodeConversationRecord(c.state);
      const conversation = deserializeConversation(decoded.conversationState);
      conversations.push(conversation);
      if (decoded.reliability !== null) {
        states.set(c.meta.id, decoded.reliability);
        continue;
      }
      if (legacyMissing === null) {
        legacyMissing = new Map();
        for (const m of store.dueMissing(Number.MAX_SAFE_INTEGER, 1_000_000)) {
          const list = legacyMissing.get(m.conversationId) ?? [];
          list.push(m);
          legacyMissing.set(m.conversationId, list);
        }
      }
      const outbox = store.outbox(c.meta.id);
      const hs = outbox.find((o) => o.kind === 'handshake');
      states.set(
        c.meta.id,
        rel.migrateReliability({
          lamport: c.meta.lamport,
          recentIds: c.meta.recentIds,
          missing: legacyMissing.get(c.meta.id) ?? [],
          inFlight: outbox
            .filter((o) => o.kind === 'content' && o.envelope !== null)
            .map((o) => ({ messageId: o.messageId, lamport: o.lamport, hintHour: o.hintHour, hintIndex: o.hintIndex, attempts: o.attempts, lastSentAt: 0, nextAttemptAt: o.nextAttemptAt })),
          handshake: hs === undefined ? null : { messageId: hs.messageId, attempts: hs.attempts, nextAttemptAt: hs.nextAttemptAt },
        }),
      );
      migrated.push(c.meta.id);
    }
    return { conversations, states, migrated, legacyMissing: legacyMissing ?? new Map<string, MissingEntry[]>() };
  }

  /** Open a client: restore the identity and every conversation from the store, or create a new identity. */
  static async open(options: ClientOptions): Promise<Client> {
    if (options === null || typeof options !== 'object') throw new ClientError('invalid-argument', 'Client.open needs options');
    const d = options.delivery as Partial<Delivery> | undefined;
    if (d === undefined || d === null || typeof d.publish !== 'function' || typeof d.subscribe !== 'function' || typeof d.fetch !== 'function') {
      throw new ClientError('invalid-argument', 'options.delivery must implement publish, subscribe and fetch');
    }
    if ((options.store === undefined) === (options.dataDir === undefined)) {
      throw new ClientError('invalid-argument', 'give exactly one of dataDir or store');
    }
    if (options.profile !== undefined) {
      const name = (options.profile as { name?: unknown }).name;
      if (typeof name !== 'string' || name.length > MAX_PROFILE_NAME_CHARS) {
        throw new ClientError('invalid-argument', `profile.name must be a string of at most ${MAX_PROFILE_NAME_CHARS} characters`);
      }
    }
    if (options.restoreAccountKey !== undefined && (!(options.restoreAccountKey instanceof Uint8Array) || options.restoreAccountKey.length !== 32)) {
      throw new ClientError('invalid-argument', 'restoreAccountKey must be a 32-byte Ed25519 seed');
    }
    if (options.now !== undefined && typeof options.now !== 'function') throw new ClientError('invalid-argument', 'options.now must be a function');
    const crypto = options.crypto ?? platform().crypto;
    const clock = options.now ?? Date.now;
    let store: Store;
    let ownsStore = false;
    if (options.store !== undefined) {
      store = options.store;
    } else {
      if (typeof options.dataDir !== 'string' || options.dataDir.length === 0) throw new ClientError('invalid-argument', 'dataDir must be a non-empty path');
      // The platform entry (@umbra/client/node: SQLite in the directory) makes the store.
      store = platform().openDataDirStore({
        dataDir: options.dataDir,
        ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}),
        ...(options.key !== undefined ? { key: options.key } : {}),
        ...(options.argon2id !== undefined ? { argon2id: options.argon2id } : {}),
        crypto,
      });
      ownsStore = true;
    }
    try {
      const now = clock();
      const snap = store.load();
      let accountKey;
      let profileName: string;
      if (snap.account === null) {
        const secret = options.restoreAccountKey;
        accountKey = secret !== undefined ? { publicKey: crypto.ed25519PublicKey(secret), secretKey: new Uint8Array(secret) } : crypto.ed25519Generate();
        profileName = options.profile?.name ?? '';
        store.write({ account: { publicKey: accountKey.publicKey, secretKey: accountKey.secretKey, profileName, createdAt: now } });
      } else {
        accountKey = { publicKey: snap.account.publicKey, secretKey: snap.account.secretKey };
        if (options.restoreAccountKey !== undefined && toHex(crypto.ed25519PublicKey(options.restoreAccountKey)) !== toHex(accountKey.publicKey)) {
          throw new ClientError('invalid-argument', 'this store already holds a different identity');
        }
        profileName = snap.account.profileName;
        if (options.profile !== undefined && options.profile.name !== profileName) {
          profileName = options.profile.name;
          store.write({ account: { ...snap.account, profileName } });
        }
      }
      const inboxes = snap.inboxes.map((i) => deserializeInbox(i.state));
      const loaded = Client.readStoredConversations(store, snap.conversations);
      const engine = new Engine(crypto, { account: accountKey, inboxes, conversations: loaded.conversations }, now);
      const client = new Client(crypto, store, ownsStore, options.delivery, engine, profileName, clock, options);
      for (const c of snap.conversations) client.metas.set(c.meta.id, c.meta);
      if (loaded.migrated.length > 0) {
        const records = loaded.migrated.map((id) => client.record(client.metas.get(id)!, engine.conversation(id)!, loaded.states.get(id)!));
        const missingDelete = loaded.migrated.flatMap((id) => loaded.legacyMissing.get(id) ?? []);
        store.write({ conversations: records, missingDelete });
      }
      for (const [id, state] of loaded.states) client.reliability.set(id, state);
      await client.start();
      return client;
    } catch (e) {
      if (ownsStore) store.close();
      throw toClientError(e);
    }
  }

  private async start(): Promise<void> {
    this.subscribeRoutes([...this.engine.receiveRoutes(), ...(this.services !== null ? [this.services.servicesRoute] : [])]);
    this.groups.load();
    await this.sync();
    await this.serial(() => {
      // A restart is a good moment to retry: whatever was in flight goes out again now.
      const now = this.clock();
      for (const [id, state] of this.reliability) this.setReliability(id, rel.retryAllNow(state, now));
      for (const id of this.store.conversationsWithQueued()) this.pumpLocked(id, now);
      this.runDueLocked();
    });
    this.groups.connectPending();
    this.tickTimer = setInterval(() => {
      this.serial(() => this.tickLocked(this.clock())).catch((e) => this.backgroundError(e));
    }, 60_000);
    this.tickTimer.unref();
    if (this.syncIntervalMs > 0) {
      this.syncTimer = setInterval(() => {
        this.sync().catch((e) => this.backgroundError(e));
      }, this.syncIntervalMs);
      this.syncTimer.unref();
    }
  }

  // ---- identity --------------------------------------------------------------------------

  /** Hex of the account public key (Ed25519): the default inbox's identity. */
  get accountId(): string {
    return toHex(this.engine.account.publicKey);
  }

  get profile(): { readonly name: string } {
    return { name: this.profileName };
  }

  /** The account key (32-byte Ed25519 seed) for backup; restores the identity, not the conversations. */
  exportAccountKey(): Uint8Array {
    this.assertOpen();
    return new Uint8Array(this.engine.account.secretKey);
  }

  /**
   * A conversation's relationship identity (our Ed25519 key in it) as a signing port, for
   * attestations such as the directory's link proofs. The secret key never leaves the client;
   * the port stops signing once the client is closed.
   */
  relationshipSigner(conversationId: string): RelationshipSigner {
    this.assertOpen();
    checkConversationId(conversationId);
    this.requireMeta(conversationId);
    const identity = this.engine.conversation(conversationId)!.identity;
    return {
      publicKey: new Uint8Array(identity.publicKey),
      sign: (message) => {
        this.assertOpen();
        if (!(message instanceof Uint8Array)) throw new ClientError('invalid-argument', 'sign takes bytes');
        return this.crypto.ed25519Sign(identity.secretKey, message);
      },
    };
  }

  /** Public facts of a conversation's relationship: the invitation it began with (hex id) and the peer's identity key. */
  relationship(conversationId: string): RelationshipInfo {
    this.assertOpen();
    checkConversationId(conversationId);
    this.requireMeta(conversationId);
    const c = this.engine.conversation(conversationId)!;
    return { invitationId: toHex(c.invitationId), peerIdentityKey: new Uint8Array(c.peerIdentity) };
  }

  // ---- invitations -----------------------------------------------------------------------

  /**
   * A new invitation. Single use by default; expires after ttlSeconds (default 7 days).
   * `arrivesAsRequest`: a first contact through it starts as a request (consent 'unknown', no
   * acks until accepted), decided in the transaction that stores the conversation (directory key
   * packages use this). The mark is written in the same transaction as the inbox.
   */
  async createInvitation(options: { reusable?: boolean; ttlSeconds?: number; arrivesAsRequest?: boolean } = {}): Promise<InvitationInfo> {
    if (options === null || typeof options !== 'object') throw new ClientError('invalid-argument', 'options must be an object');
    const reusable = options.reusable ?? false;
    const arrivesAsRequest = options.arrivesAsRequest ?? false;
    if (typeof arrivesAsRequest !== 'boolean') throw new ClientError('invalid-argument', 'arrivesAsRequest must be a boolean');
    const ttlSeconds = options.ttlSeconds ?? 7 * 24 * 3600;
    if (typeof reusable !== 'boolean') throw new ClientError('invalid-argument', 'reusable must be a boolean');
    if (typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 366 * 24 * 3600) {
      throw new ClientError('invalid-argument', 'ttlSeconds must be an integer from 1 to one year');
    }
    const endpoints = await this.newRelationshipEndpoints();
    return this.serial(() => {
      const now = this.clock();
      const r = this.engine.createInvitation({ nowMs: now, reusable, ttlSeconds, presentation: { name: this.profileName }, ...(endpoints !== undefined ? { endpoints } : {}) });
      const invitationId = toHex(r.inbox.invitationId);
      // The store has no column for it: the mark lives in the key/value cursors table, same transaction.
      const cursors = arrivesAsRequest ? [{ route: requestInboxKey(invitationId), cursor: '1' }] : [];
      this.persistEngineChange(() => this.store.write({ inboxes: [this.storedInbox(r.inbox, now)], cursors }));
      this.subscribeRoutes(this.engine.receiveRoutes());
      return { text: r.text, invitationId, expiresAt: r.inbox.expiresAt };
    });
  }

  /** The default inbox's invitation (reusable, never expires); first contacts through it are requests. */
  async defaultInvitation(): Promise<string> {
    return this.serial(() => {
      const now = this.clock();
      const r = this.engine.defaultInbox(now, { name: this.profileName });
      if (r.changes.inboxes.length > 0) {
        this.persistEngineChange(() => this.store.write({ inboxes: r.changes.inboxes.map((i) => this.storedInbox(i, now)) }));
        this.subscribeRoutes(this.engine.receiveRoutes());
      }
      return r.text;
    });
  }

  /** Accept someone's invitation: opens a conversation (consent: allowed) and sends the handshake. */
  async accept(invitation: string): Promise<ConversationInfo> {
    if (typeof invitation !== 'string') throw new ClientError('invalid-argument', 'the invitation must be a string');
    if (invitation.length > MAX_INVITATION_CHARS) throw new ClientError('invitation-malformed', 'the invitation is too long');
    const endpoints = this.services === null ? undefined : await this.acceptEndpoints(invitation);
    return this.serial(async () => {
      const now = this.clock();
      let parsed;
      try {
        parsed = this.engine.parseInvitation(invitation, now);
      } catch (e) {
        throw toClientError(e);
      }
      const own = this.engine.allInboxes().some((i) => toHex(i.identity.publicKey) === toHex(parsed.identityKey));
      if (own) throw new ClientError('invitation-own', 'this is one of your own invitations');
      let r;
      try {
        r = await this.engine.acceptInvitation(invitation, { nowMs: now, presentation: { name: this.profileName }, ...(endpoints !== undefined ? { endpoints } : {}) });
      } catch (e) {
        throw toClientError(e);
      }
      const meta: ConversationMeta = {
        id: r.conversation.id,
        consent: 'allowed',
        origin: 'accepted',
        lamport: 0,
        recentIds: [],
        createdAt: now,
        lastActivityAt: now,
      };
      const state = rel.onHandshakeSent(rel.EMPTY_RELIABILITY, r.outgoing.messageId, now, this.policy);
      const entry: OutboxEntry = {
        conversationId: meta.id,
        messageId: r.outgoing.messageId,
        kind: 'handshake',
        lamport: 0,
        envelope: r.outgoing.envelope,
        hintHour: -1,
        hintIndex: -1,
        attempts: 1,
        nextAttemptAt: state.handshake!.nextAttemptAt,
        createdAt: now,
      };
      this.persistEngineChange(() => this.store.write({ conversations: [this.record(meta, r.conversation, state)], outboxPut: [entry] }));
      this.metas.set(meta.id, meta);
      this.setReliability(meta.id, state);
      this.subscribeRoutes(this.engine.receiveRoutes());
      this.publish(r.conversation.peerEndpoints, r.outgoing.envelope);
      const info = this.info(meta.id);
      this.emit({ type: 'conversation-started', data: info });
      return info;
    });
  }

  // ---- sending ---------------------------------------------------------------------------

  /**
   * Send a text. Resolves once the message is on disk (status 'sent' when it was also published,
   * 'queued' when the conversation already has maxInFlight unacknowledged messages). Replying to
   * a request accepts it.
   */
  async send(conversationId: string, text: string, options: { replyTo?: string } = {}): Promise<MessageInfo> {
    checkConversationId(conversationId);
    if (typeof text !== 'string') throw new ClientError('invalid-argument', 'text must be a string');
    if (utf8Length(text) > MAX_TEXT_BYTES) throw new ClientError('message-too-large', `a message is at most ${MAX_TEXT_BYTES} bytes of UTF-8`);
    if (options === null || typeof options !== 'object') throw new ClientError('invalid-argument', 'options must be an object');
    const replyTo = options.replyTo === undefined ? undefined : parseMessageId(options.replyTo, 'replyTo');
    return this.serial(() => {
      let meta = this.requireMeta(conversationId);
      if (meta.consent === 'denied') throw new ClientError('conversation-denied', 'this conversation is blocked');
      const now = this.clock();
      const becameAllowed = meta.consent === 'unknown';
      const messageId = this.crypto.randomBytes(MESSAGE_ID_BYTES);
      const next = rel.nextLamport(this.rstate(conversationId));
      const lamport = next.lamport;
      meta = { ...meta, consent: 'allowed', lamport, lastActivityAt: now };
      const message: StoredMessage = {
        conversationId,
        messageId,
        outgoing: true,
        lamport,
        sentAt: now,
        receivedAt: null,
        body: encodeContent(textContent(text, replyTo)),
        status: 'queued',
        read: true,
      };
      const queued: OutboxEntry = {
        conversationId,
        messageId,
        kind: 'content',
        lamport,
        envelope: null,
        hintHour: -1,
        hintIndex: -1,
        attempts: 0,
        nextAttemptAt: now,
        createdAt: now,
      };
      const room = this.roomInFlight(conversationId, now);
      if (room > 0 && this.store.queued(conversationId, 1).length === 0) {
        // Common case: encrypt now, and write message + state + outbox in one transaction.
        // Address rotation and gossip frames sealed just before it already see the new clock and consent.
        const previous = { meta: this.metas.get(conversationId)!, state: this.rstate(conversationId) };
        this.metas.set(conversationId, meta);
        this.reliability.set(conversationId, next.state);
        try {
          const sealed = this.sealContentLocked(message, queued, now, { messages: [{ ...message, status: 'sent' }] });
          if (sealed !== null) {
            this.afterSend(conversationId, becameAllowed);
            return messageInfo({ ...message, status: 'sent' });
          }
        } catch (e) {
          this.metas.set(conversationId, previous.meta);
          this.reliability.set(conversationId, previous.state);
          throw e;
        }
      }
      const stored = this.record(meta, this.engine.conversation(conversationId)!, next.state);
      this.store.write({ conversations: [stored], messages: [message], outboxPut: [queued] });
      this.metas.set(conversationId, stored.meta);
      this.setReliability(conversationId, next.state);
      this.afterSend(conversationId, becameAllowed);
      return messageInfo(message);
    });
  }

  private afterSend(conversationId: string, becameAllowed: boolean): void {
    if (becameAllowed) this.ackAllIncoming(conversationId);
  }

  /**
   * Encrypt one reliable message on a copy, persist engine state + reliability state + outbox
   * (+ `extra`) in one transaction, adopt the state, publish. Returns null when the conversation
   * cannot send yet.
   */
  private sealContentLocked(
    message: StoredMessage,
    entry: OutboxEntry,
    now: number,
    extra: StoreBatch = {},
  ): { hintIndex: number } | null {
    const id = message.conversationId;
    this.rotateEndpointsLocked(id, now);
    this.gossipLocked(id, now);
    const meta = this.metas.get(id)!;
    const state = this.rstate(id);
    const groupBody = message.group === true ? decodeGroupFrameBody(message.body) : null;
    const content = groupBody === null ? decodeContent(message.body) : null;
    if (content === null && groupBody === null) throw new ClientError('store-corrupt', 'a stored message body does not decode');
    let sealed;
    try {
      sealed = sealFrame(
        this.engine,
        id,
        { messageId: message.messageId, lamport: message.lamport, causalHistory: rel.causalHistory(state, message.messageId), body: groupBody ?? { case: 'content', value: content! } },
        now,
      );
    } catch (e) {
      if (e instanceof UmbraError && e.code === 'conversation-cannot-send') return null;
      throw toClientError(e);
    }
    const nextState = rel.onSealed(state, { messageId: message.messageId, lamport: message.lamport, hintHour: sealed.hintHour, hintIndex: sealed.hintIndex }, now, this.policy);
    const inFlight = nextState.inFlight.find((f) => idHex(f.messageId) === idHex(message.messageId))!;
    const stored = this.record({ ...meta, lastActivityAt: Math.max(meta.lastActivityAt, now) }, sealed.conversation, nextState);
    // The outbox row keeps the envelope; its attempt columns mirror the machine's entry.
    const put: OutboxEntry = { ...entry, envelope: sealed.envelope, hintHour: sealed.hintHour, hintIndex: sealed.hintIndex, attempts: inFlight.attempts, nextAttemptAt: inFlight.nextAttemptAt };
    this.store.write({
      ...extra,
      conversations: [stored],
      outboxPut: [put],
      messageStatus: [...(extra.messageStatus ?? []), { conversationId: id, messageId: message.messageId, status: 'sent' }],
    });
    this.engine.commit(sealed.changes);
    this.metas.set(id, stored.meta);
    this.setReliability(id, nextState);
    this.publish(sealed.conversation.peerEndpoints, sealed.envelope, inFlight.attempts - 1);
    return { hintIndex: sealed.hintIndex };
  }

  /** How many more reliable envelopes may go out now (the machine's in-flight window). */
  private roomInFlight(conversationId: string, now: number): number {
    const conversation = this.engine.conversation(conversationId);
    if (conversation === undefined) return 0;
    return rel.room(this.rstate(conversationId), this.policy, conversation.sendHint, now);
  }

  /** Encrypt queued messages while the conversation has room in flight. */
  private pumpLocked(conversationId: string, now: number): void {
    const meta = this.metas.get(conversationId);
    if (meta === undefined || meta.consent === 'denied') return;
    const room = this.roomInFlight(conversationId, now);
    if (room <= 0) return;
    for (const entry of this.store.queued(conversationId, room)) {
      const message = this.store.message(conversationId, entry.messageId);
      if (message === null) {
        this.store.write({ outboxDelete: [entry] });
        continue;
      }
      if (this.sealContentLocked(message, entry, now) === null) break;
    }
  }

  /**
   * A control frame (ack, retransmission request, Particle update, gossip): not retried, so not
   * in the outbox. Written with the conversation's current reliability state. Returns the
   * sealed conversation, or null when the conversation cannot send.
   */
  private sendControlLocked(conversationId: string, body: FrameBody, now: number, adjust?: (c: PrivateConversation) => PrivateConversation): PrivateConversation | null {
    const meta = this.metas.get(conversationId)!;
    const state = this.rstate(conversationId);
    let sealed;
    try {
      sealed = sealFrame(this.engine, conversationId, { messageId: this.crypto.randomBytes(MESSAGE_ID_BYTES), lamport: state.lamport, causalHistory: rel.causalHistory(state), body }, now);
    } catch (e) {
      if (e instanceof UmbraError && e.code === 'conversation-cannot-send') return null;
      throw toClientError(e);
    }
    const conversation = adjust === undefined ? sealed.conversation : adjust(sealed.conversation);
    this.store.write({ conversations: [this.record(meta, conversation, state)] });
    this.engine.commit(adjust === undefined ? sealed.changes : { ...sealed.changes, conversations: [conversation] });
    this.publish(conversation.peerEndpoints, sealed.envelope);
    return conversation;
  }

  private publish(endpoints: readonly wire.DeliveryEndpoint[], envelope: Uint8Array, attempt = 0): void {
    const viaServices = endpoints.filter((e) => e.endpoint.case === 'receivingService');
    if (viaServices.length > 0 && this.services !== null) this.track(this.publishToServices(this.services, viaServices, envelope, attempt));
    for (const e of endpoints) {
      if (e.endpoint.case !== 'route') continue; // service endpoints: publishToServices
      this.statsData.published++;
      let p: Promise<void>;
      try {
        p = this.delivery.publish(e.endpoint.value, envelope);
      } catch (err) {
        p = Promise.reject(err);
      }
      const tracked = p.then(
        () => undefined,
        (err) => {
          this.statsData.publishFailures++;
          this.emitError(new ClientError('delivery-failed', `publish failed (will retry): ${(err as Error)?.message ?? err}`, { cause: err }));
        },
      );
      this.inflightPublishes.add(tracked);
      void tracked.finally(() => this.inflightPublishes.delete(tracked));
    }
  }

  /**
   * A peer's receiving services, in order (a retry starts at the next one): the first that takes
   * the envelope wins; if none does, the outbox retries later.
   */
  private async publishToServices(services: ServiceEndpointDelivery, endpoints: readonly wire.DeliveryEndpoint[], envelope: Uint8Array, attempt: number): Promise<void> {
    const errors: string[] = [];
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[(i + attempt) % endpoints.length]!;
      try {
        await services.publishEndpoint(e, envelope);
        this.statsData.published++;
        return;
      } catch (err) {
        errors.push((err as Error)?.message ?? String(err));
      }
    }
    this.statsData.publishFailures++;
    this.emitError(new ClientError('delivery-failed', `publish failed (will retry): ${errors.join('; ')}`));
  }

  private track(p: Promise<void>): void {
    const tracked = p.catch((err) => this.backgroundError(err));
    this.inflightPublishes.add(tracked);
    void tracked.finally(() => this.inflightPublishes.delete(tracked));
  }

  /** Service endpoints for a new relationship, when the delivery offers them. */
  private async newRelationshipEndpoints(): Promise<wire.DeliveryEndpoint[] | undefined> {
    if (this.services === null) return undefined;
    try {
      return await this.services.endpointsForNewRelationship();
    } catch (e) {
      throw new ClientError('delivery-failed', `no receiving-service addresses: ${(e as Error)?.message ?? e}`, { cause: e });
    }
  }

  /** For accept: check the invitation first (a bad one fails without asking any service), then get endpoints. */
  private async acceptEndpoints(invitation: string): Promise<wire.DeliveryEndpoint[] | undefined> {
    try {
      this.engine.parseInvitation(invitation, this.clock());
    } catch (e) {
      throw toClientError(e);
    }
    return this.newRelationshipEndpoints();
  }

  /**
   * Address rotation, piggy-backed on an ordinary message: when the delivery says this
   * relationship's addresses are due, a Particle update with fresh endpoints goes out just before
   * the content frame (same flush, no extra round trip). The old addresses stay in ownEndpoints
   * (and valid at the service) until they expire, so late envelopes still find the conversation.
   */
  private rotateEndpointsLocked(conversationId: string, now: number): void {
    if (this.services === null) return;
    const current = this.engine.conversation(conversationId);
    const meta = this.metas.get(conversationId);
    if (current === undefined || meta === undefined) return;
    const fresh = this.services.rotationEndpoints(current.ownEndpoints, now);
    if (fresh === null || fresh.length === 0) return;
    const body: FrameBody = {
      case: 'particleUpdate',
      value: wire.create(wire.ParticleUpdateSchema, { endpoints: fresh, presentation: wire.create(wire.PresentationSchema, { name: this.profileName }) }),
    };
    const nowS = BigInt(Math.floor(now / 1000));
    const kept = current.ownEndpoints.filter((e) => e.endpoint.case !== 'receivingService' || e.endpoint.value.notAfter === 0n || e.endpoint.value.notAfter > nowS);
    this.sendControlLocked(conversationId, body, now, (c) => ({ ...c, ownEndpoints: [...fresh, ...kept].slice(0, wire.MAX_ENDPOINTS) }));
  }

  /** Registers a gossip source (a DirectoryClient); its gossip rides along with outgoing messages. */
  addGossipSource(source: GossipSource): void {
    this.gossipSources.add(source);
  }

  removeGossipSource(source: GossipSource): void {
    this.gossipSources.delete(source);
  }

  /**
   * Checkpoint gossip, piggy-backed like address rotation: a `checkpointGossip` control frame just
   * before the content frame (same flush). Not in the outbox, never acknowledged; a source whose
   * frame could not go out is not told `sent`, so it offers the same bytes with the next message.
   */
  private gossipLocked(conversationId: string, now: number): void {
    if (this.gossipSources.size === 0) return;
    const meta = this.metas.get(conversationId);
    if (meta === undefined || meta.consent !== 'allowed') return;
    for (const source of this.gossipSources) {
      let bytes: Uint8Array | null;
      try {
        bytes = source.outgoing(conversationId);
      } catch {
        continue;
      }
      if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes.length > MAX_GOSSIP_BYTES) continue;
      if (this.sendControlLocked(conversationId, { case: 'checkpointGossip', value: bytes }, now) === null) return;
      try {
        source.sent(conversationId, bytes);
      } catch {
        // the source's own bookkeeping; it may offer the same gossip again
      }
    }
  }

  // ---- receiving -------------------------------------------------------------------------

  private readonly onEnvelope = (e: DeliveredEnvelope): Promise<boolean> => {
    if (this.closing || e === null || typeof e !== 'object' || !(e.bytes instanceof Uint8Array)) return Promise.resolve(false);
    const route = typeof e.route === 'string' ? e.route : undefined;
    // Resolves once the envelope is committed (or judged a duplicate / not ours): adapters that
    // hold envelopes until acknowledged acknowledge only then.
    return this.serial(() => this.receiveLocked(e.bytes, route)).then(
      () => true,
      (err) => {
        this.backgroundError(err);
        return false;
      },
    );
  };

  /**
   * Handle one envelope; exposed for adapters that deliver by hand (and for tests). `route` is
   * where it was delivered, if known: it lets envelopes that waited in the network longer than
   * the hint windows (an offline period) still find their conversation.
   */
  async receive(bytes: Uint8Array, route?: string): Promise<'duplicate' | 'not-for-me' | 'badly-formed' | 'readable'> {
    if (!(bytes instanceof Uint8Array)) throw new ClientError('invalid-argument', 'bytes must be a Uint8Array');
    if (route !== undefined && typeof route !== 'string') throw new ClientError('invalid-argument', 'route must be a string');
    return this.serial(() => this.receiveLocked(bytes, route));
  }

  private async receiveLocked(bytes: Uint8Array, route?: string): Promise<'duplicate' | 'not-for-me' | 'badly-formed' | 'readable'> {
    const now = this.clock();
    this.tickLocked(now);
    if (bytes.length > wire.MAX_ENVELOPE_BYTES) {
      this.countBad('envelope-too-large');
      return 'badly-formed';
    }
    const hash = this.crypto.sha256(bytes);
    const seen = this.store.seenEnvelope(hash);
    if (seen !== null) {
      this.statsData.duplicateEnvelopes++;
      if (seen.conversationId !== null && seen.messageId !== null && this.metas.get(seen.conversationId)?.consent === 'allowed') {
        // The ack may have been lost: re-acknowledge, at most once per duplicate-ack interval.
        this.setReliability(seen.conversationId, rel.onDuplicateEnvelope(this.rstate(seen.conversationId), seen.messageId, now, this.policy));
      }
      return 'duplicate';
    }
    const r = await this.engine.classify(bytes, now, route === undefined ? {} : { route });
    if (r.kind === 'not-for-me') {
      this.statsData.notForMe++;
      return 'not-for-me';
    }
    if (r.kind === 'badly-formed') {
      this.countBad(r.reason);
      return 'badly-formed';
    }
    this.statsData.received++;
    const id = r.conversationId;
    const conversation = r.changes.conversations.find((c) => c.id === id);
    if (conversation === undefined) throw new ClientError('internal', 'a readable result without its conversation');
    let meta = this.metas.get(id);
    const started = meta === undefined;
    if (meta === undefined) {
      const viaDefault = r.started?.viaDefaultInbox ?? false;
      const asRequest = viaDefault || (r.started != null && this.store.cursor(requestInboxKey(toHex(r.started.invitationId))) !== null);
      meta = { id, consent: asRequest ? 'unknown' : 'allowed', origin: viaDefault ? 'default-inbox' : 'invitation', lamport: 0, recentIds: [], createdAt: now, lastActivityAt: now };
    }
    const denied = meta.consent === 'denied';
    const acknowledge = meta.consent === 'allowed';
    let state = this.rstate(id);
    let effects: rel.FrameEffects | null = null;
    const batch: StoreBatch & Required<Pick<StoreBatch, 'messages' | 'messageStatus' | 'outboxDelete'>> = { messages: [], messageStatus: [], outboxDelete: [] };
    const events: ClientEvent[] = [];
    let groupReceive: ReturnType<Groups['beginReceive']> | undefined;
    if (!denied) {
      const r2 = rel.onFrames(state, r.frames, now, this.policy, { known: this.knownIds(id, r.frames), acknowledge });
      state = r2.state;
      effects = r2.effects;
      this.statsData.duplicateMessages += effects.duplicateMessages;
      for (const a of effects.acked) {
        batch.messageStatus.push({ conversationId: id, messageId: a.messageId, status: 'acked' });
        batch.outboxDelete.push({ conversationId: id, messageId: a.messageId });
        events.push({ type: 'acked', data: { conversationId: id, messageId: idHex(a.messageId) } });
      }
      if (effects.handshakeAcked !== null) batch.outboxDelete.push({ conversationId: id, messageId: effects.handshakeAcked });
      for (const frame of effects.delivered) {
        const common = { conversationId: id, messageId: frame.messageId, outgoing: false, lamport: Number(frame.lamport > BigInt(MAX_LAMPORT) ? BigInt(MAX_LAMPORT) : frame.lamport), sentAt: clampTime(frame.sentAt), receivedAt: now, status: 'received' as const };
        if (frame.body.case === 'content') {
          const stored: StoredMessage = { ...common, body: encodeContent(frame.body.value), read: false };
          batch.messages.push(stored);
          events.push({ type: 'message', data: messageInfo(stored) });
        } else if (frame.body.case === 'group') {
          // group/v1 frames are reliable like content: stored (hidden from 1:1 history), deduplicated, acknowledged.
          const body = wire.toBinary(wire.PrivateV1FrameSchema, wire.create(wire.PrivateV1FrameSchema, { body: frame.body }));
          batch.messages.push({ ...common, body, read: true, group: true });
          groupReceive ??= this.groups.beginReceive(now);
          groupReceive.frame(id, frame.body.value, conversation.peerIdentity);
        }
      }
      for (const u of effects.unhandled) this.statsData.unhandledFrames[u.kind] = (this.statsData.unhandledFrames[u.kind] ?? 0) + 1;
    }
    const m: ConversationMeta = denied ? meta : { ...meta, lastActivityAt: now };
    const stored = this.record(m, conversation, state);
    const first = r.frames[0];
    const write: StoreBatch = {
      ...batch,
      conversations: [stored],
      inboxes: r.changes.inboxes.map((i) => this.storedInbox(i, now)),
      // Only a reliable frame's envelope is re-acknowledged when it comes again: a duplicate ack,
      // request or gossip envelope costs nothing.
      seenEnvelopes: [{ hash, conversationId: id, messageId: first !== undefined && isAcknowledged(first) ? first.messageId : null, seenAt: now }],
    };
    if (groupReceive !== undefined) Object.assign(write, groupReceive.batch());
    this.store.write(write);
    this.engine.commit(r.changes);
    this.metas.set(id, stored.meta);
    this.setReliability(id, state);
    groupReceive?.commit();
    if (started) {
      this.subscribeRoutes(this.engine.receiveRoutes());
      const info = this.info(id);
      this.emit({ type: 'conversation-started', data: info });
      if (m.consent === 'unknown') this.emit({ type: 'request', data: info });
    }
    if (effects === null) return 'readable';
    if (effects.missing.length > 0) this.emit({ type: 'missing', data: { conversationId: id, messageIds: effects.missing.map(idHex) } });
    for (const e of events) this.emit(e);
    for (const g of effects.gossip) {
      if (g.length > MAX_GOSSIP_BYTES) continue;
      for (const source of this.gossipSources) {
        try {
          source.incoming(id, g);
        } catch {
          // unknown or malformed gossip is ignored
        }
      }
    }
    if (effects.retransmitAnswered > 0) this.statsData.retransmitRequestsAnswered++;
    if (effects.retransmitRequested.length > 0) this.answerRetransmitLocked(id, effects.retransmitRequested, now);
    if (effects.acked.length > 0 || effects.handshakeAcked !== null) this.pumpLocked(id, now);
    return 'readable';
  }

  /** Which of the ids these frames carry (their own, their causal history) the store already holds. */
  private knownIds(conversationId: string, frames: readonly wire.PrivateV1Frame[]): rel.KnownIds {
    const known = new Map<string, 'incoming' | 'outgoing'>();
    const look = (messageId: Uint8Array) => {
      if (messageId.length !== MESSAGE_ID_BYTES) return;
      const hex = idHex(messageId);
      if (known.has(hex)) return;
      const state = this.store.messageState(conversationId, messageId);
      if (state !== null) known.set(hex, state.outgoing ? 'outgoing' : 'incoming');
    };
    for (const frame of frames) {
      if (frame.body.case === 'content' || frame.body.case === 'group') look(frame.messageId);
      for (const causal of frame.causalHistory) look(causal);
    }
    return known;
  }

  /** The peer asks for messages it has seen referenced but lacks and that are not in flight: answer from the store. */
  private answerRetransmitLocked(conversationId: string, ids: readonly Uint8Array[], now: number): void {
    const puts: OutboxEntry[] = [];
    const status: StoreBatch['messageStatus'] = [];
    for (const messageId of ids) {
      if (this.store.outboxEntry(conversationId, messageId) !== null) continue; // queued: it goes out when the window allows
      const msg = this.store.message(conversationId, messageId);
      if (msg === null || !msg.outgoing || msg.status === 'failed') continue;
      // Acknowledged once, yet asked for again: queue it for re-encryption under the same id.
      puts.push({ conversationId, messageId, kind: 'content', lamport: msg.lamport, envelope: null, hintHour: -1, hintIndex: -1, attempts: 0, nextAttemptAt: now, createdAt: now });
      status.push({ conversationId, messageId, status: 'queued' });
    }
    if (puts.length === 0) return;
    this.statsData.retransmitRequestsAnswered++;
    this.store.write({ outboxPut: puts, messageStatus: status });
    this.pumpLocked(conversationId, now);
  }

  // ---- acks ------------------------------------------------------------------------------

  /** A request just accepted: acknowledge what it sent so far. */
  private ackAllIncoming(conversationId: string): void {
    const ids = this.store.incomingIds(conversationId, 4 * ACK_IDS_PER_FRAME);
    this.setReliability(conversationId, rel.acknowledge(this.rstate(conversationId), ids, this.clock(), this.policy));
  }

  // ---- executing the machine's timers ------------------------------------------------------

  /**
   * Run every conversation whose machine is due: ack frames, retransmission requests, retries.
   * `firedFor`: the due time the wake timer was armed for. A timer that fired means its delay
   * has passed even when the app's clock (options.now) has not moved, so what was due then runs.
   */
  private runDueLocked(firedFor = -Infinity): void {
    const now = this.clock();
    this.tickLocked(now);
    const dueBy = Math.max(now, firedFor);
    for (const [id, at] of [...this.dueAt]) {
      if (at > dueBy) continue;
      const meta = this.metas.get(id);
      const conversation = this.engine.conversation(id);
      if (meta === undefined || conversation === undefined) {
        this.dueAt.delete(id);
        continue;
      }
      const { state, effects } = rel.due(this.rstate(id), dueBy, this.policy, { allowed: meta.consent === 'allowed', sendHint: conversation.sendHint });
      this.setReliability(id, state);
      this.executeDueLocked(id, effects, now);
    }
    this.scheduleWake();
  }

  private flushAllAcksLocked(): void {
    const now = this.clock();
    for (const [id, state] of [...this.reliability]) {
      if (state.pendingAcks.length === 0) continue;
      const taken = rel.takeAcks(state, now);
      this.setReliability(id, taken.state);
      if (this.metas.get(id)?.consent !== 'allowed' || this.engine.conversation(id) === undefined) continue;
      this.executeDueLocked(id, { acks: taken.acks, retransmitRequest: [], gaveUp: [], retransmissions: [], handshakeRetry: null }, now);
    }
  }

  private executeDueLocked(id: string, effects: rel.DueEffects, now: number): void {
    for (const ids of effects.acks) {
      if (this.sendControlLocked(id, { case: 'ack', value: wire.create(wire.AckSchema, { messageIds: [...ids] }) }, now) !== null) this.statsData.acksSent++;
    }
    if (effects.retransmitRequest.length > 0) {
      this.sendControlLocked(id, { case: 'retransmitRequest', value: wire.create(wire.RetransmitRequestSchema, { messageIds: [...effects.retransmitRequest] }) }, now);
      this.statsData.retransmitRequestsSent++;
    }
    for (const retry of effects.retransmissions) {
      const entry = this.store.outboxEntry(id, retry.messageId);
      if (entry !== null && entry.envelope !== null && retry.sameBytes) {
        this.statsData.retries++;
        this.publish(this.engine.conversation(id)!.peerEndpoints, entry.envelope, retry.attempt - 1);
        continue;
      }
      const message = entry === null ? null : this.store.message(id, retry.messageId);
      if (entry === null || entry.envelope === null || message === null) {
        // Its message or envelope is gone: it can never be acknowledged.
        this.setReliability(id, rel.forget(this.rstate(id), retry.messageId));
        if (entry !== null) this.store.write({ outboxDelete: [entry] });
        continue;
      }
      this.statsData.reencrypted++;
      this.sealContentLocked(message, entry, now); // null: cannot send yet; the machine has already scheduled the next try
    }
    if (effects.handshakeRetry !== null) {
      const hs = this.store.outboxEntry(id, effects.handshakeRetry.messageId);
      if (hs === null || hs.envelope === null) {
        this.setReliability(id, { ...this.rstate(id), handshake: null });
      } else {
        this.statsData.retries++;
        this.publish(this.engine.conversation(id)!.peerEndpoints, hs.envelope, effects.handshakeRetry.attempt - 1);
      }
    }
  }

  /** One timer for all conversations, armed for the earliest due time. */
  private armWake(at: number): void {
    if (this.closing) return;
    if (this.wakeTimer !== null && at >= this.wakeAt) return;
    if (this.wakeTimer !== null) clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.wakeAt = Infinity;
      this.serial(() => this.runDueLocked(at)).catch((e) => this.backgroundError(e));
    }, Math.max(0, Math.min(at - this.clock(), 2 ** 31 - 1)));
  }

  private scheduleWake(): void {
    let at = Infinity;
    for (const t of this.dueAt.values()) if (t < at) at = t;
    if (at !== Infinity) this.armWake(at);
  }

  private tickLocked(now: number): void {
    const changes = this.engine.tick(now);
    if (changes.conversations.length > 0) {
      this.store.write({
        conversations: changes.conversations.map((c) => this.record(this.metas.get(c.id)!, c, this.rstate(c.id))),
      });
    }
    if (now - this.lastPrune > 24 * 3600 * 1000) {
      this.lastPrune = now;
      this.store.pruneSeenEnvelopes(now - SEEN_ENVELOPE_RETENTION_MS);
    }
  }

  // ---- delivery --------------------------------------------------------------------------

  private subscribeRoutes(routes: readonly string[]): void {
    const fresh = routes.filter((r) => !this.subscribed.has(r));
    if (fresh.length === 0 || this.closing) return;
    for (const r of fresh) this.subscribed.add(r);
    this.subscriptions.push(this.delivery.subscribe(fresh, this.onEnvelope));
  }

  /** Fetch what the network holds for every route since the last cursor, and process it. */
  async sync(): Promise<void> {
    this.assertOpen();
    for (const route of [...this.subscribed]) {
      let cursor = this.store.cursor(route);
      for (let page = 0; page < 10_000 && !this.closing; page++) {
        let result;
        try {
          result = await this.delivery.fetch(route, cursor);
        } catch (e) {
          this.emitError(new ClientError('delivery-failed', `fetch failed: ${(e as Error)?.message ?? e}`, { cause: e }));
          break;
        }
        for (const env of result.envelopes) {
          if (this.closing) return;
          if (env !== null && typeof env === 'object' && env.bytes instanceof Uint8Array) {
            await this.serial(() => this.receiveLocked(env.bytes, typeof env.route === 'string' && env.route !== '' ? env.route : route));
          }
        }
        const next = result.cursor;
        if (typeof next === 'string' && next !== cursor) {
          await this.serial(() => this.store.write({ cursors: [{ route, cursor: next }] }));
          cursor = next;
        }
        if (result.envelopes.length === 0) break;
      }
    }
  }

  // ---- conversations, history, read state, consent ---------------------------------------

  conversation(conversationId: string): ConversationInfo {
    this.assertOpen();
    checkConversationId(conversationId);
    this.requireMeta(conversationId);
    return this.info(conversationId);
  }

  /** Conversations, most recently active first. By default the allowed ones; requests and blocked ones on demand. */
  conversations(options: { consent?: Consent | 'all' } = {}): ConversationInfo[] {
    this.assertOpen();
    const want = options?.consent ?? 'allowed';
    if (!['allowed', 'unknown', 'denied', 'all'].includes(want)) throw new ClientError('invalid-argument', 'consent must be allowed, unknown, denied or all');
    return [...this.metas.values()]
      .filter((m) => want === 'all' || m.consent === want)
      .sort((a, b) => b.lastActivityAt - a.lastActivityAt || (a.id < b.id ? -1 : 1))
      .map((m) => this.info(m.id));
  }

  /** First contacts through the default inbox that are not yet allowed or denied. */
  requests(): ConversationInfo[] {
    return this.conversations({ consent: 'unknown' });
  }

  /** Message history in Lamport order (ties by message id), newest page first. */
  history(conversationId: string, options: { limit?: number; before?: string } = {}): HistoryPage {
    this.assertOpen();
    checkConversationId(conversationId);
    if (options === null || typeof options !== 'object') throw new ClientError('invalid-argument', 'options must be an object');
    const limit = options.limit ?? 50;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ClientError('invalid-argument', 'limit must be an integer from 1 to 1000');
    let before = null;
    if (options.before !== undefined) {
      const match = typeof options.before === 'string' ? /^(\d{1,16})\.([0-9a-f]{32})$/.exec(options.before) : null;
      if (match === null) throw new ClientError('invalid-argument', 'before must be a cursor returned by history()');
      before = { lamport: Number(match[1]), messageId: fromHex(match[2]!)! };
    }
    this.requireMeta(conversationId);
    const rows = this.store.history(conversationId, limit + 1, before);
    const hasMore = rows.length > limit;
    const page = rows.slice(0, limit).reverse();
    const oldest = page[0];
    return {
      messages: page.map(messageInfo),
      cursor: hasMore && oldest !== undefined ? `${oldest.lamport}.${idHex(oldest.messageId)}` : null,
    };
  }

  /** Mark incoming messages read, up to and including `upTo` (default: all). */
  async markRead(conversationId: string, upTo?: string): Promise<void> {
    checkConversationId(conversationId);
    const upToId = upTo === undefined ? undefined : parseMessageId(upTo, 'upTo');
    return this.serial(() => {
      this.requireMeta(conversationId);
      let position: { lamport: number; messageId: Uint8Array };
      if (upToId !== undefined) {
        const msg = this.store.message(conversationId, upToId);
        if (msg === null) throw new ClientError('invalid-argument', 'upTo is not a message of this conversation');
        position = { lamport: msg.lamport, messageId: upToId };
      } else {
        position = { lamport: MAX_LAMPORT, messageId: new Uint8Array(MESSAGE_ID_BYTES).fill(0xff) };
      }
      this.store.write({ markRead: [{ conversationId, upToLamport: position.lamport, upToMessageId: position.messageId }] });
    });
  }

  /**
   * allowed: accept (a request's messages are acknowledged now); denied: block — nothing from
   * this peer is stored or answered, and our unsent messages to it are marked failed.
   */
  async setConsent(conversationId: string, consent: Consent): Promise<void> {
    checkConversationId(conversationId);
    if (consent !== 'allowed' && consent !== 'denied' && consent !== 'unknown') throw new ClientError('invalid-argument', 'consent must be allowed, unknown or denied');
    return this.serial(() => {
      const meta = this.requireMeta(conversationId);
      if (meta.consent === consent) return;
      const next = { ...meta, consent };
      if (consent === 'denied') {
        // Blocked: nothing more goes out (no retries, no handshake, no acks), in the same transaction.
        const state = rel.abandon(this.rstate(conversationId));
        const stored = this.record(next, this.engine.conversation(conversationId)!, state);
        this.store.write({ conversations: [stored], abandonOutbox: [conversationId] });
        this.metas.set(conversationId, stored.meta);
        this.setReliability(conversationId, state);
        return;
      }
      this.store.write({ conversationMeta: [next] });
      this.metas.set(conversationId, next);
      if (consent === 'allowed') {
        this.ackAllIncoming(conversationId);
        this.pumpLocked(conversationId, this.clock());
      }
    });
  }

  acceptRequest(conversationId: string): Promise<void> {
    return this.setConsent(conversationId, 'allowed');
  }

  block(conversationId: string): Promise<void> {
    return this.setConsent(conversationId, 'denied');
  }

  /** Outgoing messages not yet acknowledged (all conversations, or one). */
  pendingCount(conversationId?: string): number {
    this.assertOpen();
    if (conversationId !== undefined) checkConversationId(conversationId);
    return this.store.pendingCount(conversationId);
  }

  stats(): ClientStats {
    return structuredClone(this.statsData);
  }

  /** Resolves when every queued operation has run (tests, orderly shutdown). */
  async settle(): Promise<void> {
    await this.chain.catch(() => undefined);
    await Promise.allSettled([...this.inflightPublishes]);
  }

  private info(id: string): ConversationInfo {
    const meta = this.metas.get(id)!;
    const c = this.engine.conversation(id)!;
    return {
      id,
      peerName: c.peerPresentation.name,
      consent: meta.consent,
      origin: meta.origin,
      createdAt: meta.createdAt,
      lastActivityAt: meta.lastActivityAt,
      unreadCount: this.store.unreadCount(id),
      pendingCount: this.store.pendingCount(id),
      safetyNumber: safetyNumber(this.crypto, c.identity.publicKey, c.peerIdentity),
    };
  }

  private requireMeta(id: string): ConversationMeta {
    const meta = this.metas.get(id);
    if (meta === undefined || this.engine.conversation(id) === undefined) throw new ClientError('unknown-conversation', `no conversation ${id}`);
    return meta;
  }

  private storedInbox(inbox: Inbox, now: number): StoredInbox {
    return { invitationId: inbox.invitationId, state: serializeInbox(inbox), isDefault: inbox.isDefaultInbox, expiresAt: inbox.expiresAt, createdAt: now };
  }

  /**
   * For engine calls that change the engine at once (createInvitation, acceptInvitation): if the
   * write fails, rebuild the engine from the store so memory never runs ahead of the disk.
   */
  private persistEngineChange(write: () => void): void {
    try {
      write();
    } catch (e) {
      this.reloadEngine();
      throw toClientError(e);
    }
  }

  private reloadEngine(): void {
    const snap = this.store.load();
    if (snap.account === null) throw new ClientError('store-corrupt', 'the store lost its account');
    const loaded = Client.readStoredConversations(this.store, snap.conversations);
    this.engine = new Engine(
      this.crypto,
      {
        account: { publicKey: snap.account.publicKey, secretKey: snap.account.secretKey },
        inboxes: snap.inboxes.map((i) => deserializeInbox(i.state)),
        conversations: loaded.conversations,
      },
      this.clock(),
    );
    this.metas.clear();
    for (const c of snap.conversations) this.metas.set(c.meta.id, c.meta);
    this.reliability.clear();
    this.dueAt.clear();
    for (const [id, state] of loaded.states) this.setReliability(id, state);
  }

  // ---- events ----------------------------------------------------------------------------

  on<K extends keyof ClientEventMap>(event: K, listener: (data: ClientEventMap[K]) => void): this {
    this.emitter.on(event, listener);
    return this;
  }

  once<K extends keyof ClientEventMap>(event: K, listener: (data: ClientEventMap[K]) => void): this {
    this.emitter.once(event, listener);
    return this;
  }

  off<K extends keyof ClientEventMap>(event: K, listener: (data: ClientEventMap[K]) => void): this {
    this.emitter.off(event, listener);
    return this;
  }

  /** Every event as an async iterator (ends when the client closes; keeps the last 10,000 unread events). */
  events(): AsyncIterableIterator<ClientEvent> {
    const queue: ClientEvent[] = [];
    let waiting: ((r: IteratorResult<ClientEvent>) => void) | null = null;
    let done = false;
    const sink = {
      push: (e: ClientEvent) => {
        if (waiting !== null) {
          const w = waiting;
          waiting = null;
          w({ value: e, done: false });
          return;
        }
        queue.push(e);
        if (queue.length > EVENT_QUEUE_LIMIT) queue.shift();
      },
      end: () => {
        done = true;
        if (waiting !== null) {
          const w = waiting;
          waiting = null;
          w({ value: undefined, done: true });
        }
      },
    };
    if (this.closed) sink.end();
    else this.iterators.add(sink);
    const iterator: AsyncIterableIterator<ClientEvent> = {
      next: () => {
        if (queue.length > 0) return Promise.resolve({ value: queue.shift()!, done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (waiting = resolve));
      },
      return: () => {
        this.iterators.delete(sink);
        sink.end();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  private emit(event: ClientEvent): void {
    for (const it of this.iterators) it.push(event);
    if (event.type === 'error' && this.emitter.listenerCount('error') === 0) return; // never throw from a background error
    try {
      this.emitter.emit(event.type, event.data);
    } catch {
      this.statsData.listenerErrors++;
    }
  }

  private emitError(error: ClientError): void {
    this.emit({ type: 'error', data: error });
  }

  private backgroundError(e: unknown): void {
    const err = toClientError(e);
    if (err.code === 'client-closed' || this.closed) return;
    this.emitError(err);
  }

  private countBad(reason: string): void {
    this.statsData.badlyFormed[reason] = (this.statsData.badlyFormed[reason] ?? 0) + 1;
  }

  // ---- lifecycle -------------------------------------------------------------------------

  private serial<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.chain.then(() => {
      if (this.closed) throw new ClientError('client-closed', 'the client is closed');
      return fn();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private assertOpen(): void {
    if (this.closed) throw new ClientError('client-closed', 'the client is closed');
  }

  /** Stop timers and subscriptions, finish queued work, close the store (if the client opened it). */
  async close(): Promise<void> {
    if (this.closing) return this.settle();
    this.closing = true;
    if (this.wakeTimer !== null) clearTimeout(this.wakeTimer);
    // Acks queued in the last ackDelayMs would be lost with their timer, and a short-lived client
    // (the CLI) would then never acknowledge anything: the peer would retry forever. Send them now.
    await this.serial(() => this.flushAllAcksLocked()).catch((e) => this.backgroundError(e));
    for (const t of [this.tickTimer, this.syncTimer]) if (t !== null) clearInterval(t);
    this.wakeTimer = this.tickTimer = this.syncTimer = null;
    for (const s of this.subscriptions.splice(0)) s.close();
    await this.settle();
    this.closed = true;
    for (const it of this.iterators) it.end();
    this.iterators.clear();
    if (this.ownsStore) this.store.close();
  }
}
