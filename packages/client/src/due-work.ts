/**
 * What runs when time passes, inside client operations: the engine's hourly tick (hint windows,
 * seen-envelope pruning), and every conversation whose reliability machine is due (acks,
 * retransmission requests, retries), executed through the outbox driver.
 */
import { reliability as rel } from '@umbra/protocol';
import { SEEN_ENVELOPE_RETENTION_MS } from './client-types.ts';
import type { ClientContext } from './context.ts';
import type { OutboxDriver } from './outbox-driver.ts';
import type { StoreBatch } from './store.ts';

const PRUNE_INTERVAL_MS = 24 * 3600 * 1000;

export class DueWork {
  private lastPrune = 0;

  constructor(
    private readonly ctx: ClientContext,
    private readonly outbox: OutboxDriver,
  ) {}

  /** Move hint windows to the current hour (the engine changes at once: a pure function of time) and prune old envelope hashes daily. */
  async tick(now: number): Promise<void> {
    const { state } = this.ctx;
    const changes = state.engine.tick(now);
    const batch: StoreBatch = {};
    if (changes.conversations.length > 0) batch.conversations = changes.conversations.map((c) => state.currentRecord(c.id, c));
    if (now - this.lastPrune > PRUNE_INTERVAL_MS) {
      this.lastPrune = now;
      batch.pruneSeenBefore = now - SEEN_ENVELOPE_RETENTION_MS;
    }
    if (batch.conversations !== undefined || batch.pruneSeenBefore !== undefined) await this.ctx.store.write(batch);
  }

  /**
   * Run every conversation whose machine is due. `firedFor`: the due time the wake timer was
   * armed for. A timer that fired means its delay has passed even when the app's clock
   * (options.now) has not moved, so what was due then runs.
   */
  async runDue(firedFor = -Infinity): Promise<void> {
    const { state } = this.ctx;
    const now = this.ctx.clock();
    await this.tick(now);
    const dueBy = Math.max(now, firedFor);
    for (const id of state.dueBy(dueBy)) {
      const meta = state.meta(id)!;
      const conversation = state.conversation(id);
      const { state: next, effects } = rel.due(state.rstate(id), dueBy, this.ctx.policy, { allowed: meta.consent === 'allowed', sendHint: conversation.sendHint });
      state.setReliability(id, next);
      await this.outbox.executeDue(id, effects, now);
    }
    state.rearm();
  }

  /** Send every pending ack now (at close: their timers would be lost, and the peer would retry forever). */
  async flushAcks(): Promise<void> {
    const { state } = this.ctx;
    const now = this.ctx.clock();
    for (const [id, current] of state.decodedReliabilityEntries()) {
      if (current.pendingAcks.length === 0) continue;
      const taken = rel.takeAcks(current, now);
      state.setReliability(id, taken.state);
      if (state.meta(id)?.consent !== 'allowed' || state.engine.conversation(id) === undefined) continue;
      await this.outbox.executeDue(id, { acks: taken.acks, retransmitRequest: [], gaveUp: [], retransmissions: [], handshakeRetry: null }, now);
    }
  }
}
