/**
 * The sans-I/O engine: bytes and time in; envelopes, events and state changes out.
 *
 * - `classify(bytes, now)` decodes any envelope into exactly one of Readable, BadlyFormed or
 *   NotForMe. It never throws and never changes the engine: a Readable result carries the
 *   `changes` to persist, and the caller adopts them with `commit(changes)` after its write.
 * - `send`, `acceptInvitation` and `createInvitation` change the engine at once (the caller
 *   persists the returned changes before it publishes anything; if that write fails it must
 *   reopen the engine from its store).
 * - The hint table is derived, and built after opening: `new Engine` computes no hint (at
 *   100,000 conversations that was 2.4 M HMACs, 25 s), the table is filled in slices
 *   (`tick`, `indexHints`), and an envelope whose hint is not in the table while that work is
 *   pending waits in `classify` until it is found or the table is complete (docs/PROTOCOL.md §6).
 */
import type { CryptoProvider, KeyPair } from './crypto/provider.ts';
import { toHex } from './bytes.ts';
import { UmbraError } from './errors.ts';
import { HINT_KEY_BYTES, HINT_WINDOW, HINTS_PER_BLOCK, HintTable, freshWindow, hourOf, windowAt, type HintSlot, type HourWindow } from './hints.ts';
import {
  createInvitation,
  inboxHint,
  invitationText,
  inboxRoute,
  parseInvitation,
  type CreateInvitationOptions,
  type Inbox,
  type ParsedInvitation,
  type Presentation,
} from './invitation.ts';
import { LABEL_INITIAL_MESSAGE } from './labels.ts';
import { PackedBytes } from './packed-bytes.ts';
import {
  MAX_REFUSAL_ENDPOINTS,
  REFUSAL_KEY_BYTES,
  openRefusal,
  refusalHint,
  refusalHintBytes,
  refusalKey,
  sealRefusal,
  type HandshakeRefusalReason,
  type HandshakeRefused,
} from './handshake-refusal.ts';
import { initiatorAgree, responderAgree } from './pqxdh.ts';
import { initInitiator, initResponder } from './ratchet.ts';
import {
  conversationHeader,
  conversationOrigin,
  conversationOwnEndpoints,
  conversationRefusalInputs,
  conversationWindowAt,
  deserializeConversation,
  serializeConversation,
} from './state.ts';
import {
  buildFrame,
  decryptFrame,
  encryptFrame,
  encryptFrameToEnvelope,
  newConversation,
  type FrameBody,
  type PrivateConversation,
  type ReliabilityFields,
} from './private-v1.ts';
import {
  DeliveryEndpointSchema,
  DoubleRatchetMessageSchema,
  InboxHandshakeSchema,
  InitialMessageSchema,
  ParticleUpdateSchema,
  PresentationSchema,
  create,
  decodeEncryptedPayload,
  decodeEnvelopeRouting,
  decodeInitialMessage,
  encodeEncryptedPayload,
  encodeEnvelope,
  toBinary,
  type DeliveryEndpoint,
  type EnvelopeRouting,
  type InitialMessage,
  type PrivateV1Frame,
} from './wire/codec.ts';

/** What a caller persists in one transaction: upserted records. */
export interface StateChanges {
  readonly conversations: readonly PrivateConversation[];
  readonly inboxes: readonly Inbox[];
}

/** An envelope to publish to each of the peer's endpoints. */
export interface Outgoing {
  readonly conversationId: string;
  readonly endpoints: readonly DeliveryEndpoint[];
  readonly envelope: Uint8Array;
  /** The frame's message id (16 bytes), for acks and dedupe. */
  readonly messageId: Uint8Array;
}

export interface ConversationStarted {
  readonly invitationId: Uint8Array;
  readonly viaDefaultInbox: boolean;
  readonly peerIdentity: Uint8Array;
}

export type ClassifyResult =
  | {
      readonly kind: 'readable';
      readonly conversationId: string;
      readonly frames: readonly PrivateV1Frame[];
      /** Set when this envelope opened a new conversation (first contact). */
      readonly started: ConversationStarted | null;
      readonly changes: StateChanges;
      /** Set when this envelope is the inviter's refusal of our first contact (`frames` is empty). */
      readonly refused?: HandshakeRefused;
    }
  | {
      readonly kind: 'badly-formed';
      readonly reason: BadlyFormedReason;
      /** A first contact we cannot take (used or expired invitation): the refusal to deliver to its sender. */
      readonly reply?: RefusalReply;
    }
  | { readonly kind: 'not-for-me' };

/** The inviter's answer to a first contact on a used or expired invitation (handshake-refusal.ts). */
export interface RefusalReply {
  readonly invitationId: Uint8Array;
  readonly reason: HandshakeRefusalReason;
  readonly endpoints: readonly DeliveryEndpoint[];
  readonly envelope: Uint8Array;
}

export type BadlyFormedReason =
  | 'envelope-malformed'
  | 'payload-malformed'
  | 'plaintext-refused'
  | 'wrong-encryption-for-destination'
  | 'invitation-expired'
  | 'handshake-undecryptable'
  | 'handshake-malformed'
  | 'prekey-unknown'
  | 'prekey-already-used'
  | 'handshake-replayed'
  | 'header-undecryptable'
  | 'replay'
  | 'too-many-skipped'
  | 'body-undecryptable'
  | 'malformed'
  | 'padding'
  | 'frame-malformed'
  | 'hint-slot'
  | 'refusal-invalid';

const NO_CHANGES: StateChanges = { conversations: [], inboxes: [] };

/**
 * Hint blocks (one HMAC-SHA512 = four hints) one `tick` / `indexHints` slice computes at most,
 * by default: about 1.3 ms on a quiet VM (median slice of a rollover at 100,000 conversations;
 * 2.6 ms at 512, which under this VM's usual load of 5–10 came near 10 ms; the hour's total
 * was the same, 5.1–5.4 s, in an A/B of alternating hours). bench/run.ts prints the longest.
 */
export const TICK_HINT_BLOCKS = 256;
/** What an `indexHints` slice aims to stay under (the budget adapts to it; `tick` keeps its fixed one). */
const SLICE_TARGET_MS = 4;
/** A monotonic clock in ms where the platform has one (browsers, Node, Deno); without it the slices keep maxHintBlocks. */
const sliceClock: () => number = typeof performance !== 'undefined' ? () => performance.now() : () => 0;
const BLOCKS_PER_WINDOW = HINT_WINDOW / HINTS_PER_BLOCK;
/**
 * The warm-up (HintTable.warmUp): one throwaway window per slice until a window takes under
 * WARM_WINDOW_MS (~0.1 ms once compiled; 0.5-1 ms while not), MAX_WARM_UP_WINDOWS at most, so
 * a slow machine stops warming and indexes. Each `indexHints` run warms first: in a warm
 * process that is one window.
 */
const WARM_WINDOW_MS = 0.1;
const MAX_WARM_UP_WINDOWS = 400;
/**
 * What deriving one refusal hint (two HKDF-SHA256 and a hex string) costs in hint blocks: 38–60
 * µs against 12–20 µs per block of a window on node:crypto. Counted as one block, the first
 * slices after open (a first contact awaiting its reply each, 50,000 at 100,000 conversations)
 * did three times a slice's work.
 */
const REFUSAL_DERIVATION_BLOCKS = 4;
/**
 * Reading a refusal hint the state keeps (a field scan, a hex string, two Map entries): ~10 µs
 * at load 5, so one block. At a quarter block the 50,000 of a 100,000-conversation open took
 * 46 slices of up to 18 ms, against 779 slices, 11 collections over 10 ms, when derived.
 */
const REFUSAL_READ_BLOCKS = 1;
const SLOTS_PER_BLOCK = 4096;

/**
 * Refusals are answers to unauthenticated input, each costs a delivery: one per first contact
 * (acceptor identity) per REFUSAL_REPEAT_MS, and REFUSALS_PER_HOUR in all.
 */
const REFUSAL_REPEAT_MS = 10 * 60_000;
const REFUSALS_PER_HOUR = 32;

/** Our first contact awaits the peer's first frame (a refusal can still come): the ratchet has not received. */
function awaitsFirstReply(c: PrivateConversation): boolean {
  return c.initiator && c.ratchet.receivingChainKey === null;
}

/** Most conversations an envelope with an unknown hint is tried against (per route). */
export const MAX_ROUTE_CANDIDATES = 64;

export interface ClassifyContext {
  /** The delivery route the envelope arrived on, when the transport knows it. */
  readonly route?: string;
}

const NO_CONTEXT: ClassifyContext = Object.freeze({});

/** The route string of an endpoint: a route as is; a receiving-service address as lowercase hex. */
export function endpointRoute(e: DeliveryEndpoint): string | null {
  if (e.endpoint.case === 'route') return e.endpoint.value;
  if (e.endpoint.case === 'receivingService') return toHex(e.endpoint.value.address);
  return null;
}

export interface EngineSnapshot {
  readonly account: KeyPair;
  readonly inboxes: readonly Inbox[];
  readonly conversations: readonly PrivateConversation[];
  /**
   * More conversations, as serializeConversation wrote them: kept encoded (copied into one
   * buffer; the arrays given are not kept) and decoded when used, so opening over many idle
   * conversations decodes none. Only their header (id, receive hint key, whether they await a
   * first reply, own routes) is read at open.
   */
  readonly storedConversations?: readonly Uint8Array[];
}

/**
 * The conversations given encoded at open (`storedConversations`): their bytes packed in one
 * buffer (the store's row buffers are not kept) and, per record, whether it awaits a first reply
 * and whether it has own endpoints, in typed arrays. 100,000 idle conversations are then a few
 * arrays instead of 400,000 objects (a view, a key view, a wrapper and a row buffer each) that
 * every collection in the indexing slices after open traced (26–160 ms slices).
 */
class OpenedRecords {
  private readonly packed: PackedBytes;
  readonly awaitsFirstReply: Uint8Array;
  readonly hasOwnEndpoints: Uint8Array;

  constructor(records: readonly Uint8Array[]) {
    this.packed = new PackedBytes(records);
    this.awaitsFirstReply = new Uint8Array(records.length);
    this.hasOwnEndpoints = new Uint8Array(records.length);
  }

  get count(): number {
    return this.packed.count;
  }

  get bytes(): Uint8Array {
    return this.packed.bytes;
  }

  start(i: number): number {
    return this.packed.starts[i]!;
  }

  end(i: number): number {
    return this.packed.starts[i + 1]!;
  }

  record(i: number): Uint8Array {
    return this.packed.at(i);
  }

  windowAt(i: number, hour: number): HourWindow {
    return conversationWindowAt(this.packed.bytes, hour, this.start(i), this.end(i));
  }
}

/**
 * How the engine holds a conversation: decoded, or encoded as record `i` of the records given at
 * open (a number), or re-encoded after use (its own bytes).
 */
type Held = PrivateConversation | number | Uint8Array;

function isEncoded(held: Held): held is number | Uint8Array {
  return typeof held === 'number' || held instanceof Uint8Array;
}

/**
 * Encoded conversations decoded for use are cached (least recently used first out), and
 * conversations changed since open stay decoded up to this many; beyond it the least recently
 * changed is encoded again. So memory is bounded by ~DECODED_LIMIT decoded records whatever N.
 */
export const DECODED_LIMIT = 2048;

export interface EngineOptions {
  /**
   * Awaited between the indexing slices a `classify` runs while it waits for the table (and by
   * `indexHints`), so the host's event loop is never blocked for long. Default: a macrotask
   * (`setImmediate` where it exists, else `setTimeout(0)`).
   */
  readonly yieldToEventLoop?: () => Promise<void>;
  /**
   * Called when hint work becomes pending at an hour change inside `tick` (a host that wants
   * the hour indexed promptly starts `indexHints()` then; after `new Engine` it checks
   * `hintWorkPending()` itself).
   */
  readonly onHintWork?: () => void;
}

function macrotask(): Promise<void> {
  const immediate = (globalThis as { setImmediate?: (callback: () => void) => unknown }).setImmediate;
  return new Promise((resolve) => (immediate !== undefined ? immediate(resolve) : setTimeout(resolve, 0)));
}

export class Engine {
  readonly crypto: CryptoProvider;
  readonly account: KeyPair;
  private readonly inboxes = new Map<string, Inbox>(); // by invitation id (hex)
  private readonly inboxByHint = new Map<string, string>(); // static inbox hint → invitation id
  private readonly conversationsById = new Map<string, Held>();
  private readonly opened: OpenedRecords;
  /** Decodings of encoded entries, least recently used first. */
  private readonly decoded = new Map<string, PrivateConversation>();
  /** Ids whose entry is decoded because it changed since open, least recently changed first. */
  private readonly changed = new Set<string>();
  /** The last id added to `changed` (its most recent). */
  private lastChanged: string | null = null;
  private readonly hints: HintTable<string>; // conversation hints → conversation id
  /** Own receive route → the conversation id on it, or a set when several share it (routes are per relationship: mostly one, and no Set per conversation). */
  private readonly byRoute = new Map<string, string | Set<string>>();
  /** Refusal hint → id, for our first contacts that await the peer's first frame (and back). */
  private readonly refusalByHint = new Map<string, string>();
  private readonly refusalHintOf = new Map<string, string>();
  /** Opened conversations awaiting a first reply whose refusal hint is not derived yet (done in the first slices). */
  private readonly pendingRefusals: string[] = [];
  /** Refusals sent this hour: first contact (invitation ‖ acceptor identity) → when. */
  private readonly refusalsSent = new Map<string, number>();
  private refusalHour = -1;
  /** Invitation id → peer identities of the conversations it started (responder side); built on first need. */
  private startedBy: Map<string, Set<string>> | null = null;
  /**
   * The hint table listens for the hours currentHour - 1 … + 1. Each conversation is indexed up to
   * the hour `hints.coveredHour(id)`; a rollover indexes the new hours in slices (`tick`), one
   * pass over the conversations per hour, `passHour` being the hour under way (null: none).
   */
  private currentHour: number;
  private passHour: number | null = null;
  private passCursor = 0;
  /** Every conversation is indexed at least up to this hour. */
  private coveredByAll: number;
  private readonly yieldToEventLoop: () => Promise<void>;
  private readonly onHintWork: () => void;
  private hintWorkStopped = false;
  /** The running `indexHints()`, shared by concurrent callers. */
  private draining: Promise<void> | null = null;

  /**
   * Opens over stored records without computing any hint: each conversation gets its owner
   * slot, and the three hours around `nowMs` are left pending for `tick` / `indexHints`.
   */
  constructor(crypto: CryptoProvider, snapshot: EngineSnapshot, nowMs: number, options: EngineOptions = {}) {
    this.crypto = crypto;
    this.account = snapshot.account;
    this.hints = new HintTable(crypto);
    this.currentHour = hourOf(nowMs);
    this.yieldToEventLoop = options.yieldToEventLoop ?? macrotask;
    this.onHintWork = options.onHintWork ?? (() => undefined);
    for (const inbox of snapshot.inboxes) this.putInbox(inbox);
    const opened = (this.opened = new OpenedRecords(snapshot.storedConversations ?? []));
    this.hints.reserve(snapshot.conversations.length + opened.count);
    for (const c of snapshot.conversations) {
      this.conversationsById.set(c.id, c);
      this.indexRoutes(undefined, c.id, c.ownEndpoints);
      if (awaitsFirstReply(c)) this.pendingRefusals.push(c.id);
      this.hints.register(c.id, c.receiveHintKey);
    }
    for (let i = 0; i < opened.count; i++) {
      const header = conversationHeader(opened.bytes, opened.start(i), opened.end(i));
      this.conversationsById.set(header.id, i);
      if (header.awaitsFirstReply) {
        opened.awaitsFirstReply[i] = 1;
        this.pendingRefusals.push(header.id);
      }
      if (header.hasOwnEndpoints) {
        opened.hasOwnEndpoints[i] = 1;
        this.indexRoutes(undefined, header.id, conversationOwnEndpoints(opened.record(i)));
      }
      this.hints.register(header.id, opened.bytes.subarray(header.receiveHintKeyAt, header.receiveHintKeyAt + HINT_KEY_BYTES));
    }
    const pending = this.hints.ownerCount > 0;
    this.coveredByAll = pending ? this.currentHour - 2 : this.currentHour + 1;
    this.passHour = pending ? this.currentHour - 1 : null;
  }

  /** A new engine with a fresh account key (Ed25519). */
  static create(crypto: CryptoProvider, nowMs: number): Engine {
    return new Engine(crypto, { account: crypto.ed25519Generate(), inboxes: [], conversations: [] }, nowMs);
  }

  // ---- queries -------------------------------------------------------------------------

  /** The conversation's current state (a decoded copy of an encoded one: the same object while it stays cached). */
  conversation(id: string): PrivateConversation | undefined {
    const held = this.conversationsById.get(id);
    if (held === undefined || !isEncoded(held)) return held;
    const cached = this.decoded.get(id);
    if (cached !== undefined) {
      this.decoded.delete(id);
      this.decoded.set(id, cached);
      return cached;
    }
    const c = deserializeConversation(this.encodedBytes(held));
    this.decoded.set(id, c);
    if (this.decoded.size > DECODED_LIMIT) this.decoded.delete(this.decoded.keys().next().value!);
    return c;
  }

  /** Every conversation, decoded (encoded ones afresh, not cached: this is the slow path). */
  conversations(): PrivateConversation[] {
    return [...this.conversationsById].map(([id, held]) => (isEncoded(held) ? (this.decoded.get(id) ?? deserializeConversation(this.encodedBytes(held))) : held));
  }

  inbox(invitationId: Uint8Array): Inbox | undefined {
    return this.inboxes.get(toHex(invitationId));
  }

  allInboxes(): Inbox[] {
    return [...this.inboxes.values()];
  }

  /** The account's default inbox route: HASH(client address). */
  defaultInboxRoute(): string {
    return inboxRoute(this.crypto, this.account.publicKey);
  }

  /** Every route this engine expects envelopes on (inboxes and conversations). */
  receiveRoutes(): string[] {
    const routes = new Set<string>();
    for (const inbox of this.inboxes.values()) routes.add(inboxRoute(this.crypto, inbox.identity.publicKey));
    for (const held of this.conversationsById.values()) {
      // Records opened without own endpoints (most of them) are not read again.
      if (typeof held === 'number' && this.opened.hasOwnEndpoints[held] === 0) continue;
      for (const e of isEncoded(held) ? conversationOwnEndpoints(this.encodedBytes(held)) : held.ownEndpoints) if (e.endpoint.case === 'route') routes.add(e.endpoint.value);
    }
    return [...routes];
  }

  /** Number of entries in the hint lookup table (for memory measurements). */
  hintTableSize(): number {
    return this.hints.size;
  }

  // ---- invitations ---------------------------------------------------------------------

  createInvitation(options: Omit<CreateInvitationOptions, 'identity' | 'isDefaultInbox'>): { text: string; inbox: Inbox; changes: StateChanges } {
    const { inbox, text } = createInvitation(this.crypto, options);
    this.putInbox(inbox);
    return { text, inbox, changes: { conversations: [], inboxes: [inbox] } };
  }

  /**
   * The default inbox (Conversations spec): a reusable bundle signed by the account key,
   * reachable at HASH(client address). Created on first use.
   */
  defaultInbox(nowMs: number, presentation: Presentation): { text: string; inbox: Inbox; changes: StateChanges } {
    const existing = [...this.inboxes.values()].find((i) => i.isDefaultInbox);
    if (existing !== undefined) return { text: invitationText(existing.signedInvitation), inbox: existing, changes: NO_CHANGES };
    const { inbox, text } = createInvitation(this.crypto, {
      nowMs,
      reusable: true,
      ttlSeconds: 0,
      presentation,
      identity: this.account,
      isDefaultInbox: true,
    });
    this.putInbox(inbox);
    return { text, inbox, changes: { conversations: [], inboxes: [inbox] } };
  }

  parseInvitation(text: string, nowMs: number): ParsedInvitation {
    return parseInvitation(this.crypto, text, nowMs);
  }

  /**
   * Accept an invitation: PQXDH, then the first Double Ratchet message carrying our Particle
   * (presentation and endpoints), sealed with HPKE to the invitation's signed prekey.
   */
  async acceptInvitation(
    text: string,
    options: { nowMs: number; presentation: Presentation; endpoints?: readonly DeliveryEndpoint[] },
  ): Promise<{ conversation: PrivateConversation; outgoing: Outgoing; changes: StateChanges }> {
    const inv = parseInvitation(this.crypto, text, options.nowMs);
    const identity = this.crypto.ed25519Generate();
    if (options.endpoints !== undefined && options.endpoints.length > MAX_REFUSAL_ENDPOINTS) {
      throw new UmbraError('invalid-argument', `at most ${MAX_REFUSAL_ENDPOINTS} endpoints`);
    }
    const handshake = initiatorAgree(this.crypto, identity, inv);
    if (handshake === null) throw new UmbraError('invitation-malformed', 'the invitation keys are not usable');
    const ownEndpoints = options.endpoints ?? [
      create(DeliveryEndpointSchema, { endpoint: { case: 'route', value: inboxRoute(this.crypto, identity.publicKey) } }),
    ];
    const ratchet = initInitiator(this.crypto, handshake.keys.sharedSecret, inv.signedPrekey, handshake.keys.headerKeyA, handshake.keys.nextHeaderKeyB);
    const ourRefusalKey = refusalKey(this.crypto, identity.secretKey, inv.invitationId);
    let conversation = newConversation({
      keys: handshake.keys,
      initiator: true,
      identity,
      peerIdentity: inv.identityKey,
      invitationId: inv.invitationId,
      viaDefaultInbox: false,
      ratchet,
      peerEndpoints: inv.endpoints,
      ownEndpoints,
      peerPresentation: inv.presentation,
      nowMs: options.nowMs,
      refusalHint: refusalHintBytes(this.crypto, ourRefusalKey),
    });
    const frame = buildFrame(
      this.crypto,
      {
        case: 'particleUpdate',
        value: create(ParticleUpdateSchema, {
          endpoints: [...ownEndpoints],
          presentation: create(PresentationSchema, {
            name: options.presentation.name,
            avatar: options.presentation.avatar ?? new Uint8Array(0),
          }),
        }),
      },
      options.nowMs,
    );
    const encrypted = encryptFrame(this.crypto, conversation, frame, options.nowMs, { initial: true });
    conversation = encrypted.conversation;
    const initial = toBinary(
      InitialMessageSchema,
      create(InitialMessageSchema, {
        invitationId: inv.invitationId,
        initiatorIdentity: identity.publicKey,
        initiatorEphemeral: handshake.ephemeralPublicKey,
        signedPrekeyId: inv.signedPrekeyId,
        oneTimePrekeyId: inv.oneTimePrekeyId,
        kemPrekeyId: inv.kemPrekeyId,
        kemCiphertext: handshake.kemCiphertext,
        firstMessage: create(DoubleRatchetMessageSchema, encrypted.message),
        refusalKey: ourRefusalKey,
        refusalEndpoints: [...ownEndpoints],
      }),
    );
    const sealed = await this.crypto.hpkeSeal(inv.signedPrekey, LABEL_INITIAL_MESSAGE, inv.invitationId, initial);
    const payload = encodeEncryptedPayload({ case: 'inboxHandshake', value: create(InboxHandshakeSchema, sealed) });
    const envelope = encodeEnvelope(inboxHint(this.crypto, inv.identityKey), this.salt(), payload);
    this.putConversation(conversation);
    return {
      conversation,
      outgoing: { conversationId: conversation.id, endpoints: inv.endpoints, envelope, messageId: frame.messageId },
      changes: { conversations: [conversation], inboxes: [] },
    };
  }

  // ---- sending -------------------------------------------------------------------------

  /** Encrypt a frame and adopt the new state at once (see the class comment). */
  send(conversationId: string, body: FrameBody, nowMs: number, reliability?: ReliabilityFields): { outgoing: Outgoing; changes: StateChanges } {
    const sealed = this.seal(conversationId, body, nowMs, reliability);
    this.commit(sealed.changes);
    return sealed;
  }

  /**
   * Encrypt a frame on a copy: nothing changes until the caller commits `changes` (after
   * persisting them). `hintSlot` is the (hour, index) the envelope's hint stands for, so a
   * caller can tell whether re-sending the same bytes can still be recognised by the peer.
   */
  seal(
    conversationId: string,
    body: FrameBody,
    nowMs: number,
    reliability?: ReliabilityFields,
  ): { outgoing: Outgoing; changes: StateChanges; hintSlot: { hour: number; index: number } } {
    const current = this.conversation(conversationId);
    if (current === undefined) throw new UmbraError('unknown-conversation', `no conversation ${conversationId}`);
    const frame = buildFrame(this.crypto, body, nowMs, reliability);
    // The salt's bytes read in uint32 halves: no BigInt on the hot path.
    const salt = this.saltBytes();
    const saltHi = ((salt[0]! << 24) | (salt[1]! << 16) | (salt[2]! << 8) | salt[3]!) >>> 0;
    const saltLo = ((salt[4]! << 24) | (salt[5]! << 16) | (salt[6]! << 8) | salt[7]!) >>> 0;
    const { conversation, envelope } = encryptFrameToEnvelope(this.crypto, current, frame, nowMs, saltHi, saltLo);
    return {
      outgoing: { conversationId, endpoints: conversation.peerEndpoints, envelope, messageId: frame.messageId },
      changes: { conversations: [conversation], inboxes: [] },
      hintSlot: { hour: conversation.sendHint.hour, index: conversation.sendHint.nextIndex - 1 },
    };
  }

  // ---- receiving -----------------------------------------------------------------------

  /**
   * Deterministic three-way decoding. Never throws; never changes the engine's state (it may
   * advance the derived hint indexing: while that is pending, an envelope whose hint is not in
   * the table yet waits here, in slices, until it is found or the table is complete, so our
   * envelope is never NotForMe for want of an index).
   *
   * `context.route` is the delivery route the envelope came from, when the transport knows it.
   * It matters only when the hint is not in the table: an envelope that waited in a mailbox or
   * a receiving service while we were offline carries a hint of an hour our windows have left.
   * Such an envelope is tried against the (at most MAX_ROUTE_CANDIDATES) conversations that
   * receive on that route — routes are per relationship, so usually exactly one.
   */
  classify(bytes: Uint8Array, nowMs: number, context: ClassifyContext = NO_CONTEXT): Promise<ClassifyResult> {
    let result: ClassifyResult | Promise<ClassifyResult>;
    try {
      result = this.classifyUnsafe(bytes, nowMs, context);
    } catch {
      return Promise.resolve(malformed());
    }
    // Most envelopes are classified synchronously (no async frame, no awaits); handshakes and
    // an envelope that waits for the table settle later.
    return result instanceof Promise ? result.catch(malformed) : Promise.resolve(result);
  }

  /** Adopt the changes of a Readable result (after persisting them). */
  commit(changes: StateChanges): void {
    for (const inbox of changes.inboxes) this.putInbox(inbox);
    for (const c of changes.conversations) this.putConversation(c);
  }

  /** classify + commit, for callers without a store (tests, simulations). */
  async receive(bytes: Uint8Array, nowMs: number, context: ClassifyContext = {}): Promise<ClassifyResult> {
    const result = await this.classify(bytes, nowMs, context);
    if (result.kind === 'readable') this.commit(result.changes);
    return result;
  }

  /**
   * Follow the clock: at a new hour the table forgets the hour that left every window (at once)
   * and indexes the hour that entered (in slices of at most `maxHintBlocks` HMAC blocks per
   * call), so no call takes long whatever the number of conversations. Conversation records do
   * not change (an hour without a window in a record listens afresh), so there is nothing to
   * persist: the result is always empty. Call it often: every few seconds while
   * `hintWorkPending()` (the work of one hour is 8 blocks per conversation), and before
   * classifying after a long sleep.
   */
  tick(nowMs: number, options: { maxHintBlocks?: number } = {}): StateChanges {
    const hour = hourOf(nowMs);
    if (hour !== this.currentHour) this.rollOver(hour);
    // While `indexHints` runs, its slices do the work, sized to the time they take; a fixed
    // slice here on top (the client ticks every few seconds) ran 15-30 ms while a fresh hour
    // table faulted its pages in.
    if (this.draining === null) this.indexPendingHours(options.maxHintBlocks ?? TICK_HINT_BLOCKS);
    return NO_CHANGES;
  }

  /** Whether an hour is still being indexed (some conversation's hints are not in the table yet). */
  hintWorkPending(): boolean {
    return this.passHour !== null;
  }

  /**
   * Stop the background indexing (`indexHints`) after its current slice: for an engine being
   * replaced or closed. A classify still indexes what it needs itself.
   */
  stopHintWork(): void {
    this.hintWorkStopped = true;
  }

  /**
   * Finish the pending indexing in slices of `maxHintBlocks`, each after an awaited yield (the
   * engine's `yieldToEventLoop` unless the caller gives its own, e.g. one that does not keep a
   * process alive; the hour stays the one of the last `tick`). Concurrent callers share one run.
   */
  indexHints(options: { maxHintBlocks?: number; yieldToEventLoop?: () => Promise<void> } = {}): Promise<void> {
    if (this.draining !== null) return this.draining;
    if (this.passHour === null || this.hintWorkStopped) return Promise.resolve();
    const maxHintBlocks = options.maxHintBlocks ?? TICK_HINT_BLOCKS;
    const pause = options.yieldToEventLoop ?? this.yieldToEventLoop;
    const run = async (): Promise<void> => {
      try {
        // Yield first: a caller inside `tick` (onHintWork) has just run a slice of its own.
        // The work per slice follows the time a slice takes: it starts at one block, doubles
        // while slices stay under SLICE_TARGET_MS and halves after one that did not. The first
        // slices after open run code the JIT has not compiled yet (a slice of 256 blocks took
        // 60-135 ms then on a quiet VM, against ~2 ms once compiled), and a new hour's table
        // faults its pages in as the pass fills it. A window cannot be split, so the code is
        // first warmed a throwaway window at a time (HintTable.warmUp).
        let budget = 1;
        let warmed = this.hints.ownerCount === 0;
        let warmUpWindows = 0;
        let refusalPhase = true;
        while (this.passHour !== null && !this.hintWorkStopped) {
          await pause();
          if (this.hintWorkStopped) break;
          const started = sliceClock();
          if (!warmed) {
            // A real window's shape (its record's, read only), so the record reading warms too.
            const held = this.conversationsById.get(this.hints.ownerAt(0)!);
            this.hints.warmUp(held === undefined ? freshWindow(this.passHour) : this.windowOf(held, this.passHour));
            warmed = ++warmUpWindows >= MAX_WARM_UP_WINDOWS || sliceClock() - started < WARM_WINDOW_MS;
            continue;
          }
          // Reading kept refusal hints is cheaper per block than a window (whose table pages may
          // still fault in): the hours start again from one block.
          if (refusalPhase && this.pendingRefusals.length === 0) {
            refusalPhase = false;
            budget = 1;
          }
          if (this.indexPendingHours(budget) === 0) continue;
          budget = sliceClock() - started > SLICE_TARGET_MS ? Math.max(1, budget >> 1) : Math.min(maxHintBlocks, budget * 2);
        }
      } finally {
        this.draining = null;
      }
    };
    this.draining = run();
    return this.draining;
  }

  private rollOver(hour: number): void {
    if (hour < this.currentHour) {
      // The clock went back: the table's hours are ahead of every window. Index afresh.
      this.hints.dropHoursBefore(Infinity);
      for (let slot = 0; slot < this.hints.ownerCount; slot++) this.hints.setCoveredHour(this.hints.ownerAt(slot)!, -Infinity);
      this.coveredByAll = -Infinity;
    }
    this.currentHour = hour;
    this.hints.dropHoursBefore(hour - 1);
    const first = Math.max(this.coveredByAll + 1, hour - 1);
    this.passHour = first <= hour + 1 ? first : null;
    this.passCursor = 0;
    if (this.passHour !== null) this.onHintWork();
  }

  /** Index every pending hour of one conversation now (24 blocks at most). */
  private indexNow(id: string): void {
    this.indexRefusalOf(id);
    const from = Math.max(this.hints.coveredHour(id) + 1, this.currentHour - 1);
    if (from > this.currentHour + 1) return;
    const held = this.conversationsById.get(id)!;
    for (let h = from; h <= this.currentHour + 1; h++) {
      this.hints.addOwnersWindow(id, this.windowOf(held, h));
      this.hints.setCoveredHour(id, h);
    }
  }

  /**
   * Index the pending hours, one pass over the conversations per hour, oldest hour first: work
   * worth about `maxBlocks` MAC blocks (the last item may overshoot: a window is 8-17 blocks).
   * Returns the work done, in blocks.
   */
  private indexPendingHours(maxBlocks: number): number {
    let blocks = 0;
    // First the refusal hints: the hours' pass cannot end before them.
    while (this.pendingRefusals.length > 0 && blocks < maxBlocks) {
      blocks += Math.max(REFUSAL_READ_BLOCKS, this.indexRefusalOf(this.pendingRefusals.pop()!));
    }
    // A slice does one kind of work: windows cost more per block than reading kept hints (a
    // budget grown on those ran 10 ms of windows at the end of the refusal phase).
    if (blocks > 0) return blocks;
    // A conversation already indexed costs a check, not a MAC: count 64 of them as one block.
    let checks = 0;
    while (this.passHour !== null && blocks + checks / 64 < maxBlocks) {
      if (this.hints.spareDirty) {
        // The dropped hour's table is emptied first, so the new hour reuses it (zeroing
        // SLOTS_PER_BLOCK slots costs about one MAC).
        blocks += this.hints.clearSpare(Math.ceil((maxBlocks - blocks) * SLOTS_PER_BLOCK)) / SLOTS_PER_BLOCK;
        continue;
      }
      const hour = this.passHour;
      if (this.passCursor >= this.hints.ownerCount) {
        this.coveredByAll = hour;
        this.passHour = hour + 1 <= this.currentHour + 1 ? hour + 1 : null;
        this.passCursor = 0;
        continue;
      }
      const id = this.hints.ownerAt(this.passCursor++)!;
      checks++;
      if (this.hints.coveredHour(id) >= hour) continue;
      this.hints.addOwnersWindow(id, this.windowOf(this.conversationsById.get(id)!, hour));
      this.hints.setCoveredHour(id, hour);
      blocks += BLOCKS_PER_WINDOW;
    }
    return blocks + checks / 64;
  }

  private classifyUnsafe(input: Uint8Array, nowMs: number, context: ClassifyContext): ClassifyResult | Promise<ClassifyResult> {
    // A subclass (Node's Buffer) has a different slice(); work on plain bytes from here on.
    const bytes = input.constructor === Uint8Array ? input : new Uint8Array(input);
    const envelope = decodeEnvelopeRouting(bytes);
    if (envelope === null) return { kind: 'badly-formed', reason: 'envelope-malformed' };
    const hint = envelope.hint;

    const inboxId = this.inboxByHint.get(hint);
    if (inboxId !== undefined) return this.classifyHandshake(this.inboxes.get(inboxId)!, envelope.payload, nowMs);
    const refusedId = this.refusalByHint.get(hint);
    if (refusedId !== undefined) return this.classifyRefusal(this.conversation(refusedId)!, hint, envelope.payload);

    if (this.passHour === null) return this.classifyConversational(hint, envelope.payload, nowMs, context.route);
    return this.classifyWhileIndexing(hint, envelope, nowMs, context);
  }

  private async classifyWhileIndexing(hint: string, envelope: EnvelopeRouting, nowMs: number, context: ClassifyContext): Promise<ClassifyResult> {
    // (While indexing is pending, refusal hints may still be underived: the loop below looks again.)
    // The table is incomplete: NotForMe may only mean "not in the table yet". The conversations on
    // the envelope's route (usually one) are indexed at once; otherwise the envelope waits while
    // the rest is indexed in slices, and is classified again whenever its hint gains a candidate
    // (a 31-bit hit of another conversation is not an answer) and once the table is complete.
    for (const id of this.conversationsOnRoute(context.route)) this.indexNow(id);
    let tried = -1;
    for (;;) {
      const refused = this.refusalByHint.get(hint);
      if (refused !== undefined) return this.classifyRefusal(this.conversation(refused)!, hint, envelope.payload);
      const complete = this.passHour === null;
      const found = this.hints.candidates(hint).length;
      if (complete || found !== tried) {
        const result = this.classifyConversational(hint, envelope.payload, nowMs, context.route);
        if (result.kind !== 'not-for-me' || complete) return result;
        tried = found;
      }
      this.indexPendingHours(TICK_HINT_BLOCKS);
      if (this.passHour !== null) await this.yieldToEventLoop();
    }
  }

  /** Steps (3)–(5) of the decision procedure: the hint table, then the route, for a conversation's envelope. */
  private classifyConversational(hint: string, payloadBytes: Uint8Array, nowMs: number, route: string | undefined): ClassifyResult {
    // Hint-table hits are unconfirmed (31-bit key): the ratchet binds the full hint into its
    // associated data, so a wrong or re-labelled hint cannot decrypt. Only when decryption
    // fails is the full hint re-derived, to tell our broken envelope (BadlyFormed) from a
    // stranger's whose hint merely shares 31 bits with one of ours (NotForMe).
    // The hint's table entries, or (none) the conversations on the envelope's route.
    const hits = this.hints.candidates(hint);
    const routed = hits.length > 0 ? null : this.conversationsOnRoute(route);
    if (routed !== null && routed.length === 0) return { kind: 'not-for-me' };
    const payload = decodeEncryptedPayload(payloadBytes);
    if (payload === null) return this.confirmsAny(hint, hits) ? { kind: 'badly-formed', reason: 'payload-malformed' } : { kind: 'not-for-me' };
    if (payload.encryption.case === 'plaintext') {
      return hits.length === 0 || this.confirmsAny(hint, hits) ? { kind: 'badly-formed', reason: 'plaintext-refused' } : { kind: 'not-for-me' };
    }
    if (payload.encryption.case !== 'doubleRatchet') {
      return this.confirmsAny(hint, hits) ? { kind: 'badly-formed', reason: 'wrong-encryption-for-destination' } : { kind: 'not-for-me' };
    }
    const message = payload.encryption.value;
    let failure: BadlyFormedReason | null = null;
    if (routed === null) {
      for (const hit of hits) {
        const conversation = this.conversation(hit.owner)!;
        const result = decryptFrame(this.crypto, conversation, message, hint, hit.slot, nowMs);
        if (result.ok) return readable(conversation.id, result.frame, result.conversation);
        // Ours only if the full hint is this slot's.
        if (this.hints.confirms(hint, hit)) failure = result.reason;
      }
    } else {
      for (const id of routed) {
        const result = decryptFrame(this.crypto, this.conversation(id)!, message, hint, null, nowMs);
        if (result.ok) return readable(id, result.frame, result.conversation);
        // Without a hint match, ours only if the header is authentic.
        if (result.reason !== 'header-undecryptable') failure = result.reason;
      }
    }
    return failure === null ? { kind: 'not-for-me' } : { kind: 'badly-formed', reason: failure };
  }

  /** Is the hint exactly one of these entries' (the MAC recomputed)? */
  private confirmsAny(hint: string, hits: readonly { owner: string; slot: HintSlot }[]): boolean {
    for (const hit of hits) if (this.hints.confirms(hint, hit)) return true;
    return false;
  }

  /**
   * Conversations that receive on `route` (newest first, at most MAX_ROUTE_CANDIDATES). A route
   * names a `route` endpoint, or a receiving-service endpoint by the lowercase hex of its address.
   */
  private conversationsOnRoute(route: string | undefined): string[] {
    const on = route === undefined || route === '' ? undefined : this.byRoute.get(route);
    if (on === undefined) return [];
    const ids = typeof on === 'string' ? [on] : on;
    const out = [...ids].map((id) => {
      const held = this.conversationsById.get(id)!;
      return { id, createdAt: isEncoded(held) ? conversationOrigin(this.encodedBytes(held)).createdAt : held.createdAt };
    });
    return out
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, MAX_ROUTE_CANDIDATES)
      .map((c) => c.id);
  }

  private indexRoutes(previous: readonly DeliveryEndpoint[] | undefined, id: string, next: readonly DeliveryEndpoint[]): void {
    if (previous === next) return;
    for (const e of previous ?? []) {
      const route = endpointRoute(e);
      if (route === null) continue;
      const on = this.byRoute.get(route);
      if (on === id) this.byRoute.delete(route);
      else if (typeof on !== 'string' && on !== undefined) on.delete(id);
    }
    for (const e of next) {
      const route = endpointRoute(e);
      if (route === null) continue;
      const on = this.byRoute.get(route);
      if (on === undefined || on === id) this.byRoute.set(route, id);
      else if (typeof on === 'string') this.byRoute.set(route, new Set([on, id]));
      else on.add(id);
    }
  }

  private async classifyHandshake(inbox: Inbox, payloadBytes: Uint8Array, nowMs: number): Promise<ClassifyResult> {
    const payload = decodeEncryptedPayload(payloadBytes);
    if (payload === null) return { kind: 'badly-formed', reason: 'payload-malformed' };
    // The inbox accepts no plaintext frame, and nothing but a handshake.
    if (payload.encryption.case === 'plaintext') return { kind: 'badly-formed', reason: 'plaintext-refused' };
    if (payload.encryption.case !== 'inboxHandshake') return { kind: 'badly-formed', reason: 'wrong-encryption-for-destination' };
    const { enc, ciphertext } = payload.encryption.value;
    if (enc.length !== 32) return { kind: 'badly-formed', reason: 'handshake-malformed' };
    const opened = await this.crypto.hpkeOpen(inbox.signedPrekey.secretKey, enc, LABEL_INITIAL_MESSAGE, inbox.invitationId, ciphertext);
    if (opened === null) return { kind: 'badly-formed', reason: 'handshake-undecryptable' };
    const initial = decodeInitialMessage(opened);
    if (
      initial === null ||
      initial.firstMessage === undefined ||
      initial.initiatorIdentity.length !== 32 ||
      initial.initiatorEphemeral.length !== 32 ||
      initial.kemCiphertext.length !== 1088 ||
      toHex(initial.invitationId) !== toHex(inbox.invitationId)
    ) {
      return { kind: 'badly-formed', reason: 'handshake-malformed' };
    }
    if (initial.signedPrekeyId !== inbox.signedPrekeyId || initial.kemPrekeyId !== inbox.kemPrekeyId) {
      return { kind: 'badly-formed', reason: 'prekey-unknown' };
    }
    // Opened first (the signed prekey is still ours), so the sender can be told why.
    if (inbox.expiresAt !== 0 && inbox.expiresAt * 1000 <= nowMs) return this.refuse(inbox, initial, 'invitation-expired', 'invitation-expired', nowMs);
    let oneTimePrekey: KeyPair | null = null;
    if (initial.oneTimePrekeyId !== 0) {
      if (initial.oneTimePrekeyId !== inbox.oneTimePrekeyId) return { kind: 'badly-formed', reason: 'prekey-unknown' };
      if (inbox.oneTimePrekeyConsumed || inbox.oneTimePrekey === null) return this.refuse(inbox, initial, 'prekey-already-used', 'invitation-used', nowMs);
      oneTimePrekey = inbox.oneTimePrekey;
    } else if (inbox.oneTimePrekeyId !== 0) {
      // A single-use invitation must be answered with its one-time prekey.
      return { kind: 'badly-formed', reason: 'prekey-unknown' };
    }
    const keys = responderAgree(
      this.crypto,
      { identity: inbox.identity, signedPrekey: inbox.signedPrekey, oneTimePrekey, kemPrekey: inbox.kemPrekey },
      inbox.invitationId,
      initial.initiatorIdentity,
      initial.initiatorEphemeral,
      initial.kemCiphertext,
    );
    if (keys === null) return { kind: 'badly-formed', reason: 'handshake-malformed' };
    if (this.conversationsById.has(toHex(keys.conversationId))) return { kind: 'badly-formed', reason: 'handshake-replayed' };

    const ratchet = initResponder(keys.sharedSecret, inbox.signedPrekey, keys.headerKeyA, keys.nextHeaderKeyB);
    const ownEndpoints = [create(DeliveryEndpointSchema, { endpoint: { case: 'route', value: inboxRoute(this.crypto, inbox.identity.publicKey) } })];
    const fresh = newConversation({
      keys,
      initiator: false,
      identity: inbox.identity,
      peerIdentity: initial.initiatorIdentity,
      invitationId: inbox.invitationId,
      viaDefaultInbox: inbox.isDefaultInbox,
      ratchet,
      peerEndpoints: [],
      ownEndpoints,
      peerPresentation: { name: '' },
      nowMs,
    });
    const result = decryptFrame(this.crypto, fresh, initial.firstMessage, '', null, nowMs);
    if (!result.ok) return { kind: 'badly-formed', reason: result.reason };
    if (result.frame.body.case !== 'particleUpdate' || result.conversation.peerEndpoints.length === 0) {
      return { kind: 'badly-formed', reason: 'handshake-malformed' };
    }
    const consumed: Inbox[] = oneTimePrekey === null ? [] : [{ ...inbox, oneTimePrekey: null, oneTimePrekeyConsumed: true }];
    return {
      kind: 'readable',
      conversationId: result.conversation.id,
      frames: [result.frame],
      started: { invitationId: inbox.invitationId, viaDefaultInbox: inbox.isDefaultInbox, peerIdentity: initial.initiatorIdentity },
      changes: { conversations: [result.conversation], inboxes: consumed },
    };
  }

  /**
   * A first contact we cannot take: BadlyFormed, with a signed refusal to deliver to the sender if
   * it asked for one (refusal key and endpoints) and the budget allows (never more than one per
   * first contact per REFUSAL_REPEAT_MS, REFUSALS_PER_HOUR in all: the input is unauthenticated).
   */
  private refuse(inbox: Inbox, initial: InitialMessage, badly: BadlyFormedReason, reason: HandshakeRefusalReason, nowMs: number): ClassifyResult {
    // Our accepted contact's own handshake, again (it is re-sent until our first frame arrives): no refusal.
    if (this.startedFrom(inbox.invitationId).has(toHex(initial.initiatorIdentity))) return { kind: 'badly-formed', reason: 'handshake-replayed' };
    const result: ClassifyResult = { kind: 'badly-formed', reason: badly };
    const endpoints = initial.refusalEndpoints;
    if (initial.refusalKey.length !== REFUSAL_KEY_BYTES || endpoints.length === 0 || endpoints.length > MAX_REFUSAL_ENDPOINTS) return result;
    if (endpoints.some((e) => e.endpoint.case === undefined)) return result;
    const hour = hourOf(nowMs);
    if (hour !== this.refusalHour) {
      this.refusalHour = hour;
      this.refusalsSent.clear();
    }
    const contact = toHex(inbox.invitationId) + toHex(initial.initiatorIdentity);
    const last = this.refusalsSent.get(contact);
    if ((last !== undefined && nowMs - last < REFUSAL_REPEAT_MS) || (last === undefined && this.refusalsSent.size >= REFUSALS_PER_HOUR)) return result;
    this.refusalsSent.set(contact, nowMs);
    const envelope = sealRefusal(this.crypto, {
      key: initial.refusalKey,
      invitationId: inbox.invitationId,
      initiatorIdentity: initial.initiatorIdentity,
      inviterIdentity: inbox.identity,
      reason,
      refusedAt: nowMs,
      salt: this.salt(),
    });
    return { ...result, reply: { invitationId: inbox.invitationId, reason, endpoints, envelope } };
  }

  /** An envelope under the refusal hint of our first contact `c`: the inviter's signed refusal, or BadlyFormed. */
  private classifyRefusal(c: PrivateConversation, hint: string, payloadBytes: Uint8Array): ClassifyResult {
    const payload = decodeEncryptedPayload(payloadBytes);
    if (payload === null) return { kind: 'badly-formed', reason: 'payload-malformed' };
    if (payload.encryption.case !== 'handshakeRefusal') return { kind: 'badly-formed', reason: 'wrong-encryption-for-destination' };
    const refused = openRefusal(this.crypto, payload.encryption.value, hint, {
      key: refusalKey(this.crypto, c.identity.secretKey, c.invitationId),
      invitationId: c.invitationId,
      initiatorIdentity: c.identity.publicKey,
      inviterIdentityKey: c.peerIdentity,
    });
    if (refused === null) return { kind: 'badly-formed', reason: 'refusal-invalid' };
    return { kind: 'readable', conversationId: c.id, frames: [], started: null, changes: NO_CHANGES, refused };
  }

  // ---- internal bookkeeping ------------------------------------------------------------

  private startedFrom(invitationId: Uint8Array): ReadonlySet<string> {
    if (this.startedBy === null) {
      this.startedBy = new Map();
      for (const held of this.conversationsById.values()) {
        if (!isEncoded(held)) this.noteStarted(held);
        else {
          const origin = conversationOrigin(this.encodedBytes(held));
          if (!origin.initiator) this.noteStartedBy(origin.invitationId, origin.peerIdentity);
        }
      }
    }
    return this.startedBy.get(toHex(invitationId)) ?? new Set();
  }

  private noteStarted(c: PrivateConversation): void {
    if (!c.initiator) this.noteStartedBy(c.invitationId, c.peerIdentity);
  }

  private noteStartedBy(invitationId: Uint8Array, peerIdentity: Uint8Array): void {
    if (this.startedBy === null) return;
    const key = toHex(invitationId);
    const peers = this.startedBy.get(key) ?? new Set<string>();
    peers.add(toHex(peerIdentity));
    this.startedBy.set(key, peers);
  }

  /**
   * indexRefusal for a held conversation: an encoded one is read only if it awaits a first reply
   * (it cannot have changed). Returns what it cost in hint blocks (a slice's budget).
   */
  private indexRefusalOf(id: string): number {
    const held = this.conversationsById.get(id);
    if (held === undefined) return 0;
    if (!isEncoded(held)) return this.indexRefusal(held);
    if (this.refusalHintOf.has(id)) return 0;
    const bytes = this.encodedBytes(held);
    const awaits = typeof held === 'number' ? this.opened.awaitsFirstReply[held] === 1 : conversationHeader(bytes).awaitsFirstReply;
    if (!awaits) return 0;
    const { refusalHint: kept, identitySecret, invitationId } = conversationRefusalInputs(bytes);
    return this.listenForRefusal(id, kept, identitySecret, invitationId);
  }

  /** Index the refusal hint: the one the state keeps, or derived (a state stored before it was kept). Returns the cost in hint blocks. */
  private listenForRefusal(id: string, kept: Uint8Array, identitySecret: Uint8Array, invitationId: Uint8Array): number {
    const derive = kept.length === 0;
    const hint = derive ? refusalHint(this.crypto, refusalKey(this.crypto, identitySecret, invitationId)) : toHex(kept);
    this.refusalByHint.set(hint, id);
    this.refusalHintOf.set(id, hint);
    return derive ? REFUSAL_DERIVATION_BLOCKS : REFUSAL_READ_BLOCKS;
  }

  /** Listen for the refusal of our first contact while it awaits the peer's first frame; stop after. Returns the cost in hint blocks. */
  private indexRefusal(c: PrivateConversation): number {
    const known = this.refusalHintOf.get(c.id);
    if (awaitsFirstReply(c)) {
      if (known === undefined) return this.listenForRefusal(c.id, c.refusalHint, c.identity.secretKey, c.invitationId);
    } else if (known !== undefined) {
      this.refusalByHint.delete(known);
      this.refusalHintOf.delete(c.id);
    }
    return 0;
  }

  /**
   * A salt's 8 big-endian bytes: 63 random bits with the top bit set, so its varint is always
   * 10 bytes and the envelope length depends only on the padding bucket.
   */
  private saltBytes(): Uint8Array {
    const b = this.crypto.randomBytes(8);
    b[0] = b[0]! | 0x80;
    return b;
  }

  private salt(): bigint {
    const b = this.saltBytes();
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, false);
  }

  private putInbox(inbox: Inbox): void {
    const id = toHex(inbox.invitationId);
    this.inboxes.set(id, inbox);
    this.inboxByHint.set(inboxHint(this.crypto, inbox.identity.publicKey), id);
  }

  private putConversation(next: PrivateConversation): void {
    const held = this.conversationsById.get(next.id);
    // An encoded previous state compares by value below (its decoded copy, if cached, shares the caller's arrays).
    const previous = held !== undefined && isEncoded(held) ? (this.decoded.get(next.id) ?? deserializeConversation(this.encodedBytes(held))) : held;
    this.conversationsById.set(next.id, next);
    if (this.decoded.size > 0) this.decoded.delete(next.id);
    // A burst on one conversation moves nothing: it is the most recently changed already (a
    // Set delete and add per message leave holes its table compacts by reallocating).
    if (this.lastChanged !== next.id) {
      this.changed.delete(next.id);
      this.changed.add(next.id);
      this.lastChanged = next.id;
      if (this.changed.size > DECODED_LIMIT) this.encodeLeastRecentlyChanged();
    }
    this.indexRoutes(previous?.ownEndpoints, next.id, next.ownEndpoints);
    this.indexRefusal(next);
    if (previous === undefined) this.noteStarted(next);
    const hour = this.currentHour;
    if (previous === undefined) {
      for (let h = hour - 1; h <= hour + 1; h++) this.hints.addWindow(next.id, next.receiveHintKey, windowAt(next.receiveHints, h));
      this.hints.setCoveredHour(next.id, hour + 1);
      return;
    }
    if (previous.receiveHints === next.receiveHints) return;
    // Only the hours this conversation is indexed for (a rollover may not have reached it yet).
    const last = Math.min(hour + 1, this.hints.coveredHour(next.id));
    for (let h = hour - 1; h <= last; h++) {
      const before = windowAt(previous.receiveHints, h);
      const after = windowAt(next.receiveHints, h);
      // Usually one hour changed (the envelope's).
      if (before !== after) this.hints.updateWindow(next.id, previous.receiveHintKey, next.receiveHintKey, before, after);
    }
  }

  /** Keep memory bounded: the least recently changed conversation goes back to its encoded form. */
  private encodeLeastRecentlyChanged(): void {
    const id = this.changed.values().next().value!;
    this.changed.delete(id);
    const c = this.conversationsById.get(id);
    if (c === undefined || isEncoded(c)) return;
    this.conversationsById.set(id, serializeConversation(c));
  }

  private encodedBytes(held: number | Uint8Array): Uint8Array {
    return typeof held === 'number' ? this.opened.record(held) : held;
  }

  /** The receive window of `hour`, read in place from an encoded conversation. */
  private windowOf(held: Held, hour: number): HourWindow {
    if (typeof held === 'number') return this.opened.windowAt(held, hour);
    return held instanceof Uint8Array ? conversationWindowAt(held, hour) : windowAt(held.receiveHints, hour);
  }
}

/** What classify answers when a bug throws: unreachable by design (every decoder returns null), and a bug must not crash a receiver. */
function malformed(): ClassifyResult {
  return { kind: 'badly-formed', reason: 'malformed' };
}

/** A conversation's envelope, read. */
function readable(conversationId: string, frame: PrivateV1Frame, conversation: PrivateConversation): ClassifyResult {
  return { kind: 'readable', conversationId, frames: [frame], started: null, changes: { conversations: [conversation], inboxes: [] } };
}
