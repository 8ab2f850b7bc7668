/**
 * One incoming envelope, inside a client operation:
 * dedupe (SHA-256 of the bytes) → classify (decrypts on a copy) → frames through the protocol's
 * reliability machine → ONE batch (conversation record, messages, acks, seen hash, group rows)
 * → commit the engine and adopt memory only after the write → events → follow-ups (answers to
 * retransmission requests, queued messages the acks made room for).
 * Replays and duplicates are re-acknowledged (at most once per interval), never re-delivered; a
 * denied conversation's frames are decrypted (the ratchet stays in step) and dropped.
 */
import { reliability as rel, toHex, wire, type ClassifyResult, type HandshakeRefused, type PrivateConversation, type RefusalReply } from '@umbra/protocol';
import { MESSAGE_ID_BYTES, type ClientEvent } from './client-types.ts';
import type { ClientContext } from './context.ts';
import { requestInboxKey, storedInbox } from './conversation-records.ts';
import { conversationInfo } from './conversation-views.ts';
import type { DueWork } from './due-work.ts';
import { ClientError } from './errors.ts';
import { encodeContent } from './frames.ts';
import type { GossipSources } from './gossip.ts';
import { messageInfo } from './message-info.ts';
import type { OutboxDriver } from './outbox-driver.ts';
import type { ConversationMeta, StoreBatch, StoredMessage } from './store.ts';

export type ReceiveOutcome = 'duplicate' | 'not-for-me' | 'badly-formed' | 'readable';

/** The group layer's side of a receive (Groups.beginReceive): frames in, rows for the batch, commit after the write. */
export interface GroupReceiver {
  beginReceive(now: number): {
    frame(conversationId: string, frame: wire.GroupFrame, peerIdentity: Uint8Array): Promise<void> | void;
    batch(): StoreBatch;
    commit(): void;
  };
}

type Readable = Extract<ClassifyResult, { kind: 'readable' }>;
type GroupReceive = ReturnType<GroupReceiver['beginReceive']>;

/** What the machine made of a readable envelope's frames: the rows to write and what to do after the write. */
interface FramePlan {
  readonly state: rel.ReliabilityState;
  readonly effects: rel.FrameEffects;
  readonly batch: StoreBatch & Required<Pick<StoreBatch, 'messages' | 'messageStatus' | 'outboxDelete'>>;
  readonly events: ClientEvent[];
  groups?: GroupReceive;
}

const MAX_LAMPORT = BigInt(Number.MAX_SAFE_INTEGER);
const MAX_TIME = 8_640_000_000_000_000n;

/** Frames whose envelope is re-acknowledged when it arrives again (those the machine acknowledges). */
function isAcknowledged(frame: wire.PrivateV1Frame): boolean {
  const kind = rel.frameKind(frame.body);
  return kind === 'content' || kind === 'group' || kind === 'particle-update';
}

export class ReceivePipeline {
  constructor(
    private readonly ctx: ClientContext,
    private readonly parts: { outbox: OutboxDriver; due: DueWork; gossip: GossipSources; groups: GroupReceiver },
  ) {}

  /** `route`: where it was delivered, if known (lets envelopes older than the hint windows find their conversation). */
  async receive(bytes: Uint8Array, route: string | undefined): Promise<ReceiveOutcome> {
    const now = this.ctx.clock();
    await this.parts.due.tick(now);
    if (bytes.length > wire.MAX_ENVELOPE_BYTES) return this.badlyFormed('envelope-too-large');
    const hash = this.ctx.crypto.sha256(bytes);
    if (await this.isDuplicate(hash, now)) return 'duplicate';
    const r = await this.ctx.state.engine.classify(bytes, now, route === undefined ? {} : { route });
    if (r.kind === 'not-for-me') {
      this.ctx.stats.notForMe++;
      return 'not-for-me';
    }
    if (r.kind === 'badly-formed') {
      if (r.reply !== undefined) this.refuseFirstContact(r.reply);
      return this.badlyFormed(r.reason);
    }
    this.ctx.stats.received++;
    if (r.refused !== undefined) await this.refused(r.conversationId, r.refused, hash, now);
    else await this.readable(r, hash, now);
    return 'readable';
  }

  /**
   * Someone answered one of our invitations that is used up or expired: tell them (the protocol's
   * signed refusal, best effort: nothing to persist, and a lost one is answered again when their
   * retry comes) and tell the app.
   */
  private refuseFirstContact(reply: RefusalReply): void {
    this.ctx.stats.refusalsSent++;
    this.ctx.publisher.publish(reply.endpoints, reply.envelope);
    this.ctx.events.emit({ type: 'first-contact-refused', data: { invitationId: toHex(reply.invitationId), reason: reply.reason } });
  }

  /**
   * The inviter refused our first contact: the conversation will never be answered. Its queued
   * and unacknowledged messages fail, nothing more goes out, and the refusal is kept with the
   * conversation (conversationInfo shows it). A second refusal changes nothing.
   */
  private async refused(id: string, refused: HandshakeRefused, hash: Uint8Array, now: number): Promise<void> {
    const { state } = this.ctx;
    const meta = state.meta(id);
    if (meta === undefined || state.rstate(id).refusal !== null) return;
    const next = rel.onHandshakeRefused(state.rstate(id), refused);
    const stored = state.record({ ...meta, lastActivityAt: now }, state.conversation(id), next);
    await this.ctx.store.write({ conversations: [stored], abandonOutbox: [id], seenEnvelopes: [{ hash, conversationId: id, messageId: null, seenAt: now }] });
    state.adopt(stored, next);
    this.ctx.events.emit({ type: 'conversation-refused', data: { ...(await conversationInfo(this.ctx, id)), refusal: next.refusal! } });
  }

  private badlyFormed(reason: string): 'badly-formed' {
    const bad = this.ctx.stats.badlyFormed;
    bad[reason] = (bad[reason] ?? 0) + 1;
    return 'badly-formed';
  }

  /** A hash seen before: the ack may have been lost, so re-acknowledge (at most once per duplicate-ack interval). */
  private async isDuplicate(hash: Uint8Array, now: number): Promise<boolean> {
    const seen = await this.ctx.store.messages.seenEnvelope(hash);
    if (seen === null) return false;
    this.ctx.stats.duplicateEnvelopes++;
    const { state } = this.ctx;
    if (seen.conversationId !== null && seen.messageId !== null && state.meta(seen.conversationId)?.consent === 'allowed') {
      state.setReliability(seen.conversationId, rel.onDuplicateEnvelope(state.rstate(seen.conversationId), seen.messageId, now, this.ctx.policy));
    }
    return true;
  }

  private async readable(r: Readable, hash: Uint8Array, now: number): Promise<void> {
    const { state } = this.ctx;
    const id = r.conversationId;
    const conversation = r.changes.conversations.find((c) => c.id === id);
    if (conversation === undefined) throw new ClientError('internal', 'a readable result without its conversation');
    const known = state.meta(id);
    const meta = known ?? (await this.newConversationMeta(r, now));
    const plan = meta.consent === 'denied' ? null : await this.planFrames(id, r.frames, conversation, meta, now);
    const stored = state.record(plan === null ? meta : { ...meta, lastActivityAt: now }, conversation, plan?.state ?? state.rstate(id));
    const first = r.frames[0];
    const write: StoreBatch = {
      ...plan?.batch,
      ...plan?.groups?.batch(),
      conversations: [stored],
      inboxes: r.changes.inboxes.map((i) => storedInbox(i, now)),
      // Only a reliable frame's envelope is re-acknowledged when it comes again: a duplicate ack,
      // request or gossip envelope costs nothing.
      seenEnvelopes: [{ hash, conversationId: id, messageId: first !== undefined && isAcknowledged(first) ? first.messageId : null, seenAt: now }],
    };
    await this.ctx.store.write(write);
    state.engine.commit(r.changes);
    state.adopt(stored, plan?.state ?? state.rstate(id));
    plan?.groups?.commit();
    if (known === undefined) await this.announceStarted(id, stored.meta);
    if (plan !== null) await this.afterFrames(id, plan, now);
  }

  /** First contact: a request when it came through the default inbox or an invitation made to arrive as one. */
  private async newConversationMeta(r: Readable, now: number): Promise<ConversationMeta> {
    const viaDefault = r.started?.viaDefaultInbox ?? false;
    const asRequest = viaDefault || (r.started != null && (await this.ctx.store.conversations.cursor(requestInboxKey(toHex(r.started.invitationId)))) !== null);
    return { id: r.conversationId, consent: asRequest ? 'unknown' : 'allowed', origin: viaDefault ? 'default-inbox' : 'invitation', lamport: 0, recentIds: [], createdAt: now, lastActivityAt: now };
  }

  private async planFrames(id: string, frames: readonly wire.PrivateV1Frame[], conversation: PrivateConversation, meta: ConversationMeta, now: number): Promise<FramePlan> {
    const known = await this.knownIds(id, frames);
    const { state, effects } = rel.onFrames(this.ctx.state.rstate(id), frames, now, this.ctx.policy, { known, acknowledge: meta.consent === 'allowed' });
    const plan: FramePlan = { state, effects, batch: { messages: [], messageStatus: [], outboxDelete: [] }, events: [] };
    this.ctx.stats.duplicateMessages += effects.duplicateMessages;
    for (const a of effects.acked) {
      plan.batch.messageStatus.push({ conversationId: id, messageId: a.messageId, status: 'acked' });
      plan.batch.outboxDelete.push({ conversationId: id, messageId: a.messageId });
      plan.events.push({ type: 'acked', data: { conversationId: id, messageId: toHex(a.messageId) } });
    }
    if (effects.handshakeAcked !== null) plan.batch.outboxDelete.push({ conversationId: id, messageId: effects.handshakeAcked });
    for (const frame of effects.delivered) await this.deliver(id, frame, conversation, plan, now);
    const unhandled = this.ctx.stats.unhandledFrames;
    for (const u of effects.unhandled) unhandled[u.kind] = (unhandled[u.kind] ?? 0) + 1;
    return plan;
  }

  /** A frame the machine delivers: content becomes a message; a group frame is stored hidden and handed to the group layer. */
  private async deliver(id: string, frame: wire.PrivateV1Frame, conversation: PrivateConversation, plan: FramePlan, now: number): Promise<void> {
    const lamport = Number(frame.lamport > MAX_LAMPORT ? MAX_LAMPORT : frame.lamport);
    const sentAt = Number(frame.sentAt > MAX_TIME ? MAX_TIME : frame.sentAt);
    const common = { conversationId: id, messageId: frame.messageId, outgoing: false, lamport, sentAt, receivedAt: now, status: 'received' as const };
    if (frame.body.case === 'content') {
      const stored: StoredMessage = { ...common, body: encodeContent(frame.body.value), read: false };
      plan.batch.messages.push(stored);
      plan.events.push({ type: 'message', data: messageInfo(stored) });
    } else if (frame.body.case === 'group') {
      // group/v1 frames are reliable like content: stored (hidden from 1:1 history), deduplicated, acknowledged.
      const body = wire.toBinary(wire.PrivateV1FrameSchema, wire.create(wire.PrivateV1FrameSchema, { body: frame.body }));
      plan.batch.messages.push({ ...common, body, read: true, group: true });
      plan.groups ??= this.parts.groups.beginReceive(now);
      await plan.groups.frame(id, frame.body.value, conversation.peerIdentity);
    }
  }

  private async announceStarted(id: string, meta: ConversationMeta): Promise<void> {
    this.ctx.subscribeRoutes();
    const info = await conversationInfo(this.ctx, id);
    this.ctx.events.emit({ type: 'conversation-started', data: info });
    if (meta.consent === 'unknown') this.ctx.events.emit({ type: 'request', data: info });
  }

  private async afterFrames(id: string, plan: FramePlan, now: number): Promise<void> {
    const { effects } = plan;
    const events = this.ctx.events;
    if (effects.missing.length > 0) events.emit({ type: 'missing', data: { conversationId: id, messageIds: effects.missing.map((m) => toHex(m)) } });
    for (const e of plan.events) events.emit(e);
    this.parts.gossip.incoming(id, effects.gossip);
    if (effects.retransmitAnswered > 0) this.ctx.stats.retransmitRequestsAnswered++;
    if (effects.retransmitRequested.length > 0) await this.parts.outbox.answerRetransmit(id, effects.retransmitRequested, now);
    if (effects.acked.length > 0 || effects.handshakeAcked !== null) await this.parts.outbox.pump(id, now);
  }

  /** Which of the ids these frames carry (their own, their causal history) the store already holds. */
  private async knownIds(conversationId: string, frames: readonly wire.PrivateV1Frame[]): Promise<rel.KnownIds> {
    const known = new Map<string, 'incoming' | 'outgoing'>();
    const look = async (messageId: Uint8Array) => {
      if (messageId.length !== MESSAGE_ID_BYTES) return;
      const hex = toHex(messageId);
      if (known.has(hex)) return;
      const found = await this.ctx.store.messages.state(conversationId, messageId);
      if (found !== null) known.set(hex, found.outgoing ? 'outgoing' : 'incoming');
    };
    for (const frame of frames) {
      if (frame.body.case === 'content' || frame.body.case === 'group') await look(frame.messageId);
      for (const causal of frame.causalHistory) await look(causal);
    }
    return known;
  }
}
