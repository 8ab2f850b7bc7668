/**
 * The Delivery interface: how envelopes move between clients. Adapters implement it (memory for
 * tests and simulations, a shared-file mailbox for several processes on one machine, later the
 * Communicator services and Waku). A route is an opaque string (a DeliveryEndpoint's `route`).
 *
 * Contract:
 * - `publish` resolves once the network has taken the bytes (it may still lose them: the client
 *   retries until the peer acknowledges). It rejects when the network is unreachable.
 * - `subscribe` pushes envelopes as they arrive, any number of times (duplicates and
 *   reordering are allowed; the client is idempotent). Closing the subscription stops pushes.
 * - `fetch` returns what the network still holds for a route after an opaque cursor (null = from
 *   the start), oldest first, with the cursor to pass next time. Used after a restart and
 *   periodically, so that nothing pushed while the client was down is missed.
 */
export interface DeliveredEnvelope {
  readonly route: string;
  readonly bytes: Uint8Array;
}

export type EnvelopeHandler = (envelope: DeliveredEnvelope) => void;

export interface Subscription {
  close(): void;
}

export interface FetchResult {
  readonly envelopes: readonly DeliveredEnvelope[];
  /** Pass this as `since` next time; null when the route holds nothing yet. */
  readonly cursor: string | null;
}

export interface Delivery {
  publish(route: string, bytes: Uint8Array): Promise<void>;
  subscribe(routes: readonly string[], onEnvelope: EnvelopeHandler): Subscription;
  fetch(route: string, since: string | null): Promise<FetchResult>;
}
