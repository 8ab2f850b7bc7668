/**
 * Store write cost per message (a benchmark, not a test): `node --import tsx bench/store.ts [N]`.
 * Two clients with on-disk SQLite stores (WAL, synchronous=NORMAL, the whole file encrypted by
 * SQLite3 Multiple Ciphers, ChaCha20-Poly1305 per page) exchange N messages over a clean in-memory network. Every store transaction
 * is timed; the report splits them into the sender's and the receiver's side and gives the bytes
 * the database grows by per message. Then, for comparison, a bare better-sqlite3 loop (the same
 * encrypted library, key form and pragmas) that makes, per message, as many transactions as each
 * side's store did, each inserting one row, the rows together as large as that side's database
 * grew: the floor of SQLite itself for that much writing. The ratio is the store's messages/s
 * (time inside store.write) over the bare loop's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { Client, MemoryNetwork, SqliteStore, type StoreBatch } from '../packages/client/src/node.ts';

const N = Number(process.argv[2] ?? 2000);
const dir = mkdtempSync(join(tmpdir(), 'umbra-bench-store-'));
const net = new MemoryNetwork();

function instrument(store: SqliteStore) {
  const stats = { writes: 0, ms: 0 };
  const write = store.write.bind(store);
  store.write = (batch: StoreBatch) => {
    // SqliteStore.write runs its whole transaction before it returns the promise: timing the
    // call alone keeps other operations' microtasks (which run before an await resumes) out.
    const t0 = performance.now();
    const done = write(batch);
    stats.ms += performance.now() - t0;
    stats.writes++;
    return done;
  };
  return stats;
}

const key = (b: number) => new Uint8Array(32).fill(b);
const aliceStore = await SqliteStore.open({ path: join(dir, 'alice.db'), key: key(1) });
const bobStore = await SqliteStore.open({ path: join(dir, 'bob.db'), key: key(2) });
const opts = { retry: { initialMs: 5000, maxMs: 10_000 }, ackDelayMs: 5, syncIntervalMs: 0 };
const alice = await Client.open({ delivery: net.adapter(), store: aliceStore, profile: { name: 'Alice' }, ...opts });
const bob = await Client.open({ delivery: net.adapter(), store: bobStore, profile: { name: 'Bob' }, ...opts });
const conv = await alice.accept((await bob.createInvitation()).text);
while ((await bob.conversations()).length === 0 || (await alice.pendingCount()) > 0) await new Promise((r) => setTimeout(r, 5));

const sizeOf = (s: SqliteStore) => s.sizeBytes();
const a0 = sizeOf(aliceStore);
const b0 = sizeOf(bobStore);
const as = instrument(aliceStore);
const bs = instrument(bobStore);
let received = 0;
bob.on('message', () => received++);
const body = 'x'.repeat(100);
const t0 = performance.now();
for (let i = 0; i < N; i++) await alice.send(conv.id, body);
while (received < N || (await alice.pendingCount()) > 0) await new Promise((r) => setTimeout(r, 2));
const wall = performance.now() - t0;
await bob.settle();
await alice.settle();
const fmt = (x: number) => x.toFixed(1);
console.log(`store write cost, ${N} messages of 100 B, on-disk SQLite (WAL, synchronous=NORMAL), encrypted at rest`);
console.log(`  sender:   ${as.writes} transactions (${fmt(as.writes / N)}/msg), ${fmt((as.ms * 1000) / N)} µs/msg in store.write, db +${fmt((sizeOf(aliceStore) - a0) / N)} B/msg`);
console.log(`  receiver: ${bs.writes} transactions (${fmt(bs.writes / N)}/msg), ${fmt((bs.ms * 1000) / N)} µs/msg in store.write, db +${fmt((sizeOf(bobStore) - b0) / N)} B/msg`);
console.log(`  end to end (encrypt, store, deliver, decrypt, store, ack): ${fmt(wall / N * 1000)} µs/msg, ${Math.round(N / (wall / 1000))} msg/s`);
const aliceGrowth = (sizeOf(aliceStore) - a0) / N;
const bobGrowth = (sizeOf(bobStore) - b0) / N;
await alice.close();
await bob.close();
await aliceStore.close();
await bobStore.close();

/** The bare loop: msgs/s for `txPerMsg` one-row transactions per message of `bytesPerMsg` in all. */
function bareLoop(name: string, txPerMsg: number, bytesPerMsg: number): number {
  const db = new Database(join(dir, `${name}-bare.db`));
  db.key(Buffer.concat([Buffer.from('raw:'), Buffer.from(key(9))]));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('locking_mode = EXCLUSIVE');
  db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, conversation BLOB NOT NULL, body BLOB NOT NULL)');
  const insert = db.prepare('INSERT INTO rows (conversation, body) VALUES (?, ?)');
  const tx = db.transaction((conversation: Buffer, body: Buffer) => insert.run(conversation, body));
  const conversation = Buffer.alloc(16, 1);
  const transactions = Math.max(1, Math.round(txPerMsg * N));
  const rowBytes = Math.max(1, Math.round((bytesPerMsg * N) / transactions) - conversation.length);
  const t = performance.now();
  for (let i = 0; i < transactions; i++) tx(conversation, Buffer.alloc(rowBytes, i & 0xff));
  const seconds = (performance.now() - t) / 1000;
  db.close();
  return N / seconds;
}
const storeRate = (ms: number) => N / (ms / 1000);
for (const [side, st, growth] of [['sender', as, aliceGrowth], ['receiver', bs, bobGrowth]] as const) {
  const bare = bareLoop(side, st.writes / N, growth);
  console.log(`  ${side.padEnd(9)} store ${Math.round(storeRate(st.ms))} msgs/s persisted (time in store.write)   bare better-sqlite3, same transactions and bytes: ${Math.round(bare)} msgs/s   ratio ${(storeRate(st.ms) / bare).toFixed(2)}× (target ≥ 0.5×)`);
}
rmSync(dir, { recursive: true, force: true });
