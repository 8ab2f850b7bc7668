// An engine opened over serialized conversations (`storedConversations`) keeps them encoded and
// decodes one when it is used: it reads, refuses, replays and indexes exactly as an engine opened
// over the decoded records, and the decoded ones it holds stay bounded (DECODED_LIMIT).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, nobleProvider as crypto, type ClassifyResult, type PrivateConversation } from '../src/index.ts';
import { DECODED_LIMIT } from '../src/engine.ts';
import {
  conversationHeader,
  conversationOrigin,
  conversationOwnEndpoints,
  conversationReceiveHints,
  conversationRefusalInputs,
  conversationWindowAt,
  deserializeConversation,
  serializeConversation,
} from '../src/state.ts';
import { hourOf, windowAt } from '../src/hints.ts';
import { T0, bobWithPeers, textBody, textOf, usedInvitation } from './helpers.ts';
import { syntheticConversation } from './synthetic.ts';

const PEERS = 3;
const SYNTHETIC = 40;

function openEncoded(engine: Engine, records: readonly PrivateConversation[], nowMs: number): Engine {
  return new Engine(crypto, { account: engine.account, inboxes: engine.allInboxes(), conversations: [], storedConversations: records.map((c) => serializeConversation(c)) }, nowMs);
}

function openDecoded(engine: Engine, records: readonly PrivateConversation[], nowMs: number): Engine {
  return new Engine(crypto, { account: engine.account, inboxes: engine.allInboxes(), conversations: records.map((c) => deserializeConversation(serializeConversation(c))) }, nowMs);
}


function reply(r: ClassifyResult) {
  assert.equal(r.kind, 'badly-formed');
  return r.kind === 'badly-formed' ? r.reply : undefined;
}

describe('conversations kept encoded', () => {
  it('the header, windows, endpoints and origin read from the bytes are what a full decode gives', async () => {
    const { bob, peers, records } = await bobWithPeers(crypto, PEERS, SYNTHETIC);
    const p0 = peers[0]!;
    assert.equal((await bob.receive(p0.engine.send(p0.id, textBody('seen'), T0).outgoing.envelope, T0)).kind, 'readable');
    let seenWindows = 0;
    for (const c of [...records, ...bob.conversations()]) {
      const bytes = serializeConversation(c);
      const full = deserializeConversation(bytes);
      const header = conversationHeader(bytes);
      assert.equal(header.id, full.id);
      assert.deepEqual(bytes.subarray(header.receiveHintKeyAt, header.receiveHintKeyAt + 32), full.receiveHintKey);
      assert.equal(header.awaitsFirstReply, full.initiator && full.ratchet.receivingChainKey === null);
      assert.deepEqual(conversationReceiveHints(bytes), full.receiveHints);
      for (let h = hourOf(T0) - 3; h <= hourOf(T0) + 3; h++) assert.deepEqual(conversationWindowAt(bytes, h), windowAt(full.receiveHints, h), `hour ${h}`);
      // The same record inside a larger buffer (the engine keeps the records of open end to end).
      const embedded = new Uint8Array(bytes.length + 7).fill(0xff);
      embedded.set(bytes, 3);
      const inPlace = conversationHeader(embedded, 3, 3 + bytes.length);
      assert.deepEqual({ ...inPlace, receiveHintKeyAt: inPlace.receiveHintKeyAt - 3 }, header);
      for (let h = hourOf(T0) - 3; h <= hourOf(T0) + 3; h++) assert.deepEqual(conversationWindowAt(embedded, h, 3, 3 + bytes.length), windowAt(full.receiveHints, h), `in place, hour ${h}`);
      assert.deepEqual(conversationRefusalInputs(bytes), { refusalHint: full.refusalHint, identitySecret: full.identity.secretKey, invitationId: full.invitationId });
      assert.deepEqual(conversationOwnEndpoints(bytes), full.ownEndpoints);
      const origin = conversationOrigin(bytes);
      seenWindows += full.receiveHints.hours.filter((w) => w.highest >= 0).length;
      assert.deepEqual([origin.createdAt, origin.initiator, origin.invitationId, origin.peerIdentity], [full.createdAt, full.initiator, full.invitationId, full.peerIdentity]);
    }
    assert.ok(seenWindows > 0, 'windows with envelopes seen, not only fresh ones (highest -1, a 10-byte varint)');
  });

  it('a truncated or mislabelled record is a typed error at open, not a crash', async () => {
    const { records } = await bobWithPeers(crypto, PEERS, SYNTHETIC);
    const bytes = serializeConversation(records[0]!);
    for (const bad of [bytes.subarray(0, bytes.length - 3), Uint8Array.of(0x0f, 1), Uint8Array.of(0x08, 2)]) {
      assert.throws(
        () => new Engine(crypto, { account: crypto.ed25519Generate(), inboxes: [], conversations: [], storedConversations: [bad] }, T0),
        (e: unknown) => e instanceof Error && 'code' in e && (e.code === 'state-malformed' || e.code === 'state-unsupported-version'),
      );
    }
  });

  it('reads, in order and once, before and after indexing; the table matches a decoded open', async () => {
    const { bob, peers, records } = await bobWithPeers(crypto, PEERS, SYNTHETIC);
    const last = peers[PEERS - 1]!;
    const envelopes = ['one', 'two'].map((t) => last.engine.send(last.id, textBody(t), T0).outgoing.envelope);
    const byRoute = last.engine.send(last.id, textBody('three'), T0).outgoing.envelope;
    const reopened = openEncoded(bob, records, T0);
    assert.equal(reopened.conversations().length, records.length);
    assert.deepEqual(reopened.receiveRoutes().sort(), openDecoded(bob, records, T0).receiveRoutes().sort());
    for (const [i, envelope] of envelopes.entries()) {
      const r = await reopened.receive(envelope, T0); // no route: waits for the slices
      assert.ok(r.kind === 'readable' && r.conversationId === last.id && textOf(r.frames[0]!) === ['one', 'two'][i]);
    }
    for (const envelope of envelopes) assert.notEqual((await reopened.receive(envelope, T0)).kind, 'readable');
    const r = await reopened.receive(byRoute, T0, { route: last.route });
    assert.ok(r.kind === 'readable' && textOf(r.frames[0]!) === 'three');
    const back = await last.engine.receive(reopened.send(last.id, textBody('back'), T0).outgoing.envelope, T0);
    assert.equal(back.kind, 'readable');
    await reopened.indexHints();
    const decoded = openDecoded(bob, reopened.conversations(), T0);
    await decoded.indexHints();
    assert.equal(reopened.hintTableSize(), decoded.hintTableSize());
    // A stranger's envelope is not for us.
    const stranger = await bobWithPeers(crypto, PEERS, SYNTHETIC);
    const foreign = stranger.peers[0]!;
    assert.deepEqual(await openEncoded(bob, records, T0).classify(foreign.engine.send(foreign.id, textBody('x'), T0).outgoing.envelope, T0), { kind: 'not-for-me' });
  });

  it('keeps its own copy of the records given: a caller that reuses their buffers after open changes nothing', async () => {
    const { bob, peers, records } = await bobWithPeers(crypto, PEERS, SYNTHETIC);
    const last = peers[PEERS - 1]!;
    const envelope = last.engine.send(last.id, textBody('after reuse'), T0).outgoing.envelope;
    const given = records.map((c) => serializeConversation(c));
    const reopened = new Engine(crypto, { account: bob.account, inboxes: bob.allInboxes(), conversations: [], storedConversations: given }, T0);
    for (const bytes of given) bytes.fill(0); // e.g. a store's row buffers, freed or reused
    const r = await reopened.receive(envelope, T0); // indexed from the engine's copies (hint keys and windows)
    assert.ok(r.kind === 'readable' && r.conversationId === last.id && textOf(r.frames[0]!) === 'after reuse');
    assert.deepEqual(reopened.conversation(peers[0]!.id), bob.conversation(peers[0]!.id));
  });

  it('a conversation alone on its route is found by the route before indexing (one id per route, no set)', async () => {
    const bob = Engine.create(crypto, T0);
    const inv = bob.createInvitation({ nowMs: T0, reusable: false, ttlSeconds: 600, presentation: { name: 'Bob' } });
    const alice = Engine.create(crypto, T0);
    const a = await alice.acceptInvitation(inv.text, { nowMs: T0, presentation: { name: 'Alice' } });
    assert.equal((await bob.receive(a.outgoing.envelope, T0)).kind, 'readable');
    const route = alice.conversation(a.conversation.id)!.ownEndpoints[0]!.endpoint.value as string;
    const others = Array.from({ length: SYNTHETIC }, (_, i) => syntheticConversation(crypto, i, T0));
    let waits = 0;
    const records = [...others, ...alice.conversations()].map((c) => serializeConversation(c));
    const reopened = new Engine(crypto, { account: alice.account, inboxes: [], conversations: [], storedConversations: records }, T0, {
      yieldToEventLoop: () => (waits++, Promise.resolve()),
    });
    const envelope = bob.send(a.conversation.id, textBody('on my route'), T0).outgoing.envelope;
    const r = await reopened.classify(envelope, T0, { route });
    assert.ok(r.kind === 'readable' && textOf(r.frames[0]!) === 'on my route');
    assert.equal(waits, 0, 'read at once, without waiting for indexing slices');
    assert.equal(reopened.hintWorkPending(), true);
  });

  it('an encoded acceptor recognises the refusal; an encoded inviter takes its contact re-sending the handshake as a replay', async () => {
    const { bob, carol, a, c } = await usedInvitation();
    const refusal = reply(await bob.classify(c.outgoing.envelope, T0))!.envelope;
    const carolAgain = openEncoded(carol, carol.conversations(), T0);
    const got = await carolAgain.classify(refusal, T0);
    assert.ok(got.kind === 'readable' && got.refused?.reason === 'invitation-used');
    const bobAgain = openEncoded(bob, bob.conversations(), T0);
    assert.deepEqual(await bobAgain.classify(a.outgoing.envelope, T0 + 1), { kind: 'badly-formed', reason: 'handshake-replayed' });
  });

  it('changed conversations beyond DECODED_LIMIT go back to their encoded form, unchanged', () => {
    const engine = Engine.create(crypto, T0);
    const many = Array.from({ length: DECODED_LIMIT + 5 }, (_, i) => syntheticConversation(crypto, i, T0));
    engine.commit({ conversations: many, inboxes: [] });
    const first = many[0]!;
    const again = engine.conversation(first.id)!;
    assert.notEqual(again, first, 'decoded afresh from its encoded form');
    assert.deepEqual(again, first);
    assert.equal(engine.conversation(first.id), again, 'and cached while used');
    assert.equal(engine.conversation(many.at(-1)!.id), many.at(-1), 'the recently changed stay as committed');
    assert.equal(engine.conversations().length, many.length);
  });
});
