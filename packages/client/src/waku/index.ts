/** Umbra over Waku: the delivery adapter, the bootstrap/store node, topics and message hashes. */
import './polyfill.ts';

export { WakuDelivery, type WakuDeliveryOptions, type WakuDeliveryStats } from './delivery.ts';
export { startWakuBootstrapNode, type WakuBootstrapNode, type WakuBootstrapOptions } from './bootstrap.ts';
export { wakuMessageHash, type HashableMessage } from './hash.ts';
export { MessageLog, STORE_CODEC, queryStore, type MessageLogOptions, type MessageLogStats } from './store.ts';
export { RelayNode, type RelayNodeOptions, type WakuMessage } from './node.ts';
export {
  DEFAULT_BUCKETS,
  DEFAULT_PUBSUB_TOPIC,
  allBucketContentTopics,
  bucketContentTopic,
  bucketOf,
  parseBucketContentTopic,
  parsePubsubTopic,
} from './topics.ts';
