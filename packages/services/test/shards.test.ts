/**
 * Sharded mailboxes (src/shards.ts): K = 2 → 3 PostgreSQL servers started here on loopback, two
 * store instances (one writing, one reading and acking, each with its own cached map) under
 * traffic while two hash ranges move to the new shard. Every stored message is read exactly once,
 * in sequence order, and after the moves each inbox lives on exactly the shard the map names.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { PgDriver } from '../src/db.ts';
import { HASH_SPACE, inboxHash, ownerOf, ShardAdmin, ShardedRsaStore, ShardMapError, type MovePhase } from '../src/shards.ts';
import type { DeliveryLimits, Seed } from '../src/store.ts';
import { startPostgres, type PrivatePostgres } from './pg.ts';

const LIMITS: DeliveryLimits = {
  perSeedPerMinute: 1_000_000,
  perSeedPerDay: 1_000_000,
  inboxMaxMessages: 1_000_000,
  inboxMaxBytes: 1 << 30,
  overQuotaRetryS: 60,
};
const THIRD = Math.floor(HASH_SPACE / 3);
const HALF = HASH_SPACE / 2;
const TWO_THIRDS = Math.floor((2 * HASH_SPACE) / 3);
const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sharded mailboxes on PostgreSQL (K = 2 → 3)', { timeout: 150_000 }, () => {
  const servers: PrivatePostgres[] = [];
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    servers.push(...(await Promise.all([startPostgres(), startPostgres(), startPostgres()])));
  });
  after(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    for (const s of servers) await s.stop();
  });

  it('places inboxes by a stable hash', () => {
    // SHA-256 of 16 zero bytes begins 374708ff.
    assert.equal(inboxHash(new Uint8Array(16)), 0x374708ff);
    const map = { version: 1, entries: [{ lo: 0, hi: HALF, shard: 'a' }, { lo: HALF, hi: HASH_SPACE, shard: 'b' }], shards: new Map() };
    assert.equal(ownerOf(map, 0), 'a');
    assert.equal(ownerOf(map, HALF - 1), 'a');
    assert.equal(ownerOf(map, HALF), 'b');
    assert.equal(ownerOf(map, HASH_SPACE - 1), 'b');
  });

  it('moves two ranges to a third shard during traffic: nothing lost, nothing duplicated', async (t) => {
    const control = await servers[0]!.createDb();
    const urls = [await servers[0]!.createDb(), await servers[1]!.createDb(), await servers[2]!.createDb()];
    const phases: MovePhase[] = [];
    const admin = new ShardAdmin(control, { drainMs: 400, subscribeGraceMs: 500, pageSize: 200, onPhase: (p) => void phases.push(p) });
    closers.push(() => admin.close());
    await admin.init();
    await admin.addShard('s0', urls[0]!);
    await admin.addShard('s1', urls[1]!);
    await admin.bootstrap(['s0', 's1']);
    const writer = new ShardedRsaStore({ control, mapRefreshMs: 200 });
    const reader = new ShardedRsaStore({ control, mapRefreshMs: 200 });
    closers.push(() => writer.close(), () => reader.close());
    await writer.init();
    await reader.init();

    // 90 inboxes: 30 in each moved range, 30 elsewhere.
    const inRangeA = (h: number) => h >= THIRD && h < HALF;
    const inRangeB = (h: number) => h >= HALF && h < TWO_THIRDS;
    const want = { a: 30, b: 30, other: 30 };
    const inboxes: { id: Uint8Array; seed: Seed; h: number }[] = [];
    while (want.a + want.b + want.other > 0) {
      const id = new Uint8Array(randomBytes(16));
      const h = inboxHash(id);
      const k = inRangeA(h) ? 'a' : inRangeB(h) ? 'b' : 'other';
      if (want[k] === 0) continue;
      want[k]--;
      const seed: Seed = { m: new Uint8Array(randomBytes(32)), seedId: new Uint8Array(randomBytes(16)), inbox: id, notAfter: Date.now() + 3_600_000, state: 'active' };
      assert.equal(await writer.createInbox({ id, authKey: new Uint8Array(randomBytes(32)), dhKey: new Uint8Array(randomBytes(32)) }, [new Uint8Array(randomBytes(32))], Date.now() + 1e9, Date.now()), true);
      assert.equal(await writer.addSeeds(id, [seed], new Uint8Array(randomBytes(32)), Date.now() + 1e9), true);
      inboxes.push({ id, seed, h });
    }
    const moved = new Set(inboxes.filter((i) => inRangeA(i.h) || inRangeB(i.h)).map((i) => hex(i.id)));

    // Pushes the reading instance hears for moved inboxes after the second switch (from s2).
    let switched = false;
    let pushesAfterSwitch = 0;
    await reader.onMessage((h) => {
      if (switched && moved.has(h)) pushesAfterSwitch++;
    });

    // ---- traffic -------------------------------------------------------------------------
    const stored = new Map<string, string>(); // mid hex → inbox hex
    const sentPayloads = new Map<string, Uint8Array[]>(); // inbox hex → payloads stored
    let duplicateResends = 0;
    let duplicateResendsRefused = 0;
    let stop = false;
    const writers = Array.from({ length: 6 }, async (_, w) => {
      const store = w % 3 === 2 ? reader : writer; // both instances write
      for (let n = 0; !stop; n++) {
        const ib = inboxes[(n * 7 + w * 13) % inboxes.length]!;
        const prior = sentPayloads.get(hex(ib.id));
        // Now and then a retry of a payload already stored: must stay one message, wherever it moved.
        const resend = n % 10 === 9 && prior && prior.length > 0;
        const payload = resend ? prior[n % prior.length]! : new Uint8Array(randomBytes(64));
        const mid = new Uint8Array(randomBytes(16));
        const now = Date.now();
        const r = await store.deliver(
          { mid, seed: ib.seed, receivedAt: now, expires: now + 3_600_000, stored: payload, dedupeKey: sha256(ib.id, payload) },
          LIMITS,
          now,
        );
        if (resend) {
          duplicateResends++;
          if (r.kind === 'duplicate') duplicateResendsRefused++;
        }
        if (r.kind === 'stored') {
          stored.set(hex(mid), hex(ib.id));
          if (!prior) sentPayloads.set(hex(ib.id), [payload]);
          else prior.push(payload);
        } else if (!resend) assert.fail(`a fresh delivery came back ${r.kind}`);
      }
    });

    const received = new Map<string, number>(); // mid hex → times read
    const cursors = new Map<string, number>();
    const unacked = new Map<string, Uint8Array[]>();
    let readerStop = false;
    let pass = 0;
    async function readOnce(ib: { id: Uint8Array }): Promise<void> {
      const k = hex(ib.id);
      const after = cursors.get(k) ?? 0;
      const msgs = await reader.fetch(ib.id, after, 50, Date.now());
      let last = after;
      for (const m of msgs) {
        assert.ok(m.seq > last, `sequence goes up within an inbox (${m.seq} after ${last})`);
        last = m.seq;
        received.set(hex(m.mid), (received.get(hex(m.mid)) ?? 0) + 1);
      }
      cursors.set(k, last);
      const pending = [...(unacked.get(k) ?? []), ...msgs.map((m) => m.mid)];
      // Every other pass leaves messages unacked, so some are copied (and then acked) mid-move.
      if (pass % 2 === 0 && pending.length > 0) {
        await reader.ack(ib.id, pending);
        unacked.set(k, []);
      } else unacked.set(k, pending);
    }
    const readers = (async () => {
      while (!readerStop) {
        for (let i = 0; i < inboxes.length; i += 6) await Promise.all(inboxes.slice(i, i + 6).map(readOnce));
        pass++;
      }
    })();

    // A failing assertion below must not leave the loops running into closed stores.
    closers.push(async () => {
      stop = true;
      readerStop = true;
      await Promise.allSettled([...writers, readers]);
    });

    // ---- the moves -------------------------------------------------------------------------
    await sleep(1500);
    await admin.addShard('s2', urls[2]!);
    const before = stored.size;
    const moveA = await admin.moveRange(THIRD, HALF, 's2');
    const moveB = await admin.moveRange(HALF, TWO_THIRDS, 's2');
    switched = true;
    const duringMoves = stored.size - before;
    await sleep(1500);
    stop = true;
    await Promise.all(writers);
    const deadline = Date.now() + 30_000;
    while ([...stored.keys()].some((m) => !received.has(m)) && Date.now() < deadline) await sleep(50);
    readerStop = true;
    await readers;
    for (const ib of inboxes) {
      const left = unacked.get(hex(ib.id)) ?? [];
      if (left.length > 0) await reader.ack(ib.id, left);
    }
    t.diagnostic(
      `stored ${stored.size} (${duringMoves} while moving), move A: copied ${JSON.stringify(moveA.copied)} synced ${JSON.stringify(moveA.synced)} fenced ${moveA.fencedMs.toFixed(0)} ms; ` +
        `move B: fenced ${moveB.fencedMs.toFixed(0)} ms; retries after "not owned": writer ${writer.stats.notOwnedRetries}, reader ${reader.stats.notOwnedRetries}`,
    );

    // ---- nothing lost, nothing duplicated --------------------------------------------------
    assert.ok(duringMoves > 0, 'traffic went on during the moves');
    assert.ok(moveA.copied.messages > 0 && moveB.copied.messages > 0, 'the moves carried messages');
    const lost = [...stored.keys()].filter((m) => !received.has(m));
    assert.deepEqual(lost, [], 'every stored message was read');
    assert.deepEqual([...received].filter(([, n]) => n !== 1), [], 'no message was read twice');
    assert.deepEqual([...received.keys()].filter((m) => !stored.has(m)), [], 'nothing was read that was not stored');
    assert.ok(duplicateResends > 0);
    assert.equal(duplicateResendsRefused, duplicateResends, 'a retried payload stays one message across the move (dedupe keys moved)');
    assert.ok(pushesAfterSwitch > 0, 'the reading instance hears pushes from the new shard');
    assert.deepEqual(
      phases.filter((p) => p === 'fence' || p === 'switch' || p === 'done'),
      ['fence', 'switch', 'done', 'fence', 'switch', 'done'],
    );

    // ---- where everything is now -----------------------------------------------------------
    const map = (await admin.currentMap())!;
    assert.equal(map.version, 3);
    assert.deepEqual(
      map.entries.map((e) => [e.lo, e.hi, e.shard]),
      [
        [0, THIRD, 's0'],
        [THIRD, HALF, 's2'],
        [HALF, TWO_THIRDS, 's2'],
        [TWO_THIRDS, HASH_SPACE, 's1'],
      ],
    );
    const dbs = urls.map((u) => new PgDriver(u, { max: 1 }));
    closers.push(async () => {
      for (const d of dbs) await d.close();
    });
    const where = new Map<string, string[]>();
    for (const [i, d] of dbs.entries())
      for (const r of await d.all('SELECT id, hash, msg_count, msg_bytes FROM inboxes')) {
        const k = hex(r.id as Uint8Array);
        where.set(k, [...(where.get(k) ?? []), `s${i}`]);
        assert.equal(Number(r.msg_count), 0, 'counters follow the acks');
        assert.equal(Number(r.msg_bytes), 0);
      }
    for (const ib of inboxes) assert.deepEqual(where.get(hex(ib.id)), [ownerOf(map, ib.h)], 'each inbox on exactly its owner');
    for (const d of dbs) {
      assert.equal(Number((await d.all('SELECT COUNT(*) AS n FROM messages'))[0]!.n), 0, 'all acked');
      for (const table of ['inboxes', 'seeds', 'messages', 'dedupe']) {
        const stray = await d.all(`SELECT COUNT(*) AS n FROM ${table} t WHERE NOT EXISTS (SELECT 1 FROM owned o WHERE t.hash >= o.lo AND t.hash < o.hi)`);
        assert.equal(Number(stray[0]!.n), 0, `no ${table} rows left outside the ranges a shard owns`);
      }
    }
    const dedupeRows = (await Promise.all(dbs.map((d) => d.all('SELECT COUNT(*) AS n FROM dedupe')))).reduce((a, r) => a + Number(r[0]!.n), 0);
    assert.equal(dedupeRows, stored.size, 'one dedupe key per stored message, on one shard');
    // A seed still resolves to its inbox after the move.
    const movedInbox = inboxes.find((i) => inRangeA(i.h))!;
    assert.deepEqual((await writer.findSeed(movedInbox.seed.m))?.inbox, movedInbox.id);
  });

  it('refuses moves it cannot carry out, with ShardMapError', async () => {
    const control = await servers[1]!.createDb();
    const admin = new ShardAdmin(control, { drainMs: 0, subscribeGraceMs: 0 });
    await admin.init();
    await assert.rejects(admin.moveRange(0, 10, 'x'), ShardMapError); // no map yet
    await admin.addShard('a', await servers[1]!.createDb());
    await admin.addShard('b', await servers[2]!.createDb());
    await assert.rejects(admin.addShard('bad name!', 'postgres://x'), ShardMapError);
    await admin.bootstrap(['a', 'b']);
    await assert.rejects(admin.bootstrap(['a']), ShardMapError);
    await assert.rejects(admin.moveRange(5, 5, 'b'), ShardMapError);
    await assert.rejects(admin.moveRange(0, HASH_SPACE + 1, 'b'), ShardMapError);
    await assert.rejects(admin.moveRange(HALF - 10, HALF + 10, 'b'), ShardMapError); // spans two entries
    await assert.rejects(admin.moveRange(0, 10, 'a'), ShardMapError); // already there
    await assert.rejects(admin.moveRange(0, 10, 'nope'), ShardMapError);
    const r = await admin.moveRange(0, 10, 'b'); // an empty range moves too
    assert.equal(r.toVersion, 2);
    assert.equal((await admin.currentMap())!.entries[0]!.shard, 'b');
    await admin.close();
  });
});
