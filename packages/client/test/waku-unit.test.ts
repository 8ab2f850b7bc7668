/**
 * Waku adapter pieces in one process: 14/WAKU2-MESSAGE hash vectors, buckets and topics, the
 * store peer's message log and framing, the pruned-cursor fallback, and js-waku's own Store
 * client querying our store peer.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { waku as wakuCore, createDecoder } from '@waku/sdk';
import {
  allBucketContentTopics,
  bucketContentTopic,
  bucketOf,
  DEFAULT_PUBSUB_TOPIC,
  MessageLog,
  parseBucketContentTopic,
  parsePubsubTopic,
  startWakuBootstrapNode,
  STORE_CODEC,
  WakuDelivery,
  wakuMessageHash,
  type WakuMessage,
} from '../src/waku/index.ts';
import { lengthPrefixed, readLengthPrefixed, type StoreQueryRequest } from '../src/waku/store.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const utf8 = (s: string) => new TextEncoder().encode(s);

describe('14/WAKU2-MESSAGE deterministic hash', () => {
  // The four published vectors (rfc-index messaging/standards/core/14/message.md).
  const pubsubTopic = '/waku/2/default-waku/proto';
  const base = { payload: unhex('010203045445535405060708'), contentTopic: '/waku/2/default-content/proto', timestamp: 0x175789bfa23f8400n };

  test('meta of 12 bytes', () => {
    assert.equal(hex(wakuMessageHash(pubsubTopic, { ...base, meta: unhex('73757065722d736563726574') })), '64cce733fed134e83da02b02c6f689814872b1a0ac97ea56b76095c3c72bfe05');
  });
  test('meta of 64 bytes', () => {
    const meta = Uint8Array.from({ length: 64 }, (_, i) => i);
    assert.equal(hex(wakuMessageHash(pubsubTopic, { ...base, meta })), '7158b6498753313368b9af8f6e0a0a05104f68f972981da42a43bc53fb0c1b27');
  });
  test('meta absent', () => {
    assert.equal(hex(wakuMessageHash(pubsubTopic, base)), 'a2554498b31f5bcdfcbf7fa58ad1c2d45f0254f3f8110a85588ec3cf10720fd8');
  });
  test('empty payload', () => {
    assert.equal(
      hex(wakuMessageHash(pubsubTopic, { ...base, payload: new Uint8Array(0), meta: unhex('73757065722d736563726574') })),
      '483ea950cb63f9b9d6926b262bb36194d3f40a0463ce8446228350bd44e96de4',
    );
  });
  test('every field counts; the protobuf encoding does not', () => {
    const h = hex(wakuMessageHash(pubsubTopic, base));
    assert.notEqual(hex(wakuMessageHash('/waku/2/rs/42/0', base)), h);
    assert.notEqual(hex(wakuMessageHash(pubsubTopic, { ...base, timestamp: base.timestamp + 1n })), h);
    assert.notEqual(hex(wakuMessageHash(pubsubTopic, { ...base, contentTopic: '/umbra/1/0/proto' })), h);
    assert.notEqual(hex(wakuMessageHash(pubsubTopic, { ...base, timestamp: undefined })), h);
    // version and ephemeral are not part of the hash
    assert.equal(hex(wakuMessageHash(pubsubTopic, { ...base, version: 0, ephemeral: true } as WakuMessage)), h);
  });
});

describe('topics and buckets', () => {
  test('pubsub topic: static-sharding form only', () => {
    assert.deepEqual(parsePubsubTopic(DEFAULT_PUBSUB_TOPIC), { clusterId: 42, shard: 6 }); // autosharding's shard (waku-topics.test.ts)
    assert.deepEqual(parsePubsubTopic('/waku/2/rs/16/32'), { clusterId: 16, shard: 32 });
    for (const bad of ['/waku/2/default-waku/proto', '/waku/2/rs/1', '/waku/2/rs/70000/0', '/waku/2/rs/1/2000', 'x']) {
      assert.throws(() => parsePubsubTopic(bad), RangeError, bad);
    }
  });

  test('content topics /umbra/1/<bucket>/proto round-trip', () => {
    assert.equal(bucketContentTopic(7), '/umbra/1/7/proto');
    assert.deepEqual(allBucketContentTopics(4), ['/umbra/1/0/proto', '/umbra/1/1/proto', '/umbra/1/2/proto', '/umbra/1/3/proto']);
    for (let b = 0; b < 16; b++) assert.equal(parseBucketContentTopic(bucketContentTopic(b)), b);
    for (const bad of ['/umbra/1/01/proto', '/umbra/2/1/proto', '/umbra/1/x/proto', '/umbra/1/1/rfc26']) assert.equal(parseBucketContentTopic(bad), null);
  });

  test('bucketOf is deterministic, in range and spreads routes evenly', () => {
    assert.equal(bucketOf('abc'), bucketOf('abc'));
    assert.throws(() => bucketOf('abc', 0), RangeError);
    assert.throws(() => bucketOf('abc', 1.5), RangeError);
    const counts = new Array<number>(16).fill(0);
    const n = 16_000;
    for (let i = 0; i < n; i++) {
      const b = bucketOf(hex(wakuMessageHash('r', { payload: utf8(String(i)), contentTopic: '' })));
      assert.ok(b >= 0 && b < 16);
      counts[b]!++;
    }
    for (const c of counts) assert.ok(Math.abs(c - n / 16) < (n / 16) * 0.15, `bucket count ${c}`);
    for (let i = 0; i < 200; i++) assert.ok(bucketOf(String(i), 8) < 8);
  });
});

function msg(i: number, contentTopic = '/umbra/1/0/proto', timestamp: bigint | undefined = 1_000_000_000n + BigInt(i)): WakuMessage {
  return { payload: utf8(`m${i}`), contentTopic, version: 0, timestamp };
}

function req(r: Partial<StoreQueryRequest>): StoreQueryRequest {
  return { requestId: 'r', includeData: true, contentTopics: [], messageHashes: [], paginationForward: true, ...r };
}

const texts = (ms: { message?: WakuMessage }[]) => ms.map((m) => new TextDecoder().decode(m.message!.payload));

describe('store message log (Waku Store v3 semantics)', () => {
  const P = DEFAULT_PUBSUB_TOPIC;

  test('forward pagination by message-hash cursor, content-topic filter, duplicates refused', () => {
    const log = new MessageLog();
    for (let i = 0; i < 250; i++) assert.equal(log.add(P, msg(i, i % 2 === 0 ? '/umbra/1/0/proto' : '/umbra/1/1/proto')), true);
    assert.equal(log.add(P, msg(0)), false);
    assert.equal(log.stats.duplicates, 1);
    const seen: string[] = [];
    let cursor: Uint8Array | undefined;
    for (let page = 0; page < 10; page++) {
      const r = log.query(req({ pubsubTopic: P, contentTopics: ['/umbra/1/0/proto'], paginationLimit: 50n, paginationCursor: cursor }));
      assert.equal(r.statusCode, 200);
      seen.push(...texts(r.messages));
      for (const m of r.messages) assert.equal(hex(m.messageHash!), hex(wakuMessageHash(P, m.message!)));
      if (r.paginationCursor === undefined) break;
      cursor = r.paginationCursor;
    }
    assert.deepEqual(seen, Array.from({ length: 125 }, (_, i) => `m${2 * i}`));
  });

  test('page size: default 20, capped at 100; backward pages end at the newest', () => {
    const log = new MessageLog();
    for (let i = 0; i < 150; i++) log.add(P, msg(i));
    assert.equal(log.query(req({})).messages.length, 20);
    assert.equal(log.query(req({ paginationLimit: 1000n })).messages.length, 100);
    const back = log.query(req({ paginationForward: false, paginationLimit: 3n }));
    assert.deepEqual(texts(back.messages), ['m147', 'm148', 'm149']);
    const back2 = log.query(req({ paginationForward: false, paginationLimit: 3n, paginationCursor: back.paginationCursor }));
    assert.deepEqual(texts(back2.messages), ['m144', 'm145', 'm146']);
  });

  test('time range: start inclusive, end exclusive; hash lookups; bad requests', () => {
    const log = new MessageLog();
    for (let i = 0; i < 10; i++) log.add(P, msg(i));
    const r = log.query(req({ pubsubTopic: P, contentTopics: ['/umbra/1/0/proto'], timeStart: 1_000_000_003n, timeEnd: 1_000_000_006n }));
    assert.deepEqual(texts(r.messages), ['m3', 'm4', 'm5']);
    const h = wakuMessageHash(P, msg(7));
    assert.deepEqual(texts(log.query(req({ messageHashes: [h, new Uint8Array(32)] })).messages), ['m7']);
    assert.equal(log.query(req({ messageHashes: [h], pubsubTopic: P })).statusCode, 400);
    assert.equal(log.query(req({ contentTopics: ['/umbra/1/0/proto'] })).statusCode, 400); // content topics need the pubsub topic
    assert.equal(log.query(req({ paginationCursor: new Uint8Array(32) })).statusCode, 400);
    assert.deepEqual(log.query(req({ includeData: false, paginationLimit: 1n })).messages[0]!.message, undefined);
  });

  test('retention by age, count and bytes; pruned cursors are refused', () => {
    let now = 0;
    const log = new MessageLog({ retentionMs: 1000, maxMessages: 5, now: () => now });
    for (let i = 0; i < 8; i++) log.add(P, msg(i));
    assert.equal(log.stats.messages, 5);
    assert.deepEqual(texts(log.query(req({})).messages), ['m3', 'm4', 'm5', 'm6', 'm7']);
    const prunedCursor = wakuMessageHash(P, msg(1));
    assert.equal(log.query(req({ paginationCursor: prunedCursor })).statusCode, 400);
    now = 1500;
    log.add(P, msg(100));
    assert.deepEqual(texts(log.query(req({})).messages), ['m100']);
    const small = new MessageLog({ maxBytes: 100 });
    for (let i = 0; i < 10; i++) small.add(P, { ...msg(i), payload: new Uint8Array(30) .fill(i) });
    assert.ok(small.stats.bytes <= 100 && small.stats.messages === 2, JSON.stringify(small.stats));
  });
});

describe('store message log on SQLite', () => {
  test('survives a restart: same queries, same cursors, pruning persisted', () => {
    const dir = mkdtempSync(join(tmpdir(), 'umbra-waku-log-'));
    try {
      const path = join(dir, 'store.db');
      let now = 1000;
      const a = new MessageLog({ path, maxMessages: 4, now: () => now });
      for (let i = 0; i < 6; i++) a.add(DEFAULT_PUBSUB_TOPIC, msg(i));
      const page = a.query(req({ paginationLimit: 2n }));
      a.close();
      const b = new MessageLog({ path, maxMessages: 4, now: () => now });
      assert.equal(b.stats.messages, 4);
      assert.deepEqual(texts(b.query(req({ paginationLimit: 2n })).messages), texts(page.messages));
      assert.deepEqual(texts(b.query(req({ paginationCursor: page.paginationCursor })).messages), ['m4', 'm5']);
      assert.equal(b.add(DEFAULT_PUBSUB_TOPIC, msg(5)), false); // still a duplicate after the restart
      assert.equal(b.add(DEFAULT_PUBSUB_TOPIC, msg(6)), true); // seq continues
      b.close();
      now += 48 * 3600 * 1000; // everything expires by age on the next open
      const c = new MessageLog({ path, now: () => now });
      assert.equal(c.stats.messages, 0);
      c.close();
      const d = new MessageLog({ path, now: () => 1000 }); // a clock at which those rows would still be kept
      assert.equal(d.stats.messages, 0); // the expired rows were deleted, not just hidden
      d.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('length-prefixed framing', () => {
  async function* chunks(bytes: Uint8Array, size: number) {
    for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
  }
  test('round trip across chunk boundaries, multi-byte lengths, truncation and limits', async () => {
    for (const n of [0, 1, 127, 128, 300, 70_000]) {
      const body = Uint8Array.from({ length: n }, (_, i) => i & 0xff);
      const framed = lengthPrefixed(body);
      for (const size of [1, 3, 1000]) assert.deepEqual(await readLengthPrefixed(chunks(framed, size)), body);
    }
    await assert.rejects(readLengthPrefixed(chunks(lengthPrefixed(new Uint8Array(10)).subarray(0, 8), 4)), /ended/);
    await assert.rejects(readLengthPrefixed(chunks(lengthPrefixed(new Uint8Array(100)), 50), 99), /exceeds/);
  });
});

describe('store peer over libp2p (in process)', { timeout: 30_000 }, () => {
  test('catch-up survives a pruned cursor, and js-waku\'s own Store client reads our store peer', async () => {
    const hub = await startWakuBootstrapNode({ store: { maxMessages: 5 } });
    const alice = await WakuDelivery.create({ bootstrap: hub.multiaddrs });
    const carol = await WakuDelivery.create({ bootstrap: hub.multiaddrs });
    try {
      await Promise.all([alice.ready(), carol.ready()]);
      const route = 'carol-route';
      for (let i = 0; i < 3; i++) await alice.publish(route, utf8(`a${i}`));
      const deadline = Date.now() + 5000;
      while (hub.storeStats()!.added < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const first = await carol.fetch(route, null);
      assert.deepEqual(first.envelopes.map((e) => new TextDecoder().decode(e.bytes)), ['a0', 'a1', 'a2']);
      assert.ok(first.envelopes.every((e) => e.route === route && Object.getPrototypeOf(e.bytes) === Uint8Array.prototype));
      assert.match(first.cursor!, /^[0-9a-f]{64}\.\d+$/);
      const empty = await carol.fetch(route, first.cursor);
      assert.deepEqual(empty.envelopes, []);
      assert.equal(empty.cursor, first.cursor);
      // 10 more: the store keeps 5, so carol's cursor (a2) is pruned; fetch restarts from its time
      const carol2 = await WakuDelivery.create({ bootstrap: hub.multiaddrs }); // a fresh process: nothing seen
      for (let i = 3; i < 13; i++) await alice.publish(route, utf8(`a${i}`));
      while (hub.storeStats()!.added < 13 && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 20));
      await carol2.ready();
      const next = await carol2.fetch(route, first.cursor);
      assert.deepEqual(next.envelopes.map((e) => new TextDecoder().decode(e.bytes)), ['a8', 'a9', 'a10', 'a11', 'a12']);
      await carol2.close();

      // js-waku's StoreCore (the standard client of /vac/waku/store-query/3.0.0) against our server
      const ct = carol.contentTopicOf(route);
      const store = new wakuCore.StoreCore([carol.pubsubTopic], carol.node.waku.libp2p);
      const hubPeer = carol.node.waku.libp2p.getPeers().find((p) => p.toString() === hub.peerId)!;
      assert.ok((await carol.node.peersSupporting(STORE_CODEC)).includes(`/p2p/${hub.peerId}`));
      const decoder = createDecoder(ct, { clusterId: 42, shard: 0 });
      const got: string[] = [];
      for await (const page of store.queryPerPage(
        { pubsubTopic: carol.pubsubTopic, contentTopics: [ct], includeData: true, paginationForward: true, paginationLimit: 2 },
        new Map([[ct, decoder]]),
        hubPeer,
      )) {
        for (const m of await Promise.all(page)) if (m !== undefined) got.push(new TextDecoder().decode(m.payload));
      }
      assert.deepEqual(got, ['a8', 'a9', 'a10', 'a11', 'a12']);
    } finally {
      await Promise.all([alice.close(), carol.close()]);
      await hub.close();
    }
  });
});

describe('WebSocket transport and delivery semantics (in process)', { timeout: 30_000 }, () => {
  test('plain ws on loopback; one push per handler per message, route unknown on relay; fetch per route', async () => {
    const hub = await startWakuBootstrapNode({ listen: ['/ip4/127.0.0.1/tcp/0/ws'] });
    assert.ok(hub.multiaddrs.every((a) => a.includes('/ws/p2p/')), hub.multiaddrs.join());
    const a = await WakuDelivery.create({ bootstrap: hub.multiaddrs, listen: ['/ip4/127.0.0.1/tcp/0/ws'] });
    const b = await WakuDelivery.create({ bootstrap: hub.multiaddrs });
    try {
      // route-3 and route-9 share bucket 3; route-20 is alone in bucket 7; route-26 is in bucket 8
      assert.deepEqual(['route-3', 'route-9', 'route-20', 'route-26'].map((r) => bucketOf(r)), [3, 3, 7, 8]);
      const got: string[] = [];
      const refused: string[] = [];
      const handler = (e: { route: string; bytes: Uint8Array }) => got.push(`${e.route}|${new TextDecoder().decode(e.bytes)}`);
      const sub1 = b.subscribe(['route-3'], handler);
      const sub2 = b.subscribe(['route-9', 'route-20'], handler); // same handler, same bucket 3 again
      const sub3 = b.subscribe(['route-20'], (e) => {
        refused.push(new TextDecoder().decode(e.bytes));
        return Promise.resolve(false); // "not processed": fetch must offer it again
      });
      await Promise.all([a.ready(), b.ready()]);
      await a.publish('route-9', utf8('x'));
      await a.publish('route-20', utf8('y'));
      await a.publish('route-26', utf8('z')); // a bucket b does not hold: not delivered
      const deadline = Date.now() + 5000;
      while ((got.length < 2 || refused.length < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 150));
      assert.deepEqual(got, ['|x', '|y']);
      assert.deepEqual(refused, ['y']);
      assert.equal(b.stats.delivered, 3);

      // fetch: x was processed (left out); y was refused by one handler (offered again)
      const f3 = await b.fetch('route-3', null);
      assert.deepEqual(f3.envelopes, []);
      const f20 = await b.fetch('route-20', null);
      assert.deepEqual(f20.envelopes.map((e) => `${e.route}|${new TextDecoder().decode(e.bytes)}`), ['route-20|y']);
      // a fresh node (nothing seen) gets the bucket's messages once per route asked about
      const c = await WakuDelivery.create({ bootstrap: hub.multiaddrs });
      try {
        const c3 = await c.fetch('route-3', null);
        const c9 = await c.fetch('route-9', null);
        assert.deepEqual(c3.envelopes.map((e) => `${e.route}|${new TextDecoder().decode(e.bytes)}`), ['route-3|x']);
        assert.deepEqual(c9.envelopes.map((e) => `${e.route}|${new TextDecoder().decode(e.bytes)}`), ['route-9|x']);
        // our own messages never come back from the store
        assert.deepEqual((await a.fetch('route-9', null)).envelopes, []);
      } finally {
        await c.close();
      }

      sub1.close();
      sub2.close();
      sub3.close();
      await a.publish('route-9', utf8('after close'));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(got.length, 2);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await hub.close();
    }
  });

  test('fetch without a store peer rejects', async () => {
    const hub = await startWakuBootstrapNode({ store: false });
    assert.equal(hub.storeStats(), null);
    const b = await WakuDelivery.create({ bootstrap: hub.multiaddrs });
    try {
      await assert.rejects(b.fetch('r1', null), /store/);
    } finally {
      await b.close();
      await hub.close();
    }
  });
});
