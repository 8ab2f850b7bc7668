/**
 * In-memory delivery for tests and simulations: a MemoryNetwork holds a log per route and
 * pushes each published envelope to the route's subscribers after a delay. Chaos mode (seeded,
 * reproducible) loses, reorders, duplicates and delays envelopes, and can partition an adapter
 * (it can neither send nor receive until healed; what others send to it stays in the log, as a
 * mailbox service would keep it, and is fetched after healing).
 */
import type { DeliveredEnvelope, Delivery, EnvelopeHandler, FetchResult, Subscription } from './delivery.ts';
import { SeededRandom } from './rng.ts';

export interface ChaosOptions {
  /** Seed of the PRNG (default 1). */
  readonly seed?: number;
  /** Probability that an envelope is lost (neither pushed nor kept in the log). */
  readonly loss?: number;
  /** Probability that an envelope is held back by `reorderDelayMs` so later ones overtake it. */
  readonly reorder?: number;
  /** Probability that an envelope is delivered twice. */
  readonly duplicate?: number;
  /** Delay of every push, uniform in [min, max] ms (default [0, 0]). */
  readonly delayMs?: readonly [number, number];
  /** Extra delay of a reordered envelope, uniform in [min, max] ms (default [5, 30]). */
  readonly reorderDelayMs?: readonly [number, number];
}

export interface NetworkStats {
  published: number;
  pushed: number;
  lost: number;
  reordered: number;
  duplicated: number;
  partitioned: number;
}

interface RouteLog {
  entries: Uint8Array[];
}

const FETCH_PAGE = 500;

export class MemoryNetwork {
  private readonly logs = new Map<string, RouteLog>();
  private readonly subscribers = new Map<string, Set<EnvelopeHandler>>();
  private chaos: Required<ChaosOptions>;
  private rng: SeededRandom;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly partitioned = new Set<MemoryDelivery>();
  private readonly taps: ((route: string, bytes: Uint8Array) => void)[] = [];
  readonly stats: NetworkStats = { published: 0, pushed: 0, lost: 0, reordered: 0, duplicated: 0, partitioned: 0 };

  constructor(chaos: ChaosOptions = {}) {
    this.chaos = MemoryNetwork.normalize(chaos);
    this.rng = new SeededRandom(this.chaos.seed);
  }

  private static normalize(c: ChaosOptions): Required<ChaosOptions> {
    const p = (x: number | undefined) => {
      const v = x ?? 0;
      if (!(v >= 0 && v <= 1)) throw new RangeError('chaos probabilities are in [0, 1]');
      return v;
    };
    return {
      seed: c.seed ?? 1,
      loss: p(c.loss),
      reorder: p(c.reorder),
      duplicate: p(c.duplicate),
      delayMs: c.delayMs ?? [0, 0],
      reorderDelayMs: c.reorderDelayMs ?? [5, 30],
    };
  }

  /** Change the chaos settings (a new seed restarts the PRNG). */
  setChaos(chaos: ChaosOptions): void {
    const seedChanged = chaos.seed !== undefined && chaos.seed !== this.chaos.seed;
    this.chaos = MemoryNetwork.normalize({ ...this.chaos, ...chaos });
    if (seedChanged) this.rng = new SeededRandom(this.chaos.seed);
  }

  /** A Delivery for one client. */
  adapter(): MemoryDelivery {
    return new MemoryDelivery(this);
  }

  partition(adapter: MemoryDelivery): void {
    this.partitioned.add(adapter);
  }

  heal(adapter?: MemoryDelivery): void {
    if (adapter === undefined) this.partitioned.clear();
    else this.partitioned.delete(adapter);
  }

  isPartitioned(adapter: MemoryDelivery): boolean {
    return this.partitioned.has(adapter);
  }

  /** Resolves when no push is pending. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** How many envelopes the log holds for a route. */
  logSize(route: string): number {
    return this.logs.get(route)?.entries.length ?? 0;
  }

  /** Observe every published envelope (before chaos applies), e.g. to replay it in a test. */
  tap(listener: (route: string, bytes: Uint8Array) => void): void {
    this.taps.push(listener);
  }

  /** @internal */
  publish(from: MemoryDelivery, route: string, bytes: Uint8Array): void {
    this.stats.published++;
    for (const t of this.taps) t(route, bytes.slice());
    if (this.partitioned.has(from)) {
      this.stats.partitioned++;
      return;
    }
    if (this.rng.chance(this.chaos.loss)) {
      this.stats.lost++;
      return;
    }
    const copy = bytes.slice();
    let log = this.logs.get(route);
    if (log === undefined) this.logs.set(route, (log = { entries: [] }));
    log.entries.push(copy);
    const copies = this.rng.chance(this.chaos.duplicate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      let delay = this.rng.int(this.chaos.delayMs[0], this.chaos.delayMs[1]);
      if (this.rng.chance(this.chaos.reorder)) {
        this.stats.reordered++;
        delay += this.rng.int(this.chaos.reorderDelayMs[0], this.chaos.reorderDelayMs[1]);
      }
      this.schedule(route, copy, delay);
    }
  }

  private schedule(route: string, bytes: Uint8Array, delay: number): void {
    this.inFlight++;
    const deliver = () => {
      try {
        for (const handler of [...(this.subscribers.get(route) ?? [])]) {
          const owner = (handler as EnvelopeHandler & { owner?: MemoryDelivery }).owner;
          if (owner !== undefined && this.partitioned.has(owner)) {
            this.stats.partitioned++;
            continue;
          }
          this.stats.pushed++;
          try {
            handler({ route, bytes: bytes.slice() });
          } catch {
            // a subscriber's failure is its own business
          }
        }
      } finally {
        this.inFlight--;
        if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      }
    };
    if (delay <= 0) setImmediate(deliver);
    else setTimeout(deliver, delay);
  }

  /** @internal */
  subscribe(owner: MemoryDelivery, routes: readonly string[], onEnvelope: EnvelopeHandler): Subscription {
    const handler: EnvelopeHandler & { owner?: MemoryDelivery } = (e) => onEnvelope(e);
    handler.owner = owner;
    const mine = [...new Set(routes)];
    for (const r of mine) {
      let set = this.subscribers.get(r);
      if (set === undefined) this.subscribers.set(r, (set = new Set()));
      set.add(handler);
    }
    let open = true;
    return {
      close: () => {
        if (!open) return;
        open = false;
        for (const r of mine) this.subscribers.get(r)?.delete(handler);
      },
    };
  }

  /** @internal */
  fetch(owner: MemoryDelivery, route: string, since: string | null): FetchResult {
    if (this.partitioned.has(owner)) throw new Error('network unreachable (partitioned)');
    const entries = this.logs.get(route)?.entries ?? [];
    const start = since === null ? 0 : Number.parseInt(since, 10);
    if (!Number.isSafeInteger(start) || start < 0) throw new RangeError('bad cursor');
    const page = entries.slice(start, start + FETCH_PAGE);
    const envelopes: DeliveredEnvelope[] = page.map((bytes) => ({ route, bytes: bytes.slice() }));
    return { envelopes, cursor: entries.length === 0 && since === null ? null : String(start + page.length) };
  }
}

export class MemoryDelivery implements Delivery {
  private readonly subscriptions = new Set<Subscription>();
  private closed = false;

  constructor(readonly network: MemoryNetwork) {}

  async publish(route: string, bytes: Uint8Array): Promise<void> {
    if (typeof route !== 'string' || !(bytes instanceof Uint8Array)) throw new TypeError('publish(route: string, bytes: Uint8Array)');
    if (this.closed) throw new Error('memory delivery closed');
    this.network.publish(this, route, bytes);
  }

  subscribe(routes: readonly string[], onEnvelope: EnvelopeHandler): Subscription {
    if (this.closed) throw new Error('memory delivery closed');
    const inner = this.network.subscribe(this, routes, onEnvelope);
    const sub: Subscription = {
      close: () => {
        this.subscriptions.delete(sub);
        inner.close();
      },
    };
    this.subscriptions.add(sub);
    return sub;
  }

  async fetch(route: string, since: string | null): Promise<FetchResult> {
    if (this.closed) throw new Error('memory delivery closed');
    return this.network.fetch(this, route, since);
  }

  /** Ends this adapter's subscriptions; the network (and what it holds for others) stays. */
  close(): void {
    this.closed = true;
    for (const s of [...this.subscriptions]) s.close();
  }
}
