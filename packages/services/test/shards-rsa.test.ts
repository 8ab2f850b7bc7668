/**
 * The sharded store under a real RSA (issue 18 item 2): startRsa with `shards` (what
 * `umbra serve rsa --shard …` passes) over two PostgreSQL servers, end to end through HTTP and
 * the WebSocket; a move interrupted after its fence, finished when the RSA starts again; and
 * `ShardAdmin.resume()` finishing a move interrupted at each of its phases (including the
 * "work done, next phase not yet recorded" cases, where a phase runs a second time).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RsaMessage } from '@umbra/client/http';
import { PgDriver } from '../src/db.ts';
import { b64u } from '../src/bytes.ts';
import { parseShards, startInstance } from '../src/instance.ts';
import { InstanceConfigError } from '../src/shared-state.ts';
import { startRsa, type RsaOptions, type RsaService } from '../src/rsa.ts';
import { HASH_SPACE, inboxHash, ownerOf, ShardAdmin, ShardedRsaStore, ShardMapError, type MovePhase } from '../src/shards.ts';
import type { DeliveryLimits, Seed } from '../src/store.ts';
import { killChildren, runFile, spawnChild } from '../../client/test/fixtures/children.ts';
import { startPostgres, type PrivatePostgres } from './pg.ts';
import { createTestInbox, deliverText, startTestIssuer, texts, trustedSsa, waitFor, type TestInbox, type TestIssuer } from './rsa-fixture.ts';

const HALF = HASH_SPACE / 2;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const LIMITS: DeliveryLimits = { perSeedPerMinute: 1_000_000, perSeedPerDay: 1_000_000, inboxMaxMessages: 1_000_000, inboxMaxBytes: 1 << 30, overQuotaRetryS: 60 };

class Interrupted extends Error {}

async function countRows(url: string, table: string, where = '', params: unknown[] = []): Promise<number> {
  const d = new PgDriver(url, { max: 1 });
  try {
    return Number((await d.all(`SELECT COUNT(*) AS n FROM ${table} ${where}`, params))[0]!.n);
  } finally {
    await d.close();
  }
}

describe('an RSA on sharded mailboxes (PostgreSQL)', { timeout: 300_000 }, () => {
  const servers: PrivatePostgres[] = [];
  const closers: (() => Promise<void>)[] = [];
  let iss: TestIssuer;

  before(async () => {
    servers.push(...(await Promise.all([startPostgres(), startPostgres()])));
    iss = await startTestIssuer();
    closers.push(() => iss.close());
  });
  after(async () => {
    await killChildren();
    for (const c of closers.reverse()) await c().catch(() => {});
    for (const s of servers) await s.stop();
  });

  it('parses --shard as name=url or a bare URL, refusing anything else', () => {
    assert.deepEqual(parseShards(['a=postgres://h/x', 'postgres://h/y']), [
      { name: 'a', url: 'postgres://h/x' },
      { name: 's1', url: 'postgres://h/y' },
    ]);
    assert.throws(() => parseShards([]), InstanceConfigError);
    assert.throws(() => parseShards(['a=/tmp/x.db']), InstanceConfigError);
    assert.throws(() => parseShards(['a=postgres://h/x', 'a=postgres://h/y']), InstanceConfigError);
  });

  it('serves one instance over 2 shards end to end, and resumes a move interrupted after its fence when it starts again', async () => {
    const control = await servers[0]!.createDb();
    const shardUrls = { s0: await servers[0]!.createDb(), s1: await servers[1]!.createDb(), s2: await servers[1]!.createDb() };
    const serviceKey = new Uint8Array(randomBytes(32));
    const config = (shards: (keyof typeof shardUrls)[]): RsaOptions => ({
      db: control,
      shards: shards.map((name) => ({ name, url: shardUrls[name] })),
      serviceKey,
      issuerName: 'issuer.test',
      tokenKeys: [iss.issuer.tokenKeys.rsa],
      originInfo: 'rsa.test',
      trustedSsaKeys: [trustedSsa.publicKey],
      shardTuning: { mapRefreshMs: 200, retryDeadlineMs: 1500, drainMs: 200 },
    });
    let rsa: Pick<RsaService, 'url' | 'close'> = await startRsa(config(['s0', 's1']));
    closers.push(() => rsa.close());

    // Inboxes until each shard holds two (version 1: s0 owns [0, 2^31), s1 the rest).
    const byShard: Record<'s0' | 's1', TestInbox[]> = { s0: [], s1: [] };
    for (let n = 0; byShard.s0.length < 2 || byShard.s1.length < 2; n++) {
      assert.ok(n < 40, 'inboxes land on both shards');
      const ib = await createTestInbox(iss.account, rsa.url);
      const side = inboxHash(ib.inbox.creds.inboxId) < HALF ? 's0' : 's1';
      if (byShard[side].length < 2) byShard[side].push(ib);
    }
    for (const side of ['s0', 's1'] as const) {
      const ib = byShard[side][0]!;
      const pushed: RsaMessage[] = [];
      const conn = await ib.inbox.connect((m) => pushed.push(m));
      try {
        assert.equal(await deliverText(rsa.url, ib, `hello ${side}`), 202);
        await waitFor(() => pushed.length === 1, 10_000, `the push from ${side}`);
        assert.deepEqual(await texts(ib.inbox, pushed), [`hello ${side}`]);
        assert.deepEqual(await texts(ib.inbox, (await ib.inbox.fetch()).messages), [`hello ${side}`]);
      } finally {
        conn.close();
      }
      // Stored on its own shard, and only there.
      const id = ib.inbox.creds.inboxId;
      assert.equal(await countRows(shardUrls[side], 'messages', 'WHERE inbox = ?', [id]), 1);
      assert.equal(await countRows(shardUrls[side === 's0' ? 's1' : 's0'], 'messages', 'WHERE inbox = ?', [id]), 0);
    }

    // ---- a move of the range holding inbox X (on s0) to a new shard, interrupted after the fence
    const x = byShard.s0[0]!;
    const y = byShard.s0[1]!; // same shard, outside the moved range
    const hx = inboxHash(x.inbox.creds.inboxId);
    assert.equal(await deliverText(rsa.url, x, 'before the move'), 202);
    const crashing = new ShardAdmin(control, {
      drainMs: 200,
      subscribeGraceMs: 0,
      onPhase: (p) => {
        if (p === 'sync') throw new Interrupted('the admin died after the fence');
      },
    });
    closers.push(() => crashing.close());
    await crashing.addShard('s2', shardUrls.s2);
    await assert.rejects(crashing.moveRange(hx, hx + 1, 's2'), Interrupted);
    // Fenced: X's range is served nowhere (503 after the retry deadline); the rest of s0 still is.
    await assert.rejects(x.inbox.fetch(), /503 Service unavailable/);
    assert.equal(await deliverText(rsa.url, y, 'elsewhere on s0'), 202);
    assert.equal((await crashing.unfinishedMoves()).length, 1);
    await assert.rejects(crashing.moveRange(HALF, HALF + 10, 's2'), /unfinished/);

    // ---- the instance restarts as `umbra serve rsa --shard …` starts it (s2 now in its list)
    // and finishes the move before serving
    const port = Number(new URL(rsa.url).port); // the clients keep the instance's URL
    await rsa.close();
    closers.pop();
    rsa = await startInstance({
      role: 'rsa',
      db: control,
      port,
      shards: [`s0=${shardUrls.s0}`, `s1=${shardUrls.s1}`, `s2=${shardUrls.s2}`],
      issuer: iss.issuer.url,
      origin: 'rsa.test',
      trustedSsaKeys: [b64u(trustedSsa.publicKey)],
    });
    closers.push(() => rsa.close());
    assert.deepEqual(await crashing.unfinishedMoves(), []);
    const map = (await crashing.currentMap())!;
    assert.equal(map.version, 2);
    assert.equal(ownerOf(map, hx), 's2');
    assert.equal(ownerOf(map, inboxHash(y.inbox.creds.inboxId)), 's0');
    const id = x.inbox.creds.inboxId;
    assert.equal(await countRows(shardUrls.s0, 'messages', 'WHERE inbox = ?', [id]), 0, 'the source copy was deleted');
    assert.equal(await countRows(shardUrls.s0, 'inboxes', 'WHERE id = ?', [id]), 0);
    assert.equal(await countRows(shardUrls.s2, 'messages', 'WHERE inbox = ?', [id]), 2, 'both messages moved');
    // X works again from its new shard: fetch, backlog push, a new delivery pushed and stored on s2.
    assert.deepEqual(await texts(x.inbox, (await x.inbox.fetch()).messages), ['hello s0', 'before the move']);
    const pushed: RsaMessage[] = [];
    const conn = await x.inbox.connect((m) => pushed.push(m));
    try {
      await waitFor(() => pushed.length === 2, 10_000, 'the backlog push after the move');
      assert.equal(await deliverText(rsa.url, x, 'after the move'), 202);
      await waitFor(() => pushed.length === 3, 10_000, 'a push from the new shard');
      assert.deepEqual(await texts(x.inbox, pushed), ['hello s0', 'before the move', 'after the move']);
    } finally {
      conn.close();
    }
    assert.equal(await countRows(shardUrls.s2, 'messages', 'WHERE inbox = ?', [id]), 3);
    assert.deepEqual(await texts(y.inbox, (await y.inbox.fetch()).messages), ['elsewhere on s0']);
  });

  it('umbra serve rsa --shard … runs an RSA on the shards until SIGTERM', async () => {
    const control = await servers[1]!.createDb();
    const urls = { s0: await servers[0]!.createDb(), s1: await servers[1]!.createDb() };
    const bin = join(resolve(import.meta.dirname, '../../..'), 'packages/cli/bin/umbra.js');
    const args = ['serve', 'rsa', '--db', control, '--shard', `s0=${urls.s0}`, '--shard', `s1=${urls.s1}`, '--issuer', iss.issuer.url, '--origin', 'rsa.cli'];
    // Its own process group, killed by killChildren (after) whatever happens here.
    const child = spawnChild(process.execPath, [bin, ...args, '--trust-ssa', b64u(trustedSsa.publicKey)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await waitFor(() => /umbra serve rsa: (http\S+)/.test(out) || child.exitCode !== null, 60_000, `umbra serve rsa to start (${out})`);
      const url = /umbra serve rsa: (http\S+)/.exec(out)?.[1];
      assert.ok(url, `umbra serve rsa started: ${out}`);
      const ib = await createTestInbox(iss.account, url);
      assert.equal(await deliverText(url, ib, 'via the cli'), 202);
      assert.deepEqual(await texts(ib.inbox, (await ib.inbox.fetch()).messages), ['via the cli']);
      const side = inboxHash(ib.inbox.creds.inboxId) < HALF ? 's0' : 's1';
      assert.equal(await countRows(urls[side], 'messages', 'WHERE inbox = ?', [ib.inbox.creds.inboxId]), 1, 'stored on the shard that owns the inbox');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });

  it('shard-admin-main: map, add, bootstrap, move, resume from the command line; refusals exit 2; no password printed', async () => {
    const root = resolve(import.meta.dirname, '../../..');
    const main = join(root, 'packages/services/src/shard-admin-main.ts');
    const control = await servers[0]!.createDb();
    const [a, b] = [await servers[0]!.createDb(), await servers[1]!.createDb()];
    // The test server trusts every login: a password in the URL is accepted, and must never be printed.
    const c = (await servers[1]!.createDb()).replace('postgres@', 'postgres:hunter2secret@');
    const admin = async (...args: string[]) => {
      const r = await runFile(process.execPath, ['--import', 'tsx', main, control, ...args], { cwd: root, timeoutMs: 60_000 });
      assert.ok(!`${r.stdout}${r.stderr}`.includes('hunter2secret'), 'no password in the output');
      return { code: r.code, json: r.code === 0 ? (JSON.parse(r.stdout) as Record<string, unknown>) : null, stderr: r.stderr };
    };
    assert.deepEqual((await admin('map')).json, { version: null });
    assert.equal((await admin('add', 'a', a)).code, 0);
    assert.equal((await admin('add', 'b', b)).code, 0);
    assert.deepEqual((await admin('bootstrap', 'a', 'b')).json, { version: 1 });
    const early = await admin('move', '0', '1000', 'c');
    assert.equal(early.code, 2);
    assert.match(early.stderr, /refused: shard c is not registered/);
    assert.equal((await admin('add', 'c', c)).code, 0);
    const moved = await admin('move', '0', '1000', 'c');
    assert.equal(moved.code, 0, moved.stderr);
    assert.equal(moved.json!.toVersion, 2);
    assert.deepEqual((await admin('resume')).json, { resumed: [] });
    const map = (await admin('map')).json!;
    assert.equal(map.version, 2);
    assert.deepEqual((map.entries as { lo: number; hi: number; shard: string }[])[0], { lo: 0, hi: 1000, shard: 'c' });
    assert.match(String((map.shards as Record<string, string>).c), /postgres:\*\*\*@/);
    assert.equal((await admin('move', 'abc', '1', 'c')).code, 2);
    assert.equal((await admin('teleport')).code, 2);
  });

  /**
   * Interrupts one move per case, at the start of `at`; `recorded` is the phase left in
   * shard_moves (earlier than `at` when the crash came after a phase's work but before the next
   * phase was recorded, so resume runs that work again).
   */
  const cases: { at: MovePhase; recorded: MovePhase }[] = [
    { at: 'copy', recorded: 'copy' },
    { at: 'fence', recorded: 'fence' },
    { at: 'sync', recorded: 'fence' },
    { at: 'switch', recorded: 'switch' },
    { at: 'drain', recorded: 'switch' },
    { at: 'delete', recorded: 'delete' },
    { at: 'done', recorded: 'delete' },
  ];
  it(`ShardAdmin.resume() finishes a move interrupted at each phase (${cases.length} cases): nothing lost, nothing twice, one map version`, async () => {
    for (const c of cases) {
      const control = await servers[0]!.createDb();
      const urls = [await servers[0]!.createDb(), await servers[1]!.createDb()];
      const admin = new ShardAdmin(control, {
        drainMs: 100,
        subscribeGraceMs: 0,
        pageSize: 7,
        onPhase: async (p, m) => {
          if (p !== c.at) return;
          await admin.control.run('UPDATE shard_moves SET phase = ? WHERE lo = ? AND hi = ?', [c.recorded, m.lo, m.hi]);
          throw new Interrupted(`interrupted at ${p}`);
        },
      });
      await admin.init();
      await admin.addShard('a', urls[0]!);
      await admin.addShard('b', urls[1]!);
      await admin.bootstrap(['a', 'b']);
      const store = new ShardedRsaStore({ control, mapRefreshMs: 100, retryDeadlineMs: 10_000 });
      await store.init();
      try {
        // 12 inboxes in the moved range [0, 2^30) with 3 messages each (one acked), 4 outside it.
        const inboxes: { id: Uint8Array; seed: Seed }[] = [];
        const mids = new Map<string, string[]>();
        for (let inRange = 0, outside = 0; inRange < 12 || outside < 4; ) {
          const id = new Uint8Array(randomBytes(16));
          const moved = inboxHash(id) < HALF / 2;
          if (moved ? inRange >= 12 : outside >= 4) continue;
          if (moved) inRange++;
          else outside++;
          const seed: Seed = { m: new Uint8Array(randomBytes(32)), seedId: new Uint8Array(randomBytes(16)), inbox: id, notAfter: Date.now() + 3_600_000, state: 'active' };
          await store.createInbox({ id, authKey: new Uint8Array(randomBytes(32)), dhKey: new Uint8Array(randomBytes(32)) }, [new Uint8Array(randomBytes(32))], Date.now() + 1e9, Date.now());
          await store.addSeeds(id, [seed], new Uint8Array(randomBytes(32)), Date.now() + 1e9);
          const list: string[] = [];
          for (let k = 0; k < 3; k++) {
            const mid = new Uint8Array(randomBytes(16));
            const payload = new Uint8Array(randomBytes(40));
            const now = Date.now();
            const r = await store.deliver({ mid, seed, receivedAt: now, expires: now + 3_600_000, stored: payload, dedupeKey: createHash('sha256').update(id).update(payload).digest() }, LIMITS, now);
            assert.equal(r.kind, 'stored');
            list.push(hex(mid));
          }
          await store.ack(id, [Buffer.from(list.shift()!, 'hex')]);
          mids.set(hex(id), list);
          inboxes.push({ id, seed });
        }

        await assert.rejects(admin.moveRange(0, HALF / 2, 'b'), Interrupted, `case ${c.at}`);
        const [pending] = await admin.unfinishedMoves();
        assert.equal(pending?.phase, c.recorded, `case ${c.at}: the recorded phase`);
        const resumer = new ShardAdmin(control, { drainMs: 100, subscribeGraceMs: 0, pageSize: 7 });
        const reports = await resumer.resume();
        await resumer.close();
        assert.equal(reports.length, 1, `case ${c.at}: one move resumed`);
        assert.deepEqual(await admin.unfinishedMoves(), [], `case ${c.at}: nothing left unfinished`);
        const map = (await admin.currentMap())!;
        assert.equal(map.version, 2, `case ${c.at}: published once`);
        assert.deepEqual(map.entries.map((e) => [e.lo, e.hi, e.shard]), [[0, HALF / 2, 'b'], [HALF / 2, HALF, 'a'], [HALF, HASH_SPACE, 'b']]);

        // Every unacked message readable once, from its owner only; no rows left off their owner.
        for (const ib of inboxes) {
          const got = (await store.fetch(ib.id, 0, 100, Date.now())).map((m) => hex(m.mid));
          assert.deepEqual(got, mids.get(hex(ib.id)), `case ${c.at}: the inbox's messages, once each, in order`);
        }
        for (const [i, url] of urls.entries())
          for (const table of ['inboxes', 'seeds', 'messages', 'dedupe']) {
            const stray = await countRows(url, `${table} t`, 'WHERE NOT EXISTS (SELECT 1 FROM owned o WHERE t.hash >= o.lo AND t.hash < o.hi)');
            assert.equal(stray, 0, `case ${c.at}: no ${table} rows on shard ${i} outside what it owns`);
          }
        const movedInboxes = inboxes.filter((ib) => inboxHash(ib.id) < HALF / 2).length;
        assert.equal(await countRows(urls[1]!, 'inboxes', 'WHERE hash < ?', [HALF / 2]), movedInboxes);
        // The moved range takes new deliveries on its new shard; a retried payload stays a duplicate.
        const ib = inboxes.find((i) => inboxHash(i.id) < HALF / 2)!;
        const now = Date.now();
        const fresh = await store.deliver({ mid: new Uint8Array(randomBytes(16)), seed: ib.seed, receivedAt: now, expires: now + 3_600_000, stored: new Uint8Array(8), dedupeKey: new Uint8Array(32).fill(1) }, LIMITS, now);
        assert.equal(fresh.kind, 'stored');
        assert.equal(await countRows(urls[1]!, 'messages', 'WHERE inbox = ?', [ib.id]), 3);
      } finally {
        await store.close();
        await admin.close();
      }
    }
  });

  it('refuses a second move while one runs, and a shard name registered with another URL', async () => {
    const control = await servers[1]!.createDb();
    const a = await servers[1]!.createDb();
    const b = await servers[1]!.createDb();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const inCopy = new Promise<void>((r) => (started = r));
    const slow = new ShardAdmin(control, { drainMs: 0, subscribeGraceMs: 0, onPhase: async (p) => (p === 'copy' ? (started(), held) : undefined) });
    const other = new ShardAdmin(control, { drainMs: 0, subscribeGraceMs: 0 });
    try {
      await slow.init();
      await slow.addShard('a', a);
      await slow.addShard('b', b);
      await slow.bootstrap(['a', 'b']);
      const first = slow.moveRange(0, 10, 'b');
      await inCopy;
      await assert.rejects(other.moveRange(HALF, HALF + 10, 'a'), /under way/);
      assert.deepEqual(await other.resume(), [], 'a resume leaves a running move alone');
      release();
      assert.equal((await first).toVersion, 2);
      await assert.rejects(other.addShard('a', b), ShardMapError);
    } finally {
      await slow.close();
      await other.close();
    }
  });
});
