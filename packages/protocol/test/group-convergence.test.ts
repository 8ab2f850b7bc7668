/**
 * Five members make concurrent membership changes; each member receives the updates (full event
 * history, as status-go sends them) in its own order, with duplicates. All must fold to the same
 * state. Then forged, replayed and cross-group events.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { group, nobleProvider, concat } from '../src/index.ts';

const { EventType } = group;
const NOW = Date.UTC(2026, 0, 1);

function keyFor(n: number): group.GroupKeyPair {
  const sk = new Uint8Array(32);
  sk[0] = 0x22;
  sk[31] = n;
  return group.groupKeyFromSecret(sk);
}
const [A, B, C, D, E, X] = [1, 2, 3, 4, 5, 6].map(keyFor) as [group.GroupKeyPair, group.GroupKeyPair, group.GroupKeyPair, group.GroupKeyPair, group.GroupKeyPair, group.GroupKeyPair];
const members = [A, B, C, D, E];

function must(r: group.BuildResult): Extract<group.BuildResult, { ok: true }> {
  if (!r.ok) throw new Error(`${r.code}: ${r.reason}`);
  return r;
}

/** A creates the group with B..E and promotes B. */
function base() {
  const c = must(group.createGroup(nobleProvider, { name: 'five', members: [B.id, C.id, D.id, E.id], nowMs: NOW, key: A }));
  const chatId = c.state.chatId;
  const p = must(group.promote({ chatId, events: c.events, key: A }, [B.id], NOW));
  return { chatId, events: p.events, state: p.state };
}

/**
 * Concurrent updates, each built by its author from the same base at its own time. They commute
 * (every union of them is valid), so every delivery order must give the same state. Built at
 * the same time they get equal clocks: only the signature tie-break orders them.
 */
function concurrentUpdates(chatId: string, events: readonly group.GroupEvent[], nows: readonly number[]): Uint8Array[] {
  const at = (key: group.GroupKeyPair) => ({ chatId, events, key });
  const built = [
    group.rename(at(A), 'alpha', nows[0]!),
    group.rename(at(B), 'beta', nows[1]!),
    group.addMembers(at(C), [X.id], nows[2]!),
    group.leave(at(D), nows[3]!),
    group.setColor(at(E), '#123456', nows[4]!),
    group.promote(at(A), [C.id], nows[5]!),
    group.setImage(at(B), Uint8Array.of(1, 2, 3), nows[6]!),
    group.join(at(E), nows[7]!),
  ].map(must);
  return built.map((b) => group.encodeMembershipUpdate(chatId, b.events));
}

function stateKey(s: group.GroupState): string {
  return JSON.stringify({ ...s, image: [...s.image], clock: s.clock.toString() });
}

describe('5 members, concurrent changes, different delivery orders', () => {
  const b = base();
  // Pre-decode each distinct update once per scenario: decoding is deterministic and tested
  // elsewhere; here the order of merging is what varies.
  test('equal clocks: all members converge (fast-check over delivery orders and duplicates)', () => {
    const updates = concurrentUpdates(b.chatId, b.events, Array(8).fill(NOW));
    const decoded = updates.map((u) => {
      const d = group.decodeMembershipUpdate(u);
      assert.ok(d.ok);
      return d.value.events;
    });
    // The concurrent events really do share one clock.
    assert.equal(new Set(decoded.map((evs) => evs.find((e) => !b.events.some((x) => group.sameSignature(x, e)))!.clock)).size, 1);
    const expected = group.foldGroup(b.chatId, decoded.flat(), NOW);
    assert.ok(expected.ok);
    fc.assert(
      fc.property(
        fc.array(fc.shuffledSubarray([...decoded.keys()], { minLength: decoded.length, maxLength: decoded.length }), { minLength: 5, maxLength: 5 }),
        fc.array(fc.nat(decoded.length - 1), { maxLength: 4 }),
        (orders, dups) => {
          const finals = orders.map((order) => {
            let stored: readonly group.GroupEvent[] = b.events;
            for (const i of [...order, ...dups]) {
              const m = group.mergeGroupEvents(b.chatId, stored, decoded[i]!, NOW);
              assert.ok(m.ok, m.ok ? '' : m.reason);
              stored = m.events;
            }
            const f = group.foldGroup(b.chatId, stored, NOW);
            assert.ok(f.ok);
            return stateKey(f.state);
          });
          for (const s of finals) assert.equal(s, stateKey(expected.state));
        },
      ),
      { numRuns: 200 },
    );
    const s = expected.state;
    assert.deepEqual(s.members, [A.id, B.id, C.id, E.id, X.id]);
    assert.deepEqual(s.admins, [A.id, B.id, C.id]);
    assert.equal(s.color, '#123456');
    assert.ok(s.name === 'alpha' || s.name === 'beta');
  });

  test('decoding each delivery from bytes: members given different orders agree', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: NOW - 30_000, max: NOW + 90_000 }), { minLength: 8, maxLength: 8 }), fc.integer(), (nows, seed) => {
        const updates = concurrentUpdates(b.chatId, b.events, nows);
        const receive = NOW + 100_000; // every clock is ≤ now + 120 s here
        const states = members.map((_, m) => {
          // A different rotation and direction of the updates for each member.
          const rot = (m + seed) % updates.length;
          let order = [...updates.slice(rot), ...updates.slice(0, rot)];
          if ((m + seed) % 2 === 0) order = order.reverse();
          let stored: readonly group.GroupEvent[] = b.events;
          for (const bytes of order) {
            const d = group.decodeMembershipUpdate(bytes);
            assert.ok(d.ok);
            const merged = group.mergeGroupEvents(b.chatId, stored, d.value.events, receive);
            assert.ok(merged.ok, merged.ok ? '' : merged.reason);
            stored = merged.events;
          }
          const folded = group.foldGroup(b.chatId, stored, receive);
          assert.ok(folded.ok);
          return stateKey(folded.state);
        });
        assert.equal(new Set(states).size, 1);
      }),
      { numRuns: 8 },
    );
  });

  test('why fix 2 matters: ordering by clock alone depends on arrival order', () => {
    const updates = concurrentUpdates(b.chatId, b.events, Array(8).fill(NOW)).slice(0, 2); // alpha, beta
    const [ua, ub] = updates.map((u) => (group.decodeMembershipUpdate(u) as { ok: true; value: group.MembershipUpdate }).value.events);
    const renameOf = (evs: readonly group.GroupEvent[]) => evs.filter((e) => e.type === EventType.NAME_CHANGED);
    const stableByClock = (arrival: group.GroupEvent[]) => [...arrival].sort((x, y) => (x.clock < y.clock ? -1 : x.clock > y.clock ? 1 : 0));
    const lastName = (evs: group.GroupEvent[]) => evs.filter((e) => e.type === EventType.NAME_CHANGED).at(-1)!.name;
    const n1 = lastName(stableByClock([...renameOf(ua!), ...renameOf(ub!)]));
    const n2 = lastName(stableByClock([...renameOf(ub!), ...renameOf(ua!)]));
    assert.notEqual(n1, n2); // two members, two names under clock-only ordering
    const f1 = group.foldGroup(b.chatId, [...ua!, ...ub!], NOW);
    const f2 = group.foldGroup(b.chatId, [...ub!, ...ua!], NOW);
    assert.ok(f1.ok && f2.ok);
    assert.equal(f1.state.name, f2.state.name);
  });
});

describe('forged, replayed and cross-group events are rejected one by one', () => {
  const b = base();
  /** The merge kept the group as it was and reported `event` with `reason`. */
  function refused(m: group.FoldResult, event: group.GroupEvent, reason: group.RejectReason) {
    assert.ok(m.ok, m.ok ? '' : m.reason);
    assert.equal(stateKey(m.state), stateKey(b.state));
    assert.deepEqual(
      m.rejected.filter((r) => r.event === event).map((r) => r.reason),
      [reason],
    );
  }

  test('an event signed by a non-member', () => {
    const forged = group.signEvent(b.chatId, X, { type: EventType.MEMBERS_ADDED, clock: b.state.clock + 1n, members: [X.id] });
    refused(group.mergeGroupEvents(b.chatId, b.events, [forged], NOW), forged, 'not-allowed');
  });

  test('tampered bytes: the signer recovered is someone else (or nobody)', () => {
    const real = group.signEvent(b.chatId, A, { type: EventType.MEMBERS_ADDED, clock: b.state.clock + 1n, members: [X.id] });
    const wire = group.eventWireBytes(real);
    for (const at of [0, 40, 64, 66, wire.length - 1]) {
      const bad = Uint8Array.from(wire);
      bad[at]! ^= 0x01;
      const d = group.decodeEvent(b.chatId, bad);
      if (!d.ok) continue; // bad signature, or bytes that no longer parse
      assert.notEqual(d.event.from, A.id);
      const m = group.mergeGroupEvents(b.chatId, b.events, [d.event], NOW);
      assert.ok(m.ok);
      assert.equal(stateKey(m.state), stateKey(b.state));
      assert.ok(!m.applied.includes(d.event));
    }
  });

  test('a non-member cannot pass off an admin event by claiming the admin key: there is no from field', () => {
    // Only the signature names the author. X signs a removal of C, which only an admin may do.
    const e = group.signEvent(b.chatId, X, { type: EventType.MEMBER_REMOVED, clock: b.state.clock + 1n, members: [C.id] });
    const d = group.decodeEvent(b.chatId, group.eventWireBytes(e));
    assert.ok(d.ok);
    assert.equal(d.event.from, X.id);
    refused(group.mergeGroupEvents(b.chatId, b.events, [d.event], NOW), d.event, 'not-allowed');
  });

  test('replays: a known event changes nothing; a removed member cannot come back with old or new events', () => {
    const again = group.mergeGroupEvents(b.chatId, b.events, b.events, NOW);
    assert.ok(again.ok && again.added!.length === 0 && stateKey(again.state) === stateKey(b.state));
    const removed = must(group.removeMember({ chatId: b.chatId, events: b.events, key: A }, D.id, NOW));
    // D re-sends its earlier valid history: deduplicated, D stays removed.
    const replay = group.mergeGroupEvents(b.chatId, removed.events, b.events, NOW);
    assert.ok(replay.ok);
    assert.ok(!replay.state.members.includes(D.id));
    // D's new events are invalid.
    const dRename = group.signEvent(b.chatId, D, { type: EventType.NAME_CHANGED, clock: removed.state.clock + 1n, name: 'mine', parents: removed.folded.heads });
    const m = group.mergeGroupEvents(b.chatId, removed.events, [dRename], NOW);
    assert.ok(m.ok);
    assert.equal(stateKey(m.state), stateKey(removed.state));
    assert.deepEqual(m.rejected.map((r) => [r.event, r.reason]), [[dRename, 'removed-author']]);
  });

  test("cross-group: another group's event recovers an unrelated key here", () => {
    const other = must(group.createGroup(nobleProvider, { name: 'other', members: [B.id], nowMs: NOW, key: A }));
    const foreign = must(group.addMembers({ chatId: other.state.chatId, events: other.events, key: A }, [X.id], NOW)).newEvents[0]!;
    // Re-framed under our chat id, the signature recovers a different key: not a member.
    const d = group.decodeEvent(b.chatId, group.eventWireBytes(foreign));
    if (d.ok) {
      assert.notEqual(d.event.from, A.id);
      // Its parent (the other group's event) is unknown here: pending, and never applied.
      refused(group.mergeGroupEvents(b.chatId, b.events, [d.event], NOW), d.event, 'missing-parent');
    }
    // Handed over as an event of the other chat, it is refused on arrival and not stored.
    const direct = group.mergeGroupEvents(b.chatId, b.events, [foreign], NOW);
    refused(direct, foreign, 'wrong-chat-id');
    assert.ok(direct.ok && !direct.events.includes(foreign) && direct.added!.length === 0);
    // A whole update for another chat id cannot change this group either.
    const whole = group.decodeMembershipUpdate(group.encodeMembershipUpdate(other.state.chatId, other.events));
    assert.ok(whole.ok);
    const w = group.mergeGroupEvents(b.chatId, b.events, whole.value.events, NOW);
    assert.ok(w.ok);
    assert.equal(stateKey(w.state), stateKey(b.state));
    assert.deepEqual(new Set(w.rejected.map((r) => r.reason)), new Set(['wrong-chat-id']));
  });

  test('an update with one bad event among good ones is rejected as a whole', () => {
    const good = must(group.rename({ chatId: b.chatId, events: b.events, key: B }, 'ok', NOW));
    const bytes = group.encodeMembershipUpdate(b.chatId, good.events);
    const d = group.decodeMembershipUpdate(bytes);
    assert.ok(d.ok);
    const wires = d.value.events.map(group.eventWireBytes);
    wires[1] = concat(wires[1]!.subarray(0, 65), Uint8Array.of(0xff)); // garbage event bytes
    const bad = group.decodeEventList(b.chatId, wires);
    assert.ok(!bad.ok);
    assert.equal(bad.index, 1);
  });
});

describe('decoding with the stored history', () => {
  const b = base();
  test('known events are reused, not recovered again; a known signature over other bytes is not', () => {
    const next = must(group.rename({ chatId: b.chatId, events: b.events, key: B }, 'next', NOW));
    const d = group.decodeMembershipUpdate(group.encodeMembershipUpdate(b.chatId, next.events), b.events);
    assert.ok(d.ok);
    const reused = d.value.events.filter((e) => b.events.includes(e));
    assert.equal(reused.length, b.events.length);
    // Same signature as a stored event, different event bytes: decoded afresh, recovers someone else.
    const stored = b.events[1]!;
    const otherRaw = group.encodeEventFields({ type: EventType.MEMBERS_ADDED, clock: stored.clock, members: [X.id] });
    const spliced = group.decodeEventList(b.chatId, [concat(stored.signature, otherRaw)], b.events);
    if (spliced.ok) {
      assert.ok(!b.events.includes(spliced.value[0]!));
      assert.notEqual(spliced.value[0]!.from, stored.from);
    }
    // Known events of another chat are not reused either.
    const elsewhere = group.decodeEventList('other-chat', b.events.map(group.eventWireBytes), b.events);
    if (elsewhere.ok) assert.ok(elsewhere.value.every((e) => !b.events.includes(e)));
  });
});
