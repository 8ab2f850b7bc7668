/**
 * group/v1 in the client (docs/GROUPS.md, "Client"): private groups whose members each keep a
 * pairwise private/v1 session with every other member. Everything group-shaped travels as a
 * GroupFrame inside those sessions, through the client's reliable 1:1 machinery (outbox, acks,
 * retries, durable receive in one transaction):
 *
 * - invite       GroupInvite: events + introductions. To someone we invite (our session binding),
 *                as a "hello" to a member we now share a session with (our session binding + our
 *                card), and to relay other members' cards.
 * - binding      GroupBinding: "I accept": the joiner's fresh group key bound to this session.
 * - update       MembershipUpdateMessage: the full event history after a change, or one group
 *                message (entity bytes encoded once; the same bytes go to every member).
 *
 * A card is a reusable invitation (fresh identity) plus a GroupBinding of our group key to that
 * identity. Members relay cards; of two members, the one later in the member list opens the
 * session by accepting the earlier one's card, so each pair opens exactly one session. Until it
 * opens, the other member is shown as pending, and group messages for them wait (deferred).
 *
 * Group messages are accepted only from a session whose peer identity a verified binding ties to
 * a current member; that member is the author. A session is bound once (bindSession): a binding
 * frame never moves it to another key; only a folded removal of its member lets a re-added
 * member's new key take it over. Membership comes only from the protocol fold of signed events,
 * never from which session an update arrived on.
 */
import { fromBinary } from '@bufbuild/protobuf';
import { fromHex, group as G, toHex, wire, type CryptoProvider, type FrameBody } from '@umbra/protocol';
import { ClientError } from '../errors.ts';
import type { Store, StoreBatch, StoredGroup, StoredGroupEvent, StoredGroupMessage } from '../store.ts';

// ---- public types ------------------------------------------------------------------------

export type GroupStatus = 'invited' | 'joining' | 'member' | 'left' | 'removed';

export interface GroupInfo {
  readonly chatId: string;
  readonly name: string;
  readonly color: string;
  readonly hasImage: boolean;
  readonly status: GroupStatus;
  /** Our member id in this group ("0x04…"), null before we accept. */
  readonly self: string | null;
  readonly admin: boolean;
  readonly memberCount: number;
  /** Members we cannot reach yet (no session). */
  readonly pendingCount: number;
  /** The conversation the invitation came through (invited/joining). */
  readonly invitedBy: string | null;
  /** The last update we could not apply, if any. */
  readonly lastError: string | null;
}

export interface GroupMemberInfo {
  /** "0x04…"; null for someone invited who has not accepted yet. */
  readonly memberId: string | null;
  readonly state: 'self' | 'connected' | 'pending' | 'invited';
  readonly admin: boolean;
  readonly creator: boolean;
  /** The pairwise conversation with this member, when there is one. */
  readonly conversationId: string | null;
  readonly name: string | null;
}

export interface GroupMessageInfo {
  readonly chatId: string;
  /** "0x" + keccak256(author key ‖ entity): the same for every member. */
  readonly id: string;
  readonly author: string;
  readonly authorName: string | null;
  readonly outgoing: boolean;
  readonly text: string;
  readonly clock: number;
  readonly sentAt: number;
  readonly receivedAt: number | null;
  readonly replyTo: string | null;
}

export interface GroupHistoryPage {
  /** Oldest first. */
  readonly messages: readonly GroupMessageInfo[];
  readonly cursor: string | null;
}

/** What a membership change did (the protocol fold's history: docs/GROUPS.md). */
export type GroupChangeKind = G.ChangeKind;

/** A member named in a change. */
export interface GroupMemberRef {
  readonly memberId: string;
  /** The display name of our session with them, when we have one. */
  readonly name: string | null;
  /** One of our own keys in this group (now or before a re-add). */
  readonly me: boolean;
}

/** One applied membership change: the same list, in the same order, at every member. */
export interface GroupChangeInfo {
  readonly chatId: string;
  /** Hex SHA-256 of the event's bytes: the same at every member. */
  readonly id: string;
  readonly kind: GroupChangeKind;
  /** The member id that signed it. */
  readonly author: string;
  readonly authorName: string | null;
  readonly byMe: boolean;
  /** Added, removed or promoted members (empty for the other kinds). */
  readonly targets: readonly GroupMemberRef[];
  /** 'created' and 'renamed': the name; null otherwise. */
  readonly name: string | null;
  /** 'color': the colour; null otherwise. */
  readonly color: string | null;
  /** The event's Lamport clock (ms-based, set by its author). */
  readonly clock: number;
  /** When this client first saw it applied (ms). */
  readonly seenAt: number;
}

/**
 * Why something was refused: the protocol fold's RejectReason for an event, or for a binding
 * 'binding-redirect' (it named another key for a bound session) or 'binding-unasked' (a binding
 * frame on a session we did not invite).
 */
export type GroupRejectReason = G.RejectReason | 'binding-redirect' | 'binding-unasked';

/** An event (or frame) this client refused: never applied. */
export interface GroupRejectedInfo {
  readonly chatId: string;
  /** The fold's reason for an event, or the client's for a binding. */
  readonly reason: GroupRejectReason;
  readonly detail: string;
  /** The event's signer, or the member the session is bound to; null when unknown. */
  readonly author: string | null;
  /** The rejected event's id (hex), for events. */
  readonly eventId: string | null;
  /** The conversation it arrived on, when it arrived in this client's receive. */
  readonly conversationId: string | null;
}

/** What add() did for one conversation. */
export type GroupAddOutcome = 'invited' | 're-invited' | 'already-invited';

export interface GroupAddResult {
  readonly group: GroupInfo;
  readonly conversationId: string;
  /** 'invited': a first invitation; 're-invited': the peer was a member before (removed or left); 'already-invited': an invitation is pending (nothing sent). */
  readonly outcome: GroupAddOutcome;
}

export interface GroupInviteResult {
  readonly group: GroupInfo;
  readonly results: readonly { readonly conversationId: string; readonly outcome: GroupAddOutcome }[];
}

/** Per-member status of one send. */
export interface GroupRecipientInfo {
  readonly memberId: string;
  readonly name: string | null;
  /**
   * 'queued': in our session's outbox (sent, retried until acknowledged); 'waiting': no session
   * yet, sent once it opens; 'dropped': no session, and 1000 messages already wait for them.
   */
  readonly status: 'queued' | 'waiting' | 'dropped';
  readonly conversationId: string | null;
}

export interface GroupSendResult extends GroupMessageInfo {
  readonly recipients: readonly GroupRecipientInfo[];
}

export interface GroupEventMap {
  'group-invited': GroupInfo;
  'group-updated': GroupInfo;
  'group-message': GroupMessageInfo;
  'group-change': GroupChangeInfo;
  'group-rejected': GroupRejectedInfo;
}

export type GroupErrorCode = 'unknown-group' | 'not-a-member' | 'not-allowed' | 'not-invited' | 'rejected' | 'already-member' | 'no-recipients';

/** A ClientError ('invalid-argument') with a group-specific reason. */
export class GroupError extends ClientError {
  readonly groupCode: GroupErrorCode;
  constructor(groupCode: GroupErrorCode, message: string) {
    super('invalid-argument', message);
    this.groupCode = groupCode;
  }
}

/** One group event for the app, as the client's event stream carries it. */
export type GroupEvent = { [K in keyof GroupEventMap]: { readonly type: K; readonly data: GroupEventMap[K] } }[keyof GroupEventMap];

/**
 * What the group layer needs from the client, and nothing more: no engine, no conversation
 * state, no session's secret key (the client signs bindings itself). The client constructs
 * Groups with one; this module does not import the client.
 */
export interface GroupHost {
  /** Group keys and event signatures. */
  readonly crypto: CryptoProvider;
  /** Group rows and stored group messages (writes go through sendFramesLocked). */
  readonly store: Store;
  now(): number;
  /** Runs fn as one client operation (the client's queue); rejects once the client is closed. */
  serial<T>(fn: () => T | Promise<T>): Promise<T>;
  /** Throws ClientError 'client-closed' once closed (for reads that do not queue). */
  assertOpen(): void;
  /** Our pairwise sessions, as far as groups use them. */
  readonly sessions: GroupSessions;
  /** Locked: persist `extra` and the frames (as hidden messages + outbox) in one transaction, then send. */
  sendFramesLocked(frames: readonly { conversationId: string; frame: Uint8Array }[], extra: StoreBatch): void;
  emit(e: GroupEvent): void;
  emitError(e: ClientError): void;
}

/** A session our identity is bound through: a conversation, or a card's invitation (by hex id). */
export type GroupSessionRef = { readonly conversationId: string } | { readonly invitationId: string };

/** The pairwise sessions groups ride on. */
export interface GroupSessions {
  /** The peer of a conversation we hold (its identity key and name), or undefined. */
  peer(conversationId: string): { readonly identityKey: Uint8Array; readonly name: string } | undefined;
  /** Our binding of that session's identity to the group key, signed by the client; undefined if the session is unknown. */
  bind(session: GroupSessionRef, chatId: string, groupKey: G.GroupKeyPair): G.GroupBinding | undefined;
  /** A new reusable invitation to hand out as our card. */
  newCard(ttlSeconds: number): Promise<{ readonly text: string; readonly invitationId: string }>;
  /** Accepts a member's card; resolves to the new conversation's id. */
  accept(card: string): Promise<string>;
}

// ---- limits ------------------------------------------------------------------------------

/** Cards relayed per invite frame (a card is ≈ 1.7 KB; frames must fit 64 KiB with the history). */
export const CARDS_PER_FRAME = 12;
/** Card validity (the longest the client allows). */
const CARD_TTL_SECONDS = 366 * 24 * 3600;
/** Group messages kept for a member we cannot reach yet. */
const MAX_DEFERRED_PER_MEMBER = 1000;
/** Updates held because they arrived before the session's binding. */
const MAX_HELD = 256;

// ---- the stored record -------------------------------------------------------------------

interface Card {
  readonly text: string;
  /** Encoded GroupBinding (hex). */
  readonly binding: string;
}

interface GroupRecord {
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
function seenKey(eventIdHex: string): string {
  return eventIdHex.slice(0, 16);
}

interface Group {
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

function cloneGroup(g: Group): Group {
  return { ...g, rec: structuredClone(g.rec) };
}

/** A successful fold, as a group's event fields. */
function foldFields(f: G.Folded): Pick<Group, 'events' | 'state' | 'history' | 'rejected'> {
  return { events: f.events, state: f.state, history: f.history, rejected: new Set(f.rejected.map((r) => toHex(r.event.id))) };
}

function newRecord(status: GroupStatus, now: number): GroupRecord {
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

// ---- frame bodies ------------------------------------------------------------------------

type FrameKind = 'membershipUpdate' | 'invite' | 'binding';

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

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// ---- the facade --------------------------------------------------------------------------

interface ReceiveWork {
  readonly now: number;
  readonly work: Map<string, Group>;
  readonly newEvents: StoredGroupEvent[];
  readonly messages: StoredGroupMessage[];
  readonly messageIds: Set<string>;
  readonly emits: GroupEvent[];
  /** Groups whose events changed through a local build (binding → add): send the update. */
  readonly updates: Map<string, readonly string[]>;
  /** Groups whose record or events changed (to persist and reconcile); plain messages change neither. */
  readonly dirty: Set<string>;
}

export class Groups {
  private readonly groups = new Map<string, Group>();
  private connecting = false;
  private connectAgain = false;

  constructor(private readonly host: GroupHost) {}

  // ---- loading ---------------------------------------------------------------------------

  /** @internal Called by the client at open. */
  load(): void {
    const now = this.host.now();
    for (const { group, events } of this.host.store.loadGroups()) {
      const rec = JSON.parse(dec.decode(group.record)) as GroupRecord;
      // Records written before re-adds and visible history lack these.
      rec.formerSelves ??= [];
      rec.seen ??= {};
      const decoded = G.decodeEventList(group.chatId, events);
      if (!decoded.ok) throw new ClientError('store-corrupt', `stored events of a group do not decode (${decoded.code})`);
      const folded = G.mergeGroupEvents(group.chatId, decoded.value, [], now);
      if (!folded.ok) throw new ClientError('store-corrupt', `stored events of a group do not fold (${folded.code})`);
      this.groups.set(group.chatId, { chatId: group.chatId, rec, ...foldFields(folded), key: rec.key === null ? null : G.groupKeyFromSecret(fromHex(rec.key)!) });
    }
  }

  // ---- reading ---------------------------------------------------------------------------

  list(): GroupInfo[] {
    this.host.assertOpen();
    return [...this.groups.values()].sort((a, b) => a.rec.createdAt - b.rec.createdAt || (a.chatId < b.chatId ? -1 : 1)).map((g) => this.info(g));
  }

  get(chatId: string): GroupInfo {
    this.host.assertOpen();
    return this.info(this.require(chatId));
  }

  members(chatId: string): GroupMemberInfo[] {
    this.host.assertOpen();
    const g = this.require(chatId);
    const self = g.key?.id ?? null;
    const out: GroupMemberInfo[] = g.state.members.map((m) => {
      const conversationId = this.conversationOf(g, m);
      return {
        memberId: m,
        state: m === self ? 'self' : conversationId !== null ? 'connected' : 'pending',
        admin: g.state.admins.includes(m),
        creator: g.state.creator === m,
        conversationId,
        name: m === self ? null : this.nameOf(g, m),
      };
    });
    for (const c of g.rec.invites) {
      out.push({ memberId: null, state: 'invited', admin: false, creator: false, conversationId: c, name: this.host.sessions.peer(c)?.name ?? null });
    }
    return out;
  }

  /**
   * The applied membership changes (created, renamed, added, joined, removed, left, promoted,
   * demoted, colour, image), oldest first, in the fold's order: every member holding the same
   * events lists the same changes. Rejected events never appear (they come as 'group-rejected').
   */
  changes(chatId: string): GroupChangeInfo[] {
    this.host.assertOpen();
    const g = this.require(chatId);
    return g.history.map((h) => this.changeInfo(g, h));
  }

  /** Group messages in arrival order, newest page first (like Client.history). */
  history(chatId: string, options: { limit?: number; before?: string } = {}): GroupHistoryPage {
    this.host.assertOpen();
    const g = this.require(chatId);
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ClientError('invalid-argument', 'limit must be an integer from 1 to 1000');
    let before: number | null = null;
    if (options.before !== undefined) {
      if (typeof options.before !== 'string' || !/^\d{1,15}$/.test(options.before)) throw new ClientError('invalid-argument', 'before must be a cursor returned by history()');
      before = Number(options.before);
    }
    const rows = this.host.store.groupMessages(chatId, limit + 1, before);
    const page = rows.slice(0, limit).reverse();
    return {
      messages: page.map((m) => this.messageInfo(g, m)),
      cursor: rows.length > limit && page[0]?.seq !== undefined ? String(page[0].seq) : null,
    };
  }

  // ---- creating and joining --------------------------------------------------------------

  /** Create a group and invite the peers of these conversations (they join with groups.accept). */
  async create(name: string, conversationIds: readonly string[] = [], options: { color?: string } = {}): Promise<GroupInfo> {
    if (typeof name !== 'string' || name.length === 0 || name.length > G.MAX_GROUP_NAME_CHARS) throw new ClientError('invalid-argument', `a group name is 1 to ${G.MAX_GROUP_NAME_CHARS} characters`);
    const convs = this.checkConversations(conversationIds);
    const card = await this.host.sessions.newCard(CARD_TTL_SECONDS);
    return this.host.serial(() => {
      const now = this.host.now();
      const built = G.createGroup(this.host.crypto, { name, nowMs: now, ...(options.color !== undefined ? { color: options.color } : {}) });
      if (!built.ok) throw new GroupError('rejected', built.reason);
      const key = built.key!;
      const chatId = built.state.chatId;
      const rec = newRecord('member', now);
      rec.key = toHex(key.secretKey);
      rec.card = this.makeCard(chatId, key, card);
      rec.invites = [...convs];
      const folded = this.refold(chatId, built.events, now);
      for (const h of folded.history) rec.seen[seenKey(h.id)] = now;
      const g: Group = { chatId, rec, ...foldFields(folded), key };
      const frames = convs.map((c) => this.inviteFrame(g, c));
      this.flush([g], built.events, [], frames);
      const info = this.info(g);
      this.host.emit({ type: 'group-updated', data: info });
      return info;
    });
  }

  /**
   * Invite the peers of these conversations to a group we are a member of (they join with
   * accept, with a fresh key). A peer who was a member before (removed, or left) is invited
   * again ('re-invited'); one whose invitation is still pending is not sent another
   * ('already-invited'). A current member is refused (GroupError 'already-member'), and then
   * nobody is invited.
   */
  async invite(chatId: string, conversationIds: readonly string[]): Promise<GroupInviteResult> {
    const convs = this.checkConversations(conversationIds);
    if (convs.length === 0) throw new ClientError('invalid-argument', 'name at least one conversation');
    return this.host.serial(() => {
      const g = cloneGroup(this.requireMember(chatId));
      const results: { conversationId: string; outcome: GroupAddOutcome }[] = [];
      for (const c of convs) {
        const bound = g.rec.bindings[c];
        if (bound !== undefined && g.state.members.includes(bound)) throw new GroupError('already-member', `the peer of conversation ${c} is already a member of this group`);
        results.push({ conversationId: c, outcome: g.rec.invites.includes(c) ? 'already-invited' : bound !== undefined ? 're-invited' : 'invited' });
      }
      const fresh = results.filter((r) => r.outcome !== 'already-invited').map((r) => r.conversationId);
      g.rec.invites.push(...fresh);
      if (fresh.length > 0) this.flush([g], [], [], fresh.map((c) => this.inviteFrame(g, c)));
      return { group: this.info(g), results };
    });
  }

  /** invite() for one conversation. */
  async add(chatId: string, conversationId: string): Promise<GroupAddResult> {
    const r = await this.invite(chatId, [conversationId]);
    return { group: r.group, conversationId: r.results[0]!.conversationId, outcome: r.results[0]!.outcome };
  }

  /** Join a group we were invited to: a fresh group key, bound to the inviter's session. */
  async accept(chatId: string): Promise<GroupInfo> {
    const g0 = this.require(chatId);
    if (g0.rec.status !== 'invited') throw new GroupError('not-invited', 'there is no pending invitation to this group');
    const card = await this.host.sessions.newCard(CARD_TTL_SECONDS);
    return this.host.serial(() => {
      const g = cloneGroup(this.require(chatId));
      if (g.rec.status !== 'invited' || g.rec.inviter === null) throw new GroupError('not-invited', 'there is no pending invitation to this group');
      if (this.host.sessions.peer(g.rec.inviter) === undefined) throw new ClientError('unknown-conversation', 'the conversation the invitation came through is gone');
      const key = G.generateGroupKey(this.host.crypto);
      g.key = key;
      g.rec.key = toHex(key.secretKey);
      g.rec.card = this.makeCard(chatId, key, card);
      g.rec.status = g.state.members.includes(key.id) ? 'member' : 'joining';
      const binding = G.encodeGroupBinding(this.bindingFor({ conversationId: g.rec.inviter }, chatId, key));
      const frames = [{ conversationId: g.rec.inviter, frame: encodeGroupFrameBody('binding', binding) }];
      this.flush([g], [], [], frames);
      const info = this.info(g);
      this.host.emit({ type: 'group-updated', data: info });
      return info;
    });
  }

  // ---- changes ---------------------------------------------------------------------------

  rename(chatId: string, name: string): Promise<GroupInfo> {
    if (typeof name !== 'string' || name.length === 0 || name.length > G.MAX_GROUP_NAME_CHARS) throw new ClientError('invalid-argument', `a group name is 1 to ${G.MAX_GROUP_NAME_CHARS} characters`);
    return this.change(chatId, (ctx, now) => G.rename(ctx, name, now));
  }

  setColor(chatId: string, color: string): Promise<GroupInfo> {
    if (typeof color !== 'string' || color.length === 0 || color.length > G.MAX_GROUP_COLOR_CHARS) throw new ClientError('invalid-argument', `a colour is 1 to ${G.MAX_GROUP_COLOR_CHARS} characters`);
    return this.change(chatId, (ctx, now) => G.setColor(ctx, color, now));
  }

  setImage(chatId: string, image: Uint8Array): Promise<GroupInfo> {
    if (!(image instanceof Uint8Array) || image.length === 0 || image.length > G.MAX_GROUP_IMAGE_BYTES) throw new ClientError('invalid-argument', `an image is 1 to ${G.MAX_GROUP_IMAGE_BYTES} bytes`);
    return this.change(chatId, (ctx, now) => G.setImage(ctx, image, now));
  }

  /** Remove a member (admins only): the member id, or the conversation id of our session with them. */
  remove(chatId: string, member: string): Promise<GroupInfo> {
    return this.change(chatId, (ctx, now, g) => G.removeMember(ctx, this.resolveMember(g, member), now));
  }

  promote(chatId: string, member: string): Promise<GroupInfo> {
    return this.change(chatId, (ctx, now, g) => G.promote(ctx, [this.resolveMember(g, member)], now));
  }

  /** Leave: every member is told, and we stop sending. */
  leave(chatId: string): Promise<GroupInfo> {
    return this.change(chatId, (ctx, now) => G.leave(ctx, now));
  }

  // ---- messages --------------------------------------------------------------------------

  /**
   * Send a text to every member: one entity, one id, pairwise through each member's session.
   * `recipients` says, per member, whether it is queued on a session or waits for one to open.
   * With no other member in the group, nothing is stored and GroupError 'no-recipients' is thrown.
   */
  async send(chatId: string, text: string, options: { replyTo?: string } = {}): Promise<GroupSendResult> {
    if (typeof text !== 'string' || text.length === 0 || text.length > G.MAX_GROUP_TEXT_CHARS) throw new ClientError('message-too-large', `a group message is 1 to ${G.MAX_GROUP_TEXT_CHARS} characters`);
    if (options.replyTo !== undefined && (typeof options.replyTo !== 'string' || !/^0x[0-9a-f]{64}$/.test(options.replyTo))) throw new ClientError('invalid-argument', 'replyTo must be a group message id');
    return this.host.serial(() => {
      const base = this.requireMember(chatId);
      const g = { ...base, rec: { ...base.rec, deferred: structuredClone(base.rec.deferred) } };
      const self = g.key!.id;
      if (!g.state.members.some((m) => m !== self)) throw new GroupError('no-recipients', 'nobody else is in this group');
      const now = this.host.now();
      const clock = Math.max(g.rec.messageClock + 1, now);
      g.rec.messageClock = clock;
      const entity = G.encodeGroupChatMessage({ chatId, clock: BigInt(clock), timestamp: BigInt(now), text, ...(options.replyTo !== undefined ? { responseTo: options.replyTo } : {}) });
      const id = G.groupMessageId(self, entity);
      const frame = encodeGroupFrameBody('membershipUpdate', G.encodeMembershipUpdate(chatId, [], { case: 'message', value: entity }));
      const frames: { conversationId: string; frame: Uint8Array }[] = [];
      const recipients: GroupRecipientInfo[] = [];
      let deferred = false;
      for (const m of g.state.members) {
        if (m === self) continue;
        const c = this.conversationOf(g, m);
        let status: GroupRecipientInfo['status'] = 'queued';
        if (c !== null) frames.push({ conversationId: c, frame });
        else {
          const list = (g.rec.deferred[m] ??= []);
          status = list.length < MAX_DEFERRED_PER_MEMBER ? 'waiting' : 'dropped';
          if (status === 'waiting') list.push(id);
          deferred = true;
        }
        recipients.push({ memberId: m, name: this.nameOf(g, m), status, conversationId: c });
      }
      const stored: StoredGroupMessage = { chatId, messageId: id, author: self, outgoing: true, clock, sentAt: now, receivedAt: null, entity };
      // The message clock is kept in memory (after a restart, now is the floor); the record is
      // rewritten only when a message waits for a member we cannot reach yet.
      this.flush(deferred ? [g] : [], [], [stored], frames);
      this.groups.set(chatId, g);
      return { ...this.messageInfo(g, stored), recipients };
    });
  }

  // ---- receiving (called by the client inside its receive transaction) --------------------

  /** @internal */
  beginReceive(now: number): { frame(conversationId: string, frame: wire.GroupFrame, peerIdentity: Uint8Array): void; batch(): StoreBatch; commit(): void } {
    const w: ReceiveWork = { now, work: new Map(), newEvents: [], messages: [], messageIds: new Set(), emits: [], updates: new Map(), dirty: new Set() };
    return {
      frame: (conversationId, frame, peerIdentity) => {
        try {
          this.onFrame(w, conversationId, frame, peerIdentity);
        } catch (e) {
          // A bad group frame must never break the 1:1 receive path.
          this.host.emitError(new ClientError('internal', `group frame failed: ${(e as Error).message}`, { cause: e }));
        }
      },
      batch: () => ({
        groups: [...w.work.values()].filter((g) => w.dirty.has(g.chatId)).map((g) => this.storedGroup(g, now)),
        groupEvents: w.newEvents,
        groupMessages: w.messages,
      }),
      commit: () => {
        for (const g of w.work.values()) this.groups.set(g.chatId, g);
        for (const e of w.emits) this.host.emit(e);
        // Follow-up sends: updates after a local change, hellos, relayed cards, deferred messages.
        const frames: { conversationId: string; frame: Uint8Array }[] = [];
        const changed: Group[] = [];
        for (const g0 of w.work.values()) {
          if (!w.dirty.has(g0.chatId)) continue;
          const g = cloneGroup(g0);
          const recipients = w.updates.get(g.chatId);
          if (recipients !== undefined) frames.push(...this.updateFrames(g, recipients));
          frames.push(...this.reconcile(g));
          changed.push(g);
        }
        if (frames.length > 0 || changed.length > 0) {
          this.flush(changed, [], [], frames);
          this.connectPending();
        }
      },
    };
  }

  private onFrame(w: ReceiveWork, conversationId: string, frame: wire.GroupFrame, peerIdentity: Uint8Array): void {
    switch (frame.kind.case) {
      case 'invite':
        return this.onInvite(w, conversationId, frame.kind.value, peerIdentity);
      case 'membershipUpdate':
        return this.onUpdate(w, conversationId, frame.kind.value);
      case 'binding':
        return this.onBinding(w, conversationId, frame.kind.value, peerIdentity);
      default:
        return;
    }
  }

  /** The group as this receive sees it; `write` marks it to be persisted and reconciled. */
  private working(w: ReceiveWork, chatId: string, write = true): Group | undefined {
    if (write) w.dirty.add(chatId);
    let g = w.work.get(chatId);
    if (g !== undefined) return g;
    if (!write) return this.groups.get(chatId);
    const base = this.groups.get(chatId);
    if (base === undefined) return undefined;
    g = cloneGroup(base);
    w.work.set(chatId, g);
    return g;
  }

  private reject(w: ReceiveWork, g: Group | undefined, reason: string): void {
    if (g !== undefined) g.rec.lastError = reason;
    this.host.emitError(new GroupError('rejected', reason));
    void w;
  }

  /** A refused frame or event: a 'group-rejected' diagnostic (emitted with the receive), and lastError. */
  private diagnose(w: ReceiveWork, g: Group, d: Omit<GroupRejectedInfo, 'chatId'>): void {
    g.rec.lastError = d.detail;
    w.emits.push({ type: 'group-rejected', data: { chatId: g.chatId, ...d } });
  }

  /**
   * Merge incoming events into g through the protocol fold. Each event is judged on its own:
   * invalid ones are reported ('group-rejected') and never applied, the others apply. False
   * only when the union has no valid CHAT_CREATED (nothing changes then).
   */
  private mergeInto(w: ReceiveWork, g: Group, incoming: readonly G.GroupEvent[], conversationId: string | null): boolean {
    if (incoming.length === 0) return true;
    const merged = G.mergeGroupEvents(g.chatId, g.events, incoming, w.now);
    if (!merged.ok) {
      this.reject(w, g, `a group update was rejected: ${merged.reason}`);
      return false;
    }
    for (const e of merged.added ?? []) w.newEvents.push({ chatId: g.chatId, wire: G.eventWireBytes(e) });
    const wasJoining = g.rec.status === 'joining';
    w.emits.push(...this.adopt(g, merged, w.now, conversationId));
    if (wasJoining && g.rec.status === 'member' && g.key !== null) {
      // Added: say so with MEMBER_JOINED (status-go's confirmation). It travels in our hellos.
      const built = G.join({ chatId: g.chatId, events: g.events, key: g.key }, w.now);
      if (built.ok) {
        for (const e of built.newEvents) w.newEvents.push({ chatId: g.chatId, wire: G.eventWireBytes(e) });
        w.emits.push(...this.adopt(g, this.refold(g.chatId, built.events, w.now), w.now, null));
      }
    }
    return true;
  }

  /**
   * Take a fold as g's state: note when each newly applied change was first seen, and return
   * the SDK events: a 'group-change' per newly applied change, a 'group-rejected' per event
   * rejected for the first time (including one a later removal undid), 'group-updated' when the
   * state changed. Updates the status (member, removed).
   */
  private adopt(g: Group, f: G.Folded, now: number, conversationId: string | null): GroupEvent[] {
    const before = { state: g.state, applied: new Set(g.history.map((h) => h.id)), rejected: g.rejected };
    Object.assign(g, foldFields(f));
    const seen: Record<string, number> = {};
    for (const h of g.history) seen[seenKey(h.id)] = g.rec.seen[seenKey(h.id)] ?? now;
    g.rec.seen = seen;
    const out: GroupEvent[] = [];
    for (const h of g.history) if (!before.applied.has(h.id)) out.push({ type: 'group-change', data: this.changeInfo(g, h) });
    let rejectedNow = false;
    for (const r of f.rejected) {
      const id = toHex(r.event.id);
      // Pending (a parent not here yet) is not a refusal: it applies once the parent arrives.
      if (before.rejected.has(id) || r.reason === 'missing-parent') continue;
      rejectedNow = true;
      g.rec.lastError = r.detail;
      out.push({ type: 'group-rejected', data: { chatId: g.chatId, reason: r.reason, detail: r.detail, author: r.event.from, eventId: id, conversationId } });
    }
    if (!rejectedNow && out.length > 0) g.rec.lastError = null;
    this.updateStatus(g);
    const s = before.state;
    if (s.name !== g.state.name || s.members.join() !== g.state.members.join() || s.admins.join() !== g.state.admins.join() || s.color !== g.state.color || !sameBytes(s.image, g.state.image)) {
      out.push({ type: 'group-updated', data: this.info(g) });
    }
    return out;
  }

  /** Fold events we hold (or just built) with nothing incoming. */
  private refold(chatId: string, events: readonly G.GroupEvent[], now: number): G.Folded {
    const f = G.mergeGroupEvents(chatId, events, [], now);
    if (!f.ok) throw new ClientError('internal', `a group's own events do not fold (${f.code})`);
    return f;
  }

  private updateStatus(g: Group): void {
    if (g.key === null) return;
    const inGroup = g.state.members.includes(g.key.id);
    // 'removed' → 'member': our same key was added back by a folded event (not what our add()
    // does, which invites for a fresh key, but valid for any member to sign).
    if (inGroup && (g.rec.status === 'joining' || g.rec.status === 'member' || g.rec.status === 'removed')) g.rec.status = 'member';
    else if (!inGroup && g.rec.status === 'member') g.rec.status = 'removed';
  }

  private onInvite(w: ReceiveWork, conversationId: string, bytes: Uint8Array, peerIdentity: Uint8Array): void {
    let chatId: string;
    try {
      chatId = fromBinary(G.GroupInviteSchema, bytes).chatId;
    } catch {
      return this.reject(w, undefined, 'a group invite does not decode');
    }
    let g = this.working(w, chatId);
    const decoded = G.decodeGroupInvite(bytes, g?.events ?? []);
    if (!decoded.ok) return this.reject(w, g, `a group invite was rejected (${decoded.code})`);
    if (g === undefined) {
      const folded = G.foldGroup(chatId, decoded.value.events, w.now);
      if (!folded.ok) return this.reject(w, undefined, `a group invite was rejected: ${folded.reason}`);
      const rec = newRecord('invited', w.now);
      rec.inviter = conversationId;
      for (const h of folded.history) rec.seen[seenKey(h.id)] = w.now;
      g = { chatId, rec, ...foldFields(folded), key: null };
      w.work.set(chatId, g);
      for (const e of folded.events) w.newEvents.push({ chatId, wire: G.eventWireBytes(e) });
      w.emits.push({ type: 'group-invited', data: this.info(g) });
    } else {
      if (g.rec.status === 'left' || g.rec.status === 'removed') {
        // Out of the group: only a new invitation (re-add) is read; stale traffic is not.
        if (!this.isReinvitation(g, decoded.value, peerIdentity, w.now)) return;
        this.reopen(g, conversationId);
        if (!this.mergeInto(w, g, decoded.value.events, conversationId)) return;
        w.emits.push({ type: 'group-invited', data: this.info(g) });
      } else {
        if (!this.mergeInto(w, g, decoded.value.events, conversationId)) return;
        if (g.rec.status === 'invited' && g.rec.inviter === null) g.rec.inviter = conversationId;
      }
    }
    const self = g.key?.id;
    for (const intro of decoded.value.introductions) {
      const checked = G.verifyIntroduction(this.host.crypto, intro, g.state, w.now);
      if (!checked.ok) continue; // that member stays pending until introduced again
      const v = checked.value;
      if (v.memberId === self) continue;
      if (v.contact.case === 'invitation') {
        g.rec.cards[v.memberId] = { text: v.contact.text, binding: toHex(G.encodeGroupBinding(intro.binding!)) };
      } else if (sameBytes(v.identityKey, peerIdentity)) {
        this.bindSession(w, g, conversationId, v.memberId, false);
      }
    }
  }

  /**
   * An invite for a group we are out of (removed or left) is a new invitation when it was built
   * after we left: its own events, folded alone, no longer list any key of ours, and it carries
   * its sender's binding for this session, the sender being a member (in the invite's events
   * and in everything we hold). A hello or card relay sent before our removal still lists us,
   * so it is not mistaken for one.
   */
  private isReinvitation(g: Group, invite: G.DecodedGroupInvite, peerIdentity: Uint8Array, now: number): boolean {
    const ours = new Set([...g.rec.formerSelves, ...(g.key !== null ? [g.key.id] : [])]);
    const alone = G.foldGroup(g.chatId, invite.events, now);
    if (!alone.ok || alone.state.members.some((m) => ours.has(m))) return false;
    // The sender must be a member by everything we know too (not one whose removal we saw).
    const merged = G.mergeGroupEvents(g.chatId, g.events, invite.events, now);
    if (!merged.ok) return false;
    return invite.introductions.some((intro) => {
      const checked = G.verifyIntroduction(this.host.crypto, intro, alone.state, now);
      return checked.ok && sameBytes(checked.value.identityKey, peerIdentity) && merged.state.members.includes(checked.value.memberId);
    });
  }

  /**
   * Back to 'invited' for a re-add: our old key is retired (kept in formerSelves for the
   * history); sessions and cards of the other members stay, hellos go out again with the new
   * key once we are added.
   */
  private reopen(g: Group, conversationId: string): void {
    const old = g.rec;
    const rec = newRecord('invited', old.createdAt);
    rec.inviter = conversationId;
    rec.bindings = old.bindings;
    rec.cards = old.cards;
    rec.opened = old.opened;
    rec.seen = old.seen;
    rec.messageClock = old.messageClock;
    rec.formerSelves = [...old.formerSelves, ...(g.key !== null ? [g.key.id] : [])];
    g.rec = rec;
    g.key = null;
  }

  /**
   * Bind a session to a member, once. A session bound to a current member never moves. One
   * bound to a member who is out of the group (a folded removal or leave) moves to a new key
   * only when (a) it answers our own invitation on that session (`invited`), or (b) the group
   * folded an addition of the new key, later than that removal and not signed by the removed
   * key. Anything else is reported ('binding-redirect') and changes nothing.
   */
  private bindSession(w: ReceiveWork, g: Group, conversationId: string, memberId: string, invited: boolean): boolean {
    const current = g.rec.bindings[conversationId];
    if (current === memberId) return true;
    if (current !== undefined && !(invited ? !g.state.members.includes(current) : this.mayTakeOver(g, current, memberId))) {
      this.diagnose(w, g, { reason: 'binding-redirect', detail: 'a binding tried to move a session to another group key', author: current, eventId: null, conversationId });
      return false;
    }
    this.bind(w, g, conversationId, memberId);
    return true;
  }

  /** (b) of bindSession, read from the fold's history. */
  private mayTakeOver(g: Group, current: string, memberId: string): boolean {
    if (g.state.members.includes(current) || !g.state.members.includes(memberId)) return false;
    let removedAt = -1;
    let addedAt = -1;
    let addedBy = '';
    g.history.forEach((h, i) => {
      if ((h.kind === 'removed' || h.kind === 'left') && h.members.includes(current)) removedAt = i;
      if (h.kind === 'added' && h.members.includes(memberId)) {
        addedAt = i;
        addedBy = h.author;
      }
    });
    return removedAt >= 0 && addedAt > removedAt && addedBy !== current;
  }

  private bind(w: ReceiveWork, g: Group, conversationId: string, memberId: string): void {
    if (g.rec.bindings[conversationId] === memberId) return;
    g.rec.bindings[conversationId] = memberId;
    // Updates that arrived before this binding can be read now.
    const held = g.rec.held.filter(([c]) => c === conversationId);
    if (held.length > 0) {
      g.rec.held = g.rec.held.filter(([c]) => c !== conversationId);
      for (const [, hex] of held) this.onUpdate(w, conversationId, fromHex(hex)!);
    }
  }

  private onUpdate(w: ReceiveWork, conversationId: string, bytes: Uint8Array): void {
    let chatId: string;
    try {
      chatId = fromBinary(G.MembershipUpdateMessageSchema, bytes).chatId;
    } catch {
      return this.reject(w, undefined, 'a group update does not decode');
    }
    let g = this.working(w, chatId, false);
    if (g === undefined || g.rec.status === 'left') return; // not a group we know (or we left it)
    const decoded = G.decodeMembershipUpdate(bytes, g.events);
    if (!decoded.ok) return this.reject(w, this.working(w, chatId), `a group update was rejected (${decoded.code})`);
    if (decoded.value.events.length > 0) {
      g = this.working(w, chatId)!;
      if (!this.mergeInto(w, g, decoded.value.events, conversationId)) return;
    }
    const entity = decoded.value.entity;
    if (entity === null || entity.case !== 'message') return;
    if (g.key === null || g.rec.status !== 'member') return;
    const author = g.rec.bindings[conversationId];
    if (author === undefined) {
      // The session's binding has not arrived yet (frames may be reordered): hold it.
      g = this.working(w, chatId)!;
      if (g.rec.held.length < MAX_HELD) g.rec.held.push([conversationId, toHex(bytes)]);
      return;
    }
    if (author === g.key.id || !g.state.members.includes(author)) return; // not (or no longer) a member
    const m = G.decodeGroupChatMessage(entity.value);
    if (!m.ok || m.value.chatId !== chatId) return this.reject(w, g, 'a group message was malformed');
    const id = G.groupMessageId(author, entity.value);
    if (w.messageIds.has(`${chatId}/${id}`) || this.host.store.groupMessage(chatId, id) !== null) return;
    w.messageIds.add(`${chatId}/${id}`);
    const clock = m.value.clock > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(m.value.clock);
    const sentAt = m.value.timestamp > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(m.value.timestamp);
    g.rec.messageClock = Math.max(g.rec.messageClock, clock);
    const stored: StoredGroupMessage = { chatId, messageId: id, author, outgoing: false, clock, sentAt, receivedAt: w.now, entity: entity.value };
    w.messages.push(stored);
    w.emits.push({ type: 'group-message', data: this.messageInfo(g, stored) });
  }

  private onBinding(w: ReceiveWork, conversationId: string, bytes: Uint8Array, peerIdentity: Uint8Array): void {
    const b = G.decodeGroupBinding(bytes);
    if (b === null) return this.reject(w, undefined, 'a group binding does not decode');
    const g = this.working(w, b.chatId);
    if (g === undefined || g.key === null || g.rec.status !== 'member') return;
    const checked = G.verifyGroupBinding(this.host.crypto, b, g.chatId);
    if (!checked.ok) return this.reject(w, g, `a group binding was rejected (${checked.code})`);
    if (!sameBytes(checked.identityKey, peerIdentity)) return this.reject(w, g, 'a group binding is for another identity than its session');
    if (g.rec.bindings[conversationId] === checked.memberId) return;
    // A binding frame is only the answer to our invitation on this session: it never re-binds.
    const invited = g.rec.invites.indexOf(conversationId);
    if (invited < 0) {
      return this.diagnose(w, g, { reason: 'binding-unasked', detail: 'a group binding arrived on a session we did not invite', author: g.rec.bindings[conversationId] ?? null, eventId: null, conversationId });
    }
    if (!this.bindSession(w, g, conversationId, checked.memberId, true)) return;
    g.rec.invites.splice(invited, 1);
    if (g.state.members.includes(checked.memberId)) return;
    // They accepted our invitation: add them (any member may add).
    const before = g.state.members;
    const built = G.addMembers({ chatId: g.chatId, events: g.events, key: g.key }, [checked.memberId], w.now);
    if (!built.ok) return this.reject(w, g, `could not add the new member: ${built.reason}`);
    for (const e of built.newEvents) w.newEvents.push({ chatId: g.chatId, wire: G.eventWireBytes(e) });
    w.emits.push(...this.adopt(g, this.refold(g.chatId, built.events, w.now), w.now, null));
    w.updates.set(g.chatId, [...new Set([...(w.updates.get(g.chatId) ?? []), ...before, ...g.state.members])]);
  }

  // ---- opening sessions to introduced members ---------------------------------------------

  /**
   * Accept the cards of members we should open a session to (we come later in the member list
   * and have no session with them). Runs outside the client's lock; idempotent.
   */
  connectPending(): void {
    if (this.connecting) {
      this.connectAgain = true;
      return;
    }
    this.connecting = true;
    void this.connectLoop()
      .catch((e: unknown) => {
        if (!(e instanceof ClientError && (e.code === 'client-closed' || e.code === 'store-closed'))) {
          this.host.emitError(e instanceof ClientError ? e : new ClientError('internal', `opening group sessions failed: ${(e as Error).message}`, { cause: e }));
        }
      })
      .finally(() => {
        this.connecting = false;
        if (this.connectAgain) {
          this.connectAgain = false;
          this.connectPending();
        }
      });
  }

  private async connectLoop(): Promise<void> {
    for (;;) {
      this.connectAgain = false;
      const todo: { chatId: string; member: string; card: Card }[] = [];
      for (const g of this.groups.values()) {
        if (g.rec.status !== 'member' || g.key === null) continue;
        for (const m of G.membersToDial(g.state.members, g.key.id, (m) => g.rec.opened[m] !== undefined || this.conversationOf(g, m) !== null)) {
          const card = g.rec.cards[m];
          if (card !== undefined) todo.push({ chatId: g.chatId, member: m, card });
        }
      }
      if (todo.length === 0) return;
      for (const t of todo) {
        let opened: string | null = null;
        try {
          opened = await this.host.sessions.accept(t.card.text);
        } catch (e) {
          if (e instanceof ClientError && (e.code === 'client-closed' || e.code === 'store-closed')) throw e;
          this.host.emitError(new GroupError('rejected', `could not open a session to a group member: ${(e as Error).message}`));
        }
        await this.host.serial(() => {
          const base = this.groups.get(t.chatId);
          if (base === undefined) return;
          const g = cloneGroup(base);
          g.rec.opened[t.member] = opened ?? '';
          const peer = opened === null ? undefined : this.host.sessions.peer(opened);
          const binding = G.decodeGroupBinding(fromHex(t.card.binding)!);
          // A session we just opened from a card: bound once, to the card's member.
          if (opened !== null && peer !== undefined && binding !== null && sameBytes(binding.identityKey, peer.identityKey) && g.rec.bindings[opened] === undefined) {
            g.rec.bindings[opened] = t.member;
          }
          this.groups.set(g.chatId, g);
          this.flush([g], [], [], this.reconcile(g));
          this.host.emit({ type: 'group-updated', data: this.info(g) });
        });
      }
    }
  }

  // ---- internals ---------------------------------------------------------------------------

  /**
   * What we owe our peers now: a hello (session binding + our card) on every bound session,
   * the cards of earlier members to each later member, and messages deferred for members who
   * have just become reachable. Mutates g.rec (what was sent); returns the frames.
   */
  private reconcile(g: Group): { conversationId: string; frame: Uint8Array }[] {
    if (g.rec.status !== 'member' || g.key === null) return [];
    // 80 bits of the member key: enough to tell members apart (the stored form of rec.sentCards).
    const cardKey = (conversationId: string, member: string) => `${conversationId}|${member.slice(4, 24)}`;
    const sent = new Set(g.rec.sentCards);
    const plan = G.planSessions({
      members: g.state.members,
      self: g.key.id,
      bindings: g.rec.bindings,
      isOpen: (c) => this.host.sessions.peer(c) !== undefined,
      helloSent: (c) => g.rec.hello.includes(c),
      hasCard: (m) => g.rec.cards[m] !== undefined,
      cardSent: (c, m) => sent.has(cardKey(c, m)),
      deferred: Object.keys(g.rec.deferred),
    });
    const frames: { conversationId: string; frame: Uint8Array }[] = [];
    for (const step of plan.steps) {
      const { conversationId } = step;
      if (step.hello) {
        g.rec.hello.push(conversationId);
        frames.push({ conversationId, frame: this.helloFrame(g, conversationId) });
      }
      const cards: G.IntroductionInput[] = [];
      for (const m of step.introduce) {
        const card = g.rec.cards[m]!;
        sent.add(cardKey(conversationId, m));
        const binding = G.decodeGroupBinding(fromHex(card.binding)!);
        if (binding !== null) cards.push({ binding, invitation: card.text });
      }
      for (let i = 0; i < cards.length; i += CARDS_PER_FRAME) {
        frames.push({ conversationId, frame: encodeGroupFrameBody('invite', G.encodeGroupInvite(g.chatId, g.events, cards.slice(i, i + CARDS_PER_FRAME))) });
      }
      if (!step.deliverDeferred) continue;
      const deferred = g.rec.deferred[step.member]!;
      delete g.rec.deferred[step.member];
      for (const id of deferred) {
        const msg = this.host.store.groupMessage(g.chatId, id);
        if (msg === null) continue;
        frames.push({ conversationId, frame: encodeGroupFrameBody('membershipUpdate', G.encodeMembershipUpdate(g.chatId, [], { case: 'message', value: msg.entity })) });
      }
    }
    g.rec.sentCards = [...sent];
    // Deferred messages for members who are gone are dropped.
    for (const m of plan.dropDeferred) delete g.rec.deferred[m];
    return frames;
  }

  /** Our session binding for this conversation plus our card, with the full history. */
  private helloFrame(g: Group, conversationId: string): Uint8Array {
    const intros: G.IntroductionInput[] = [{ binding: this.bindingFor({ conversationId }, g.chatId, g.key!) }];
    if (g.rec.card !== null) {
      const binding = G.decodeGroupBinding(fromHex(g.rec.card.binding)!);
      if (binding !== null) intros.push({ binding, invitation: g.rec.card.text });
    }
    return encodeGroupFrameBody('invite', G.encodeGroupInvite(g.chatId, g.events, intros));
  }

  /** To someone we invite: the history and our binding for their session (no card yet). */
  private inviteFrame(g: Group, conversationId: string): { conversationId: string; frame: Uint8Array } {
    const intros: G.IntroductionInput[] = [{ binding: this.bindingFor({ conversationId }, g.chatId, g.key!) }];
    return { conversationId, frame: encodeGroupFrameBody('invite', G.encodeGroupInvite(g.chatId, g.events, intros)) };
  }

  /** The full history to these members (minus ourselves), each through their session. */
  private updateFrames(g: Group, recipients: readonly string[]): { conversationId: string; frame: Uint8Array }[] {
    const frame = encodeGroupFrameBody('membershipUpdate', G.encodeMembershipUpdate(g.chatId, g.events));
    const out: { conversationId: string; frame: Uint8Array }[] = [];
    for (const m of new Set(recipients)) {
      if (m === g.key?.id) continue;
      const c = this.conversationOf(g, m);
      if (c !== null) out.push({ conversationId: c, frame });
    }
    return out;
  }

  private change(chatId: string, build: (ctx: G.GroupContext, now: number, g: Group) => G.BuildResult): Promise<GroupInfo> {
    return this.host.serial(() => {
      const g = cloneGroup(this.requireMember(chatId));
      const now = this.host.now();
      const before = g.state.members;
      const built = build({ chatId, events: g.events, key: g.key! }, now, g);
      if (!built.ok) throw new GroupError(built.code === 'not-allowed' ? 'not-allowed' : 'rejected', built.reason);
      const emits = this.adopt(g, this.refold(chatId, built.events, now), now, null).filter((e) => e.type !== 'group-updated');
      if (!g.state.members.includes(g.key!.id)) g.rec.status = 'left';
      const frames = this.updateFrames(g, [...before, ...g.state.members]);
      frames.push(...this.reconcile(g));
      this.flush([g], built.newEvents, [], frames);
      const info = this.info(g);
      for (const e of emits) this.host.emit(e);
      this.host.emit({ type: 'group-updated', data: info });
      return info;
    });
  }

  /** Persist the groups, events and messages with the frames in one transaction; then adopt them. */
  private flush(groups: readonly Group[], events: readonly G.GroupEvent[], messages: readonly StoredGroupMessage[], frames: readonly { conversationId: string; frame: Uint8Array }[]): void {
    const now = this.host.now();
    this.host.sendFramesLocked(frames, {
      groups: groups.map((g) => this.storedGroup(g, now)),
      groupEvents: events.map((e) => ({ chatId: e.chatId, wire: G.eventWireBytes(e) })),
      groupMessages: [...messages],
    });
    for (const g of groups) this.groups.set(g.chatId, g);
  }

  private storedGroup(g: Group, now: number): StoredGroup {
    return { chatId: g.chatId, record: enc.encode(JSON.stringify(g.rec)), updatedAt: now };
  }

  private makeCard(chatId: string, key: G.GroupKeyPair, card: { readonly text: string; readonly invitationId: string }): Card {
    return { text: card.text, binding: toHex(G.encodeGroupBinding(this.bindingFor({ invitationId: card.invitationId }, chatId, key))) };
  }

  /** The client's binding for a session we hold (callers checked it exists). */
  private bindingFor(session: GroupSessionRef, chatId: string, key: G.GroupKeyPair): G.GroupBinding {
    const binding = this.host.sessions.bind(session, chatId, key);
    if (binding === undefined) throw new ClientError('internal', 'conversationId' in session ? `no session ${session.conversationId} to bind` : 'the card invitation has no inbox');
    return binding;
  }

  private conversationOf(g: Group, member: string): string | null {
    let best: string | null = null;
    for (const [c, m] of Object.entries(g.rec.bindings)) {
      if (m !== member || this.host.sessions.peer(c) === undefined) continue;
      // Prefer the session we opened from their card (or the first one bound).
      if (best === null || g.rec.opened[member] === c) best = c;
    }
    return best;
  }

  private nameOf(g: Group, member: string): string | null {
    const c = this.conversationOf(g, member);
    return c === null ? null : (this.host.sessions.peer(c)?.name ?? null);
  }

  private resolveMember(g: Group, member: string): string {
    if (typeof member !== 'string') throw new ClientError('invalid-argument', 'a member is a member id or a conversation id');
    if (G.isMemberId(member)) return member;
    const bound = g.rec.bindings[member];
    if (bound !== undefined) return bound;
    throw new GroupError('not-a-member', 'no such member in this group');
  }

  private checkConversations(ids: readonly string[]): string[] {
    if (!Array.isArray(ids)) throw new ClientError('invalid-argument', 'conversationIds must be an array');
    for (const id of ids) {
      if (typeof id !== 'string' || !/^[0-9a-f]{32}$/.test(id)) throw new ClientError('invalid-argument', 'a conversation id is 32 lowercase hex characters');
      if (this.host.sessions.peer(id) === undefined) throw new ClientError('unknown-conversation', `no conversation ${id}`);
    }
    return [...new Set(ids)];
  }

  private require(chatId: string): Group {
    if (typeof chatId !== 'string') throw new ClientError('invalid-argument', 'a group id is a string');
    const g = this.groups.get(chatId);
    if (g === undefined) throw new GroupError('unknown-group', `no group ${chatId}`);
    return g;
  }

  private requireMember(chatId: string): Group {
    const g = this.require(chatId);
    if (g.rec.status !== 'member' || g.key === null) throw new GroupError('not-a-member', `we are not a member of this group (${g.rec.status})`);
    return g;
  }

  private info(g: Group): GroupInfo {
    const self = g.key?.id ?? null;
    return {
      chatId: g.chatId,
      name: g.state.name,
      color: g.state.color,
      hasImage: g.state.image.length > 0,
      status: g.rec.status,
      self,
      admin: self !== null && g.state.admins.includes(self),
      memberCount: g.state.members.length,
      pendingCount: self === null ? 0 : g.state.members.filter((m) => m !== self && this.conversationOf(g, m) === null).length,
      invitedBy: g.rec.status === 'invited' || g.rec.status === 'joining' ? g.rec.inviter : null,
      lastError: g.rec.lastError,
    };
  }

  private changeInfo(g: Group, h: G.GroupChange): GroupChangeInfo {
    const ours = (m: string) => m === g.key?.id || g.rec.formerSelves.includes(m);
    const ref = (m: string): GroupMemberRef => ({ memberId: m, name: ours(m) ? null : this.nameOf(g, m), me: ours(m) });
    const targeted = h.kind === 'added' || h.kind === 'removed' || h.kind === 'left' || h.kind === 'promoted' || h.kind === 'demoted';
    return {
      chatId: g.chatId,
      id: h.id,
      kind: h.kind,
      author: h.author,
      authorName: ours(h.author) ? null : this.nameOf(g, h.author),
      byMe: ours(h.author),
      targets: targeted ? h.members.map(ref) : [],
      name: h.kind === 'created' || h.kind === 'renamed' ? h.name : null,
      color: h.kind === 'color' ? h.color : null,
      clock: h.clock > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(h.clock),
      seenAt: g.rec.seen[seenKey(h.id)] ?? g.rec.createdAt,
    };
  }

  private messageInfo(g: Group, m: StoredGroupMessage): GroupMessageInfo {
    const decoded = G.decodeGroupChatMessage(m.entity);
    return {
      chatId: m.chatId,
      id: m.messageId,
      author: m.author,
      authorName: m.outgoing ? null : this.nameOf(g, m.author),
      outgoing: m.outgoing,
      text: decoded.ok ? decoded.value.text : '',
      clock: m.clock,
      sentAt: m.sentAt,
      receivedAt: m.receivedAt,
      replyTo: decoded.ok && decoded.value.responseTo !== '' ? decoded.value.responseTo : null,
    };
  }
}
