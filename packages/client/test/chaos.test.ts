/**
 * Chaos network: 20% loss, 20% reorder, 10% duplication on every envelope (content, acks,
 * retransmission requests, both directions). 10,000 messages, spread over five conversations
 * between two clients and sent both ways at once, must each be delivered exactly once, and each
 * conversation's history must list them in send order (the Lamport order the API promises).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryNetwork, type Client } from '../src/node.ts';
import { connect, openMemoryClient, waitFor } from './helpers.ts';

const TOTAL = Number(process.env.UMBRA_CHAOS_MESSAGES ?? 10_000);
const CONVERSATIONS = 5;

async function incomingTexts(client: Client, conversationId: string): Promise<string[]> {
  const all: string[] = [];
  let before: string | undefined;
  for (;;) {
    const page = await client.history(conversationId, { limit: 1000, ...(before !== undefined ? { before } : {}) });
    all.unshift(...page.messages.filter((m) => !m.outgoing).map((m) => m.text!));
    if (page.cursor === null) return all;
    before = page.cursor;
  }
}

test(`chaos: ${TOTAL} messages over 20% loss, 20% reorder, 10% duplication → each delivered exactly once, in order`, { timeout: 180_000 }, async () => {
  const net = new MemoryNetwork({ seed: 42 });
  const alice = await openMemoryClient(net.adapter(), 'Alice');
  const bob = await openMemoryClient(net.adapter(), 'Bob');
  const convs: string[] = [];
  for (let c = 0; c < CONVERSATIONS; c++) convs.push((await connect(alice, bob)).id);
  net.setChaos({ loss: 0.2, reorder: 0.2, duplicate: 0.1, delayMs: [0, 2], reorderDelayMs: [3, 15] });

  const seen = new Map<string, number>();
  const count = (m: { conversationId: string; text: string | null }) => {
    const k = `${m.conversationId}/${m.text}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  };
  alice.on('message', count);
  bob.on('message', count);

  const perConversation = Math.floor(TOTAL / CONVERSATIONS);
  const started = Date.now();
  // In each conversation Alice sends 4/5 of the messages and Bob 1/5, interleaved.
  await Promise.all(
    convs.map(async (id) => {
      for (let i = 0; i < perConversation; i++) {
        if (i % 5 === 4) await bob.send(id, `b${i}`);
        else await alice.send(id, `a${i}`);
      }
    }),
  );
  await waitFor(() => seen.size === perConversation * CONVERSATIONS, 150_000, 'every message');
  await waitFor(async () => (await alice.pendingCount()) === 0 && (await bob.pendingCount()) === 0, 30_000, 'every ack');
  const elapsed = Date.now() - started;

  for (const [k, n] of seen) assert.equal(n, 1, `${k} delivered ${n} times`);
  for (const id of convs) {
    const expectAtBob = Array.from({ length: perConversation }, (_, i) => i).filter((i) => i % 5 !== 4).map((i) => `a${i}`);
    const expectAtAlice = Array.from({ length: perConversation }, (_, i) => i).filter((i) => i % 5 === 4).map((i) => `b${i}`);
    assert.deepEqual(await incomingTexts(bob, id), expectAtBob);
    assert.deepEqual(await incomingTexts(alice, id), expectAtAlice);
  }
  const sa = alice.stats();
  const sb = bob.stats();
  console.log(
    `# chaos: ${perConversation * CONVERSATIONS} messages, each delivered once, in ${elapsed} ms; network ${JSON.stringify(net.stats)}; ` +
      `retries ${sa.retries + sb.retries}, re-encrypted ${sa.reencrypted + sb.reencrypted}, retransmission requests ${sa.retransmitRequestsSent + sb.retransmitRequestsSent}, ` +
      `duplicate envelopes dropped ${sa.duplicateEnvelopes + sb.duplicateEnvelopes}, duplicate messages dropped ${sa.duplicateMessages + sb.duplicateMessages}`,
  );
  // A ratchet desync would show up as undecryptable envelopes.
  assert.deepEqual(sa.badlyFormed, {});
  assert.deepEqual(sb.badlyFormed, {});
  await alice.close();
  await bob.close();
});
