/**
 * Waku end to end, every node in its own process on loopback: a hub (bootstrap + store peer),
 * four members (alice, bob, carol, dave: Umbra Engine + node crypto + WakuDelivery) and a
 * plain js-waku observer with no project code. Alice reaches everyone through the hub: two hops.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { killChildren } from './fixtures/children.ts';
import { OBSERVER_SCRIPT, PEER_SCRIPT, Proc } from './fixtures/waku-harness.ts';

interface Results {
  readable: number;
  notForMe: number;
  badlyFormed: Record<string, number>;
  viaRelay: number;
  viaFetch: number;
}
interface AdapterStats {
  published: number;
  received: number;
  delivered: number;
  duplicates: number;
  fetched: number;
}
interface ObserverStats {
  messages: number;
  decoded: number;
  failed: number;
  replayed: number;
  contentTopics: Record<string, number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stats(p: Proc): Promise<{ results: Results; delivery: AdapterStats }> {
  return (await p.request('stats')) as unknown as { results: Results; delivery: AdapterStats };
}

async function observerStats(p: Proc): Promise<ObserverStats> {
  return (await p.request('stats')).stats as ObserverStats;
}

/** Waits until `p` has received `text` (in any conversation); returns how many times it has. */
async function received(p: Proc, text: string, timeoutMs = 10_000): Promise<void> {
  await p.waitEvent((e) => e.event === 'text' && e.text === text, timeoutMs);
}

function count(p: Proc, text: string): number {
  return p.texts().filter((t) => t === text).length;
}

describe('Waku delivery across processes', { timeout: 90_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'umbra-waku-'));
  let hub: Proc, alice: Proc, bob: Proc, carol: Proc, dave: Proc, observer: Proc;
  let bootstrap: string[] = [];
  const conv: Record<string, string> = {}; // alice's conversation id with each member
  const convAtMember: Record<string, string> = {}; // the member's id of the same conversation
  let published = 0; // envelopes the members published (the observer must see each once)

  before(async () => {
    hub = await Proc.spawn('hub', PEER_SCRIPT);
    const started = hub.request('hub');
    [alice, bob, carol, dave, observer] = await Promise.all([
      Proc.spawn('alice', PEER_SCRIPT),
      Proc.spawn('bob', PEER_SCRIPT),
      Proc.spawn('carol', PEER_SCRIPT),
      Proc.spawn('dave', PEER_SCRIPT),
      Proc.spawn('observer', OBSERVER_SCRIPT),
    ]);
    bootstrap = (await started).multiaddrs as string[];
    await Promise.all([
      ...[alice, bob, carol, dave].map((p) => p.request('member', { name: p.label, bootstrap, statePath: join(dir, `${p.label}.json`) })),
      observer.request('start', { bootstrap }),
    ]);
    await Promise.all([alice, bob, carol, dave, observer].map((p) => p.request('ready')));
  });

  after(async () => {
    try {
      await Promise.all([alice, bob, carol, dave, observer, hub].filter((p) => p !== undefined).map((p) => p.stop()));
    } finally {
      // Also the processes a timed-out `before` spawned but never assigned.
      await killChildren();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  async function introduce(member: Proc): Promise<void> {
    const { text } = (await member.request('invite')) as { text: string };
    const { conversationId } = (await alice.request('accept', { text })) as { conversationId: string };
    published++;
    conv[member.label] = conversationId;
    const ev = await member.waitEvent((e) => e.event === 'started', 10_000);
    convAtMember[member.label] = ev.conversationId as string;
  }

  test('1:1: invitation, handshake and messages both ways over two hops', async () => {
    await introduce(bob);
    assert.equal(convAtMember.bob, conv.bob);
    await alice.request('send', { conversationIds: [conv.bob], text: 'hello bob' });
    published++;
    await received(bob, 'hello bob');
    await bob.request('send', { conversationIds: [convAtMember.bob], text: 'hi alice' });
    published++;
    await received(alice, 'hi alice');
    assert.equal(count(bob, 'hello bob'), 1);
    assert.equal(count(alice, 'hi alice'), 1);
  });

  test('group traffic: the same message fanned out pairwise to three members', async () => {
    await Promise.all([introduce(carol), introduce(dave)]);
    await alice.request('send', { conversationIds: [conv.bob, conv.carol, conv.dave], text: 'hello group' });
    published += 3;
    await Promise.all([bob, carol, dave].map((p) => received(p, 'hello group')));
    for (const p of [bob, carol, dave]) assert.equal(count(p, 'hello group'), 1, p.label);
    // each member classified only what its buckets carried; none was undecryptable
    for (const p of [alice, bob, carol, dave]) {
      const s = await stats(p);
      assert.deepEqual(Object.keys(s.results.badlyFormed), [], `${p.label}: ${JSON.stringify(s.results.badlyFormed)}`);
    }
  });

  test('gossip duplicates (same WakuMessage, different encoding) are absorbed by message hash', async () => {
    const before = { bob: await stats(bob), alice: await stats(alice) };
    await observer.request('replay', { on: true });
    for (let i = 0; i < 5; i++) {
      await alice.request('send', { conversationIds: [conv.bob], text: `dup-a${i}` });
      published++;
    }
    for (let i = 0; i < 2; i++) {
      await bob.request('send', { conversationIds: [convAtMember.bob], text: `dup-b${i}` });
      published++;
    }
    await Promise.all([...[0, 1, 2, 3, 4].map((i) => received(bob, `dup-a${i}`)), received(alice, 'dup-b0'), received(alice, 'dup-b1')]);
    const target = 7;
    const deadline = Date.now() + 10_000;
    while ((await observerStats(observer)).replayed < target && Date.now() < deadline) await sleep(50);
    await sleep(300); // let the replayed copies propagate
    await observer.request('replay', { on: false });
    const obs = await observerStats(observer);
    assert.ok(obs.replayed >= target, `observer replayed ${obs.replayed}`);
    const afterBob = await stats(bob);
    const afterAlice = await stats(alice);
    // every re-encoded copy that reached a member in its bucket was dropped by hash...
    assert.ok(afterBob.delivery.duplicates - before.bob.delivery.duplicates >= 5, `bob duplicates ${JSON.stringify(afterBob.delivery)}`);
    assert.ok(afterAlice.delivery.duplicates - before.alice.delivery.duplicates >= 2, `alice duplicates ${JSON.stringify(afterAlice.delivery)}`);
    // ...so none reached the engine (a second copy would be classified as a replay)...
    assert.deepEqual(afterBob.results.badlyFormed, {});
    assert.deepEqual(afterAlice.results.badlyFormed, {});
    // ...and the application saw each message exactly once.
    for (let i = 0; i < 5; i++) assert.equal(count(bob, `dup-a${i}`), 1);
    for (let i = 0; i < 2; i++) assert.equal(count(alice, `dup-b${i}`), 1);
  });

  test('a member killed mid-conversation catches up from the store peer after restart', async () => {
    const before = bob.texts();
    await bob.kill();
    for (let i = 0; i < 3; i++) {
      await alice.request('send', { conversationIds: [conv.bob], text: `while-down-${i}` });
      published++;
    }
    await sleep(300); // the hub's store takes them off the relay
    bob = await Proc.spawn('bob', PEER_SCRIPT);
    await bob.request('member', { name: 'bob', bootstrap, statePath: join(dir, 'bob.json') });
    await bob.request('ready');
    const { fetched } = (await bob.request('sync')) as { fetched: number };
    assert.ok(fetched >= 3, `fetched ${fetched}`);
    for (let i = 0; i < 3; i++) {
      await received(bob, `while-down-${i}`, 2000);
      assert.equal(count(bob, `while-down-${i}`), 1);
    }
    // nothing that the first process had already processed was shown again
    for (const t of before) assert.equal(count(bob, t), 0, `re-shown after restart: ${t}`);
    const s = await stats(bob);
    assert.equal(s.results.viaFetch, 3);
    // and the conversation goes on live, both ways
    await alice.request('send', { conversationIds: [conv.bob], text: 'after restart' });
    published++;
    await received(bob, 'after restart');
    await bob.request('send', { conversationIds: [convAtMember.bob], text: 'back online' });
    published++;
    await received(alice, 'back online');
  });

  test('a plain js-waku node (no project code) decoded a valid UmbraEnvelopeV1 from every message', async () => {
    const deadline = Date.now() + 5000;
    let obs = await observerStats(observer);
    while (obs.messages < published && Date.now() < deadline) {
      await sleep(50);
      obs = await observerStats(observer);
    }
    assert.equal(obs.messages, published, JSON.stringify(obs.contentTopics));
    assert.equal(obs.decoded, published);
    assert.equal(obs.failed, 0);
    for (const t of Object.keys(obs.contentTopics)) assert.match(t, /^\/umbra\/1\/([0-9]|1[0-5])\/proto$/);
  });
});
