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
import { fromHex, group as G, toHex, wire } from '@umbra/protocol';
import { ClientError } from '../errors.ts';
import type { StoreBatch, StoredGroupEvent, StoredGroupMessage } from '../store.ts';
import { cloneGroup, encodeGroupFrameBody, foldFields, loadGroup, newRecord, seenKey, storedGroup, type Card, type Group } from './record.ts';
import {
  GroupError,
  type GroupAddOutcome,
  type GroupAddResult,
  type GroupChangeInfo,
  type GroupEvent,
  type GroupHistoryPage,
  type GroupHost,
  type GroupInfo,
  type GroupInviteResult,
  type GroupMemberInfo,
  type GroupMemberRef,
  type GroupMessageInfo,
  type GroupRecipientInfo,
  type GroupRejectedInfo,
  type GroupSendResult,
  type GroupSessionRef,
} from './types.ts';

export * from './types.ts';
export { decodeGroupFrameBody, encodeGroupFrameBody } from './record.ts';

// ---- limits ------------------------------------------------------------------------------

/** Cards relayed per invite frame (a card is ≈ 1.7 KB; frames must fit 64 KiB with the history). */
export const CARDS_PER_FRAME = 12;
/** Card validity (the longest the client allows). */
const CARD_TTL_SECONDS = 366 * 24 * 3600;
/** Group messages kept for a member we cannot reach yet. */
const MAX_DEFERRED_PER_MEMBER = 1000;
/** Updates held because they arrived before the session's binding. */
const MAX_HELD = 256;

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
  async load(): Promise<void> {
    const now = this.host.now();
    for (const { group, events } of await this.host.store.groups.all()) this.groups.set(group.chatId, loadGroup(group, events, now));
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
  async history(chatId: string, options: { limit?: number; before?: string } = {}): Promise<GroupHistoryPage> {
    this.host.assertOpen();
    const g = this.require(chatId);
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ClientError('invalid-argument', 'limit must be an integer from 1 to 1000');
    let before: number | null = null;
    if (options.before !== undefined) {
      if (typeof options.before !== 'string' || !/^\d{1,15}$/.test(options.before)) throw new ClientError('invalid-argument', 'before must be a cursor returned by history()');
      before = Number(options.before);
    }
    const rows = await this.host.store.groups.messages(chatId, limit + 1, before);
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
    return this.host.serial(async () => {
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
      await this.flush([g], built.events, [], frames);
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
    return this.host.serial(async () => {
      const g = cloneGroup(this.requireMember(chatId));
      const results: { conversationId: string; outcome: GroupAddOutcome }[] = [];
      for (const c of convs) {
        const bound = g.rec.bindings[c];
        if (bound !== undefined && g.state.members.includes(bound)) throw new GroupError('already-member', `the peer of conversation ${c} is already a member of this group`);
        results.push({ conversationId: c, outcome: g.rec.invites.includes(c) ? 'already-invited' : bound !== undefined ? 're-invited' : 'invited' });
      }
      const fresh = results.filter((r) => r.outcome !== 'already-invited').map((r) => r.conversationId);
      g.rec.invites.push(...fresh);
      if (fresh.length > 0) await this.flush([g], [], [], fresh.map((c) => this.inviteFrame(g, c)));
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
    return this.host.serial(async () => {
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
      await this.flush([g], [], [], frames);
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
    return this.host.serial(async () => {
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
      await this.flush(deferred ? [g] : [], [], [stored], frames);
      this.groups.set(chatId, g);
      return { ...this.messageInfo(g, stored), recipients };
    });
  }

  // ---- receiving (called by the client inside its receive transaction) --------------------

  /**
   * @internal The group part of one receive: `frame` for each group frame (handled one after
   * another, in call order, on a copy of the groups), then `batch` goes into the receive's
   * transaction, and `commit` adopts the copies once that transaction is durable. Without
   * commit (a failed write), nothing changes. The follow-up sends (updates after a local
   * change, hellos, relayed cards, deferred messages) run as the next client operation.
   */
  beginReceive(now: number): { frame(conversationId: string, frame: wire.GroupFrame, peerIdentity: Uint8Array): Promise<void>; batch(): StoreBatch; commit(): void } {
    const w: ReceiveWork = { now, work: new Map(), newEvents: [], messages: [], messageIds: new Set(), emits: [], updates: new Map(), dirty: new Set() };
    let previous: Promise<void> = Promise.resolve();
    return {
      frame: (conversationId, frame, peerIdentity) => {
        const run = previous.then(async () => {
          try {
            await this.onFrame(w, conversationId, frame, peerIdentity);
          } catch (e) {
            // The store failing is the receive failing (it is retried); nothing else a frame does may break the 1:1 path.
            if (e instanceof ClientError && (e.code.startsWith('store-') || e.code === 'client-closed')) throw e;
            this.host.emitError(new ClientError('internal', `group frame failed: ${(e as Error).message}`, { cause: e }));
          }
        });
        previous = run.catch(() => undefined);
        return run;
      },
      batch: () => ({
        groups: [...w.work.values()].filter((g) => w.dirty.has(g.chatId)).map((g) => storedGroup(g, now)),
        groupEvents: w.newEvents,
        groupMessages: w.messages,
      }),
      commit: () => {
        for (const g of w.work.values()) this.groups.set(g.chatId, g);
        for (const e of w.emits) this.host.emit(e);
        const dirty = [...w.work.keys()].filter((chatId) => w.dirty.has(chatId));
        if (dirty.length === 0) return;
        this.host.serial(() => this.followUp(dirty, w.updates)).catch((e: unknown) => this.backgroundError(e, 'group follow-up sends failed'));
      },
    };
  }

  /** What a receive leaves us owing (from the groups as they are now): persisted with the frames, then sent. */
  private async followUp(chatIds: readonly string[], updates: ReadonlyMap<string, readonly string[]>): Promise<void> {
    const frames: { conversationId: string; frame: Uint8Array }[] = [];
    const changed: Group[] = [];
    for (const chatId of chatIds) {
      const base = this.groups.get(chatId);
      if (base === undefined) continue;
      const g = cloneGroup(base);
      const recipients = updates.get(chatId);
      if (recipients !== undefined) frames.push(...this.updateFrames(g, recipients));
      frames.push(...(await this.reconcile(g)));
      changed.push(g);
    }
    if (changed.length === 0) return;
    await this.flush(changed, [], [], frames);
    this.connectPending();
  }

  /** A failure outside any caller's operation: reported, except the client closing under it. */
  private backgroundError(e: unknown, what: string): void {
    if (e instanceof ClientError && (e.code === 'client-closed' || e.code === 'store-closed')) return;
    this.host.emitError(e instanceof ClientError ? e : new ClientError('internal', `${what}: ${(e as Error).message}`, { cause: e }));
  }

  private async onFrame(w: ReceiveWork, conversationId: string, frame: wire.GroupFrame, peerIdentity: Uint8Array): Promise<void> {
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
    const delta = G.foldDelta({ state: g.state, history: g.history, rejected: g.rejected }, f);
    Object.assign(g, foldFields(f));
    const seen: Record<string, number> = {};
    for (const h of g.history) seen[seenKey(h.id)] = g.rec.seen[seenKey(h.id)] ?? now;
    g.rec.seen = seen;
    const out: GroupEvent[] = delta.applied.map((h) => ({ type: 'group-change', data: this.changeInfo(g, h) }));
    for (const r of delta.rejected) {
      g.rec.lastError = r.detail;
      out.push({ type: 'group-rejected', data: { chatId: g.chatId, reason: r.reason, detail: r.detail, author: r.event.from, eventId: toHex(r.event.id), conversationId } });
    }
    if (delta.rejected.length === 0 && out.length > 0) g.rec.lastError = null;
    if (g.key !== null) g.rec.status = G.statusAfterFold(g.rec.status, g.state.members.includes(g.key.id));
    if (delta.stateChanged) out.push({ type: 'group-updated', data: this.info(g) });
    return out;
  }

  /** Fold events we hold (or just built) with nothing incoming. */
  private refold(chatId: string, events: readonly G.GroupEvent[], now: number): G.Folded {
    const f = G.mergeGroupEvents(chatId, events, [], now);
    if (!f.ok) throw new ClientError('internal', `a group's own events do not fold (${f.code})`);
    return f;
  }

  private async onInvite(w: ReceiveWork, conversationId: string, bytes: Uint8Array, peerIdentity: Uint8Array): Promise<void> {
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
        const ours = new Set([...g.rec.formerSelves, ...(g.key !== null ? [g.key.id] : [])]);
        if (!G.isReinvitation(this.host.crypto, { chatId, held: g.events, invite: decoded.value, ours, peerIdentity, nowMs: w.now })) return;
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
        await this.bindSession(w, g, conversationId, v.memberId, false);
      }
    }
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

  /** Bind a session to a member by the protocol's rule (G.decideSessionBinding); a refusal is reported ('binding-redirect'). */
  private async bindSession(w: ReceiveWork, g: Group, conversationId: string, memberId: string, invited: boolean): Promise<boolean> {
    const current = g.rec.bindings[conversationId];
    const decision = G.decideSessionBinding({ members: g.state.members, history: g.history, current, next: memberId, invited });
    if (decision === 'redirect') {
      this.diagnose(w, g, { reason: 'binding-redirect', detail: 'a binding tried to move a session to another group key', author: current ?? null, eventId: null, conversationId });
      return false;
    }
    if (decision === 'bind') await this.bind(w, g, conversationId, memberId);
    return true;
  }

  private async bind(w: ReceiveWork, g: Group, conversationId: string, memberId: string): Promise<void> {
    if (g.rec.bindings[conversationId] === memberId) return;
    g.rec.bindings[conversationId] = memberId;
    // Updates that arrived before this binding can be read now.
    const held = g.rec.held.filter(([c]) => c === conversationId);
    if (held.length > 0) {
      g.rec.held = g.rec.held.filter(([c]) => c !== conversationId);
      for (const [, hex] of held) await this.onUpdate(w, conversationId, fromHex(hex)!);
    }
  }

  private async onUpdate(w: ReceiveWork, conversationId: string, bytes: Uint8Array): Promise<void> {
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
    if (w.messageIds.has(`${chatId}/${id}`) || (await this.host.store.groups.message(chatId, id)) !== null) return;
    w.messageIds.add(`${chatId}/${id}`);
    const clock = m.value.clock > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(m.value.clock);
    const sentAt = m.value.timestamp > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(m.value.timestamp);
    g.rec.messageClock = Math.max(g.rec.messageClock, clock);
    const stored: StoredGroupMessage = { chatId, messageId: id, author, outgoing: false, clock, sentAt, receivedAt: w.now, entity: entity.value };
    w.messages.push(stored);
    w.emits.push({ type: 'group-message', data: this.messageInfo(g, stored) });
  }

  private async onBinding(w: ReceiveWork, conversationId: string, bytes: Uint8Array, peerIdentity: Uint8Array): Promise<void> {
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
    if (!(await this.bindSession(w, g, conversationId, checked.memberId, true))) return;
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
   * and have no session with them). Synchronous: it starts the work in the background (outside
   * the client's lock) and returns; idempotent.
   */
  connectPending(): void {
    if (this.connecting) {
      this.connectAgain = true;
      return;
    }
    this.connecting = true;
    void this.connectLoop()
      .catch((e: unknown) => this.backgroundError(e, 'opening group sessions failed'))
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
        await this.host.serial(async () => {
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
          await this.flush([g], [], [], await this.reconcile(g));
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
  private async reconcile(g: Group): Promise<{ conversationId: string; frame: Uint8Array }[]> {
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
        const msg = await this.host.store.groups.message(g.chatId, id);
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
    return this.host.serial(async () => {
      const g = cloneGroup(this.requireMember(chatId));
      const now = this.host.now();
      const before = g.state.members;
      const built = build({ chatId, events: g.events, key: g.key! }, now, g);
      if (!built.ok) throw new GroupError(built.code === 'not-allowed' ? 'not-allowed' : 'rejected', built.reason);
      const emits = this.adopt(g, this.refold(chatId, built.events, now), now, null).filter((e) => e.type !== 'group-updated');
      if (!g.state.members.includes(g.key!.id)) g.rec.status = 'left';
      const frames = this.updateFrames(g, [...before, ...g.state.members]);
      frames.push(...(await this.reconcile(g)));
      await this.flush([g], built.newEvents, [], frames);
      const info = this.info(g);
      for (const e of emits) this.host.emit(e);
      this.host.emit({ type: 'group-updated', data: info });
      return info;
    });
  }

  /** Persist the groups, events and messages with the frames in one transaction; once durable, adopt them. */
  private async flush(groups: readonly Group[], events: readonly G.GroupEvent[], messages: readonly StoredGroupMessage[], frames: readonly { conversationId: string; frame: Uint8Array }[]): Promise<void> {
    const now = this.host.now();
    await this.host.sendFramesLocked(frames, {
      groups: groups.map((g) => storedGroup(g, now)),
      groupEvents: events.map((e) => ({ chatId: e.chatId, wire: G.eventWireBytes(e) })),
      groupMessages: [...messages],
    });
    for (const g of groups) this.groups.set(g.chatId, g);
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
