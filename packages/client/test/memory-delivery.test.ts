/** The memory adapter: fetch cursors, seeded chaos, partitions (and a client riding out a partition). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryNetwork } from '../src/node.ts';
import { connect, openMemoryClient, texts, waitFor } from './helpers.ts';

test('fetch pages through a route log with opaque cursors', async () => {
  const net = new MemoryNetwork();
  const a = net.adapter();
  for (let i = 0; i < 3; i++) await a.publish('r', new Uint8Array([i]));
  const first = await a.fetch('r', null);
  assert.deepEqual(first.envelopes.map((e) => e.bytes[0]), [0, 1, 2]);
  await a.publish('r', new Uint8Array([3]));
  const next = await a.fetch('r', first.cursor);
  assert.deepEqual(next.envelopes.map((e) => e.bytes[0]), [3]);
  assert.deepEqual((await a.fetch('empty', null)).envelopes, []);
  await assert.rejects(a.fetch('r', 'bogus'));
});

test('chaos is reproducible from its seed', async () => {
  const run = async () => {
    const net = new MemoryNetwork({ seed: 7, loss: 0.3, duplicate: 0.3, reorder: 0.3, reorderDelayMs: [1, 3] });
    const got: number[] = [];
    const b = net.adapter();
    b.subscribe(['r'], (e) => got.push(e.bytes[0]!));
    const a = net.adapter();
    for (let i = 0; i < 50; i++) await a.publish('r', new Uint8Array([i]));
    await net.idle();
    return { got, stats: { ...net.stats } };
  };
  const x = await run();
  const y = await run();
  assert.deepEqual(x.stats, y.stats);
  assert.ok(x.stats.lost > 0 && x.stats.duplicated > 0 && x.stats.reordered > 0);
  assert.deepEqual([...x.got].sort((p, q) => p - q), [...y.got].sort((p, q) => p - q));
});

test('a partitioned client neither sends nor receives; after healing, the outbox and a fetch catch up', async () => {
  const net = new MemoryNetwork();
  const aliceNet = net.adapter();
  const alice = await openMemoryClient(aliceNet, 'Alice');
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const conv = await connect(alice, bob);
  net.partition(aliceNet);
  await alice.send(conv.id, 'from the island');
  await bob.send(conv.id, 'to the island');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal((await texts(bob, conv.id)).length, 1, 'only Bob’s own message');
  assert.equal((await texts(alice, conv.id)).length, 1, 'only Alice’s own message');
  net.heal();
  await alice.sync(); // what was pushed during the partition is still in the network's log
  await waitFor(async () => (await texts(bob, conv.id)).length === 2 && (await texts(alice, conv.id)).length === 2 && (await alice.pendingCount()) === 0 && (await bob.pendingCount()) === 0, 10_000);
  await alice.close();
  await bob.close();
});
