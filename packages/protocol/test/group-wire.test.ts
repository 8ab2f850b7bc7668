/**
 * Group bindings, invites and introductions; and every group/v1 decoder on hostile bytes
 * (random, truncated, bit-flipped): a value or a typed error, never an exception.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { create } from '@bufbuild/protobuf';
import { group, nobleProvider, wire } from '../src/index.ts';
import { createInvitation } from '../src/invitation.ts';

const crypto = nobleProvider;
const NOW = Date.UTC(2026, 0, 1);

function must(r: group.BuildResult): Extract<group.BuildResult, { ok: true }> {
  if (!r.ok) throw new Error(`${r.code}: ${r.reason}`);
  return r;
}

/** A member: group key + the relationship identity their invitation carries. */
function member(name: string) {
  const key = group.generateGroupKey(crypto);
  const invitation = createInvitation(crypto, { nowMs: NOW, reusable: true, ttlSeconds: 3600, presentation: { name } });
  return { key, identity: invitation.inbox.identity, invitation: invitation.text };
}

const alice = member('alice');
const bob = member('bob');
const carol = member('carol');
const mallory = member('mallory');
const g = must(group.createGroup(crypto, { name: 'team', members: [bob.key.id, carol.key.id], nowMs: NOW, key: alice.key }));
const chatId = g.state.chatId;

describe('GroupBinding', () => {
  const binding = group.createGroupBinding(crypto, chatId, bob.key, bob.identity);

  test('verifies, and survives encode/decode', () => {
    const check = group.verifyGroupBinding(crypto, binding, chatId);
    assert.ok(check.ok);
    assert.equal(check.memberId, bob.key.id);
    const decoded = group.decodeGroupBinding(group.encodeGroupBinding(binding));
    assert.ok(decoded !== null);
    assert.ok(group.verifyGroupBinding(crypto, decoded, chatId).ok);
  });

  test('is bound to its chat', () => {
    assert.equal((group.verifyGroupBinding(crypto, binding, chatId + 'x') as { code?: string }).code, 'binding-wrong-chat');
    const moved = create(group.GroupBindingSchema, { ...binding, chatId: 'other-' + alice.key.id });
    assert.equal((group.verifyGroupBinding(crypto, moved, moved.chatId) as { code?: string }).code, 'binding-bad-identity-signature');
  });

  test("nobody can bind someone else's group key to their own identity", () => {
    // Mallory signs "my identity speaks for Bob's group key" but cannot sign with Bob's group key.
    const stolen = group.createGroupBinding(crypto, chatId, mallory.key, mallory.identity);
    const forged = create(group.GroupBindingSchema, {
      ...stolen,
      groupKey: bob.key.publicKey,
      identitySignature: crypto.ed25519Sign(mallory.identity.secretKey, group.bindingIdentityMessage(chatId, bob.key.publicKey)),
    });
    assert.equal((group.verifyGroupBinding(crypto, forged, chatId) as { code?: string }).code, 'binding-bad-group-signature');
    // Nor claim Bob's identity for Mallory's group key.
    const claimed = create(group.GroupBindingSchema, { ...stolen, identityKey: bob.identity.publicKey });
    assert.equal((group.verifyGroupBinding(crypto, claimed, chatId) as { code?: string }).code, 'binding-bad-identity-signature');
  });

  test('wrong sizes are malformed', () => {
    const short = create(group.GroupBindingSchema, { ...binding, groupSignature: binding.groupSignature.subarray(0, 64) });
    assert.equal((group.verifyGroupBinding(crypto, short, chatId) as { code?: string }).code, 'binding-malformed');
    assert.equal(group.decodeGroupBinding(group.encodeGroupBinding(short)), null);
  });
});

describe('GroupInvite', () => {
  const intros: group.IntroductionInput[] = [
    { binding: group.createGroupBinding(crypto, chatId, alice.key, alice.identity), invitation: alice.invitation },
    { binding: group.createGroupBinding(crypto, chatId, carol.key, carol.identity), invitation: carol.invitation },
    {
      binding: group.createGroupBinding(crypto, chatId, bob.key, bob.identity),
      endpoints: [create(wire.DeliveryEndpointSchema, { endpoint: { case: 'route', value: 'ab'.repeat(32) } })],
    },
  ];
  const bytes = group.encodeGroupInvite(chatId, g.events, intros);

  test('opens: events folded, introductions verified against the members', () => {
    const opened = group.openGroupInvite(crypto, bytes, { nowMs: NOW, self: bob.key.id });
    assert.ok(opened.ok, opened.ok ? '' : opened.reason);
    assert.deepEqual(opened.state.members, [alice.key.id, bob.key.id, carol.key.id]);
    assert.equal(opened.rejected.length, 0);
    assert.deepEqual(
      opened.introductions.map((i) => [i.memberId, i.contact.case]),
      [
        [alice.key.id, 'invitation'],
        [carol.key.id, 'invitation'],
        [bob.key.id, 'endpoints'],
      ],
    );
    // Events are carried verbatim.
    const decoded = group.decodeGroupInvite(bytes);
    assert.ok(decoded.ok);
    decoded.value.events.forEach((e, i) => assert.deepEqual(group.eventWireBytes(e), group.eventWireBytes(g.events[i]!)));
  });

  test('refused for a non-member; bad introductions are reported, not fatal', () => {
    const notMine = group.openGroupInvite(crypto, bytes, { nowMs: NOW, self: mallory.key.id });
    assert.ok(!notMine.ok);
    assert.equal(notMine.code, 'not-a-member');
    const bad = group.encodeGroupInvite(chatId, g.events, [
      // Mallory is not a member.
      { binding: group.createGroupBinding(crypto, chatId, mallory.key, mallory.identity), invitation: mallory.invitation },
      // Carol's binding with Mallory's invitation: identities differ.
      { binding: group.createGroupBinding(crypto, chatId, carol.key, carol.identity), invitation: mallory.invitation },
      // A binding for another chat.
      { binding: group.createGroupBinding(crypto, 'x-' + alice.key.id, alice.key, alice.identity), invitation: alice.invitation },
      // An invitation that does not parse.
      { binding: group.createGroupBinding(crypto, chatId, alice.key, alice.identity), invitation: 'umbra_chatintro_1_AAAA' },
    ]);
    const opened = group.openGroupInvite(crypto, bad, { nowMs: NOW });
    assert.ok(opened.ok);
    assert.equal(opened.introductions.length, 0);
    assert.deepEqual(
      opened.rejected.map((r) => r.code),
      ['introduction-not-a-member', 'introduction-identity-mismatch', 'binding-wrong-chat', 'introduction-bad-invitation'],
    );
  });

  test('an expired introduced invitation is rejected (the member stays pending)', () => {
    const later = group.openGroupInvite(crypto, bytes, { nowMs: NOW + 2 * 3600 * 1000 });
    assert.ok(later.ok);
    assert.deepEqual(
      later.rejected.map((r) => [r.code, r.memberId]),
      [
        ['introduction-bad-invitation', alice.key.id],
        ['introduction-bad-invitation', carol.key.id],
      ],
    );
  });

  test('a forged event in an invite is rejected on its own and reported; the rest still opens', () => {
    const forged = group.signEvent(chatId, mallory.key, { type: group.EventType.MEMBERS_ADDED, clock: g.state.clock + 1n, members: [mallory.key.id] });
    const r = group.openGroupInvite(crypto, group.encodeGroupInvite(chatId, [...g.events, forged], []), { nowMs: NOW });
    assert.ok(r.ok);
    assert.deepEqual(r.state.members, g.state.members);
    assert.deepEqual(
      r.folded.rejected.map((x) => [x.reason, x.event.from]),
      [['not-allowed', mallory.key.id]],
    );
  });

  test('an invite without a valid CHAT_CREATED is rejected as a whole', () => {
    const r = group.openGroupInvite(crypto, group.encodeGroupInvite(chatId, g.events.slice(1), []), { nowMs: NOW });
    assert.ok(!r.ok);
    assert.equal(r.code, 'no-chat-created');
  });
});

describe('hostile bytes never throw', () => {
  const update = group.encodeMembershipUpdate(
    chatId,
    g.events,
    { case: 'message', value: group.encodeGroupChatMessage({ chatId, clock: 1n, timestamp: 1n, text: 'hello' }) },
  );
  const invite = group.encodeGroupInvite(chatId, g.events, [
    { binding: group.createGroupBinding(crypto, chatId, bob.key, bob.identity), invitation: bob.invitation },
  ]);
  const binding = group.encodeGroupBinding(group.createGroupBinding(crypto, chatId, bob.key, bob.identity));
  const chat = group.encodeGroupChatMessage({ chatId, clock: 5n, timestamp: 5n, text: 'hi' });
  const reaction = group.encodeGroupEmojiReaction({ chatId, clock: 5n, messageId: '0x' + '00'.repeat(32), type: 1 });
  const eventWire = group.eventWireBytes(g.events[0]!);

  const decoders: [string, (b: Uint8Array) => unknown][] = [
    ['decodeMembershipUpdate', group.decodeMembershipUpdate],
    ['decodeEvent', (b) => group.decodeEvent(chatId, b)],
    ['decodeGroupInvite', group.decodeGroupInvite],
    ['openGroupInvite', (b) => group.openGroupInvite(crypto, b, { nowMs: NOW })],
    ['decodeGroupBinding', group.decodeGroupBinding],
    ['decodeGroupChatMessage', group.decodeGroupChatMessage],
    ['decodeGroupEmojiReaction', group.decodeGroupEmojiReaction],
    [
      'decode + fold',
      (b) => {
        const d = group.decodeMembershipUpdate(b);
        return d.ok ? group.mergeGroupEvents(d.value.chatId, [], d.value.events, NOW) : d;
      },
    ],
  ];
  const seeds = [update, invite, binding, chat, reaction, eventWire];

  const mutated = fc
    .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), fc.option(fc.nat()))
    .map(([seed, flips, cut]) => {
      const out = Uint8Array.from(seed);
      for (const [at, x] of flips) out[at % out.length]! ^= x;
      return cut === null ? out : out.subarray(0, cut % (out.length + 1));
    });

  for (const [name, decode] of decoders) {
    test(name, () => {
      fc.assert(
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }), mutated), (bytes) => {
          decode(bytes); // must return, whatever it returns
        }),
        { numRuns: name === 'openGroupInvite' || name === 'decodeGroupInvite' ? 150 : 400 },
      );
    });
  }

  test('valid seeds decode; oversize inputs are refused before parsing', () => {
    assert.ok(group.decodeMembershipUpdate(update).ok);
    assert.ok(group.decodeGroupInvite(invite).ok);
    assert.ok(group.decodeGroupBinding(binding) !== null);
    assert.ok(group.decodeGroupChatMessage(chat).ok);
    assert.ok(group.decodeGroupEmojiReaction(reaction).ok);
    assert.equal((group.decodeMembershipUpdate(new Uint8Array(group.MAX_MEMBERSHIP_UPDATE_BYTES + 1)) as { code?: string }).code, 'update-too-large');
    assert.equal((group.decodeGroupInvite(new Uint8Array(group.MAX_GROUP_INVITE_BYTES + 1)) as { code?: string }).code, 'invite-too-large');
    assert.equal((group.decodeEvent(chatId, new Uint8Array(65)) as { code?: string }).code, 'event-too-short');
    assert.equal((group.decodeEvent(chatId, new Uint8Array(65 + group.MAX_EVENT_BYTES + 1)) as { code?: string }).code, 'event-too-large');
    const longText = group.encodeGroupChatMessage({ chatId, clock: 1n, timestamp: 1n, text: 'x'.repeat(4097) });
    assert.equal((group.decodeGroupChatMessage(longText) as { code?: string }).code, 'entity-invalid');
  });

  test('events with malformed member ids or oversized fields are refused', () => {
    const key = alice.key;
    const weird = group.signEvent(chatId, key, { type: group.EventType.MEMBERS_ADDED, clock: 1n, members: ['0xabc'] });
    assert.equal((group.decodeEvent(chatId, group.eventWireBytes(weird)) as { code?: string }).code, 'event-bad-member');
    const upper = group.signEvent(chatId, key, { type: group.EventType.MEMBERS_ADDED, clock: 1n, members: [bob.key.id.toUpperCase().replace('0X', '0x')] });
    assert.equal((group.decodeEvent(chatId, group.eventWireBytes(upper)) as { code?: string }).code, 'event-bad-member');
    const big = group.signEvent(chatId, key, { type: group.EventType.NAME_CHANGED, clock: 1n, name: 'n'.repeat(group.MAX_GROUP_NAME_CHARS + 1) });
    assert.equal((group.decodeEvent(chatId, group.eventWireBytes(big)) as { code?: string }).code, 'event-field-too-large');
  });
});
