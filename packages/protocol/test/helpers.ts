/** Shared test helpers: a pair of engines with a started conversation. */
import { Engine, nobleProvider, wire, serializeConversation, type CryptoProvider } from '../src/index.ts';

export const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);

export function textBody(body: string) {
  return {
    case: 'content' as const,
    value: wire.create(wire.ContentSchema, { kind: { case: 'text', value: wire.create(wire.TextSchema, { body }) } }),
  };
}

export function textOf(frame: wire.PrivateV1Frame): string | undefined {
  return frame.body.case === 'content' && frame.body.value.kind.case === 'text' ? frame.body.value.kind.value.body : undefined;
}

/** Bob invites, Alice accepts, Bob receives the handshake. */
export async function startedPair(crypto: CryptoProvider = nobleProvider, now = T0, reusable = false) {
  const bob = Engine.create(crypto, now);
  const alice = Engine.create(crypto, now);
  const invitation = bob.createInvitation({ nowMs: now, reusable, ttlSeconds: 3600, presentation: { name: 'Bob' } });
  const accepted = await alice.acceptInvitation(invitation.text, { nowMs: now, presentation: { name: 'Alice' } });
  const first = await bob.receive(accepted.outgoing.envelope, now);
  if (first.kind !== 'readable') throw new Error(`handshake failed: ${JSON.stringify(first)}`);
  return { alice, bob, id: accepted.conversation.id, invitation, accepted };
}

/** Serialized state of every conversation of an engine, for "state unchanged" assertions. */
export function snapshot(engine: Engine): string {
  return engine
    .conversations()
    .map((c) => Buffer.from(serializeConversation(c)).toString('hex'))
    .sort()
    .join('|') + `#${engine.hintTableSize()}`;
}
