/**
 * The client's routes on the delivery: live subscriptions, and fetching what the network holds
 * since each route's stored cursor. Fetches run outside the operation queue; each envelope is
 * then received as one operation, and a cursor is stored only after the envelopes before it.
 */
import type { DeliveredEnvelope, Delivery, Subscription } from './delivery.ts';
import type { ClientEvents } from './client-events.ts';
import { ClientError } from './errors.ts';
import type { Store } from './store.ts';

/** Pages fetched per route and sync, at most (a network that never stops paging cannot hold the client). */
const MAX_PAGES = 10_000;

export interface RouteParts {
  readonly delivery: Delivery;
  readonly store: Store;
  readonly events: ClientEvents;
  /** Receive one envelope as a client operation; resolves once it is committed (or judged a duplicate / not ours). */
  receive(bytes: Uint8Array, route: string | undefined): Promise<unknown>;
  serial<T>(fn: () => T | Promise<T>): Promise<T>;
}

export class DeliveryRoutes {
  private readonly subscribed = new Set<string>();
  private readonly subscriptions: Subscription[] = [];
  private closing = false;

  constructor(private readonly parts: RouteParts) {}

  subscribe(routes: readonly string[]): void {
    const fresh = routes.filter((r) => !this.subscribed.has(r));
    if (fresh.length === 0 || this.closing) return;
    for (const r of fresh) this.subscribed.add(r);
    this.subscriptions.push(this.parts.delivery.subscribe(fresh, this.onEnvelope));
  }

  /** Resolves true once the envelope is committed: adapters that hold envelopes until acknowledged acknowledge only then. */
  private readonly onEnvelope = (e: DeliveredEnvelope): Promise<boolean> => {
    if (this.closing || e === null || typeof e !== 'object' || !(e.bytes instanceof Uint8Array)) return Promise.resolve(false);
    const route = typeof e.route === 'string' ? e.route : undefined;
    return this.parts.receive(e.bytes, route).then(
      () => true,
      (err) => {
        this.parts.events.background(err);
        return false;
      },
    );
  };

  /** Fetch what the network holds for every route since its cursor, and receive it. */
  async sync(): Promise<void> {
    for (const route of [...this.subscribed]) await this.syncRoute(route);
  }

  private async syncRoute(route: string): Promise<void> {
    let cursor = await this.parts.store.conversations.cursor(route);
    for (let page = 0; page < MAX_PAGES && !this.closing; page++) {
      let result;
      try {
        result = await this.parts.delivery.fetch(route, cursor);
      } catch (e) {
        this.parts.events.error(new ClientError('delivery-failed', `fetch failed: ${(e as Error)?.message ?? e}`, { cause: e }));
        return;
      }
      for (const env of result.envelopes) {
        if (this.closing) return;
        if (env !== null && typeof env === 'object' && env.bytes instanceof Uint8Array) {
          await this.parts.receive(env.bytes, typeof env.route === 'string' && env.route !== '' ? env.route : route);
        }
      }
      const next = result.cursor;
      if (typeof next === 'string' && next !== cursor) {
        await this.parts.serial(() => this.parts.store.write({ cursors: [{ route, cursor: next }] }));
        cursor = next;
      }
      if (result.envelopes.length === 0) return;
    }
  }

  /** Stop receiving: envelopes that arrive from now on and syncs still running are ignored. */
  stop(): void {
    this.closing = true;
  }

  close(): void {
    this.stop();
    for (const s of this.subscriptions.splice(0)) s.close();
  }
}
