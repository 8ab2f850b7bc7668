/**
 * Directory integration inside conversations: checkpoint gossip carried by ordinary messages
 * (split-view detection without the app passing bytes), and directory-brokered first contacts
 * that are requests from the transaction that stores them.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDirectory, type DirectoryService } from '@umbra/services';
import { Client, DirectoryClient, SqliteStore, type ConversationInfo, type SplitView } from '../src/node.ts';
import { FAST, KEY_A, MemoryNetwork, openMemoryClient, tempDir, texts, waitFor } from './helpers.ts';

/** texts() once the conversation exists at `client` ([] before). */
async function textsIfAny(client: Client, conversationId: string): Promise<string[]> {
  return (await client.conversations({ consent: 'all' })).some((c) => c.id === conversationId) ? await texts(client, conversationId) : [];
}

describe('directory: gossip inside conversations, brokered contacts as requests', () => {
  const tmp = tempDir('umbra-dir-gossip-');
  const net = new MemoryNetwork();
  const services: DirectoryService[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];
  let main: DirectoryService;
  let fork: DirectoryService;

  before(async () => {
    // A directory whose operator forks its database: same namespace, service and log keys,
    // two different logs from here on (a split view, signed with the real log key).
    const a = join(tmp.dir, 'dir-a.db');
    const b = join(tmp.dir, 'dir-b.db');
    const first = await startDirectory({ db: a, namespace: 'fork.test' });
    await first.close();
    for (const ext of ['', '-wal', '-shm']) if (existsSync(a + ext)) copyFileSync(a + ext, b + ext);
    main = await startDirectory({ db: a, namespace: 'fork.test' });
    fork = await startDirectory({ db: b, namespace: 'fork.test' });
    services.push(main, fork);
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    for (const s of services) await s.close();
    tmp.cleanup();
  });

  async function person(name: string, url: string, client?: Client) {
    const c = client ?? (await openMemoryClient(net.adapter(), name));
    const directory = await DirectoryClient.open({ client: c, url, legacyStateFile: join(tmp.dir, `${name}-${url.replace(/\W/g, '')}.json`) });
    const splits: SplitView[] = [];
    const errors: unknown[] = [];
    directory.on('split-view', (s) => splits.push(s));
    c.on('error', (e) => errors.push(e));
    cleanups.push(async () => {
      directory.close();
      if (client === undefined) await c.close();
    });
    return { client: c, directory, splits, errors };
  }

  it('two clients shown different logs detect the split view from gossip inside their normal messages', async () => {
    const alice = await person('Alice', main.url);
    const bob = await person('Bob', fork.url);
    // Each registers at "their" copy and looks themself up: same size, different roots.
    await alice.directory.register('alice', { packages: 0 });
    await bob.directory.register('bob', { packages: 0 });
    await alice.directory.lookup('alice');
    await bob.directory.lookup('bob');
    assert.equal(alice.directory.status().checkpointSize, bob.directory.status().checkpointSize);
    assert.equal(alice.splits.length + bob.splits.length, 0);

    // An ordinary conversation (not brokered): nothing but messages passes between them.
    const inv = await alice.client.createInvitation();
    const conv = await bob.client.accept(inv.text);
    await bob.client.send(conv.id, 'hi Alice');
    await bob.client.send(conv.id, 'second');
    await waitFor(async () => (await textsIfAny(alice.client, conv.id)).length === 2, 10_000, 'Bob’s messages');
    await waitFor(() => alice.splits.length === 1, 10_000, 'Alice to detect the split view');
    await alice.client.send(conv.id, 'hi Bob');
    await waitFor(() => bob.splits.length === 1, 10_000, 'Bob to detect the split view');
    await waitFor(async () => (await bob.client.pendingCount(conv.id)) === 0 && (await alice.client.pendingCount(conv.id)) === 0, 10_000, 'acks');
    await net.idle();
    await alice.client.settle();
    await bob.client.settle();

    // Gossip is sent once per new checkpoint, never shown or counted as content, never an error.
    assert.equal(alice.splits.length, 1, 'one gossip frame per checkpoint, not one per message');
    assert.equal(bob.splits.length, 1);
    assert.equal(alice.splits[0]!.theirs, bob.splits[0]!.mine);
    assert.deepEqual(await texts(alice.client, conv.id), ['<hi Alice', '<second', '>hi Bob']);
    assert.deepEqual(await texts(bob.client, conv.id), ['>hi Alice', '>second', '<hi Bob']);
    assert.equal((await alice.client.conversation(conv.id)).unreadCount, 2);
    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bob.errors, []);
  });

  it('consistent views gossip quietly; malformed gossip is ignored', async () => {
    const cara = await person('Cara', main.url);
    const dev = await person('Dev', main.url);
    await cara.directory.register('cara', { packages: 0 });
    await cara.directory.lookup('cara');
    const inv = await dev.client.createInvitation();
    const conv = await cara.client.accept(inv.text);
    await cara.client.send(conv.id, 'one');
    await waitFor(async () => (await textsIfAny(dev.client, conv.id)).length === 1, 10_000, 'the message');
    // Dev has no checkpoint yet: Cara's gossip is verified and adopted.
    await waitFor(() => dev.directory.status().checkpointSize === cara.directory.status().checkpointSize, 10_000, 'Dev to adopt the gossiped checkpoint');
    assert.equal(await dev.directory.receiveGossip(new Uint8Array([0xff, 1, 2])), 'ignored');
    await dev.client.send(conv.id, 'two');
    await waitFor(async () => (await texts(cara.client, conv.id)).length === 2, 10_000, 'the reply');
    assert.equal(cara.splits.length + dev.splits.length, 0);
    assert.deepEqual(cara.errors, []);
    assert.deepEqual(dev.errors, []);
  });

  it('a first contact through a key package is a request from its first transaction: no ack before the user accepts', async () => {
    const storePath = join(tmp.dir, 'erin.db');
    const store1 = await SqliteStore.open({ path: storePath, key: KEY_A });
    const erinClient = await Client.open({ delivery: net.adapter(), store: store1, profile: { name: 'Erin' }, ...FAST });
    const erinDir = await DirectoryClient.open({ client: erinClient, url: main.url, legacyStateFile: join(tmp.dir, 'erin-dir.json') });
    await erinDir.register('erin', { packages: 1 });
    // No DirectoryClient listens from here on, and the client restarts: the mark is in Erin's store.
    erinDir.close();
    await erinClient.close();
    store1.close();
    const store2 = await SqliteStore.open({ path: storePath, key: KEY_A });
    const erin = await Client.open({ delivery: net.adapter(), store: store2, ...FAST });
    cleanups.push(async () => {
      await erin.close();
      store2.close();
    });
    const started: ConversationInfo[] = [];
    erin.on('conversation-started', (i) => started.push(i));

    const fin = await person('Fin', main.url);
    // This directory takes no tokens, so Fin gets Erin's last-resort package (a reusable invitation, also a request).
    await fin.directory.register('fin', { packages: 0 });
    const conv = await fin.directory.contact('erin');
    await fin.client.send(conv.id, 'hello Erin');
    await waitFor(async () => (await erin.requests()).length === 1, 10_000, 'the request');
    assert.equal(started.length, 1);
    assert.equal(started[0]!.consent, 'unknown', 'a request when the conversation was first stored');
    assert.equal((await erin.conversations()).length, 0);
    await net.idle();
    await new Promise((r) => setTimeout(r, 300)); // several retry periods
    await net.idle();
    await erin.settle();
    assert.equal((await erin.conversation(conv.id)).consent, 'unknown');
    const sent = (await fin.client.history(conv.id)).messages;
    assert.deepEqual(sent.map((m) => m.status), ['sent'], 'nothing acknowledged before Erin accepts');
    assert.ok((await fin.client.pendingCount(conv.id)) >= 1);

    await erin.acceptRequest(conv.id);
    await waitFor(async () => (await fin.client.history(conv.id)).messages[0]!.status === 'acked', 10_000, 'the ack after accepting');
    assert.deepEqual(await texts(erin, conv.id), ['<hello Erin']);
  });
});
