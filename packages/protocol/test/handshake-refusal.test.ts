// Handshake refusal (docs/PROTOCOL.md §5): the inviter answers a first contact on a used or
// expired invitation with a signed refusal that only that acceptor can open and check.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, nobleProvider as crypto, reliability as rel, type ClassifyResult } from '../src/index.ts';
import { openRefusal, refusalHint, refusalKey, sealRefusal } from '../src/handshake-refusal.ts';
import { deserializeConversation, serializeConversation } from '../src/state.ts';
import * as wire from '../src/wire/codec.ts';
import { RefusalBodySchema } from '../src/wire/index.ts';
import { T0, textBody, usedInvitation } from './helpers.ts';
import { syntheticConversation } from './synthetic.ts';

function reply(r: ClassifyResult) {
  assert.equal(r.kind, 'badly-formed');
  return r.kind === 'badly-formed' ? r.reply : undefined;
}


describe('handshake refusal', () => {
  it('a used single-use invitation: the late acceptor gets a refusal it can read, to its own endpoints', async () => {
    const { bob, carol, c } = await usedInvitation();
    const r = await bob.classify(c.outgoing.envelope, T0 + 5);
    assert.equal(r.kind === 'badly-formed' && r.reason, 'prekey-already-used');
    const answer = reply(r)!;
    assert.equal(answer.reason, 'invitation-used');
    assert.deepEqual(answer.endpoints, c.conversation.ownEndpoints, 'delivered where the acceptor listens');
    const got = await carol.classify(answer.envelope, T0 + 10);
    assert.equal(got.kind, 'readable');
    if (got.kind !== 'readable') return;
    assert.equal(got.conversationId, c.conversation.id);
    assert.deepEqual(got.refused, { reason: 'invitation-used', refusedAt: T0 + 5 });
    assert.equal(got.frames.length, 0);
    assert.equal(got.changes.conversations.length, 0, 'the engine state does not change: the client records the refusal');
  });

  it('an expired invitation is refused with its reason', async () => {
    const bob = Engine.create(crypto, T0);
    const inv = bob.createInvitation({ nowMs: T0, reusable: true, ttlSeconds: 60, presentation: { name: 'Bob' } });
    const dana = Engine.create(crypto, T0);
    const d = await dana.acceptInvitation(inv.text, { nowMs: T0, presentation: { name: 'Dana' } });
    const answer = reply(await bob.classify(d.outgoing.envelope, T0 + 61_000))!;
    assert.equal(answer.reason, 'invitation-expired');
    const got = await dana.classify(answer.envelope, T0 + 61_000);
    assert.ok(got.kind === 'readable' && got.refused?.reason === 'invitation-expired');
    assert.equal(bob.conversations().length, 0);
  });

  it('the accepted contact re-sending its handshake is a replay, never refused', async () => {
    const { bob, a } = await usedInvitation();
    assert.deepEqual(await bob.classify(a.outgoing.envelope, T0 + 1), { kind: 'badly-formed', reason: 'handshake-replayed' });
    // Also after a restart (the index is rebuilt from the stored conversations).
    const reopened = new Engine(crypto, { account: bob.account, inboxes: bob.allInboxes(), conversations: bob.conversations().map((x) => deserializeConversation(serializeConversation(x))) }, T0);
    assert.deepEqual(await reopened.classify(a.outgoing.envelope, T0 + 1), { kind: 'badly-formed', reason: 'handshake-replayed' });
  });

  it('a refusal is bounded: once per first contact per 10 minutes, 32 an hour in all', async () => {
    const { bob, c, inv } = await usedInvitation();
    assert.ok(reply(await bob.classify(c.outgoing.envelope, T0)));
    assert.equal(reply(await bob.classify(c.outgoing.envelope, T0 + 60_000)), undefined, 'a retry within 10 minutes');
    assert.ok(reply(await bob.classify(c.outgoing.envelope, T0 + 11 * 60_000)), 'after 10 minutes, again (the first may have been lost)');
    let answered = 1; // Carol's: T0 is on the hour, so all of this is one hour's budget
    for (let i = 0; i < 40; i++) {
      const other = await Engine.create(crypto, T0).acceptInvitation(inv.text, { nowMs: T0, presentation: { name: `X${i}` } });
      if (reply(await bob.classify(other.outgoing.envelope, T0 + 12 * 60_000)) !== undefined) answered++;
    }
    assert.equal(answered, 32);
  });

  it('only the acceptor opens it, and only as the inviter signed it', async () => {
    const { bob, alice, carol, c } = await usedInvitation();
    const envelope = reply(await bob.classify(c.outgoing.envelope, T0))!.envelope;
    assert.deepEqual(await alice.classify(envelope, T0), { kind: 'not-for-me' }, 'another acceptor of the same invitation');
    const env = wire.decodeEnvelope(envelope)!;
    const payload = wire.decodeEncryptedPayload(env.payload)!;
    assert.equal(payload.encryption.case, 'handshakeRefusal');
    if (payload.encryption.case !== 'handshakeRefusal') return;
    const ct = payload.encryption.value.ciphertext;
    for (const at of [0, 20, ct.length - 1]) {
      const bad = ct.slice();
      bad[at]! ^= 1;
      const tampered = wire.encodeEnvelope(env.conversationHint, env.salt, wire.encodeEncryptedPayload({ case: 'handshakeRefusal', value: { $typeName: 'umbra.v1.HandshakeRefusal', ciphertext: bad } }));
      assert.deepEqual(await carol.classify(tampered, T0), { kind: 'badly-formed', reason: 'refusal-invalid' });
    }
    // Sealed with the right key but signed by someone else: a refusal the inviter did not make.
    const key = refusalKey(crypto, c.conversation.identity.secretKey, c.conversation.invitationId);
    const forged = sealRefusal(crypto, {
      key,
      invitationId: c.conversation.invitationId,
      initiatorIdentity: c.conversation.identity.publicKey,
      inviterIdentity: crypto.ed25519Generate(),
      reason: 'invitation-used',
      refusedAt: T0,
      salt: 1n,
    });
    assert.deepEqual(await carol.classify(forged, T0), { kind: 'badly-formed', reason: 'refusal-invalid' });
    // A refusal for Alice's handshake (her identity in the signature) does not refuse Carol's.
    const wrongContact = sealRefusal(crypto, {
      key,
      invitationId: c.conversation.invitationId,
      initiatorIdentity: alice.conversations()[0]!.identity.publicKey,
      inviterIdentity: bob.allInboxes()[0]!.identity,
      reason: 'invitation-used',
      refusedAt: T0,
      salt: 1n,
    });
    assert.deepEqual(await carol.classify(wrongContact, T0), { kind: 'badly-formed', reason: 'refusal-invalid' });
    // Anything else under the refusal hint is not a refusal.
    const dr = wire.encodeEnvelope(refusalHint(crypto, key), 1n, wire.encodeEncryptedPayload({ case: 'doubleRatchet', value: wire.doubleRatchetMessage(new Uint8Array(68), new Uint8Array(300)) }));
    assert.deepEqual(await carol.classify(dr, T0), { kind: 'badly-formed', reason: 'wrong-encryption-for-destination' });
  });

  it('the refusal body round-trips and a non-canonical body is refused', () => {
    const key = crypto.randomBytes(32);
    const inviter = crypto.ed25519Generate();
    const initiator = crypto.ed25519Generate().publicKey;
    const invitationId = crypto.randomBytes(16);
    const envelope = sealRefusal(crypto, { key, invitationId, initiatorIdentity: initiator, inviterIdentity: inviter, reason: 'invitation-expired', refusedAt: T0, salt: 7n });
    const env = wire.decodeEnvelope(envelope)!;
    assert.equal(env.conversationHint, refusalHint(crypto, key));
    const payload = wire.decodeEncryptedPayload(env.payload)!;
    if (payload.encryption.case !== 'handshakeRefusal') throw new Error('not a refusal');
    const expected = { key, invitationId, initiatorIdentity: initiator, inviterIdentityKey: inviter.publicKey };
    assert.deepEqual(openRefusal(crypto, payload.encryption.value, env.conversationHint, expected), { reason: 'invitation-expired', refusedAt: T0 });
    assert.equal(openRefusal(crypto, payload.encryption.value, 'ff'.repeat(16), expected), null, 'moved under another hint');
    assert.equal(openRefusal(crypto, payload.encryption.value, env.conversationHint, { ...expected, invitationId: crypto.randomBytes(16) }), null);
    assert.equal(RefusalBodySchema.typeName, 'umbra.v1.RefusalBody');
  });

  it('the acceptor stops listening once the inviter has answered, and the refusal hint is not a conversation hint', async () => {
    const bob = Engine.create(crypto, T0);
    const inv = bob.createInvitation({ nowMs: T0, reusable: true, ttlSeconds: 600, presentation: { name: 'Bob' } });
    const alice = Engine.create(crypto, T0);
    const a = await alice.acceptInvitation(inv.text, { nowMs: T0, presentation: { name: 'Alice' } });
    const key = refusalKey(crypto, a.conversation.identity.secretKey, a.conversation.invitationId);
    const refusal = sealRefusal(crypto, {
      key,
      invitationId: a.conversation.invitationId,
      initiatorIdentity: a.conversation.identity.publicKey,
      inviterIdentity: bob.allInboxes()[0]!.identity,
      reason: 'invitation-used',
      refusedAt: T0,
      salt: 1n,
    });
    assert.equal((await bob.receive(a.outgoing.envelope, T0)).kind, 'readable');
    const answer = bob.send(a.conversation.id, textBody('hi Alice'), T0);
    assert.equal((await alice.receive(answer.outgoing.envelope, T0)).kind, 'readable');
    assert.deepEqual(await alice.classify(refusal, T0), { kind: 'not-for-me' }, 'a refusal after the answer is no refusal');
  });

  it('after a restart the acceptor still recognises the refusal, by the hint its state keeps (no derivation) or, in a state stored before it was kept, by deriving it in the indexing slices', async () => {
    const { bob, carol, c } = await usedInvitation();
    const envelope = reply(await bob.classify(c.outgoing.envelope, T0))!.envelope;
    const [mine] = carol.conversations();
    assert.equal(mine!.refusalHint.length, 16, 'acceptInvitation keeps the hint');
    for (const stored of [serializeConversation(mine!), serializeConversation({ ...mine!, refusalHint: new Uint8Array(0) })]) {
      let hkdfs = 0;
      const counting = { ...crypto, hkdfSha256: (...args: Parameters<typeof crypto.hkdfSha256>) => (hkdfs++, crypto.hkdfSha256(...args)) };
      const kept = deserializeConversation(stored).refusalHint.length === 16;
      for (const snapshot of [{ conversations: [deserializeConversation(stored)] }, { conversations: [], storedConversations: [stored] }]) {
        hkdfs = 0;
        const reopened = new Engine(counting, { account: carol.account, inboxes: [], ...snapshot }, T0);
        assert.equal(hkdfs, 0, 'new Engine derives nothing');
        assert.equal(reopened.hintWorkPending(), true);
        const got = await reopened.classify(envelope, T0);
        assert.ok(got.kind === 'readable' && got.refused?.reason === 'invitation-used', `found (${kept ? 'kept' : 'derived'} hint)`);
        const again = new Engine(counting, { account: carol.account, inboxes: [], ...snapshot }, T0);
        hkdfs = 0;
        while (again.hintWorkPending()) again.tick(T0);
        assert.equal(hkdfs, kept ? 0 : 2, kept ? 'a kept hint is not derived' : 'a state without it derives it once');
      }
    }
    assert.throws(() => deserializeConversation(serializeConversation({ ...mine!, refusalHint: new Uint8Array(15) })), { code: 'state-malformed' });
  });

  it('an indexing slice counts a refusal hint at its cost: at most maxHintBlocks / 4 derived per tick (states stored before the hint was kept)', () => {
    let hkdfs = 0;
    const counting = { ...crypto, hkdfSha256: (...args: Parameters<typeof crypto.hkdfSha256>) => (hkdfs++, crypto.hkdfSha256(...args)) };
    // Even-numbered synthetic conversations are our first contacts, awaiting the first reply.
    const awaiting = Array.from({ length: 40 }, (_, i) => syntheticConversation(crypto, i, T0))
      .filter((x) => x.initiator)
      .map((x) => ({ ...x, refusalHint: new Uint8Array(0) }));
    const reopened = new Engine(counting, { account: crypto.ed25519Generate(), inboxes: [], conversations: [], storedConversations: awaiting.map((x) => serializeConversation(x)) }, T0);
    reopened.tick(T0, { maxHintBlocks: 40 });
    assert.equal(hkdfs, 2 * (40 / 4), 'two HKDFs per refusal hint, ten hints in the slice');
    while (reopened.hintWorkPending()) reopened.tick(T0, { maxHintBlocks: 40 });
    assert.equal(hkdfs, 2 * awaiting.length, 'every one derived in the later slices');
  });

  it('the reliability state keeps the refusal (and stops the handshake) across serialization', () => {
    const id = crypto.randomBytes(16);
    const sent = rel.onHandshakeSent(rel.EMPTY_RELIABILITY, id, T0, rel.DEFAULT_RELIABILITY_POLICY);
    const refused = rel.onHandshakeRefused(sent, { reason: 'invitation-used', refusedAt: T0 + 1 });
    assert.equal(refused.handshake, null);
    assert.deepEqual(refused.refusal, { reason: 'invitation-used', refusedAt: T0 + 1 });
    assert.deepEqual(rel.deserializeReliability(rel.serializeReliability(refused)).refusal, refused.refusal);
    assert.equal(rel.onHandshakeRefused(refused, { reason: 'invitation-expired', refusedAt: T0 + 2 }), refused, 'the first refusal stands');
    assert.equal(rel.deserializeReliability(rel.serializeReliability(sent)).refusal, null);
  });
});
