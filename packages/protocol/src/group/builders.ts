/**
 * Builders: sign one new event as the local member and check it against the folded state, so
 * the client never sends an event its peers would reject. Each returns the new event (to send),
 * the full ordered event list (to store) and the new state; or a typed error.
 *
 * Clocks: next = last < now ? now + 60000 : last + 1, where last = the group's highest applied
 * clock. Parents: the ids of the current heads (every applied event no other applied event
 * descends from), so the new event's clock is above each parent's.
 */
import type { CryptoProvider } from '../crypto/provider.ts';
import { newChatId } from './chat-id.ts';
import { nextClock } from './clock.ts';
import { EventType, signEvent, type EventFields, type GroupEvent } from './event.ts';
import { foldGroup, mergeGroupEvents, type FoldErrorCode, type Folded, type GroupState } from './fold.ts';
import { generateGroupKey, isMemberId, type GroupKeyPair } from './keys.ts';
import { MAX_PARENTS } from './limits.ts';

/** The local member's view of a group: its events and its own group key. */
export interface GroupContext {
  readonly chatId: string;
  readonly events: readonly GroupEvent[];
  readonly key: GroupKeyPair;
}

export type BuildErrorCode = FoldErrorCode | 'invalid-argument' | 'not-allowed';

export type BuildResult =
  | {
      readonly ok: true;
      /** The events to send (one, or two for createGroup). */
      readonly newEvents: readonly GroupEvent[];
      /** Every event, ordered: what to store and what an invite carries. */
      readonly events: readonly GroupEvent[];
      readonly state: GroupState;
      /** The fold after the new events (history, heads, diagnostics). */
      readonly folded: Folded;
    }
  | { readonly ok: false; readonly code: BuildErrorCode; readonly reason: string };

export interface CreateGroupOptions {
  readonly name: string;
  readonly color?: string;
  /** Member ids ("0x04…" group keys) to add right away, besides the creator. */
  readonly members?: readonly string[];
  readonly nowMs: number;
  /** Defaults to a fresh key: one key per group. */
  readonly key?: GroupKeyPair;
}

/** CHAT_CREATED, then MEMBERS_ADDED at the next clock (status-go CreateGroupChatWithMembers). */
export function createGroup(crypto: CryptoProvider, options: CreateGroupOptions): BuildResult & { readonly key?: GroupKeyPair } {
  const key = options.key ?? generateGroupKey(crypto);
  if (options.name.length === 0) return invalid('a group needs a name');
  const members = options.members ?? [];
  if (!members.every(isMemberId)) return invalid('member ids are "0x04" + 128 lowercase hex digits');
  const chatId = newChatId(crypto, key.id);
  const createdClock = nextClock(0n, options.nowMs);
  const created = signEvent(chatId, key, {
    type: EventType.CHAT_CREATED,
    clock: createdClock,
    name: options.name,
    ...(options.color !== undefined ? { color: options.color } : {}),
  });
  const newEvents = [created];
  const others = members.filter((m) => m !== key.id);
  if (others.length > 0) {
    newEvents.push(
      signEvent(chatId, key, { type: EventType.MEMBERS_ADDED, clock: nextClock(createdClock, options.nowMs), members: others, parents: [created.id] }),
    );
  }
  // The creator's own clock may be up to 60 s + 1 ms ahead of now: fold with that allowance.
  const folded = foldGroup(chatId, newEvents, options.nowMs);
  if (!folded.ok) return folded;
  if (folded.applied.length !== newEvents.length) return { ok: false, code: 'not-allowed', reason: folded.rejected[0]?.detail ?? 'an event was rejected' };
  return { ok: true, newEvents, events: folded.events, state: folded.state, folded, key };
}

export function rename(ctx: GroupContext, name: string, nowMs: number): BuildResult {
  if (name.length === 0) return invalid('a name cannot be empty');
  return append(ctx, nowMs, { type: EventType.NAME_CHANGED, name });
}

export function setColor(ctx: GroupContext, color: string, nowMs: number): BuildResult {
  if (color.length === 0) return invalid('a colour cannot be empty');
  return append(ctx, nowMs, { type: EventType.COLOR_CHANGED, color });
}

export function setImage(ctx: GroupContext, image: Uint8Array, nowMs: number): BuildResult {
  if (image.length === 0) return invalid('an image cannot be empty');
  return append(ctx, nowMs, { type: EventType.IMAGE_CHANGED, image });
}

export function addMembers(ctx: GroupContext, members: readonly string[], nowMs: number): BuildResult {
  if (members.length === 0 || !members.every(isMemberId)) return invalid('member ids are "0x04" + 128 lowercase hex digits');
  return append(ctx, nowMs, { type: EventType.MEMBERS_ADDED, members });
}

/** An admin removes a non-admin member. */
export function removeMember(ctx: GroupContext, member: string, nowMs: number): BuildResult {
  if (!isMemberId(member)) return invalid('not a member id');
  return append(ctx, nowMs, { type: EventType.MEMBER_REMOVED, members: [member] });
}

/** ADMINS_ADDED: an admin promotes members (every target must already be a member). */
export function promote(ctx: GroupContext, members: readonly string[], nowMs: number): BuildResult {
  if (members.length === 0 || !members.every(isMemberId)) return invalid('member ids are "0x04" + 128 lowercase hex digits');
  return append(ctx, nowMs, { type: EventType.ADMINS_ADDED, members });
}

/** ADMIN_REMOVED is only valid for oneself. */
export function demoteSelf(ctx: GroupContext, nowMs: number): BuildResult {
  return append(ctx, nowMs, { type: EventType.ADMIN_REMOVED, members: [ctx.key.id] });
}

/** MEMBER_REMOVED of oneself. */
export function leave(ctx: GroupContext, nowMs: number): BuildResult {
  return append(ctx, nowMs, { type: EventType.MEMBER_REMOVED, members: [ctx.key.id] });
}

/** MEMBER_JOINED (obsolete in status-go, still valid for a member; changes no state). */
export function join(ctx: GroupContext, nowMs: number): BuildResult {
  return append(ctx, nowMs, { type: EventType.MEMBER_JOINED });
}

function append(ctx: GroupContext, nowMs: number, fields: Omit<EventFields, 'clock'>): BuildResult {
  // The stored history is trusted as folded before; only the new event's clock is checked.
  const current = mergeGroupEvents(ctx.chatId, ctx.events, [], nowMs);
  if (!current.ok) return current;
  const parents = parentsFor(current, ctx.key.id);
  // Above every parent: an own event that did not apply may be later than the applied ones.
  let last = current.state.clock;
  for (const e of current.events) if (parents.some((p) => p === e.id) && e.clock > last) last = e.clock;
  const event = signEvent(ctx.chatId, ctx.key, { ...fields, clock: nextClock(last, nowMs), parents });
  const next = mergeGroupEvents(ctx.chatId, current.events, [event], nowMs);
  if (!next.ok) return next;
  if (!next.applied.includes(event)) {
    const why = next.rejected.find((r) => r.event === event);
    return { ok: false, code: 'not-allowed', reason: `not allowed: ${why?.detail ?? 'the event does not apply'}` };
  }
  return { ok: true, newEvents: [event], events: next.events, state: next.state, folded: next };
}

/**
 * The heads, plus the author's own latest event when no head covers it (it may have been
 * rejected or voided since): an author's events then always form a chain, which removals
 * require (fold.ts forkedRemovals). Capped at MAX_PARENTS, heads first.
 */
function parentsFor(folded: Folded, self: string): Uint8Array[] {
  const parents = [...folded.heads];
  let own: GroupEvent | undefined;
  for (const e of folded.events) if (e.from === self && !folded.rejected.some((r) => r.event === e && (r.reason === 'missing-parent' || r.reason === 'parent-not-earlier'))) own = e;
  if (own !== undefined && !folded.applied.includes(own) && parents.length < MAX_PARENTS) parents.push(own.id);
  return parents;
}

function invalid(reason: string): BuildResult & { ok: false } {
  return { ok: false, code: 'invalid-argument', reason };
}
