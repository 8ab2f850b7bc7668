/**
 * MembershipUpdateEvent signing and decoding (status-go MembershipUpdateEvent.Sign and
 * MembershipUpdateEventFromProtobuf):
 *
 *   raw       = protobuf(MembershipUpdateEvent)           (fields in number order, defaults omitted)
 *   digest    = keccak256(utf8(chat_id) ‖ raw)
 *   signature = secp256k1 R ‖ S ‖ V over digest            (65 bytes)
 *   wire      = signature ‖ raw
 *   from      = "0x04…" of the key recovered from (signature, digest)
 *
 * A received event's raw bytes are kept as they came and never re-encoded: the signature is over
 * them, and another protobuf library may encode the same message differently.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { concat, utf8 } from '../bytes.ts';
import {
  MembershipUpdateEventSchema,
  MembershipUpdateEvent_EventType as EventType,
} from '../wire/gen/umbra/v1/group_v1_pb.ts';
import { SIGNATURE_BYTES, isMemberId, keccak256, memberIdOf, recoverSigner, signDigest, type GroupKeyPair } from './keys.ts';
import {
  MAX_CHAT_ID_CHARS,
  MAX_EVENT_BYTES,
  MAX_GROUP_COLOR_CHARS,
  MAX_GROUP_IMAGE_BYTES,
  MAX_GROUP_NAME_CHARS,
  MAX_MEMBERS_PER_EVENT,
} from './limits.ts';

export { EventType };

/** An authenticated event: what it says, who signed it, and its exact bytes. */
export interface GroupEvent {
  /** The chat id the signature was checked against. */
  readonly chatId: string;
  readonly signature: Uint8Array;
  /** The encoded MembershipUpdateEvent, verbatim. */
  readonly raw: Uint8Array;
  /** "0x04…" of the recovered signer. */
  readonly from: string;
  readonly clock: bigint;
  readonly type: EventType;
  readonly members: readonly string[];
  readonly name: string;
  readonly color: string;
  readonly image: Uint8Array;
}

/** The content of an event to sign. */
export interface EventFields {
  readonly type: EventType;
  readonly clock: bigint;
  readonly members?: readonly string[];
  readonly name?: string;
  readonly color?: string;
  readonly image?: Uint8Array;
}

export type EventDecodeError =
  | 'event-too-short'
  | 'event-too-large'
  | 'event-bad-signature'
  | 'event-malformed'
  | 'event-field-too-large'
  | 'event-bad-member'
  | 'chat-id-too-long';

/** keccak256(utf8(chat_id) ‖ raw): what the signature covers. */
export function eventDigest(chatId: string, raw: Uint8Array): Uint8Array {
  return keccak256(concat(utf8(chatId), raw));
}

/** proto.Marshal of the event: protobuf-es writes fields 1..6 in order and omits defaults, as Go. */
export function encodeEventFields(fields: EventFields): Uint8Array {
  return toBinary(
    MembershipUpdateEventSchema,
    create(MembershipUpdateEventSchema, {
      clock: fields.clock,
      members: [...(fields.members ?? [])],
      name: fields.name ?? '',
      type: fields.type,
      color: fields.color ?? '',
      image: fields.image ?? new Uint8Array(0),
    }),
  );
}

/** Sign an event as its author. Throws only on local misuse (empty chat id, bad key). */
export function signEvent(chatId: string, key: GroupKeyPair, fields: EventFields): GroupEvent {
  if (chatId.length === 0) throw new Error("can't sign with an empty chat id");
  const raw = encodeEventFields(fields);
  const signature = signDigest(key.secretKey, eventDigest(chatId, raw));
  return {
    chatId,
    signature,
    raw,
    from: key.id,
    clock: fields.clock,
    type: fields.type,
    members: [...(fields.members ?? [])],
    name: fields.name ?? '',
    color: fields.color ?? '',
    image: fields.image ?? new Uint8Array(0),
  };
}

/** signature ‖ raw: the element of MembershipUpdateMessage.events. */
export function eventWireBytes(event: GroupEvent): Uint8Array {
  return concat(event.signature, event.raw);
}

/**
 * Decode and authenticate one wire event under `chatId`. Never throws. An event decoded under
 * the wrong chat id recovers an unrelated key (the digest differs), which the folding rules then
 * reject as a non-member: events cannot be replayed into another group.
 */
export function decodeEvent(chatId: string, bytes: Uint8Array): { ok: true; event: GroupEvent } | { ok: false; code: EventDecodeError } {
  if (chatId.length > MAX_CHAT_ID_CHARS) return { ok: false, code: 'chat-id-too-long' };
  if (bytes.length <= SIGNATURE_BYTES) return { ok: false, code: 'event-too-short' };
  if (bytes.length - SIGNATURE_BYTES > MAX_EVENT_BYTES) return { ok: false, code: 'event-too-large' };
  // Copies: the caller's buffer may be reused; the event keeps its own bytes.
  const signature = bytes.slice(0, SIGNATURE_BYTES);
  const raw = bytes.slice(SIGNATURE_BYTES);
  const signer = recoverSigner(signature, eventDigest(chatId, raw));
  if (signer === null) return { ok: false, code: 'event-bad-signature' };
  let decoded;
  try {
    decoded = fromBinary(MembershipUpdateEventSchema, raw, { readUnknownFields: false });
  } catch {
    return { ok: false, code: 'event-malformed' };
  }
  if (
    decoded.name.length > MAX_GROUP_NAME_CHARS ||
    decoded.color.length > MAX_GROUP_COLOR_CHARS ||
    decoded.image.length > MAX_GROUP_IMAGE_BYTES ||
    decoded.members.length > MAX_MEMBERS_PER_EVENT
  ) {
    return { ok: false, code: 'event-field-too-large' };
  }
  if (!decoded.members.every(isMemberId)) return { ok: false, code: 'event-bad-member' };
  return {
    ok: true,
    event: {
      chatId,
      signature,
      raw,
      from: memberIdOf(signer),
      clock: decoded.clock,
      type: decoded.type,
      members: decoded.members,
      name: decoded.name,
      color: decoded.color,
      image: decoded.image,
    },
  };
}

/** Total order used for folding: clock, then signature bytes (deliberate fix 2). */
export function compareEvents(a: GroupEvent, b: GroupEvent): number {
  if (a.clock !== b.clock) return a.clock < b.clock ? -1 : 1;
  return compareBytes(a.signature, b.signature);
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export function sameSignature(a: GroupEvent, b: GroupEvent): boolean {
  return compareBytes(a.signature, b.signature) === 0;
}
