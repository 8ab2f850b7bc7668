/**
 * group/sessions.ts: who dials whom and what each bound session is owed, as pure decisions
 * over the member list (the client builds the frames).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { group } from '../src/index.ts';

const { cardsOwedTo, membersToDial, planSessions } = group;
const none = () => false;

function input(over: Partial<group.SessionPlanInput> = {}): group.SessionPlanInput {
  return {
    members: ['a', 'b', 'c', 'd'],
    self: 'c',
    bindings: {},
    isOpen: () => true,
    helloSent: none,
    hasCard: () => true,
    cardSent: none,
    deferred: [],
    ...over,
  };
}

describe('group sessions: who dials whom', () => {
  test('a member dials the members before it that it cannot reach yet', () => {
    assert.deepEqual(membersToDial(['a', 'b', 'c', 'd'], 'c', none), ['a', 'b']);
    assert.deepEqual(membersToDial(['a', 'b', 'c', 'd'], 'c', (m) => m === 'a'), ['b']);
    assert.deepEqual(membersToDial(['a', 'b', 'c', 'd'], 'a', none), []);
  });

  test('not a member: nobody to dial', () => {
    assert.deepEqual(membersToDial(['a', 'b'], 'z', none), []);
  });

  test('property: of any two members with no session, exactly one dials the other', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ unit: fc.constantFrom('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'), minLength: 1, maxLength: 4 }), { minLength: 2, maxLength: 12 }), fc.nat(), fc.nat(), (members, i, j) => {
        const x = members[i % members.length]!;
        const y = members[j % members.length]!;
        fc.pre(x !== y);
        const xDials = membersToDial(members, x, none).includes(y);
        const yDials = membersToDial(members, y, none).includes(x);
        assert.equal(xDials !== yDials, true);
      }),
      { numRuns: 300 },
    );
  });
});

describe('group sessions: introductions', () => {
  test('a peer is owed the cards of the members before it, never our own or its own', () => {
    assert.deepEqual(cardsOwedTo(['a', 'b', 'c', 'd'], 'b', 'd'), ['a', 'c']);
    assert.deepEqual(cardsOwedTo(['a', 'b', 'c', 'd'], 'b', 'a'), []);
    assert.deepEqual(cardsOwedTo(['a', 'b'], 'a', 'gone'), []);
  });

  test('property: whoever relays, every pair of members is introduced to the later one (the dialer)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ unit: fc.constantFrom('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'), minLength: 1, maxLength: 4 }), { minLength: 3, maxLength: 12 }), fc.nat(), fc.nat(), fc.nat(), (members, r, i, j) => {
        const relay = members[r % members.length]!;
        const x = members[i % members.length]!;
        const y = members[j % members.length]!;
        fc.pre(new Set([relay, x, y]).size === 3);
        // y needs x's card exactly when y dials x.
        assert.equal(cardsOwedTo(members, relay, y).includes(x), membersToDial(members, y, none).includes(x));
      }),
      { numRuns: 300 },
    );
  });
});

describe('group sessions: planSessions (reconcile)', () => {
  test('a hello and the owed cards on each live session to a current member, in binding order', () => {
    const plan = planSessions(input({ bindings: { c1: 'd', c0: 'a', cSelf: 'c' } }));
    assert.deepEqual(plan.steps, [
      { conversationId: 'c1', member: 'd', hello: true, introduce: ['a', 'b'], deliverDeferred: false },
      { conversationId: 'c0', member: 'a', hello: true, introduce: [], deliverDeferred: false },
    ]);
    assert.deepEqual(plan.dropDeferred, []);
  });

  test('what went out already is not owed again; cards we do not hold are not owed', () => {
    const plan = planSessions(input({
      bindings: { c1: 'd' },
      helloSent: (c) => c === 'c1',
      cardSent: (c, m) => c === 'c1' && m === 'a',
      hasCard: (m) => m !== 'b',
    }));
    assert.deepEqual(plan.steps, [{ conversationId: 'c1', member: 'd', hello: false, introduce: [], deliverDeferred: false }]);
  });

  test('sessions to removed members, or gone, get nothing', () => {
    const plan = planSessions(input({ members: ['a', 'c'], bindings: { c1: 'd', c2: 'a' }, isOpen: (c) => c !== 'c2' }));
    assert.deepEqual(plan.steps, []);
  });

  test('deferred messages: delivered once, on the first live session of the member; dropped for members who are gone', () => {
    const plan = planSessions(input({ bindings: { gone: 'a', c1: 'a', c2: 'a', c3: 'b' }, isOpen: (c) => c !== 'gone', deferred: ['a', 'x'] }));
    assert.deepEqual(plan.steps.map((s) => [s.conversationId, s.deliverDeferred]), [['c1', true], ['c2', false], ['c3', false]]);
    assert.deepEqual(plan.dropDeferred, ['x']);
  });
});
