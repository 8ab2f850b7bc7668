/**
 * What the client keeps per group (one JSON record, rewritten on each change) and the form of
 * a group frame in the 1:1 store; the group layer's in-memory view of a group beside it.
 */
import { fromBinary } from '@bufbuild/protobuf';
import { fromHex, group as G, toHex, wire, type FrameBody } from '@umbra/protocol';
import { ClientError } from '../errors.ts';
import type { StoredGroup } from '../store.ts';
import type { GroupStatus } from './types.ts';

export interface Card {
  readonly text: string;
  /** Encoded GroupBinding (hex). */
  readonly binding: string;
}

export interface GroupRecord {
  status: GroupStatus;
  /** Our group secret key (hex), null while only invited. */
  key: string | null;
  /** The conversation our invitation came through. */
  inviter: string | null;
  card: Card | null;
  /** Verified session bindings: conversation id → member id. */
  bindings: Record<string, string>;
  /** Other members' cards, by member id. */
  cards: Record<string, Card>;
  /** Conversations our hello went to. */
  hello: string[];
  /** "conversation|member": cards relayed. */
  sentCards: string[];
  /** Conversations we invited that have not answered with a binding yet. */
  invites: string[];
  /** Cards we accepted: member id → conversation id ("" = the card did not work). */
  opened: Record<string, string>;
  /** Group message ids waiting for a member we cannot reach yet. */
  deferred: Record<string, string[]>;
  /** Updates with a message that arrived before the session's binding: [conversation, hex]. */
  held: [string, string][];
  /** Our earlier member ids in this group (before a re-add gave us a new key). */
  formerSelves: string[];
  /** seenKey(applied change id) → when we first saw it applied (ms); one entry per applied event. */
  seen: Record<string, number>;
  messageClock: number;
  createdAt: number;
  lastError: string | null;
}

/**
 * 64 bits of an event id: enough to tell a group's events apart (at most MAX_GROUP_EVENTS), and
 * it keeps the record small, since the record is rewritten on every change.
 */
export function seenKey(eventIdHex: string): string {
  return eventIdHex.slice(0, 16);
}

export interface Group {
  readonly chatId: string;
  rec: GroupRecord;
  /** What the fold keeps (applied, rejected-but-kept, pending), in fold order. */
  events: readonly G.GroupEvent[];
  state: G.GroupState;
  /** The applied changes, in fold order. */
  history: readonly G.GroupChange[];
  /** Ids (hex) of the kept events the last fold rejected: reported once each. */
  rejected: ReadonlySet<string>;
  key: G.GroupKeyPair | null;
}

export function cloneGroup(g: Group): Group {
  return { ...g, rec: structuredClone(g.rec) };
}

/** A successful fold, as a group's event fields. */
export function foldFields(f: G.Folded): Pick<Group, 'events' | 'state' | 'history' | 'rejected'> {
  return { events: f.events, state: f.state, history: f.history, rejected: new Set(f.rejected.map((r) => toHex(r.event.id))) };
}

export function newRecord(status: GroupStatus, now: number): GroupRecord {
  return {
    status,
    key: null,
    inviter: null,
    card: null,
    bindings: {},
    cards: {},
    hello: [],
    sentCards: [],
    invites: [],
    opened: {},
    deferred: {},
    held: [],
    formerSelves: [],
    seen: {},
    messageClock: 0,
    createdAt: now,
    lastError: null,
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A stored group and its events, as the group layer holds it (the events folded again). */
export function loadGroup(group: StoredGroup, events: readonly Uint8Array[], now: number): Group {
  let rec: GroupRecord;
  try {
    rec = JSON.parse(dec.decode(group.record)) as GroupRecord;
  } catch (e) {
    throw new ClientError('store-corrupt', 'a stored group record is not valid JSON', { cause: e });
  }
  if (rec === null || typeof rec !== 'object' || typeof rec.status !== 'string' || (rec.key !== null && typeof rec.key !== 'string')) throw new ClientError('store-corrupt', 'a stored group record is not a group record');
  // Records written before re-adds and visible history lack these.
  rec.formerSelves ??= [];
  rec.seen ??= {};
  const decoded = G.decodeEventList(group.chatId, events);
  if (!decoded.ok) throw new ClientError('store-corrupt', `stored events of a group do not decode (${decoded.code})`);
  const folded = G.mergeGroupEvents(group.chatId, decoded.value, [], now);
  if (!folded.ok) throw new ClientError('store-corrupt', `stored events of a group do not fold (${folded.code})`);
  const secret = rec.key === null ? null : fromHex(rec.key);
  if (secret === null && rec.key !== null) throw new ClientError('store-corrupt', 'a stored group key is not hex');
  return { chatId: group.chatId, rec, ...foldFields(folded), key: secret === null ? null : G.groupKeyFromSecret(secret) };
}

export function storedGroup(g: Group, now: number): StoredGroup {
  return { chatId: g.chatId, record: enc.encode(JSON.stringify(g.rec)), updatedAt: now };
}

// ---- frame bodies ------------------------------------------------------------------------

export type FrameKind = 'membershipUpdate' | 'invite' | 'binding';

/** The stored form of a group frame: an encoded PrivateV1Frame with only `group` set (tag 0x7a). */
export function encodeGroupFrameBody(kind: FrameKind, bytes: Uint8Array): Uint8Array {
  const frame = wire.create(wire.GroupFrameSchema, { kind: { case: kind, value: bytes } });
  return wire.toBinary(wire.PrivateV1FrameSchema, wire.create(wire.PrivateV1FrameSchema, { body: { case: 'group', value: frame } }));
}

export function decodeGroupFrameBody(bytes: Uint8Array): FrameBody | null {
  try {
    const f = fromBinary(wire.PrivateV1FrameSchema, bytes);
    return f.body.case === 'group' ? f.body : null;
  } catch {
    return null;
  }
}

