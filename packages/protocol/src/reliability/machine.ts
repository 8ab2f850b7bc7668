/**
 * The reliability state machine of one conversation (SDS-like): Lamport clock, causal history,
 * acks, missing-message detection, retransmission requests, the in-flight window and retries.
 * Pure: no I/O, no clock reads, no timers, no randomness. The caller passes `now`, executes the
 * effects (store writes, publishes, events) and asks `nextDueAt` when to call `due` again.
 *
 *   onFrames(state, frames, now, …)  → { state, effects }  frames the engine decrypted
 *   onDuplicateEnvelope(state, id, …) → state               bytes seen before: re-ack, rate-limited
 *   due(state, now, …)               → { state, effects }  acks, requests, retries that are due
 *   nextLamport / causalHistory / onSealed / onHandshakeSent / room   the outgoing side
 */
import { toHex } from '../bytes.ts';
import { HINT_WINDOW, hourOf } from '../hints.ts';
import type { FrameBody } from '../private-v1.ts';
import type { HandshakeRefused } from '../handshake-refusal.ts';
import type { PrivateV1Frame } from '../wire/gen/umbra/v1/private_v1_pb.ts';
import {
  ACK_IDS_PER_FRAME,
  CAUSAL_HISTORY_IDS,
  MAX_IN_FLIGHT,
  MAX_MISSING_IDS,
  MAX_PENDING_ACKS,
  MAX_RETRANSMIT_IDS,
  MAX_RETRANSMIT_REQUESTS,
  MESSAGE_ID_BYTES,
} from './limits.ts';
import type { InFlight, MissingId, ReliabilityState } from './state.ts';

/** Timings of the machine (the client's options; docs/PROTOCOL.md §8 lists the defaults). */
export interface ReliabilityPolicy {
  /** Acks are batched for this long. */
  readonly ackDelayMs: number;
  /** A duplicate envelope is re-acknowledged at most once per this interval per conversation. */
  readonly duplicateAckIntervalMs: number;
  /** A missing id is requested after this grace period (it may only be late). */
  readonly missingGraceMs: number;
  /** An unacknowledged envelope overtaken by an acknowledged later one is re-sent if last sent at least this long ago. */
  readonly fastRetransmitMs: number;
  /** Retries back off from initialMs, doubling up to maxMs. */
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /** Unacknowledged reliable envelopes per conversation, at most MAX_IN_FLIGHT. */
  readonly maxInFlight: number;
}

export const DEFAULT_RELIABILITY_POLICY: ReliabilityPolicy = {
  ackDelayMs: 20,
  duplicateAckIntervalMs: 1000,
  missingGraceMs: 1000,
  fastRetransmitMs: 200,
  retryInitialMs: 2000,
  retryMaxMs: 300_000,
  maxInFlight: 24,
};

/** What a frame is, for the machine. `unknown`: a body this version does not know (reported, never silently dropped). */
export type FrameKind = 'content' | 'group' | 'ack' | 'retransmit-request' | 'particle-update' | 'checkpoint-gossip' | 'session-reset' | 'unknown';

export function frameKind(body: FrameBody): FrameKind {
  switch (body.case) {
    case 'content':
      return 'content';
    case 'group':
      return 'group';
    case 'ack':
      return 'ack';
    case 'retransmitRequest':
      return 'retransmit-request';
    case 'particleUpdate':
      return 'particle-update';
    case 'checkpointGossip':
      return 'checkpoint-gossip';
    case 'sessionReset':
      return 'session-reset';
    case undefined:
      return 'unknown';
    default: {
      // A body case added to the proto but not to this switch fails the typecheck here.
      const unhandled: never = body;
      void unhandled;
      return 'unknown';
    }
  }
}

/** Which ids the caller's store already holds for this conversation (messages in either direction). */
export type KnownIds = ReadonlyMap<string, 'incoming' | 'outgoing'>;

export interface FrameEffects {
  /** New content and group frames, in order: store them, then hand them on. */
  readonly delivered: readonly PrivateV1Frame[];
  /** Reliable frames whose id was already stored or delivered (re-acknowledged, not re-delivered). */
  readonly duplicateMessages: number;
  /** Our in-flight frames the peer now has (an ack or its causal history): each reported once. */
  readonly acked: readonly { readonly messageId: Uint8Array; readonly lamport: number }[];
  /** Our handshake, proven received by this frame of the peer. */
  readonly handshakeAcked: Uint8Array | null;
  /** Ids the peer has seen that we lack, newly noticed. */
  readonly missing: readonly Uint8Array[];
  /** Missing ids forgotten to keep at most MAX_MISSING_IDS. */
  readonly forgotten: readonly Uint8Array[];
  /** Ids the peer asked for that are not in flight: answer from the store (re-encrypt under the same id). */
  readonly retransmitRequested: readonly Uint8Array[];
  /** Requested ids that were in flight: now due for a retry. */
  readonly retransmitAnswered: number;
  /** In-flight ids made due at once (fast retransmit). */
  readonly fastRetransmit: readonly Uint8Array[];
  /** checkpointGossip bodies (not acknowledged, not stored). */
  readonly gossip: readonly Uint8Array[];
  /** Frames this version does not act on, reported with their kind. */
  readonly unhandled: readonly { readonly messageId: Uint8Array; readonly kind: 'session-reset' | 'unknown' }[];
}

export interface DueEffects {
  /** Ack frames to send now, at most ACK_IDS_PER_FRAME ids each. */
  readonly acks: readonly (readonly Uint8Array[])[];
  /** Ids to ask the peer for in one retransmission request (at most MAX_RETRANSMIT_IDS). */
  readonly retransmitRequest: readonly Uint8Array[];
  /** Missing ids given up after MAX_RETRANSMIT_REQUESTS requests. */
  readonly gaveUp: readonly Uint8Array[];
  /** In-flight frames to publish again: the same bytes while the peer can still recognise their hint slot, else re-encrypted under the same id. */
  readonly retransmissions: readonly { readonly messageId: Uint8Array; readonly attempt: number; readonly sameBytes: boolean }[];
  /** The handshake to publish again (always the same bytes: inbox hints are static). */
  readonly handshakeRetry: { readonly messageId: Uint8Array; readonly attempt: number } | null;
}

/** The sending side of the conversation as the engine holds it: the hint slot the next envelope takes. */
export interface SendHint {
  readonly hour: number;
  readonly nextIndex: number;
}

const hex = toHex;
const MAX_LAMPORT = Number.MAX_SAFE_INTEGER;

function clampLamport(v: bigint): number {
  return v > BigInt(MAX_LAMPORT) ? MAX_LAMPORT : Number(v);
}

/** Jitter in [0.75, 1.25] taken from the id's bytes: retries of different messages spread out without an RNG. */
function jitter(messageId: Uint8Array, n: number): number {
  return 0.75 + ((messageId[n % MESSAGE_ID_BYTES] ?? 128) / 255) * 0.5;
}

/** Delay before retry number `attempts` + 1. */
export function retryBackoff(policy: ReliabilityPolicy, attempts: number, messageId: Uint8Array): number {
  const base = Math.min(policy.retryMaxMs, policy.retryInitialMs * 2 ** Math.min(30, Math.max(0, attempts - 1)));
  return Math.round(base * jitter(messageId, attempts));
}

/** Re-requests of a missing id back off from the grace period (the peer answers at once when it can). */
export function requestBackoff(policy: ReliabilityPolicy, requests: number, messageId: Uint8Array): number {
  const base = Math.min(policy.retryMaxMs, Math.max(10, policy.missingGraceMs) * 2 ** Math.min(30, requests));
  return Math.round(base * jitter(messageId, requests + 7));
}

function pushRecent(ids: readonly Uint8Array[], id: Uint8Array): Uint8Array[] {
  const h = hex(id);
  const next = ids.filter((x) => hex(x) !== h);
  next.push(id);
  return next.slice(-CAUSAL_HISTORY_IDS);
}

/** Add ids to the pending acks (deduplicated, bounded: the oldest beyond the bound wait for the peer's retry). */
function addAcks(pending: readonly Uint8Array[], ids: readonly Uint8Array[]): Uint8Array[] {
  const seen = new Set(pending.map(hex));
  const next = [...pending];
  for (const id of ids) {
    const h = hex(id);
    if (seen.has(h)) continue;
    seen.add(h);
    next.push(id);
  }
  return next.length > MAX_PENDING_ACKS ? next.slice(-MAX_PENDING_ACKS) : next;
}

function queueAcks(state: ReliabilityState, ids: readonly Uint8Array[], now: number, policy: ReliabilityPolicy): ReliabilityState {
  if (ids.length === 0) return state;
  const soon = now + policy.ackDelayMs;
  return { ...state, pendingAcks: addAcks(state.pendingAcks, ids), ackDueAt: state.ackDueAt === null ? soon : Math.min(state.ackDueAt, soon) };
}

export interface OnFramesOptions {
  /** Ids this conversation's store already holds (the caller looks up every frame's id and causal ids). */
  readonly known: KnownIds;
  /** Acknowledge and answer the peer (consent allowed); false for a request not yet accepted. */
  readonly acknowledge: boolean;
}

/** Frames of one envelope the engine decrypted (the conversation is not denied). */
export function onFrames(
  state: ReliabilityState,
  frames: readonly PrivateV1Frame[],
  now: number,
  policy: ReliabilityPolicy,
  options: OnFramesOptions,
): { state: ReliabilityState; effects: FrameEffects } {
  let lamport = state.lamport;
  let recentIds = state.recentIds;
  let handshake = state.handshake;
  let handshakeAcked: Uint8Array | null = null;
  const inFlight = new Map(state.inFlight.map((f) => [hex(f.messageId), f] as const));
  const missing = new Map(state.missing.map((m) => [hex(m.messageId), m] as const));
  const delivered: PrivateV1Frame[] = [];
  const deliveredIds = new Set<string>();
  const acked: { messageId: Uint8Array; lamport: number }[] = [];
  const ackedIds = new Set<string>();
  const newMissing: Uint8Array[] = [];
  const toAck: Uint8Array[] = [];
  const requested: Uint8Array[] = [];
  const gossip: Uint8Array[] = [];
  const unhandled: { messageId: Uint8Array; kind: 'session-reset' | 'unknown' }[] = [];
  let duplicateMessages = 0;
  let maxAckedLamport = -1;

  const noteAcked = (id: Uint8Array) => {
    if (id.length !== MESSAGE_ID_BYTES) return;
    const h = hex(id);
    const entry = inFlight.get(h);
    if (entry === undefined || ackedIds.has(h)) return;
    inFlight.delete(h);
    ackedIds.add(h);
    acked.push({ messageId: entry.messageId, lamport: entry.lamport });
    if (entry.lamport > maxAckedLamport) maxAckedLamport = entry.lamport;
  };
  const noteCausal = (id: Uint8Array) => {
    if (id.length !== MESSAGE_ID_BYTES) return;
    const h = hex(id);
    if (deliveredIds.has(h) || ackedIds.has(h)) return;
    if (inFlight.has(h)) return noteAcked(id);
    if (options.known.has(h) || missing.has(h)) return;
    const m: MissingId = { messageId: id, noticedAt: now, requests: 0, nextRequestAt: now + policy.missingGraceMs };
    missing.set(h, m);
    newMissing.push(id);
  };
  const deliver = (frame: PrivateV1Frame) => {
    const h = hex(frame.messageId);
    if (deliveredIds.has(h) || options.known.has(h)) {
      duplicateMessages++;
    } else {
      delivered.push(frame);
      deliveredIds.add(h);
      missing.delete(h);
      recentIds = pushRecent(recentIds, frame.messageId);
    }
    toAck.push(frame.messageId);
  };

  for (const frame of frames) {
    lamport = Math.max(lamport, clampLamport(frame.lamport));
    // Any frame from the peer proves it has our handshake.
    if (handshake !== null && handshakeAcked === null) {
      handshakeAcked = handshake.messageId;
      handshake = null;
    }
    for (const causal of frame.causalHistory) noteCausal(causal);
    const kind = frameKind(frame.body);
    switch (kind) {
      case 'content':
      case 'group':
        deliver(frame);
        break;
      case 'ack':
        if (frame.body.case === 'ack') for (const id of frame.body.value.messageIds) noteAcked(id);
        break;
      case 'retransmit-request':
        if (frame.body.case === 'retransmitRequest') requested.push(...frame.body.value.messageIds.slice(0, MAX_RETRANSMIT_IDS));
        break;
      case 'particle-update':
        toAck.push(frame.messageId); // lets the initiator stop re-sending its handshake
        break;
      case 'checkpoint-gossip':
        if (frame.body.case === 'checkpointGossip') gossip.push(frame.body.value);
        break;
      case 'session-reset':
      case 'unknown':
        // Session resets are not implemented yet: reported; the ratchet state is kept.
        unhandled.push({ messageId: frame.messageId, kind });
        break;
    }
  }

  // Answer retransmission requests (after the acks of the same envelope).
  const retransmitRequested: Uint8Array[] = [];
  let retransmitAnswered = 0;
  if (options.acknowledge) {
    for (const id of requested) {
      if (id.length !== MESSAGE_ID_BYTES) continue;
      const h = hex(id);
      const entry = inFlight.get(h);
      if (entry === undefined) {
        if (!ackedIds.has(h)) retransmitRequested.push(id);
        continue;
      }
      retransmitAnswered++;
      if (entry.nextAttemptAt > now) inFlight.set(h, { ...entry, nextAttemptAt: now });
    }
  }

  // Fast retransmit (as in TCP): the peer acknowledged a later frame of ours, so an earlier one still
  // unacknowledged was probably lost. Retry it now instead of waiting for its backoff timer.
  const fastRetransmit: Uint8Array[] = [];
  if (maxAckedLamport >= 0) {
    for (const [h, entry] of inFlight) {
      if (entry.lamport < maxAckedLamport && entry.nextAttemptAt > now && now - entry.lastSentAt >= policy.fastRetransmitMs) {
        inFlight.set(h, { ...entry, nextAttemptAt: now });
        fastRetransmit.push(entry.messageId);
      }
    }
  }

  // Keep at most MAX_MISSING_IDS: forget the oldest.
  let missingList = [...missing.values()];
  const forgotten: Uint8Array[] = [];
  if (missingList.length > MAX_MISSING_IDS) {
    missingList.sort((a, b) => a.noticedAt - b.noticedAt);
    forgotten.push(...missingList.slice(0, missingList.length - MAX_MISSING_IDS).map((m) => m.messageId));
    missingList = missingList.slice(-MAX_MISSING_IDS);
  }

  let next: ReliabilityState = { ...state, lamport, recentIds, handshake, inFlight: [...inFlight.values()], missing: missingList };
  if (options.acknowledge) next = queueAcks(next, toAck, now, policy);
  const forgottenIds = new Set(forgotten.map(hex));
  return {
    state: next,
    effects: {
      delivered,
      duplicateMessages,
      acked,
      handshakeAcked,
      missing: newMissing.filter((id) => !forgottenIds.has(hex(id))),
      forgotten,
      retransmitRequested,
      retransmitAnswered,
      fastRetransmit,
      gossip,
      unhandled,
    },
  };
}

/**
 * An envelope whose bytes were seen before (the peer's retry after a lost ack, or anyone
 * re-delivering captured bytes). Its id joins the pending ack, or, when none is pending, waits
 * until duplicateAckIntervalMs after the last ack frame: one ack frame per interval at most,
 * however often the same bytes arrive, and never a second one for an id already pending.
 */
export function onDuplicateEnvelope(state: ReliabilityState, messageId: Uint8Array, now: number, policy: ReliabilityPolicy): ReliabilityState {
  if (messageId.length !== MESSAGE_ID_BYTES) return state;
  if (state.ackDueAt !== null) return { ...state, pendingAcks: addAcks(state.pendingAcks, [messageId]) };
  const gate = state.lastAckSentAt === null ? -Infinity : state.lastAckSentAt + policy.duplicateAckIntervalMs;
  return { ...state, pendingAcks: addAcks(state.pendingAcks, [messageId]), ackDueAt: Math.max(now + policy.ackDelayMs, gate) };
}

/** Acknowledge stored incoming ids (a request just accepted). */
export function acknowledge(state: ReliabilityState, ids: readonly Uint8Array[], now: number, policy: ReliabilityPolicy): ReliabilityState {
  return queueAcks(state, ids.filter((id) => id.length === MESSAGE_ID_BYTES), now, policy);
}

export interface DueOptions {
  /** Acks and retransmission requests go out only to an allowed conversation. */
  readonly allowed: boolean;
  /** The conversation's current send hint (decides same bytes vs re-encryption). */
  readonly sendHint: SendHint;
}

/** Everything due at `now`: ack frames, one retransmission request, retries. */
export function due(state: ReliabilityState, now: number, policy: ReliabilityPolicy, options: DueOptions): { state: ReliabilityState; effects: DueEffects } {
  let next = state;
  const acks: Uint8Array[][] = [];
  if (state.ackDueAt !== null && state.ackDueAt <= now) {
    if (options.allowed) {
      for (let i = 0; i < state.pendingAcks.length; i += ACK_IDS_PER_FRAME) acks.push(state.pendingAcks.slice(i, i + ACK_IDS_PER_FRAME));
    }
    next = { ...next, pendingAcks: [], ackDueAt: null, lastAckSentAt: options.allowed && acks.length > 0 ? now : next.lastAckSentAt };
  }

  const retransmitRequest: Uint8Array[] = [];
  const gaveUp: Uint8Array[] = [];
  if (state.missing.some((m) => m.nextRequestAt <= now)) {
    const missing: MissingId[] = [];
    for (const m of state.missing) {
      if (m.nextRequestAt > now) missing.push(m);
      else if (!options.allowed) missing.push({ ...m, nextRequestAt: now + policy.retryMaxMs });
      else if (m.requests >= MAX_RETRANSMIT_REQUESTS) gaveUp.push(m.messageId);
      else if (retransmitRequest.length >= MAX_RETRANSMIT_IDS) missing.push(m); // next round
      else {
        retransmitRequest.push(m.messageId);
        missing.push({ ...m, requests: m.requests + 1, nextRequestAt: now + requestBackoff(policy, m.requests + 1, m.messageId) });
      }
    }
    next = { ...next, missing };
  }

  const retransmissions: { messageId: Uint8Array; attempt: number; sameBytes: boolean }[] = [];
  if (state.inFlight.some((f) => f.nextAttemptAt <= now)) {
    const hour = hourOf(now);
    next = {
      ...next,
      inFlight: state.inFlight.map((f) => {
        if (f.nextAttemptAt > now) return f;
        const attempts = f.attempts + 1;
        const sameBytes = f.hintHour === hour && options.sendHint.hour === hour && options.sendHint.nextIndex - f.hintIndex <= HINT_WINDOW;
        retransmissions.push({ messageId: f.messageId, attempt: attempts, sameBytes });
        return { ...f, attempts, lastSentAt: now, nextAttemptAt: now + retryBackoff(policy, attempts, f.messageId) };
      }),
    };
  }

  let handshakeRetry: DueEffects['handshakeRetry'] = null;
  const hs = state.handshake;
  if (hs !== null && hs.nextAttemptAt <= now) {
    const attempts = hs.attempts + 1;
    handshakeRetry = { messageId: hs.messageId, attempt: attempts };
    next = { ...next, handshake: { ...hs, attempts, nextAttemptAt: now + retryBackoff(policy, attempts, hs.messageId) } };
  }
  return { state: next, effects: { acks, retransmitRequest, gaveUp, retransmissions, handshakeRetry } };
}

/** Every pending ack at once, due or not (an orderly shutdown sends them rather than lose them with the timer). */
export function takeAcks(state: ReliabilityState, now: number): { state: ReliabilityState; acks: Uint8Array[][] } {
  if (state.pendingAcks.length === 0) return { state: state.ackDueAt === null ? state : { ...state, ackDueAt: null }, acks: [] };
  const acks: Uint8Array[][] = [];
  for (let i = 0; i < state.pendingAcks.length; i += ACK_IDS_PER_FRAME) acks.push(state.pendingAcks.slice(i, i + ACK_IDS_PER_FRAME));
  return { state: { ...state, pendingAcks: [], ackDueAt: null, lastAckSentAt: now }, acks };
}

/** When `due` has something to do next (null: nothing pending). */
export function nextDueAt(state: ReliabilityState): number | null {
  let at = state.ackDueAt ?? Infinity;
  for (const m of state.missing) if (m.nextRequestAt < at) at = m.nextRequestAt;
  for (const f of state.inFlight) if (f.nextAttemptAt < at) at = f.nextAttemptAt;
  if (state.handshake !== null && state.handshake.nextAttemptAt < at) at = state.handshake.nextAttemptAt;
  return at === Infinity ? null : at;
}

// ---- the outgoing side -------------------------------------------------------------------

/** The Lamport time of a new outgoing reliable frame. */
export function nextLamport(state: ReliabilityState): { state: ReliabilityState; lamport: number } {
  const lamport = Math.min(MAX_LAMPORT, state.lamport + 1);
  return { state: { ...state, lamport }, lamport };
}

/** The causal history to put in an outgoing frame (without the frame's own id). */
export function causalHistory(state: ReliabilityState, exclude?: Uint8Array): Uint8Array[] {
  if (exclude === undefined) return [...state.recentIds];
  const h = hex(exclude);
  return state.recentIds.filter((r) => hex(r) !== h);
}

/**
 * A reliable frame was sealed and is being published: its first transmission, or a retry
 * re-encrypted after its hint slot went stale (already counted by `due`).
 */
export function onSealed(
  state: ReliabilityState,
  sealed: { readonly messageId: Uint8Array; readonly lamport: number; readonly hintHour: number; readonly hintIndex: number },
  now: number,
  policy: ReliabilityPolicy,
): ReliabilityState {
  const h = hex(sealed.messageId);
  const existing = state.inFlight.find((f) => hex(f.messageId) === h);
  const entry: InFlight =
    existing !== undefined
      ? { ...existing, hintHour: sealed.hintHour, hintIndex: sealed.hintIndex, lastSentAt: now }
      : { messageId: sealed.messageId, lamport: sealed.lamport, hintHour: sealed.hintHour, hintIndex: sealed.hintIndex, attempts: 1, lastSentAt: now, nextAttemptAt: now + retryBackoff(policy, 1, sealed.messageId) };
  const inFlight = existing !== undefined ? state.inFlight.map((f) => (f === existing ? entry : f)) : [...state.inFlight, entry];
  return { ...state, inFlight, recentIds: pushRecent(state.recentIds, sealed.messageId) };
}

/** Our handshake went out (accepting an invitation); retried until the peer's first frame. */
export function onHandshakeSent(state: ReliabilityState, messageId: Uint8Array, now: number, policy: ReliabilityPolicy): ReliabilityState {
  return { ...state, handshake: { messageId, attempts: 1, nextAttemptAt: now + retryBackoff(policy, 1, messageId) } };
}

/**
 * How many more reliable envelopes may go out now: at most maxInFlight unacknowledged, and (a
 * sliding window over hint slots) none so far ahead of the oldest unacknowledged one of this hour
 * that a same-bytes retry of it could no longer be recognised by the receiver.
 */
export function room(state: ReliabilityState, policy: ReliabilityPolicy, sendHint: SendHint, now: number): number {
  const max = Math.min(policy.maxInFlight, MAX_IN_FLIGHT);
  const byCount = max - state.inFlight.length;
  if (byCount <= 0) return 0;
  const hour = hourOf(now);
  if (sendHint.hour !== hour) return byCount;
  let oldest = Infinity;
  for (const f of state.inFlight) if (f.hintHour === hour && f.hintIndex >= 0 && f.hintIndex < oldest) oldest = f.hintIndex;
  if (oldest === Infinity) return byCount;
  return Math.min(byCount, max - (sendHint.nextIndex - oldest));
}

/** Everything in flight goes out again now (a restart is a good moment to retry). */
export function retryAllNow(state: ReliabilityState, now: number): ReliabilityState {
  if (state.inFlight.length === 0 && state.handshake === null) return state;
  return {
    ...state,
    inFlight: state.inFlight.map((f) => (f.nextAttemptAt > now ? { ...f, nextAttemptAt: now } : f)),
    handshake: state.handshake !== null && state.handshake.nextAttemptAt > now ? { ...state.handshake, nextAttemptAt: now } : state.handshake,
  };
}

/** Drop an in-flight entry whose message is gone (it will never be acknowledged). */
export function forget(state: ReliabilityState, messageId: Uint8Array): ReliabilityState {
  const h = hex(messageId);
  if (!state.inFlight.some((f) => hex(f.messageId) === h)) return state;
  return { ...state, inFlight: state.inFlight.filter((f) => hex(f.messageId) !== h) };
}

/** The conversation was blocked: nothing more goes out (no retries, no handshake, no acks). */
export function abandon(state: ReliabilityState): ReliabilityState {
  return { ...state, inFlight: [], handshake: null, pendingAcks: [], ackDueAt: null };
}

/**
 * The inviter refused our first contact: like `abandon`, and the refusal is kept, so the
 * conversation says why it will never be answered. A second refusal changes nothing.
 */
export function onHandshakeRefused(state: ReliabilityState, refused: HandshakeRefused): ReliabilityState {
  if (state.refusal !== null) return state;
  return { ...abandon(state), refusal: refused };
}
