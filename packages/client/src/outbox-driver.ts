/**
 * Everything that goes out, inside client operations. One path for every sealed envelope:
 * seal on a copy → write (state + outbox + whatever the operation adds, one transaction) →
 * commit the engine → adopt the new state in memory → publish. A failed write leaves engine
 * and memory as they were, and nothing is published.
 *
 * Reliable frames (content, group frames) keep their envelope in the outbox until acknowledged;
 * the reliability machine decides when they go out (in-flight window), when to retry, and
 * whether the same bytes will do or the frame must be re-encrypted under its message id.
 * Control frames (acks, retransmission requests, address rotation, gossip) are never retried.
 */
import { UmbraError, reliability as rel, toHex, wire, type FrameBody, type PrivateConversation, type StateChanges } from '@umbra/protocol';
import { MESSAGE_ID_BYTES } from './client-types.ts';
import type { ClientContext } from './context.ts';
import { ClientError, refusalReasonText, toClientError } from './errors.ts';
import { decodeContent, sealFrame, type SealedFrame } from './frames.ts';
import { decodeGroupFrameBody } from './group/groups.ts';
import type { GossipSources } from './gossip.ts';
import type { ConversationMeta, MessageKey, OutboxEntry, StoreBatch, StoredMessage } from './store.ts';

/** An outbox entry for a message not yet encrypted. */
export function queuedEntry(conversationId: string, messageId: Uint8Array, lamport: number, now: number): OutboxEntry {
  return { conversationId, messageId, kind: 'content', lamport, envelope: null, hintHour: -1, hintIndex: -1, attempts: 0, nextAttemptAt: now, createdAt: now };
}

/** What a stored outgoing message carries: a group frame or an app content. */
function frameBodyOf(message: StoredMessage): FrameBody {
  const groupBody = message.group === true ? decodeGroupFrameBody(message.body) : null;
  if (groupBody !== null) return groupBody;
  const content = message.group === true ? null : decodeContent(message.body);
  if (content === null) throw new ClientError('store-corrupt', 'a stored message body does not decode');
  return { case: 'content', value: content };
}

export class OutboxDriver {
  constructor(
    private readonly ctx: ClientContext,
    private readonly gossip: GossipSources,
  ) {}

  /**
   * A new outgoing content message (send): encrypted now when the window has room and nothing
   * is queued before it, else queued. Resolves to the message as stored.
   */
  async sendContent(conversationId: string, body: Uint8Array, now: number): Promise<StoredMessage> {
    const { state, store } = this.ctx;
    const previous = { meta: state.requireMeta(conversationId), reliability: state.rstate(conversationId) };
    if (previous.meta.consent === 'denied') throw new ClientError('conversation-denied', 'this conversation is blocked');
    const refusal = previous.reliability.refusal;
    if (refusal !== null) throw new ClientError('conversation-refused', `${refusalReasonText(refusal.reason)}; ask for a new one`);
    const messageId = this.ctx.crypto.randomBytes(MESSAGE_ID_BYTES);
    const next = rel.nextLamport(previous.reliability);
    const meta: ConversationMeta = { ...previous.meta, consent: 'allowed', lamport: next.lamport, lastActivityAt: now };
    const message: StoredMessage = { conversationId, messageId, outgoing: true, lamport: next.lamport, sentAt: now, receivedAt: null, body, status: 'queued', read: true };
    const entry = queuedEntry(conversationId, messageId, next.lamport, now);
    const sealNow = this.room(conversationId, now) > 0 && (await store.outbox.queued(conversationId, 1)).length === 0;
    // Address rotation and gossip sealed just before the message already see the new clock and consent.
    state.setMeta(meta);
    state.setReliabilityTentatively(conversationId, next.state);
    try {
      // Sealed or not, it stays 'queued' until a service accepts its envelope (markSent).
      if (sealNow && (await this.sealContent(message, entry, now, { messages: [message] }))) return message;
      const stored = state.record(meta, state.conversation(conversationId), next.state);
      await store.write({ conversations: [stored], messages: [message], outboxPut: [entry] });
      state.adopt(stored, next.state);
      return message;
    } catch (e) {
      state.setMeta(previous.meta);
      state.setReliabilityTentatively(conversationId, previous.reliability);
      throw e;
    }
  }

  /**
   * Group frames for pairwise delivery: each becomes a hidden message of its conversation with
   * an outbox entry, written in ONE transaction with `extra`; then they go out like 1:1 messages.
   */
  async sendGroupFrames(frames: readonly { conversationId: string; frame: Uint8Array }[], extra: StoreBatch): Promise<void> {
    const { state } = this.ctx;
    const now = this.ctx.clock();
    const messages: StoredMessage[] = [];
    const outboxPut: OutboxEntry[] = [];
    const states = new Map<string, rel.ReliabilityState>();
    for (const f of frames) {
      const meta = state.meta(f.conversationId);
      if (meta === undefined || meta.consent === 'denied' || state.engine.conversation(f.conversationId) === undefined) continue;
      const next = rel.nextLamport(states.get(f.conversationId) ?? state.rstate(f.conversationId));
      states.set(f.conversationId, next.state);
      const messageId = this.ctx.crypto.randomBytes(MESSAGE_ID_BYTES);
      messages.push({ conversationId: f.conversationId, messageId, outgoing: true, lamport: next.lamport, sentAt: now, receivedAt: null, body: f.frame, status: 'queued', read: true, group: true });
      outboxPut.push(queuedEntry(f.conversationId, messageId, next.lamport, now));
    }
    const records = [...states].map(([id, s]) => state.record({ ...state.meta(id)!, lastActivityAt: now }, state.conversation(id), s));
    await this.ctx.store.write({
      ...extra,
      conversations: [...(extra.conversations ?? []), ...records],
      messages: [...(extra.messages ?? []), ...messages],
      outboxPut: [...(extra.outboxPut ?? []), ...outboxPut],
    });
    for (const r of records) state.adopt(r, states.get(r.meta.id)!);
    for (const id of states.keys()) await this.pump(id, now);
  }

  /** How many more reliable envelopes may go out now (the machine's in-flight window). */
  room(conversationId: string, now: number): number {
    const conversation = this.ctx.state.engine.conversation(conversationId);
    if (conversation === undefined) return 0;
    return rel.room(this.ctx.state.rstate(conversationId), this.ctx.policy, conversation.sendHint, now);
  }

  /** Encrypt queued messages while the conversation has room in flight. */
  async pump(conversationId: string, now: number): Promise<void> {
    const meta = this.ctx.state.meta(conversationId);
    if (meta === undefined || meta.consent === 'denied') return;
    const room = this.room(conversationId, now);
    if (room <= 0) return;
    const { store } = this.ctx;
    for (const entry of await store.outbox.queued(conversationId, room)) {
      const message = await store.messages.get(conversationId, entry.messageId);
      if (message === null) {
        await store.write({ outboxDelete: [entry] });
        continue;
      }
      if (!(await this.sealContent(message, entry, now))) break;
    }
  }

  /**
   * Encrypt one reliable message, persist engine state + reliability state + outbox (+ `extra`)
   * in one transaction, adopt, publish. False when the conversation cannot send yet.
   */
  async sealContent(message: StoredMessage, entry: OutboxEntry, now: number, extra: StoreBatch = {}): Promise<boolean> {
    const id = message.conversationId;
    const { state } = this.ctx;
    await this.rotateEndpoints(id, now);
    await this.sendGossip(id, now);
    const meta = state.meta(id)!;
    const current = state.rstate(id);
    const body = frameBodyOf(message);
    const sealed = this.trySeal(id, { messageId: message.messageId, lamport: message.lamport, causalHistory: rel.causalHistory(current, message.messageId), body }, now);
    if (sealed === null) return false;
    const slot = { messageId: message.messageId, lamport: message.lamport, hintHour: sealed.hintHour, hintIndex: sealed.hintIndex };
    const nextState = rel.onSealed(current, slot, now, this.ctx.policy);
    const inFlight = nextState.inFlight.find((f) => toHex(f.messageId) === toHex(message.messageId))!;
    const stored = state.record({ ...meta, lastActivityAt: Math.max(meta.lastActivityAt, now) }, sealed.conversation, nextState);
    // The outbox row keeps the envelope; its attempt columns mirror the machine's entry.
    const put: OutboxEntry = { ...entry, envelope: sealed.envelope, hintHour: sealed.hintHour, hintIndex: sealed.hintIndex, attempts: inFlight.attempts, nextAttemptAt: inFlight.nextAttemptAt };
    const batch: StoreBatch = { ...extra, conversations: [stored], outboxPut: [put] };
    await this.commitAndPublish(sealed, batch, () => state.adopt(stored, nextState), inFlight.attempts - 1, { conversationId: id, messageId: message.messageId });
    return true;
  }

  /**
   * Messages whose envelope a service (or the network) accepted: 'queued' → 'sent', one write,
   * a 'sent' event each. A status already past 'queued' (acked, failed) is left as it is.
   */
  async markSent(keys: readonly MessageKey[]): Promise<void> {
    const { store, events } = this.ctx;
    const sent: (MessageKey & { status: 'sent' })[] = [];
    for (const k of keys) {
      const s = await store.messages.state(k.conversationId, k.messageId);
      if (s !== null && s.outgoing && s.status === 'queued') sent.push({ ...k, status: 'sent' });
    }
    if (sent.length === 0) return;
    await store.write({ messageStatus: sent });
    for (const k of sent) events.emit({ type: 'sent', data: { conversationId: k.conversationId, messageId: toHex(k.messageId) } });
  }

  /**
   * A control frame, written with the conversation's current reliability state. `adjust`
   * changes the sealed conversation before it is stored (address rotation). Returns the stored
   * conversation, or null when the conversation cannot send.
   */
  async sendControl(conversationId: string, body: FrameBody, now: number, adjust?: (c: PrivateConversation) => PrivateConversation): Promise<PrivateConversation | null> {
    const { state } = this.ctx;
    const current = state.rstate(conversationId);
    const messageId = this.ctx.crypto.randomBytes(MESSAGE_ID_BYTES);
    const sealed = this.trySeal(conversationId, { messageId, lamport: current.lamport, causalHistory: rel.causalHistory(current), body }, now);
    if (sealed === null) return null;
    const conversation = adjust === undefined ? sealed.conversation : adjust(sealed.conversation);
    const changes = adjust === undefined ? sealed.changes : { ...sealed.changes, conversations: [conversation] };
    await this.commitAndPublish({ ...sealed, conversation, changes }, { conversations: [state.record(state.meta(conversationId)!, conversation, current)] }, () => undefined);
    return conversation;
  }

  /**
   * The one way an envelope leaves: write, then commit the engine (null: the engine call already
   * changed it, see Client.accept), adopt memory, publish. Nothing happens after a failed write.
   */
  async commitAndPublish(
    sealed: { readonly envelope: Uint8Array; readonly conversation: PrivateConversation; readonly changes: StateChanges | null },
    batch: StoreBatch,
    adopt: () => void,
    attempt = 0,
    message?: MessageKey,
  ): Promise<void> {
    await this.ctx.store.write(batch);
    if (sealed.changes !== null) this.ctx.state.engine.commit(sealed.changes);
    adopt();
    this.ctx.publisher.publish(sealed.conversation.peerEndpoints, sealed.envelope, attempt, message);
  }

  /** The peer asks for messages it has seen referenced but lacks and that are not in flight: answer from the store. */
  async answerRetransmit(conversationId: string, ids: readonly Uint8Array[], now: number): Promise<void> {
    const { store } = this.ctx;
    const puts: OutboxEntry[] = [];
    const status: NonNullable<StoreBatch['messageStatus']> = [];
    for (const messageId of ids) {
      if ((await store.outbox.entry(conversationId, messageId)) !== null) continue; // queued: it goes out when the window allows
      const msg = await store.messages.get(conversationId, messageId);
      if (msg === null || !msg.outgoing || msg.status === 'failed') continue;
      // Acknowledged once, yet asked for again: queue it for re-encryption under the same id.
      puts.push(queuedEntry(conversationId, messageId, msg.lamport, now));
      status.push({ conversationId, messageId, status: 'queued' });
    }
    if (puts.length === 0) return;
    this.ctx.stats.retransmitRequestsAnswered++;
    await store.write({ outboxPut: puts, messageStatus: status });
    await this.pump(conversationId, now);
  }

  /** What the machine says is due for one conversation: acks, a retransmission request, retries. */
  async executeDue(id: string, effects: rel.DueEffects, now: number): Promise<void> {
    const { stats } = this.ctx;
    for (const ids of effects.acks) {
      if ((await this.sendControl(id, { case: 'ack', value: wire.create(wire.AckSchema, { messageIds: [...ids] }) }, now)) !== null) stats.acksSent++;
    }
    if (effects.retransmitRequest.length > 0) {
      await this.sendControl(id, { case: 'retransmitRequest', value: wire.create(wire.RetransmitRequestSchema, { messageIds: [...effects.retransmitRequest] }) }, now);
      stats.retransmitRequestsSent++;
    }
    for (const retry of effects.retransmissions) await this.retransmit(id, retry, now);
    if (effects.handshakeRetry !== null) await this.retryHandshake(id, effects.handshakeRetry);
  }

  private async retransmit(id: string, retry: rel.DueEffects['retransmissions'][number], now: number): Promise<void> {
    const { store, state, stats } = this.ctx;
    const entry = await store.outbox.entry(id, retry.messageId);
    if (entry !== null && entry.envelope !== null && retry.sameBytes) {
      stats.retries++;
      this.ctx.publisher.publish(state.conversation(id).peerEndpoints, entry.envelope, retry.attempt - 1, entry.kind === 'content' ? { conversationId: id, messageId: retry.messageId } : undefined);
      return;
    }
    const message = entry === null ? null : await store.messages.get(id, retry.messageId);
    if (entry === null || entry.envelope === null || message === null) {
      // Its message or envelope is gone: it can never be acknowledged.
      state.setReliability(id, rel.forget(state.rstate(id), retry.messageId));
      if (entry !== null) await store.write({ outboxDelete: [entry] });
      return;
    }
    stats.reencrypted++;
    await this.sealContent(message, entry, now); // false: cannot send yet; the machine has already scheduled the next try
  }

  private async retryHandshake(id: string, retry: NonNullable<rel.DueEffects['handshakeRetry']>): Promise<void> {
    const { state } = this.ctx;
    const hs = await this.ctx.store.outbox.entry(id, retry.messageId);
    if (hs === null || hs.envelope === null) {
      state.setReliability(id, { ...state.rstate(id), handshake: null });
      return;
    }
    this.ctx.stats.retries++;
    this.ctx.publisher.publish(state.conversation(id).peerEndpoints, hs.envelope, retry.attempt - 1);
  }

  private trySeal(conversationId: string, frame: Parameters<typeof sealFrame>[2], now: number): SealedFrame | null {
    try {
      return sealFrame(this.ctx.state.engine, conversationId, frame, now);
    } catch (e) {
      if (e instanceof UmbraError && e.code === 'conversation-cannot-send') return null;
      throw toClientError(e);
    }
  }

  /**
   * Address rotation, piggy-backed on an ordinary message: when the delivery says this
   * relationship's addresses are due, a Particle update with fresh endpoints goes out just before
   * the content frame (same flush, no extra round trip). The old addresses stay in ownEndpoints
   * (and valid at the service) until they expire, so late envelopes still find the conversation.
   */
  private async rotateEndpoints(conversationId: string, now: number): Promise<void> {
    const services = this.ctx.services;
    if (services === null) return;
    const current = this.ctx.state.engine.conversation(conversationId);
    if (current === undefined || this.ctx.state.meta(conversationId) === undefined) return;
    const fresh = services.rotationEndpoints(current.ownEndpoints, now);
    if (fresh === null || fresh.length === 0) return;
    const presentation = wire.create(wire.PresentationSchema, { name: this.ctx.profileName() });
    const body: FrameBody = { case: 'particleUpdate', value: wire.create(wire.ParticleUpdateSchema, { endpoints: fresh, presentation }) };
    const nowS = BigInt(Math.floor(now / 1000));
    const kept = current.ownEndpoints.filter((e) => e.endpoint.case !== 'receivingService' || e.endpoint.value.notAfter === 0n || e.endpoint.value.notAfter > nowS);
    await this.sendControl(conversationId, body, now, (c) => ({ ...c, ownEndpoints: [...fresh, ...kept].slice(0, wire.MAX_ENDPOINTS) }));
  }

  /**
   * Checkpoint gossip, piggy-backed like address rotation: a `checkpointGossip` control frame just
   * before the content frame. A source whose frame could not go out is not told `sent`, so it
   * offers the same bytes with the next message.
   */
  private async sendGossip(conversationId: string, now: number): Promise<void> {
    if (this.gossip.size === 0 || this.ctx.state.meta(conversationId)?.consent !== 'allowed') return;
    for (const g of this.gossip.outgoing(conversationId)) {
      if ((await this.sendControl(conversationId, { case: 'checkpointGossip', value: g.bytes }, now)) === null) return;
      g.sent();
    }
  }
}
