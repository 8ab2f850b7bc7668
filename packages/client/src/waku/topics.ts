/**
 * Topics for Umbra on Waku.
 *
 * - One pubsub topic (the gossipsub topic every relay node joins), in the sharded form
 *   `/waku/2/rs/<cluster>/<shard>` (RELAY-SHARDING). The default is the shard that autosharding
 *   (RELAY-SHARDING "Automatic sharding", js-waku's `contentTopicToPubsubTopic`) gives our content
 *   topics in cluster 42 with 8 network shards: every `/umbra/1/<bucket>/proto` topic hashes the same
 *   application and version ("umbra", "1"), so all of them map to one shard, `/waku/2/rs/42/6`.
 *   A standard js-waku peer configured with `{ clusterId: 42, contentTopics }` therefore joins the
 *   shard our nodes publish on, without being told a pubsub topic.
 * - Content topics `/umbra/1/<bucket>/proto` (23/WAKU2-TOPICS form), bucket in [0, buckets).
 *   A route's bucket is the first 4 bytes (big-endian) of
 *   SHA-256("umbra/v1/waku-bucket" ‖ utf8(route)) modulo `buckets`. All conversations share
 *   the buckets, so a content topic does not name a conversation. `buckets` is a network
 *   parameter: sender and receiver must use the same value (default 16).
 */
import { sha256 } from '@noble/hashes/sha2.js';

/** Our cluster (cluster 1, The Waku Network, needs RLN proofs we do not make). */
export const DEFAULT_CLUSTER_ID = 42;
/** Autosharding's number of network shards per cluster (js-waku's and nwaku's default). */
export const AUTOSHARDING_NETWORK_SHARDS = 8;
/** The application and version fields of every Umbra content topic: what autosharding hashes. */
const CONTENT_TOPIC_APPLICATION = 'umbra';
const CONTENT_TOPIC_VERSION = '1';

const encoder = new TextEncoder();

/**
 * The autosharded pubsub topic of Umbra's content topics: shard = the last 8 bytes (big-endian)
 * of SHA-256(utf8(application) ‖ utf8(version)) mod networkShards (RELAY-SHARDING, as in
 * js-waku's contentTopicToShardIndex).
 */
export function autoshardPubsubTopic(clusterId: number = DEFAULT_CLUSTER_ID, networkShards: number = AUTOSHARDING_NETWORK_SHARDS): string {
  if (!Number.isInteger(clusterId) || clusterId < 0 || clusterId > 65535) throw new RangeError('clusterId must be 0..65535');
  if (!Number.isInteger(networkShards) || networkShards < 1 || networkShards > 1024) throw new RangeError('networkShards must be 1..1024');
  const app = encoder.encode(CONTENT_TOPIC_APPLICATION);
  const version = encoder.encode(CONTENT_TOPIC_VERSION);
  const input = new Uint8Array(app.length + version.length);
  input.set(app);
  input.set(version, app.length);
  const digest = sha256(input);
  const tail = new DataView(digest.buffer, digest.byteOffset + digest.length - 8, 8).getBigUint64(0, false);
  return `/waku/2/rs/${clusterId}/${Number(tail % BigInt(networkShards))}`;
}

export const DEFAULT_PUBSUB_TOPIC = autoshardPubsubTopic();
export const DEFAULT_BUCKETS = 16;
export const MAX_BUCKETS = 1024;
const BUCKET_LABEL = 'umbra/v1/waku-bucket';

export interface ShardInfo {
  readonly clusterId: number;
  readonly shard: number;
}

/** Parse `/waku/2/rs/<cluster>/<shard>`; throws RangeError on anything else. */
export function parsePubsubTopic(topic: string): ShardInfo {
  const m = /^\/waku\/2\/rs\/(\d{1,5})\/(\d{1,4})$/.exec(topic);
  if (m === null) {
    throw new RangeError(`pubsub topic must have the static-sharding form /waku/2/rs/<cluster>/<shard>, got ${JSON.stringify(topic)}`);
  }
  const clusterId = Number(m[1]);
  const shard = Number(m[2]);
  if (clusterId > 65535 || shard > 1023) throw new RangeError(`cluster (≤ 65535) or shard (≤ 1023) out of range in ${topic}`);
  return { clusterId, shard };
}

export function checkBuckets(buckets: number): number {
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > MAX_BUCKETS) throw new RangeError(`buckets must be an integer in [1, ${MAX_BUCKETS}]`);
  return buckets;
}

export function bucketOf(route: string, buckets: number = DEFAULT_BUCKETS): number {
  checkBuckets(buckets);
  const label = encoder.encode(BUCKET_LABEL);
  const text = encoder.encode(route);
  const input = new Uint8Array(label.length + text.length);
  input.set(label);
  input.set(text, label.length);
  const digest = sha256(input);
  return new DataView(digest.buffer, digest.byteOffset, 4).getUint32(0, false) % buckets;
}

export function bucketContentTopic(bucket: number): string {
  return `/umbra/1/${bucket}/proto`;
}

/** All content topics of a bucket count (for store peers and observers). */
export function allBucketContentTopics(buckets: number = DEFAULT_BUCKETS): string[] {
  checkBuckets(buckets);
  return Array.from({ length: buckets }, (_, i) => bucketContentTopic(i));
}

/** The bucket of an Umbra content topic, or null if the topic is not one. */
export function parseBucketContentTopic(contentTopic: string): number | null {
  const m = /^\/umbra\/1\/(0|[1-9]\d{0,3})\/proto$/.exec(contentTopic);
  return m === null ? null : Number(m[1]);
}
