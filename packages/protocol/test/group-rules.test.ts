/**
 * Conformance: status-go's TestGroupValidateEvent (23 cases) and TestGroupProcessEvent (9 cases)
 * from protocol/v1/membership_update_message_test.go, with real secp256k1 keys in place of the
 * pseudo keys ("0xabc", "0x123", …); then the two deliberate fixes, and the fold-level rules.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { group, nobleProvider } from '../src/index.ts';

const { EventType } = group;
type RuleEvent = group.RuleEvent;

/** Deterministic keys standing in for status-go's pseudo keys. */
function keyFor(n: number): group.GroupKeyPair {
  const sk = new Uint8Array(32);
  sk[31] = n;
  sk[0] = 0x11;
  return group.groupKeyFromSecret(sk);
}
const K = { abc: keyFor(1), def: keyFor(2), ghi: keyFor(3), x123: keyFor(4), x456: keyFor(5) };
const abc = K.abc.id,
  def = K.def.id,
  ghi = K.ghi.id,
  x123 = K.x123.id,
  x456 = K.x456.id;

function ruleGroup(admins: string[] = [], members: string[] = [], name = '', color = '', image = new Uint8Array(0)): group.RuleGroup {
  return { name, color, image, admins: new Set(admins), members: new Set(members) };
}
function ev(type: group.EventType, from: string, f: Partial<Omit<RuleEvent, 'from' | 'type'>> = {}): RuleEvent {
  return { from, type, members: f.members ?? [], name: f.name ?? '', color: f.color ?? '', image: f.image ?? new Uint8Array(0) };
}
const chatCreated = (from: string) => ev(EventType.CHAT_CREATED, from, { name: 'test', color: '#fa6565' });
const nameChanged = (from: string, name = 'new-name') => ev(EventType.NAME_CHANGED, from, { name });
const colorChanged = (from: string) => ev(EventType.COLOR_CHANGED, from, { color: '#7cda00' });
const imageChanged = (from: string) => ev(EventType.IMAGE_CHANGED, from, { image: Uint8Array.of(1, 2, 3) });
const membersAdded = (from: string, members: string[]) => ev(EventType.MEMBERS_ADDED, from, { members });
const memberJoined = (from: string) => ev(EventType.MEMBER_JOINED, from);
const memberRemoved = (from: string, member: string) => ev(EventType.MEMBER_REMOVED, from, { members: [member] });
const adminsAdded = (from: string, members: string[]) => ev(EventType.ADMINS_ADDED, from, { members });
const adminRemoved = (from: string, admin: string) => ev(EventType.ADMIN_REMOVED, from, { members: [admin] });

describe('TestGroupValidateEvent (status-go, all 23 cases)', () => {
  const cases: [string, group.RuleGroup, RuleEvent, boolean][] = [
    ['chat-created with empty admins and members', ruleGroup(), chatCreated(abc), true],
    ['chat-created with existing admins', ruleGroup([abc]), chatCreated(abc), false],
    ['chat-created with existing members', ruleGroup([], [abc]), chatCreated(abc), false],
    ['name-changed allowed because from is admin', ruleGroup([abc]), nameChanged(abc), true],
    ['name-changed allowed because from is member', ruleGroup([abc], [x123]), nameChanged(x123), true],
    ['color-changed allowed because from is admin', ruleGroup([abc]), colorChanged(abc), true],
    ['color-changed allowed because from is member', ruleGroup([abc], [x123]), colorChanged(x123), true],
    ['image-changed allowed because from is admin', ruleGroup([abc]), imageChanged(abc), true],
    ['image-changed not allowed for non-admins', ruleGroup(), imageChanged(abc), false],
    ['members-added allowed because from is admin', ruleGroup([abc]), membersAdded(abc, [x123]), true],
    ['members-added not allowed because from is member (sic: allowed)', ruleGroup([abc], [x123]), membersAdded(x123, [x123]), true],
    ['member-removed allowed because removing themselves', ruleGroup(), memberRemoved(abc, abc), true],
    ['member-removed allowed because from is admin', ruleGroup([abc], [x123]), memberRemoved(abc, x123), true],
    ['member-removed not allowed for non-admins', ruleGroup([abc], [x123, x456]), memberRemoved(x123, x456), false],
    ['member-joined must be in members', ruleGroup([], [abc]), memberJoined(abc), true],
    ['member-joined not valid because not in members', ruleGroup(), memberJoined(abc), false],
    ['member-joined not valid because from differs from the event', ruleGroup(), memberJoined(def), false],
    ['admins-added allowed because originating from other admin', ruleGroup([abc, x123], [def, ghi]), adminsAdded(abc, [def]), true],
    ['admins-added not allowed because not from admin', ruleGroup([x123], [def, ghi]), adminsAdded(abc, [def]), false],
    ['admins-added not allowed because not in members', ruleGroup([abc, x123], [ghi]), adminsAdded(abc, [def]), false],
    ['admin-removed allowed because is admin and removes themselves', ruleGroup([abc]), adminRemoved(abc, abc), true],
    ['admin-removed not allowed because not themselves', ruleGroup([abc, def]), adminRemoved(abc, def), false],
    ['admin-removed not allowed because not admin', ruleGroup([abc]), adminRemoved(def, abc), false],
  ];
  assert.equal(cases.length, 23);
  for (const [name, g, e, expected] of cases) {
    test(name, () => assert.equal(group.validateEvent(g, e), expected));
  }
});

describe('TestGroupProcessEvent (status-go, all 9 cases)', () => {
  const img = new TextEncoder().encode('123');
  const cases: [string, group.RuleGroup, RuleEvent, group.RuleGroup][] = [
    ['chat-created event', ruleGroup(), ev(EventType.CHAT_CREATED, abc, { name: 'some-name', color: '#7cda00' }), ruleGroup([abc], [abc], 'some-name', '#7cda00')],
    ['name-changed event', ruleGroup(), nameChanged(abc, 'some-name'), ruleGroup([], [], 'some-name')],
    ['color-changed event', ruleGroup(), colorChanged(abc), ruleGroup([], [], '', '#7cda00')],
    ['image-changed event', ruleGroup(), ev(EventType.IMAGE_CHANGED, abc, { image: img }), ruleGroup([], [], '', '', img)],
    ['admins-added event', ruleGroup(), adminsAdded(abc, [abc, x123]), ruleGroup([abc, x123])],
    ['admin-removed event', ruleGroup([abc, def]), adminRemoved(abc, abc), ruleGroup([def])],
    ['members-added event', ruleGroup(), membersAdded(abc, [abc, def]), ruleGroup([], [abc, def])],
    ['member-removed event', ruleGroup([], [abc, def]), memberRemoved(abc, abc), ruleGroup([], [def])],
    ['member-joined event', ruleGroup([], [abc, def]), memberJoined(def), ruleGroup([], [abc, def])],
  ];
  assert.equal(cases.length, 9);
  for (const [name, g, e, expected] of cases) {
    test(name, () => {
      group.processEvent(g, e);
      assert.deepEqual({ ...g, admins: [...g.admins], members: [...g.members] }, { ...expected, admins: [...expected.admins], members: [...expected.members] });
    });
  }
  test('member-removed also drops the target from admins', () => {
    const g = ruleGroup([abc, def], [abc, def]);
    group.processEvent(g, memberRemoved(abc, def));
    assert.deepEqual([...g.admins], [abc]);
    assert.deepEqual([...g.members], [abc]);
  });
});

describe('the rows of reference/peers.md §1.6 not covered above', () => {
  test('empty name / colour / image are invalid even from an admin', () => {
    assert.equal(group.validateEvent(ruleGroup([abc], [abc]), nameChanged(abc, '')), false);
    assert.equal(group.validateEvent(ruleGroup([abc], [abc]), ev(EventType.COLOR_CHANGED, abc)), false);
    assert.equal(group.validateEvent(ruleGroup([abc], [abc]), ev(EventType.IMAGE_CHANGED, abc)), false);
  });
  test('non-members may not rename, recolour or add', () => {
    assert.equal(group.validateEvent(ruleGroup([abc], [abc]), nameChanged(def)), false);
    assert.equal(group.validateEvent(ruleGroup([abc], [abc]), colorChanged(def)), false);
    assert.equal(group.validateEvent(ruleGroup([abc], [abc]), membersAdded(def, [ghi])), false);
  });
  test('MEMBER_REMOVED needs exactly one target; an admin cannot remove another admin', () => {
    assert.equal(group.validateEvent(ruleGroup([abc], [abc, def, ghi]), ev(EventType.MEMBER_REMOVED, abc, { members: [def, ghi] })), false);
    assert.equal(group.validateEvent(ruleGroup([abc], [abc]), ev(EventType.MEMBER_REMOVED, abc, { members: [] })), false);
    assert.equal(group.validateEvent(ruleGroup([abc, def], [abc, def]), memberRemoved(abc, def)), false);
  });
  test('ADMIN_REMOVED needs exactly one target', () => {
    assert.equal(group.validateEvent(ruleGroup([abc], [abc]), ev(EventType.ADMIN_REMOVED, abc, { members: [abc, abc] })), false);
  });
  test('UNKNOWN and unassigned types are never valid', () => {
    assert.equal(group.validateEvent(ruleGroup([abc], [abc]), ev(EventType.UNKNOWN, abc)), false);
    assert.equal(group.validateEvent(ruleGroup([abc], [abc]), ev(42 as group.EventType, abc)), false);
  });
});

describe('fix 1: ADMINS_ADDED requires every target to be a member', () => {
  test('status-go accepts a partial overlap; we do not', () => {
    // status-go: stringSliceSubset([def, ghi], [def]) is true (overlap), so ghi would become admin.
    assert.equal(group.validateEvent(ruleGroup([abc], [abc, def]), adminsAdded(abc, [def, ghi])), false);
    assert.equal(group.validateEvent(ruleGroup([abc], [abc, def, ghi]), adminsAdded(abc, [def, ghi])), true);
  });
  test('an empty target list is invalid (as in status-go, where no overlap means false)', () => {
    assert.equal(group.validateEvent(ruleGroup([abc], [abc]), adminsAdded(abc, [])), false);
  });
});

const NOW = Date.UTC(2026, 0, 1);

function created(by: group.GroupKeyPair, members: string[] = []) {
  const r = group.createGroup(nobleProvider, { name: 'g', color: '#fa6565', members, nowMs: NOW, key: by });
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r;
}

describe('fold', () => {
  test('createGroup: CHAT_CREATED then MEMBERS_ADDED at the next clock', () => {
    const r = created(K.abc, [def, ghi]);
    assert.equal(r.newEvents.length, 2);
    assert.equal(r.newEvents[0]!.clock, BigInt(NOW) + 60_000n);
    assert.equal(r.newEvents[1]!.clock, BigInt(NOW) + 60_001n);
    assert.deepEqual(r.state.members, [abc, def, ghi]);
    assert.deepEqual(r.state.admins, [abc]);
    assert.equal(r.state.creator, abc);
    assert.equal(r.state.name, 'g');
    assert.equal(r.state.color, '#fa6565');
    assert.ok(r.state.chatId.endsWith('-' + abc));
  });

  test('an event sorting before CHAT_CREATED is rejected on its own (status-go: the whole group fails)', () => {
    const r = created(K.abc);
    const early = group.signEvent(r.state.chatId, K.def, { type: EventType.MEMBER_REMOVED, clock: 5n, members: [def] });
    const f = group.foldGroup(r.state.chatId, [...r.events, early], NOW);
    assert.ok(f.ok);
    assert.equal(f.state.name, 'g');
    assert.deepEqual(f.rejected.map((x) => [x.reason, x.event.clock]), [['not-allowed', 5n]]);
    // Without any valid CHAT_CREATED there is no group.
    const none = group.foldGroup(r.state.chatId, [early], NOW);
    assert.ok(!none.ok);
    assert.equal(none.code, 'no-chat-created');
  });

  test('the chat id must end with the creator key and not be only the key', () => {
    for (const chatId of [`uuid-${def}`, abc]) {
      const e = group.signEvent(chatId, K.abc, { type: EventType.CHAT_CREATED, clock: 1n, name: 'x' });
      const f = group.foldGroup(chatId, [e], NOW);
      assert.ok(!f.ok);
      assert.equal(f.code, 'no-chat-created');
      assert.deepEqual(f.rejected.map((x) => x.reason), ['invalid-chat-id']);
    }
  });

  test("an earlier CHAT_CREATED by someone the chat id does not name cannot take the group over", () => {
    const r = created(K.abc, [def]);
    const usurp = group.signEvent(r.state.chatId, K.ghi, { type: EventType.CHAT_CREATED, clock: 1n, name: 'mine' });
    const f = group.foldGroup(r.state.chatId, [usurp, ...r.events], NOW);
    assert.ok(f.ok);
    assert.equal(f.state.creator, abc);
    assert.equal(f.state.name, 'g');
    assert.deepEqual(f.rejected.map((x) => x.reason), ['invalid-chat-id']);
  });

  test('clock 0 and clocks more than 120 s ahead are refused one by one and not stored', () => {
    const r = created(K.abc, [def]);
    const ctx = { chatId: r.state.chatId, events: r.events, key: K.def };
    const zero = group.signEvent(ctx.chatId, K.def, { type: EventType.NAME_CHANGED, clock: 0n, name: 'z' });
    const ahead = group.signEvent(ctx.chatId, K.def, { type: EventType.NAME_CHANGED, clock: BigInt(NOW) + 120_001n, name: 'z' });
    const fine = group.signEvent(ctx.chatId, K.def, { type: EventType.NAME_CHANGED, clock: BigInt(NOW) + 120_000n, name: 'ok' });
    const m = group.mergeGroupEvents(ctx.chatId, r.events, [fine, zero, ahead], NOW);
    assert.ok(m.ok);
    assert.equal(m.state.name, 'ok');
    assert.deepEqual(m.added, [fine]);
    assert.ok(!m.events.includes(zero) && !m.events.includes(ahead));
    assert.deepEqual(m.rejected.map((x) => [x.reason, x.event.name]).sort(), [['clock-too-far-ahead', 'z'], ['clock-zero', 'z']]);
  });

  test('one invalid event is dropped and reported; the valid ones still apply', () => {
    const r = created(K.abc, [def]);
    const good = group.signEvent(r.state.chatId, K.def, { type: EventType.NAME_CHANGED, clock: BigInt(NOW) + 70_000n, name: 'good' });
    const bad = group.signEvent(r.state.chatId, K.ghi, { type: EventType.NAME_CHANGED, clock: BigInt(NOW) + 70_001n, name: 'bad' });
    const m = group.mergeGroupEvents(r.state.chatId, r.events, [good, bad], NOW);
    assert.ok(m.ok);
    assert.equal(m.state.name, 'good');
    assert.deepEqual(m.applied.at(-1), good);
    assert.equal(m.rejected.length, 1);
    assert.equal(m.rejected[0]!.event, bad);
    assert.equal(m.rejected[0]!.reason, 'not-allowed');
  });

  test('duplicates (same signature) count once; merge reports only new events', () => {
    const r = created(K.abc, [def]);
    const m = group.mergeGroupEvents(r.state.chatId, r.events, [...r.events, ...r.events], NOW);
    assert.ok(m.ok);
    assert.equal(m.events.length, 2);
    assert.equal(m.added!.length, 0);
    // A duplicated CHAT_CREATED would be invalid if it were folded twice.
    const f = group.foldGroup(r.state.chatId, [r.events[0]!, r.events[0]!, r.events[1]!], NOW);
    assert.ok(f.ok);
  });

  test('stored events are not re-checked against a clock that moved back', () => {
    const r = created(K.abc, [def]);
    const m = group.mergeGroupEvents(r.state.chatId, r.events, [], NOW - 3_600_000);
    assert.ok(m.ok);
    assert.ok(!group.foldGroup(r.state.chatId, r.events, NOW - 3_600_000).ok);
  });

  test('the creator may leave too; the group keeps its creator', () => {
    const r = created(K.abc);
    const left = group.leave({ chatId: r.state.chatId, events: r.events, key: K.abc }, NOW);
    assert.ok(left.ok);
    assert.deepEqual(left.state.members, []);
    assert.deepEqual(left.state.admins, []);
    assert.equal(left.state.creator, abc);
  });

  test('wasEverMember', () => {
    const r = created(K.abc, [def]);
    assert.ok(group.wasEverMember(r.events, abc));
    assert.ok(group.wasEverMember(r.events, def));
    assert.ok(!group.wasEverMember(r.events, ghi));
  });
});

describe('builders', () => {
  const r = created(K.abc, [def, ghi]);
  const as = (key: group.GroupKeyPair, events = r.events) => ({ chatId: r.state.chatId, events, key });

  test('any member may rename, recolour, change the image and add', () => {
    const a = group.rename(as(K.def), 'renamed', NOW);
    assert.ok(a.ok && a.state.name === 'renamed');
    const b = group.setColor(as(K.def, a.events), '#000000', NOW);
    assert.ok(b.ok && b.state.color === '#000000');
    const c = group.setImage(as(K.ghi, b.events), Uint8Array.of(9), NOW);
    assert.ok(c.ok && c.state.image[0] === 9);
    const d = group.addMembers(as(K.ghi, c.events), [x123], NOW);
    assert.ok(d.ok);
    assert.deepEqual(d.state.members, [abc, def, ghi, x123]);
    assert.equal(d.newEvents[0]!.clock, d.state.clock);
  });

  test('clocks follow next = last < now ? now + 60000 : last + 1', () => {
    const a = group.rename(as(K.def), 'x', NOW);
    assert.ok(a.ok);
    assert.equal(a.newEvents[0]!.clock, r.state.clock + 1n); // last (now + 60001) ≥ now
    const later = NOW + 3_600_000;
    const b = group.rename(as(K.def, a.events), 'y', later);
    assert.ok(b.ok);
    assert.equal(b.newEvents[0]!.clock, BigInt(later) + 60_000n);
  });

  test('only an admin removes, only members are promoted, demotion is self-only', () => {
    assert.equal((group.removeMember(as(K.def), ghi, NOW) as { code?: string }).code, 'not-allowed');
    const removed = group.removeMember(as(K.abc), ghi, NOW);
    assert.ok(removed.ok);
    assert.deepEqual(removed.state.members, [abc, def]);
    assert.equal((group.promote(as(K.abc, removed.events), [ghi], NOW) as { code?: string }).code, 'not-allowed');
    const promoted = group.promote(as(K.abc, removed.events), [def], NOW);
    assert.ok(promoted.ok);
    assert.deepEqual(promoted.state.admins, [abc, def]);
    // An admin cannot remove another admin, nor demote them.
    assert.equal((group.removeMember(as(K.abc, promoted.events), def, NOW) as { code?: string }).code, 'not-allowed');
    const demoted = group.demoteSelf(as(K.def, promoted.events), NOW);
    assert.ok(demoted.ok);
    assert.deepEqual(demoted.state.admins, [abc]);
    assert.equal((group.demoteSelf(as(K.def, demoted.events), NOW) as { code?: string }).code, 'not-allowed');
  });

  test('leave removes oneself from members and admins; join changes nothing', () => {
    const j = group.join(as(K.def), NOW);
    assert.ok(j.ok);
    assert.deepEqual(j.state.members, r.state.members);
    const l = group.leave(as(K.abc, j.events), NOW);
    assert.ok(l.ok);
    assert.deepEqual(l.state.members, [def, ghi]);
    assert.deepEqual(l.state.admins, []);
    assert.equal((group.join(as(K.abc, l.events), NOW) as { code?: string }).code, 'not-allowed');
  });

  test('bad arguments are typed errors', () => {
    assert.equal((group.rename(as(K.abc), '', NOW) as { code?: string }).code, 'invalid-argument');
    assert.equal((group.addMembers(as(K.abc), ['0xabc'], NOW) as { code?: string }).code, 'invalid-argument');
    assert.equal((group.createGroup(nobleProvider, { name: '', nowMs: NOW }) as { code?: string }).code, 'invalid-argument');
  });
});
