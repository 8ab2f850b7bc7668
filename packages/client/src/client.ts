/**
 * The Client facade: what an app developer uses. It wires the sans-I/O engine, a Store, a
 * Delivery adapter and the timers, and never loses or duplicates a message:
 *
 * - Every state change is one operation on one queue (`serial`), so the engine, memory and the
 *   store never diverge; an operation never waits for the network (publishes are fire and
 *   forget, fetches and service calls happen before or outside it).
 * - Persist before publish, decrypt on a copy: one store batch per operation, adopted only once
 *   the write has resolved (outbox-driver.ts, receive-pipeline.ts); a failed write changes nothing.
 * - Reliability (acks, retries, missing ids, the in-flight window) is decided by the protocol's
 *   `reliability` machine; the client executes its effects (due-work.ts, one wake timer).
 * - Consent: allowed / unknown (a request) / denied (consent.ts).
 */
import { reliability as rel, toHex } from '@umbra/protocol';
import { openAccount, openDataDirStore } from './account.ts';
import { ClientEvents } from './client-events.ts';
import {
  MAX_INVITATION_CHARS,
  emptyStats,
  type ClientEvent,
  type ClientEventMap,
  type ClientOptions,
  type ClientStats,
  type ConversationInfo,
  type GossipSource,
  type HistoryPage,
  type InvitationInfo,
  type MessageInfo,
  type RelationshipInfo,
  type RelationshipSigner,
} from './client-types.ts';
import { ConsentKeeper } from './consent.ts';
import type { ClientContext, ClientWiring } from './context.ts';
import { loadConversations } from './conversation-records.ts';
import { ConversationState } from './conversation-state.ts';
import { conversationInfo, historyPage, listConversations } from './conversation-views.ts';
import { DeliveryRoutes } from './delivery-routes.ts';
import { hasServiceEndpoints } from './delivery.ts';
import { DueWork } from './due-work.ts';
import { ClientError, toClientError } from './errors.ts';
import { encodeContent, textContent } from './frames.ts';
import { GossipSources } from './gossip.ts';
import { groupHost } from './group-host.ts';
import { Groups } from './group/groups.ts';
import { Invitations } from './invitations.ts';
import type { PublishedLink, ShortLinkOptions } from './invitation-links.ts';
import { messageInfo } from './message-info.ts';
import { OutboxDriver } from './outbox-driver.ts';
import { platform } from './platform.ts';
import { Publisher } from './publisher.ts';
import { markRead } from './read-state.ts';
import { ReceivePipeline, type ReceiveOutcome } from './receive-pipeline.ts';
import { relationshipInfo, relationshipSigner } from './relationship-ports.ts';
import type { Consent, MessageKey, Store } from './store.ts';
import { checkConsent, checkConversationId, checkInvitationOptions, checkOpenOptions, checkOptionsObject, checkText, clientTimings, parseHistoryOptions, parseMessageId } from './validation.ts';
import { WakeTimer, every } from './wake-timer.ts';

// The directory client names these through this module.
export type { ConversationInfo, GossipSource, RelationshipInfo } from './client-types.ts';

const TICK_INTERVAL_MS = 60_000;


export class Client {
  /** The Store the client writes; the app's other parts (ServicesDelivery, DirectoryClient) may share it. */
  readonly store: Store;
  /** group/v1: create, join and talk in groups (packages/client/src/group/). */
  readonly groups: Groups;
  private readonly ctx: ClientContext;
  private readonly state: ConversationState;
  private readonly eventHub: ClientEvents;
  private readonly outbox: OutboxDriver;
  private readonly due: DueWork;
  private readonly consent: ConsentKeeper;
  private readonly invitations: Invitations;
  private readonly receiver: ReceivePipeline;
  private readonly routes: DeliveryRoutes;
  private readonly gossip = new GossipSources();
  private readonly wake: WakeTimer;
  private readonly statsData: ClientStats = emptyStats();
  private readonly stopTimers: (() => void)[] = [];
  private readonly syncIntervalMs: number;
  private readonly ownsStore: boolean;
  private profileName: string;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly accepted: MessageKey[] = [];
  private closing = false;
  private closed = false;

  private constructor(w: ClientWiring) {
    const { policy, syncIntervalMs } = clientTimings(w.options);
    this.store = w.store;
    this.ownsStore = w.ownsStore;
    this.profileName = w.profileName;
    this.syncIntervalMs = syncIntervalMs;
    this.eventHub = new ClientEvents(() => this.statsData.listenerErrors++);
    this.wake = new WakeTimer(w.clock, (at) => this.background(this.serial(() => this.due.runDue(at))));
    this.state = new ConversationState(w.crypto, w.account, w.loaded, w.clock(), (at) => this.wake.arm(at));
    const services = hasServiceEndpoints(w.delivery) ? w.delivery : null;
    this.ctx = {
      crypto: w.crypto,
      store: w.store,
      clock: w.clock,
      policy,
      stats: this.statsData,
      state: this.state,
      events: this.eventHub,
      services,
      publisher: new Publisher(w.delivery, services, this.statsData, this.eventHub, (key) => this.onAccepted(key)),
      profileName: () => this.profileName,
      subscribeRoutes: () => this.routes.subscribe(this.state.engine.receiveRoutes()),
    };
    this.outbox = new OutboxDriver(this.ctx, this.gossip);
    this.due = new DueWork(this.ctx, this.outbox);
    this.consent = new ConsentKeeper(this.ctx, this.outbox);
    this.invitations = new Invitations(this.ctx, this.outbox);
    this.groups = new Groups(
      groupHost({
        ctx: this.ctx,
        outbox: this.outbox,
        serial: (fn) => this.serial(fn),
        assertOpen: () => this.assertOpen(),
        newCard: (ttlSeconds) => this.createInvitation({ reusable: true, ttlSeconds }),
        accept: async (text) => (await this.accept(text)).id,
      }),
    );
    this.receiver = new ReceivePipeline(this.ctx, { outbox: this.outbox, due: this.due, gossip: this.gossip, groups: this.groups });
    const receive = (bytes: Uint8Array, route: string | undefined) => this.serial(() => this.receiver.receive(bytes, route));
    this.routes = new DeliveryRoutes({ delivery: w.delivery, store: w.store, events: this.eventHub, receive, serial: (fn) => this.serial(fn) });
  }

  /** Open a client: restore the identity and every conversation from the store, or create a new identity. */
  static async open(options: ClientOptions): Promise<Client> {
    checkOpenOptions(options);
    const crypto = options.crypto ?? platform().crypto;
    const clock = options.now ?? Date.now;
    const ownsStore = options.store === undefined;
    const store = options.store ?? (await openDataDirStore(options, crypto));
    let client: Client | undefined;
    try {
      const { key, profileName } = await openAccount(store, crypto, options, clock());
      const loaded = await loadConversations(store);
      // Conversations of a pre-reliability store are migrated in one transaction before use.
      if (loaded.migration !== null) await store.write(loaded.migration);
      client = new Client({ crypto, store, ownsStore, delivery: options.delivery, account: key, profileName, loaded, clock, options });
      await client.start();
      return client;
    } catch (e) {
      client?.stopBackground();
      if (ownsStore) await store.close().catch(() => undefined);
      throw toClientError(e);
    }
  }

  private async start(): Promise<void> {
    const servicesRoute = this.ctx.services !== null ? [this.ctx.services.servicesRoute] : [];
    this.routes.subscribe([...this.state.engine.receiveRoutes(), ...servicesRoute]);
    await this.groups.load();
    await this.routes.sync();
    await this.serial(async () => {
      // A restart is a good moment to retry: whatever was in flight goes out again now.
      const now = this.ctx.clock();
      for (const [id, s] of this.state.decodedReliabilityEntries()) this.state.setReliability(id, rel.retryAllNow(s, now));
      for (const id of await this.store.outbox.conversationsWithQueued()) await this.outbox.pump(id, now);
      await this.due.runDue();
    });
    this.groups.connectPending();
    this.stopTimers.push(every(TICK_INTERVAL_MS, () => this.background(this.serial(() => this.due.tick(this.ctx.clock())))));
    if (this.syncIntervalMs > 0) this.stopTimers.push(every(this.syncIntervalMs, () => this.background(this.sync())));
  }

  // ---- identity --------------------------------------------------------------------------

  /** Hex of the account public key (Ed25519): the default inbox's identity. */
  get accountId(): string {
    return toHex(this.state.engine.account.publicKey);
  }

  get profile(): { readonly name: string } {
    return { name: this.profileName };
  }

  /** The account key (32-byte Ed25519 seed) for backup; restores the identity, not the conversations. */
  exportAccountKey(): Uint8Array {
    this.assertOpen();
    return new Uint8Array(this.state.engine.account.secretKey);
  }

  /** A conversation's relationship identity as a signing port (the directory's link proofs); the secret key never leaves the client. */
  relationshipSigner(conversationId: string): RelationshipSigner {
    this.assertOpen();
    return relationshipSigner(this.ctx.crypto, this.state, checkConversationId(conversationId), () => this.assertOpen());
  }

  /** Public facts of a conversation's relationship: the invitation it began with (hex id) and the peer's identity key. */
  relationship(conversationId: string): RelationshipInfo {
    this.assertOpen();
    return relationshipInfo(this.state, checkConversationId(conversationId));
  }

  // ---- invitations -----------------------------------------------------------------------

  /**
   * A new invitation. Single use by default; expires after ttlSeconds (default 7 days).
   * `arrivesAsRequest`: a first contact through it starts as a request (consent 'unknown', no
   * acks until accepted; directory key packages use this).
   */
  async createInvitation(options: { reusable?: boolean; ttlSeconds?: number; arrivesAsRequest?: boolean; shortLink?: ShortLinkOptions } = {}): Promise<InvitationInfo> {
    checkOptionsObject(options);
    const { shortLink, ...rest } = options;
    const checked = checkInvitationOptions(rest);
    const link = shortLink === undefined ? undefined : this.invitations.checkShortLinkOptions(shortLink);
    const endpoints = await this.invitations.endpointsForNewRelationship();
    const info = await this.serial(() => this.invitations.create(checked, endpoints));
    if (link === undefined) return info;
    const published = await this.invitations.publishLink(info.text, info.expiresAt, link);
    return { ...info, link: published.link, linkExpiresAt: published.expiresAt };
  }

  /**
   * A short link (≤ ~100 characters) for an invitation of this client: the invitation sealed
   * under a fresh key and stored at `options.service` (a directory; one token from the services
   * account, or `options.tokens`). The full `invitation.text` stays valid offline; a failure here
   * leaves it usable.
   */
  async shortLink(invitation: InvitationInfo, options: ShortLinkOptions): Promise<PublishedLink> {
    this.assertOpen();
    const checked = this.invitations.checkShortLinkOptions(options);
    if (typeof invitation?.text !== 'string' || typeof invitation.expiresAt !== 'number') throw new ClientError('invalid-argument', 'invitation must be what createInvitation returned');
    return this.invitations.publishLink(invitation.text, invitation.expiresAt, checked);
  }

  /** The default inbox's invitation (reusable, never expires); first contacts through it are requests. */
  async defaultInvitation(): Promise<string> {
    return this.serial(() => this.invitations.defaultInvitation());
  }

  /** Accept someone's invitation: opens a conversation (consent: allowed) and sends the handshake. */
  async accept(invitation: string): Promise<ConversationInfo> {
    if (typeof invitation !== 'string') throw new ClientError('invalid-argument', 'the invitation must be a string');
    if (invitation.length > MAX_INVITATION_CHARS) throw new ClientError('invitation-malformed', 'the invitation is too long');
    // A short link is resolved first (outside the queue); the invitation behind it is then checked as any other.
    const text = await this.invitations.resolveLink(invitation);
    const endpoints = await this.invitations.endpointsToAccept(text);
    return this.serial(() => this.invitations.accept(text, endpoints));
  }

  // ---- messages --------------------------------------------------------------------------

  /**
   * Send a text. Resolves once the message is on disk, as 'queued': it becomes 'sent' (event
   * 'sent') when a service or the network accepts its envelope and 'acked' when the peer's
   * client confirms it. Replying to a request accepts it.
   */
  async send(conversationId: string, text: string, options: { replyTo?: string } = {}): Promise<MessageInfo> {
    checkConversationId(conversationId);
    checkText(text);
    checkOptionsObject(options);
    const replyTo = options.replyTo === undefined ? undefined : parseMessageId(options.replyTo, 'replyTo');
    return this.serial(async () => {
      const wasRequest = this.state.requireMeta(conversationId).consent === 'unknown';
      const stored = await this.outbox.sendContent(conversationId, encodeContent(textContent(text, replyTo)), this.ctx.clock());
      if (wasRequest) await this.consent.acknowledgeAll(conversationId);
      return messageInfo(stored);
    });
  }

  /** Handle one envelope (adapters that deliver by hand, tests). `route`: where it was delivered, if known. */
  async receive(bytes: Uint8Array, route?: string): Promise<ReceiveOutcome> {
    if (!(bytes instanceof Uint8Array)) throw new ClientError('invalid-argument', 'bytes must be a Uint8Array');
    if (route !== undefined && typeof route !== 'string') throw new ClientError('invalid-argument', 'route must be a string');
    return this.serial(() => this.receiver.receive(bytes, route));
  }

  /** Fetch what the network holds for every route since the last cursor, and process it. */
  async sync(): Promise<void> {
    this.assertOpen();
    await this.routes.sync();
  }

  /** Mark incoming messages read, up to and including `upTo` (default: all). */
  async markRead(conversationId: string, upTo?: string): Promise<void> {
    checkConversationId(conversationId);
    const upToId = upTo === undefined ? undefined : parseMessageId(upTo, 'upTo');
    return this.serial(() => markRead(this.ctx, conversationId, upToId));
  }

  // ---- conversations and consent ---------------------------------------------------------

  async conversation(conversationId: string): Promise<ConversationInfo> {
    this.assertOpen();
    return conversationInfo(this.ctx, checkConversationId(conversationId));
  }

  /** Conversations, most recently active first. By default the allowed ones; requests and blocked ones on demand. */
  async conversations(options: { consent?: Consent | 'all' } = {}): Promise<ConversationInfo[]> {
    this.assertOpen();
    return listConversations(this.ctx, options?.consent ?? 'allowed');
  }

  /** First contacts through the default inbox that are not yet allowed or denied. */
  async requests(): Promise<ConversationInfo[]> {
    return this.conversations({ consent: 'unknown' });
  }

  /** Message history in Lamport order (ties by message id), newest page first. */
  async history(conversationId: string, options: { limit?: number; before?: string } = {}): Promise<HistoryPage> {
    this.assertOpen();
    checkConversationId(conversationId);
    const { limit, before } = parseHistoryOptions(options);
    return historyPage(this.ctx, conversationId, limit, before);
  }

  /**
   * allowed: accept (a request's messages are acknowledged now); denied: block — nothing from
   * this peer is stored or answered, and our unsent messages to it are marked failed.
   */
  async setConsent(conversationId: string, consent: Consent): Promise<void> {
    checkConversationId(conversationId);
    checkConsent(consent);
    return this.serial(() => this.consent.set(conversationId, consent));
  }

  acceptRequest(conversationId: string): Promise<void> {
    return this.setConsent(conversationId, 'allowed');
  }

  block(conversationId: string): Promise<void> {
    return this.setConsent(conversationId, 'denied');
  }

  /** Outgoing messages not yet acknowledged (all conversations, or one). */
  async pendingCount(conversationId?: string): Promise<number> {
    this.assertOpen();
    if (conversationId !== undefined) checkConversationId(conversationId);
    return this.store.outbox.pendingCount(conversationId);
  }

  stats(): ClientStats {
    return structuredClone(this.statsData);
  }

  /** Registers a gossip source (a DirectoryClient); its gossip rides along with outgoing messages. */
  addGossipSource(source: GossipSource): void {
    this.gossip.add(source);
  }

  removeGossipSource(source: GossipSource): void {
    this.gossip.remove(source);
  }

  // ---- events ----------------------------------------------------------------------------

  on<K extends keyof ClientEventMap>(event: K, listener: (data: ClientEventMap[K]) => void): this {
    this.eventHub.on(event, listener);
    return this;
  }

  once<K extends keyof ClientEventMap>(event: K, listener: (data: ClientEventMap[K]) => void): this {
    this.eventHub.once(event, listener);
    return this;
  }

  off<K extends keyof ClientEventMap>(event: K, listener: (data: ClientEventMap[K]) => void): this {
    this.eventHub.off(event, listener);
    return this;
  }

  /** Every event as an async iterator (ends when the client closes; keeps the last 10,000 unread events). */
  events(): AsyncIterableIterator<ClientEvent> {
    return this.eventHub.iterator();
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** Runs fn as one operation, after every operation queued before it; rejects once closed. */
  private serial<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.chain.then(() => {
      if (this.closed) throw new ClientError('client-closed', 'the client is closed');
      return fn();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private assertOpen(): void {
    if (this.closed) throw new ClientError('client-closed', 'the client is closed');
  }

  /** Work nobody awaits (timers, subscriptions): its failure is an 'error' event. */
  private background(p: Promise<unknown>): void {
    p.catch((e) => this.eventHub.background(e));
  }

  private stopBackground(): void {
    this.wake.stop();
    this.state.engine.stopHintWork();
    for (const stop of this.stopTimers.splice(0)) stop();
    this.routes.close();
  }

  /** Accepted envelopes are marked 'sent' in one operation per burst (one store write). */
  private onAccepted(key: MessageKey): void {
    this.accepted.push(key);
    if (this.accepted.length > 1) return; // the queued operation takes this one too
    this.background(this.serial(() => this.outbox.markSent(this.accepted.splice(0))));
  }

  /** Resolves when every queued operation has run (tests, orderly shutdown). */
  async settle(): Promise<void> {
    // A publish that finishes queues its 'sent' mark: settle until nothing new was queued.
    for (;;) {
      const chain = this.chain;
      await chain.catch(() => undefined);
      await this.ctx.publisher.settle();
      if (this.chain === chain) return;
    }
  }

  /** Stop timers and subscriptions, finish queued work, close the store (if the client opened it). */
  async close(): Promise<void> {
    if (this.closing) return this.settle();
    this.closing = true;
    this.routes.stop();
    this.wake.stop();
    // Acks queued in the last ackDelayMs would be lost with their timer, and a short-lived client
    // (the CLI) would then never acknowledge anything: the peer would retry forever. Send them now.
    await this.serial(() => this.due.flushAcks()).catch((e) => this.eventHub.background(e));
    this.stopBackground();
    await this.settle();
    this.closed = true;
    this.eventHub.end();
    if (this.ownsStore) await this.store.close();
  }
}

