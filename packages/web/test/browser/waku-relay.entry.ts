/**
 * Browser side of waku-browser.test.ts: a js-waku relay node in Chromium (libp2p over the
 * browser's WebSocket, noise, mplex, gossipsub: @waku/sdk 0.0.31 + @waku/relay 0.0.14, the
 * versions the SDK pins) that dials the hub's Waku node on its `/ws` listener, and an Umbra
 * engine on the browser provider. `__wakuBrowser.start(hub, invitation)` accepts the invitation
 * and publishes the first envelope and a text message on the recipient's bucket content topic;
 * `nextText()` resolves with the text of the next readable envelope on its own routes.
 * No project Waku code: what a standard js-waku peer in a browser does (docs/WAKU.md).
 */
import { webSockets } from '@libp2p/websockets';
import { all as anyWebSocketAddress } from '@libp2p/websockets/filters';
import { multiaddr } from '@multiformats/multiaddr';
import { wakuGossipSub, wakuRelay } from '@waku/relay';
import { proto_message as messageProto } from '@waku/proto';
import { createLibp2pAndUpdateOptions, WakuNode, type CreateNodeOptions, type IRelay } from '@waku/sdk';
import { Engine, wire } from '@umbra/protocol';
import { endpointRoute } from '../../../protocol/src/engine.ts';
import { browserProvider } from '../../../client/src/crypto/browser-provider.ts';
import { bucketContentTopic, bucketOf, DEFAULT_PUBSUB_TOPIC, parsePubsubTopic } from '../../../client/src/waku/topics.ts';

type WakuMessage = messageProto.WakuMessage;

const textBody = (body: string) => ({
  case: 'content' as const,
  value: wire.create(wire.ContentSchema, { kind: { case: 'text', value: wire.create(wire.TextSchema, { body }) } }),
});

let lastTimestampNs = 0n;
function timestampNs(): bigint {
  const now = BigInt(Date.now()) * 1_000_000n;
  lastTimestampNs = now > lastTimestampNs ? now : lastTimestampNs + 1n;
  return lastTimestampNs;
}

async function start(hubAddress: string, invitation: string): Promise<{ meshPeers: number; published: number; conversationId: string }> {
  const shard = parsePubsubTopic(DEFAULT_PUBSUB_TOPIC);
  const nodeOptions = {
    networkConfig: { clusterId: shard.clusterId, shards: [shard.shard] },
    libp2p: {
      addresses: { listen: [] },
      transports: [webSockets({ filter: anyWebSocketAddress })],
      hideWebSocketInfo: true,
      filterMultiaddrs: false, // plain ws:// on loopback (js-waku keeps only wss by default)
      // libp2p in a browser refuses to dial private and loopback addresses by default.
      connectionGater: { denyDialMultiaddr: () => false },
      services: { pubsub: wakuGossipSub({ allowPublishToZeroTopicPeers: false }) },
    },
  } as unknown as CreateNodeOptions;
  const { libp2p, pubsubTopics } = await createLibp2pAndUpdateOptions(nodeOptions);
  const relay = wakuRelay(pubsubTopics)(libp2p as never) as unknown as IRelay;
  const waku = new WakuNode(pubsubTopics, nodeOptions, libp2p, {}, relay);
  await waku.start();
  await libp2p.dial(multiaddr(hubAddress), { signal: AbortSignal.timeout(10_000) });
  const deadline = Date.now() + 15_000;
  while (relay.getMeshPeers(DEFAULT_PUBSUB_TOPIC).length === 0) {
    if (Date.now() > deadline) throw new Error('no relay mesh peer after 15 s');
    await new Promise((r) => setTimeout(r, 25));
  }

  const now = Date.now();
  const alice = Engine.create(browserProvider, now);
  const accepted = await alice.acceptInvitation(invitation, { nowMs: now, presentation: { name: 'Chromium' } });
  const id = accepted.conversation.id;

  // Replies: every message of our routes' buckets goes through the engine; most are someone else's.
  const topics = [...new Set(alice.receiveRoutes().map((r) => bucketContentTopic(bucketOf(r))))];
  const decoders = topics.map((contentTopic) => ({
    pubsubTopic: DEFAULT_PUBSUB_TOPIC,
    contentTopic,
    fromWireToProtoObj: async (bytes: Uint8Array) => messageProto.WakuMessage.decode(bytes),
    fromProtoObj: async (pubsubTopic: string, proto: WakuMessage) => ({ pubsubTopic, proto, payload: proto.payload, contentTopic: proto.contentTopic }),
  }));
  await relay.subscribeWithUnsubscribe(decoders as never, (m: unknown) => {
    const payload = new Uint8Array((m as { proto: WakuMessage }).proto.payload);
    void alice.receive(payload, Date.now()).then((r) => {
      if (r.kind !== 'readable') return;
      for (const f of r.frames) if (f.body.case === 'content' && f.body.value.kind.case === 'text') texts.push(f.body.value.kind.value.body);
      wake?.();
    });
  });

  const publish = async (envelope: Uint8Array, routes: readonly string[]): Promise<number> => {
    let sent = 0;
    for (const route of routes) {
      const message: WakuMessage = {
        payload: envelope,
        contentTopic: bucketContentTopic(bucketOf(route)),
        version: 0,
        timestamp: timestampNs(),
        meta: undefined,
        rateLimitProof: undefined,
        ephemeral: false,
      };
      const bytes = messageProto.WakuMessage.encode(message);
      const encoder = {
        pubsubTopic: DEFAULT_PUBSUB_TOPIC,
        contentTopic: message.contentTopic,
        ephemeral: false,
        toWire: async () => bytes,
        toProtoObj: async () => message,
      };
      const result = await relay.send(encoder as never, { payload: envelope });
      if (result.successes.length === 0) throw new Error(`publish failed: ${result.failures.map((f) => String(f.error)).join(', ')}`);
      sent += result.successes.length;
    }
    return sent;
  };
  const routesOf = (endpoints: Parameters<typeof endpointRoute>[0][]) => endpoints.map(endpointRoute).filter((r): r is string => r !== null);
  let published = await publish(accepted.outgoing.envelope, routesOf([...accepted.outgoing.endpoints]));
  const hello = alice.send(id, textBody('hello from Chromium over Waku'), Date.now());
  published += await publish(hello.outgoing.envelope, routesOf([...hello.outgoing.endpoints]));
  return { meshPeers: relay.getMeshPeers(DEFAULT_PUBSUB_TOPIC).length, published, conversationId: id };
}

const texts: string[] = [];
let wake: (() => void) | undefined;
async function nextText(timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (texts.length === 0) {
    if (Date.now() > deadline) throw new Error(`no readable text within ${timeoutMs} ms`);
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, 100);
    });
  }
  return texts.shift()!;
}

(globalThis as { __wakuBrowser?: unknown }).__wakuBrowser = { start, nextText };
(globalThis as { __umbraResults?: unknown }).__umbraResults = 'ready';
