import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  Engine,
  nobleProvider as crypto,
  serializeConversation,
  deserializeConversation,
  serializeInbox,
  deserializeInbox,
  UmbraError,
} from '../src/index.ts';
import { T0, startedPair, textBody, textOf } from './helpers.ts';

/** Rebuild an engine from nothing but serialized records (what a store would hold). */
function reopen(e: Engine, now = T0): Engine {
  const conversations = e.conversations().map((c) => deserializeConversation(serializeConversation(c)));
  const inboxes = e.allInboxes().map((i) => deserializeInbox(serializeInbox(i)));
  return new Engine(crypto, { account: e.account, inboxes, conversations }, now);
}

describe('state serialization', () => {
  it('a pending invitation survives a restart and is answered afterwards', async () => {
    let bob = Engine.create(crypto, T0);
    const inv = bob.createInvitation({ nowMs: T0, reusable: false, ttlSeconds: 600, presentation: { name: 'Bob' } });
    bob = reopen(bob);
    const alice = Engine.create(crypto, T0);
    const acc = await alice.acceptInvitation(inv.text, { nowMs: T0, presentation: { name: 'A' } });
    const late = await Engine.create(crypto, T0).acceptInvitation(inv.text, { nowMs: T0, presentation: { name: 'B' } });
    const r = await bob.receive(acc.outgoing.envelope, T0);
    assert.equal(r.kind, 'readable');
    bob = reopen(bob);
    const second = await bob.classify(late.outgoing.envelope, T0);
    assert.equal(second.kind === 'badly-formed' && second.reason, 'prekey-already-used', 'consumption persisted');
    assert.deepEqual(await bob.classify(acc.outgoing.envelope, T0), { kind: 'badly-formed', reason: 'handshake-replayed' }, 'and who consumed it');
  });

  it('mid-chain with skipped keys outstanding: both sides restart and keep talking', async () => {
    const pair = await startedPair();
    const { id } = pair;
    let { alice, bob } = pair;
    const m1 = alice.send(id, textBody('one'), T0).outgoing.envelope;
    const m2 = alice.send(id, textBody('two'), T0).outgoing.envelope;
    const m3 = alice.send(id, textBody('three'), T0).outgoing.envelope;
    assert.equal((await bob.receive(m3, T0)).kind, 'readable');
    assert.equal(bob.conversation(id)!.ratchet.skipped.size, 2);
    alice = reopen(alice);
    bob = reopen(bob);
    assert.equal(bob.conversation(id)!.ratchet.skipped.size, 2);
    const r1 = await bob.receive(m1, T0);
    assert.ok(r1.kind === 'readable' && textOf(r1.frames[0]!) === 'one');
    bob = reopen(bob);
    const r2 = await bob.receive(m2, T0);
    assert.ok(r2.kind === 'readable' && textOf(r2.frames[0]!) === 'two');
    assert.notEqual((await bob.receive(m2, T0)).kind, 'readable', 'replay after restart');
    const back = bob.send(id, textBody('pong'), T0).outgoing.envelope;
    assert.equal(reopen(bob).conversation(id)!.ratchet.sendCount, bob.conversation(id)!.ratchet.sendCount);
    const r3 = await alice.receive(back, T0);
    assert.ok(r3.kind === 'readable' && textOf(r3.frames[0]!) === 'pong');
  });

  it('serialization is stable: serialize ∘ deserialize is the identity on bytes', async () => {
    const { alice, id } = await startedPair();
    alice.send(id, textBody('x'), T0);
    const bytes = serializeConversation(alice.conversation(id)!);
    assert.deepEqual(serializeConversation(deserializeConversation(bytes)), bytes);
    const inbox = Engine.create(crypto, T0).createInvitation({ nowMs: T0, reusable: false, ttlSeconds: 5, presentation: { name: 'n' } }).inbox;
    const ib = serializeInbox(inbox);
    assert.deepEqual(serializeInbox(deserializeInbox(ib)), ib);
  });

  it('corrupt or unknown-version records are typed errors', () => {
    assert.throws(() => deserializeConversation(Uint8Array.of(0xff, 0xff)), (e: unknown) => e instanceof UmbraError && e.code === 'state-malformed');
    assert.throws(() => deserializeConversation(Uint8Array.of(0x08, 0x07)), (e: unknown) => e instanceof UmbraError && e.code === 'state-unsupported-version');
    assert.throws(() => deserializeInbox(Uint8Array.of(0x08, 0x01)), (e: unknown) => e instanceof UmbraError && e.code === 'state-malformed');
  });

  it('a small conversation record: measured size', async () => {
    const { alice, id } = await startedPair();
    const size = serializeConversation(alice.conversation(id)!).length;
    assert.ok(size < 1024, `conversation record is ${size} bytes`);
  });
});
