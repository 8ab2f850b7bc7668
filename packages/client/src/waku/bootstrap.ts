/**
 * `umbra hub --waku`: a js-waku relay node that others bootstrap from, and (by default) the
 * store peer that offline clients catch up from: it keeps the recent traffic of every Umbra
 * bucket topic in memory and answers Waku Store v3 queries for it.
 */
import './polyfill.ts';
import { keepConnected, RelayNode } from './node.ts';
import { MessageLog, serveStore, type MessageLogOptions, type MessageLogStats } from './store.ts';
import { allBucketContentTopics, checkBuckets, DEFAULT_BUCKETS } from './topics.ts';

export interface WakuBootstrapOptions {
  /** Listen multiaddrs (default `/ip4/127.0.0.1/tcp/0`; use `/ip4/0.0.0.0/tcp/<port>` to serve a LAN). */
  readonly listen?: readonly string[];
  /** Pubsub topic `/waku/2/rs/<cluster>/<shard>` (default: the autosharded /waku/2/rs/42/6, topics.ts). */
  readonly pubsubTopic?: string;
  /** Other bootstrap nodes to stay connected to (a small federation of hubs). */
  readonly peers?: readonly string[];
  /** Store settings (`path` keeps it in a SQLite file across restarts), or false for a relay-only bootstrap node (default: store on, in memory). */
  readonly store?: MessageLogOptions | false;
  /** Bucket count of the network (default 16): which content topics the store keeps. */
  readonly buckets?: number;
}

export interface WakuBootstrapNode {
  /** Full multiaddrs including /p2p/<peer id>, to give to clients as `--bootstrap`. */
  readonly multiaddrs: readonly string[];
  readonly peerId: string;
  readonly pubsubTopic: string;
  readonly node: RelayNode;
  /** Store statistics (null when the store is off). */
  storeStats(): MessageLogStats | null;
  close(): Promise<void>;
}

export async function startWakuBootstrapNode(options: WakuBootstrapOptions = {}): Promise<WakuBootstrapNode> {
  const buckets = checkBuckets(options.buckets ?? DEFAULT_BUCKETS);
  const node = await RelayNode.start({ listen: options.listen, pubsubTopic: options.pubsubTopic });
  let log: MessageLog | null = null;
  let unsubscribe: () => void = () => undefined;
  let pruneTimer: NodeJS.Timeout | null = null;
  try {
    if (options.store !== false) {
      const l = new MessageLog(options.store ?? {});
      log = l;
      unsubscribe = node.subscribeMessages(allBucketContentTopics(buckets), (m, pubsubTopic) => {
        if (m.ephemeral === true) return; // 14/WAKU2-MESSAGE: store nodes should not persist ephemeral messages
        l.add(pubsubTopic, m);
      });
      await serveStore(node, l);
      pruneTimer = setInterval(() => l.prune(), 60_000);
      pruneTimer.unref();
    }
  } catch (e) {
    await node.stop();
    log?.close();
    throw e;
  }
  const stopKeepAlive = keepConnected(node, options.peers ?? []);
  const id = node.peerId;
  const multiaddrs = node.multiaddrs().map((a) => (a.includes('/p2p/') ? a : `${a}/p2p/${id}`));
  let closed = false;
  return {
    multiaddrs,
    peerId: id,
    pubsubTopic: node.pubsubTopic,
    node,
    storeStats: () => (log === null ? null : { ...log.stats }),
    close: async () => {
      if (closed) return;
      closed = true;
      stopKeepAlive();
      if (pruneTimer !== null) clearInterval(pruneTimer);
      unsubscribe();
      await node.stop();
      log?.close();
    },
  };
}
