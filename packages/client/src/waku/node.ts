/**
 * A js-waku relay node (gossipsub on /vac/waku/relay/2.0.0) for Node, shared by the client
 * adapter, the bootstrap node and the store peer. Pinned stack: @waku/sdk 0.0.31 +
 * @waku/relay 0.0.14 (the last versions that run on Node 20), TCP (@libp2p/tcp) and plain or
 * secure WebSocket (@libp2p/websockets) transports, noise + mplex from the SDK defaults.
 */
import './polyfill.ts';
import { tcp } from '@libp2p/tcp';
import { webSockets } from '@libp2p/websockets';
import { all as anyWebSocketAddress } from '@libp2p/websockets/filters';
import { multiaddr } from '@multiformats/multiaddr';
import { wakuGossipSub, wakuRelay } from '@waku/relay';
import { proto_message as messageProto } from '@waku/proto';
import { createLibp2pAndUpdateOptions, WakuNode, type CreateNodeOptions, type IRelay } from '@waku/sdk';
import { DEFAULT_PUBSUB_TOPIC, parsePubsubTopic, type ShardInfo } from './topics.ts';

export type WakuMessage = messageProto.WakuMessage;

export interface RelayNodeOptions {
  /** Listen multiaddrs, e.g. `/ip4/127.0.0.1/tcp/0` (default) or `/ip4/0.0.0.0/tcp/60000/ws`. */
  readonly listen?: readonly string[];
  /** Static-sharding pubsub topic `/waku/2/rs/<cluster>/<shard>` (default: the autosharded /waku/2/rs/42/6, topics.ts). */
  readonly pubsubTopic?: string;
}

/** The parts of a libp2p stream we use (libp2p 2.x duplex). */
export interface DuplexStream {
  source: AsyncIterable<Uint8Array | { subarray(): Uint8Array }>;
  sink(source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void>;
  close(options?: { signal?: AbortSignal }): Promise<void>;
  abort(err: Error): void;
}

interface KeepAliveTimers {
  pingKeepAliveTimers?: Map<unknown, ReturnType<typeof setInterval>>;
  relayKeepAliveTimers?: Map<unknown, ReturnType<typeof setInterval>[]>;
}

export class RelayNode {
  private constructor(
    readonly waku: WakuNode,
    readonly relay: IRelay,
    readonly pubsubTopic: string,
    readonly shard: ShardInfo,
  ) {}

  static async start(options: RelayNodeOptions = {}): Promise<RelayNode> {
    const pubsubTopic = options.pubsubTopic ?? DEFAULT_PUBSUB_TOPIC;
    const shard = parsePubsubTopic(pubsubTopic);
    const listen = [...(options.listen ?? ['/ip4/127.0.0.1/tcp/0'])];
    const nodeOptions: CreateNodeOptions = {
      networkConfig: { clusterId: shard.clusterId, shards: [shard.shard] },
      libp2p: {
        addresses: { listen },
        transports: [tcp(), webSockets({ filter: anyWebSocketAddress })],
        hideWebSocketInfo: true,
        filterMultiaddrs: false,
        services: { pubsub: wakuGossipSub({ allowPublishToZeroTopicPeers: false }) },
      } as unknown as CreateNodeOptions['libp2p'],
    };
    const { libp2p, pubsubTopics } = await createLibp2pAndUpdateOptions(nodeOptions);
    if (pubsubTopics.length !== 1 || pubsubTopics[0] !== pubsubTopic) throw new Error(`unexpected pubsub topics ${pubsubTopics.join(',')}`);
    // @waku/relay 0.0.14 and @waku/sdk 0.0.31 ship different copies of @waku/interfaces; the
    // runtime objects are compatible (measured), the declared types are not.
    const relay = wakuRelay(pubsubTopics)(libp2p as never) as unknown as IRelay;
    const waku = new WakuNode(pubsubTopics, nodeOptions, libp2p, {}, relay);
    await waku.start();
    return new RelayNode(waku, relay, pubsubTopic, shard);
  }

  get peerId(): string {
    return this.waku.libp2p.peerId.toString();
  }

  multiaddrs(): string[] {
    return this.waku.libp2p.getMultiaddrs().map((m) => m.toString());
  }

  meshPeers(): number {
    return this.relay.getMeshPeers(this.pubsubTopic).length;
  }

  connectedPeers(): string[] {
    return this.waku.libp2p.getPeers().map((p) => p.toString());
  }

  async dial(address: string, timeoutMs = 5000): Promise<void> {
    await this.waku.libp2p.dial(multiaddr(address), { signal: AbortSignal.timeout(timeoutMs) });
  }

  /** Whether we hold a connection to the peer named in `/p2p/<id>` of the address. */
  isConnectedTo(address: string): boolean {
    const id = multiaddr(address).getPeerId();
    if (id === null) return false;
    return this.connectedPeers().includes(id);
  }

  async dialProtocol(address: string, protocol: string, timeoutMs = 5000): Promise<DuplexStream> {
    const s = await this.waku.libp2p.dialProtocol(multiaddr(address), protocol, { signal: AbortSignal.timeout(timeoutMs) });
    return s as unknown as DuplexStream;
  }

  /** Peers (as `/p2p/<id>` strings) whose identify record lists `protocol`. */
  async peersSupporting(protocol: string): Promise<string[]> {
    const out: string[] = [];
    for (const id of this.waku.libp2p.getPeers()) {
      try {
        const peer = await this.waku.libp2p.peerStore.get(id);
        if (peer.protocols.includes(protocol)) out.push(`/p2p/${id.toString()}`);
      } catch {
        // not in the peer store (yet)
      }
    }
    return out.sort();
  }

  async handle(protocol: string, handler: (stream: DuplexStream) => Promise<void>): Promise<void> {
    await this.waku.libp2p.handle(protocol, ({ stream }) => {
      handler(stream as unknown as DuplexStream).catch((e: unknown) => {
        try {
          stream.abort(e instanceof Error ? e : new Error(String(e)));
        } catch {
          // already closed
        }
      });
    });
  }

  /**
   * Publishes one WakuMessage (14/WAKU2-MESSAGE) on the pubsub topic, encoded as given.
   * Returns the number of peers it was sent to (0 is reported as an error).
   */
  async publishMessage(message: WakuMessage): Promise<number> {
    const wire = messageProto.WakuMessage.encode(message);
    const encoder = {
      pubsubTopic: this.pubsubTopic,
      contentTopic: message.contentTopic,
      ephemeral: message.ephemeral ?? false,
      toWire: async () => wire,
      toProtoObj: async () => ({ ...message, version: message.version, timestamp: message.timestamp, meta: message.meta, rateLimitProof: undefined, ephemeral: message.ephemeral }),
    };
    const result = await this.relay.send(encoder, { payload: message.payload });
    if (result.successes.length === 0) {
      throw new Error(`Waku relay publish failed: ${result.failures.map((f) => f.error).join(', ') || 'no peers'}`);
    }
    return result.successes.length;
  }

  /**
   * Calls `onMessage` with the decoded WakuMessage of every relay message on the given content
   * topics (our pubsub topic). Returns the unsubscribe function.
   */
  subscribeMessages(contentTopics: readonly string[], onMessage: (message: WakuMessage, pubsubTopic: string) => void): () => void {
    const decoders = contentTopics.map((contentTopic) => ({
      pubsubTopic: this.pubsubTopic,
      contentTopic,
      fromWireToProtoObj: async (bytes: Uint8Array) => messageProto.WakuMessage.decode(bytes),
      fromProtoObj: async (pubsubTopic: string, proto: WakuMessage) => ({
        pubsubTopic,
        proto,
        payload: proto.payload,
        contentTopic: proto.contentTopic,
        timestamp: undefined,
        rateLimitProof: undefined,
        ephemeral: proto.ephemeral,
        meta: proto.meta,
      }),
    }));
    const unsubscribe = this.relay.subscribeWithUnsubscribe(decoders as never, (m: unknown) => {
      const { proto, pubsubTopic } = m as { proto: WakuMessage; pubsubTopic: string };
      onMessage(proto, pubsubTopic);
    });
    if (typeof unsubscribe === 'function') return unsubscribe;
    return () => void Promise.resolve(unsubscribe).then((u) => u());
  }

  /** Resolves when the relay mesh has at least `min` peers, or rejects after `timeoutMs`. */
  async waitForMesh(timeoutMs: number, min = 1): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.meshPeers() < min) {
      if (Date.now() >= deadline) throw new Error(`no Waku relay mesh peers on ${this.pubsubTopic} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async stop(): Promise<void> {
    // @waku/core 0.0.35's KeepAliveManager.stopAll() clears its Maps without clearing the
    // intervals in them (it iterates the Maps with Object.values): the per-peer ping intervals
    // would keep the process alive after stop. Take them out before, clear them after.
    const kam = (this.waku.connectionManager as unknown as { keepAliveManager?: KeepAliveTimers }).keepAliveManager;
    const timers = [...(kam?.pingKeepAliveTimers?.values() ?? []), ...[...(kam?.relayKeepAliveTimers?.values() ?? [])].flat()];
    try {
      await this.waku.stop();
    } finally {
      for (const t of timers) clearInterval(t);
      for (const t of kam?.pingKeepAliveTimers?.values() ?? []) clearInterval(t);
      for (const ts of kam?.relayKeepAliveTimers?.values() ?? []) for (const t of ts) clearInterval(t);
    }
  }

}

/**
 * Dials the given peers now and again whenever we are connected to none of them (every
 * `intervalMs`), so that a node survives its bootstrap peer restarting. Returns a stop function.
 */
export function keepConnected(node: RelayNode, addresses: readonly string[], intervalMs = 2000): () => void {
  if (addresses.length === 0) return () => undefined;
  let stopped = false;
  let running = false;
  const tick = async () => {
    if (stopped || running) return;
    running = true;
    try {
      for (const a of addresses) {
        if (stopped) break;
        if (node.isConnectedTo(a)) continue;
        try {
          await node.dial(a);
        } catch {
          // retried on the next tick
        }
      }
    } finally {
      running = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}
