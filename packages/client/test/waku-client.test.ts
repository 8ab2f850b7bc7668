/**
 * The SDK's Client on WakuDelivery (one process, through a hub): connect, chat both ways, and
 * a client that was closed while its peer wrote catches up from the store peer when reopened
 * on a new Waku node (Client.open subscribes and syncs).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Client, SqliteStore } from '../src/node.ts';
import { startWakuBootstrapNode, WakuDelivery } from '../src/waku/index.ts';
import { connect, FAST, KEY_B, openMemoryClient, tempDir, texts, waitFor } from './helpers.ts';

describe('Client over Waku', { timeout: 60_000 }, () => {
  test('chat both ways, then offline catch-up through the store peer', async () => {
    const { dir, cleanup } = tempDir('umbra-waku-client-');
    const hub = await startWakuBootstrapNode({});
    const deliveries: WakuDelivery[] = [];
    const waku = async () => {
      const d = await WakuDelivery.create({ bootstrap: hub.multiaddrs });
      deliveries.push(d);
      return d;
    };
    let bobStore: SqliteStore | null = null;
    const openBob = async (delivery: WakuDelivery) => {
      bobStore = await SqliteStore.open({ path: join(dir, 'bob.db'), key: KEY_B });
      return Client.open({ delivery, store: bobStore, profile: { name: 'bob' }, ...FAST });
    };
    try {
      const [da, db] = await Promise.all([waku(), waku()]);
      await Promise.all([da.ready(), db.ready()]);
      const alice = await openMemoryClient(da, 'alice');
      let bob = await openBob(db);
      const conv = await connect(alice, bob);
      await alice.send(conv.id, 'hello over waku');
      await waitFor(async () => (await texts(bob, conv.id)).includes('<hello over waku'), 10_000, 'bob to receive');
      await bob.send(conv.id, 'hi back');
      await waitFor(async () => (await texts(alice, conv.id)).includes('<hi back'), 10_000, 'alice to receive');

      await bob.close();
      await bobStore!.close(); // a store handed to Client.open stays the caller's
      await db.close();
      const stored = hub.storeStats()!.added;
      await alice.send(conv.id, 'while you were away');
      await waitFor(() => hub.storeStats()!.added > stored, 5000, 'the store to take it');

      bob = await openBob(await waku()); // a new Waku node (new peer id), same local store
      await waitFor(async () => (await texts(bob, conv.id)).includes('<while you were away'), 10_000, 'bob to catch up');
      assert.deepEqual(
        (await texts(bob, conv.id)).filter((t) => t.startsWith('<')),
        ['<hello over waku', '<while you were away'],
      );
      // and alice learns it arrived (the ack travels back over Waku)
      await waitFor(async () => (await alice.pendingCount(conv.id)) === 0, 10_000, 'the ack');
      await alice.close();
      await bob.close();
      await bobStore!.close();
    } finally {
      await Promise.all(deliveries.map((d) => d.close()));
      await hub.close();
      cleanup();
    }
  });
});
