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
 * - `close` releases what the adapter holds (sockets, timers, nodes, files); it is idempotent,
 *   and afterwards `publish` rejects. The caller that made a delivery closes it (the Client
 *   does not own the delivery it is given).
 * Every adapter runs the same contract suite: test/delivery-contract.ts.
 */
import type { wire } from '@umbra/protocol';

export interface DeliveredEnvelope {
  readonly route: string;
  readonly bytes: Uint8Array;
}

/**
 * The client's handler returns a Promise<boolean> that resolves once the envelope is processed:
 * `true` when stored (committed), or judged a duplicate or not ours; `false` when it could not be
 * processed (the client is closing, the store failed). It never rejects. Adapters that hold envelopes until
 * acknowledged (the receiving services) acknowledge only after `true`; others may ignore it.
 */
export type EnvelopeHandler = (envelope: DeliveredEnvelope) => unknown;

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
  close(): void | Promise<void>;
}

/**
 * A delivery whose peers reach us at receiving-service addresses (the Communicator services,
 * `ServicesDelivery`). The client puts these endpoints into invitations and acceptances, sends
 * to a peer's `receivingService` endpoints through `publishEndpoint`, subscribes and fetches
 * `servicesRoute` (the envelopes of all our inboxes; each delivered envelope names the address
 * it was resolved to as its route), and attaches fresh endpoints (a Particle update) to an
 * ordinary message when `rotationEndpoints` offers some.
 */
export interface ServiceEndpointDelivery extends Delivery {
  readonly servicesRoute: string;
  /** Fresh endpoints (one per receiving service) for a new relationship. */
  endpointsForNewRelationship(): Promise<wire.DeliveryEndpoint[]>;
  /** Fresh endpoints if `own` (a relationship's current endpoints) are due for rotation and some are ready now; else null. */
  rotationEndpoints(own: readonly wire.DeliveryEndpoint[], nowMs: number): wire.DeliveryEndpoint[] | null;
  /** Send to one `receivingService` endpoint; rejects if that service cannot take it now (try the next). */
  publishEndpoint(endpoint: wire.DeliveryEndpoint, bytes: Uint8Array): Promise<void>;
}

export function hasServiceEndpoints(d: Delivery): d is ServiceEndpointDelivery {
  const s = d as Partial<ServiceEndpointDelivery>;
  return typeof s.servicesRoute === 'string' && typeof s.endpointsForNewRelationship === 'function' && typeof s.publishEndpoint === 'function' && typeof s.rotationEndpoints === 'function';
}
