/** Bad input at every public API: typed errors (ClientError codes) and no state change. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, ClientError, MemoryNetwork, SqliteStore, MAX_TEXT_BYTES } from '../src/node.ts';
import { KEY_A, connect, openMemoryClient, texts, waitFor } from './helpers.ts';

async function snapshot(client: Client, conversationId: string): Promise<string> {
  return JSON.stringify({ list: await client.conversations({ consent: 'all' }), history: await texts(client, conversationId), pending: await client.pendingCount() });
}

test('bad input to Client.open and SqliteStore.open', async () => {
  const net = new MemoryNetwork();
  const bad: [unknown, string][] = [
    [undefined, 'invalid-argument'],
    [{}, 'invalid-argument'],
    [{ delivery: {} }, 'invalid-argument'],
    [{ delivery: net.adapter() }, 'invalid-argument'],
    [{ delivery: net.adapter(), dataDir: '/tmp/x', store: await SqliteStore.open({ path: ':memory:', key: KEY_A }) }, 'invalid-argument'],
    [{ delivery: net.adapter(), dataDir: '' }, 'invalid-argument'],
    [{ delivery: net.adapter(), store: await SqliteStore.open({ path: ':memory:', key: KEY_A }), profile: { name: 'x'.repeat(1000) } }, 'invalid-argument'],
    [{ delivery: net.adapter(), store: await SqliteStore.open({ path: ':memory:', key: KEY_A }), restoreAccountKey: new Uint8Array(5) }, 'invalid-argument'],
    [{ delivery: net.adapter(), store: await SqliteStore.open({ path: ':memory:', key: KEY_A }), maxInFlight: 1000 }, 'invalid-argument'],
    [{ delivery: net.adapter(), store: await SqliteStore.open({ path: ':memory:', key: KEY_A }), retry: { initialMs: -1 } }, 'invalid-argument'],
  ];
  for (const [options, code] of bad) {
    await assert.rejects(Client.open(options as never), (e: unknown) => e instanceof ClientError && e.code === code, JSON.stringify(options));
  }
  await assert.rejects(SqliteStore.open({ path: ':memory:' } as never), { code: 'invalid-argument' });
  await assert.rejects(SqliteStore.open({ path: ':memory:', key: new Uint8Array(31) }), { code: 'invalid-argument' });
  await assert.rejects(SqliteStore.open({ path: ':memory:', key: KEY_A, passphrase: 'x' }), { code: 'invalid-argument' });
  await assert.rejects(SqliteStore.open({ path: ':memory:', passphrase: '' }), { code: 'invalid-argument' });
  await assert.rejects(SqliteStore.open({ path: '/nonexistent-dir/x/y.db', key: KEY_A }), { code: 'store-corrupt' });
});

test('malformed, forged, expired and own invitations: typed errors, no state change', async () => {
  const net = new MemoryNetwork();
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const conv = await connect(alice, bob);
  const before = await snapshot(alice, conv.id);
  const good = (await bob.createInvitation()).text;
  const body = good.slice('umbra_chatintro_1_'.length);
  const flipped = body.slice(0, 60) + (body[60] === 'A' ? 'B' : 'A') + body.slice(61);
  const cases: [unknown, string][] = [
    [42, 'invalid-argument'],
    [null, 'invalid-argument'],
    ['', 'invitation-malformed'],
    ['hello', 'invitation-malformed'],
    ['umbra_chatintro_1_!!!!', 'invitation-malformed'],
    ['umbra_chatintro_1_' + 'A'.repeat(100), 'invitation-malformed'],
    [good.slice(0, good.length - 40), 'invitation-malformed'],
    ['umbra_chatintro_1_' + flipped, 'invitation-bad-signature'],
    ['x'.repeat(200_000), 'invitation-malformed'],
  ];
  for (const [text, code] of cases) {
    await assert.rejects(alice.accept(text as string), (e: unknown) => e instanceof ClientError && (e.code === code || (code === 'invitation-bad-signature' && e.code === 'invitation-malformed')), String(text).slice(0, 40));
  }
  await assert.rejects(bob.accept(good), { code: 'invitation-own' });
  // Carol's clock runs 10 s behind: her 1-second invitation has expired by Alice's clock.
  const carol = await openMemoryClient(net.adapter(), 'Carol', { now: () => Date.now() - 10_000 });
  const shortLived = (await carol.createInvitation({ ttlSeconds: 1 })).text;
  await assert.rejects(alice.accept(shortLived), { code: 'invitation-expired' });
  assert.equal(await snapshot(alice, conv.id), before);
  for (const c of [alice, bob, carol]) await c.close();
});

test('unknown conversation ids, bad ids, huge payloads, bad options: typed errors, no state change', async () => {
  const net = new MemoryNetwork();
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const conv = await connect(alice, bob);
  await alice.send(conv.id, 'baseline');
  await waitFor(async () => (await alice.pendingCount()) === 0);
  const before = await snapshot(alice, conv.id);
  const unknown = '0'.repeat(32);
  const expect = async (p: Promise<unknown> | (() => unknown), code: string) => {
    if (typeof p === 'function') assert.throws(p, (e: unknown) => e instanceof ClientError && e.code === code);
    else await assert.rejects(p, (e: unknown) => e instanceof ClientError && e.code === code);
  };
  await expect(alice.send(unknown, 'x'), 'unknown-conversation');
  await expect(alice.send('not-an-id', 'x'), 'invalid-argument');
  await expect(alice.send(42 as never, 'x'), 'invalid-argument');
  await expect(alice.send(conv.id, 42 as never), 'invalid-argument');
  await expect(alice.send(conv.id, 'x'.repeat(MAX_TEXT_BYTES + 1)), 'message-too-large');
  await expect(alice.send(conv.id, '€'.repeat(MAX_TEXT_BYTES / 3 + 1)), 'message-too-large');
  await expect(alice.send(conv.id, 'x', { replyTo: 'zz' }), 'invalid-argument');
  await expect(alice.history(unknown), 'unknown-conversation');
  await expect(alice.history(conv.id, { limit: 0 }), 'invalid-argument');
  await expect(alice.history(conv.id, { limit: 1.5 }), 'invalid-argument');
  await expect(alice.history(conv.id, { before: 'garbage' }), 'invalid-argument');
  await expect(alice.conversation(unknown), 'unknown-conversation');
  await expect(alice.conversations({ consent: 'weird' as never }), 'invalid-argument');
  await expect(alice.markRead(unknown), 'unknown-conversation');
  await expect(alice.markRead(conv.id, '1'.repeat(32)), 'invalid-argument');
  await expect(alice.setConsent(conv.id, 'maybe' as never), 'invalid-argument');
  await expect(alice.setConsent(unknown, 'denied'), 'unknown-conversation');
  await expect(alice.createInvitation({ ttlSeconds: -5 }), 'invalid-argument');
  await expect(alice.createInvitation({ ttlSeconds: 10 ** 12 }), 'invalid-argument');
  await expect(alice.createInvitation({ reusable: 'yes' as never }), 'invalid-argument');
  await expect(alice.receive('bytes' as never), 'invalid-argument');
  await expect(alice.pendingCount('nope'), 'invalid-argument');
  assert.equal(await snapshot(alice, conv.id), before);
  // The largest allowed message goes through.
  await alice.send(conv.id, 'y'.repeat(MAX_TEXT_BYTES));
  await waitFor(async () => (await texts(bob, conv.id)).length === 2);
  await alice.close();
  await expect(alice.send(conv.id, 'x'), 'client-closed');
  await expect(alice.history(conv.id), 'client-closed');
  await bob.close();
});

test('hostile envelopes from the network: garbage, truncations, replays, oversize — dropped, no state change', async () => {
  const net = new MemoryNetwork();
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const conv = await connect(alice, bob);
  const wire: Uint8Array[] = [];
  net.tap((_route, bytes) => wire.push(bytes));
  await alice.send(conv.id, 'real');
  await waitFor(async () => (await texts(bob, conv.id)).length === 1 && (await alice.pendingCount()) === 0);
  const before = await snapshot(bob, conv.id);
  const real = wire[wire.length - 1]!;
  const inputs: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array([1, 2, 3]),
    new Uint8Array(100_000),
    crypto.getRandomValues(new Uint8Array(500)),
    real.slice(0, real.length - 1),
    Uint8Array.from(real, (b, i) => (i === real.length - 5 ? b ^ 1 : b)),
  ];
  for (const bytes of inputs) {
    const r = await bob.receive(bytes);
    assert.ok(r === 'badly-formed' || r === 'not-for-me', r);
  }
  // Every envelope Alice ever sent, replayed: each is a recognised duplicate or not for Bob, never a new message.
  for (const bytes of wire) assert.notEqual(await bob.receive(bytes), 'readable');
  await bob.settle();
  assert.equal(await snapshot(bob, conv.id), before);
  await alice.close();
  await bob.close();
});

test('an envelope re-delivered 100 times is acknowledged at most once per duplicate-ack interval (no token drain)', async () => {
  const net = new MemoryNetwork();
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  // Bob's delivery counts what he publishes: through the services every publish costs one token.
  const bobDelivery = net.adapter();
  let bobPublishes = 0;
  const counting = {
    publish: (route: string, bytes: Uint8Array) => {
      bobPublishes++;
      return bobDelivery.publish(route, bytes);
    },
    subscribe: bobDelivery.subscribe.bind(bobDelivery),
    fetch: bobDelivery.fetch.bind(bobDelivery),
    close: bobDelivery.close.bind(bobDelivery),
  };
  const INTERVAL_MS = 1000;
  const bob = await openMemoryClient(counting, 'Bob', { duplicateAckIntervalMs: INTERVAL_MS });
  const conv = await connect(alice, bob);
  const wire: Uint8Array[] = [];
  net.tap((_route, bytes) => wire.push(bytes));
  await alice.send(conv.id, 'replay me');
  await waitFor(async () => (await texts(bob, conv.id)).length === 1 && (await alice.pendingCount()) === 0);
  await bob.settle();
  const real = wire[0]!;
  const acksBefore = bob.stats().acksSent;
  const publishesBefore = bobPublishes;
  const started = Date.now();
  // The attacker re-delivers the same bytes 100 times, spaced wider than Bob's ack batching delay.
  for (let i = 0; i < 100; i++) {
    assert.equal(await bob.receive(real), 'duplicate');
    await new Promise((r) => setTimeout(r, 5));
  }
  await bob.settle();
  await new Promise((r) => setTimeout(r, 50));
  await bob.settle();
  const intervals = Math.ceil((Date.now() - started) / INTERVAL_MS);
  const acks = bob.stats().acksSent - acksBefore;
  const publishes = bobPublishes - publishesBefore;
  assert.ok(acks <= intervals + 1, `${acks} acks for 100 duplicates over ${intervals} intervals`);
  assert.ok(publishes <= intervals + 1, `${publishes} publishes (tokens) for 100 duplicates over ${intervals} intervals`);
  // The re-acknowledgement is only deferred, never lost: a peer whose ack went missing still gets one.
  await waitFor(() => bob.stats().acksSent - acksBefore >= 1, 5000, 'one re-acknowledgement');
  assert.equal((await texts(bob, conv.id)).length, 1);
  await alice.close();
  await bob.close();
});
