/**
 * The Waku topic agreement (docs/WAKU.md "Topics"): Umbra's default pubsub topic is the shard
 * js-waku's autosharding derives for our content topics, so a standard peer configured with
 * only the cluster and the content topics lands on the shard our nodes publish on.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { createDecoder } from '@waku/sdk';
import { allBucketContentTopics, autoshardPubsubTopic, bucketOf, DEFAULT_PUBSUB_TOPIC, parsePubsubTopic } from '../src/waku/topics.ts';

describe('Waku topics: autosharding agreement', () => {
  it('the default pubsub topic is js-waku autosharding of every /umbra/1/<bucket>/proto topic in cluster 42', () => {
    assert.equal(DEFAULT_PUBSUB_TOPIC, '/waku/2/rs/42/6');
    for (const topic of allBucketContentTopics(1024)) {
      assert.equal(createDecoder(topic, { clusterId: 42 }).pubsubTopic, DEFAULT_PUBSUB_TOPIC, topic);
    }
  });

  it('other clusters agree with js-waku too; the shard count bounds the shard', () => {
    for (const cluster of [0, 7, 42, 65535]) {
      assert.equal(autoshardPubsubTopic(cluster), createDecoder('/umbra/1/0/proto', { clusterId: cluster }).pubsubTopic);
    }
    for (const shards of [1, 2, 8, 64, 1024]) {
      const { shard } = parsePubsubTopic(autoshardPubsubTopic(42, shards));
      assert.ok(shard < shards);
    }
    assert.equal(autoshardPubsubTopic(42, 1), '/waku/2/rs/42/0');
    assert.doesNotThrow(() => parsePubsubTopic(autoshardPubsubTopic(65535, 1024)));
    assert.throws(() => autoshardPubsubTopic(-1), RangeError);
    assert.throws(() => autoshardPubsubTopic(42, 0), RangeError);
  });

  it('bucketOf (now on noble, platform-neutral) gives the same buckets as the node:crypto definition', () => {
    for (const route of ['', 'a', 'services', 'π/route/∞', 'x'.repeat(300)]) {
      const digest = createHash('sha256').update('umbra/v1/waku-bucket').update(route, 'utf8').digest();
      for (const buckets of [1, 16, 1000]) assert.equal(bucketOf(route, buckets), digest.readUInt32BE(0) % buckets, route);
    }
  });
});
