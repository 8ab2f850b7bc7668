/**
 * Issue 13, protocol half: removal is final for the removed member's own events, one bad event
 * never poisons the rest, and equal-clock ties cannot be ground. Each attack here succeeded
 * against the clock-ordered, all-or-nothing fold (commit 9951004). Then a property test over
 * random 5-member histories with attacker events, delivered in random orders with duplicates.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { group, nobleProvider, concat, type CryptoProvider } from '../src/index.ts';

const { EventType } = group;
const NOW = Date.UTC(2026, 0, 1);
const RUNS = Number(process.env.UMBRA_GROUP_RUNS ?? 150);
/** The property test's seed in npm test (see the counterexample at the end of the file). */
const PROPERTY_SEED = 20261202;

function keyFor(n: number): group.GroupKeyPair {
  const sk = new Uint8Array(32);
  sk[0] = 0x33;
  sk[30] = n >> 8;
  sk[31] = n & 0xff;
  return group.groupKeyFromSecret(sk);
}
const [A, B, C, M] = [1, 2, 3, 4].map(keyFor) as [group.GroupKeyPair, group.GroupKeyPair, group.GroupKeyPair, group.GroupKeyPair];

function must(r: group.BuildResult): Extract<group.BuildResult, { ok: true }> {
  if (!r.ok) throw new Error(`${r.code}: ${r.reason}`);
  return r;
}
function folded(r: group.FoldResult): group.Folded {
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r;
}
function stateKey(s: group.GroupState): string {
  return JSON.stringify({ ...s, image: [...s.image], clock: s.clock.toString() });
}
function reasonOf(f: group.Folded, e: group.GroupEvent): string | undefined {
  return f.rejected.find((r) => r.event === e)?.reason;
}

/** A creates the group with B, C and M. */
function base() {
  const c = must(group.createGroup(nobleProvider, { name: 'g', members: [B.id, C.id, M.id], nowMs: NOW, key: A }));
  return { chatId: c.state.chatId, events: c.events };
}

describe('backdated re-entry by a removed member', () => {
  const { chatId, events } = base();
  // A minute and a half later, A removes M. (The exact millisecond is picked so that the
  // removal's signature starts high: grinding below it below then takes only a few tries.)
  let removal = must(group.removeMember({ chatId, events, key: A }, M.id, NOW + 90_000));
  for (let t = 1; removal.newEvents[0]!.signature[0]! < 0x80; t++) removal = must(group.removeMember({ chatId, events, key: A }, M.id, NOW + 90_000 + t));
  const R = removal.newEvents[0]!;
  // What M had folded before her removal: she builds on that.
  const mView = folded(group.foldGroup(chatId, events, NOW));

  const variants: [string, () => { forged: group.GroupEvent; fresh: group.GroupKeyPair }][] = [
    [
      'one millisecond before the removal',
      () => {
        const fresh = keyFor(100);
        return { fresh, forged: group.signEvent(chatId, M, { type: EventType.MEMBERS_ADDED, clock: R.clock - 1n, members: [fresh.id], parents: mView.heads }) };
      },
    ],
    [
      'at the removal clock, with a key ground until its signature sorts first',
      () => {
        for (let n = 200; ; n++) {
          const fresh = keyFor(n);
          const forged = group.signEvent(chatId, M, { type: EventType.MEMBERS_ADDED, clock: R.clock, members: [fresh.id], parents: mView.heads });
          if (group.compareBytes(forged.signature, R.signature) < 0) return { fresh, forged };
        }
      },
    ],
    [
      'without parents (as a status-go event), before the removal',
      () => {
        const fresh = keyFor(300);
        return { fresh, forged: group.signEvent(chatId, M, { type: EventType.MEMBERS_ADDED, clock: R.clock - 1n, members: [fresh.id] }) };
      },
    ],
  ];
  for (const [name, make] of variants) {
    test(name, () => {
      const { forged, fresh } = make();
      // B gets the removal first, C gets the forged add first: both must end with M and her key out.
      const atB = folded(group.mergeGroupEvents(chatId, removal.events, [forged], NOW + 91_000));
      const cFirst = folded(group.mergeGroupEvents(chatId, events, [forged], NOW + 91_000));
      const atC = folded(group.mergeGroupEvents(chatId, cFirst.events, removal.events, NOW + 91_000));
      for (const f of [atB, atC]) {
        assert.ok(!f.state.members.includes(fresh.id), 'the forged key is not a member');
        assert.ok(!f.state.members.includes(M.id));
        // Before the removal in the order it is void; after it (the ground tie), its author is removed.
        assert.ok(['concurrent-with-removal', 'removed-author'].includes(reasonOf(f, forged)!), reasonOf(f, forged));
      }
      assert.equal(stateKey(atB.state), stateKey(atC.state));
      // The fresh key's own events then count for nothing either.
      const hello = group.signEvent(chatId, fresh, { type: EventType.NAME_CHANGED, clock: R.clock + 5n, name: 'back', parents: [forged.id, R.id] });
      const after = folded(group.mergeGroupEvents(chatId, atB.events, [hello], NOW + 95_000));
      assert.equal(after.state.name, 'g');
      assert.equal(reasonOf(after, hello), 'not-allowed');
    });
  }

  test("an admin's removal backdated below her own events is refused", () => {
    const Y = keyFor(400);
    const added = must(group.addMembers({ chatId, events, key: M }, [Y.id], NOW + 90_000));
    const renamed = must(group.rename({ chatId, events: added.events, key: A }, 'seen', NOW + 91_000));
    // A removes M below her own rename, leaving M's add (which her rename built on) out of its past.
    const removalBelow = group.signEvent(chatId, A, { type: EventType.MEMBER_REMOVED, clock: renamed.newEvents[0]!.clock - 1n, members: [M.id], parents: mView.heads });
    const f = folded(group.mergeGroupEvents(chatId, renamed.events, [removalBelow], NOW + 92_000));
    assert.equal(reasonOf(f, removalBelow), 'author-fork');
    assert.ok(f.state.members.includes(Y.id) && f.state.members.includes(M.id));
  });

  test('after leaving, a member cannot cancel her leave with events that leave it out', () => {
    const left = must(group.leave({ chatId, events, key: M }, NOW + 90_000));
    const L = left.newEvents[0]!;
    const before = group.signEvent(chatId, M, { type: EventType.MEMBERS_ADDED, clock: L.clock - 1n, members: [keyFor(401).id], parents: mView.heads });
    const after = group.signEvent(chatId, M, { type: EventType.MEMBERS_ADDED, clock: L.clock + 1n, members: [keyFor(402).id], parents: mView.heads });
    const f = folded(group.mergeGroupEvents(chatId, left.events, [before, after], NOW + 91_000));
    assert.ok(!f.state.members.includes(M.id));
    assert.ok(!f.state.members.includes(keyFor(401).id) && !f.state.members.includes(keyFor(402).id));
    assert.equal(reasonOf(f, before), 'concurrent-with-removal');
    assert.equal(reasonOf(f, after), 'removed-author');
    assert.equal(reasonOf(f, L), undefined);
  });
});

describe('a member who left cannot undo her earlier acts', () => {
  test('a parentless event she signs afterwards, below her removal of C, leaves C removed', () => {
    const { chatId, events } = base();
    const removeC = must(group.removeMember({ chatId, events, key: A }, C.id, NOW + 90_000));
    const left = must(group.leave({ chatId, events: removeC.events, key: A }, NOW + 91_000));
    const R = removeC.newEvents[0]!;
    // Sorting before her removal of C and not in its past, it would break her chain (author-fork).
    const late = group.signEvent(chatId, A, { type: EventType.MEMBERS_ADDED, clock: R.clock - 1n, members: [keyFor(420).id] });
    const f = folded(group.mergeGroupEvents(chatId, left.events, [late], NOW + 92_000));
    assert.equal(reasonOf(f, late), 'concurrent-with-removal');
    assert.equal(reasonOf(f, R), undefined);
    assert.ok(!f.state.members.includes(C.id) && !f.state.members.includes(keyFor(420).id));
    assert.equal(stateKey(f.state), stateKey(left.state));
  });
});

describe('retroactive voids are self-consistent', () => {
  test('a removal valid only thanks to an event another removal voids voids nothing', () => {
    const Y = keyFor(410);
    const c = must(group.createGroup(nobleProvider, { name: 'g', members: [B.id, M.id, Y.id], nowMs: NOW, key: A }));
    const chatId = c.state.chatId;
    const p = must(group.promote({ chatId, events: c.events, key: A }, [M.id], NOW));
    const H = p.folded.heads;
    const t = p.state.clock;
    // M (admin) promotes B, then demotes herself in a branch that leaves the promotion out.
    const promoteB = group.signEvent(chatId, M, { type: EventType.ADMINS_ADDED, clock: t + 10n, members: [B.id], parents: H });
    const demote = group.signEvent(chatId, M, { type: EventType.ADMIN_REMOVED, clock: t + 20n, members: [M.id], parents: H });
    const yRename = group.signEvent(chatId, Y, { type: EventType.NAME_CHANGED, clock: t + 25n, name: 'why', parents: H });
    // A saw only the demotion and removes M: the promotion of B is void.
    const removeM = group.signEvent(chatId, A, { type: EventType.MEMBER_REMOVED, clock: t + 30n, members: [M.id], parents: [demote.id] });
    // B, admin only through that promotion, removes Y without having seen Y's rename.
    const removeY = group.signEvent(chatId, B, { type: EventType.MEMBER_REMOVED, clock: t + 40n, members: [Y.id], parents: [promoteB.id] });
    const f = folded(group.foldEvents(chatId, [...p.events, promoteB, demote, yRename, removeM, removeY]));
    assert.equal(reasonOf(f, promoteB), 'concurrent-with-removal');
    assert.equal(reasonOf(f, removeY), 'not-allowed');
    assert.equal(reasonOf(f, yRename), undefined, "Y's rename stands: the removal that voided it is void");
    assert.equal(f.state.name, 'why');
    assert.ok(f.state.members.includes(Y.id) && !f.state.members.includes(M.id));
    assert.ok(!f.state.admins.includes(B.id));
  });
});

describe('a future-clocked poison event sent to one member only', () => {
  test('every member converges, and B still follows the admin', () => {
    const { chatId, events } = base();
    const heads = folded(group.foldGroup(chatId, events, NOW)).heads;
    const poison = group.signEvent(chatId, M, { type: EventType.MEMBER_JOINED, clock: BigInt(NOW) + 110_000n, parents: heads });
    // Only B gets it; B then renames, building on it.
    const bStore = folded(group.mergeGroupEvents(chatId, events, [poison], NOW));
    const bRename = must(group.rename({ chatId, events: bStore.events, key: B }, 'bee', NOW + 1_000));
    // A, who never saw it, removes M (at a lower clock than the poison).
    const removal = must(group.removeMember({ chatId, events, key: A }, M.id, NOW + 2_000));
    assert.ok(removal.newEvents[0]!.clock < poison.clock);
    // Full-history updates cross: A → B, A → C, B → C, B → A.
    const atB = folded(group.mergeGroupEvents(chatId, bRename.events, removal.events, NOW + 3_000));
    const cMid = folded(group.mergeGroupEvents(chatId, events, removal.events, NOW + 3_000));
    const atC = folded(group.mergeGroupEvents(chatId, cMid.events, bRename.events, NOW + 3_000));
    const atA = folded(group.mergeGroupEvents(chatId, removal.events, bRename.events, NOW + 3_000));
    for (const f of [atA, atB, atC]) {
      assert.ok(!f.state.members.includes(M.id), 'M is removed everywhere');
      assert.equal(f.state.name, 'bee');
      // It sorts after the removal: its author was removed before it.
      assert.equal(reasonOf(f, poison), 'removed-author');
    }
    assert.equal(new Set([atA, atB, atC].map((f) => stateKey(f.state))).size, 1);
    // B keeps accepting the admin's later changes.
    const later = must(group.rename({ chatId, events: atA.events, key: A }, 'after', NOW + 4_000));
    assert.equal(folded(group.mergeGroupEvents(chatId, atB.events, later.events, NOW + 5_000)).state.name, 'after');
  });
});

describe('the equal-clock rename race cannot be ground', () => {
  test('who wins a tie is fixed by (chat, clock, author), whatever the signature bytes', () => {
    const { chatId, events } = base();
    const at = NOW + 10_000;
    const alice = must(group.rename({ chatId, events, key: A }, 'alice', at)).newEvents[0]!;
    const outcomes = new Set<string>();
    for (let k = 0; k < 16; k++) {
      // M grinds her signature by varying the name (the bytes signed), at the same clock.
      const mine = must(group.rename({ chatId, events, key: M }, `mallory${' '.repeat(k)}`, at)).newEvents[0]!;
      assert.equal(mine.clock, alice.clock);
      const f = folded(group.foldGroup(chatId, [...events, alice, mine], at));
      outcomes.add(f.state.name === 'alice' ? 'alice' : 'mallory');
    }
    assert.equal(outcomes.size, 1, 'grinding the signature changed the winner');
    // The winner is the author with the higher rank (applied last).
    const rankA = group.orderRank(alice);
    const probe = must(group.rename({ chatId, events, key: M }, 'mallory', at)).newEvents[0]!;
    const expected = group.compareBytes(group.orderRank(probe), rankA) > 0 ? 'mallory' : 'alice';
    assert.deepEqual([...outcomes], [expected]);
  });
});

describe('parents: linking, pending, limits, status-go bytes', () => {
  const { chatId, events } = base();

  test('an event whose parent is not known yet is pending, then applies when the parent arrives', () => {
    const first = must(group.rename({ chatId, events, key: B }, 'one', NOW + 1_000));
    const second = must(group.rename({ chatId, events: first.events, key: B }, 'two', NOW + 2_000));
    const child = second.newEvents[0]!;
    const early = folded(group.mergeGroupEvents(chatId, events, [child], NOW + 3_000));
    assert.equal(early.state.name, 'g');
    assert.equal(reasonOf(early, child), 'missing-parent');
    assert.ok(early.events.includes(child), 'held');
    const late = folded(group.mergeGroupEvents(chatId, early.events, [first.newEvents[0]!], NOW + 3_000));
    assert.equal(late.state.name, 'two');
    assert.equal(late.rejected.length, 0);
  });

  test('the pending buffer is bounded; a full buffer changes no state', () => {
    const ghost = new Uint8Array(32).fill(7);
    const orphans = Array.from({ length: group.MAX_PENDING_EVENTS + 5 }, (_, i) =>
      group.signEvent(chatId, B, { type: EventType.NAME_CHANGED, clock: BigInt(NOW) + 70_000n + BigInt(i), name: `o${i}`, parents: [ghost] }),
    );
    const f = folded(group.mergeGroupEvents(chatId, events, orphans, NOW));
    assert.equal((f as { added?: readonly group.GroupEvent[] }).added!.length, group.MAX_PENDING_EVENTS);
    assert.equal(f.rejected.filter((r) => r.reason === 'pending-full').length, 5);
    assert.equal(f.events.length, events.length + group.MAX_PENDING_EVENTS);
    assert.equal(f.state.name, 'g');
  });

  test('a parent that is not earlier is refused; bad parent lists do not decode', () => {
    const heads = folded(group.foldGroup(chatId, events, NOW)).heads;
    const top = events[events.length - 1]!;
    const same = group.signEvent(chatId, B, { type: EventType.NAME_CHANGED, clock: top.clock, name: 'x', parents: heads });
    assert.equal(reasonOf(folded(group.mergeGroupEvents(chatId, events, [same], NOW)), same), 'parent-not-earlier');
    const raw = (parents: Uint8Array[]) =>
      concat(new Uint8Array(65), group.encodeEventFields({ type: EventType.NAME_CHANGED, clock: 5n, name: 'x', parents }));
    const tooMany = Array.from({ length: group.MAX_PARENTS + 1 }, (_, i) => new Uint8Array(32).fill(i));
    for (const bad of [[new Uint8Array(31)], [heads[0]!, heads[0]!], tooMany]) {
      // Sign for real so the only defect is the parent list.
      const bytes = raw(bad);
      const signed = group.eventWireBytes({ ...group.signEvent(chatId, B, { type: EventType.NAME_CHANGED, clock: 5n, name: 'x' }), raw: bytes.subarray(65) });
      const d = group.decodeEvent(chatId, signed);
      assert.ok(!d.ok);
      assert.ok(d.code === 'event-bad-parent' || d.code === 'event-bad-signature', d.code);
    }
    assert.throws(() => group.signEvent(chatId, B, { type: EventType.NAME_CHANGED, clock: 5n, name: 'x', parents: tooMany }));
  });

  test('an event with parents is the status-go bytes plus field 16 at the end; without parents it is byte for byte status-go', () => {
    const fields = { type: EventType.NAME_CHANGED, clock: 1234n, name: 'n' } as const;
    const legacy = group.encodeEventFields(fields);
    const id = new Uint8Array(32).fill(0xab);
    const withParents = group.encodeEventFields({ ...fields, parents: [id] });
    // tag (16 << 3 | 2) = 0x82 0x01, length 0x20: a field status-go's decoder skips.
    assert.deepEqual(withParents, concat(legacy, Uint8Array.of(0x82, 0x01, 0x20), id));
    const e = group.signEvent(chatId, B, { ...fields, parents: [id] });
    const d = group.decodeEvent(chatId, group.eventWireBytes(e));
    assert.ok(d.ok);
    assert.equal(d.event.from, B.id);
    assert.deepEqual(d.event.parents, [id]);
    assert.deepEqual(d.event.id, e.id);
  });

  test('history lists each applied change with its author', () => {
    const r = must(group.rename({ chatId, events, key: B }, 'renamed', NOW + 1_000));
    const removed = must(group.removeMember({ chatId, events: r.events, key: A }, M.id, NOW + 2_000));
    const left = must(group.leave({ chatId, events: removed.events, key: C }, NOW + 3_000));
    const h = left.folded.history.map((c) => [c.kind, c.author, c.members, c.name]);
    assert.deepEqual(h, [
      ['created', A.id, [], 'g'],
      ['added', A.id, [B.id, C.id, M.id], ''],
      ['renamed', B.id, [], 'renamed'],
      ['removed', A.id, [M.id], ''],
      ['left', C.id, [C.id], ''],
    ]);
  });
});

// ---- property test ---------------------------------------------------------------------------

type Action =
  | { kind: 'rename' | 'color' | 'leave'; actor: number; n: number }
  | { kind: 'add' | 'remove' | 'promote' | 'readd'; actor: number; target: number }
  | { kind: 'sync'; from: number; to: number }
  | { kind: 'backdated' | 'future' | 'forged' | 'cross'; actor: number; to: number; delta: number };

const actor = fc.nat(4);
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ kind: fc.constantFrom('rename' as const, 'color' as const, 'leave' as const), actor, n: fc.nat(99) }),
  fc.record({ kind: fc.constantFrom('add' as const, 'remove' as const, 'promote' as const, 'readd' as const), actor, target: fc.nat(7) }),
  // Admins (0 and 1) removing the others, often.
  fc.record({ kind: fc.constant('remove' as const), actor: fc.nat(1), target: fc.integer({ min: 2, max: 4 }) }),
  fc.record({ kind: fc.constant('sync' as const), from: actor, to: actor }),
  fc.record({ kind: fc.constant('sync' as const), from: actor, to: actor }),
  fc.record({ kind: fc.constantFrom('backdated' as const, 'future' as const, 'forged' as const, 'cross' as const), actor, to: actor, delta: fc.constantFrom(0, 1, 1_500) }),
);

describe('property: random 5-member histories with attacker events', () => {
  const five = [1, 2, 3, 4, 5].map((n) => keyFor(500 + n));
  const extra = [1, 2, 3].map((n) => keyFor(600 + n)); // keys honest members may add
  const outsider = keyFor(700);
  /** The chat id decides every tie (its rank): derive it from the run's input, so a failure replays. */
  const groupFor = (chatSeed: number) => {
    const seeded: CryptoProvider = Object.create(nobleProvider, { randomBytes: { value: (n: number) => new Uint8Array(n).fill(chatSeed & 0xff).map((x, i) => x ^ (i * 37) ^ (chatSeed >> 8)) } });
    const created = must(group.createGroup(seeded, { name: 'p', members: five.slice(1).map((k) => k.id), nowMs: NOW, key: five[0]! }));
    const chatId = created.state.chatId;
    return { chatId, promoted: must(group.promote({ chatId, events: created.events, key: five[0]! }, [five[1]!.id], NOW)) };
  };
  const other = must(group.createGroup(nobleProvider, { name: 'other', members: [five[1]!.id], nowMs: NOW, key: five[0]! }));

  let attacks = 0;
  let laterSeen = 0;
  const property = fc.property(fc.array(actionArb, { minLength: 8, maxLength: 22 }), fc.array(fc.nat(1000), { minLength: 12, maxLength: 12 }), fc.nat(0xffff), (actions, shuffle, chatSeed) => {
        const { chatId, promoted } = groupFor(chatSeed);
        const stores: group.GroupEvent[][] = five.map(() => [...promoted.events]);
        /** Every event made, with the step it was made at. */
        const pool: { event: group.GroupEvent; step: number }[] = [];
        let now = NOW + 1_000;
        const merge = (i: number, incoming: readonly group.GroupEvent[]) => {
          const m = group.mergeGroupEvents(chatId, stores[i]!, incoming, now);
          assert.ok(m.ok, m.ok ? '' : m.reason);
          stores[i] = [...m.events];
        };
        const ctx = (i: number) => ({ chatId, events: stores[i]!, key: five[i]! });
        const keyOf = (t: number) => (t < 5 ? five[t]! : extra[t - 5]!);
        const build = (a: Exclude<Action, { kind: 'sync' | 'backdated' | 'future' | 'forged' | 'cross' }>, c: group.GroupContext, at: number): group.BuildResult => {
          switch (a.kind) {
            case 'rename':
              return group.rename(c, `n${a.n}`, at);
            case 'color':
              return group.setColor(c, `#${a.n}`, at);
            case 'leave':
              return group.leave(c, at);
            case 'add':
              return group.addMembers(c, [keyOf(5 + (a.target % 3)).id], at);
            case 'readd':
              return group.addMembers(c, [keyOf(a.target % 5).id], at);
            case 'remove':
              return group.removeMember(c, keyOf(a.target).id, at);
            case 'promote':
              return group.promote(c, [keyOf(a.target).id], at);
          }
        };
        actions.forEach((a, step) => {
          now += 700 + (step % 3) * 900;
          let made: group.GroupEvent | null = null;
          let deliverTo: number | null = null;
          switch (a.kind) {
            case 'rename':
            case 'color':
            case 'leave':
            case 'add':
            case 'remove':
            case 'promote':
            case 'readd': {
              const c = ctx(a.actor);
              const r = build(a, c, now);
              if (r.ok) {
                made = r.newEvents[0]!;
                stores[a.actor] = [...r.events];
              }
              break;
            }
            case 'sync':
              merge(a.to, stores[a.from]!);
              break;
            default: {
              attacks++;
              // The attacker is a member already removed when there is one (she keeps her store).
              const now5 = folded(group.foldEvents(chatId, [...promoted.events, ...pool.map((p) => p.event)])).state.members;
              const gone = [0, 1, 2, 3, 4].filter((i) => !now5.includes(five[i]!.id));
              const who = gone.length > 0 && a.kind !== 'forged' ? gone[a.actor % gone.length]! : a.actor;
              const mine = folded(group.foldEvents(chatId, stores[who]!));
              const top = pool.reduce((x, p) => (p.event.clock > x ? p.event.clock : x), mine.state.clock);
              if (a.kind === 'backdated') {
                // Below the newest event anyone made: parents only from what is older.
                const clock = top - BigInt(a.delta);
                const parents = mine.heads.filter((h) => mine.events.find((e) => group.compareBytes(e.id, h) === 0)!.clock < clock);
                made = group.signEvent(chatId, five[who]!, { type: EventType.MEMBERS_ADDED, clock, members: [outsider.id], parents });
              } else if (a.kind === 'future') {
                made = group.signEvent(chatId, five[who]!, { type: EventType.MEMBER_JOINED, clock: BigInt(now) + 110_000n, parents: mine.heads });
              } else if (a.kind === 'forged') {
                made = group.signEvent(chatId, outsider, { type: EventType.NAME_CHANGED, clock: top + 1n, name: 'forged', parents: mine.heads });
              } else {
                // Signed for another group; re-framed here it recovers an unrelated key.
                const foreign = group.signEvent(other.state.chatId, five[who]!, { type: EventType.MEMBERS_ADDED, clock: top + 1n, members: [outsider.id], parents: mine.heads });
                const d = group.decodeEvent(chatId, group.eventWireBytes(foreign));
                made = d.ok ? d.event : null;
                merge(a.to, [foreign]); // as-is: wrong chat id, refused on arrival
              }
              deliverTo = a.to;
            }
          }
          if (made !== null) {
            pool.push({ event: made, step });
            if (deliverTo !== null) merge(deliverTo, [made]);
          }
        });

        // Final delivery: every member gets every other store and the whole pool, in its own order, with duplicates.
        now += 200_000; // every clock made is now within the window
        for (let i = 0; i < 5; i++) {
          const sources = [0, 1, 2, 3, 4].filter((j) => j !== i).map((j) => [...stores[j]!]);
          const chunks = [...sources, pool.map((p) => p.event), pool.slice(0, shuffle[i]! % (pool.length + 1)).map((p) => p.event)];
          const rot = shuffle[5 + i]! % chunks.length;
          for (const chunk of [...chunks.slice(rot), ...chunks.slice(0, rot)]) {
            merge(i, shuffle[10]! % 2 === 0 ? chunk : [...chunk].reverse());
          }
        }
        const finals = stores.map((s) => folded(group.foldEvents(chatId, s)));
        const union = folded(group.foldEvents(chatId, [...promoted.events, ...pool.map((p) => p.event)]));
        for (const f of finals) assert.equal(stateKey(f.state), stateKey(union.state));

        // A removed member's later events: made by M after an applied removal of M was made,
        // with no applied re-add of M after that removal.
        const appliedSet = new Set(union.applied);
        const madeAt = new Map(pool.map((p) => [p.event, p.step]));
        const later: group.GroupEvent[] = [];
        for (const { event, step } of pool) {
          const removals = union.applied.filter((e) => e.type === EventType.MEMBER_REMOVED && e.members[0] === event.from && (madeAt.get(e) ?? -1) < step && madeAt.has(e));
          if (removals.length === 0) continue;
          const first = removals[0]!;
          const readded = union.applied.some((e) => e.type === EventType.MEMBERS_ADDED && e.members.includes(event.from) && group.compareEvents(e, first) > 0);
          if (!readded) later.push(event);
        }
        laterSeen += later.length;
        for (const e of later) assert.ok(!appliedSet.has(e), `a removed member's later ${EventType[e.type]} applied`);
        // Leaving out those no one built on changes nothing.
        const referenced = new Set(pool.flatMap((p) => p.event.parents.map((id) => [...id].join())));
        const leaves = new Set(later.filter((e) => !referenced.has([...e.id].join())));
        const without = folded(group.foldEvents(chatId, [...promoted.events, ...pool.map((p) => p.event).filter((e) => !leaves.has(e))]));
        assert.equal(stateKey(without.state), stateKey(union.state));
      });

  test(`all members converge; a removed member's later events never apply (${RUNS} runs)`, () => {
    attacks = 0;
    laterSeen = 0;
    fc.assert(property, {
      numRuns: RUNS,
      // A fixed seed, so npm test is reproducible; UMBRA_GROUP_SEED=random explores fresh seeds
      // (a failure prints its seed and path), UMBRA_GROUP_SEED=… UMBRA_GROUP_PATH=… replays one.
      ...(process.env.UMBRA_GROUP_SEED === undefined
        ? { seed: PROPERTY_SEED }
        : process.env.UMBRA_GROUP_SEED === 'random'
          ? {}
          : { seed: Number(process.env.UMBRA_GROUP_SEED), path: process.env.UMBRA_GROUP_PATH, endOnFailure: true }),
    });
    if (process.env.UMBRA_GROUP_SEED === undefined) {
      assert.ok(attacks > RUNS, `attacker events were generated (${attacks})`);
      assert.ok(laterSeen > 0, `some runs had a removed member's later events (${laterSeen})`);
    }
    console.log(`# property: ${RUNS} runs, ${attacks} attacker events, ${laterSeen} later events of removed members`);
  });

  // Found by a random seed on 2026-12-02 (docs/GROUPS.md §5.4): a member makes a parentless
  // (status-go style) event at a high clock, her removal (here her own leave) builds on it, and a
  // parentless MEMBERS_ADDED she signs afterwards with a lower clock was taken as before the
  // removal, because a parentless event stood for every parentless event below it, its own
  // author's included. It fails on the fold before that rule changed.
  test("counterexample: a removed member's parentless event does not vouch for her backdated parentless events", () => {
    fc.assert(property, { seed: -502373427, path: '146:5:4:7:8:8:8:14:14:8:4:4:4:4:4:4:4:4:4:4:4:4:4:4:4:4:4:4:4:4:5:5:5:5:5:5:5:5:5:5:5:5:5', endOnFailure: true });
  });
});
