/**
 * private/v1: the 1:1 conversation type (Status 1:1 + Communicator relationship).
 *   topics      the peer's endpoints (from its invitation or its Particle updates)
 *   encryption  Double Ratchet with header encryption, keyed by PQXDH (pqxdh.ts)
 *   frames      PrivateV1Frame (content, ack, Particle update, session reset, retransmit request)
 *   membership  exactly two relationship identities
 * This module holds the per-conversation state transitions; engine.ts routes envelopes to them.
 */
import type { CryptoProvider, KeyPair } from './crypto/provider.ts';
import { toHex, utf8 } from './bytes.ts';
import { UmbraError } from './errors.ts';
import {
  markSeen,
  nextSendHint,
  type HintReceiveState,
  type HintSenderState,
  type HintSlot,
} from './hints.ts';
import { bucketFor, padTail, unpad, MAX_PADDED_PLAINTEXT, PADDING_BUCKETS } from './padding.ts';
import {
  ENCRYPTED_HEADER_BYTES,
  NONCE_BYTES,
  TAG_BYTES,
  canSend,
  ratchetDecrypt,
  ratchetEncrypt,
  ratchetEncryptInto,
  type RatchetCiphertext,
  type RatchetFailure,
  type RatchetState,
} from './ratchet.ts';
import type { Presentation } from './invitation.ts';
import type { SessionKeys } from './pqxdh.ts';
import {
  PrivateV1FrameSchema,
  MESSAGE_ID_BYTES,
  MAX_CAUSAL_HISTORY,
  decodePrivateFrame,
  encodeInto,
  ratchetEnvelopeFraming,
  ratchetEnvelopeHeaderAt,
  type DeliveryEndpoint,
  type PrivateV1Frame,
} from './wire/codec.ts';

export const PRIVATE_V1 = 'private/v1';

/** A new conversation has seen no envelope: every hour listens afresh (hints.ts windowAt). */
const NO_WINDOWS: HintReceiveState = Object.freeze({ hours: Object.freeze([]) as readonly never[] });

export interface PrivateConversation {
  readonly type: typeof PRIVATE_V1;
  /** Lowercase hex of the 16-byte id both sides derive from the handshake; never sent. */
  readonly id: string;
  readonly initiator: boolean;
  readonly identity: KeyPair; // our relationship identity (Ed25519)
  readonly peerIdentity: Uint8Array;
  readonly invitationId: Uint8Array;
  readonly viaDefaultInbox: boolean;
  readonly associatedData: Uint8Array;
  readonly ratchet: RatchetState;
  readonly sendHintKey: Uint8Array;
  readonly receiveHintKey: Uint8Array;
  readonly sendHint: HintSenderState;
  readonly receiveHints: HintReceiveState;
  readonly peerEndpoints: readonly DeliveryEndpoint[];
  readonly ownEndpoints: readonly DeliveryEndpoint[];
  readonly peerPresentation: Presentation;
  readonly createdAt: number;
  /**
   * Ours as initiator: the 16-byte hint the inviter's refusal of our first contact would carry
   * (handshake-refusal.ts), derived once when the conversation is made and kept in its state, so
   * that opening over many first contacts awaiting a reply derives none. Empty for the
   * responder, and for states stored before it was kept (the engine derives it then).
   */
  readonly refusalHint: Uint8Array;
}

export type FrameBody = PrivateV1Frame['body'];

/**
 * `c` with a new ratchet state and hint windows, copied field by field: a conversation is
 * copied on every message, and V8's object spread of this shape costs several times this
 * literal (Node 20). test/engine.test.ts checks that a copy keeps every field.
 */
function withRatchet(c: PrivateConversation, ratchet: RatchetState, sendHint: HintSenderState, receiveHints: HintReceiveState): PrivateConversation {
  return {
    type: c.type,
    id: c.id,
    initiator: c.initiator,
    identity: c.identity,
    peerIdentity: c.peerIdentity,
    invitationId: c.invitationId,
    viaDefaultInbox: c.viaDefaultInbox,
    associatedData: c.associatedData,
    ratchet,
    sendHintKey: c.sendHintKey,
    receiveHintKey: c.receiveHintKey,
    sendHint,
    receiveHints,
    peerEndpoints: c.peerEndpoints,
    ownEndpoints: c.ownEndpoints,
    peerPresentation: c.peerPresentation,
    createdAt: c.createdAt,
    refusalHint: c.refusalHint,
  };
}

export interface ReliabilityFields {
  /** 16 bytes; default fresh random. A re-encrypted retransmission keeps its original id. */
  readonly messageId?: Uint8Array;
  readonly lamport?: bigint;
  readonly causalHistory?: readonly Uint8Array[];
}

export function newConversation(params: {
  keys: SessionKeys;
  initiator: boolean;
  identity: KeyPair;
  peerIdentity: Uint8Array;
  invitationId: Uint8Array;
  viaDefaultInbox: boolean;
  ratchet: RatchetState;
  peerEndpoints: readonly DeliveryEndpoint[];
  ownEndpoints: readonly DeliveryEndpoint[];
  peerPresentation: Presentation;
  nowMs: number;
  /** The initiator's refusal hint (PrivateConversation.refusalHint); none by default. */
  refusalHint?: Uint8Array;
}): PrivateConversation {
  const { keys } = params;
  return {
    type: PRIVATE_V1,
    id: toHex(keys.conversationId),
    initiator: params.initiator,
    identity: params.identity,
    peerIdentity: params.peerIdentity,
    invitationId: params.invitationId,
    viaDefaultInbox: params.viaDefaultInbox,
    associatedData: keys.associatedData,
    ratchet: params.ratchet,
    sendHintKey: params.initiator ? keys.hintKeyInitiator : keys.hintKeyResponder,
    receiveHintKey: params.initiator ? keys.hintKeyResponder : keys.hintKeyInitiator,
    sendHint: { hour: 0, nextIndex: 0 },
    receiveHints: NO_WINDOWS,
    peerEndpoints: params.peerEndpoints,
    ownEndpoints: params.ownEndpoints,
    peerPresentation: params.peerPresentation,
    createdAt: params.nowMs,
    refusalHint: params.refusalHint ?? NO_REFUSAL_HINT,
  };
}

const NO_HISTORY: readonly Uint8Array[] = Object.freeze([]);
const NO_REFUSAL_HINT = new Uint8Array(0);
const NO_RELIABILITY: ReliabilityFields = Object.freeze({});

export function buildFrame(crypto: CryptoProvider, body: FrameBody, nowMs: number, reliability: ReliabilityFields = NO_RELIABILITY): PrivateV1Frame {
  const history = reliability.causalHistory ?? NO_HISTORY;
  let historyValid = history.length <= MAX_CAUSAL_HISTORY;
  for (const id of history) historyValid &&= id.length === MESSAGE_ID_BYTES;
  if (!historyValid) {
    throw new UmbraError('invalid-argument', `causal history holds at most ${MAX_CAUSAL_HISTORY} ids of ${MESSAGE_ID_BYTES} bytes`);
  }
  if (reliability.messageId !== undefined && reliability.messageId.length !== MESSAGE_ID_BYTES) {
    throw new UmbraError('invalid-argument', `a message id is ${MESSAGE_ID_BYTES} bytes`);
  }
  // A literal with every field: what create() gives, without its reflection (hot path).
  const frame: PrivateV1Frame = {
    $typeName: 'umbra.v1.PrivateV1Frame',
    messageId: reliability.messageId ?? crypto.randomBytes(MESSAGE_ID_BYTES),
    lamport: reliability.lamport ?? 0n,
    causalHistory: history.length === 0 ? [] : history.slice(),
    sentAt: BigInt(Math.max(0, Math.floor(nowMs))),
    body,
  };
  return frame;
}

/**
 * The ratchet's associated data for one message: the conversation's AD ‖ u8(len) ‖ the
 * envelope's conversation hint (ASCII; empty for the first message, which travels inside the
 * inbox handshake). Binding the hint makes a re-labelled envelope undecryptable, so the
 * receiver need not re-derive the hint to confirm a table hit.
 */
export function messageAssociatedData(associatedData: Uint8Array, hint: string): Uint8Array {
  return writeMessageAssociatedData(associatedData, hint, null);
}

/**
 * The encrypt and decrypt paths' copy, in a reused buffer: the ratchet only copies it into the
 * AEAD's AAD and keeps nothing, so each message saves an off-heap allocation. Not secret.
 */
let adScratch = new Uint8Array(256);

function writeMessageAssociatedData(associatedData: Uint8Array, hint: string, scratch: 'scratch' | null): Uint8Array {
  // Hints we make are 32 hex digits; any other string (≤ 64 UTF-16 units, so ≤ 192 UTF-8
  // bytes) is bound by its UTF-8 bytes.
  let ascii = true;
  for (let i = 0; i < hint.length && ascii; i++) ascii = hint.charCodeAt(i) < 0x80;
  const hintBytes = ascii ? null : utf8(hint);
  const length = hintBytes === null ? hint.length : hintBytes.length;
  if (length > 255) throw new UmbraError('invalid-argument', 'a conversation hint is at most 255 bytes');
  const total = associatedData.length + 1 + length;
  let out: Uint8Array;
  if (scratch === null) out = new Uint8Array(total);
  else {
    if (total > adScratch.length) adScratch = new Uint8Array(Math.max(total, 2 * adScratch.length));
    out = adScratch.subarray(0, total);
  }
  out.set(associatedData, 0);
  out[associatedData.length] = length;
  if (hintBytes !== null) out.set(hintBytes, associatedData.length + 1);
  else for (let i = 0; i < length; i++) out[associatedData.length + 1 + i] = hint.charCodeAt(i);
  return out;
}

/**
 * Encrypt one frame. Returns the new conversation state, the hint and the ratchet message.
 * `initial`: the first message of an inbox handshake (no conversation hint used or bound).
 */
export function encryptFrame(
  crypto: CryptoProvider,
  conversation: PrivateConversation,
  frame: PrivateV1Frame,
  nowMs: number,
  options: { initial?: boolean } = {},
): { conversation: PrivateConversation; hint: string; message: RatchetCiphertext } {
  const padded = padFrame(conversation, frame);
  try {
    const { hint, state: sendHint } = options.initial
      ? { hint: '', state: conversation.sendHint }
      : nextSendHint(crypto, conversation.sendHintKey, conversation.sendHint, nowMs);
    const ad = writeMessageAssociatedData(conversation.associatedData, hint, 'scratch');
    const { state, message } = ratchetEncrypt(crypto, conversation.ratchet, padded, ad);
    return { conversation: withRatchet(conversation, state, sendHint, conversation.receiveHints), hint, message };
  } finally {
    padded.fill(0); // the plaintext does not stay in the reused buffer
  }
}

/**
 * encryptFrame (not initial) and encodeRatchetEnvelope in one (through ratchetEnvelopeFraming): the sealed header and body
 * are written straight into the envelope (one buffer instead of three, and no copies). The salt
 * is given in uint32 halves. Returns the new conversation state and the envelope.
 */
export function encryptFrameToEnvelope(
  crypto: CryptoProvider,
  conversation: PrivateConversation,
  frame: PrivateV1Frame,
  nowMs: number,
  saltHi: number,
  saltLo: number,
): { conversation: PrivateConversation; envelope: Uint8Array } {
  const padded = padFrame(conversation, frame);
  try {
    const { hint, state: sendHint } = nextSendHint(crypto, conversation.sendHintKey, conversation.sendHint, nowMs);
    const ad = writeMessageAssociatedData(conversation.associatedData, hint, 'scratch');
    const ciphertextLength = NONCE_BYTES + padded.length + TAG_BYTES;
    const envelope = ratchetEnvelopeFraming(hint, saltHi, saltLo, ENCRYPTED_HEADER_BYTES, ciphertextLength);
    const headerAt = ratchetEnvelopeHeaderAt(envelope.length, ENCRYPTED_HEADER_BYTES, ciphertextLength);
    const ratchet = ratchetEncryptInto(crypto, conversation.ratchet, padded, ad, envelope, headerAt, envelope.length - ciphertextLength);
    return { conversation: withRatchet(conversation, ratchet, sendHint, conversation.receiveHints), envelope };
  } finally {
    padded.fill(0);
  }
}

/** The frame encoded straight into its padding bucket (no copy of the encoding), padded; the caller wipes it. */
function padFrame(conversation: PrivateConversation, frame: PrivateV1Frame): Uint8Array {
  if (!canSend(conversation.ratchet)) {
    throw new UmbraError('conversation-cannot-send', 'this conversation cannot send until the peer has written first');
  }
  encodedLength = -1;
  const padded = encodeInto(PrivateV1FrameSchema, frame, paddingBucket);
  if (padded === null) throw new UmbraError('frame-too-large', `a frame is at most ${MAX_PADDED_PLAINTEXT} bytes once encoded`);
  padTail(padded, encodedLength);
  return padded;
}

/** Frames of the smallest bucket (most messages) are padded here, then wiped. */
const padScratch = new Uint8Array(PADDING_BUCKETS[0]);
/** The length paddingBucket was last asked for: the frame's encoded length. */
let encodedLength = -1;

/** encodeInto's buffer for a frame of `size` bytes: its bucket (the scratch for the smallest), null when none fits. */
function paddingBucket(size: number): Uint8Array | null {
  const bucket = bucketFor(size);
  if (bucket === undefined) return null;
  encodedLength = size;
  return bucket === padScratch.length ? padScratch : new Uint8Array(bucket);
}

export type DecryptFrameResult =
  | { readonly ok: true; readonly conversation: PrivateConversation; readonly frame: PrivateV1Frame }
  | { readonly ok: false; readonly reason: RatchetFailure | 'padding' | 'frame-malformed' | 'hint-slot' };

/**
 * Decrypt on a copy. `hint` is the envelope's conversation hint ('' for the first message,
 * which arrives through an inbox); `slot` is where the hint table found it (null when it did
 * not: the first message, or an envelope matched by its delivery route). Nothing changes
 * unless the result is ok.
 */
export function decryptFrame(
  crypto: CryptoProvider,
  conversation: PrivateConversation,
  message: RatchetCiphertext,
  hint: string,
  slot: HintSlot | null,
  nowMs: number,
): DecryptFrameResult {
  const ad = writeMessageAssociatedData(conversation.associatedData, hint, 'scratch');
  const result = ratchetDecrypt(crypto, conversation.ratchet, message, ad, nowMs);
  if (!result.ok) return result;
  const unpadded = unpad(result.plaintext);
  if (unpadded === null) return { ok: false, reason: 'padding' };
  const frame = decodePrivateFrame(unpadded);
  if (frame === null) return { ok: false, reason: 'frame-malformed' };
  let receiveHints = conversation.receiveHints;
  if (slot !== null) {
    const marked = markSeen(receiveHints, slot.hour, slot.index);
    if (marked === null) return { ok: false, reason: 'hint-slot' };
    receiveHints = marked;
  }
  let next = withRatchet(conversation, result.state, conversation.sendHint, receiveHints);
  if (frame.body.case === 'particleUpdate') next = applyParticleUpdate(next, frame.body.value);
  return { ok: true, conversation: next, frame };
}

function applyParticleUpdate(c: PrivateConversation, update: Extract<FrameBody, { case: 'particleUpdate' }>['value']): PrivateConversation {
  let next = c;
  if (update.endpoints.length > 0) next = { ...next, peerEndpoints: update.endpoints };
  if (update.presentation !== undefined) {
    const { name, avatar } = update.presentation;
    next = { ...next, peerPresentation: avatar.length > 0 ? { name, avatar } : { name } };
  }
  return next;
}
