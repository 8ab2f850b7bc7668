/**
 * GroupInvite { chat_id = 1; events = 2 (verbatim); introductions = 3 }, sent by the adder inside
 * the pairwise session: to a new member (with an introduction for every other member), and to
 * existing members (with the new member's introduction), so that every pair can open a session.
 *
 * An introduction = the member's GroupBinding + either a relationship invitation string whose
 * identity key is the binding's identity key (to open a new session), or endpoints (for a
 * relationship the recipient already has with that identity). Introductions that fail are
 * reported, not fatal: the client shows those members as pending. Bad events are fatal.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { CryptoProvider } from '../crypto/provider.ts';
import { constantTimeEqual } from '../bytes.ts';
import { parseInvitation, type ParsedInvitation, INVITATION_PREFIX } from '../invitation.ts';
import type { DeliveryEndpoint } from '../wire/gen/umbra/v1/invitation_pb.ts';
import {
  GroupEndpointsSchema,
  GroupIntroductionSchema,
  GroupInviteSchema,
  type GroupBinding,
  type GroupIntroduction,
} from '../wire/gen/umbra/v1/group_v1_pb.ts';
import { hasBindingShape, verifyGroupBinding, type BindingError } from './binding.ts';
import { eventWireBytes, type EventDecodeError, type GroupEvent } from './event.ts';
import { foldGroup, type FoldErrorCode, type Folded, type GroupState } from './fold.ts';
import { MAX_CHAT_ID_CHARS, MAX_GROUP_INVITE_BYTES, MAX_INTRO_ENDPOINTS, MAX_INTRODUCTIONS, MAX_INVITATION_CHARS } from './limits.ts';
import { decodeEventList, type DecodeResult } from './message.ts';

export type { GroupIntroduction };

export interface IntroductionInput {
  readonly binding: GroupBinding;
  /** "umbra_chatintro_1_…" with the binding's identity key. */
  readonly invitation?: string;
  readonly endpoints?: readonly DeliveryEndpoint[];
}

export interface DecodedGroupInvite {
  readonly chatId: string;
  readonly events: readonly GroupEvent[];
  readonly introductions: readonly GroupIntroduction[];
}

export type InviteDecodeError =
  | 'invite-too-large'
  | 'invite-malformed'
  | 'invite-bad-chat-id'
  | 'invite-too-many-introductions'
  | 'invite-bad-introduction'
  | 'update-too-many-events'
  | EventDecodeError;

export function encodeGroupInvite(chatId: string, events: readonly GroupEvent[], introductions: readonly IntroductionInput[]): Uint8Array {
  return toBinary(
    GroupInviteSchema,
    create(GroupInviteSchema, {
      chatId,
      events: events.map(eventWireBytes),
      introductions: introductions.map((i) =>
        create(GroupIntroductionSchema, {
          binding: i.binding,
          contact:
            i.invitation !== undefined
              ? { case: 'invitation', value: i.invitation }
              : i.endpoints !== undefined
                ? { case: 'endpoints', value: create(GroupEndpointsSchema, { endpoints: [...i.endpoints] }) }
                : { case: undefined },
        }),
      ),
    }),
  );
}

/** Decode with limits and authenticate the events (not the rules, not the introductions). Never throws. */
export function decodeGroupInvite(bytes: Uint8Array, known: readonly GroupEvent[] = []): DecodeResult<DecodedGroupInvite, InviteDecodeError> {
  if (bytes.length > MAX_GROUP_INVITE_BYTES) return { ok: false, code: 'invite-too-large' };
  let inv;
  try {
    inv = fromBinary(GroupInviteSchema, bytes, { readUnknownFields: false });
  } catch {
    return { ok: false, code: 'invite-malformed' };
  }
  if (inv.chatId.length === 0 || inv.chatId.length > MAX_CHAT_ID_CHARS) return { ok: false, code: 'invite-bad-chat-id' };
  if (inv.introductions.length > MAX_INTRODUCTIONS) return { ok: false, code: 'invite-too-many-introductions' };
  for (let i = 0; i < inv.introductions.length; i++) {
    const intro = inv.introductions[i]!;
    const contact = intro.contact;
    const ok =
      intro.binding !== undefined &&
      hasBindingShape(intro.binding) &&
      (contact.case !== 'invitation' || (contact.value.length <= MAX_INVITATION_CHARS && contact.value.startsWith(INVITATION_PREFIX))) &&
      (contact.case !== 'endpoints' ||
        (contact.value.endpoints.length <= MAX_INTRO_ENDPOINTS && contact.value.endpoints.every((e) => e.endpoint.case !== undefined)));
    if (!ok) return { ok: false, code: 'invite-bad-introduction', index: i };
  }
  const events = decodeEventList(inv.chatId, inv.events, known);
  if (!events.ok) return events;
  return { ok: true, value: { chatId: inv.chatId, events: events.value, introductions: inv.introductions } };
}

export interface VerifiedIntroduction {
  readonly memberId: string;
  readonly identityKey: Uint8Array;
  readonly contact:
    | { readonly case: 'invitation'; readonly text: string; readonly invitation: ParsedInvitation }
    | { readonly case: 'endpoints'; readonly endpoints: readonly DeliveryEndpoint[] }
    | { readonly case: 'none' };
}

export type IntroductionError = BindingError | 'introduction-not-a-member' | 'introduction-bad-invitation' | 'introduction-identity-mismatch';

/** Check one introduction against the folded group. Never throws. */
export function verifyIntroduction(
  crypto: CryptoProvider,
  intro: GroupIntroduction,
  state: GroupState,
  nowMs: number,
): { ok: true; value: VerifiedIntroduction } | { ok: false; code: IntroductionError; memberId?: string } {
  if (intro.binding === undefined) return { ok: false, code: 'binding-malformed' };
  const binding = verifyGroupBinding(crypto, intro.binding, state.chatId);
  if (!binding.ok) return binding;
  const { memberId, identityKey } = binding;
  if (!state.members.includes(memberId)) return { ok: false, code: 'introduction-not-a-member', memberId };
  const contact = intro.contact;
  if (contact.case === 'invitation') {
    let parsed: ParsedInvitation;
    try {
      parsed = parseInvitation(crypto, contact.value, nowMs);
    } catch {
      return { ok: false, code: 'introduction-bad-invitation', memberId };
    }
    if (!constantTimeEqual(parsed.identityKey, identityKey)) return { ok: false, code: 'introduction-identity-mismatch', memberId };
    return { ok: true, value: { memberId, identityKey, contact: { case: 'invitation', text: contact.value, invitation: parsed } } };
  }
  if (contact.case === 'endpoints') {
    return { ok: true, value: { memberId, identityKey, contact: { case: 'endpoints', endpoints: contact.value.endpoints } } };
  }
  return { ok: true, value: { memberId, identityKey, contact: { case: 'none' } } };
}

export type OpenInviteResult =
  | {
      readonly ok: true;
      readonly state: GroupState;
      readonly events: readonly GroupEvent[];
      readonly introductions: readonly VerifiedIntroduction[];
      /** Introductions that failed: those members stay pending until introduced again. */
      readonly rejected: readonly { readonly index: number; readonly code: IntroductionError; readonly memberId?: string }[];
      /** The fold of the invite's events: events that did not apply are in folded.rejected. */
      readonly folded: Folded;
    }
  | { readonly ok: false; readonly code: InviteDecodeError | FoldErrorCode | 'not-a-member'; readonly reason: string };

/**
 * Decode, authenticate and fold an invite, then verify its introductions. With `self` (our
 * member id for this group), an invite to a group we are not a member of is refused.
 */
export function openGroupInvite(crypto: CryptoProvider, bytes: Uint8Array, options: { nowMs: number; self?: string }): OpenInviteResult {
  const decoded = decodeGroupInvite(bytes);
  if (!decoded.ok) return { ok: false, code: decoded.code, reason: `invite rejected: ${decoded.code}${decoded.index !== undefined ? ` at ${decoded.index}` : ''}` };
  const { chatId, events } = decoded.value;
  const folded = foldGroup(chatId, events, options.nowMs);
  if (!folded.ok) return folded;
  if (options.self !== undefined && !folded.state.members.includes(options.self)) {
    return { ok: false, code: 'not-a-member', reason: 'the invite is for a group we are not a member of' };
  }
  const introductions: VerifiedIntroduction[] = [];
  const rejected: { index: number; code: IntroductionError; memberId?: string }[] = [];
  decoded.value.introductions.forEach((intro, index) => {
    const checked = verifyIntroduction(crypto, intro, folded.state, options.nowMs);
    if (checked.ok) introductions.push(checked.value);
    else rejected.push({ index, code: checked.code, ...(checked.memberId !== undefined ? { memberId: checked.memberId } : {}) });
  });
  return { ok: true, state: folded.state, events: folded.events, introductions, rejected, folded };
}
