/**
 * Read-only views for the app: conversation infos and history pages, from memory (meta, engine)
 * and the store (counts, messages). They do not queue behind operations: a view may already
 * show a write that the operation making it has not finished adopting.
 */
import { safetyNumber } from '@umbra/protocol';
import type { ConversationInfo, HistoryPage } from './client-types.ts';
import type { ClientContext } from './context.ts';
import { ClientError } from './errors.ts';
import { messageInfo } from './message-info.ts';
import type { Consent, HistoryPosition } from './store.ts';
import { historyCursor } from './validation.ts';

export async function conversationInfo(ctx: Pick<ClientContext, 'state' | 'store' | 'crypto'>, id: string): Promise<ConversationInfo> {
  const meta = ctx.state.requireMeta(id);
  const c = ctx.state.conversation(id);
  const [unreadCount, pendingCount] = await Promise.all([ctx.store.messages.unreadCount(id), ctx.store.outbox.pendingCount(id)]);
  return {
    id,
    peerName: c.peerPresentation.name,
    consent: meta.consent,
    origin: meta.origin,
    createdAt: meta.createdAt,
    lastActivityAt: meta.lastActivityAt,
    unreadCount,
    pendingCount,
    safetyNumber: safetyNumber(ctx.crypto, c.identity.publicKey, c.peerIdentity),
    refusal: ctx.state.rstate(id).refusal,
  };
}

/** Conversations with this consent (or all), most recently active first. */
export async function listConversations(ctx: Pick<ClientContext, 'state' | 'store' | 'crypto'>, want: Consent | 'all'): Promise<ConversationInfo[]> {
  if (!['allowed', 'unknown', 'denied', 'all'].includes(want)) throw new ClientError('invalid-argument', 'consent must be allowed, unknown, denied or all');
  const metas = ctx.state
    .allMetas()
    .filter((m) => (want === 'all' || m.consent === want) && ctx.state.engine.conversation(m.id) !== undefined)
    .sort((a, b) => b.lastActivityAt - a.lastActivityAt || (a.id < b.id ? -1 : 1));
  return Promise.all(metas.map((m) => conversationInfo(ctx, m.id)));
}

/** One page of 1:1 history, oldest first, and the cursor of the page before it. */
export async function historyPage(ctx: Pick<ClientContext, 'state' | 'store'>, id: string, limit: number, before: HistoryPosition | null): Promise<HistoryPage> {
  ctx.state.requireMeta(id);
  const rows = await ctx.store.messages.history(id, limit + 1, before);
  const page = rows.slice(0, limit).reverse();
  const oldest = page[0];
  return { messages: page.map(messageInfo), cursor: rows.length > limit && oldest !== undefined ? historyCursor(oldest) : null };
}
