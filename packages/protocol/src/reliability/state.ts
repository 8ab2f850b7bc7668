/**
 * A conversation's reliability state (state.proto `ReliabilityState`) and the client's stored
 * conversation record (`ConversationRecord`: the engine's state and this one, sealed together).
 * Plain immutable values: every function of the machine returns a new state.
 */
import { UmbraError } from '../errors.ts';
import { decode, encode } from '../wire/codec.ts';
import { refusalReasonFromWire, refusalReasonToWire, type HandshakeRefused, type HandshakeRefusalReason } from '../handshake-refusal.ts';
import {
  ConversationRecordSchema,
  ReliabilityStateSchema,
  type ConversationRecord,
  type InFlightState,
  type MissingIdState,
  type ReliabilityState as ReliabilityStateMessage,
} from '../wire/gen/umbra/v1/state_pb.ts';
import { CAUSAL_HISTORY_IDS, MAX_IN_FLIGHT, MAX_MISSING_IDS, MAX_PENDING_ACKS, MESSAGE_ID_BYTES } from './limits.ts';

export const RELIABILITY_STATE_VERSION = 1;
export const CONVERSATION_RECORD_VERSION = 1;

/** An id the peer referenced (causal history) that we lack. */
export interface MissingId {
  readonly messageId: Uint8Array;
  readonly noticedAt: number;
  /** Retransmission requests sent so far. */
  readonly requests: number;
  readonly nextRequestAt: number;
}

/** One outgoing reliable frame (content or group) published and not yet acknowledged. */
export interface InFlight {
  readonly messageId: Uint8Array;
  readonly lamport: number;
  /** Hint slot of the last envelope sent for it (a same-bytes retry needs it still recognisable). */
  readonly hintHour: number;
  readonly hintIndex: number;
  /** Envelopes published for it so far. */
  readonly attempts: number;
  readonly lastSentAt: number;
  readonly nextAttemptAt: number;
}

/** Our handshake (first message after accepting an invitation), until any frame of the peer proves it arrived. */
export interface PendingHandshake {
  readonly messageId: Uint8Array;
  readonly attempts: number;
  readonly nextAttemptAt: number;
}

export interface ReliabilityState {
  /** Lamport clock: the highest timestamp sent or seen. */
  readonly lamport: number;
  /** The most recent reliable ids (both directions), oldest first, at most 8: the causal history we send. */
  readonly recentIds: readonly Uint8Array[];
  /** Ids to acknowledge, in arrival order, at most MAX_PENDING_ACKS. */
  readonly pendingAcks: readonly Uint8Array[];
  /** When the pending acks go out; null when there are none. */
  readonly ackDueAt: number | null;
  /** When the last ack frame went out (gates the re-acknowledgement of duplicates); null = never. */
  readonly lastAckSentAt: number | null;
  /** Oldest first, at most MAX_MISSING_IDS. */
  readonly missing: readonly MissingId[];
  /** In send order, at most MAX_IN_FLIGHT. */
  readonly inFlight: readonly InFlight[];
  readonly handshake: PendingHandshake | null;
  /** The inviter refused our first contact (its invitation was used or expired): nothing more goes out. */
  readonly refusal: HandshakeRefused | null;
}

export const EMPTY_RELIABILITY: ReliabilityState = {
  lamport: 0,
  recentIds: [],
  pendingAcks: [],
  ackDueAt: null,
  lastAckSentAt: null,
  missing: [],
  inFlight: [],
  handshake: null,
  refusal: null,
};

const MAX_TIME = 8_640_000_000_000_000;
const toU64 = (n: number) => BigInt(Math.max(0, Math.floor(n)));

function malformed(what: string): UmbraError {
  return new UmbraError('state-malformed', `stored reliability state is malformed: ${what}`);
}

function time(v: bigint, what: string): number {
  if (v > BigInt(MAX_TIME)) throw malformed(what);
  return Number(v);
}

function lamportOf(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed('lamport');
  return Number(v);
}

function refusalOf(reason: number): HandshakeRefusalReason {
  const known = refusalReasonFromWire(reason);
  if (known === null) throw malformed('refusal reason');
  return known;
}

function id(b: Uint8Array, what: string): Uint8Array {
  if (b.length !== MESSAGE_ID_BYTES) throw malformed(what);
  return b;
}

// Complete literals rather than create(): this runs on every conversation write (no per-call reflection).
function toMessage(s: ReliabilityState): ReliabilityStateMessage {
  return {
    $typeName: 'umbra.v1.ReliabilityState',
    version: RELIABILITY_STATE_VERSION,
    lamport: toU64(s.lamport),
    recentIds: [...s.recentIds],
    pendingAcks: [...s.pendingAcks],
    ackDueAt: s.ackDueAt === null ? 0n : toU64(Math.max(1, s.ackDueAt)),
    lastAckSentAt: s.lastAckSentAt === null ? 0n : toU64(Math.max(1, s.lastAckSentAt)),
    missing: s.missing.map(
      (m): MissingIdState => ({ $typeName: 'umbra.v1.MissingIdState', messageId: m.messageId, noticedAt: toU64(m.noticedAt), requests: m.requests, nextRequestAt: toU64(m.nextRequestAt) }),
    ),
    inFlight: s.inFlight.map(
      (f): InFlightState => ({
        $typeName: 'umbra.v1.InFlightState',
        messageId: f.messageId,
        lamport: toU64(f.lamport),
        hintHour: Math.max(0, f.hintHour),
        hintIndex: Math.max(0, f.hintIndex),
        attempts: f.attempts,
        lastSentAt: toU64(f.lastSentAt),
        nextAttemptAt: toU64(f.nextAttemptAt),
      }),
    ),
    handshakeId: s.handshake?.messageId ?? new Uint8Array(0),
    handshakeAttempts: s.handshake?.attempts ?? 0,
    handshakeNextAttemptAt: toU64(s.handshake?.nextAttemptAt ?? 0),
    refusalReason: s.refusal === null ? 0 : refusalReasonToWire(s.refusal.reason),
    refusedAt: toU64(s.refusal?.refusedAt ?? 0),
  };
}

/**
 * An empty list of a decoded state: one frozen array shared by all (the lists are readonly), so
 * opening 100,000 conversations does not keep 400,000 empty arrays.
 */
const NONE: readonly never[] = Object.freeze([]);

function listOf<A, B>(items: readonly A[], read: (item: A) => B): readonly B[] {
  return items.length === 0 ? NONE : items.map(read);
}

function fromMessage(m: ReliabilityStateMessage): ReliabilityState {
  if (m.version !== RELIABILITY_STATE_VERSION) throw new UmbraError('state-unsupported-version', `reliability state version ${m.version} is not supported`);
  if (m.recentIds.length > CAUSAL_HISTORY_IDS) throw malformed('recent ids');
  if (m.pendingAcks.length > MAX_PENDING_ACKS) throw malformed('pending acks');
  if (m.missing.length > MAX_MISSING_IDS) throw malformed('missing ids');
  if (m.inFlight.length > MAX_IN_FLIGHT) throw malformed('in-flight entries');
  return {
    lamport: lamportOf(m.lamport),
    recentIds: listOf(m.recentIds, (r) => id(r, 'recent id')),
    pendingAcks: listOf(m.pendingAcks, (r) => id(r, 'pending ack')),
    ackDueAt: m.ackDueAt === 0n ? null : time(m.ackDueAt, 'ack due time'),
    lastAckSentAt: m.lastAckSentAt === 0n ? null : time(m.lastAckSentAt, 'last ack time'),
    missing: listOf(m.missing, (x) => ({
      messageId: id(x.messageId, 'missing id'),
      noticedAt: time(x.noticedAt, 'noticed at'),
      requests: x.requests,
      nextRequestAt: time(x.nextRequestAt, 'next request at'),
    })),
    inFlight: listOf(m.inFlight, (f) => ({
      messageId: id(f.messageId, 'in-flight id'),
      lamport: lamportOf(f.lamport),
      hintHour: f.hintHour,
      hintIndex: f.hintIndex,
      attempts: f.attempts,
      lastSentAt: time(f.lastSentAt, 'last sent at'),
      nextAttemptAt: time(f.nextAttemptAt, 'next attempt at'),
    })),
    handshake:
      m.handshakeId.length === 0
        ? null
        : { messageId: id(m.handshakeId, 'handshake id'), attempts: m.handshakeAttempts, nextAttemptAt: time(m.handshakeNextAttemptAt, 'handshake next attempt') },
    refusal: m.refusalReason === 0 ? null : { reason: refusalOf(m.refusalReason), refusedAt: time(m.refusedAt, 'refused at') },
  };
}

export function serializeReliability(s: ReliabilityState): Uint8Array {
  return encode(ReliabilityStateSchema, toMessage(s));
}

export function deserializeReliability(bytes: Uint8Array): ReliabilityState {
  const m = decode(ReliabilityStateSchema, bytes, Infinity);
  if (m === null) throw malformed('undecodable');
  return fromMessage(m);
}

/**
 * What a client stored before reliability moved into this package: the conversation's Lamport
 * clock and recent ids (conversation columns), its missing ids (a table), its outbox entries.
 */
export interface LegacyReliability {
  readonly lamport: number;
  readonly recentIds: readonly Uint8Array[];
  readonly missing: readonly MissingId[];
  /** Published, unacknowledged content entries. */
  readonly inFlight: readonly InFlight[];
  readonly handshake: PendingHandshake | null;
}

/** The migration: the same facts, in one state (bounded as the machine bounds them). */
export function migrateReliability(legacy: LegacyReliability): ReliabilityState {
  const valid = (b: Uint8Array) => b instanceof Uint8Array && b.length === MESSAGE_ID_BYTES;
  return {
    ...EMPTY_RELIABILITY,
    lamport: Math.max(0, Math.min(Number.MAX_SAFE_INTEGER, Math.floor(legacy.lamport))),
    recentIds: legacy.recentIds.filter(valid).slice(-CAUSAL_HISTORY_IDS),
    missing: [...legacy.missing].filter((m) => valid(m.messageId)).sort((a, b) => a.noticedAt - b.noticedAt).slice(-MAX_MISSING_IDS),
    inFlight: [...legacy.inFlight].filter((f) => valid(f.messageId)).sort((a, b) => a.lamport - b.lamport).slice(-MAX_IN_FLIGHT),
    handshake: legacy.handshake !== null && valid(legacy.handshake.messageId) ? legacy.handshake : null,
  };
}

/** One conversation as the client stores it: the engine's serialized state and the reliability state. */
export function encodeConversationRecord(conversationState: Uint8Array, reliability: ReliabilityState): Uint8Array {
  const record: ConversationRecord = { $typeName: 'umbra.v1.ConversationRecord', recordVersion: CONVERSATION_RECORD_VERSION, conversation: conversationState, reliability: toMessage(reliability) };
  return encode(ConversationRecordSchema, record);
}

/** The parts of a stored conversation record, as views of its bytes, neither decoded. */
export interface ConversationRecordParts {
  /** The engine's encoded PrivateConversationState. */
  readonly conversationState: Uint8Array;
  /** The encoded ReliabilityState (deserializeReliability reads it). */
  readonly reliability: Uint8Array;
  /**
   * Nothing is pending in the reliability state: no acks to send, no missing ids, nothing in
   * flight and no handshake to retry, so nothing in it falls due until an operation changes it.
   * An idle state can stay encoded until the conversation is used.
   */
  readonly idle: boolean;
}

// ReliabilityState's fields that make something due (state.proto): pending_acks, ack_due_at,
// missing, in_flight, handshake_id. proto3 leaves empty lists and zero values out.
const BUSY_FIELDS = (1 << 4) | (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9);
// ConversationRecord's field tags as encode writes them: varint field 20, LEN fields 21 and 22.
const TAG_RECORD_VERSION = 0xa0;
const TAG_CONVERSATION = 0xaa;
const TAG_RELIABILITY = 0xb2;

// A reader of field headers without objects (splitConversationRecord runs once per conversation
// at open): `varint` reads at `readAt` and moves it; -1 means "not as expected".
let readAt = 0;

/** A varint below 2^32 (lengths, versions, tags), or -1. */
function varint(bytes: Uint8Array): number {
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (readAt >= bytes.length) return -1;
    const b = bytes[readAt++]!;
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return value <= 0xffffffff ? value : -1;
  }
  return -1;
}

/** Steps over a length-delimited field's value; returns where its bytes start, or -1 if it does not parse. */
function lengthDelimited(bytes: Uint8Array): number {
  const length = varint(bytes);
  if (length < 0 || length > bytes.length - readAt) return -1;
  readAt += length;
  return readAt - length;
}

/** Steps over a field's value (varint up to 10 bytes, or LEN); false if it does not parse. */
function skipValue(bytes: Uint8Array, wire: number): boolean {
  if (wire === 2) return lengthDelimited(bytes) >= 0;
  if (wire !== 0) return false;
  for (let i = 0; i < 10; i++) {
    if (readAt >= bytes.length) return false;
    if (bytes[readAt++]! < 0x80) return true;
  }
  return false;
}

/** The two-byte tag `first, 0x01` of fields 16–31 at readAt. */
function tagIs(bytes: Uint8Array, first: number): boolean {
  if (bytes[readAt] !== first || bytes[readAt + 1] !== 0x01) return false;
  readAt += 2;
  return true;
}

/**
 * Split a current record (record_version 1, fields 20–22 once each, in order, as encode writes
 * them) into its parts by reading field headers only. Null for anything else (a legacy state, an
 * unknown version, a field out of place, bytes that do not parse): decodeConversationRecord
 * judges those. Opening 100,000 conversations splits each and decodes only the busy states.
 */
export function splitConversationRecord(bytes: Uint8Array): ConversationRecordParts | null {
  readAt = 0;
  if (!tagIs(bytes, TAG_RECORD_VERSION) || varint(bytes) !== CONVERSATION_RECORD_VERSION || !tagIs(bytes, TAG_CONVERSATION)) return null;
  const conversationStart = lengthDelimited(bytes);
  const conversationEnd = readAt;
  if (conversationStart < 0 || !tagIs(bytes, TAG_RELIABILITY)) return null;
  const reliabilityStart = lengthDelimited(bytes);
  if (reliabilityStart < 0 || readAt !== bytes.length) return null;
  // The reliability state's own fields (1–13: one-byte tags), for which of them are present.
  readAt = reliabilityStart;
  let present = 0;
  while (readAt < bytes.length) {
    const tag = bytes[readAt++]!;
    if (tag >= 0x80 || tag < 8 || !skipValue(bytes, tag & 7)) return null;
    present |= 1 << (tag >> 3);
  }
  return {
    conversationState: bytes.subarray(conversationStart, conversationEnd),
    reliability: bytes.subarray(reliabilityStart),
    idle: (present & BUSY_FIELDS) === 0,
  };
}

/**
 * Decode a stored conversation record. A record written before reliability moved here is a bare
 * PrivateConversationState (fields 1–18, so record_version reads 0): it comes back as is, with
 * `reliability: null`, for the caller to migrate.
 */
export function decodeConversationRecord(bytes: Uint8Array): { conversationState: Uint8Array; reliability: ReliabilityState | null } {
  const m = decode(ConversationRecordSchema, bytes, Infinity);
  // Not a record (undecodable, or record_version 0): a legacy conversation state, which its own decoder judges.
  if (m === null || m.recordVersion === 0) return { conversationState: bytes, reliability: null };
  if (m.recordVersion !== CONVERSATION_RECORD_VERSION) throw new UmbraError('state-unsupported-version', `conversation record version ${m.recordVersion} is not supported`);
  if (m.reliability === undefined) throw malformed('record without reliability state');
  return { conversationState: m.conversation, reliability: fromMessage(m.reliability) };
}
