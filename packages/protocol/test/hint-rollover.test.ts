// The hourly hint-window rollover in slices: Engine.tick indexes the new hour a bounded number
// of HMAC blocks per call, changes no conversation record, and ends with the table a freshly
// opened engine would build.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, nobleProvider as crypto } from '../src/index.ts';
import { HOUR_MS } from '../src/hints.ts';
import { T0, snapshot, textBody, textOf } from './helpers.ts';

const PEERS = 12;

/** One Bob with PEERS conversations (a reusable invitation), each peer having written once. */
async function bobWithPeers() {
  const bob = Engine.create(crypto, T0);
  const inv = bob.createInvitation({ nowMs: T0, reusable: true, ttlSeconds: 3600, presentation: { name: 'Bob' } });
  const peers: { engine: Engine; id: string }[] = [];
  for (let i = 0; i < PEERS; i++) {
    const engine = Engine.create(crypto, T0);
    const acc = await engine.acceptInvitation(inv.text, { nowMs: T0, presentation: { name: `peer ${i}` } });
    assert.equal((await bob.receive(acc.outgoing.envelope, T0)).kind, 'readable');
    peers.push({ engine, id: acc.conversation.id });
  }
  return { bob, peers };
}

/** A reopened engine once its table is built (it opens with none: indexing follows in slices). */
async function reopened(engine: Engine, nowMs: number): Promise<Engine> {
  const fresh = new Engine(crypto, { account: engine.account, inboxes: engine.allInboxes(), conversations: engine.conversations() }, nowMs);
  await fresh.indexHints();
  return fresh;
}

async function readable(bob: Engine, from: Engine, id: string, nowMs: number, text: string): Promise<void> {
  const r = await bob.receive(from.send(id, textBody(text), nowMs).outgoing.envelope, nowMs);
  assert.equal(r.kind, 'readable', text);
  if (r.kind === 'readable') assert.equal(textOf(r.frames[0]!), text);
}

describe('hint rollover in slices', () => {
  it('each tick computes at most its block budget; the result is the table a reopened engine builds', async () => {
    const { bob, peers } = await bobWithPeers();
    const next = T0 + HOUR_MS;
    const before = snapshot(bob).split('#')[0];
    let calls = 0;
    // 8 blocks per conversation and hour: 16 blocks = two conversations per call.
    const changes = bob.tick(next, { maxHintBlocks: 16 });
    calls++;
    assert.deepEqual(changes, { conversations: [], inboxes: [] }, 'no record changes at a rollover');
    assert.ok(bob.hintWorkPending(), 'one call does not index twelve conversations');
    while (bob.hintWorkPending()) {
      bob.tick(next, { maxHintBlocks: 16 });
      calls++;
      assert.ok(calls < 100, 'the rollover ends');
    }
    assert.ok(calls >= PEERS / 2, `${calls} calls for ${PEERS} conversations at two per call`);
    assert.equal(snapshot(bob).split('#')[0], before, 'conversation records unchanged');
    assert.equal(bob.hintTableSize(), (await reopened(bob, next)).hintTableSize());
    for (const [i, p] of peers.entries()) await readable(bob, p.engine, p.id, next, `next hour ${i}`);
    // The hour after that, envelopes stamped one hour ahead (a sender's fast clock) too.
    bob.tick(next + HOUR_MS);
    while (bob.hintWorkPending()) bob.tick(next + HOUR_MS);
    for (const [i, p] of peers.entries()) await readable(bob, p.engine, p.id, next + 2 * HOUR_MS, `a clock one hour ahead ${i}`);
    assert.equal(bob.hintTableSize(), (await reopened(bob, next + HOUR_MS)).hintTableSize());
  });

  it('a conversation the slices have not reached still reads the current and previous hour', async () => {
    const { bob, peers } = await bobWithPeers();
    const next = T0 + HOUR_MS;
    bob.tick(next, { maxHintBlocks: 8 }); // one conversation indexed for the new next hour
    assert.ok(bob.hintWorkPending());
    const last = peers[PEERS - 1]!;
    await readable(bob, last.engine, last.id, next, 'current hour, before the slices got here');
    await readable(bob, last.engine, last.id, T0, 'previous hour, late');
    while (bob.hintWorkPending()) bob.tick(next, { maxHintBlocks: 8 });
    assert.equal(bob.hintTableSize(), (await reopened(bob, next)).hintTableSize());
  });

  it('after days offline, and when the clock goes back, the table follows', async () => {
    const { bob, peers } = await bobWithPeers();
    const later = T0 + 72 * HOUR_MS;
    bob.tick(later);
    while (bob.hintWorkPending()) bob.tick(later);
    assert.equal(bob.hintTableSize(), (await reopened(bob, later)).hintTableSize());
    await readable(bob, peers[0]!.engine, peers[0]!.id, later, 'three days later');
    const back = T0 + 5 * HOUR_MS;
    bob.tick(back);
    while (bob.hintWorkPending()) bob.tick(back);
    assert.equal(bob.hintTableSize(), (await reopened(bob, back)).hintTableSize());
    await readable(bob, peers[1]!.engine, peers[1]!.id, back, 'after the clock went back');
  });

  it('a reopened engine with stale windows in its records listens afresh for the new hours', async () => {
    const { bob, peers } = await bobWithPeers();
    for (const [i, p] of peers.entries()) await readable(bob, p.engine, p.id, T0, `first hour ${i}`);
    const much = T0 + 10 * HOUR_MS;
    const fresh = new Engine(crypto, { account: bob.account, inboxes: bob.allInboxes(), conversations: bob.conversations() }, much);
    for (const [i, p] of peers.entries()) await readable(fresh, p.engine, p.id, much, `ten hours later ${i}`);
  });
});
