/**
 * MembershipUpdateMessage { chat_id = 1; events = 2; oneof chat_entity { message = 3; emoji_reaction = 4 } }
 * and the group chat entities it (or a pairwise frame) carries, plus group message ids.
 *
 * Message id (status-go protocol/v1/message.go MessageID):
 *   id = "0x" + hex(keccak256(author group key (65 bytes, uncompressed) ‖ entity bytes))
 * The sender encodes the entity once and sends the same bytes to every member, so every
 * recipient computes the same id. Receivers keep the entity bytes verbatim (the oneof fields are
 * declared as bytes, wire-identical to status-go's embedded messages) and hash those.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { concat, fromHex, toHex } from '../bytes.ts';
import {
  GroupChatMessageSchema,
  GroupEmojiReactionSchema,
  MembershipUpdateMessageSchema,
  type GroupChatMessage,
  type GroupEmojiReaction,
} from '../wire/gen/umbra/v1/group_v1_pb.ts';
import { decodeEvent, eventWireBytes, type EventDecodeError, type GroupEvent } from './event.ts';
import { SIGNATURE_BYTES, isMemberId, keccak256 } from './keys.ts';
import {
  MAX_CHAT_ID_CHARS,
  MAX_EVENTS_PER_UPDATE,
  MAX_GROUP_CHAT_MESSAGE_BYTES,
  MAX_GROUP_TEXT_CHARS,
  MAX_MEMBERSHIP_UPDATE_BYTES,
  MAX_MESSAGE_ID_CHARS,
} from './limits.ts';

/** status-go MessageType.PRIVATE_GROUP. */
export const MESSAGE_TYPE_PRIVATE_GROUP = 3;
/** status-go ChatMessage.ContentType.TEXT_PLAIN. */
export const CONTENT_TYPE_TEXT_PLAIN = 1;

export type ChatEntity =
  | { readonly case: 'message'; readonly value: Uint8Array }
  | { readonly case: 'emojiReaction'; readonly value: Uint8Array };

export interface MembershipUpdate {
  readonly chatId: string;
  /** Authenticated events, in wire order. */
  readonly events: readonly GroupEvent[];
  /** The entity bytes, verbatim; decode with decodeGroupChatMessage / decodeGroupEmojiReaction. */
  readonly entity: ChatEntity | null;
}

export type UpdateDecodeError = 'update-too-large' | 'update-malformed' | 'update-too-many-events' | 'update-bad-chat-id' | EventDecodeError;

export type DecodeResult<T, E extends string> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly code: E; readonly index?: number };

export function encodeMembershipUpdate(chatId: string, events: readonly GroupEvent[], entity: ChatEntity | null = null): Uint8Array {
  return toBinary(
    MembershipUpdateMessageSchema,
    create(MembershipUpdateMessageSchema, {
      chatId,
      events: events.map(eventWireBytes),
      chatEntity: entity === null ? { case: undefined } : { case: entity.case, value: entity.value },
    }),
  );
}

/**
 * Decode and authenticate a MembershipUpdateMessage. Never throws. One bad event rejects the
 * whole message (status-go); `index` names it. Folding (who may do what) is a separate step.
 * `known`: events already stored for this group; an incoming event whose signature, bytes and
 * chat id are identical to a known one reuses it instead of recovering the signer again
 * (updates carry the whole history, so this is most of them).
 */
export function decodeMembershipUpdate(bytes: Uint8Array, known: readonly GroupEvent[] = []): DecodeResult<MembershipUpdate, UpdateDecodeError> {
  if (bytes.length > MAX_MEMBERSHIP_UPDATE_BYTES) return { ok: false, code: 'update-too-large' };
  let msg;
  try {
    msg = fromBinary(MembershipUpdateMessageSchema, bytes, { readUnknownFields: false });
  } catch {
    return { ok: false, code: 'update-malformed' };
  }
  if (msg.chatId.length === 0 || msg.chatId.length > MAX_CHAT_ID_CHARS) return { ok: false, code: 'update-bad-chat-id' };
  const events = decodeEventList(msg.chatId, msg.events, known);
  if (!events.ok) return events;
  const entity: ChatEntity | null =
    msg.chatEntity.case === 'message'
      ? { case: 'message', value: msg.chatEntity.value }
      : msg.chatEntity.case === 'emojiReaction'
        ? { case: 'emojiReaction', value: msg.chatEntity.value }
        : null;
  return { ok: true, value: { chatId: msg.chatId, events: events.value, entity } };
}

/** Decode every wire event under one chat id; the first failure rejects them all. */
export function decodeEventList(
  chatId: string,
  wireEvents: readonly Uint8Array[],
  known: readonly GroupEvent[] = [],
): DecodeResult<GroupEvent[], EventDecodeError | 'update-too-many-events'> {
  if (wireEvents.length > MAX_EVENTS_PER_UPDATE) return { ok: false, code: 'update-too-many-events' };
  const byWire = new Map<string, GroupEvent>();
  for (const e of known) if (e.chatId === chatId) byWire.set(wireKey(e.signature, e.raw), e);
  const events: GroupEvent[] = [];
  for (let i = 0; i < wireEvents.length; i++) {
    const w = wireEvents[i]!;
    const seen = w.length > SIGNATURE_BYTES ? byWire.get(wireKey(w.subarray(0, SIGNATURE_BYTES), w.subarray(SIGNATURE_BYTES))) : undefined;
    if (seen !== undefined) {
      events.push(seen);
      continue;
    }
    const decoded = decodeEvent(chatId, w);
    if (!decoded.ok) return { ok: false, code: decoded.code, index: i };
    events.push(decoded.event);
  }
  return { ok: true, value: events };
}

/** Exact identity of an event's wire bytes (signature ‖ raw), as a map key. */
function wireKey(signature: Uint8Array, raw: Uint8Array): string {
  return toHex(signature) + ':' + toHex(raw);
}

export interface GroupChatMessageFields {
  readonly chatId: string;
  readonly clock: bigint;
  readonly timestamp: bigint;
  readonly text: string;
  readonly responseTo?: string;
}

export function encodeGroupChatMessage(fields: GroupChatMessageFields): Uint8Array {
  return toBinary(
    GroupChatMessageSchema,
    create(GroupChatMessageSchema, {
      clock: fields.clock,
      timestamp: fields.timestamp,
      text: fields.text,
      responseTo: fields.responseTo ?? '',
      chatId: fields.chatId,
      messageType: MESSAGE_TYPE_PRIVATE_GROUP,
      contentType: CONTENT_TYPE_TEXT_PLAIN,
    }),
  );
}

export type EntityDecodeError = 'entity-too-large' | 'entity-malformed' | 'entity-invalid';

/** Null-free decode with limits: text ≤ 4096 characters, a chat id, a clock. Never throws. */
export function decodeGroupChatMessage(bytes: Uint8Array): DecodeResult<GroupChatMessage, EntityDecodeError> {
  if (bytes.length > MAX_GROUP_CHAT_MESSAGE_BYTES) return { ok: false, code: 'entity-too-large' };
  let m;
  try {
    m = fromBinary(GroupChatMessageSchema, bytes, { readUnknownFields: false });
  } catch {
    return { ok: false, code: 'entity-malformed' };
  }
  if (
    m.chatId.length === 0 ||
    m.chatId.length > MAX_CHAT_ID_CHARS ||
    m.clock === 0n ||
    m.text.length > MAX_GROUP_TEXT_CHARS ||
    m.responseTo.length > MAX_MESSAGE_ID_CHARS
  ) {
    return { ok: false, code: 'entity-invalid' };
  }
  return { ok: true, value: m };
}

export function encodeGroupEmojiReaction(fields: { chatId: string; clock: bigint; messageId: string; type: number }): Uint8Array {
  return toBinary(
    GroupEmojiReactionSchema,
    create(GroupEmojiReactionSchema, { clock: fields.clock, chatId: fields.chatId, messageId: fields.messageId, type: fields.type }),
  );
}

export function decodeGroupEmojiReaction(bytes: Uint8Array): DecodeResult<GroupEmojiReaction, EntityDecodeError> {
  if (bytes.length > MAX_GROUP_CHAT_MESSAGE_BYTES) return { ok: false, code: 'entity-too-large' };
  let r;
  try {
    r = fromBinary(GroupEmojiReactionSchema, bytes, { readUnknownFields: false });
  } catch {
    return { ok: false, code: 'entity-malformed' };
  }
  if (r.chatId.length === 0 || r.chatId.length > MAX_CHAT_ID_CHARS || r.clock === 0n || r.messageId.length > MAX_MESSAGE_ID_CHARS) {
    return { ok: false, code: 'entity-invalid' };
  }
  return { ok: true, value: r };
}

/**
 * Group message id: "0x" + hex(keccak256(author key (65 B) ‖ entity bytes)). `author` is the
 * sender's member id ("0x04…"), i.e. the group key bound to the pairwise session it came over.
 * Throws only on a malformed author id (a local bug: ids come from folded state).
 */
export function groupMessageId(author: string, entityBytes: Uint8Array): string {
  if (!isMemberId(author)) throw new Error('author must be a member id');
  return '0x' + toHex(keccak256(concat(fromHex(author.slice(2))!, entityBytes)));
}
