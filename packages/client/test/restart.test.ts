/** Restart/resume: close and reopen clients (on-disk stores) in every state. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { deserializeConversation, reliability } from '@umbra/protocol';
import { Client, MemoryNetwork, SqliteStore, type ClientOptions } from '../src/node.ts';
import { FAST, KEY_A, KEY_B, connect, tempDir, texts, waitFor } from './helpers.ts';

function opener(net: MemoryNetwork, dir: string) {
  return (name: 'alice' | 'bob', extra: Partial<ClientOptions> = {}) =>
    Client.open({ delivery: net.adapter(), dataDir: join(dir, name), key: name === 'alice' ? KEY_A : KEY_B, profile: { name }, ...FAST, ...extra });
}

test('restart with a pending invitation, and with a handshake that arrived while offline', async () => {
  const { dir, cleanup } = tempDir();
  const net = new MemoryNetwork();
  const open = opener(net, dir);
  let bob = await open('bob');
  const inv = await bob.createInvitation();
  await bob.close();
  bob = await open('bob'); // the inbox (and its one-time prekey) survived
  let alice = await open('alice');
  const conv = await alice.accept(inv.text);
  await waitFor(async () => (await bob.conversations()).length === 1);
  await bob.close();
  await alice.close();

  // Bob offline when Alice accepts a second invitation and writes: he catches up at open (fetch).
  bob = await open('bob');
  const inv2 = await bob.createInvitation({ reusable: true });
  await bob.close();
  alice = await open('alice');
  const conv2 = await alice.accept(inv2.text);
  await alice.send(conv2.id, 'sent while you were away');
  bob = await open('bob');
  await waitFor(async () => (await texts(bob, conv2.id)).length === 1, 5000, 'catch-up after restart');
  await waitFor(async () => (await alice.pendingCount()) === 0);
  assert.deepEqual((await bob.conversations()).map((c) => c.id).sort(), [conv.id, conv2.id].sort());
  await alice.close();
  await bob.close();
  cleanup();
});

test('restart mid-chain (both sides), history and read state survive, the ratchet continues', async () => {
  const { dir, cleanup } = tempDir();
  const net = new MemoryNetwork();
  const open = opener(net, dir);
  let alice = await open('alice');
  let bob = await open('bob');
  const conv = await connect(alice, bob);
  for (let i = 0; i < 5; i++) {
    await alice.send(conv.id, `a${i}`);
    await bob.send(conv.id, `b${i}`);
  }
  await waitFor(async () => (await texts(bob, conv.id)).length === 10 && (await texts(alice, conv.id)).length === 10 && (await alice.pendingCount()) === 0 && (await bob.pendingCount()) === 0);
  await bob.markRead(conv.id);
  const before = await texts(alice, conv.id);
  await alice.close();
  await bob.close();
  alice = await open('alice');
  bob = await open('bob');
  assert.deepEqual(await texts(alice, conv.id), before);
  assert.equal((await bob.conversation(conv.id)).unreadCount, 0);
  assert.equal((await alice.conversation(conv.id)).peerName, 'bob');
  // Both conversations were idle at the restart (all acked): their reliability state, left encoded
  // at open, still carries the Lamport clock on.
  const lamportBefore = Math.max(...(await alice.history(conv.id)).messages.map((m) => m.lamport));
  const sent = await alice.send(conv.id, 'after restart');
  assert.equal(sent.lamport, lamportBefore + 1, 'the Lamport clock continues from before the restart');
  await bob.send(conv.id, 'me too');
  await waitFor(async () => (await texts(bob, conv.id)).length === 12 && (await texts(alice, conv.id)).length === 12);
  assert.deepEqual(alice.stats().badlyFormed, {});
  assert.deepEqual(bob.stats().badlyFormed, {});
  await alice.close();
  await bob.close();
  cleanup();
});

test('restart with skipped keys outstanding and a message still in the outbox', async () => {
  const { dir, cleanup } = tempDir();
  const net = new MemoryNetwork();
  const open = opener(net, dir);
  let alice = await open('alice', { retry: { initialMs: 60_000, maxMs: 60_000 }, missingGraceMs: 60_000 });
  let bob = await open('bob', { missingGraceMs: 60_000 });
  const conv = await connect(alice, bob);
  net.setChaos({ loss: 1 });
  await alice.send(conv.id, 'first (lost)');
  net.setChaos({ loss: 0 });
  await alice.send(conv.id, 'second');
  await waitFor(async () => (await texts(bob, conv.id)).length === 1);
  await alice.close();
  await bob.close();
  // Bob's stored ratchet holds the skipped key of the lost message.
  const store = await SqliteStore.open({ path: join(dir, 'bob', 'umbra.db'), key: KEY_B });
  const state = deserializeConversation(reliability.decodeConversationRecord((await store.conversations.all())[0]!.state).conversationState);
  assert.ok(state.ratchet.skipped.size >= 1, 'skipped key persisted');
  await store.close();
  // Reopen with fast retries: the outbox re-sends the same bytes and Bob opens them with the stored skipped key.
  alice = await open('alice');
  bob = await open('bob');
  await waitFor(async () => (await texts(bob, conv.id)).length === 2, 5000, 'the outbox retry after restart');
  assert.deepEqual(await texts(bob, conv.id), ['<first (lost)', '<second']);
  await waitFor(async () => (await alice.pendingCount()) === 0);
  await alice.close();
  await bob.close();
  cleanup();
});

test('restart with messages queued beyond the in-flight window', async () => {
  const { dir, cleanup } = tempDir();
  const net = new MemoryNetwork();
  const open = opener(net, dir);
  let alice = await open('alice', { maxInFlight: 2 });
  let bob = await open('bob');
  const conv = await connect(alice, bob);
  await bob.close(); // no acks while Bob is away
  for (let i = 0; i < 8; i++) await alice.send(conv.id, `q${i}`);
  assert.equal(await alice.pendingCount(conv.id), 8);
  await alice.close();
  alice = await open('alice', { maxInFlight: 2 });
  bob = await open('bob');
  await waitFor(async () => (await texts(bob, conv.id)).length === 8 && (await alice.pendingCount()) === 0, 10_000, 'the queue to drain');
  assert.deepEqual(await texts(bob, conv.id), Array.from({ length: 8 }, (_, i) => `<q${i}`));
  await alice.close();
  await bob.close();
  cleanup();
});

test('offline for three days: what waited in the network is read at the next open', async () => {
  const { dir, cleanup } = tempDir();
  const net = new MemoryNetwork();
  let clock = Date.UTC(2026, 10, 22, 9, 0);
  const open = opener(net, dir);
  const timed = { now: () => clock };
  let alice = await open('alice', timed);
  let bob = await open('bob', timed);
  const conv = await connect(alice, bob);
  await bob.close();
  for (let i = 0; i < 5; i++) {
    await alice.send(conv.id, `day one ${i}`);
    clock += 20 * 60_000; // spread over more than an hour: several hint hours
  }
  await alice.close();
  clock += 3 * 24 * 3600_000;
  bob = await open('bob', timed);
  await waitFor(async () => (await texts(bob, conv.id)).length === 5, 5000, 'the waiting messages');
  assert.deepEqual(await texts(bob, conv.id), [0, 1, 2, 3, 4].map((i) => `<day one ${i}`));
  alice = await open('alice', timed);
  await waitFor(async () => (await alice.pendingCount(conv.id)) === 0, 5000, 'acks for the old messages');
  await bob.send(conv.id, 'back');
  await waitFor(async () => (await texts(alice, conv.id)).includes('<back'), 5000, 'the reply');
  await alice.close();
  await bob.close();
  cleanup();
});
