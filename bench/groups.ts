/**
 * Cost of the causal group fold (issue 13) beside the fold it replaced (a script, not a test):
 *
 *   node --import tsx bench/groups.ts [--json]        (npm run bench:groups)
 *
 * A 50-member group with 1,000 events: CHAT_CREATED, 49 adds, then renames, colour changes,
 * promotions, removals with concurrent events of the removed member (voided), re-adds, and
 * pairs of concurrent events (two heads). Built with the real builders, so every event carries
 * the parents an honest client would give it.
 *
 * "old fold" is a copy of the algorithm before issue 13 (commit 9951004, fold.ts
 * foldUnchecked): sort by (clock, signature bytes), then validateEvent / processEvent in order,
 * all or nothing. It is kept here only for this comparison, with the same validateEvent and
 * processEvent the new fold uses. It folds the same events (their parents are ignored).
 */
import { group, nobleProvider } from '../packages/protocol/src/index.ts';

const MEMBERS = 50;
const EVENTS = 1000;
const NOW = Date.UTC(2026, 0, 1);
const json = process.argv.includes('--json');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Milliseconds per call of one run of `op` lasting ~runMs. */
function runOnce(op: () => unknown, runMs: number): number {
  let n = 0;
  const start = performance.now();
  let elapsed: number;
  do {
    op();
    n++;
    elapsed = performance.now() - start;
  } while (elapsed < runMs);
  return elapsed / n;
}

/**
 * Milliseconds per call of each op, measured in alternating rounds (the machine is shared: a
 * busy spell then hits every op alike); median over the rounds.
 */
function alternate<K extends string>(ops: Record<K, () => unknown>, rounds = 9, runMs = 200): Record<K, number> {
  const names = Object.keys(ops) as K[];
  for (const k of names) for (let i = 0; i < 3; i++) ops[k]();
  const costs = Object.fromEntries(names.map((k) => [k, [] as number[]])) as unknown as Record<K, number[]>;
  for (let r = 0; r < rounds; r++) for (const k of names) costs[k].push(runOnce(ops[k], runMs));
  return Object.fromEntries(names.map((k) => [k, median(costs[k])])) as Record<K, number>;
}

function must(r: group.BuildResult): Extract<group.BuildResult, { ok: true }> {
  if (!r.ok) throw new Error(`${r.code}: ${r.reason}`);
  return r;
}

/** The pre-issue-13 fold, verbatim in substance: clock + signature order, all or nothing. */
function oldFold(chatId: string, events: readonly group.GroupEvent[]): group.GroupState | null {
  const seen = new Set<string>();
  const unique = events.filter((e) => {
    const k = group.binaryKey(e.signature);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  const sorted = [...unique].sort((a, b) => (a.clock !== b.clock ? (a.clock < b.clock ? -1 : 1) : group.compareBytes(a.signature, b.signature)));
  const g = group.emptyRuleGroup();
  for (const e of sorted) {
    if (e.chatId !== chatId || e.clock === 0n || !group.validateEvent(g, e)) return null;
    group.processEvent(g, e);
  }
  const first = sorted[0]!;
  if (first.type !== group.EventType.CHAT_CREATED || !group.isValidChatIdFor(chatId, first.from)) return null;
  return { chatId, name: g.name, color: g.color, image: g.image, members: [...g.members], admins: [...g.admins], creator: first.from, clock: sorted.at(-1)!.clock };
}

function keyFor(n: number): group.GroupKeyPair {
  const sk = new Uint8Array(32);
  sk[0] = 0x44;
  sk[30] = n >> 8;
  sk[31] = n & 0xff;
  return group.groupKeyFromSecret(sk);
}

/** The 1,000-event history, and how many of its events the new fold rejects. */
function buildHistory() {
  const keys = Array.from({ length: MEMBERS }, (_, i) => keyFor(i + 1));
  const admin = keys[0]!;
  let now = NOW;
  const c = must(group.createGroup(nobleProvider, { name: 'fifty', nowMs: now, key: admin }));
  const chatId = c.state.chatId;
  let events: readonly group.GroupEvent[] = c.events;
  const at = (key: group.GroupKeyPair) => ({ chatId, events, key });
  const admins = new Set([admin.id]);
  const step = (r: group.BuildResult) => {
    const ok = must(r);
    events = ok.events;
    for (const a of ok.state.admins) admins.add(a);
  };
  for (let i = 1; i < MEMBERS; i++) step(group.addMembers(at(admin), [keys[i]!.id], (now += 10)));
  let i = 0;
  while (events.length < EVENTS) {
    i++;
    now += 1_000;
    const member = keys[1 + (i % (MEMBERS - 1))]!;
    if (i % 50 === 0 && !admins.has(member.id)) {
      // A removal, with a concurrent rename by the removed member (voided), then a re-add.
      const base = events;
      const rename = must(group.rename({ chatId, events: base, key: member }, `mine ${i}`, now)).newEvents;
      step(group.removeMember(at(admin), member.id, now));
      events = must(group.mergeGroupEvents(chatId, events, rename, now) as group.BuildResult).events;
      step(group.addMembers(at(admin), [member.id], (now += 1_000)));
    } else if (i % 7 === 0) {
      // Two members change things concurrently: the next event has two parents.
      const base = events;
      const a = must(group.setColor({ chatId, events: base, key: member }, `#${i}`, now)).newEvents;
      const other = keys[1 + ((i + 3) % (MEMBERS - 1))]!;
      const b = must(group.rename({ chatId, events: base, key: other }, `name ${i}`, now)).newEvents;
      events = must(group.mergeGroupEvents(chatId, base, [...a, ...b], now) as group.BuildResult).events;
    } else if (i % 13 === 0) {
      step(group.promote(at(admin), [member.id], now));
    } else {
      step(group.rename(at(member), `name ${i}`, now));
    }
  }
  return { chatId, events: events.slice(0, EVENTS), now };
}

const t0 = performance.now();
const { chatId, events, now } = buildHistory();
const buildMs = performance.now() - t0;
const f = group.foldEvents(chatId, events);
if (!f.ok) throw new Error(f.reason);
const parents = events.reduce((n, e) => n + e.parents.length, 0);

const last = events.at(-1)!;
const stored = events.slice(0, -1);
const oldState = oldFold(chatId, events);
// The old fold stops at the first event it finds invalid: time it also on the events the new
// fold applied (a history both accept), so both do the whole walk.
const clean = f.applied;
const oldCleanState = oldFold(chatId, clean);
const t = alternate({
  old: () => oldFold(chatId, events),
  new: () => group.foldEvents(chatId, events),
  merge: () => group.mergeGroupEvents(chatId, stored, [last], now),
  oldClean: () => oldFold(chatId, clean),
  newClean: () => group.foldEvents(chatId, clean),
});
const [oldMs, newMs, mergeMs, oldCleanMs, newCleanMs] = [t.old, t.new, t.merge, t.oldClean, t.newClean];

const figures = {
  members: MEMBERS,
  events: events.length,
  parentsPerEvent: parents / events.length,
  applied: f.applied.length,
  rejected: f.rejected.length,
  oldFoldAccepts: oldState !== null,
  oldFoldMs: oldMs,
  newFoldMs: newMs,
  oldUsPerEvent: (oldMs * 1000) / events.length,
  newUsPerEvent: (newMs * 1000) / events.length,
  ratio: newMs / oldMs,
  mergeOneNewMs: mergeMs,
  cleanEvents: clean.length,
  oldFoldAcceptsClean: oldCleanState !== null,
  oldCleanMs,
  newCleanMs,
  oldCleanUsPerEvent: (oldCleanMs * 1000) / clean.length,
  newCleanUsPerEvent: (newCleanMs * 1000) / clean.length,
  buildSeconds: buildMs / 1000,
};
if (json) console.log(JSON.stringify(figures));
else {
  console.log(`group fold, ${MEMBERS} members, ${events.length} events (${figures.parentsPerEvent.toFixed(2)} parents/event; ${f.applied.length} applied, ${f.rejected.length} rejected by the new rules)`);
  console.log(`  old fold (clock + signature order, all or nothing): ${oldMs.toFixed(3)} ms = ${figures.oldUsPerEvent.toFixed(2)} µs/event${oldState === null ? ' (it rejects this history as a whole)' : ''}`);
  console.log(`  new fold (causal, per event, diagnostics):          ${newMs.toFixed(3)} ms = ${figures.newUsPerEvent.toFixed(2)} µs/event (${figures.ratio.toFixed(2)}× the old)`);
  console.log(`  merge one new event into the 999 stored:            ${mergeMs.toFixed(3)} ms`);
  console.log(`  on the ${clean.length} events the new fold applied${oldCleanState === null ? ' (the old fold still rejects them)' : ' (both accept them)'}:`);
  console.log(`    old fold ${oldCleanMs.toFixed(3)} ms = ${figures.oldCleanUsPerEvent.toFixed(2)} µs/event; new fold ${newCleanMs.toFixed(3)} ms = ${figures.newCleanUsPerEvent.toFixed(2)} µs/event (${(newCleanMs / oldCleanMs).toFixed(2)}×)`);
  console.log(`  (building the history with the builders took ${figures.buildSeconds.toFixed(1)} s)`);
}
