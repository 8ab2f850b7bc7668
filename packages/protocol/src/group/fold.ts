/**
 * Folding: the group's state is a pure function of the SET of its signed events (status-go
 * Group.init, made per event and causal). docs/GROUPS.md §5 states the rules; in short:
 *
 *   1. drop events of another chat or with clock 0; de-duplicate by id = SHA-256(signature ‖ raw)
 *   2. order by (clock, author rank, id) (event.ts compareEvents: not grindable by an author)
 *   3. link: every parent must be present, linked and earlier (clock) — else the event is pending
 *   4. apply each linked event on its own: status-go's validateEvent / processEvent, plus
 *      "removal is final": an event of a member M is void when a valid removal R of M does not
 *      causally follow it; after R, M's events count only if they causally follow a valid re-add
 *      of M that comes after R. A removal must be in line with its author's own events (no
 *      backdating below them). Rejected events are reported, one by one; the others still apply.
 *
 * Causality comes from `parents` (Umbra events). A status-go event has none: for the rule it is
 * taken to follow every event before it in the order (today's clock semantics), and as an
 * ancestor it stands for the status-go events before it up to the last one by another author.
 */
import { toHex } from '../bytes.ts';
import { isValidChatIdFor } from './chat-id.ts';
import { checkClock } from './clock.ts';
import { EventType, binaryKey, compareEvents, type GroupEvent } from './event.ts';
import { MAX_FOLD_PASSES, MAX_GROUP_EVENTS, MAX_PARENTS, MAX_PENDING_EVENTS } from './limits.ts';

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

/** Why a fold gives no group at all. */
export type FoldErrorCode = 'no-events' | 'no-chat-created';

/** Why one event was not applied (docs/GROUPS.md §5.5). */
export type RejectReason =
  /** Received under another chat id. Not stored. */
  | 'wrong-chat-id'
  /** Clock 0. Not stored. */
  | 'clock-zero'
  /** More than 120 s ahead of the receiver's clock on arrival. Not stored (it may come again). */
  | 'clock-too-far-ahead'
  /** Beyond MAX_GROUP_EVENTS. Not stored. */
  | 'too-many-events'
  /** A parent (or an ancestor) is not known yet: held as pending, applied once it arrives. */
  | 'missing-parent'
  /** A parent's clock is not below the event's. Kept; never applies. */
  | 'parent-not-earlier'
  /** Pending, but MAX_PENDING_EVENTS are already held. Not stored. */
  | 'pending-full'
  /** A CHAT_CREATED by someone the chat id does not name as creator. */
  | 'invalid-chat-id'
  /** status-go's rules (validateEvent) refuse it at its place in the order. */
  | 'not-allowed'
  /** Its author was removed before it, and it does not follow a later re-add. */
  | 'removed-author'
  /** Its author's removal does not causally follow it (a backdated or unseen event). */
  | 'concurrent-with-removal'
  /** A removal that does not follow its author's earlier events, or that her later events do not follow. */
  | 'author-fork';

/** One event that did not apply, and why. */
export interface RejectedEvent {
  readonly event: GroupEvent;
  readonly reason: RejectReason;
  readonly detail: string;
}

/** What a membership change did, for the client's history ("Alice renamed the group to X"). */
export type ChangeKind = 'created' | 'renamed' | 'color' | 'image' | 'added' | 'joined' | 'removed' | 'left' | 'promoted' | 'demoted';

export interface GroupChange {
  /** Hex event id. */
  readonly id: string;
  readonly kind: ChangeKind;
  readonly type: EventType;
  /** The member id that signed it. */
  readonly author: string;
  /** Added, removed or promoted members (empty otherwise). */
  readonly members: readonly string[];
  readonly name: string;
  readonly color: string;
  readonly image: Uint8Array;
  readonly clock: bigint;
}

export interface Folded {
  readonly ok: true;
  readonly state: GroupState;
  /** Every event to keep (applied, rejected-but-kept, pending), in fold order. */
  readonly events: readonly GroupEvent[];
  /** The events that changed (or could change) the state, in fold order. */
  readonly applied: readonly GroupEvent[];
  /** Every event that did not apply, in fold order, with its reason. */
  readonly rejected: readonly RejectedEvent[];
  /** One entry per applied event, in fold order. */
  readonly history: readonly GroupChange[];
  /** Ids of the applied events no other applied event descends from: the next event's parents. */
  readonly heads: readonly Uint8Array[];
}

export type FoldResult =
  | Folded
  | { readonly ok: false; readonly code: FoldErrorCode; readonly reason: string; readonly rejected: readonly RejectedEvent[] };

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


/** Per event object: its id and parents as map keys (folds run on every update, over the same stored objects). */
const idKeys = new WeakMap<GroupEvent, string>();
const parentKeys = new WeakMap<GroupEvent, string[]>();
function idKey(e: GroupEvent): string {
  let k = idKeys.get(e);
  if (k === undefined) idKeys.set(e, (k = binaryKey(e.id)));
  return k;
}
function parentKeysOf(e: GroupEvent): string[] {
  let k = parentKeys.get(e);
  if (k === undefined) parentKeys.set(e, (k = e.parents.map(binaryKey)));
  return k;
}
const idHex = new WeakMap<GroupEvent, string>();

/** Drop repeated events (same id, i.e. same signature and bytes), keeping the first copy. */
export function dedupeEvents(events: readonly GroupEvent[]): GroupEvent[] {
  const seen = new Set<string>();
  const out: GroupEvent[] = [];
  for (const e of events) {
    const key = idKey(e);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
  }
  return out;
}

/** @deprecated use dedupeEvents: events are identified by id (signature and bytes), not by signature alone. */
export const dedupeBySignature = dedupeEvents;

/**
 * Fold events into the group state, checking every event's clock against `nowMs` (events at
 * more than 120 s ahead are rejected and not kept). Pure otherwise: see foldEvents.
 */
export function foldGroup(chatId: string, events: readonly GroupEvent[], nowMs: number): FoldResult {
  const early: RejectedEvent[] = [];
  const inTime = events.filter((e) => {
    if (e.clock === 0n || checkClock(e.clock, nowMs) === 'ok') return true;
    early.push({ event: e, reason: 'clock-too-far-ahead', detail: `clock ${e.clock} is more than 120 s ahead` });
    return false;
  });
  return withRejected(foldEvents(chatId, inTime), early);
}

/**
 * Merge incoming events into the stored ones and fold the union. Only events not already
 * stored are checked against `nowMs`, so a stored history stays valid if the local clock later
 * moves back. An incoming event is stored (listed in `added`, and in `events`) unless it is of
 * another chat, has clock 0 or too far ahead, would exceed MAX_GROUP_EVENTS, or is pending
 * beyond MAX_PENDING_EVENTS. The result is ok whenever the union has a valid CHAT_CREATED.
 */
export function mergeGroupEvents(
  chatId: string,
  stored: readonly GroupEvent[],
  incoming: readonly GroupEvent[],
  nowMs: number,
): FoldResult & { readonly added?: readonly GroupEvent[] } {
  const known = new Set(stored.map(idKey));
  const added: GroupEvent[] = [];
  const refused: RejectedEvent[] = [];
  for (const e of incoming) {
    const key = idKey(e);
    if (known.has(key)) continue;
    known.add(key);
    const reason = receiveCheck(chatId, e, nowMs);
    if (reason !== null) refused.push({ event: e, reason, detail: `refused on arrival (${reason})` });
    else if (stored.length + added.length >= MAX_GROUP_EVENTS) refused.push({ event: e, reason: 'too-many-events', detail: `the group already holds ${MAX_GROUP_EVENTS} events` });
    else added.push(e);
  }
  const folded = foldEvents(chatId, [...stored, ...added]);
  // Pending events never apply and are nobody's linked ancestor: dropping the newest of them
  // changes no state, so the cap needs no second fold.
  const pending = folded.rejected.filter((r) => r.reason === 'missing-parent');
  if (pending.length > MAX_PENDING_EVENTS) {
    const addedKeys = new Set(added.map((e) => binaryKey(e.id)));
    const over = new Set<string>();
    for (const r of pending.slice(MAX_PENDING_EVENTS)) {
      const key = binaryKey(r.event.id);
      if (addedKeys.has(key)) over.add(key);
    }
    if (over.size > 0) return withRejected(dropPending(folded, over), refused, added.filter((e) => !over.has(binaryKey(e.id))));
  }
  return withRejected(folded, refused, added);
}

function receiveCheck(chatId: string, e: GroupEvent, nowMs: number): RejectReason | null {
  if (e.chatId !== chatId) return 'wrong-chat-id';
  const clock = checkClock(e.clock, nowMs);
  return clock === 'ok' ? null : clock;
}

function dropPending(folded: FoldResult, over: ReadonlySet<string>): FoldResult {
  const keep = (e: GroupEvent) => !over.has(binaryKey(e.id));
  const rejected = folded.rejected.map((r) => (keep(r.event) ? r : { ...r, reason: 'pending-full' as const, detail: `${MAX_PENDING_EVENTS} pending events are already held` }));
  return folded.ok ? { ...folded, events: folded.events.filter(keep), rejected } : { ...folded, rejected };
}

function withRejected<T extends FoldResult>(folded: T, extra: readonly RejectedEvent[], added?: readonly GroupEvent[]): T & { readonly added?: readonly GroupEvent[] } {
  const out = extra.length === 0 ? folded : { ...folded, rejected: [...extra, ...folded.rejected] };
  return added === undefined ? out : { ...out, added };
}

/** One linked or unlinked event during a fold. */
interface Slot {
  readonly event: GroupEvent;
  /** Index among linked events (bit position in ancestry sets), or -1 if unlinked. */
  linked: number;
  /** Linked ancestors (bitset over linked indices); for a status-go event, the status-go events before it. */
  past: Uint32Array | null;
  /** No parents: status-go semantics (follows everything before it in the order). */
  readonly legacy: boolean;
}

/**
 * The fold proper: a pure function of the set of events (order of the input, duplicates and
 * invalid events mixed in change nothing). No clock window here: that is a receive-time filter
 * (foldGroup, mergeGroupEvents).
 */
export function foldEvents(chatId: string, input: readonly GroupEvent[]): FoldResult {
  const rejected: RejectedEvent[] = [];
  const reject = (event: GroupEvent, reason: RejectReason, detail: string) => rejected.push({ event, reason, detail });
  const candidates: GroupEvent[] = [];
  for (const e of dedupeEvents(input)) {
    if (e.chatId !== chatId) reject(e, 'wrong-chat-id', 'the event belongs to another group');
    else if (e.clock === 0n) reject(e, 'clock-zero', 'the event has clock 0');
    else candidates.push(e);
  }
  candidates.sort(compareEvents);
  for (const e of candidates.splice(MAX_GROUP_EVENTS)) reject(e, 'too-many-events', `beyond the ${MAX_GROUP_EVENTS} earliest events`);

  const slots = link(candidates, reject);
  const linkedSlots = slots.filter((s) => s.linked >= 0);
  const outcome = applyWithRemovals(chatId, linkedSlots);
  for (const [i, r] of outcome.rejections) reject(linkedSlots[i]!.event, r.reason, r.detail);

  // Report in fold order (receive-time refusals first, as they have no place in it).
  const position = new Map(candidates.map((e, i) => [e, i]));
  rejected.sort((a, b) => (position.get(a.event) ?? -1) - (position.get(b.event) ?? -1));
  const applied = outcome.applied.map((i) => linkedSlots[i]!);
  const creator = applied.find((s) => s.event.type === EventType.CHAT_CREATED);
  if (candidates.length === 0) return { ok: false, code: 'no-events', reason: 'a group needs at least its CHAT_CREATED event', rejected };
  if (creator === undefined) return { ok: false, code: 'no-chat-created', reason: 'no valid CHAT_CREATED by the creator the chat id names', rejected };
  const g = outcome.group;
  return {
    ok: true,
    events: candidates,
    applied: applied.map((s) => s.event),
    rejected,
    history: applied.map((s) => changeOf(s.event)),
    heads: headsOf(linkedSlots, outcome.applied),
    state: {
      chatId,
      name: g.name,
      color: g.color,
      image: g.image,
      members: [...g.members],
      admins: [...g.admins],
      creator: creator.event.from,
      clock: applied[applied.length - 1]!.event.clock,
    },
  };
}

/**
 * Resolve parents in fold order (parents sort first: their clocks are lower). An event is
 * linked when every parent is present, linked and earlier; its ancestry is the union of its
 * parents' ancestries and the parents themselves.
 */
function link(sorted: readonly GroupEvent[], reject: (e: GroupEvent, reason: RejectReason, detail: string) => void): Slot[] {
  const words = (sorted.length + 31) >>> 5;
  const byId = new Map<string, Slot>();
  const slots: Slot[] = [];
  // A status-go event stands for the status-go events before it, except its own author's since
  // the last one by someone else: an author cannot vouch for herself, so a parentless event she
  // backdates below one of hers that a removal built on does not become part of that removal's
  // past (docs/GROUPS.md §5.4). `legacySoFar` is every linked status-go event so far;
  // `beforeRun` is what it was after the last status-go event by someone other than `runAuthor`,
  // the author of the latest one. Both are closed under ancestry (each is a prefix of them).
  const legacySoFar = new Uint32Array(words);
  const beforeRun = new Uint32Array(words);
  let runAuthor: string | null = null;
  // One row per linked event, in one allocation; row k holds the ancestry of linked event k.
  const table = new Uint32Array(sorted.length * words);
  let linkedCount = 0;
  for (const event of sorted) {
    const slot: Slot = { event, linked: -1, past: null, legacy: event.parents.length === 0 };
    slots.push(slot);
    byId.set(idKey(event), slot);
  }
  for (const slot of slots) {
    const event = slot.event;
    if (event.parents.length > MAX_PARENTS) {
      reject(event, 'missing-parent', `more than ${MAX_PARENTS} parents`);
      continue;
    }
    const past = table.subarray(linkedCount * words, (linkedCount + 1) * words);
    if (slot.legacy) {
      past.set(event.from === runAuthor ? beforeRun : legacySoFar);
    } else {
      let problem: [RejectReason, string] | null = null;
      const keys = parentKeysOf(event);
      for (let p = 0; p < keys.length; p++) {
        const id = event.parents[p]!;
        const parent = byId.get(keys[p]!);
        if (parent === undefined || parent === slot) problem ??= ['missing-parent', `parent ${toHex(id).slice(0, 16)}… is not known`];
        else if (parent.event.clock >= event.clock) problem = ['parent-not-earlier', `parent at clock ${parent.event.clock} is not before ${event.clock}`];
        else if (parent.linked < 0) problem ??= ['missing-parent', `parent ${toHex(id).slice(0, 16)}… is itself pending or broken`];
        else {
          // A parent's ancestors all have lower linked indices than the parent itself.
          const pp = parent.past!;
          for (let w = 0, top = parent.linked >>> 5; w <= top; w++) past[w]! |= pp[w]!;
          past[parent.linked >>> 5]! |= 1 << (parent.linked & 31);
        }
      }
      if (problem !== null) {
        past.fill(0); // the row is reused by the next linked event
        reject(event, problem[0], problem[1]);
        continue;
      }
    }
    slot.linked = linkedCount++;
    slot.past = past;
    if (slot.legacy) {
      if (event.from !== runAuthor) {
        beforeRun.set(legacySoFar);
        runAuthor = event.from;
      }
      legacySoFar[slot.linked >>> 5]! |= 1 << (slot.linked & 31);
    }
  }
  return slots;
}

/** y (linked index, before x in the order) is in x's causal past. A status-go event follows everything before it. */
function follows(x: Slot, y: number): boolean {
  return x.legacy || (x.past![y >>> 5]! & (1 << (y & 31))) !== 0;
}

interface Outcome {
  readonly group: RuleGroup;
  /** Linked indices, in order. */
  readonly applied: number[];
  readonly rejections: Map<number, { reason: RejectReason; detail: string }>;
}

/**
 * Apply linked events in order. A valid removal of M voids M's events before it that it does not
 * causally follow. Voiding is retroactive, so the fold runs again without the voided events; a
 * pass voids exactly the events the removals valid in that pass void (a removal that was valid
 * only thanks to a now-void event stops voiding). It stops when a pass voids the set it ran
 * without (self-consistent), or after MAX_FOLD_PASSES passes (docs/GROUPS.md §5.4).
 */
function applyWithRemovals(chatId: string, slots: readonly Slot[]): Outcome {
  let voided = new Map<number, string>();
  let forked = new Set<number>();
  let outcome: Outcome;
  for (let pass = 1; ; pass++) {
    const found = new Map<number, string>();
    outcome = applyOnce(chatId, slots, voided, forked, found);
    // Forks are judged on the events that applied: an event that is itself void (say, one a
    // removed member signed afterwards) cannot break its author's earlier removal.
    const forks = forkedRemovals(slots, new Set(outcome.applied));
    if ((sameKeys(found, voided) && sameKeys(forks, forked)) || pass >= MAX_FOLD_PASSES) break;
    voided = found;
    forked = forks;
  }
  return outcome;
}

function sameKeys(a: ReadonlyMap<number, unknown> | ReadonlySet<number>, b: ReadonlyMap<number, unknown> | ReadonlySet<number>): boolean {
  if (a.size !== b.size) return false;
  for (const k of a.keys()) if (!b.has(k)) return false;
  return true;
}

function applyOnce(
  chatId: string,
  slots: readonly Slot[],
  voided: ReadonlyMap<number, string>,
  forked: ReadonlySet<number>,
  found: Map<number, string>,
): Outcome {
  const g = emptyRuleGroup();
  const applied: number[] = [];
  const rejections = new Map<number, { reason: RejectReason; detail: string }>();
  /** Members removed so far → the valid MEMBERS_ADDED of them since their last removal. */
  const readdedSince = new Map<string, number[]>();
  /** Per author, this pass: the events applied, and those left out as voided (they stay void only if a removal of this pass voids them again). */
  const byAuthor = new Map<string, number[]>();
  const note = (author: string, i: number) => {
    let mine = byAuthor.get(author);
    if (mine === undefined) byAuthor.set(author, (mine = []));
    mine.push(i);
  };
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i]!;
    const e = slot.event;
    const why = voided.get(i);
    if (why !== undefined) {
      rejections.set(i, { reason: 'concurrent-with-removal', detail: why });
      note(e.from, i);
      continue;
    }
    const readds = readdedSince.get(e.from);
    if (readds !== undefined && !readds.some((a) => follows(slot, a))) {
      rejections.set(i, { reason: 'removed-author', detail: `${short(e.from)} was removed and this event does not follow a later re-add` });
      continue;
    }
    if (forked.has(i)) {
      rejections.set(i, { reason: 'author-fork', detail: `the removal by ${short(e.from)} at clock ${e.clock} is not in line with its author's own events` });
      continue;
    }
    if (e.type === EventType.CHAT_CREATED && !isValidChatIdFor(chatId, e.from)) {
      rejections.set(i, { reason: 'invalid-chat-id', detail: "the chat id does not end with this CHAT_CREATED's author" });
      continue;
    }
    // Stricter than status-go: removing a non-member changes nothing, so it is not applied (nor
    // shown in the history, nor taken as a removal by the rule above).
    if (!validateEvent(g, e) || (e.type === EventType.MEMBER_REMOVED && !g.members.has(e.members[0]!) && !g.admins.has(e.members[0]!))) {
      rejections.set(i, { reason: 'not-allowed', detail: `${EventType[e.type] ?? e.type} by ${short(e.from)} at clock ${e.clock} is not allowed there` });
      continue;
    }
    processEvent(g, e);
    applied.push(i);
    note(e.from, i);
    if (e.type === EventType.MEMBER_REMOVED) {
      const target = e.members[0]!;
      readdedSince.set(target, []);
      for (const j of byAuthor.get(target) ?? []) {
        if (j !== i && !follows(slot, j)) found.set(j, `the removal of ${short(target)} at clock ${e.clock} does not follow it`);
      }
    } else if (e.type === EventType.MEMBERS_ADDED) {
      for (const m of e.members) readdedSince.get(m)?.push(i);
    }
  }
  return { group: g, applied, rejections };
}

/**
 * Removals of another member that break their author's own chain: such a removal (with parents)
 * must causally follow every earlier applied event of its author and be followed by every later
 * one. An
 * honest author's builder always names her own latest event, so this never fires for her; it
 * stops an admin backdating a removal below her own events, or leaving her own events out of
 * its past, to void the target's events she had built on (docs/GROUPS.md §5.4). Leaves are
 * exempt: there the author is the target, and letting her own later events break her leave
 * would let her cancel it (re-entry); her events around it are voided instead.
 */
function forkedRemovals(slots: readonly Slot[], applied: ReadonlySet<number>): Set<number> {
  const byAuthor = new Map<string, number[]>();
  slots.forEach((s, i) => {
    if (!applied.has(i)) return;
    let mine = byAuthor.get(s.event.from);
    if (mine === undefined) byAuthor.set(s.event.from, (mine = []));
    mine.push(i);
  });
  const forked = new Set<number>();
  slots.forEach((s, r) => {
    if (s.event.type !== EventType.MEMBER_REMOVED || s.legacy || s.event.members[0] === s.event.from) return;
    for (const j of byAuthor.get(s.event.from) ?? []) {
      if ((j < r && !follows(s, j)) || (j > r && !follows(slots[j]!, r))) {
        forked.add(r);
        return;
      }
    }
  });
  return forked;
}

/** Applied events that no applied event descends from, latest first, at most MAX_PARENTS. */
function headsOf(slots: readonly Slot[], applied: readonly number[]): Uint8Array[] {
  const words = slots.length === 0 ? 0 : slots[0]!.past!.length;
  const covered = new Uint32Array(words);
  for (const i of applied) {
    const p = slots[i]!.past!;
    for (let w = 0; w < words; w++) covered[w]! |= p[w]!;
  }
  const heads: Uint8Array[] = [];
  for (let k = applied.length - 1; k >= 0 && heads.length < MAX_PARENTS; k--) {
    const i = applied[k]!;
    if ((covered[i >>> 5]! & (1 << (i & 31))) === 0) heads.push(slots[i]!.event.id);
  }
  return heads;
}

function changeOf(e: GroupEvent): GroupChange {
  return {
    id: hexId(e),
    kind: kindOf(e),
    type: e.type,
    author: e.from,
    members: e.members,
    name: e.name,
    color: e.color,
    image: e.image,
    clock: e.clock,
  };
}

function hexId(e: GroupEvent): string {
  let h = idHex.get(e);
  if (h === undefined) idHex.set(e, (h = toHex(e.id)));
  return h;
}

function kindOf(e: GroupEvent): ChangeKind {
  switch (e.type) {
    case EventType.CHAT_CREATED:
      return 'created';
    case EventType.NAME_CHANGED:
      return 'renamed';
    case EventType.COLOR_CHANGED:
      return 'color';
    case EventType.IMAGE_CHANGED:
      return 'image';
    case EventType.MEMBERS_ADDED:
      return 'added';
    case EventType.MEMBER_JOINED:
      return 'joined';
    case EventType.MEMBER_REMOVED:
      return e.members[0] === e.from ? 'left' : 'removed';
    case EventType.ADMINS_ADDED:
      return 'promoted';
    default:
      return 'demoted';
  }
}

function short(memberId: string): string {
  return memberId.slice(0, 12) + '…';
}

/** status-go WasEverMember: a group we have never been part of is not accepted. */
export function wasEverMember(events: readonly GroupEvent[], memberId: string): boolean {
  return events.some(
    (e) => (e.type === EventType.CHAT_CREATED && e.from === memberId) || (e.type === EventType.MEMBERS_ADDED && e.members.includes(memberId)),
  );
}
