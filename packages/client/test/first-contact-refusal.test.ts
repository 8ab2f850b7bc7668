// A first contact on a used or expired invitation: the inviter's client answers with the
// protocol's signed refusal, and the acceptor's client shows it (issue 16, item 4) instead of
// "started" and an answer that never comes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, SqliteStore, type ClientEvent } from '../src/node.ts';
import { ClientError } from '../src/errors.ts';
import { FAST, KEY_A, MemoryNetwork, connect, openMemoryClient, waitFor } from './helpers.ts';

function collect(client: Client, type: ClientEvent['type']): ClientEvent[] {
  const seen: ClientEvent[] = [];
  client.on(type, (data: unknown) => seen.push({ type, data } as ClientEvent));
  return seen;
}

test('a used single-use invitation: the late acceptor is told, its messages fail, the inviter reports it', async () => {
  const net = new MemoryNetwork();
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const carolStore = await SqliteStore.open({ path: ':memory:', key: KEY_A });
  let carol = await Client.open({ delivery: net.adapter(), store: carolStore, profile: { name: 'Carol' }, ...FAST });
  const bobRefusals = collect(bob, 'first-contact-refused');
  const carolRefused = collect(carol, 'conversation-refused');

  const inv = await bob.createInvitation({ reusable: false });
  const toBob = await alice.accept(inv.text);
  await waitFor(async () => (await bob.conversations()).some((c) => c.id === toBob.id), 10_000, 'bob to see alice');

  const late = await carol.accept(inv.text);
  const hello = await carol.send(late.id, 'hi Bob, is this still you?');
  await waitFor(() => carolRefused.length > 0, 10_000, "carol to get bob's refusal");
  const info = (await carol.conversations()).find((c) => c.id === late.id)!;
  assert.equal(info.refusal?.reason, 'invitation-used');
  assert.equal(info.pendingCount, 0, 'the handshake and the message are no longer retried');
  const message = (await carol.history(late.id)).messages.find((m) => m.id === hello.id)!;
  assert.equal(message.status, 'failed');
  await assert.rejects(carol.send(late.id, 'again?'), (e: unknown) => e instanceof ClientError && e.code === 'conversation-refused');

  assert.equal(bobRefusals.length, 1);
  assert.deepEqual(bobRefusals[0]!.data, { invitationId: inv.invitationId, reason: 'invitation-used' });
  assert.equal(bob.stats().refusalsSent, 1);
  assert.deepEqual((await bob.conversations()).map((c) => c.id), [toBob.id], 'no conversation with carol');
  // Alice's conversation is untouched: her re-sent handshake (if any) is a replay, never refused.
  await alice.send(toBob.id, 'still here');
  await waitFor(async () => (await alice.history(toBob.id)).messages.every((m) => m.status === 'acked'), 10_000, 'alice acked');
  assert.equal((await alice.conversations())[0]!.refusal, null);

  // The refusal is kept with the conversation across a restart.
  await carol.close();
  carol = await Client.open({ delivery: net.adapter(), store: carolStore, ...FAST });
  assert.equal((await carol.conversations()).find((c) => c.id === late.id)!.refusal?.reason, 'invitation-used');
  await Promise.all([alice.close(), bob.close(), carol.close()]);
  await carolStore.close();
});

test('an expired invitation: the acceptor is told it expired', async () => {
  const net = new MemoryNetwork();
  let now = Date.now();
  const bob = await openMemoryClient(net.adapter(), 'Bob', { now: () => now });
  const dana = await openMemoryClient(net.adapter(), 'Dana');
  const refused = collect(dana, 'conversation-refused');
  const inv = await bob.createInvitation({ reusable: true, ttlSeconds: 60 });
  // Bob's clock passes the expiry before Dana's handshake reaches him.
  now += 61_000;
  const conv = await dana.accept(inv.text);
  await waitFor(() => refused.length > 0, 10_000, "dana to get bob's refusal");
  assert.equal((await dana.conversations()).find((c) => c.id === conv.id)!.refusal?.reason, 'invitation-expired');
  assert.equal((await bob.conversations()).length, 0);
  await Promise.all([bob.close(), dana.close()]);
});

test('a connected pair never sees a refusal', async () => {
  const net = new MemoryNetwork();
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const conv = await connect(alice, bob);
  await alice.send(conv.id, 'one');
  await waitFor(async () => (await alice.history(conv.id)).messages.every((m) => m.status === 'acked'), 10_000, 'acked');
  assert.equal(bob.stats().refusalsSent, 0);
  assert.equal((await alice.conversations())[0]!.refusal, null);
  await Promise.all([alice.close(), bob.close()]);
});
