/** The Client facade over a clean memory network: flows, history, read state, consent, events. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { reliability, serializeConversation, deserializeConversation, wire } from '@umbra/protocol';
import { sealFrame } from '../src/frames.ts';
import { Client, MemoryNetwork, SqliteStore, type ClientEvent, type Delivery } from '../src/node.ts';
import { FAST, KEY_A, KEY_B, connect, openMemoryClient, tempDir, texts, waitFor } from './helpers.ts';

test('invitation → accept → messages both ways, acked events, history and conversation list', async () => {
  const net = new MemoryNetwork();
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const started: string[] = [];
  bob.on('conversation-started', (c) => started.push(`${c.peerName}/${c.consent}/${c.origin}`));
  const acked: string[] = [];
  const sentEvents: string[] = [];
  alice.on('acked', (a) => acked.push(a.messageId));
  alice.on('sent', (a) => sentEvents.push(a.messageId));
  const conv = await connect(alice, bob);
  assert.deepEqual(started, ['Alice/allowed/invitation']);
  assert.equal((await alice.conversation(conv.id)).peerName, 'Bob');
  assert.equal((await alice.conversation(conv.id)).origin, 'accepted');
  const m1 = await alice.send(conv.id, 'hello bob');
  assert.equal(m1.status, 'queued', 'on disk; nothing outside this process has it yet');
  await waitFor(() => acked.includes(m1.id));
  assert.deepEqual(sentEvents, [m1.id], "'sent' once the network took it, before the ack");
  const reply = await bob.send(conv.id, 'hi alice', { replyTo: m1.id });
  await waitFor(async () => (await alice.pendingCount()) === 0 && (await bob.pendingCount()) === 0 && (await texts(alice, conv.id)).length === 2);
  assert.deepEqual(await texts(alice, conv.id), ['>hello bob', '<hi alice']);
  assert.deepEqual(await texts(bob, conv.id), ['<hello bob', '>hi alice']);
  const last = (await alice.history(conv.id)).messages[1]!;
  assert.equal(last.replyTo, m1.id);
  assert.equal(last.id, reply.id);
  assert.ok(last.lamport > m1.lamport, 'Lamport clock advances across the conversation');
  assert.equal((await alice.history(conv.id)).messages[0]!.status, 'acked');
  assert.equal((await alice.conversation(conv.id)).safetyNumber, (await bob.conversation(conv.id)).safetyNumber);
  assert.deepEqual((await alice.conversations()).map((c) => c.id), [conv.id]);
  await alice.close();
  await bob.close();
});

test("statuses tell the truth: 'queued' while no service takes the envelope (also after it is sealed and retried), 'sent' once one does, then 'acked'", async () => {
  const net = new MemoryNetwork();
  const inner = net.adapter();
  let down = false;
  // A delivery whose service can be unreachable: publish rejects, as ServicesDelivery's does.
  const flaky: Delivery = {
    publish: (route, bytes) => (down ? Promise.reject(new Error('connect ECONNREFUSED')) : inner.publish(route, bytes)),
    subscribe: (routes, onEnvelope) => inner.subscribe(routes, onEnvelope),
    fetch: (route, since) => inner.fetch(route, since),
    close: () => inner.close(),
  };
  const alice = await openMemoryClient(flaky, 'Alice');
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const events: string[] = [];
  alice.on('sent', (e) => events.push(`sent ${e.messageId}`));
  alice.on('acked', (e) => events.push(`acked ${e.messageId}`));
  alice.on('error', () => undefined);
  const conv = await connect(alice, bob);
  down = true;
  const m = await alice.send(conv.id, 'while the service is down');
  assert.equal(m.status, 'queued');
  await waitFor(() => alice.stats().publishFailures >= 2, 10_000, 'the first publish and a retry to fail');
  await alice.settle();
  assert.equal((await alice.history(conv.id)).messages.find((x) => x.id === m.id)!.status, 'queued', 'sealed and retried, still not taken by anyone');
  assert.equal(events.length, 0, "no sent or acked event while nothing takes it");
  down = false;
  await waitFor(() => events.includes(`acked ${m.id}`), 15_000, 'the retry to be taken and acknowledged');
  assert.deepEqual(events, [`sent ${m.id}`, `acked ${m.id}`]);
  assert.equal((await alice.history(conv.id)).messages.find((x) => x.id === m.id)!.status, 'acked');
  await alice.close();
  await bob.close();
});

test('history pagination walks back in Lamport order; read state and unread counts', async () => {
  const net = new MemoryNetwork();
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const conv = await connect(alice, bob);
  for (let i = 0; i < 25; i++) await alice.send(conv.id, `m${i}`);
  await waitFor(async () => (await bob.conversation(conv.id)).unreadCount === 25);
  const pages: string[][] = [];
  let before: string | undefined;
  for (;;) {
    const page = await bob.history(conv.id, { limit: 10, ...(before !== undefined ? { before } : {}) });
    pages.push(page.messages.map((m) => m.text!));
    if (page.cursor === null) break;
    before = page.cursor;
  }
  assert.deepEqual(pages.map((p) => p.length), [10, 10, 5]);
  assert.deepEqual(pages.reverse().flat(), Array.from({ length: 25 }, (_, i) => `m${i}`));
  const tenth = (await bob.history(conv.id, { limit: 25 })).messages[9]!;
  await bob.markRead(conv.id, tenth.id);
  assert.equal((await bob.conversation(conv.id)).unreadCount, 15);
  assert.equal((await bob.history(conv.id, { limit: 25 })).messages[9]!.read, true);
  assert.equal((await bob.history(conv.id, { limit: 25 })).messages[10]!.read, false);
  await bob.markRead(conv.id);
  assert.equal((await bob.conversation(conv.id)).unreadCount, 0);
  await alice.close();
  await bob.close();
});

test('default inbox: first contact is a request (no acks until accepted); accepting acknowledges', async () => {
  const net = new MemoryNetwork();
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const requests: string[] = [];
  bob.on('request', (c) => requests.push(c.peerName));
  const conv = await alice.accept(await bob.defaultInvitation());
  await alice.send(conv.id, 'may I?');
  await waitFor(async () => requests.length === 1 && (await bob.requests()).length === 1);
  await waitFor(async () => (await bob.requests())[0]!.unreadCount === 1);
  assert.deepEqual(await bob.conversations(), [], 'requests are not in the main list');
  await new Promise((r) => setTimeout(r, 150));
  assert.ok((await alice.pendingCount(conv.id)) >= 1, 'no acknowledgement leaks before consent');
  await bob.acceptRequest(conv.id);
  await waitFor(async () => (await alice.pendingCount(conv.id)) === 0);
  assert.equal((await bob.conversations())[0]!.id, conv.id);
  await alice.close();
  await bob.close();
});

test('denied: dropped silently — nothing stored, no event, no ack; sending to it is refused', async () => {
  const net = new MemoryNetwork();
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const conv = await connect(alice, bob);
  await bob.block(conv.id);
  let events = 0;
  bob.on('message', () => events++);
  const sent = await alice.send(conv.id, 'are you there?');
  await new Promise((r) => setTimeout(r, 200));
  await bob.settle();
  assert.equal(events, 0);
  assert.equal((await bob.history(conv.id)).messages.length, 0);
  await alice.settle();
  assert.equal((await alice.history(conv.id)).messages.find((m) => m.id === sent.id)!.status, 'sent', 'taken by the network, never acknowledged');
  assert.ok(bob.stats().received >= 1, 'the envelope was read (and the ratchet kept in step), then dropped');
  await assert.rejects(bob.send(conv.id, 'x'), { code: 'conversation-denied' });
  assert.deepEqual((await bob.conversations({ consent: 'denied' })).map((c) => c.id), [conv.id]);
  await alice.close();
  await bob.close();
});

test('missing events and retransmission answered from the sender store', async () => {
  const net = new MemoryNetwork();
  const alice = await openMemoryClient(net.adapter(), 'Alice', { retry: { initialMs: 60_000, maxMs: 60_000 }, fastRetransmitMs: 60_000 });
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const conv = await connect(alice, bob);
  const missing: string[] = [];
  bob.on('missing', (m) => missing.push(...m.messageIds));
  net.setChaos({ loss: 1 });
  const lost = await alice.send(conv.id, 'lost on the way');
  net.setChaos({ loss: 0 });
  await alice.send(conv.id, 'arrives, citing the lost one');
  // Alice's retry and fast-retransmit timers are a minute away: only Bob's retransmission request can recover it.
  await waitFor(async () => (await texts(bob, conv.id)).length === 2, 5000, 'recovery through a retransmission request');
  assert.deepEqual(missing, [lost.id]);
  assert.deepEqual(await texts(bob, conv.id), ['<lost on the way', '<arrives, citing the lost one']);
  assert.ok(alice.stats().retransmitRequestsAnswered >= 1);
  await alice.close();
  await bob.close();
});

test('events as an async iterator; duplicates of an envelope are dropped and re-acknowledged', async () => {
  const net = new MemoryNetwork({ duplicate: 1 });
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const iterator = bob.events();
  const conv = await connect(alice, bob);
  await alice.send(conv.id, 'once');
  const seen: ClientEvent['type'][] = [];
  for await (const e of iterator) {
    seen.push(e.type);
    if (e.type === 'message') break;
  }
  assert.deepEqual(seen, ['conversation-started', 'message']);
  await waitFor(() => bob.stats().duplicateEnvelopes >= 2);
  assert.equal((await texts(bob, conv.id)).length, 1);
  await alice.close();
  await bob.close();
});

test('a queue beyond the in-flight window is persisted and drained as acks arrive', async () => {
  const net = new MemoryNetwork();
  const alice = await openMemoryClient(net.adapter(), 'Alice', { maxInFlight: 4 });
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const conv = await connect(alice, bob);
  const sent = [];
  for (let i = 0; i < 10; i++) sent.push(await alice.send(conv.id, `q${i}`));
  assert.ok(sent.some((m) => m.status === 'queued'));
  await waitFor(async () => (await texts(bob, conv.id)).length === 10 && (await alice.pendingCount()) === 0);
  assert.deepEqual(await texts(bob, conv.id), Array.from({ length: 10 }, (_, i) => `<q${i}`));
  await alice.close();
  await bob.close();
});

test('closing right after a message arrives still sends its ack (short-lived clients such as the CLI)', async () => {
  const net = new MemoryNetwork();
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const bobStore = await SqliteStore.open({ path: ':memory:', key: KEY_B });
  let bob = await Client.open({ delivery: net.adapter(), store: bobStore, profile: { name: 'Bob' }, ...FAST });
  const conv = await connect(alice, bob);
  await bob.close();
  // Bob again, now with an ack timer a minute away: only the flush at close can send the ack.
  bob = await Client.open({ delivery: net.adapter(), store: bobStore, ...FAST, ackDelayMs: 60_000 });
  const sent = await alice.send(conv.id, 'ack me before you go');
  await waitFor(async () => (await texts(bob, conv.id)).length === 1, 5000, 'delivery');
  await bob.close();
  await waitFor(async () => (await alice.history(conv.id)).messages.some((m) => m.id === sent.id && m.status === 'acked'), 5000, 'the ack sent at close');
  await alice.close();
  await bobStore.close();
});

test('a store in the layout before the reliability machine opens: in-flight messages, a missing id and a pending handshake carry on', async () => {
  const { dir, cleanup } = tempDir();
  const net = new MemoryNetwork();
  const open = (name: string, key: Uint8Array) => Client.open({ delivery: net.adapter(), dataDir: join(dir, name), key, profile: { name }, ...FAST });
  let alice = await open('alice', KEY_A);
  let bob = await open('bob', KEY_B);
  const conv = await connect(alice, bob);
  await bob.close();
  for (let i = 0; i < 3; i++) await alice.send(conv.id, `offline ${i}`);
  let carol = await open('carol', KEY_B);
  const invitation = (await carol.createInvitation()).text;
  await carol.close();
  const toCarol = await alice.accept(invitation);
  await alice.close();

  // Rewrite Alice's store as the previous release left it: a bare PrivateConversationState per
  // conversation, the Lamport clock and recent ids in their columns, a missing id in its table;
  // the outbox (in-flight envelopes, the handshake) is what that release wrote too.
  const missingId = new Uint8Array(16).fill(0x5a);
  const store = await SqliteStore.open({ path: join(dir, 'alice', 'umbra.db'), key: KEY_A });
  const before = await store.conversations.all();
  const legacy = before.map((c) => {
    const record = reliability.decodeConversationRecord(c.state);
    assert.notEqual(record.reliability, null, 'the current release writes records');
    const state = serializeConversation(deserializeConversation(record.conversationState));
    return { meta: { ...c.meta, lamport: record.reliability!.lamport, recentIds: record.reliability!.recentIds }, state };
  });
  const now = Date.now();
  await store.write({ conversations: legacy });
  // The missing table is only read now (a migration source): the previous release's row, by SQL.
  store.rawForTests().prepare('INSERT INTO missing VALUES (?, ?, ?, 0, ?)').run(conv.id, missingId, now, now);
  assert.equal(reliability.decodeConversationRecord((await store.conversations.all())[0]!.state).reliability, null, 'legacy layout');
  assert.equal((await store.conversations.legacyMissing()).filter((m) => m.conversationId === conv.id).length, 1);
  assert.equal(await store.outbox.pendingCount(), 4, 'three messages and a handshake in the outbox');
  await store.close();

  // The new client migrates at open (one transaction: records written, the missing table emptied) and carries on.
  alice = await open('alice', KEY_A);
  bob = await open('bob', KEY_B);
  await waitFor(async () => (await texts(bob, conv.id)).length === 3, 10_000, 'the in-flight messages');
  assert.deepEqual(await texts(bob, conv.id), ['<offline 0', '<offline 1', '<offline 2']);
  await waitFor(async () => (await alice.pendingCount(conv.id)) === 0, 10_000, 'their acks');
  await waitFor(() => alice.stats().retransmitRequestsSent >= 1, 10_000, 'the missing id requested');
  carol = await open('carol', KEY_B);
  await waitFor(async () => (await carol.conversations()).some((c) => c.id === toCarol.id), 10_000, 'carol to get the handshake');
  await carol.send(toCarol.id, 'hello');
  await waitFor(async () => (await alice.pendingCount(toCarol.id)) === 0 && (await texts(alice, toCarol.id)).includes('<hello'), 10_000, 'the handshake acknowledged');
  await alice.close();
  const after = await SqliteStore.open({ path: join(dir, 'alice', 'umbra.db'), key: KEY_A });
  for (const c of await after.conversations.all()) assert.notEqual(reliability.decodeConversationRecord(c.state).reliability, null, 'migrated to records');
  assert.equal((await after.conversations.legacyMissing()).filter((m) => m.conversationId === conv.id).length, 0, 'missing ids moved into the reliability state');
  await after.close();
  await bob.close();
  await carol.close();
  cleanup();
});

test('a frame this version does not act on (a session reset) is reported in stats, not silently dropped; the conversation carries on', async () => {
  const net = new MemoryNetwork();
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const conv = await connect(alice, bob);
  // Test-only reach into Alice's engine: the SDK has no API that sends a session reset.
  const engine = (alice as unknown as { state: { engine: import('@umbra/protocol').Engine } }).state.engine;
  const sealed = sealFrame(engine, conv.id, { messageId: new Uint8Array(16).fill(9), lamport: 1, causalHistory: [], body: { case: 'sessionReset', value: wire.create(wire.SessionResetSchema, {}) } }, Date.now());
  engine.commit(sealed.changes);
  const before = await texts(bob, conv.id);
  assert.equal(await bob.receive(sealed.envelope), 'readable');
  assert.deepEqual(bob.stats().unhandledFrames, { 'session-reset': 1 });
  assert.deepEqual(await texts(bob, conv.id), before, 'nothing stored or shown');
  await alice.send(conv.id, 'still here');
  await waitFor(async () => (await texts(bob, conv.id)).includes('<still here') && (await alice.pendingCount()) === 0, 10_000, 'the next message');
  assert.deepEqual(bob.stats().badlyFormed, {});
  await alice.close();
  await bob.close();
});

test('a write that fails (send and receive) leaves engine and memory as they were: nothing published, the retry delivers once', async () => {
  const net = new MemoryNetwork();
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const conv = await connect(alice, bob);
  const failNextWrite = (store: { write: (b: never) => Promise<void> }) => {
    const write = store.write.bind(store);
    let armed = true;
    store.write = async (b: never) => {
      if (armed) {
        armed = false;
        throw new Error('disk full');
      }
      return write(b);
    };
  };
  const before = { info: await alice.conversation(conv.id), history: await texts(alice, conv.id), published: net.stats.published };
  failNextWrite(alice.store as never);
  await assert.rejects(alice.send(conv.id, 'never written'));
  assert.deepEqual(await alice.conversation(conv.id), before.info, 'meta unchanged');
  assert.deepEqual(await texts(alice, conv.id), before.history);
  assert.equal(net.stats.published, before.published, 'nothing published before the write');
  // The ratchet did not advance in memory: the next message decrypts at Bob.
  failNextWrite(bob.store as never);
  await alice.send(conv.id, 'after the failure');
  await waitFor(async () => (await texts(bob, conv.id)).includes('<after the failure') && (await alice.pendingCount()) === 0, 10_000, 'the retry after Bob’s failed write');
  assert.deepEqual(await texts(bob, conv.id), ['<after the failure'], 'delivered once');
  assert.deepEqual(bob.stats().badlyFormed, {});
  await alice.close();
  await bob.close();
});
