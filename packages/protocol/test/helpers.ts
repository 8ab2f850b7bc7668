/** Shared test helpers: a pair of engines with a started conversation. */
import { Engine, nobleProvider, wire, serializeConversation, type CryptoProvider, type PrivateConversation } from '../src/index.ts';
import { syntheticConversation } from './synthetic.ts';

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

/** Bob's single-use invitation, answered by Alice (accepted) and then by Carol (too late). */
export async function usedInvitation(crypto: CryptoProvider = nobleProvider, now = T0) {
  const bob = Engine.create(crypto, now);
  const inv = bob.createInvitation({ nowMs: now, reusable: false, ttlSeconds: 600, presentation: { name: 'Bob' } });
  const alice = Engine.create(crypto, now);
  const carol = Engine.create(crypto, now);
  const a = await alice.acceptInvitation(inv.text, { nowMs: now, presentation: { name: 'Alice' } });
  const c = await carol.acceptInvitation(inv.text, { nowMs: now, presentation: { name: 'Carol' } });
  const first = await bob.receive(a.outgoing.envelope, now);
  if (first.kind !== 'readable') throw new Error(`handshake failed: ${JSON.stringify(first)}`);
  return { bob, alice, carol, a, c, inv };
}

/**
 * Bob with `peers` real conversations (one reusable invitation, so one route) and `synthetic`
 * others; the real ones last in `records`, so indexing slices reach them at the end of a pass.
 */
export async function bobWithPeers(crypto: CryptoProvider, peers: number, synthetic: number) {
  const bob = Engine.create(crypto, T0);
  const inv = bob.createInvitation({ nowMs: T0, reusable: true, ttlSeconds: 3600, presentation: { name: 'Bob' } });
  const made: { engine: Engine; id: string; route: string }[] = [];
  for (let i = 0; i < peers; i++) {
    const engine = Engine.create(crypto, T0);
    const acc = await engine.acceptInvitation(inv.text, { nowMs: T0, presentation: { name: `peer ${i}` } });
    const first = await bob.receive(acc.outgoing.envelope, T0);
    if (first.kind !== 'readable') throw new Error(`handshake failed: ${JSON.stringify(first)}`);
    const own = bob.conversation(acc.conversation.id)!.ownEndpoints[0]!;
    if (own.endpoint.case !== 'route') throw new Error('a reusable invitation answers on a route');
    made.push({ engine, id: acc.conversation.id, route: own.endpoint.value });
  }
  const others: PrivateConversation[] = Array.from({ length: synthetic }, (_, i) => syntheticConversation(crypto, i, T0));
  return { bob, peers: made, records: [...others, ...bob.conversations()] };
}
