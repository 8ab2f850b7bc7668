/**
 * WakuDelivery: the Delivery interface over Waku Relay (js-waku), with catch-up from a store
 * peer (Waku Store v3, see store.ts). See docs/WAKU.md.
 *
 * - publish(route, bytes): one WakuMessage { payload = the UmbraEnvelopeV1 bytes, content topic
 *   `/umbra/1/<bucket(route)>/proto`, version 0, timestamp = now in ns } on the pubsub topic.
 * - subscribe(routes, onEnvelope): joins the buckets of the routes and hands every message of
 *   those buckets to the client (most are not for it: the client classifies and drops them),
 *   once per handler however many of its subscriptions share the bucket. A relay message's
 *   route is unknown (the bucket does not say which of its routes it is for), so `route` is ''
 *   — the engine then relies on the hint alone, which live traffic always matches.
 * - fetch(route, since): pages through the store peer's copy of the route's bucket, labelled
 *   with `route` (the engine tries envelopes whose hint has left its windows against that
 *   route's conversations, which is what a long-offline client needs).
 * - Every message is identified by its 14/WAKU2-MESSAGE hash. A relay message already seen
 *   (gossip duplicates, re-encoded copies) is dropped; fetch leaves out what relay already
 *   delivered and processed and what we published ourselves, but returns a bucket's other
 *   messages again for each route asked about (another route may own them).
 */
import './polyfill.ts';
import { wire } from '@umbra/protocol';
import type { DeliveredEnvelope, Delivery, EnvelopeHandler, FetchResult, Subscription } from '../delivery.ts';
import { SeenHashes, toHex, wakuMessageHash } from './hash.ts';
import { keepConnected, RelayNode, type RelayNodeOptions, type WakuMessage } from './node.ts';
import { queryStore, STORE_CODEC, STORE_MAX_PAGE, type StoreQueryResponse } from './store.ts';
import { bucketContentTopic, bucketOf, checkBuckets, DEFAULT_BUCKETS } from './topics.ts';

export interface WakuDeliveryOptions extends RelayNodeOptions {
  /** Multiaddrs (with /p2p/<id>) dialled at start and re-dialled whenever none is connected. */
  readonly bootstrap?: readonly string[];
  /**
   * Store peers for fetch, tried in order. Default: the bootstrap peers, then any connected
   * peer that announces the Store v3 protocol.
   */
  readonly storePeers?: readonly string[];
  /** Number of content-topic buckets; a network parameter (default 16). */
  readonly buckets?: number;
  /** How long publish waits for a relay mesh peer before rejecting (default 10 s). */
  readonly publishTimeoutMs?: number;
  /** Per store query (default 10 s). */
  readonly fetchTimeoutMs?: number;
  /** How many message hashes are remembered for dedupe (default 50,000). */
  readonly seenCapacity?: number;
}

export interface WakuDeliveryStats {
  published: number;
  /** Relay messages received on our buckets. */
  received: number;
  /** Envelopes handed to subscribers (after dedupe). */
  delivered: number;
  /** Messages dropped because their hash was already seen (relay duplicates; store copies of relayed or own messages). */
  duplicates: number;
  /** Messages dropped as malformed (empty or oversized payload). */
  dropped: number;
  /** Envelopes returned by fetch. */
  fetched: number;
  storeQueries: number;
}

interface Sub {
  readonly handler: EnvelopeHandler;
  readonly routeOfBucket: Map<number, string>;
  open: boolean;
}

interface BucketState {
  readonly subs: Set<Sub>;
  readonly unsubscribe: () => void;
}

interface Cursor {
  readonly hash: Uint8Array;
  readonly timestamp: bigint | undefined;
}

const CURSOR_RE = /^([0-9a-f]{64})(?:\.(\d{1,20}))?$/;

function encodeCursor(c: Cursor): string {
  return c.timestamp === undefined ? toHex(c.hash) : `${toHex(c.hash)}.${c.timestamp}`;
}

function decodeCursor(s: string): Cursor {
  const m = CURSOR_RE.exec(s);
  if (m === null) throw new RangeError('bad Waku cursor');
  return { hash: new Uint8Array(Buffer.from(m[1]!, 'hex')), timestamp: m[2] === undefined ? undefined : BigInt(m[2]) };
}

/** How far before a pruned cursor's timestamp a catch-up restarts (clock skew allowance). */
const CURSOR_FALLBACK_NS = 3600n * 1_000_000_000n;

export class WakuDelivery implements Delivery {
  readonly stats: WakuDeliveryStats = { published: 0, received: 0, delivered: 0, duplicates: 0, dropped: 0, fetched: 0, storeQueries: 0 };
  private readonly buckets: number;
  /** Relay dedupe: every hash received on relay or published by us. */
  private readonly seen: SeenHashes;
  /** Fetch filter: own messages and relay messages that every handler processed. */
  private readonly processed: SeenHashes;
  private readonly bucketStates = new Map<number, BucketState>();
  private readonly stopKeepAlive: () => void;
  private lastTimestamp = 0n;
  private closed = false;

  private constructor(
    readonly node: RelayNode,
    private readonly options: WakuDeliveryOptions,
  ) {
    this.buckets = checkBuckets(options.buckets ?? DEFAULT_BUCKETS);
    this.seen = new SeenHashes(options.seenCapacity ?? 50_000);
    this.processed = new SeenHashes(options.seenCapacity ?? 50_000);
    this.stopKeepAlive = keepConnected(node, options.bootstrap ?? []);
  }

  /** Starts a relay node and dials the bootstrap peers (in the background). */
  static async create(options: WakuDeliveryOptions = {}): Promise<WakuDelivery> {
    checkBuckets(options.buckets ?? DEFAULT_BUCKETS);
    const node = await RelayNode.start(options);
    return new WakuDelivery(node, options);
  }

  get pubsubTopic(): string {
    return this.node.pubsubTopic;
  }

  multiaddrs(): string[] {
    return this.node.multiaddrs();
  }

  /** Resolves once the relay mesh has a peer (publish waits for this by itself). */
  async ready(timeoutMs = this.options.publishTimeoutMs ?? 10_000): Promise<void> {
    await this.node.waitForMesh(timeoutMs);
  }

  bucketOf(route: string): number {
    return bucketOf(route, this.buckets);
  }

  contentTopicOf(route: string): string {
    return bucketContentTopic(this.bucketOf(route));
  }

  private nextTimestamp(): bigint {
    let ts = BigInt(Date.now()) * 1_000_000n;
    if (ts <= this.lastTimestamp) ts = this.lastTimestamp + 1n;
    this.lastTimestamp = ts;
    return ts;
  }

  async publish(route: string, bytes: Uint8Array): Promise<void> {
    if (typeof route !== 'string' || !(bytes instanceof Uint8Array)) throw new TypeError('publish(route: string, bytes: Uint8Array)');
    if (this.closed) throw new Error('Waku delivery closed');
    if (bytes.length === 0 || bytes.length > wire.MAX_ENVELOPE_BYTES) throw new RangeError(`envelope size ${bytes.length} out of range`);
    await this.node.waitForMesh(this.options.publishTimeoutMs ?? 10_000);
    const message: WakuMessage = { payload: bytes, contentTopic: this.contentTopicOf(route), version: 0, timestamp: this.nextTimestamp() };
    // Our own message must not come back to us from the store as if it were new.
    const hash = toHex(wakuMessageHash(this.node.pubsubTopic, message));
    this.seen.add(hash);
    this.processed.add(hash);
    await this.node.publishMessage(message);
    this.stats.published++;
  }

  subscribe(routes: readonly string[], onEnvelope: EnvelopeHandler): Subscription {
    if (this.closed) throw new Error('Waku delivery closed');
    const sub: Sub = { handler: onEnvelope, routeOfBucket: new Map(), open: true };
    for (const route of routes) {
      const b = this.bucketOf(route);
      if (!sub.routeOfBucket.has(b)) sub.routeOfBucket.set(b, route);
    }
    for (const b of sub.routeOfBucket.keys()) {
      let state = this.bucketStates.get(b);
      if (state === undefined) {
        const unsubscribe = this.node.subscribeMessages([bucketContentTopic(b)], (m, pubsubTopic) => this.onRelayMessage(b, m, pubsubTopic));
        this.bucketStates.set(b, (state = { subs: new Set(), unsubscribe }));
      }
      state.subs.add(sub);
    }
    return {
      close: () => {
        if (!sub.open) return;
        sub.open = false;
        for (const b of sub.routeOfBucket.keys()) {
          const state = this.bucketStates.get(b);
          if (state === undefined) continue;
          state.subs.delete(sub);
          if (state.subs.size === 0) {
            state.unsubscribe();
            this.bucketStates.delete(b);
          }
        }
      },
    };
  }

  private onRelayMessage(bucket: number, m: WakuMessage, pubsubTopic: string): void {
    if (this.closed) return;
    this.stats.received++;
    if (m.payload.length === 0 || m.payload.length > wire.MAX_ENVELOPE_BYTES) {
      this.stats.dropped++;
      return;
    }
    const hash = toHex(wakuMessageHash(pubsubTopic, m));
    if (!this.seen.add(hash)) {
      this.stats.duplicates++;
      return;
    }
    const state = this.bucketStates.get(bucket);
    if (state === undefined) return;
    const handlers = new Set<EnvelopeHandler>();
    for (const sub of state.subs) if (sub.open) handlers.add(sub.handler);
    const outcomes: unknown[] = [];
    for (const handler of handlers) {
      this.stats.delivered++;
      try {
        // A plain Uint8Array copy per handler: the decoded payload is a Node Buffer view into
        // libp2p's receive buffer (and Buffer#slice does not copy).
        outcomes.push(handler({ route: '', bytes: new Uint8Array(m.payload) }));
      } catch {
        outcomes.push(false); // a handler's failure is its own business; fetch will offer it again
      }
    }
    // Only what every handler processed is left out of later fetches (a handler may return a
    // Promise<boolean>: false = not processed, e.g. the client was closing).
    void Promise.all(outcomes.map((o) => Promise.resolve(o).catch(() => false))).then((rs) => {
      if (rs.every((r) => r !== false)) this.processed.add(hash);
    });
  }

  private async storeCandidates(): Promise<string[]> {
    if (this.options.storePeers !== undefined) return [...this.options.storePeers];
    const out = [...(this.options.bootstrap ?? [])];
    for (const p of await this.node.peersSupporting(STORE_CODEC)) {
      if (!out.some((a) => a.endsWith(p))) out.push(p);
    }
    return out;
  }

  private async query(request: Parameters<typeof queryStore>[2]): Promise<StoreQueryResponse> {
    const candidates = await this.storeCandidates();
    if (candidates.length === 0) throw new Error('no Waku store peer configured or connected');
    const errors: string[] = [];
    for (const peer of candidates) {
      try {
        this.stats.storeQueries++;
        return await queryStore(this.node, peer, request, this.options.fetchTimeoutMs ?? 10_000);
      } catch (e) {
        errors.push(`${peer}: ${(e as Error)?.message ?? e}`);
      }
    }
    throw new Error(`no Waku store peer answered (${errors.join('; ')})`);
  }

  /**
   * What the store peer holds for the route's bucket after `since` (null = everything it
   * keeps), oldest first, minus our own messages and those relay already delivered and had
   * processed. Pages internally until it has something to return or reaches the end, so an
   * empty result means "nothing more".
   */
  async fetch(route: string, since: string | null): Promise<FetchResult> {
    if (typeof route !== 'string') throw new TypeError('fetch(route: string, since: string | null)');
    if (this.closed) throw new Error('Waku delivery closed');
    const contentTopic = this.contentTopicOf(route);
    let cursor: Cursor | null = since === null ? null : decodeCursor(since);
    let timeStart: bigint | undefined;
    for (let page = 0; page < 10_000; page++) {
      const res = await this.query({
        pubsubTopic: this.node.pubsubTopic,
        contentTopics: [contentTopic],
        includeData: true,
        paginationForward: true,
        paginationLimit: BigInt(STORE_MAX_PAGE),
        paginationCursor: cursor === null ? undefined : cursor.hash,
        timeStart,
      });
      if (res.statusCode === 400 && cursor !== null && /cursor/i.test(res.statusDesc ?? '')) {
        // The cursor's message was pruned: restart from (a margin before) its time.
        timeStart = cursor.timestamp === undefined ? undefined : cursor.timestamp - CURSOR_FALLBACK_NS;
        cursor = null;
        continue;
      }
      if (res.statusCode !== 200) throw new Error(`Waku store query failed: ${res.statusCode} ${res.statusDesc ?? ''}`);
      const envelopes: DeliveredEnvelope[] = [];
      for (const kv of res.messages) {
        const m = kv.message;
        if (m === undefined) continue;
        const pubsubTopic = kv.pubsubTopic ?? this.node.pubsubTopic;
        const hash = wakuMessageHash(pubsubTopic, m);
        cursor = { hash: kv.messageHash ?? hash, timestamp: m.timestamp };
        if (m.contentTopic !== contentTopic || pubsubTopic !== this.node.pubsubTopic) continue;
        if (m.payload.length === 0 || m.payload.length > wire.MAX_ENVELOPE_BYTES) {
          this.stats.dropped++;
          continue;
        }
        if (this.processed.has(toHex(hash))) {
          this.stats.duplicates++;
          continue;
        }
        envelopes.push({ route, bytes: new Uint8Array(m.payload) });
      }
      const more = res.paginationCursor !== undefined && res.paginationCursor.length > 0;
      if (envelopes.length > 0 || !more) {
        this.stats.fetched += envelopes.length;
        return { envelopes, cursor: cursor === null ? since : encodeCursor(cursor) };
      }
    }
    return { envelopes: [], cursor: cursor === null ? since : encodeCursor(cursor) };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopKeepAlive();
    for (const state of this.bucketStates.values()) state.unsubscribe();
    this.bucketStates.clear();
    await this.node.stop();
  }
}
