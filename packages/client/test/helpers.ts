/** Shared helpers for the client tests. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, MemoryNetwork, SqliteStore, type ClientOptions, type ConversationInfo, type Delivery } from '../src/node.ts';

export const KEY_A = new Uint8Array(32).fill(0xa1);
export const KEY_B = new Uint8Array(32).fill(0xb2);
/** Fast timings for tests: retries after 100 ms, missing ids requested and fast retransmits after 20 ms. */
export const FAST = { retry: { initialMs: 100, maxMs: 400 }, ackDelayMs: 2, missingGraceMs: 20, fastRetransmitMs: 20, syncIntervalMs: 0 } as const;

export function tempDir(prefix = 'umbra-client-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function openMemoryClient(delivery: Delivery, name: string, extra: Partial<ClientOptions> = {}): Promise<Client> {
  return Client.open({ delivery, store: await SqliteStore.open({ path: ':memory:', key: KEY_A }), profile: { name }, ...FAST, ...extra });
}

/** Polls `cond` (which may read a client's async views) until it holds. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Bob invites, Alice accepts; resolves once Bob has the conversation and Alice's handshake is acknowledged. */
export async function connect(alice: Client, bob: Client): Promise<ConversationInfo> {
  const inv = await bob.createInvitation();
  const conv = await alice.accept(inv.text);
  await waitFor(async () => (await bob.conversations()).some((c) => c.id === conv.id), 10_000, 'bob to see the conversation');
  await waitFor(async () => (await alice.pendingCount(conv.id)) === 0, 10_000, 'the handshake ack');
  return conv;
}

export async function texts(client: Client, conversationId: string): Promise<string[]> {
  const out: string[] = [];
  let before: string | undefined;
  for (;;) {
    const page = await client.history(conversationId, { limit: 1000, ...(before !== undefined ? { before } : {}) });
    out.unshift(...page.messages.map((m) => `${m.outgoing ? '>' : '<'}${m.text}`));
    if (page.cursor === null) return out;
    before = page.cursor;
  }
}

export { MemoryNetwork };
