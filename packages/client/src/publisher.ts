/**
 * Publishing envelopes to a peer's endpoints, fire and forget: an envelope is published only
 * after it is durable in the outbox (or is a control frame that is never retried), so a failed
 * publish is reported and the outbox retries it; no operation waits for the network. The first
 * publish of a message's envelope that a service (or the network) accepts is reported through
 * `onAccepted`, so its status can say 'sent' only once something outside this process has it.
 */
import type { wire } from '@umbra/protocol';
import type { ClientEvents } from './client-events.ts';
import type { ClientStats } from './client-types.ts';
import type { Delivery, ServiceEndpointDelivery } from './delivery.ts';
import { ClientError } from './errors.ts';
import type { MessageKey } from './store.ts';

export class Publisher {
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    private readonly delivery: Delivery,
    /** The delivery's receiving-service side, when it has one (ServicesDelivery). */
    private readonly services: ServiceEndpointDelivery | null,
    private readonly stats: ClientStats,
    private readonly events: Pick<ClientEvents, 'error' | 'background'>,
    private readonly onAccepted: (message: MessageKey) => void,
  ) {}

  /**
   * `attempt` (0 = first): a retry starts at the next of the peer's receiving services.
   * `message`: the message this envelope carries, reported once when an endpoint takes it.
   */
  publish(endpoints: readonly wire.DeliveryEndpoint[], envelope: Uint8Array, attempt = 0, message?: MessageKey): void {
    let reported = message === undefined;
    const accepted = () => {
      if (reported) return;
      reported = true;
      this.onAccepted(message!);
    };
    const viaServices = endpoints.filter((e) => e.endpoint.case === 'receivingService');
    if (viaServices.length > 0 && this.services !== null) this.track(this.publishToServices(this.services, viaServices, envelope, attempt).then((ok) => ok && accepted()));
    for (const e of endpoints) {
      if (e.endpoint.case !== 'route') continue;
      this.stats.published++;
      let p: Promise<void>;
      try {
        p = this.delivery.publish(e.endpoint.value, envelope);
      } catch (err) {
        p = Promise.reject(err);
      }
      this.track(
        p.then(
          () => accepted(),
          (err) => {
            this.stats.publishFailures++;
            this.events.error(new ClientError('delivery-failed', `publish failed (will retry): ${(err as Error)?.message ?? err}`, { cause: err }));
          },
        ),
      );
    }
  }

  /** Resolves when every publish started so far has finished. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inflight]);
  }

  /** A peer's receiving services, in order from `attempt`: the first that takes the envelope wins (true). */
  private async publishToServices(services: ServiceEndpointDelivery, endpoints: readonly wire.DeliveryEndpoint[], envelope: Uint8Array, attempt: number): Promise<boolean> {
    const errors: string[] = [];
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[(i + attempt) % endpoints.length]!;
      try {
        await services.publishEndpoint(e, envelope);
        this.stats.published++;
        return true;
      } catch (err) {
        errors.push((err as Error)?.message ?? String(err));
      }
    }
    this.stats.publishFailures++;
    this.events.error(new ClientError('delivery-failed', `publish failed (will retry): ${errors.join('; ')}`));
    return false;
  }

  private track(p: Promise<unknown>): void {
    const tracked = p.then(
      () => undefined,
      (err) => this.events.background(err),
    );
    this.inflight.add(tracked);
    void tracked.finally(() => this.inflight.delete(tracked));
  }
}
