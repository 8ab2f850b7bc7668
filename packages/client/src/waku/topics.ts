/**
 * Topics for Umbra on Waku.
 *
 * - One pubsub topic (the gossipsub topic every relay node joins), in the static-sharding form
 *   `/waku/2/rs/<cluster>/<shard>` (RELAY-SHARDING). Default `/waku/2/rs/42/0`.
 * - Content topics `/umbra/1/<bucket>/proto` (23/WAKU2-TOPICS form), bucket in [0, buckets).
 *   A route's bucket is the first 4 bytes (big-endian) of
 *   SHA-256("umbra/v1/waku-bucket" ‖ utf8(route)) modulo `buckets`. All conversations share
 *   the buckets, so a content topic does not name a conversation. `buckets` is a network
 *   parameter: sender and receiver must use the same value (default 16).
 */
import { createHash } from 'node:crypto';

export const DEFAULT_PUBSUB_TOPIC = '/waku/2/rs/42/0';
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
  const digest = createHash('sha256').update(BUCKET_LABEL).update(route, 'utf8').digest();
  return digest.readUInt32BE(0) % buckets;
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
