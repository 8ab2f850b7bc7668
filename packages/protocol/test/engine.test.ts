import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Engine, nobleProvider as crypto, UmbraError, safetyNumber } from '../src/index.ts';
import { HOUR_MS } from '../src/hints.ts';
import { inboxRoute } from '../src/invitation.ts';
import * as wire from '../src/wire/codec.ts';
import { T0, snapshot, startedPair, textBody, textOf } from './helpers.ts';

async function roundTrip(from: Engine, to: Engine, id: string, text: string, now = T0) {
  const sent = from.send(id, textBody(text), now);
  const r = await to.receive(sent.outgoing.envelope, now);
  assert.equal(r.kind, 'readable', r.kind === 'badly-formed' ? r.reason : r.kind);
  if (r.kind === 'readable') assert.equal(textOf(r.frames[0]!), text);
  return sent;
}

describe('engine: first contact', () => {
  it('invitation → handshake → both sides talk; ids, presentations and safety numbers agree', async () => {
    const { alice, bob, id } = await startedPair();
    const a = alice.conversation(id)!;
    const b = bob.conversation(id)!;
    assert.ok(b, 'the responder derived the same conversation id');
    assert.equal(b.peerPresentation.name, 'Alice');
    assert.equal(a.peerPresentation.name, 'Bob');
    assert.equal(safetyNumber(crypto, a.identity.publicKey, a.peerIdentity), safetyNumber(crypto, b.identity.publicKey, b.peerIdentity));
    await roundTrip(bob, alice, id, 'hi Alice');
    await roundTrip(alice, bob, id, 'hi Bob');
    await roundTrip(alice, bob, id, 'twice');
  });

  it('sending and reading copy a conversation (and its ratchet state) with every field kept', async () => {
    const { alice, bob, id } = await startedPair();
    const keys = (o: object) => Object.keys(o).sort();
    const before = { a: alice.conversation(id)!, b: bob.conversation(id)! };
    await roundTrip(bob, alice, id, 'one'); // alice steps her ratchet
    await roundTrip(alice, bob, id, 'two');
    await roundTrip(alice, bob, id, 'three'); // on bob's current chain
    const after = { a: alice.conversation(id)!, b: bob.conversation(id)! };
    for (const side of ['a', 'b'] as const) {
      assert.notEqual(after[side], before[side]);
      assert.deepEqual(keys(after[side]), keys(before[side]));
      assert.deepEqual(keys(after[side].ratchet), keys(before[side].ratchet));
    }
  });

  it('the initiator may write again before any reply', async () => {
    const { alice, bob, id } = await startedPair();
    await roundTrip(alice, bob, id, 'one');
    await roundTrip(alice, bob, id, 'two');
  });

  it('the responder cannot send before the handshake arrives; unknown ids are a typed error', async () => {
    const bob = Engine.create(crypto, T0);
    assert.throws(() => bob.send('00'.repeat(16), textBody('x'), T0), (e: unknown) => e instanceof UmbraError && e.code === 'unknown-conversation');
  });

  it('a single-use invitation is answered once: the one-time prekey is consumed exactly once', async () => {
    const bob = Engine.create(crypto, T0);
    const inv = bob.createInvitation({ nowMs: T0, reusable: false, ttlSeconds: 600, presentation: { name: 'Bob' } });
    const a1 = await Engine.create(crypto, T0).acceptInvitation(inv.text, { nowMs: T0, presentation: { name: 'A1' } });
    const a2 = await Engine.create(crypto, T0).acceptInvitation(inv.text, { nowMs: T0, presentation: { name: 'A2' } });
    const r1 = await bob.classify(a1.outgoing.envelope, T0);
    const r2 = await bob.classify(a2.outgoing.envelope, T0);
    assert.equal(r1.kind, 'readable');
    assert.equal(r2.kind, 'readable', 'before commit, both are individually valid');
    if (r1.kind !== 'readable') return;
    assert.equal(r1.changes.inboxes[0]!.oneTimePrekeyConsumed, true);
    bob.commit(r1.changes);
    const second = await bob.classify(a2.outgoing.envelope, T0);
    assert.equal(second.kind === 'badly-formed' && second.reason, 'prekey-already-used');
    assert.equal(second.kind === 'badly-formed' && second.reply?.reason, 'invitation-used', 'the second acceptor is told (handshake-refusal.test.ts)');
    assert.deepEqual(await bob.classify(a1.outgoing.envelope, T0), { kind: 'badly-formed', reason: 'handshake-replayed' }, 'the first one is not refused');
  });

  it('a reusable invitation starts a separate conversation per person; a replayed handshake is refused', async () => {
    const bob = Engine.create(crypto, T0);
    const inv = bob.createInvitation({ nowMs: T0, reusable: true, ttlSeconds: 600, presentation: { name: 'Bob' } });
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const alice = Engine.create(crypto, T0);
      const acc = await alice.acceptInvitation(inv.text, { nowMs: T0, presentation: { name: `A${i}` } });
      const r = await bob.receive(acc.outgoing.envelope, T0);
      assert.equal(r.kind, 'readable');
      ids.add(acc.conversation.id);
      assert.deepEqual(await bob.classify(acc.outgoing.envelope, T0), { kind: 'badly-formed', reason: 'handshake-replayed' });
      await roundTrip(bob, alice, acc.conversation.id, `hello A${i}`);
    }
    assert.equal(ids.size, 3);
    assert.equal(bob.conversations().length, 3);
  });

  it('default inbox: route = HASH(client address); a first contact through it is marked as such', async () => {
    const bob = Engine.create(crypto, T0);
    const inbox = bob.defaultInbox(T0, { name: 'Bob' });
    assert.equal(bob.defaultInboxRoute(), inboxRoute(crypto, bob.account.publicKey));
    assert.equal(bob.defaultInbox(T0, { name: 'Bob' }).changes.inboxes.length, 0, 'created once');
    const p = bob.parseInvitation(inbox.text, T0 + 10 * 365 * 24 * HOUR_MS);
    assert.deepEqual(p.identityKey, bob.account.publicKey, 'the default inbox speaks for the account key');
    const alice = Engine.create(crypto, T0);
    const acc = await alice.acceptInvitation(inbox.text, { nowMs: T0, presentation: { name: 'Alice' } });
    const r = await bob.receive(acc.outgoing.envelope, T0);
    assert.equal(r.kind, 'readable');
    if (r.kind === 'readable') assert.equal(r.started?.viaDefaultInbox, true);
  });

  it('the inbox accepts no plaintext frame and nothing but a handshake', async () => {
    const bob = Engine.create(crypto, T0);
    const inv = bob.createInvitation({ nowMs: T0, reusable: true, ttlSeconds: 600, presentation: { name: 'Bob' } });
    const p = bob.parseInvitation(inv.text, T0);
    const { inboxHint } = await import('../src/invitation.ts');
    const hint = inboxHint(crypto, p.identityKey);
    const plain = wire.encodeEncryptedPayload({ case: 'plaintext', value: wire.create(wire.PlaintextSchema, { payload: new TextEncoder().encode('hello') }) });
    assert.deepEqual(await bob.classify(wire.encodeEnvelope(hint, 1n, plain), T0), { kind: 'badly-formed', reason: 'plaintext-refused' });
    const dr = wire.encodeEncryptedPayload({ case: 'doubleRatchet', value: wire.create(wire.DoubleRatchetMessageSchema, {}) });
    assert.deepEqual(await bob.classify(wire.encodeEnvelope(hint, 1n, dr), T0), { kind: 'badly-formed', reason: 'wrong-encryption-for-destination' });
    const junk = wire.encodeEncryptedPayload({ case: 'inboxHandshake', value: wire.create(wire.InboxHandshakeSchema, { enc: new Uint8Array(32), ciphertext: new Uint8Array(100) }) });
    assert.deepEqual(await bob.classify(wire.encodeEnvelope(hint, 1n, junk), T0), { kind: 'badly-formed', reason: 'handshake-undecryptable' });
    assert.equal(bob.conversations().length, 0);
  });

  it('an expired invitation no longer opens conversations', async () => {
    const bob = Engine.create(crypto, T0);
    const inv = bob.createInvitation({ nowMs: T0, reusable: true, ttlSeconds: 60, presentation: { name: 'Bob' } });
    const acc = await Engine.create(crypto, T0).acceptInvitation(inv.text, { nowMs: T0, presentation: { name: 'A' } });
    const late = await bob.classify(acc.outgoing.envelope, T0 + 61_000);
    assert.equal(late.kind === 'badly-formed' && late.reason, 'invitation-expired');
  });

  it('the handshake hides the initiator: its identity and ephemeral keys are not in the envelope', async () => {
    const { accepted } = await startedPair();
    const env = Buffer.from(accepted.outgoing.envelope);
    const c = accepted.conversation;
    assert.equal(env.indexOf(Buffer.from(c.identity.publicKey)), -1);
    assert.equal(env.indexOf(Buffer.from(c.peerIdentity)), -1);
  });
});

describe('engine: classify', () => {
  it('foreign envelopes are not-for-me; garbage is badly-formed; nothing changes', async () => {
    const { alice, bob, id } = await startedPair();
    const other = await startedPair();
    const foreign = other.alice.send(other.id, textBody('not yours'), T0).outgoing.envelope;
    const before = snapshot(bob);
    assert.deepEqual(await bob.classify(foreign, T0), { kind: 'not-for-me' });
    assert.deepEqual(await bob.classify(new Uint8Array([0xff, 0xff, 0xff]), T0), { kind: 'badly-formed', reason: 'envelope-malformed' });
    assert.deepEqual(await bob.classify(new Uint8Array(200_000), T0), { kind: 'badly-formed', reason: 'envelope-malformed' });
    assert.equal(snapshot(bob), before);
    await roundTrip(alice, bob, id, 'still fine');
  });

  it('classify does not change state until commit; a replay after commit is rejected', async () => {
    const { alice, bob, id } = await startedPair();
    const sent = alice.send(id, textBody('x'), T0);
    const before = snapshot(bob);
    const r = await bob.classify(sent.outgoing.envelope, T0);
    assert.equal(r.kind, 'readable');
    assert.equal(snapshot(bob), before, 'classify alone changes nothing');
    if (r.kind === 'readable') bob.commit(r.changes);
    assert.notEqual(snapshot(bob), before);
    const replay = await bob.classify(sent.outgoing.envelope, T0);
    assert.notEqual(replay.kind, 'readable');
  });

  it('property: flipping any byte of an envelope gives badly-formed or not-for-me and leaves state unchanged', async () => {
    const { alice, bob, id } = await startedPair();
    await roundTrip(bob, alice, id, 'warm up');
    const sent = alice.send(id, textBody('target'), T0);
    const before = snapshot(bob);
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), async (pos, x) => {
        const b = sent.outgoing.envelope.slice();
        b[pos % b.length]! ^= x;
        const r = await bob.classify(b, T0);
        // A flip inside the salt (field 2) leaves an authentic envelope: that is the only readable case.
        if (r.kind === 'readable') {
          const original = wire.decodeEnvelope(sent.outgoing.envelope)!;
          const mutated = wire.decodeEnvelope(b);
          assert.ok(mutated !== null && mutated.conversationHint === original.conversationHint);
          assert.deepEqual(mutated.payload, original.payload);
        } else {
          assert.ok(r.kind === 'badly-formed' || r.kind === 'not-for-me');
        }
      }),
      { numRuns: 400 },
    );
    assert.equal(snapshot(bob), before);
    const ok = await bob.receive(sent.outgoing.envelope, T0);
    assert.equal(ok.kind, 'readable');
  });

  it('the hint is bound to the ciphertext: a re-labelled envelope never decrypts, and nothing changes', async () => {
    const { alice, bob, id } = await startedPair();
    await roundTrip(bob, alice, id, 'warm up');
    const first = wire.decodeEnvelope(alice.send(id, textBody('first'), T0).outgoing.envelope)!;
    const second = wire.decodeEnvelope(alice.send(id, textBody('second'), T0).outgoing.envelope)!;
    const before = snapshot(bob);
    // The second envelope's payload under the first's hint: both hints are ones Bob listens for.
    const relabelled = wire.encodeEnvelope(first.conversationHint, second.salt, second.payload);
    assert.deepEqual(await bob.classify(relabelled, T0), { kind: 'badly-formed', reason: 'body-undecryptable' });
    // A hint that shares the 31-bit table key with a listened hint but differs after it: a
    // stranger's envelope as far as Bob can tell.
    const h = second.conversationHint;
    const sameKey = h.slice(0, 8) + (h[8] === '0' ? '1' : '0') + h.slice(9);
    assert.deepEqual(await bob.classify(wire.encodeEnvelope(sameKey, second.salt, second.payload), T0), { kind: 'not-for-me' });
    const junk = wire.encodeEncryptedPayload({ case: 'plaintext', value: wire.create(wire.PlaintextSchema, { payload: new Uint8Array(3) }) });
    assert.deepEqual(await bob.classify(wire.encodeEnvelope(sameKey, second.salt, junk), T0), { kind: 'not-for-me' });
    assert.deepEqual(await bob.classify(wire.encodeEnvelope(h, second.salt, new Uint8Array([0xff])), T0), { kind: 'badly-formed', reason: 'payload-malformed' });
    assert.equal(snapshot(bob), before);
    for (const env of [first, second]) {
      const r = await bob.receive(wire.encodeEnvelope(env.conversationHint, env.salt, env.payload), T0);
      assert.equal(r.kind, 'readable');
    }
  });

  it('envelopes of one conversation carry different hints, salts and header bytes', async () => {
    const { alice, id } = await startedPair();
    const hints = new Set<string>();
    const salts = new Set<bigint>();
    for (let i = 0; i < 50; i++) {
      const env = wire.decodeEnvelope(alice.send(id, textBody('same'), T0).outgoing.envelope)!;
      hints.add(env.conversationHint);
      salts.add(env.salt);
    }
    assert.equal(hints.size, 50);
    assert.equal(salts.size, 50);
  });

  it('after a long offline period the receiver resynchronises at the next hour', async () => {
    const { alice, bob, id } = await startedPair();
    // Alice sends 200 envelopes that are all lost.
    for (let i = 0; i < 200; i++) alice.send(id, textBody(`lost ${i}`), T0);
    const stuck = alice.send(id, textBody('beyond the window'), T0);
    assert.deepEqual(await bob.classify(stuck.outgoing.envelope, T0), { kind: 'not-for-me' });
    // Three days later both sides tick; hint indices restart at the new hour.
    const later = T0 + 72 * HOUR_MS;
    bob.tick(later);
    alice.tick(later);
    const r = await bob.receive(alice.send(id, textBody('back'), later).outgoing.envelope, later);
    assert.equal(r.kind, 'readable', 'found by hint; the 201 lost keys are within MAX_SKIP');
    if (r.kind === 'readable') assert.equal(textOf(r.frames[0]!), 'back');
    await roundTrip(bob, alice, id, 'welcome back', later);
  });

  it('envelopes that waited in the network for days are recognised by their delivery route', async () => {
    const { alice, bob, id } = await startedPair();
    const waiting = [0, 1, 2, 3, 4].map((i) => alice.send(id, textBody(`while you were away ${i}`), T0 + i * 1000).outgoing.envelope);
    const later = T0 + 72 * HOUR_MS;
    bob.tick(later);
    const route = bob.conversation(id)!.ownEndpoints[0]!;
    assert.equal(route.endpoint.case, 'route');
    const routeName = route.endpoint.case === 'route' ? route.endpoint.value : '';
    assert.deepEqual(await bob.classify(waiting[0]!, later), { kind: 'not-for-me' }, 'the hint alone no longer routes it');
    assert.deepEqual(await bob.classify(waiting[0]!, later, { route: 'somewhere else' }), { kind: 'not-for-me' });
    for (const i of [3, 0, 4, 1, 2]) {
      const r = await bob.receive(waiting[i]!, later, { route: routeName });
      assert.equal(r.kind, 'readable', `message ${i}`);
      if (r.kind === 'readable') assert.equal(textOf(r.frames[0]!), `while you were away ${i}`);
    }
    const replay = await bob.classify(waiting[2]!, later, { route: routeName });
    assert.equal(replay.kind, 'badly-formed', 'a replay through the route is still refused');
    // A stranger's envelope on our route is not ours.
    const other = await startedPair();
    const foreign = other.alice.send(other.id, textBody('x'), T0).outgoing.envelope;
    assert.deepEqual(await bob.classify(foreign, later, { route: routeName }), { kind: 'not-for-me' });
    alice.tick(later);
    await roundTrip(bob, alice, id, 'caught up', later);
  });

  it('a Node Buffer (even a pooled slice) classifies like the same bytes in a Uint8Array', async () => {
    const bob = Engine.create(crypto, T0);
    const inv = bob.createInvitation({ nowMs: T0, reusable: true, ttlSeconds: 600, presentation: { name: 'Bob' } });
    const alice = Engine.create(crypto, T0);
    const acc = await alice.acceptInvitation(inv.text, { nowMs: T0, presentation: { name: 'A' } });
    const pooled = (b: Uint8Array) => Buffer.concat([Buffer.from('xxxx'), Buffer.from(b)]).subarray(4);
    assert.equal((await bob.receive(pooled(acc.outgoing.envelope), T0)).kind, 'readable');
    const msg = alice.send(acc.conversation.id, textBody('buffer'), T0).outgoing.envelope;
    assert.equal((await bob.receive(pooled(msg), T0)).kind, 'readable');
  });
});
