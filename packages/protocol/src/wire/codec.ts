/**
 * Decoding untrusted bytes with limits. Every decoder returns a value or null and never
 * throws: size limits are checked before parsing, field sizes after.
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import {
  EncryptedPayloadSchema,
  InitialMessageSchema,
  UmbraEnvelopeV1Schema,
  type DoubleRatchetMessage,
  type EncryptedPayload,
  type InitialMessage,
  type UmbraEnvelopeV1,
} from './gen/umbra/v1/envelope_pb.ts';
import { SignedInvitationSchema, InvitationSchema, type Invitation, type SignedInvitation } from './gen/umbra/v1/invitation_pb.ts';
import { PrivateV1FrameSchema, type PrivateV1Frame } from './gen/umbra/v1/private_v1_pb.ts';
import { compilePlan, planDecodeCanonical, planEncode, planEncodeInto } from './plan-codec.ts';

export * from './gen/umbra/v1/envelope_pb.ts';
export * from './gen/umbra/v1/invitation_pb.ts';
export * from './gen/umbra/v1/private_v1_pb.ts';
export { create, toBinary };

/** Largest envelope accepted: the largest padding bucket plus framing and headers. */
export const MAX_ENVELOPE_BYTES = 65536 + 4096;
/** Largest encoded invitation (an ML-KEM key is 1184 bytes; avatars are at most 16 KiB). */
export const MAX_INVITATION_BYTES = 24 * 1024;
export const MAX_AVATAR_BYTES = 16 * 1024;
export const MAX_NAME_CHARS = 128;
export const MAX_ENDPOINTS = 16;
export const MAX_HINT_CHARS = 64;
export const MAX_CAUSAL_HISTORY = 8;
export const MAX_ACK_IDS = 256;
export const MESSAGE_ID_BYTES = 16;

/**
 * Encode: the plan codec (plan-codec.ts) where the schema allows, else protobuf-es; the bytes
 * are the same either way.
 */
export function encode<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Uint8Array {
  const plan = compilePlan(schema);
  return plan === null ? toBinary(schema, message) : planEncode(plan, message);
}

/**
 * encode(), written from index 0 of the buffer `into(size)` returns (at least `size` bytes),
 * or null when it returns null. `into` must not encode anything itself.
 */
export function encodeInto<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>, into: (size: number) => Uint8Array | null): Uint8Array | null {
  const plan = compilePlan(schema);
  if (plan !== null) return planEncodeInto(plan, message, into);
  const bytes = toBinary(schema, message);
  const out = into(bytes.length);
  out?.set(bytes);
  return out;
}

/**
 * Decode leniently (any valid encoding, unknown fields dropped). Canonical input (what every
 * Umbra encoder writes) takes the plan codec; anything else goes through protobuf-es. Also the
 * decoder of stored records (state.ts, reliability/state.ts), which we wrote canonical.
 */
export function decode<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array, maxBytes: number): MessageShape<Desc> | null {
  if (bytes.length > maxBytes) return null;
  const plan = compilePlan(schema);
  if (plan !== null) {
    const message = planDecodeCanonical<Desc>(plan, bytes);
    if (message !== null) return message;
  }
  try {
    return fromBinary(schema, bytes, { readUnknownFields: false });
  } catch {
    return null;
  }
}

/**
 * Decode and require the canonical encoding (what toBinary gives back). Protobuf admits many
 * encodings of one message (groups, padded varints, repeated fields); requiring one makes the
 * envelope bytes ↔ message mapping a bijection, so a re-encoded copy is not a new envelope.
 * The plan codec checks it in the same pass as decoding; other schemas are re-encoded.
 */
function decodeCanonical<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array, maxBytes: number): MessageShape<Desc> | null {
  if (bytes.length > maxBytes) return null;
  const plan = compilePlan(schema);
  if (plan !== null) return planDecodeCanonical(plan, bytes);
  const message = decode(schema, bytes, maxBytes);
  return message !== null && isReencodedSame(schema, message, bytes) ? message : null;
}

/** The reference definition of canonical: re-encoding gives the same bytes. */
export function isReencodedSame<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>, bytes: Uint8Array): boolean {
  const again = toBinary(schema, message);
  if (again.length !== bytes.length) return false;
  for (let i = 0; i < again.length; i++) if (again[i] !== bytes[i]) return false;
  return true;
}

export function decodeEnvelope(bytes: Uint8Array): UmbraEnvelopeV1 | null {
  const env = decodeCanonical(UmbraEnvelopeV1Schema, bytes, MAX_ENVELOPE_BYTES);
  if (env === null || env.conversationHint.length > MAX_HINT_CHARS) return null;
  return env;
}

/** What a receiver routes an envelope by: its hint and its payload (a view of the input). */
export interface EnvelopeRouting {
  readonly hint: string;
  readonly payload: Uint8Array;
}

/**
 * decodeEnvelope's hint and payload, or null exactly when decodeEnvelope returns null: the
 * receive path's decoder, which never needs the salt. The shape every Umbra sender writes (an
 * ASCII hint, a salt, a payload, all present) is checked canonical in place without making the
 * salt's BigInt or a message object; anything else goes to decodeEnvelope, which decides
 * (test/codec-fast.test.ts compares the two on valid and mutated envelopes).
 */
export function decodeEnvelopeRouting(bytes: Uint8Array): EnvelopeRouting | null {
  const fast = fastEnvelopeRouting(bytes);
  if (fast !== null) return fast;
  const env = decodeEnvelope(bytes);
  return env === null ? null : { hint: env.conversationHint, payload: env.payload };
}

const asciiDecoder = new TextDecoder();

function fastEnvelopeRouting(bytes: Uint8Array): EnvelopeRouting | null {
  const end = bytes.length;
  // 1: conversation_hint, 1..MAX_HINT_CHARS ASCII bytes (a one-byte length).
  if (end > MAX_ENVELOPE_BYTES || bytes[0] !== 0x0a) return null;
  const hintLength = bytes[1]!;
  if (hintLength === 0 || hintLength > MAX_HINT_CHARS || 2 + hintLength >= end) return null;
  for (let i = 2; i < 2 + hintLength; i++) if (bytes[i]! >= 0x80) return null;
  let pos = 2 + hintLength;
  // 2: salt, a minimal non-zero varint of at most 64 bits.
  if (bytes[pos++] !== 0x10) return null;
  for (let i = 0; ; i++) {
    if (i === 10 || pos >= end) return null;
    const b = bytes[pos++]!;
    if ((b & 0x80) !== 0) continue;
    if (b === 0 || (i === 9 && b > 1)) return null; // zero (or a padded varint), or above 64 bits
    break;
  }
  // 5: payload, non-empty, to the end.
  if (bytes[pos++] !== 0x2a) return null;
  cursor = pos;
  const payloadLength = readLength(bytes);
  if (payloadLength <= 0 || cursor + payloadLength !== end) return null;
  return { hint: asciiDecoder.decode(bytes.subarray(2, 2 + hintLength)), payload: bytes.subarray(cursor, end) };
}

// The hot-path encoders build their messages as literals: every field is given, so this is
// what create() returns, without its per-call reflection (a few µs per message).
export function encodeEnvelope(hint: string, salt: bigint, payload: Uint8Array): Uint8Array {
  const envelope: UmbraEnvelopeV1 = { $typeName: 'umbra.v1.UmbraEnvelopeV1', conversationHint: hint, salt, payload };
  return encode(UmbraEnvelopeV1Schema, envelope);
}

/**
 * encodeEnvelope(hint, salt, encodeEncryptedPayload({ case: 'doubleRatchet', value:
 * doubleRatchetMessage(header, ciphertext) })), written in one pass into one buffer: the same
 * bytes (test/codec-fast.test.ts), without the payload's own encoding and copy. A hint that is not
 * ASCII or a salt outside uint64 takes the general encoders.
 */
export function encodeRatchetEnvelope(hint: string, salt: bigint, header: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  if (!isAscii(hint) || salt < 0n || salt >= UINT64_RANGE) {
    return encodeEnvelope(hint, salt, encodeEncryptedPayload({ case: 'doubleRatchet', value: doubleRatchetMessage(header, ciphertext) }));
  }
  return writeRatchetEnvelope(hint, Number(salt >> 32n), Number(salt & 0xffffffffn), header.length, ciphertext.length, header, ciphertext);
}

const UINT64_RANGE = 1n << 64n;

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
}

/**
 * encodeRatchetEnvelope's bytes, salt saltHi·2^32 + saltLo (uint32 halves: the engine's salt is
 * random bytes, no BigInt is made), with the header and ciphertext left zero, for a sender that
 * seals them in place: they are the envelope's last bytes, the ciphertext at
 * `length - ciphertextLength` and the header at ratchetEnvelopeHeaderAt, whatever the hint
 * (both lengths non-zero). test/codec-fast.test.ts checks it against the general encoders.
 */
export function ratchetEnvelopeFraming(hint: string, saltHi: number, saltLo: number, headerLength: number, ciphertextLength: number): Uint8Array {
  if (!isAscii(hint)) {
    const salt = (BigInt(saltHi >>> 0) << 32n) | BigInt(saltLo >>> 0);
    return encodeRatchetEnvelope(hint, salt, new Uint8Array(headerLength), new Uint8Array(ciphertextLength));
  }
  return writeRatchetEnvelope(hint, saltHi >>> 0, saltLo >>> 0, headerLength, ciphertextLength, null, null);
}

/** Where ratchetEnvelopeFraming's envelope of `length` bytes holds the header (both lengths non-zero). */
export function ratchetEnvelopeHeaderAt(length: number, headerLength: number, ciphertextLength: number): number {
  return length - ciphertextLength - 1 - varintSize(ciphertextLength) - headerLength;
}

/** The one-pass writer (ASCII hint, uint32 salt halves); null header and ciphertext: left zero (framing only). */
function writeRatchetEnvelope(
  hint: string,
  hi: number,
  lo: number,
  headerLength: number,
  ciphertextLength: number,
  header: Uint8Array | null,
  ciphertext: Uint8Array | null,
): Uint8Array {
  // DoubleRatchetMessage: 1 header, 2 ciphertext (bytes, left out when empty).
  const drm = (headerLength > 0 ? 1 + varintSize(headerLength) + headerLength : 0) + (ciphertextLength > 0 ? 1 + varintSize(ciphertextLength) + ciphertextLength : 0);
  // EncryptedPayload: oneof member 2 (a message: written even when empty).
  const payload = 1 + varintSize(drm) + drm;
  const hasSalt = hi !== 0 || lo !== 0;
  const size =
    (hint.length > 0 ? 1 + varintSize(hint.length) + hint.length : 0) + (hasSalt ? 1 + uint64VarintSize(lo, hi) : 0) + 1 + varintSize(payload) + payload;
  const out = new Uint8Array(size);
  let pos = 0;
  if (hint.length > 0) {
    out[pos++] = 0x0a; // 1: conversation_hint
    pos = writeVarint(out, pos, hint.length);
    for (let i = 0; i < hint.length; i++) out[pos++] = hint.charCodeAt(i);
  }
  if (hasSalt) {
    out[pos++] = 0x10; // 2: salt
    pos = writeUint64Varint(out, pos, lo, hi);
  }
  out[pos++] = 0x2a; // 5: payload
  pos = writeVarint(out, pos, payload);
  out[pos++] = 0x12; // EncryptedPayload.double_ratchet
  pos = writeVarint(out, pos, drm);
  if (headerLength > 0) {
    out[pos++] = 0x0a;
    pos = writeVarint(out, pos, headerLength);
    if (header !== null) out.set(header, pos);
    pos += headerLength;
  }
  if (ciphertextLength > 0) {
    out[pos++] = 0x12;
    pos = writeVarint(out, pos, ciphertextLength);
    if (ciphertext !== null) out.set(ciphertext, pos);
  }
  return out;
}

function varintSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
}

function writeVarint(out: Uint8Array, pos: number, value: number): number {
  while (value > 0x7f) {
    out[pos++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  out[pos++] = value;
  return pos;
}

/** Size of the varint of hi·2^32 + lo (both uint32). */
function uint64VarintSize(lo: number, hi: number): number {
  if (hi === 0) return varintSize(lo);
  // 28 bits of lo in 4 bytes, then 4 more bits of lo and hi's bits, 7 per byte.
  let size = 5;
  for (let rest = hi >>> 3; rest > 0; rest >>>= 7) size++;
  return size;
}

function writeUint64Varint(out: Uint8Array, pos: number, lo: number, hi: number): number {
  if (hi === 0) return writeVarint(out, pos, lo);
  for (let i = 0; i < 4; i++) {
    out[pos++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  const rest = lo | ((hi & 0x07) << 4);
  hi >>>= 3;
  if (hi === 0) {
    out[pos++] = rest;
    return pos;
  }
  out[pos++] = rest | 0x80;
  return writeVarint(out, pos, hi);
}

export function decodeEncryptedPayload(bytes: Uint8Array): EncryptedPayload | null {
  if (bytes.length > MAX_ENVELOPE_BYTES) return null;
  return fastRatchetPayload(bytes) ?? decodeCanonical(EncryptedPayloadSchema, bytes, MAX_ENVELOPE_BYTES);
}

// A fast path for the payload decode every conversational envelope takes (a fifth of the plan
// codec's time for it): it recognises only the exact canonical shape Umbra's encoder writes (a
// double-ratchet message with both fields, lengths as minimal varints of at most 3 bytes) and
// returns what the plan codec returns for it; anything else (null here) goes to the general
// decoder, which decides. test/codec-fast.test.ts checks it against protobuf-es on valid and
// mutated payloads. (The envelope itself gains nothing this way: its cost is the hint string
// and the salt's BigInt, which any decoder must make.)

/** Where readLength stopped. */
let cursor = 0;

/** A minimal varint below 2^21 at bytes[cursor], or -1. */
function readLength(bytes: Uint8Array): number {
  const end = bytes.length;
  let value = 0;
  for (let i = 0; i < 3; i++) {
    if (cursor >= end) return -1;
    const b = bytes[cursor++]!;
    value |= (b & 0x7f) << (7 * i);
    if ((b & 0x80) === 0) return i > 0 && b === 0 ? -1 : value;
  }
  return -1;
}

function fastRatchetPayload(bytes: Uint8Array): EncryptedPayload | null {
  const end = bytes.length;
  // 2: double_ratchet { 1: header (non-empty), 2: ciphertext (non-empty) }, nothing else.
  if (bytes[0] !== 0x12) return null;
  cursor = 1;
  const drmLength = readLength(bytes);
  if (drmLength < 0 || cursor + drmLength !== end || bytes[cursor] !== 0x0a) return null;
  cursor++;
  const headerLength = readLength(bytes);
  if (headerLength <= 0 || cursor + headerLength >= end) return null;
  const header = bytes.subarray(cursor, cursor + headerLength);
  cursor += headerLength;
  if (bytes[cursor] !== 0x12) return null;
  cursor++;
  const ciphertextLength = readLength(bytes);
  if (ciphertextLength <= 0 || cursor + ciphertextLength !== end) return null;
  return {
    $typeName: 'umbra.v1.EncryptedPayload',
    encryption: {
      case: 'doubleRatchet',
      value: { $typeName: 'umbra.v1.DoubleRatchetMessage', header, ciphertext: bytes.subarray(cursor, end) },
    },
  };
}

export function encodeEncryptedPayload(payload: EncryptedPayload['encryption']): Uint8Array {
  const message: EncryptedPayload = { $typeName: 'umbra.v1.EncryptedPayload', encryption: payload ?? { case: undefined } };
  return encode(EncryptedPayloadSchema, message);
}

export function doubleRatchetMessage(header: Uint8Array, ciphertext: Uint8Array): DoubleRatchetMessage {
  return { $typeName: 'umbra.v1.DoubleRatchetMessage', header, ciphertext };
}

export function decodeInitialMessage(bytes: Uint8Array): InitialMessage | null {
  return decodeCanonical(InitialMessageSchema, bytes, MAX_ENVELOPE_BYTES);
}

export function decodeSignedInvitation(bytes: Uint8Array): SignedInvitation | null {
  return decodeCanonical(SignedInvitationSchema, bytes, MAX_INVITATION_BYTES + 128);
}

export function decodeInvitation(bytes: Uint8Array): Invitation | null {
  return decode(InvitationSchema, bytes, MAX_INVITATION_BYTES);
}

/** Frames also get semantic limits: id sizes, list lengths. */
export function decodePrivateFrame(bytes: Uint8Array): PrivateV1Frame | null {
  const frame = decode(PrivateV1FrameSchema, bytes, MAX_ENVELOPE_BYTES);
  if (frame === null) return null;
  if (frame.messageId.length !== MESSAGE_ID_BYTES) return null;
  if (frame.causalHistory.length > MAX_CAUSAL_HISTORY) return null;
  for (const id of frame.causalHistory) if (id.length !== MESSAGE_ID_BYTES) return null;
  if (frame.body.case === undefined) return null;
  if (frame.body.case === 'ack' && frame.body.value.messageIds.length > MAX_ACK_IDS) return null;
  if (frame.body.case === 'retransmitRequest' && frame.body.value.messageIds.length > MAX_ACK_IDS) return null;
  if (frame.body.case === 'group' && frame.body.value.kind.case === undefined) return null;
  if (frame.body.case === 'particleUpdate') {
    const { endpoints, presentation } = frame.body.value;
    if (endpoints.length > MAX_ENDPOINTS || endpoints.some((e) => e.endpoint.case === undefined)) return null;
    if (presentation !== undefined && (presentation.name.length > MAX_NAME_CHARS || presentation.avatar.length > MAX_AVATAR_BYTES)) return null;
  }
  return frame;
}
