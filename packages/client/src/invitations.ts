/**
 * Invitations, inside client operations: making them (an inbox), and accepting one (a new
 * conversation with its handshake in the outbox). The engine changes these at once, so a write
 * that fails rebuilds the engine from the store: memory never runs ahead of the disk.
 * Service endpoints for a new relationship are fetched before the operation (network calls
 * never hold the operation queue).
 */
import { INVITATION_LINK_KEY_BYTES, invitationLink, looksLikeInvitationLink, reliability as rel, toHex, type Inbox, type wire } from '@umbra/protocol';
import type { ConversationInfo, InvitationInfo } from './client-types.ts';
import type { ClientContext } from './context.ts';
import { requestInboxKey, storedInbox } from './conversation-records.ts';
import { conversationInfo } from './conversation-views.ts';
import { ClientError, toClientError } from './errors.ts';
import { fetchInvitationFromLink, isLinkTokenSource, publishInvitationLink, type PublishedLink, type ShortLinkOptions } from './invitation-links.ts';
import type { OutboxDriver } from './outbox-driver.ts';
import type { ConversationMeta, OutboxEntry, StoreBatch } from './store.ts';

export class Invitations {
  constructor(
    private readonly ctx: ClientContext,
    private readonly outbox: OutboxDriver,
  ) {}

  /** Service endpoints for a new relationship, when the delivery offers them (outside the operation queue). */
  async endpointsForNewRelationship(): Promise<wire.DeliveryEndpoint[] | undefined> {
    if (this.ctx.services === null) return undefined;
    try {
      return await this.ctx.services.endpointsForNewRelationship();
    } catch (e) {
      throw new ClientError('delivery-failed', `no receiving-service addresses: ${(e as Error)?.message ?? e}`, { cause: e });
    }
  }

  /** For accept: check the invitation first (a bad one fails without asking any service), then get endpoints. */
  async endpointsToAccept(invitation: string): Promise<wire.DeliveryEndpoint[] | undefined> {
    if (this.ctx.services === null) return undefined;
    this.parse(invitation, this.ctx.clock());
    return this.endpointsForNewRelationship();
  }

  async create(options: { reusable: boolean; ttlSeconds: number; arrivesAsRequest: boolean }, endpoints: wire.DeliveryEndpoint[] | undefined): Promise<InvitationInfo> {
    const now = this.ctx.clock();
    const r = this.ctx.state.engine.createInvitation({ nowMs: now, reusable: options.reusable, ttlSeconds: options.ttlSeconds, presentation: { name: this.ctx.profileName() }, ...(endpoints !== undefined ? { endpoints } : {}) });
    const invitationId = toHex(r.inbox.invitationId);
    // Marked in the same transaction as the inbox, so the first contact is classified by it.
    const cursors = options.arrivesAsRequest ? [{ route: requestInboxKey(invitationId), cursor: '1' }] : [];
    await this.persistEngineChange({ inboxes: [storedInbox(r.inbox, now)], cursors }, now);
    this.ctx.subscribeRoutes();
    return { text: r.text, invitationId, expiresAt: r.inbox.expiresAt };
  }

  async defaultInvitation(): Promise<string> {
    const now = this.ctx.clock();
    const r = this.ctx.state.engine.defaultInbox(now, { name: this.ctx.profileName() });
    if (r.changes.inboxes.length > 0) {
      await this.persistEngineChange({ inboxes: r.changes.inboxes.map((i: Inbox) => storedInbox(i, now)) }, now);
      this.ctx.subscribeRoutes();
    }
    return r.text;
  }

  async accept(invitation: string, endpoints: wire.DeliveryEndpoint[] | undefined): Promise<ConversationInfo> {
    const { state } = this.ctx;
    const now = this.ctx.clock();
    const parsed = this.parse(invitation, now);
    const own = state.engine.allInboxes().some((i) => toHex(i.identity.publicKey) === toHex(parsed.identityKey));
    if (own) throw new ClientError('invitation-own', 'this is one of your own invitations');
    let r;
    try {
      r = await state.engine.acceptInvitation(invitation, { nowMs: now, presentation: { name: this.ctx.profileName() }, ...(endpoints !== undefined ? { endpoints } : {}) });
    } catch (e) {
      throw toClientError(e);
    }
    const meta: ConversationMeta = { id: r.conversation.id, consent: 'allowed', origin: 'accepted', lamport: 0, recentIds: [], createdAt: now, lastActivityAt: now };
    const reliability = rel.onHandshakeSent(rel.EMPTY_RELIABILITY, r.outgoing.messageId, now, this.ctx.policy);
    const handshake: OutboxEntry = {
      conversationId: meta.id,
      messageId: r.outgoing.messageId,
      kind: 'handshake',
      lamport: 0,
      envelope: r.outgoing.envelope,
      hintHour: -1,
      hintIndex: -1,
      attempts: 1,
      nextAttemptAt: reliability.handshake!.nextAttemptAt,
      createdAt: now,
    };
    const stored = state.record(meta, r.conversation, reliability);
    try {
      // acceptInvitation has already changed the engine (changes: null).
      await this.outbox.commitAndPublish({ envelope: r.outgoing.envelope, conversation: r.conversation, changes: null }, { conversations: [stored], outboxPut: [handshake] }, () => {
        state.adopt(stored, reliability);
        this.ctx.subscribeRoutes(); // before the handshake goes out: its answer comes to the new routes
      });
    } catch (e) {
      await state.reload(this.ctx.store, this.ctx.clock());
      throw toClientError(e);
    }
    const info = await conversationInfo(this.ctx, meta.id);
    this.ctx.events.emit({ type: 'conversation-started', data: info });
    return info;
  }

  checkShortLinkOptions(options: ShortLinkOptions): ShortLinkOptions & { tokens: NonNullable<ShortLinkOptions['tokens']> } {
    if (options === null || typeof options !== 'object') throw new ClientError('invalid-argument', 'shortLink must be an object');
    if (typeof options.service !== 'string' || options.service.length === 0 || options.service.length > 200) throw new ClientError('invalid-argument', 'shortLink.service must be a directory URL');
    try {
      invitationLink(options.service, new Uint8Array(INVITATION_LINK_KEY_BYTES)); // the URL's checks, before anything is created
    } catch (e) {
      throw toClientError(e);
    }
    const tokens = options.tokens ?? (isLinkTokenSource(this.ctx.services) ? this.ctx.services : undefined);
    if (tokens === undefined) throw new ClientError('invalid-argument', 'a short link costs a token: use the services delivery or pass shortLink.tokens');
    if (!isLinkTokenSource(tokens)) throw new ClientError('invalid-argument', 'shortLink.tokens must have tokensFor(info, count)');
    return { service: options.service, tokens };
  }

  /** Stores the sealed invitation and makes its link (outside the operation queue: network only). */
  publishLink(text: string, expiresAt: number, options: ShortLinkOptions & { tokens: NonNullable<ShortLinkOptions['tokens']> }): Promise<PublishedLink> {
    return publishInvitationLink(this.ctx.crypto, text, expiresAt, this.ctx.clock(), options);
  }

  /** A short link → the invitation behind it (fetched and opened, not yet verified); anything else as it is. */
  async resolveLink(invitation: string): Promise<string> {
    return looksLikeInvitationLink(invitation) ? fetchInvitationFromLink(this.ctx.crypto, invitation.trim()) : invitation;
  }

  private parse(invitation: string, now: number) {
    try {
      return this.ctx.state.engine.parseInvitation(invitation, now);
    } catch (e) {
      throw toClientError(e);
    }
  }

  /** For engine calls that changed the engine at once: if the write fails, rebuild the engine from the store. */
  private async persistEngineChange(batch: StoreBatch, now: number): Promise<void> {
    try {
      await this.ctx.store.write(batch);
    } catch (e) {
      await this.ctx.state.reload(this.ctx.store, now);
      throw toClientError(e);
    }
  }
}
