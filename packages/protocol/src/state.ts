/**
 * Versioned, compact serialization of local state (state.proto): what a store persists.
 * Deserializers validate sizes and throw UmbraError('state-malformed') on anything else, so a
 * corrupted store is reported, never half-loaded.
 */
import { create, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import type { KeyPair } from './crypto/provider.ts';
import { toHex } from './bytes.ts';
import { UmbraError } from './errors.ts';
import type { Inbox } from './invitation.ts';
import type { PrivateConversation } from './private-v1.ts';
import { freshWindow, windowAt, type HintReceiveState, type HourWindow } from './hints.ts';
import { NO_SKIPPED, type RatchetState, type SkippedMessageKey } from './ratchet.ts';
import { DeliveryEndpointSchema, decode, encode, type DeliveryEndpoint } from './wire/codec.ts';
import { PresentationSchema } from './wire/gen/umbra/v1/invitation_pb.ts';
import {
  HourWindowStateSchema,
  InboxStateSchema,
  KeyPairStateSchema,
  PrivateConversationStateSchema,
  RatchetStateV1Schema,
  type KeyPairState,
  type RatchetStateV1,
} from './wire/gen/umbra/v1/state_pb.ts';

export const STATE_VERSION = 1;

const EMPTY = new Uint8Array(0);
const orNull = (b: Uint8Array): Uint8Array | null => (b.length === 0 ? null : b);

function malformed(what: string): UmbraError {
  return new UmbraError('state-malformed', `stored state is malformed: ${what}`);
}

/**
 * What we wrote is canonical, so `decode` takes the plan codec, without protobuf-es's reflection
 * (at 100,000 conversations that was 1.6–3.3 s of opening a client, and much of its garbage).
 */
function decodeState<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array, what: string): MessageShape<Desc> {
  const message = decode(schema, bytes, Infinity);
  if (message === null) throw malformed(`${what} does not decode`);
  return message;
}

function keyPairToState(k: KeyPair): KeyPairState {
  return create(KeyPairStateSchema, { publicKey: k.publicKey, secretKey: k.secretKey });
}

function keyPairFromState(k: KeyPairState | undefined, what: string): KeyPair {
  if (k === undefined || k.publicKey.length === 0 || k.secretKey.length === 0) throw malformed(what);
  return { publicKey: k.publicKey, secretKey: k.secretKey };
}

function ratchetToState(r: RatchetState): RatchetStateV1 {
  return create(RatchetStateV1Schema, {
    rootKey: r.rootKey,
    sendingRatchetKey: keyPairToState(r.sendingRatchetKey),
    receivingRatchetKey: r.receivingRatchetKey ?? EMPTY,
    sendingChainKey: r.sendingChainKey ?? EMPTY,
    receivingChainKey: r.receivingChainKey ?? EMPTY,
    sendingHeaderKey: r.sendingHeaderKey ?? EMPTY,
    receivingHeaderKey: r.receivingHeaderKey ?? EMPTY,
    nextSendingHeaderKey: r.nextSendingHeaderKey,
    nextReceivingHeaderKey: r.nextReceivingHeaderKey,
    sendCount: r.sendCount,
    receiveCount: r.receiveCount,
    previousSendCount: r.previousSendCount,
    skipped: [...r.skipped.values()].map((s) => ({
      headerKey: s.headerKey,
      n: s.n,
      messageKey: s.messageKey,
      storedAt: BigInt(s.storedAt),
    })),
  });
}

function ratchetFromState(r: RatchetStateV1 | undefined): RatchetState {
  if (r === undefined || r.rootKey.length !== 32) throw malformed('ratchet');
  // Entries of one chain share one header-key array (ratchet.ts dedupes trials by identity).
  const headerKeys = new Map<string, Uint8Array>();
  const skipped = new Map<string, SkippedMessageKey>();
  for (const s of r.skipped) {
    if (s.headerKey.length !== 32 || s.messageKey.length !== 32) throw malformed('skipped key');
    const hkHex = toHex(s.headerKey);
    const headerKey = headerKeys.get(hkHex) ?? s.headerKey;
    headerKeys.set(hkHex, headerKey);
    skipped.set(`${hkHex}:${s.n}`, { headerKey, n: s.n, messageKey: s.messageKey, storedAt: Number(s.storedAt) });
  }
  return {
    rootKey: r.rootKey,
    sendingRatchetKey: keyPairFromState(r.sendingRatchetKey, 'ratchet key'),
    receivingRatchetKey: orNull(r.receivingRatchetKey),
    sendingChainKey: orNull(r.sendingChainKey),
    receivingChainKey: orNull(r.receivingChainKey),
    sendingHeaderKey: orNull(r.sendingHeaderKey),
    receivingHeaderKey: orNull(r.receivingHeaderKey),
    nextSendingHeaderKey: r.nextSendingHeaderKey,
    nextReceivingHeaderKey: r.nextReceivingHeaderKey,
    sendCount: r.sendCount,
    receiveCount: r.receiveCount,
    previousSendCount: r.previousSendCount,
    // Most records have none: they share the empty map fresh states use (~180 B each at 100,000).
    skipped: skipped.size === 0 ? NO_SKIPPED : skipped,
  };
}

export function serializeConversation(c: PrivateConversation): Uint8Array {
  return encode(
    PrivateConversationStateSchema,
    create(PrivateConversationStateSchema, {
      version: STATE_VERSION,
      conversationId: hexToBytes(c.id),
      initiator: c.initiator,
      identity: keyPairToState(c.identity),
      peerIdentity: c.peerIdentity,
      invitationId: c.invitationId,
      viaDefaultInbox: c.viaDefaultInbox,
      associatedData: c.associatedData,
      ratchet: ratchetToState(c.ratchet),
      sendHintKey: c.sendHintKey,
      receiveHintKey: c.receiveHintKey,
      sendHintHour: c.sendHint.hour,
      sendHintNextIndex: c.sendHint.nextIndex,
      receiveHints: c.receiveHints.hours.map((w) => ({ hour: w.hour, highest: w.highest, seenMask: w.seenMask })),
      peerEndpoints: [...c.peerEndpoints],
      ownEndpoints: [...c.ownEndpoints],
      peerPresentation: create(PresentationSchema, { name: c.peerPresentation.name, avatar: c.peerPresentation.avatar ?? EMPTY }),
      createdAt: BigInt(c.createdAt),
      refusalHint: c.refusalHint,
    }),
  );
}

export function deserializeConversation(bytes: Uint8Array): PrivateConversation {
  const s = decodeState(PrivateConversationStateSchema, bytes, 'conversation record');
  if (s.version !== STATE_VERSION) throw new UmbraError('state-unsupported-version', `conversation state version ${s.version}`);
  if (s.conversationId.length !== 16 || s.peerIdentity.length !== 32 || s.sendHintKey.length !== 32 || s.receiveHintKey.length !== 32) {
    throw malformed('conversation keys');
  }
  if (s.refusalHint.length !== 0 && s.refusalHint.length !== REFUSAL_HINT_BYTES) throw malformed('refusal hint');
  const avatar = s.peerPresentation?.avatar ?? EMPTY;
  return {
    type: 'private/v1',
    id: toHex(s.conversationId),
    initiator: s.initiator,
    identity: keyPairFromState(s.identity, 'identity'),
    peerIdentity: s.peerIdentity,
    invitationId: s.invitationId,
    viaDefaultInbox: s.viaDefaultInbox,
    associatedData: s.associatedData,
    ratchet: ratchetFromState(s.ratchet),
    sendHintKey: s.sendHintKey,
    receiveHintKey: s.receiveHintKey,
    sendHint: { hour: s.sendHintHour, nextIndex: s.sendHintNextIndex },
    receiveHints: { hours: s.receiveHints.map((w) => ({ hour: w.hour, highest: w.highest, seenMask: w.seenMask >>> 0 })) },
    peerEndpoints: s.peerEndpoints,
    ownEndpoints: s.ownEndpoints,
    peerPresentation: avatar.length > 0 ? { name: s.peerPresentation?.name ?? '', avatar } : { name: s.peerPresentation?.name ?? '' },
    createdAt: Number(s.createdAt),
    refusalHint: s.refusalHint,
  };
}

// ---- reading single fields of a stored conversation ------------------------------------------
//
// The engine keeps idle conversations encoded (a full decode costs ~7 µs and ~4 KB of objects,
// which at 100,000 conversations was most of opening a client and of its heap). What it needs of
// one without decoding it is read here, by field number (state.proto, PrivateConversationState).

const F_VERSION = 1;
const F_CONVERSATION_ID = 2;
const F_INITIATOR = 3;
const F_IDENTITY = 4;
const F_KEYPAIR_SECRET = 2;
const F_PEER_IDENTITY = 5;
const F_INVITATION_ID = 6;
const F_RATCHET = 9;
const F_RECEIVE_HINT_KEY = 11;
const F_RECEIVE_HINTS = 14;
const F_CREATED_AT = 17;
const F_OWN_ENDPOINTS = 18;
const F_REFUSAL_HINT = 19;
const REFUSAL_HINT_BYTES = 16;
const F_RATCHET_RECEIVING_CHAIN_KEY = 5;

// A field reader without closures or objects (conversationHeader runs once per conversation at
// open): `nextField` reads the field at `scanAt` and leaves its bytes' range (LEN) or value (varint).
let scanAt = 0;
let fieldStart = 0;
let fieldEnd = 0;
let fieldValue = 0;

function readVarint(bytes: Uint8Array, end: number): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (scanAt >= end) throw malformed('truncated varint');
    const b = bytes[scanAt++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return value;
    scale *= 128;
  }
  throw malformed('varint too long');
}

/** The number of the field at `scanAt` (0 at `end`), which it steps over. Varints exact below 2^53. */
function nextField(bytes: Uint8Array, end: number): number {
  if (scanAt >= end) return 0;
  const tag = readVarint(bytes, end);
  const field = Math.floor(tag / 8);
  const wire = tag % 8;
  if (field === 0) throw malformed('field 0');
  if (wire === 0) {
    fieldStart = fieldEnd = scanAt;
    fieldValue = readVarint(bytes, end);
  } else if (wire === 2) {
    const length = readVarint(bytes, end);
    if (length > end - scanAt) throw malformed('truncated field');
    fieldStart = scanAt;
    fieldEnd = scanAt += length;
    fieldValue = length;
  } else if (wire === 1 || wire === 5) {
    scanAt += wire === 1 ? 8 : 4;
    if (scanAt > end) throw malformed('truncated field');
    fieldStart = fieldEnd = scanAt;
    fieldValue = 0;
  } else throw malformed(`wire type ${wire}`);
  return field;
}

/** Calls `visit` for each field of a message (LEN: its bytes' range; varint: its value). */
function scanFields(bytes: Uint8Array, visit: (field: number, start: number, end: number, value: number) => void): void {
  scanAt = 0;
  for (let field = nextField(bytes, bytes.length); field !== 0; field = nextField(bytes, bytes.length)) {
    const at = scanAt;
    visit(field, fieldStart, fieldEnd, fieldValue);
    scanAt = at;
  }
}

/** What the engine holds of a conversation it keeps encoded (checked like deserializeConversation checks them). */
export interface ConversationHeader {
  readonly id: string;
  /** Where the 32-byte receive hint key starts in the bytes read (an offset, not a view: the engine copies it). */
  readonly receiveHintKeyAt: number;
  /** Our first contact awaits the peer's first frame (initiator, no receiving chain yet). */
  readonly awaitsFirstReply: boolean;
  /** Whether it has own endpoints (conversationOwnEndpoints reads them). */
  readonly hasOwnEndpoints: boolean;
}

/** The header of the record at bytes[start, end) (a whole array by default). */
export function conversationHeader(bytes: Uint8Array, start = 0, end = bytes.length): ConversationHeader {
  let version = 0;
  let idStart = -1;
  let idEnd = -1;
  let keyStart = -1;
  let keyEnd = -1;
  let initiator = false;
  let receiving = false;
  let hasOwnEndpoints = false;
  scanAt = start;
  for (let field = nextField(bytes, end); field !== 0; field = nextField(bytes, end)) {
    if (field === F_VERSION) version = fieldValue;
    else if (field === F_CONVERSATION_ID) [idStart, idEnd] = [fieldStart, fieldEnd];
    else if (field === F_RECEIVE_HINT_KEY) [keyStart, keyEnd] = [fieldStart, fieldEnd];
    else if (field === F_INITIATOR) initiator = fieldValue !== 0;
    else if (field === F_OWN_ENDPOINTS) hasOwnEndpoints = true;
    else if (field === F_RATCHET && initiator) {
      // The ratchet's own fields (a responder's are not needed: field 3 came first), then on after it.
      const after = scanAt;
      const ratchetEnd = fieldEnd;
      scanAt = fieldStart;
      receiving = false;
      for (let f = nextField(bytes, ratchetEnd); f !== 0; f = nextField(bytes, ratchetEnd)) {
        if (f === F_RATCHET_RECEIVING_CHAIN_KEY) receiving = fieldEnd > fieldStart;
      }
      scanAt = after;
    }
  }
  if (version !== STATE_VERSION) throw new UmbraError('state-unsupported-version', `conversation state version ${version}`);
  if (idEnd - idStart !== 16 || keyEnd - keyStart !== 32) throw malformed('conversation keys');
  return { id: toHex(bytes.subarray(idStart, idEnd)), receiveHintKeyAt: keyStart, awaitsFirstReply: initiator && !receiving, hasOwnEndpoints };
}

/** The receive hint windows of a stored conversation (as deserializeConversation reads them). */
export function conversationReceiveHints(bytes: Uint8Array): HintReceiveState {
  const hours: HourWindow[] = [];
  scanFields(bytes, (field, start, end) => {
    if (field !== F_RECEIVE_HINTS) return;
    const w = decode(HourWindowStateSchema, bytes.subarray(start, end), Infinity);
    if (w === null) throw malformed('receive hint window');
    hours.push({ hour: w.hour, highest: w.highest, seenMask: w.seenMask >>> 0 });
  });
  return { hours };
}

/** The low 32 bits of the varint at `scanAt` (an int32 below zero is written as 10 bytes). */
function readVarintLow32(bytes: Uint8Array, end: number): number {
  let low = 0;
  for (let i = 0; i < 10; i++) {
    if (scanAt >= end) throw malformed('truncated varint');
    const b = bytes[scanAt++]!;
    if (i < 5) low |= (b & 0x7f) << (7 * i);
    if (b < 0x80) return low;
  }
  throw malformed('varint too long');
}

/**
 * windowAt(conversationReceiveHints(bytes), hour) without decoding the others: the indexing
 * slices read one window per conversation and hour, and at 100,000 conversations the objects
 * of a full read made young collections inside the slices.
 */
export function conversationWindowAt(bytes: Uint8Array, hour: number, start = 0, end = bytes.length): HourWindow {
  scanAt = start;
  for (let field = nextField(bytes, end); field !== 0; field = nextField(bytes, end)) {
    if (field !== F_RECEIVE_HINTS) continue;
    const after = scanAt;
    const windowEnd = fieldEnd;
    scanAt = fieldStart;
    let h = 0;
    let highest = 0;
    let seenMask = 0;
    while (scanAt < windowEnd) {
      const tag = readVarint(bytes, windowEnd);
      // Only varint fields 1-3 are written; anything else takes the general decoder.
      if (tag !== 8 && tag !== 16 && tag !== 24) return windowAt(conversationReceiveHints(bytes.subarray(start, end)), hour);
      const value = readVarintLow32(bytes, windowEnd);
      if (tag === 8) h = value >>> 0;
      else if (tag === 16) highest = value | 0;
      else seenMask = value >>> 0;
    }
    if (h === hour) return { hour, highest, seenMask };
    scanAt = after;
  }
  return freshWindow(hour);
}

/**
 * A stored conversation's refusal hint as kept (empty in states written before it was kept), and
 * what the refusal key derives from otherwise: our identity's secret key and the invitation id
 * (views of `bytes`).
 */
export function conversationRefusalInputs(bytes: Uint8Array): { refusalHint: Uint8Array; identitySecret: Uint8Array; invitationId: Uint8Array } {
  let identitySecret: Uint8Array = new Uint8Array(0);
  let invitationId: Uint8Array = new Uint8Array(0);
  let refusalHint: Uint8Array = new Uint8Array(0);
  scanFields(bytes, (field, start, end) => {
    if (field === F_INVITATION_ID) invitationId = bytes.subarray(start, end);
    else if (field === F_REFUSAL_HINT) refusalHint = bytes.subarray(start, end);
    else if (field === F_IDENTITY) {
      scanAt = start;
      for (let f = nextField(bytes, end); f !== 0; f = nextField(bytes, end)) if (f === F_KEYPAIR_SECRET) identitySecret = bytes.subarray(fieldStart, fieldEnd);
    }
  });
  if (identitySecret.length === 0) throw malformed('identity');
  if (refusalHint.length !== 0 && refusalHint.length !== REFUSAL_HINT_BYTES) throw malformed('refusal hint');
  return { refusalHint, identitySecret, invitationId };
}

/** The endpoints we asked the peer to deliver to, of a stored conversation. */
export function conversationOwnEndpoints(bytes: Uint8Array): DeliveryEndpoint[] {
  const out: DeliveryEndpoint[] = [];
  scanFields(bytes, (field, start, end) => {
    if (field !== F_OWN_ENDPOINTS) return;
    const e = decode(DeliveryEndpointSchema, bytes.subarray(start, end), Infinity);
    if (e === null) throw malformed('own endpoint');
    out.push(e);
  });
  return out;
}

/** A stored conversation's creation time, whether we started it, its invitation and peer identity (views of `bytes`). */
export function conversationOrigin(bytes: Uint8Array): { createdAt: number; initiator: boolean; invitationId: Uint8Array; peerIdentity: Uint8Array } {
  let createdAt = 0;
  let initiator = false;
  let invitationId: Uint8Array = new Uint8Array(0);
  let peerIdentity: Uint8Array = new Uint8Array(0);
  scanFields(bytes, (field, start, end, value) => {
    if (field === F_CREATED_AT) createdAt = value;
    else if (field === F_INITIATOR) initiator = value !== 0;
    else if (field === F_INVITATION_ID) invitationId = bytes.subarray(start, end);
    else if (field === F_PEER_IDENTITY) peerIdentity = bytes.subarray(start, end);
  });
  return { createdAt, initiator, invitationId, peerIdentity };
}

export function serializeInbox(i: Inbox): Uint8Array {
  return encode(
    InboxStateSchema,
    create(InboxStateSchema, {
      version: STATE_VERSION,
      invitationId: i.invitationId,
      identity: keyPairToState(i.identity),
      signedPrekeyId: i.signedPrekeyId,
      signedPrekey: keyPairToState(i.signedPrekey),
      oneTimePrekeyId: i.oneTimePrekeyId,
      ...(i.oneTimePrekey === null ? {} : { oneTimePrekey: keyPairToState(i.oneTimePrekey) }),
      oneTimePrekeyConsumed: i.oneTimePrekeyConsumed,
      kemPrekeyId: i.kemPrekeyId,
      kemPrekey: keyPairToState(i.kemPrekey),
      expiresAt: BigInt(i.expiresAt),
      defaultInbox: i.isDefaultInbox,
      signedInvitation: i.signedInvitation,
    }),
  );
}

export function deserializeInbox(bytes: Uint8Array): Inbox {
  const s = decodeState(InboxStateSchema, bytes, 'inbox record');
  if (s.version !== STATE_VERSION) throw new UmbraError('state-unsupported-version', `inbox state version ${s.version}`);
  if (s.invitationId.length !== 16) throw malformed('invitation id');
  return {
    invitationId: s.invitationId,
    identity: keyPairFromState(s.identity, 'inbox identity'),
    signedPrekeyId: s.signedPrekeyId,
    signedPrekey: keyPairFromState(s.signedPrekey, 'signed prekey'),
    oneTimePrekeyId: s.oneTimePrekeyId,
    oneTimePrekey: s.oneTimePrekey === undefined ? null : keyPairFromState(s.oneTimePrekey, 'one-time prekey'),
    oneTimePrekeyConsumed: s.oneTimePrekeyConsumed,
    kemPrekeyId: s.kemPrekeyId,
    kemPrekey: keyPairFromState(s.kemPrekey, 'ML-KEM prekey'),
    expiresAt: Number(s.expiresAt),
    isDefaultInbox: s.defaultInbox,
    signedInvitation: s.signedInvitation,
  };
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
