/**
 * Consent, inside client operations: allowed / unknown (a request) / denied. Allowing a request
 * acknowledges what it sent so far and lets our queued messages out; denying abandons the
 * outbox in the same transaction (no retries, no handshake, no acks), and from then on nothing
 * from the peer is stored or answered.
 */
import { reliability as rel } from '@umbra/protocol';
import type { ClientContext } from './context.ts';
import type { OutboxDriver } from './outbox-driver.ts';
import type { Consent } from './store.ts';

/** Incoming ids acknowledged when a request is accepted (the newest ones). */
const ACK_ON_ACCEPT = 4 * rel.ACK_IDS_PER_FRAME;

export class ConsentKeeper {
  constructor(
    private readonly ctx: ClientContext,
    private readonly outbox: OutboxDriver,
  ) {}

  async set(conversationId: string, consent: Consent): Promise<void> {
    const { state, store } = this.ctx;
    const meta = state.requireMeta(conversationId);
    if (meta.consent === consent) return;
    const next = { ...meta, consent };
    if (consent === 'denied') {
      const abandoned = rel.abandon(state.rstate(conversationId));
      const stored = state.record(next, state.conversation(conversationId), abandoned);
      await store.write({ conversations: [stored], abandonOutbox: [conversationId] });
      state.adopt(stored, abandoned);
      return;
    }
    await store.write({ conversationMeta: [next] });
    state.setMeta(next);
    if (consent === 'allowed') {
      await this.acknowledgeAll(conversationId);
      await this.outbox.pump(conversationId, this.ctx.clock());
    }
  }

  /** A request just accepted (by allowing it or replying to it): acknowledge what it sent so far. */
  async acknowledgeAll(conversationId: string): Promise<void> {
    const { state } = this.ctx;
    const ids = await this.ctx.store.messages.incomingIds(conversationId, ACK_ON_ACCEPT);
    state.setReliability(conversationId, rel.acknowledge(state.rstate(conversationId), ids, this.ctx.clock(), this.ctx.policy));
  }
}
