// An engine opens over its records without computing a hint; the table is built in slices
// afterwards, and an envelope that arrives before its conversation is indexed is still
// classified exactly as with a complete table: Readable, in order, exactly once; a stranger's
// envelope is NotForMe only once the table is complete.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, nobleProvider, type CryptoProvider, type PrivateConversation } from '../src/index.ts';
import { HOUR_MS } from '../src/hints.ts';
import { T0, bobWithPeers, textBody, textOf } from './helpers.ts';

const PEERS = 4;
/** Enough other conversations that the table takes several slices (24 blocks each, TICK_HINT_BLOCKS per slice). */
const SYNTHETIC = 60;

/** Counts HMAC-SHA512s (hint blocks, chain steps) made through it, one or a batch at a time. */
/**
 * Counts hint MACs, and apart from them the warm-up blocks (`indexHints` warms the MAC code
 * under an all-zero key, which no conversation's hint key is), with the order of both.
 */
function countingProvider(): { crypto: CryptoProvider; macs: () => number; events: string[] } {
  let macs = 0;
  const events: string[] = [];
  const crypto: CryptoProvider = {
    ...nobleProvider,
    hmacSha512(key, data) {
      macs++;
      return nobleProvider.hmacSha512(key, data);
    },
    hmacSha512Batch(key, messages, messageLength, count, out, outOffset) {
      if (key.every((b) => b === 0)) events.push(`warm ${count}`);
      else {
        macs += count;
        events.push('hints');
      }
      nobleProvider.hmacSha512Batch(key, messages, messageLength, count, out, outOffset);
    },
  };
  return { crypto, macs: () => macs, events };
}

function open(crypto: CryptoProvider, bob: Engine, records: readonly PrivateConversation[], nowMs: number, onYield: () => void = () => undefined): Engine {
  return new Engine(crypto, { account: bob.account, inboxes: bob.allInboxes(), conversations: records }, nowMs, {
    yieldToEventLoop: async () => {
      onYield();
      await new Promise<void>((resolve) => setImmediate(resolve));
    },
  });
}

describe('hint table built after opening', () => {
  it('new Engine computes no hint; indexHints builds the table a running engine holds', async () => {
    const { crypto, macs, events } = countingProvider();
    const { bob, records } = await bobWithPeers(crypto, PEERS, SYNTHETIC);
    const before = macs();
    let yields = 0;
    const reopened = open(crypto, bob, records, T0, () => {
      yields++;
      events.push('yield');
    });
    events.length = 0;
    assert.equal(macs() - before, 0, 'no MAC at open');
    assert.equal(reopened.hintTableSize(), 0);
    assert.ok(reopened.hintWorkPending());
    await reopened.indexHints();
    assert.ok(!reopened.hintWorkPending());
    assert.ok(yields >= 2, `${yields} yields: the work came in several slices`);
    // 8 blocks per conversation and hour, three hours.
    assert.equal(macs() - before, records.length * 24);
    // First the code is warmed on throwaway windows (a zero key), one per slice, until fast
    // (400 at most); then the real pass, which warms no more.
    const firstHints = events.indexOf('hints');
    const warmUp = events.slice(0, firstHints);
    const warmWindows = warmUp.filter((e) => e.startsWith('warm'));
    assert.ok(warmWindows.length >= 1 && warmWindows.length <= 400, `${warmWindows.length} warm-up windows`);
    assert.ok(warmUp.every((e, k) => e === 'yield' || warmUp[k - 1] === 'yield'), `a slice held one warm-up window: ${warmUp.join(' ')}`);
    assert.ok(!events.slice(firstHints).some((e) => e.startsWith('warm')), 'no warm-up once the hints began');
    const running = Engine.create(crypto, T0);
    running.commit({ conversations: records, inboxes: [] });
    assert.equal(reopened.hintTableSize(), running.hintTableSize());
    assert.equal(reopened.hintTableSize(), records.length * 96);
    // Concurrent callers share one run, and a finished table costs nothing more.
    const again = macs();
    await Promise.all([reopened.indexHints(), reopened.indexHints()]);
    assert.equal(macs(), again);
  });

  it('stopHintWork ends the background indexing after its slice (an engine replaced or closed)', async () => {
    const { crypto, macs } = countingProvider();
    const { bob, records } = await bobWithPeers(crypto, PEERS, SYNTHETIC);
    const reopened = open(crypto, bob, records, T0, () => undefined);
    const running = reopened.indexHints({ maxHintBlocks: 8 });
    reopened.stopHintWork();
    await running;
    const stoppedAt = macs();
    assert.ok(reopened.hintWorkPending(), 'the table is left unfinished');
    await reopened.indexHints();
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(macs(), stoppedAt, 'and nothing more is computed in the background');
  });

  it('envelopes arriving before their conversation is indexed are Readable, in order, exactly once', async () => {
    const { crypto } = countingProvider();
    const { bob, peers, records } = await bobWithPeers(crypto, PEERS, SYNTHETIC);
    const last = peers[PEERS - 1]!;
    const texts = ['one', 'two', 'three'];
    const envelopes = texts.map((t) => last.engine.send(last.id, textBody(t), T0).outgoing.envelope);
    let yields = 0;
    const reopened = open(crypto, bob, records, T0, () => yields++);
    for (const [i, envelope] of envelopes.entries()) {
      const r = await reopened.receive(envelope, T0); // no route: it has to wait for the table
      assert.equal(r.kind, 'readable', texts[i]);
      if (r.kind === 'readable') {
        assert.equal(r.conversationId, last.id);
        assert.equal(textOf(r.frames[0]!), texts[i]);
      }
    }
    assert.ok(yields >= 1, 'the first envelope waited for slices');
    // Its slot has left the window, as in an engine that never reopened: not read a second time.
    for (const envelope of envelopes) assert.notEqual((await reopened.receive(envelope, T0)).kind, 'readable', 'a second delivery is not read again');
    // A reply in the same order from another peer, and the conversation keeps going.
    const reply = reopened.send(last.id, textBody('back'), T0).outgoing.envelope;
    const back = await last.engine.receive(reply, T0);
    assert.equal(back.kind, 'readable');
  });

  it('with the route known, the conversations on it are indexed at once and read without waiting', async () => {
    const { crypto } = countingProvider();
    const { bob, peers, records } = await bobWithPeers(crypto, PEERS, SYNTHETIC);
    const last = peers[PEERS - 1]!;
    const envelope = last.engine.send(last.id, textBody('by route'), T0).outgoing.envelope;
    let yields = 0;
    const reopened = open(crypto, bob, records, T0, () => yields++);
    const r = await reopened.classify(envelope, T0, { route: last.route });
    assert.equal(r.kind, 'readable');
    if (r.kind === 'readable') assert.equal(textOf(r.frames[0]!), 'by route');
    assert.equal(yields, 0, 'no slice awaited');
    assert.ok(reopened.hintWorkPending(), 'the rest is still pending');
    reopened.commit(r.kind === 'readable' ? r.changes : { conversations: [], inboxes: [] });
    await reopened.indexHints();
    // The conversation indexed early and then changed by the commit holds the same entries as a fresh build.
    const fresh = open(crypto, bob, reopened.conversations(), T0);
    await fresh.indexHints();
    assert.equal(reopened.hintTableSize(), fresh.hintTableSize());
  });

  it("a stranger's envelope is NotForMe only once the table is complete", async () => {
    const { crypto } = countingProvider();
    const { bob, records } = await bobWithPeers(crypto, PEERS, SYNTHETIC);
    const stranger = await bobWithPeers(crypto, PEERS, SYNTHETIC);
    const foreign = stranger.peers[0]!;
    const envelope = foreign.engine.send(foreign.id, textBody('not for bob'), T0).outgoing.envelope;
    const reopened = open(crypto, bob, records, T0);
    assert.deepEqual(await reopened.classify(envelope, T0), { kind: 'not-for-me' });
    assert.ok(!reopened.hintWorkPending(), 'the answer came from the complete table');
    assert.equal(reopened.hintTableSize(), records.length * 96);
  });

  it('an hour change before the first indexing finished: the next hour reads, the table matches a fresh open', async () => {
    const { crypto } = countingProvider();
    const { bob, peers, records } = await bobWithPeers(crypto, PEERS, SYNTHETIC);
    const reopened = open(crypto, bob, records, T0);
    reopened.tick(T0, { maxHintBlocks: 100 }); // part of the first pass
    assert.ok(reopened.hintWorkPending());
    const next = T0 + HOUR_MS;
    const last = peers[PEERS - 1]!;
    const envelope = last.engine.send(last.id, textBody('next hour'), next).outgoing.envelope;
    reopened.tick(next, { maxHintBlocks: 100 });
    const r = await reopened.receive(envelope, next);
    assert.equal(r.kind, 'readable');
    await reopened.indexHints();
    const fresh = open(crypto, bob, reopened.conversations(), next);
    await fresh.indexHints();
    assert.equal(reopened.hintTableSize(), fresh.hintTableSize());
  });
});
