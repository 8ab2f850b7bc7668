/**
 * Folding: the group's state is a pure function of its signed events (status-go Group.init):
 *
 *   1. order the events by (clock, signature bytes)            — status-go: clock only (unstable)
 *   2. for each: same chat id, validateEvent, processEvent     — one invalid event fails the fold
 *   3. the first event is CHAT_CREATED and chat_id ends with its author's key
 *
 * validateEvent / processEvent are status-go's rules (reference/peers.md §1.6), with one
 * deliberate fix: ADMINS_ADDED needs every target to be a member (status-go's
 * stringSliceSubset only tests for overlap). The ordering tie-break is the second fix: with it,
 * every member folds the same event set to the same state whatever order it arrived in.
 */
import { isValidChatIdFor } from './chat-id.ts';
import { checkClock } from './clock.ts';
import { EventType, compareEvents, type GroupEvent } from './event.ts';
import { MAX_GROUP_EVENTS } from './limits.ts';

/** What validateEvent / processEvent read from an event. */
export interface RuleEvent {
  readonly from: string;
  readonly type: EventType;
  readonly members: readonly string[];
  readonly name: string;
  readonly color: string;
  readonly image: Uint8Array;
}

/** The mutable fold state. Sets keep insertion order (status-go's stringSet does too). */
export interface RuleGroup {
  name: string;
  color: string;
  image: Uint8Array;
  readonly admins: Set<string>;
  readonly members: Set<string>;
}

export function emptyRuleGroup(): RuleGroup {
  return { name: '', color: '', image: new Uint8Array(0), admins: new Set(), members: new Set() };
}

export interface GroupState {
  readonly chatId: string;
  readonly name: string;
  readonly color: string;
  readonly image: Uint8Array;
  /** In the order they were added. */
  readonly members: readonly string[];
  readonly admins: readonly string[];
  readonly creator: string;
  /** The highest event clock (status-go LastClockValue): the base of the next event's clock. */
  readonly clock: bigint;
}

export type FoldErrorCode =
  | 'no-events'
  | 'too-many-events'
  | 'clock-zero'
  | 'clock-too-far-ahead'
  | 'wrong-chat-id'
  | 'invalid-event'
  | 'first-not-chat-created'
  | 'invalid-chat-id';

export type FoldResult =
  | { readonly ok: true; readonly state: GroupState; readonly events: readonly GroupEvent[] }
  | { readonly ok: false; readonly code: FoldErrorCode; readonly reason: string };

/** status-go validateEvent, with fix 1 on ADMINS_ADDED. */
export function validateEvent(g: RuleGroup, e: RuleEvent): boolean {
  if (e.from.length === 0) return false;
  const isAdminOrMember = g.admins.has(e.from) || g.members.has(e.from);
  switch (e.type) {
    case EventType.CHAT_CREATED:
      return g.admins.size === 0 && g.members.size === 0;
    case EventType.NAME_CHANGED:
      return isAdminOrMember && e.name.length > 0;
    case EventType.COLOR_CHANGED:
      return isAdminOrMember && e.color.length > 0;
    case EventType.IMAGE_CHANGED:
      return isAdminOrMember && e.image.length > 0;
    case EventType.MEMBERS_ADDED:
      return isAdminOrMember;
    case EventType.MEMBER_JOINED:
      return g.members.has(e.from);
    case EventType.MEMBER_REMOVED: {
      // A member can remove themselves, or an admin can remove a non-admin.
      const target = e.members[0];
      return e.members.length === 1 && target !== undefined && (e.from === target || (g.admins.has(e.from) && !g.admins.has(target)));
    }
    case EventType.ADMINS_ADDED:
      // Fix 1: every target must be a member (status-go: at least one current member in the list).
      return g.admins.has(e.from) && e.members.length > 0 && e.members.every((m) => g.members.has(m));
    case EventType.ADMIN_REMOVED:
      return e.members.length === 1 && g.admins.has(e.from) && e.from === e.members[0];
    default:
      return false;
  }
}

/** status-go processEvent. Call only after validateEvent returned true. */
export function processEvent(g: RuleGroup, e: RuleEvent): void {
  switch (e.type) {
    case EventType.CHAT_CREATED:
      g.name = e.name;
      g.color = e.color;
      g.members.add(e.from);
      g.admins.add(e.from);
      break;
    case EventType.NAME_CHANGED:
      g.name = e.name;
      break;
    case EventType.COLOR_CHANGED:
      g.color = e.color;
      break;
    case EventType.IMAGE_CHANGED:
      g.image = e.image;
      break;
    case EventType.ADMINS_ADDED:
      for (const m of e.members) g.admins.add(m);
      break;
    case EventType.ADMIN_REMOVED:
      g.admins.delete(e.members[0]!);
      break;
    case EventType.MEMBERS_ADDED:
      for (const m of e.members) g.members.add(m);
      break;
    case EventType.MEMBER_REMOVED:
      g.admins.delete(e.members[0]!);
      g.members.delete(e.members[0]!);
      break;
    // MEMBER_JOINED changes nothing: clients "mimic auto-join".
  }
}

/** Drop repeated signatures (status-go MergeMembershipUpdateEvents), keeping the first copy. */
export function dedupeBySignature(events: readonly GroupEvent[]): GroupEvent[] {
  const seen = new Set<string>();
  const out: GroupEvent[] = [];
  for (const e of events) {
    const key = signatureKey(e);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
  }
  return out;
}

function signatureKey(e: GroupEvent): string {
  let s = '';
  for (let i = 0; i < e.signature.length; i++) s += String.fromCharCode(e.signature[i]!);
  return s;
}

/**
 * Fold a set of authenticated events into the group state. Checks every event's clock against
 * `nowMs` (reject 0 and more than 120 s ahead). Duplicates (same signature) count once.
 */
export function foldGroup(chatId: string, events: readonly GroupEvent[], nowMs: number): FoldResult {
  for (const e of events) {
    const clock = checkClock(e.clock, nowMs);
    if (clock !== 'ok') return fail(clock, `event at clock ${e.clock} rejected (${clock})`);
  }
  return foldUnchecked(chatId, dedupeBySignature(events));
}

/**
 * Merge incoming events into the stored ones (union, de-duplicated by signature) and rebuild
 * from scratch. Only events not already stored have their clock checked against `nowMs`, so a
 * stored history stays valid if the local clock later moves back. On failure nothing changes:
 * the caller keeps `stored`. `added` lists the incoming events that were new.
 */
export function mergeGroupEvents(
  chatId: string,
  stored: readonly GroupEvent[],
  incoming: readonly GroupEvent[],
  nowMs: number,
): FoldResult & { readonly added?: readonly GroupEvent[] } {
  const known = new Set(stored.map(signatureKey));
  const added: GroupEvent[] = [];
  for (const e of incoming) {
    const key = signatureKey(e);
    if (known.has(key)) continue;
    known.add(key);
    const clock = checkClock(e.clock, nowMs);
    if (clock !== 'ok') return fail(clock, `incoming event at clock ${e.clock} rejected (${clock})`);
    added.push(e);
  }
  const result = foldUnchecked(chatId, dedupeBySignature([...stored, ...added]));
  return result.ok ? { ...result, added } : result;
}

function foldUnchecked(chatId: string, unique: readonly GroupEvent[]): FoldResult {
  if (unique.length === 0) return fail('no-events', 'a group needs at least its CHAT_CREATED event');
  if (unique.length > MAX_GROUP_EVENTS) return fail('too-many-events', `${unique.length} events`);
  const sorted = [...unique].sort(compareEvents);
  const g = emptyRuleGroup();
  for (const e of sorted) {
    if (e.chatId !== chatId) return fail('wrong-chat-id', 'an event belongs to another group');
    if (e.clock === 0n) return fail('clock-zero', 'an event has clock 0');
    if (!validateEvent(g, e)) return fail('invalid-event', `invalid ${EventType[e.type] ?? e.type} event at clock ${e.clock} from ${e.from}`);
    processEvent(g, e);
  }
  const first = sorted[0]!;
  if (first.type !== EventType.CHAT_CREATED) return fail('first-not-chat-created', 'the first event is not CHAT_CREATED');
  if (!isValidChatIdFor(chatId, first.from)) return fail('invalid-chat-id', "the chat id does not end with the creator's key");
  return {
    ok: true,
    events: sorted,
    state: {
      chatId,
      name: g.name,
      color: g.color,
      image: g.image,
      members: [...g.members],
      admins: [...g.admins],
      creator: first.from,
      clock: sorted[sorted.length - 1]!.clock,
    },
  };
}

function fail(code: FoldErrorCode, reason: string): FoldResult & { ok: false } {
  return { ok: false, code, reason };
}

/** status-go WasEverMember: a group we have never been part of is not accepted. */
export function wasEverMember(events: readonly GroupEvent[], memberId: string): boolean {
  return events.some(
    (e) => (e.type === EventType.CHAT_CREATED && e.from === memberId) || (e.type === EventType.MEMBERS_ADDED && e.members.includes(memberId)),
  );
}
