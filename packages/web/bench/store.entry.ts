/**
 * Browser side of packages/web/bench/store.ts: the IndexedDB store's write batches of a send and
 * of a receive (2 KiB conversation state, message, outbox or seen row), a history page, the
 * unread count and the conversation list, beside the memory store; durability 'relaxed' and
 * 'strict'; opening with an app key, and with a passphrase: new (the web app's Argon2id) and
 * reopened (Argon2id under the parameters in the key header). ms per call, awaited one at a
 * time. Results go to window.__umbraResults.
 */
import { IndexedDbStore } from '../../client/src/indexeddb-store.ts';
import { MemoryStore } from '../../client/src/memory-store.ts';
import type { Store, StoreBatch } from '../../client/src/store.ts';

const N = 300;
const NOW = 1_780_000_000_000;
const rand = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const meta = (lamport: number) => ({ id: 'c1', consent: 'allowed' as const, origin: 'accepted' as const, lamport, recentIds: [], createdAt: NOW, lastActivityAt: NOW + lamport });
function sendBatch(i: number): StoreBatch {
  const id = rand(16);
  return {
    conversations: [{ meta: meta(i), state: rand(2048) }],
    messages: [{ conversationId: 'c1', messageId: id, outgoing: true, lamport: i, sentAt: NOW + i, receivedAt: null, body: rand(100), status: 'sent', read: true }],
    outboxPut: [{ conversationId: 'c1', messageId: id, kind: 'content', lamport: i, envelope: rand(512), hintHour: 1, hintIndex: i, attempts: 0, nextAttemptAt: NOW, createdAt: NOW + i }],
  };
}
function receiveBatch(i: number): StoreBatch {
  const id = rand(16);
  return {
    conversations: [{ meta: meta(i), state: rand(2048) }],
    messages: [{ conversationId: 'c1', messageId: id, outgoing: false, lamport: i, sentAt: NOW + i, receivedAt: NOW + i, body: rand(100), status: 'received', read: false }],
    seenEnvelopes: [{ hash: rand(32), conversationId: 'c1', messageId: id, seenAt: NOW + i }],
  };
}
async function time(f: () => Promise<unknown>, n: number): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < n; i++) await f();
  return (performance.now() - t) / n;
}
const rows: { store: string; what: string; ms: number }[] = [];
async function measure(label: string, store: Store) {
  await store.write({ conversations: [{ meta: meta(0), state: rand(2048) }] });
  let i = 1;
  rows.push({ store: label, what: 'send batch (conversation 2 KiB + message + outbox)', ms: await time(() => store.write(sendBatch(i++)), N) });
  rows.push({ store: label, what: 'receive batch (conversation 2 KiB + message + seen)', ms: await time(() => store.write(receiveBatch(i++)), N) });
  rows.push({ store: label, what: `history page of 50 (of ${2 * N})`, ms: await time(() => store.messages.history('c1', 50, null), 50) });
  rows.push({ store: label, what: 'unreadCount', ms: await time(() => store.messages.unreadCount('c1'), 50) });
  rows.push({ store: label, what: 'conversations.all (1)', ms: await time(() => store.conversations.all(), 50) });
  await store.close();
}
try {
  await measure('memory', await MemoryStore.open());
  for (const durability of ['relaxed', 'strict'] as const) {
    const name = `bench-${durability}-${Date.now()}`;
    const t = performance.now();
    const s = await IndexedDbStore.open({ name, key: rand(32), durability });
    rows.push({ store: `indexeddb ${durability}`, what: 'open (new, app key)', ms: performance.now() - t });
    await measure(`indexeddb ${durability}`, s);
    await IndexedDbStore.destroy(name);
  }
  const t = performance.now();
  const p = await IndexedDbStore.open({ name: 'bench-pass', passphrase: 'correct horse battery', argon2id: { m: 19 * 1024, t: 2, p: 1 } });
  rows.push({ store: 'indexeddb', what: 'open (new, passphrase, web app Argon2id 19 MiB t=2)', ms: performance.now() - t });
  await p.close();
  const t2 = performance.now();
  const p2 = await IndexedDbStore.open({ name: 'bench-pass', passphrase: 'correct horse battery' });
  rows.push({ store: 'indexeddb', what: 'open (existing, passphrase)', ms: performance.now() - t2 });
  await p2.close();
  await IndexedDbStore.destroy('bench-pass');
  (globalThis as { __umbraResults?: unknown }).__umbraResults = rows;
} catch (e) {
  (globalThis as { __umbraResults?: unknown }).__umbraResults = { fatal: String((e as Error)?.stack ?? e) };
}
