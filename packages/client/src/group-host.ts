/**
 * The GroupHost the client gives its Groups: the store, the clock, the operation queue,
 * pairwise sending, and our sessions as peers and bindings. Identity secrets stay in the
 * engine: bindings are signed here, never handed out.
 */
import { group as G, toHex } from '@umbra/protocol';
import type { ClientContext } from './context.ts';
import type { GroupHost } from './group/groups.ts';
import type { OutboxDriver } from './outbox-driver.ts';

export interface GroupHostParts {
  readonly ctx: ClientContext;
  readonly outbox: OutboxDriver;
  serial<T>(fn: () => T | Promise<T>): Promise<T>;
  assertOpen(): void;
  newCard(ttlSeconds: number): Promise<{ readonly text: string; readonly invitationId: string }>;
  accept(card: string): Promise<string>;
}

export function groupHost(parts: GroupHostParts): GroupHost {
  const { ctx } = parts;
  return {
    crypto: ctx.crypto,
    store: ctx.store,
    now: () => ctx.clock(),
    serial: (fn) => parts.serial(fn),
    assertOpen: () => parts.assertOpen(),
    sessions: {
      peer: (id) => {
        const c = ctx.state.engine.conversation(id);
        return c === undefined ? undefined : { identityKey: c.peerIdentity, name: c.peerPresentation.name };
      },
      bind: (session, chatId, groupKey) => {
        const engine = ctx.state.engine;
        const identity =
          'conversationId' in session ? engine.conversation(session.conversationId)?.identity : engine.allInboxes().find((i) => toHex(i.invitationId) === session.invitationId)?.identity;
        return identity === undefined ? undefined : G.createGroupBinding(ctx.crypto, chatId, groupKey, identity);
      },
      newCard: (ttlSeconds) => parts.newCard(ttlSeconds),
      accept: (text) => parts.accept(text),
    },
    sendFramesLocked: (frames, extra) => parts.outbox.sendGroupFrames(frames, extra),
    emit: (e) => ctx.events.emit(e),
    emitError: (e) => ctx.events.error(e),
  };
}
