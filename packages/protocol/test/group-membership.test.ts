/**
 * group/membership.ts and sessions.ts's binding rule: the pure decisions the client takes after
 * a fold (our status, what changed, whether an invite re-adds us, whether a session may be
 * re-bound), checked on real signed events.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { group, nobleProvider, toHex } from '../src/index.ts';

const { EventType } = group;
const NOW = Date.UTC(2026, 0, 1);

function keyFor(n: number): group.GroupKeyPair {
  const sk = new Uint8Array(32);
  sk[31] = n;
  sk[0] = 0x22;
  return group.groupKeyFromSecret(sk);
}
const alice = keyFor(1);
const bob = keyFor(2);
const carol = keyFor(3);
const carol2 = keyFor(4);

function built(r: group.BuildResult): group.BuildResult & { ok: true } {
  assert.ok(r.ok, r.ok ? '' : r.reason);
  return r as group.BuildResult & { ok: true };
}

function fold(chatId: string, events: readonly group.GroupEvent[]): group.Folded {
  const f = group.foldGroup(chatId, events, NOW);
  assert.ok(f.ok);
  return f;
}

/** Alice creates a group with Bob and Carol. */
function base() {
  const r = built(group.createGroup(nobleProvider, { name: 'g', color: '#fa6565', members: [bob.id, carol.id], nowMs: NOW, key: alice }));
  return { chatId: r.state.chatId, events: r.events };
}

function before(f: group.Folded): group.FoldBefore {
  return { state: f.state, history: f.history, rejected: new Set(f.rejected.map((r) => toHex(r.event.id))) };
}

describe('group membership: status after a fold', () => {
  test('joining and removed become member when our key is in; member becomes removed when it is not; invited and left stay', () => {
    const cases: [group.MembershipStatus, boolean, group.MembershipStatus][] = [
      ['joining', true, 'member'],
      ['member', true, 'member'],
      ['removed', true, 'member'],
      ['member', false, 'removed'],
      ['joining', false, 'joining'],
      ['invited', true, 'invited'],
      ['invited', false, 'invited'],
      ['left', true, 'left'],
      ['left', false, 'left'],
      ['removed', false, 'removed'],
    ];
    for (const [status, inGroup, expected] of cases) assert.equal(group.statusAfterFold(status, inGroup), expected, `${status} ${inGroup}`);
  });
});

describe('group membership: what a fold changed', () => {
  test('new changes in fold order, the state change flagged; the same fold again changes nothing', () => {
    const g = base();
    const first = fold(g.chatId, g.events);
    const renamed = built(group.rename({ chatId: g.chatId, events: g.events, key: alice }, 'new name', NOW + 1));
    const second = fold(g.chatId, renamed.events);
    const d = group.foldDelta(before(first), second);
    assert.deepEqual(d.applied.map((h) => [h.kind, h.name]), [['renamed', 'new name']]);
    assert.deepEqual(d.rejected, []);
    assert.equal(d.stateChanged, true);
    const again = group.foldDelta(before(second), second);
    assert.deepEqual([again.applied, again.rejected, again.stateChanged], [[], [], false]);
  });

  test('a colour or image change alone is a state change; a rejected event is reported once; a pending one never', () => {
    const g = base();
    const first = fold(g.chatId, g.events);
    const image = built(group.setImage({ chatId: g.chatId, events: g.events, key: alice }, Uint8Array.of(1, 2, 3), NOW + 1));
    assert.equal(group.foldDelta(before(first), fold(g.chatId, image.events)).stateChanged, true);
    // Carol is no admin: her removing Bob is rejected.
    const refused = group.signEvent(g.chatId, carol, { type: EventType.MEMBER_REMOVED, clock: BigInt(NOW) + 70_000n, members: [bob.id], parents: first.heads.map((h) => h) });
    const withRefused = fold(g.chatId, [...g.events, refused]);
    const d = group.foldDelta(before(first), withRefused);
    assert.deepEqual(d.rejected.map((r) => r.reason), ['not-allowed']);
    assert.equal(d.stateChanged, false);
    assert.deepEqual(group.foldDelta(before(withRefused), withRefused).rejected, [], 'reported once');
    // An event whose parent we lack is pending, not refused.
    const orphan = group.signEvent(g.chatId, alice, { type: EventType.NAME_CHANGED, clock: BigInt(NOW) + 80_000n, name: 'later', parents: [new Uint8Array(32).fill(7)] });
    const pending = fold(g.chatId, [...g.events, orphan]);
    assert.ok(pending.rejected.some((r) => r.reason === 'missing-parent'));
    assert.deepEqual(group.foldDelta(before(first), pending).rejected, []);
  });
});

describe('group sessions: binding a session', () => {
  const history = (events: readonly group.GroupEvent[], chatId: string) => fold(chatId, events);

  test('unbound: bind; the same member: unchanged; a session bound to a current member never moves', () => {
    const g = base();
    const f = history(g.events, g.chatId);
    const input = { members: f.state.members, history: f.history, invited: false };
    assert.equal(group.decideSessionBinding({ ...input, current: undefined, next: carol.id }), 'bind');
    assert.equal(group.decideSessionBinding({ ...input, current: carol.id, next: carol.id }), 'unchanged');
    assert.equal(group.decideSessionBinding({ ...input, current: carol.id, next: carol2.id }), 'redirect');
    assert.equal(group.decideSessionBinding({ ...input, current: carol.id, next: carol2.id, invited: true }), 'redirect', 'not even for our invitation');
  });

  test('after a removal: our invitation may re-bind; a later addition by someone else may take over; one by the removed key may not', () => {
    const g = base();
    const removed = built(group.removeMember({ chatId: g.chatId, events: g.events, key: alice }, carol.id, NOW + 1));
    const afterRemoval = history(removed.events, g.chatId);
    const input = { members: afterRemoval.state.members, history: afterRemoval.history, current: carol.id, next: carol2.id };
    assert.equal(group.decideSessionBinding({ ...input, invited: true }), 'bind');
    assert.equal(group.decideSessionBinding({ ...input, invited: false }), 'redirect', 'carol2 is no member yet');
    const readded = built(group.addMembers({ chatId: g.chatId, events: removed.events, key: bob }, [carol2.id], NOW + 2));
    const afterAdd = history(readded.events, g.chatId);
    assert.equal(group.decideSessionBinding({ members: afterAdd.state.members, history: afterAdd.history, current: carol.id, next: carol2.id, invited: false }), 'bind');
    // An addition before the removal does not count.
    const early = built(group.addMembers({ chatId: g.chatId, events: g.events, key: bob }, [carol2.id], NOW + 1));
    const thenRemoved = built(group.removeMember({ chatId: g.chatId, events: early.events, key: alice }, carol.id, NOW + 2));
    const f = history(thenRemoved.events, g.chatId);
    assert.equal(group.decideSessionBinding({ members: f.state.members, history: f.history, current: carol.id, next: carol2.id, invited: false }), 'redirect');
  });
});

describe('group membership: re-invitations', () => {
  const bobIdentity = nobleProvider.ed25519Generate();
  const carolIdentity = nobleProvider.ed25519Generate();

  function invite(chatId: string, events: readonly group.GroupEvent[], from: group.GroupKeyPair, identity: { publicKey: Uint8Array; secretKey: Uint8Array }): group.DecodedGroupInvite {
    const binding = group.createGroupBinding(nobleProvider, chatId, from, identity);
    const decoded = group.decodeGroupInvite(group.encodeGroupInvite(chatId, events, [{ binding }]));
    assert.ok(decoded.ok);
    return decoded.value;
  }

  test('built after our removal, by a member on this session: a re-invitation; a stale hello that still lists us is not', () => {
    const g = base();
    const removed = built(group.removeMember({ chatId: g.chatId, events: g.events, key: alice }, carol.id, NOW + 1));
    const ours = new Set([carol.id]);
    const input = { chatId: g.chatId, held: removed.events, ours, peerIdentity: bobIdentity.publicKey, nowMs: NOW };
    assert.equal(group.isReinvitation(nobleProvider, { ...input, invite: invite(g.chatId, removed.events, bob, bobIdentity) }), true);
    assert.equal(group.isReinvitation(nobleProvider, { ...input, invite: invite(g.chatId, g.events, bob, bobIdentity) }), false, 'stale: lists carol');
    assert.equal(group.isReinvitation(nobleProvider, { ...input, invite: invite(g.chatId, removed.events, bob, carolIdentity) }), false, 'the binding is for another session');
  });

  test('not from someone whose removal we hold, even if the invite hides it', () => {
    const g = base();
    const carolOut = built(group.removeMember({ chatId: g.chatId, events: g.events, key: alice }, carol.id, NOW + 1));
    const bobOut = built(group.removeMember({ chatId: g.chatId, events: carolOut.events, key: alice }, bob.id, NOW + 2));
    const input = { chatId: g.chatId, held: bobOut.events, ours: new Set([carol.id]), peerIdentity: bobIdentity.publicKey, nowMs: NOW };
    // Bob sends the history without his own removal: by it he is a member, by what we hold he is not.
    assert.equal(group.isReinvitation(nobleProvider, { ...input, invite: invite(g.chatId, carolOut.events, bob, bobIdentity) }), false);
  });
});
