/**
 * Where we stand in a group after a fold, and what the fold changed (docs/GROUPS.md, "Client"):
 * pure decisions over fold results, so every client reports the same changes and reaches the
 * same status from the same events. The client keeps the record and the I/O.
 */
import { constantTimeEqual, toHex } from '../bytes.ts';
import type { CryptoProvider } from '../crypto/provider.ts';
import type { GroupEvent } from './event.ts';
import { foldGroup, mergeGroupEvents, type Folded, type GroupChange, type GroupState, type RejectedEvent } from './fold.ts';
import { verifyIntroduction, type DecodedGroupInvite } from './invite.ts';

/** Our standing in a group: invited (not accepted), joining (accepted, not added yet), member, left, removed. */
export type MembershipStatus = 'invited' | 'joining' | 'member' | 'left' | 'removed';

/**
 * Our status once a fold says whether our key is a member. Joining becomes member when we are
 * added; a member becomes removed when we are not in the list; 'removed' becomes member again
 * when a folded event adds our same key back. Invited and left do not move with the fold.
 */
export function statusAfterFold(status: MembershipStatus, inGroup: boolean): MembershipStatus {
  if (inGroup && (status === 'joining' || status === 'member' || status === 'removed')) return 'member';
  if (!inGroup && status === 'member') return 'removed';
  return status;
}

/** What the group looked like before a new fold. */
export interface FoldBefore {
  readonly state: GroupState;
  readonly history: readonly GroupChange[];
  /** Ids (hex) of the events the previous fold rejected (each is reported once). */
  readonly rejected: ReadonlySet<string>;
}

export interface FoldDelta {
  /** Changes applied now that were not before, in fold order. */
  readonly applied: readonly GroupChange[];
  /**
   * Events rejected for the first time (a later removal can undo one that had applied), in
   * fold order. Pending events (a parent not here yet) are not refusals and never appear.
   */
  readonly rejected: readonly RejectedEvent[];
  /** Name, colour, image, members or admins differ. */
  readonly stateChanged: boolean;
}

/** The difference a fold makes, as a client reports it ('group-change', 'group-rejected', 'group-updated'). */
export function foldDelta(before: FoldBefore, after: Folded): FoldDelta {
  const known = new Set(before.history.map((h) => h.id));
  const applied = after.history.filter((h) => !known.has(h.id));
  const rejected = after.rejected.filter((r) => r.reason !== 'missing-parent' && !before.rejected.has(toHex(r.event.id)));
  const s = before.state;
  const t = after.state;
  const stateChanged =
    s.name !== t.name || s.members.join() !== t.members.join() || s.admins.join() !== t.admins.join() || s.color !== t.color || s.image.length !== t.image.length || !s.image.every((b, i) => b === t.image[i]);
  return { applied, rejected, stateChanged };
}

export interface ReinvitationInput {
  readonly chatId: string;
  /** The events we hold for the group. */
  readonly held: readonly GroupEvent[];
  readonly invite: DecodedGroupInvite;
  /** Every member id we have had in this group (current and former keys). */
  readonly ours: ReadonlySet<string>;
  /** The identity key of the session the invite arrived on. */
  readonly peerIdentity: Uint8Array;
  readonly nowMs: number;
}

/**
 * Whether an invite for a group we are out of (removed or left) is a new invitation: built after
 * we left, so its own events, folded alone, list none of our keys; and it carries its sender's
 * binding for this session, the sender being a member by the invite's events AND by everything
 * we hold (not someone whose removal we saw). A hello or card relay sent before our removal
 * still lists us, so it is not mistaken for one.
 */
export function isReinvitation(crypto: CryptoProvider, input: ReinvitationInput): boolean {
  const alone = foldGroup(input.chatId, input.invite.events, input.nowMs);
  if (!alone.ok || alone.state.members.some((m) => input.ours.has(m))) return false;
  const merged = mergeGroupEvents(input.chatId, input.held, input.invite.events, input.nowMs);
  if (!merged.ok) return false;
  return input.invite.introductions.some((intro) => {
    const checked = verifyIntroduction(crypto, intro, alone.state, input.nowMs);
    return checked.ok && constantTimeEqual(checked.value.identityKey, input.peerIdentity) && merged.state.members.includes(checked.value.memberId);
  });
}
