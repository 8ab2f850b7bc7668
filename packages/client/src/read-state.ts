/** Read state, inside a client operation: incoming messages marked read up to a position. */
import { MESSAGE_ID_BYTES } from './client-types.ts';
import type { ClientContext } from './context.ts';
import { ClientError } from './errors.ts';

/** Marks incoming messages read up to and including `upToId` (all when undefined). */
export async function markRead(ctx: Pick<ClientContext, 'state' | 'store'>, conversationId: string, upToId: Uint8Array | undefined): Promise<void> {
  ctx.state.requireMeta(conversationId);
  let position = { lamport: Number.MAX_SAFE_INTEGER, messageId: new Uint8Array(MESSAGE_ID_BYTES).fill(0xff) as Uint8Array };
  if (upToId !== undefined) {
    const msg = await ctx.store.messages.get(conversationId, upToId);
    if (msg === null) throw new ClientError('invalid-argument', 'upTo is not a message of this conversation');
    position = { lamport: msg.lamport, messageId: upToId };
  }
  await ctx.store.write({ markRead: [{ conversationId, upToLamport: position.lamport, upToMessageId: position.messageId }] });
}
