/**
 * What became of the envelopes the client handed to the network: whether the network answers
 * (said once when it stops and once when it is back, never per retry), how many envelopes a
 * send got accepted, and when the next retry of a message no service has accepted is. Which
 * messages a service accepted is the SDK's own record: their status is 'sent' (or past it).
 */
import { SERVICES_ROUTE, ServicesDelivery, type Client, type Delivery, type MessageInfo } from '@umbra/client/node';

/** The states the CLI shows (docs/CLI.md, "Message"). */
export type DeliveryState = 'queued' | 'sent' | 'delivered' | 'failed' | 'received';

export type WatchEvent = { readonly kind: 'unreachable'; readonly message: string } | { readonly kind: 'reachable' };

export class DeliveryWatch {
  /** The delivery to give the client: the same adapter, its publishes observed. */
  readonly delivery: Delivery;
  private failing: string | null = null;
  private readonly listeners = new Set<(e: WatchEvent) => void>();
  /** Publishes answered since the last count() (a send waits for its own). */
  private window = { accepted: 0, failed: 0 };

  constructor(inner: Delivery) {
    // A ServicesDelivery answers fetches of any route but its inboxes' at once, without the
    // network: those say nothing about whether the hub is reachable (counting them made the
    // state flap "reachable"/"unreachable" every sync while the hub was down).
    const networkFetch = (route: string) => !(inner instanceof ServicesDelivery) || route === SERVICES_ROUTE;
    const observe = <T>(bytes: Uint8Array | null, p: Promise<T>, counts = true): Promise<T> =>
      p.then(
        (v) => {
          if (bytes !== null) this.window.accepted++;
          if (counts && this.failing !== null) {
            this.failing = null;
            this.emit({ kind: 'reachable' });
          }
          return v;
        },
        (e: unknown) => {
          const message = (e as Error)?.message ?? String(e);
          if (bytes !== null) this.window.failed++;
          if (this.failing === null) this.emit({ kind: 'unreachable', message });
          this.failing = message;
          throw e;
        },
      );
    // The same adapter with its two publishes observed; everything else (a ServicesDelivery is
    // recognised by its methods) is the adapter's own, called on the adapter.
    const publish = (route: string, bytes: Uint8Array) => observe(bytes, Promise.resolve().then(() => inner.publish(route, bytes)));
    const fetch = (route: string, since: string | null) => observe(null, Promise.resolve().then(() => inner.fetch(route, since)), networkFetch(route));
    const target = inner as unknown as Record<string | symbol, unknown>;
    const publishEndpoint =
      typeof target.publishEndpoint === 'function'
        ? (endpoint: unknown, bytes: Uint8Array) => observe(bytes, Promise.resolve().then(() => (target.publishEndpoint as (e: unknown, b: Uint8Array) => Promise<void>).call(inner, endpoint, bytes)))
        : undefined;
    this.delivery = new Proxy(inner, {
      get(t, prop) {
        if (prop === 'publish') return publish;
        if (prop === 'publishEndpoint' && publishEndpoint !== undefined) return publishEndpoint;
        if (prop === 'fetch') return fetch;
        const v: unknown = Reflect.get(t, prop, t);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  }

  /** How many envelopes were accepted and refused since the last call. */
  count(): { accepted: number; failed: number } {
    const w = this.window;
    this.window = { accepted: 0, failed: 0 };
    return w;
  }

  /** The last publish or fetch failed (and none has succeeded since): its reason; null when the network answered the last one. */
  get failure(): string | null {
    return this.failing;
  }

  on(listener: (e: WatchEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: WatchEvent): void {
    for (const l of this.listeners) l(e);
  }

  /** The state to show for a message: the SDK's, which says 'sent' only once a service or the network accepted its envelope. */
  state(m: MessageInfo): DeliveryState {
    if (!m.outgoing) return 'received';
    switch (m.status) {
      case 'acked':
        return 'delivered';
      case 'failed':
        return 'failed';
      case 'queued':
        return 'queued';
      case 'received':
        return 'received';
      case 'sent':
        return 'sent';
    }
  }

  /** When the client next retries an envelope no service has accepted yet (unix ms), or null. */
  async nextRetryAt(client: Client): Promise<number | null> {
    let next: number | null = null;
    for (const c of await client.conversations({ consent: 'all' })) {
      for (const entry of await client.store.outbox.forConversation(c.id)) {
        if ((await client.store.messages.state(c.id, entry.messageId))?.status !== 'queued') continue;
        if (next === null || entry.nextAttemptAt < next) next = entry.nextAttemptAt;
      }
    }
    return next;
  }
}
