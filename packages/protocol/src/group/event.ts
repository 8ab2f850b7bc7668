/**
 * MembershipUpdateEvent signing and decoding (status-go MembershipUpdateEvent.Sign and
 * MembershipUpdateEventFromProtobuf):
 *
 *   raw       = protobuf(MembershipUpdateEvent)           (fields in number order, defaults omitted)
 *   digest    = keccak256(utf8(chat_id) ‖ raw)
 *   signature = secp256k1 R ‖ S ‖ V over digest            (65 bytes)
 *   wire      = signature ‖ raw
 *   from      = "0x04…" of the key recovered from (signature, digest)
 *   id        = SHA-256(signature ‖ raw)                  (what `parents` of later events name)
 *
 * `parents` (field 16, Umbra only) lists the ids of the DAG heads the author had folded; status-go
 * skips the unknown field and still verifies the signature over the raw bytes (docs/GROUPS.md §5).
 * A received event's raw bytes are kept as they came and never re-encoded: the signature is over
 * them, and another protobuf library may encode the same message differently.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { sha256 } from '@noble/hashes/sha2.js';
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
  MAX_PARENTS,
} from './limits.ts';

/** Bytes of an event id (SHA-256). */
export const EVENT_ID_BYTES = 32;

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
  /** Ids of the events the author had folded as heads (empty for status-go's events). */
  readonly parents: readonly Uint8Array[];
  /** SHA-256(signature ‖ raw): names this event in later events' parents. */
  readonly id: Uint8Array;
}

/** The content of an event to sign. */
export interface EventFields {
  readonly type: EventType;
  readonly clock: bigint;
  readonly members?: readonly string[];
  readonly name?: string;
  readonly color?: string;
  readonly image?: Uint8Array;
  readonly parents?: readonly Uint8Array[];
}

export type EventDecodeError =
  | 'event-too-short'
  | 'event-too-large'
  | 'event-bad-signature'
  | 'event-malformed'
  | 'event-field-too-large'
  | 'event-bad-member'
  | 'event-bad-parent'
  | 'chat-id-too-long';

/** keccak256(utf8(chat_id) ‖ raw): what the signature covers. */
export function eventDigest(chatId: string, raw: Uint8Array): Uint8Array {
  return keccak256(concat(utf8(chatId), raw));
}

/** SHA-256(signature ‖ raw): the event's id, over exactly the bytes on the wire. */
export function eventId(signature: Uint8Array, raw: Uint8Array): Uint8Array {
  return sha256(concat(signature, raw));
}

/**
 * proto.Marshal of the event: protobuf-es writes fields 1..6 (and 16) in order and omits
 * defaults, as Go. Without parents the bytes are exactly status-go's.
 */
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
      parents: [...(fields.parents ?? [])],
    }),
  );
}

/** Sign an event as its author. Throws only on local misuse (empty chat id, bad key). */
export function signEvent(chatId: string, key: GroupKeyPair, fields: EventFields): GroupEvent {
  if (chatId.length === 0) throw new Error("can't sign with an empty chat id");
  const raw = encodeEventFields(fields);
  if (!validParents(fields.parents ?? [])) throw new Error('parents must be distinct 32-byte event ids, at most MAX_PARENTS');
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
    parents: [...(fields.parents ?? [])],
    id: eventId(signature, raw),
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
  if (!validParents(decoded.parents)) return { ok: false, code: 'event-bad-parent' };
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
      parents: decoded.parents,
      id: eventId(signature, raw),
    },
  };
}

/** At most MAX_PARENTS distinct 32-byte ids. */
function validParents(parents: readonly Uint8Array[]): boolean {
  if (parents.length > MAX_PARENTS) return false;
  const seen = new Set<string>();
  for (const p of parents) {
    if (p.length !== EVENT_ID_BYTES) return false;
    const key = binaryKey(p);
    if (seen.has(key)) return false;
    seen.add(key);
  }
  return true;
}

/** The bytes as a string (one char per byte): a cheap exact map key. */
export function binaryKey(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return s;
}

/**
 * Total order used for folding (deliberate fix 2): clock, then the author's rank at that clock,
 * then the event id. rank = SHA-256(utf8(chat_id) ‖ be64(clock) ‖ utf8(author id)) is fixed by
 * the group, the clock and the author's key: an author cannot grind it without changing her
 * clock (the primary key) or her key (then she is not a member). Only two events of one author
 * at one clock fall through to the id, which she can grind, but only against herself.
 */
export function compareEvents(a: GroupEvent, b: GroupEvent): number {
  if (a.clock !== b.clock) return a.clock < b.clock ? -1 : 1;
  if (a.from !== b.from) {
    const byRank = compareBytes(orderRank(a), orderRank(b));
    if (byRank !== 0) return byRank;
  }
  return compareBytes(a.id, b.id);
}

const ranks = new WeakMap<GroupEvent, Uint8Array>();

/** SHA-256(utf8(chat_id) ‖ be64(clock) ‖ utf8(author id)), computed only for ties and cached. */
export function orderRank(e: GroupEvent): Uint8Array {
  let rank = ranks.get(e);
  if (rank === undefined) {
    const clock = new Uint8Array(8);
    new DataView(clock.buffer).setBigUint64(0, e.clock);
    rank = sha256(concat(utf8(e.chatId), clock, utf8(e.from)));
    ranks.set(e, rank);
  }
  return rank;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export function sameSignature(a: GroupEvent, b: GroupEvent): boolean {
  return compareBytes(a.signature, b.signature) === 0;
}
