/**
 * The service test suite, run once on SQLite (services-sqlite.test.ts) and once on PostgreSQL
 * (services-pg.test.ts). Real servers on loopback, real tokens, real addresses.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  addressKeysOf,
  currentAddressKey,
  IssuerClient,
  RsaClient,
  SsaClient,
  tokenInfoOf,
  TokenWallet,
  type InboxClient,
  type PublishedAddressKey,
  type SeedGrant,
} from '@umbra/client/http';
import { nodeServiceClientOptions } from '@umbra/client/node';
import {
  b64u,
  deriveAddress,
  fromB64u,
  generateSeed,
  rerandomizeAddress,
  startHub,
  startIssuer,
  startRsa,
  startSsa,
  type IssuerService,
  type RsaService,
  type SsaService,
} from '../src/index.ts';
import type { SqlDriver } from '../src/db.ts';
import { ed25519FromSeed, generateEd25519, keyidOf, signRequest, type Ed25519Key } from '../src/httpsig.ts';
import { authorizationHeader } from '../src/tokens.ts';
import { startPostgres, type PrivatePostgres } from './pg.ts';

export type Backend = 'sqlite' | 'pg';

/** The tests' own direct deliverer: every test RSA trusts it as it trusts its SSA. */
const trustedTestSsa = generateEd25519();

const DAY = 86_400_000;

class TestClock {
  offset = 0;
  now = (): number => Date.now() + this.offset;
}

interface Env {
  clock: TestClock;
  issuer: IssuerService;
  ssa: SsaService;
  rsa: RsaService;
  issuerClient: IssuerClient;
  ssaClient: SsaClient;
  rsaClient: RsaClient;
  ssaWallet: TokenWallet;
  rsaWallet: TokenWallet;
  close(): Promise<void>;
}

function rsaDb(s: RsaService): SqlDriver {
  return (s.store as unknown as { db: SqlDriver }).db;
}
function ssaDb(s: SsaService): SqlDriver {
  return (s.store as unknown as { db: SqlDriver }).db;
}

async function count(db: SqlDriver, table: string): Promise<number> {
  return Number((await db.all(`SELECT COUNT(*) AS n FROM ${table}`))[0]!.n);
}

async function waitFor(cond: () => Promise<boolean> | boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function payload(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function hasCommonWindow(a: Uint8Array, b: Uint8Array, w: number): boolean {
  const seen = new Set<string>();
  for (let i = 0; i + w <= a.length; i++) seen.add(Buffer.from(a.subarray(i, i + w)).toString('hex'));
  for (let i = 0; i + w <= b.length; i++) if (seen.has(Buffer.from(b.subarray(i, i + w)).toString('hex'))) return true;
  return false;
}

export function serviceSuite(backend: Backend): void {
  let pg: PrivatePostgres | null = null;
  const dirs: string[] = [];
  const dbFor = async (name: string): Promise<string> => {
    if (backend === 'pg') return pg!.createDb();
    const dir = mkdtempSync(join(tmpdir(), 'umbra-svc-'));
    dirs.push(dir);
    return join(dir, `${name}.db`);
  };

  async function makeEnv(opts: { quota?: { ssa?: number; rsa?: number }; rsaLimits?: Record<string, number>; rsaUrlOverride?: string } = {}): Promise<Env> {
    const clock = new TestClock();
    const issuer = await startIssuer({ db: await dbFor('issuer'), clock, quota: opts.quota ?? { ssa: 100_000, rsa: 100_000 } });
    const ssa = await startSsa({
      db: await dbFor('ssa'),
      sealKey: new Uint8Array(randomBytes(32)),
      issuerName: issuer.issuerName,
      tokenKeys: [issuer.tokenKeys.ssa],
      clock,
      retry: { baseMs: 50, maxMs: 500 },
      allowLoopback: true,
    });
    // The RSA trusts its SSA and the tests' own direct deliverer (trustedTestSsa); nobody else.
    const rsa = await startRsa({
      db: await dbFor('rsa'),
      issuerName: issuer.issuerName,
      tokenKeys: [issuer.tokenKeys.rsa],
      clock,
      limits: { perSeedPerMinute: 10_000, perSeedPerDay: 100_000, ...opts.rsaLimits },
      trustedSsaKeys: [ssa.serviceKey, trustedTestSsa.publicKey],
    });
    const issuerClient = await IssuerClient.register(issuer.url);
    const ssaClient = new SsaClient(ssa.url);
    const rsaClient = new RsaClient(rsa.url, nodeServiceClientOptions);
    return {
      clock,
      issuer,
      ssa,
      rsa,
      issuerClient,
      ssaClient,
      rsaClient,
      ssaWallet: new TokenWallet(issuerClient, tokenInfoOf(await ssaClient.descriptor()), 20),
      rsaWallet: new TokenWallet(issuerClient, tokenInfoOf(await rsaClient.descriptor()), 20),
      async close() {
        await ssa.close();
        await rsa.close();
        await issuer.close();
      },
    };
  }

  async function recipient(env: Env, seeds = 2): Promise<{ inbox: InboxClient; seeds: SeedGrant[]; key: PublishedAddressKey; addr: Uint8Array }> {
    const inbox = await env.rsaClient.createInbox(await env.rsaWallet.takeMany(5));
    const grants = await inbox.requestSeeds(await env.rsaWallet.take(), seeds);
    const key = currentAddressKey(addressKeysOf(await env.rsaClient.descriptor()), 'ephemeral', env.clock.now() / 1000);
    return { inbox, seeds: grants, key, addr: deriveAddress(grants[0]!.M, key) };
  }

  function fresh(addr: Uint8Array, key: PublishedAddressKey): Uint8Array {
    const r = rerandomizeAddress(addr, key);
    assert.equal(r.kind, 'ok');
    return (r as { address: Uint8Array }).address;
  }

  /**
   * Delivers straight to the RSA as an SSA would: by default signed with trustedTestSsa (a key the
   * RSA trusts); `key` signs as another SSA, `token` pays for the delivery (Authorization header),
   * `path` sends to another endpoint (the batch).
   */
  async function deliverDirect(
    rsaUrl: string,
    body: unknown,
    clock?: TestClock,
    opts: { key?: Ed25519Key; token?: Uint8Array; path?: string } = {},
  ): Promise<Response> {
    const k = opts.key ?? trustedTestSsa;
    const path = opts.path ?? '/v1/deliver';
    const bytes = new TextEncoder().encode(JSON.stringify(body));
    const nowS = Math.floor((clock?.now() ?? Date.now()) / 1000);
    return fetch(`${rsaUrl}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...signRequest(k, keyidOf(k.publicKey), 'POST', path, bytes, nowS),
        ...(opts.token ? { authorization: authorizationHeader(opts.token) } : {}),
      },
      body: Buffer.from(bytes),
    });
  }

  describe(`services on ${backend}`, { timeout: 120_000 }, () => {
    let env: Env;
    before(async () => {
      if (backend === 'pg') pg = await startPostgres();
      env = await makeEnv();
    });
    after(async () => {
      await env?.close();
      await pg?.stop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it('delivers SSA → RSA; fetch with a cursor, open, ack', async () => {
      const r = await recipient(env);
      for (let i = 0; i < 5; i++) {
        const s = await env.ssaClient.submit({ rsa: env.rsa.url, addr: fresh(r.addr, r.key), payload: payload(`m${i}`) }, await env.ssaWallet.take());
        assert.ok(s.ok, JSON.stringify(s));
      }
      await waitFor(async () => (await r.inbox.fetch(undefined, 100)).messages.length === 5, 10_000, '5 messages');
      const page1 = await r.inbox.fetch(undefined, 2);
      assert.equal(page1.messages.length, 2);
      const page2 = await r.inbox.fetch(page1.cursor, 10);
      assert.equal(page2.messages.length, 3);
      const texts = await Promise.all([...page1.messages, ...page2.messages].map(async (m) => new TextDecoder().decode((await r.inbox.open(m))!)));
      // Deliveries run concurrently at the SSA, so arrival order may differ from submission order.
      assert.deepEqual([...texts].sort(), ['m0', 'm1', 'm2', 'm3', 'm4']);
      for (const m of [...page1.messages, ...page2.messages]) assert.deepEqual(m.seedId, r.seeds[0]!.seedId);
      // Stored bytes are re-encrypted for the inbox: they differ from what the SSA delivered.
      assert.ok(!hasCommonWindow(page1.messages[0]!.stored, payload('m0'), 2));
      await r.inbox.ack(page1.messages.map((m) => m.mid));
      assert.equal((await r.inbox.fetch()).messages.length, 3);
      await r.inbox.ack(page2.messages.map((m) => m.mid));
      assert.equal((await r.inbox.fetch()).messages.length, 0);
    });

    it('pushes over the WebSocket (backlog first, then live), acks over the socket', async () => {
      const r = await recipient(env);
      const s0 = await env.ssaClient.submit({ rsa: env.rsa.url, addr: fresh(r.addr, r.key), payload: payload('before') }, await env.ssaWallet.take());
      assert.ok(s0.ok);
      await waitFor(async () => (await r.inbox.fetch()).messages.length === 1);
      const got: string[] = [];
      const conn = await r.inbox.connect(async (m) => {
        got.push(new TextDecoder().decode((await r.inbox.open(m))!));
        conn.ack([m.mid]);
      });
      await env.ssaClient.submit({ rsa: env.rsa.url, addr: fresh(r.addr, r.key), payload: payload('live') }, await env.ssaWallet.take());
      await waitFor(() => got.length === 2, 10_000, 'two pushed messages');
      assert.deepEqual(got, ['before', 'live']);
      await waitFor(async () => (await r.inbox.fetch()).messages.length === 0, 5000, 'acks over the socket');
      conn.close();
    });

    it('refuses a WebSocket whose auth is signed by another key', async () => {
      const r = await recipient(env);
      const other = await env.rsaClient.createInbox(await env.rsaWallet.takeMany(5));
      const impostor = Object.create(other) as InboxClient;
      Object.defineProperty(impostor, 'id', { value: r.inbox.id });
      Object.defineProperty(impostor, 'creds', { value: { ...other.creds, inboxId: r.inbox.creds.inboxId } });
      await assert.rejects(() => impostor.connect(() => {}), /4003|closed/);
    });

    it('refuses missing, forged, wrong-origin and double-spent tokens', async () => {
      const r = await recipient(env);
      const item = () => ({ rsa: env.rsa.url, addr: fresh(r.addr, r.key), payload: payload('x') });
      const missing = await env.ssaClient.submit(item(), null);
      assert.ok(!missing.ok && missing.problem.status === 401);
      const raw = await fetch(`${env.ssa.url}/v1/submit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ rsa: env.rsa.url, addr: b64u(item().addr), payload: 'eA', idem: b64u(new Uint8Array(16)) }) });
      assert.equal(raw.status, 401);
      assert.match(raw.headers.get('www-authenticate') ?? '', /^PrivateToken challenge=/);
      const forged = await env.ssaWallet.take();
      forged[forged.length - 1]! ^= 1;
      const f = await env.ssaClient.submit(item(), forged);
      assert.ok(!f.ok && f.problem.status === 401 && /signature/.test(f.problem.detail ?? ''));
      const rsaToken = await env.rsaWallet.take(); // issued for the RSA's origin
      const w = await env.ssaClient.submit(item(), rsaToken);
      assert.ok(!w.ok && w.problem.status === 401 && /origin/.test(w.problem.detail ?? ''));
      const t = await env.ssaWallet.take();
      assert.ok((await env.ssaClient.submit(item(), t)).ok);
      const again = await env.ssaClient.submit(item(), t);
      assert.ok(!again.ok && again.problem.status === 401 && /spent/.test(again.problem.detail ?? ''));
      // RSA side: seeds need a token, and a spent inbox token does not work twice.
      await assert.rejects(() => r.inbox.requestSeeds(new Uint8Array(354)), /401/);
      const tokens = await env.rsaWallet.takeMany(5);
      await env.rsaClient.createInbox(tokens);
      await assert.rejects(() => env.rsaClient.createInbox(tokens), /401.*spent/);
      await assert.rejects(() => env.rsaClient.createInbox([tokens[0]!]), /401/);
    });

    it('is idempotent by submission id', async () => {
      const r = await recipient(env);
      const idem = new Uint8Array(randomBytes(16));
      const it = { rsa: env.rsa.url, addr: fresh(r.addr, r.key), payload: payload('once'), idem };
      const t = await env.ssaWallet.take();
      const a = await env.ssaClient.submit(it, t);
      const b = await env.ssaClient.submit(it, t); // a retry of the same request
      assert.ok(a.ok && b.ok && a.sid === b.sid);
      await waitFor(async () => (await env.ssaClient.status((a as { sid: string }).sid)) === 'forwarded');
      await new Promise((res) => setTimeout(res, 200));
      assert.equal((await r.inbox.fetch()).messages.length, 1);
    });

    it('refuses inbox requests without a valid inbox signature', async () => {
      const r = await recipient(env);
      const plain = await fetch(`${env.rsa.url}/v1/inboxes/${r.inbox.id}/messages`);
      assert.equal(plain.status, 401);
      const k = generateEd25519();
      const path = `/v1/inboxes/${r.inbox.id}/messages`;
      const forged = await fetch(`${env.rsa.url}${path}`, { headers: signRequest(k, r.inbox.id, 'GET', path, new Uint8Array(0)) });
      assert.equal(forged.status, 401);
      // A correctly signed request cannot be replayed.
      const signed = signRequest(ed25519FromSeed(r.inbox.creds.authSeed), r.inbox.id, 'GET', path, new Uint8Array(0));
      assert.equal((await fetch(`${env.rsa.url}${path}`, { headers: signed })).status, 200);
      assert.equal((await fetch(`${env.rsa.url}${path}`, { headers: signed })).status, 401);
      // Nor moved to another path.
      const moved = signRequest(ed25519FromSeed(r.inbox.creds.authSeed), r.inbox.id, 'GET', path, new Uint8Array(0));
      assert.equal((await fetch(`${env.rsa.url}${path}?limit=1`, { headers: moved })).status, 401);
    });

    it('answers 202 to unknown, revoked and malformed-but-well-formed addresses and stores nothing', async () => {
      const r = await recipient(env);
      const db = rsaDb(env.rsa);
      const before = await count(db, 'messages');
      const unknownSeed = deriveAddress(generateSeed(), r.key);
      const unknownKid = new Uint8Array(unknownSeed);
      unknownKid[3]! ^= 0xff;
      await r.inbox.setSeedState(r.seeds[1]!.seedId, 'revoked');
      const revoked = deriveAddress(r.seeds[1]!.M, r.key);
      for (const addr of [unknownSeed, unknownKid, revoked]) {
        const res = await deliverDirect(env.rsa.url, { addr: b64u(addr), ttl_s: 60, payload: b64u(payload('probe')) });
        assert.equal(res.status, 202);
      }
      assert.equal(await count(db, 'messages'), before);
      // Through the SSA too: accepted, forwarded, nothing stored.
      const s = await env.ssaClient.submit({ rsa: env.rsa.url, addr: fresh(unknownSeed, r.key), payload: payload('probe') }, await env.ssaWallet.take());
      assert.ok(s.ok);
      await waitFor(async () => (await env.ssaClient.status((s as { sid: string }).sid)) === 'forwarded');
      assert.equal(await count(db, 'messages'), before);
    });

    it('rejects oversized and malformed bodies with 4xx and a clear message', async () => {
      const r = await recipient(env);
      const t = authorizationHeader(await env.ssaWallet.take());
      const post = (body: string, headers: Record<string, string> = {}) =>
        fetch(`${env.ssa.url}/v1/submit`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: t, ...headers }, body });
      const bad = await post('{not json');
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { title: string }).title, 'Malformed JSON');
      const base = { rsa: env.rsa.url, addr: b64u(fresh(r.addr, r.key)), payload: 'eA', idem: b64u(new Uint8Array(randomBytes(16))), ttl_s: 60 };
      const short = await post(JSON.stringify({ ...base, addr: b64u(new Uint8Array(67)) }));
      assert.equal(short.status, 400);
      assert.match(((await short.json()) as { detail: string }).detail, /68 bytes/);
      const nonCanonical = new Uint8Array(68).fill(0xff);
      const nc = await post(JSON.stringify({ ...base, addr: b64u(nonCanonical) }));
      assert.equal(nc.status, 400);
      assert.match(((await nc.json()) as { detail: string }).detail, /canonical/);
      const badRsa = await post(JSON.stringify({ ...base, rsa: 'ftp://x' }));
      assert.equal(badRsa.status, 400);
      const big = await post(JSON.stringify({ ...base, payload: b64u(new Uint8Array(130 * 1024)) }));
      assert.equal(big.status, 413);
      assert.equal(((await big.json()) as { title: string }).title, 'Payload too large');
      const huge = await post(JSON.stringify({ ...base, payload: 'A'.repeat(1200 * 1024) }));
      assert.equal(huge.status, 413);
      assert.equal(((await huge.json()) as { title: string }).title, 'Body too large');
      assert.equal((await fetch(`${env.ssa.url}/v1/submit`, { method: 'POST', headers: { 'content-type': 'text/xml' }, body: '<x/>' })).status, 415);
      // RSA deliver: malformed → 400, oversized → 413, unsigned → 401.
      assert.equal((await deliverDirect(env.rsa.url, { addr: b64u(nonCanonical), ttl_s: 60, payload: 'eA' })).status, 400);
      assert.equal((await deliverDirect(env.rsa.url, { addr: b64u(r.addr), ttl_s: 60, payload: b64u(new Uint8Array(140 * 1024)) })).status, 413);
      assert.equal((await deliverDirect(env.rsa.url, { addr: b64u(r.addr), ttl_s: 'soon', payload: 'eA' })).status, 400);
      assert.equal((await fetch(`${env.rsa.url}/v1/deliver`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 401);
    });

    it('keeps no recipient address in the clear in the SSA database, and two deliveries to one relationship share no bytes', async () => {
      const r = await recipient(env);
      // An RSA URL where nothing listens keeps the items queued (retrying).
      const dead = 'http://127.0.0.1:9';
      const addrs = [fresh(r.addr, r.key), fresh(r.addr, r.key)];
      for (const [i, addr] of addrs.entries())
        assert.ok((await env.ssaClient.submit({ rsa: dead, addr, payload: new Uint8Array(randomBytes(64 + i)) }, await env.ssaWallet.take())).ok);
      const db = ssaDb(env.ssa);
      const rows = await db.all(`SELECT sid, idem, sealed_addr, payload FROM queue WHERE rsa = ? AND state = 'queued'`, [dead]);
      assert.equal(rows.length, 2);
      // Every byte the SSA stores, in every table.
      const tables =
        backend === 'pg'
          ? (await db.all(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'`)).map((t) => String(t.name))
          : (await db.all(`SELECT name FROM sqlite_master WHERE type = 'table'`)).map((t) => String(t.name));
      const needles = [...[...addrs, r.addr].flatMap((a) => [a.subarray(4, 36), a.subarray(36, 68)]), r.seeds[0]!.M];
      for (const table of tables)
        for (const row of await db.all(`SELECT * FROM ${table}`))
          for (const v of Object.values(row)) {
            const bytes = v instanceof Uint8Array ? new Uint8Array(v) : new TextEncoder().encode(String(v));
            for (const n of needles) {
              assert.ok(!hasCommonWindow(bytes, n, 8), `${table} holds 8 bytes of a recipient address`);
              if (typeof v === 'string') assert.ok(!v.includes(b64u(n).slice(0, 12)), `${table} holds an address in base64url: ${v} ~ ${b64u(n)}`);
            }
          }
      // The two queue rows of one relationship have no 8-byte window in common.
      const flat = rows.map((row) => Buffer.concat([row.sid, row.idem, row.sealed_addr, row.payload].map((x) => Buffer.from(x as Uint8Array))));
      assert.ok(!hasCommonWindow(new Uint8Array(flat[0]!), new Uint8Array(flat[1]!), 8));
      // Only the kid (the RSA's current epoch key, shared by all its users) is common to the two addresses.
      assert.ok(!hasCommonWindow(addrs[0]!.subarray(4), addrs[1]!.subarray(4), 4), 'the two re-randomized addresses share bytes beyond the kid');
    });

    it('applies per-inbox quotas: a full inbox answers "retry later" (429 + time), stores nothing, and reports it to the owner', async () => {
      const small = await makeEnv({ rsaLimits: { inboxMaxMessages: 3 } });
      try {
        const r = await recipient(small);
        const statuses: number[] = [];
        for (let i = 0; i < 5; i++) {
          const res = await deliverDirect(small.rsa.url, { addr: b64u(fresh(r.addr, r.key)), ttl_s: 60, payload: b64u(payload(`q${i}`)) });
          statuses.push(res.status);
          if (res.status === 429) {
            assert.equal(res.headers.get('retry-after'), '60');
            assert.equal(((await res.json()) as { retry_after_s: number }).retry_after_s, 60);
          }
        }
        assert.deepEqual(statuses, [202, 202, 202, 429, 429]);
        const f = await r.inbox.fetch();
        assert.equal(f.messages.length, 3);
        assert.equal(f.droppedByLimit[b64u(r.seeds[0]!.seedId)], 2);
        // Room again (an ack): the retried delivery goes in, it was not marked as a duplicate.
        await r.inbox.ack([f.messages[0]!.mid]);
        const again = await deliverDirect(small.rsa.url, { addr: b64u(fresh(r.addr, r.key)), ttl_s: 60, payload: b64u(payload('q3')) });
        assert.equal(again.status, 202);
        const texts = await Promise.all((await r.inbox.fetch()).messages.map(async (m) => new TextDecoder().decode((await r.inbox.open(m))!)));
        assert.deepEqual(texts.sort(), ['q1', 'q2', 'q3']);
      } finally {
        await small.close();
      }
    });

    it('refuses unpaid deliveries from SSA keys it does not trust before any work, so they cannot use up a seed; the paid message arrives', async () => {
      const e = await makeEnv({ rsaLimits: { perSeedPerMinute: 5 } });
      try {
        const r = await recipient(e);
        const resolvesBefore = e.rsa.stats.resolves;
        // An outsider holding the address, a fresh throwaway key per delivery, no token (issue 14 row 1).
        for (let i = 0; i < 60; i++) {
          const res = await deliverDirect(e.rsa.url, { addr: b64u(fresh(r.addr, r.key)), ttl_s: 60, payload: b64u(payload(`junk${i}`)) }, undefined, { key: generateEd25519() });
          assert.equal(res.status, 401);
          assert.match(res.headers.get('www-authenticate') ?? '', /^PrivateToken challenge=/);
        }
        const batch = await deliverDirect(
          e.rsa.url,
          { items: Array.from({ length: 10 }, (_, i) => ({ addr: b64u(fresh(r.addr, r.key)), ttl_s: 60, payload: b64u(payload(`junkb${i}`)) })) },
          undefined,
          { key: generateEd25519(), path: '/v1/deliver/batch' },
        );
        assert.equal(batch.status, 401);
        // Claiming a trusted keyid without its private key: refused on the signature, before the
        // body is parsed as JSON (so not "Malformed JSON").
        const forger = generateEd25519();
        const junk = new TextEncoder().encode('{not json');
        for (const path of ['/v1/deliver', '/v1/deliver/batch']) {
          const spoofed = await fetch(`${e.rsa.url}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...signRequest(forger, keyidOf(trustedTestSsa.publicKey), 'POST', path, junk) },
            body: Buffer.from(junk),
          });
          assert.equal(spoofed.status, 401, path);
          assert.equal(((await spoofed.json()) as { title: string }).title, 'Delivery signature refused');
        }
        assert.equal(e.rsa.stats.resolves, resolvesBefore, 'no address was resolved for an unpaid delivery');
        assert.equal((await r.inbox.fetch()).droppedByLimit[b64u(r.seeds[0]!.seedId)], undefined, 'the seed limit was not touched');
        // The genuine messages, through the SSA the RSA trusts.
        const sids: string[] = [];
        for (let i = 0; i < 5; i++) {
          const s = await e.ssaClient.submit({ rsa: e.rsa.url, addr: fresh(r.addr, r.key), payload: payload(`real${i}`) }, await e.ssaWallet.take());
          assert.ok(s.ok);
          sids.push(s.sid);
        }
        await e.ssa.flush();
        await waitFor(async () => (await Promise.all(sids.map((s) => e.ssaClient.status(s)))).every((x) => x === 'forwarded'), 10_000, 'forwarded');
        const texts = await Promise.all((await r.inbox.fetch()).messages.map(async (m) => new TextDecoder().decode((await r.inbox.open(m))!)));
        assert.deepEqual(texts.sort(), ['real0', 'real1', 'real2', 'real3', 'real4']);
      } finally {
        await e.close();
      }
    });

    it('takes a delivery from an SSA it does not trust when it is paid, once per token, and refuses a replayed token before resolving', async () => {
      const r = await recipient(env);
      const outsider = generateEd25519();
      const token = await env.rsaWallet.take();
      const ok = await deliverDirect(env.rsa.url, { addr: b64u(fresh(r.addr, r.key)), ttl_s: 60, payload: b64u(payload('paid')) }, undefined, { key: outsider, token });
      assert.equal(ok.status, 202);
      const texts = await Promise.all((await r.inbox.fetch()).messages.map(async (m) => new TextDecoder().decode((await r.inbox.open(m))!)));
      assert.deepEqual(texts, ['paid']);
      const resolves = env.rsa.stats.resolves;
      const replay = await deliverDirect(env.rsa.url, { addr: b64u(fresh(r.addr, r.key)), ttl_s: 60, payload: b64u(payload('replayed')) }, undefined, { key: outsider, token });
      assert.equal(replay.status, 401);
      assert.match(((await replay.json()) as { detail: string }).detail, /spent/);
      assert.equal(env.rsa.stats.resolves, resolves, 'a replayed token costs no resolve');
      // A token of another origin (the SSA's) does not pay for a delivery either.
      const wrong = await deliverDirect(env.rsa.url, { addr: b64u(fresh(r.addr, r.key)), ttl_s: 60, payload: b64u(payload('x')) }, undefined, { key: outsider, token: await env.ssaWallet.take() });
      assert.equal(wrong.status, 401);
      assert.equal((await r.inbox.fetch()).messages.length, 1);
    });

    it('retries a message that met a per-seed limit later and delivers it; the SSA does not report it forwarded meanwhile', async () => {
      const e = await makeEnv({ rsaLimits: { perSeedPerMinute: 3 } });
      try {
        const r = await recipient(e);
        const sids: string[] = [];
        for (let i = 0; i < 5; i++) {
          const s = await e.ssaClient.submit({ rsa: e.rsa.url, addr: fresh(r.addr, r.key), payload: payload(`lim${i}`) }, await e.ssaWallet.take());
          assert.ok(s.ok);
          sids.push(s.sid);
        }
        await e.ssa.flush();
        await waitFor(async () => (await r.inbox.fetch()).messages.length === 3, 10_000, '3 stored');
        await new Promise((res) => setTimeout(res, 300)); // several worker ticks: the other two must stay queued
        await e.ssa.flush();
        const states = await Promise.all(sids.map((s) => e.ssaClient.status(s)));
        assert.deepEqual(states.filter((x) => x === 'forwarded').length, 3);
        assert.deepEqual(states.filter((x) => x === 'queued').length, 2, `deferred items stay queued: ${states}`);
        assert.equal((await r.inbox.fetch()).messages.length, 3);
        // The RSA said "retry in ~60 s" (spread by up to 20 %): past that, they go through.
        e.clock.offset = 75_000;
        await e.ssa.flush();
        await waitFor(async () => (await Promise.all(sids.map((s) => e.ssaClient.status(s)))).every((x) => x === 'forwarded'), 10_000, 'all forwarded');
        const texts = await Promise.all((await r.inbox.fetch()).messages.map(async (m) => new TextDecoder().decode((await r.inbox.open(m))!)));
        assert.deepEqual(texts.sort(), ['lim0', 'lim1', 'lim2', 'lim3', 'lim4']);
      } finally {
        await e.close();
      }
    });

    it('bounds the work of one batch: at most maxBatchItems (64) items, one resolve each at most', async () => {
      const r = await recipient(env);
      const items = (n: number) => Array.from({ length: n }, () => ({ addr: b64u(deriveAddress(generateSeed(), r.key)), ttl_s: 60, payload: b64u(payload('b')) }));
      const before = env.rsa.stats.resolves;
      const tooMany = await deliverDirect(env.rsa.url, { items: items(65) }, undefined, { path: '/v1/deliver/batch' });
      assert.equal(tooMany.status, 400);
      assert.equal(env.rsa.stats.resolves, before, 'an oversized batch is refused before any resolve');
      const full = await deliverDirect(env.rsa.url, { items: items(64) }, undefined, { path: '/v1/deliver/batch' });
      assert.equal(full.status, 200);
      const answer = (await full.json()) as { results: number[]; retry_after_s: number[] };
      assert.deepEqual(answer.results, Array(64).fill(202));
      assert.deepEqual(answer.retry_after_s, Array(64).fill(0));
      assert.equal(env.rsa.stats.resolves - before, 64);
      // An unknown kid costs no resolve at all.
      const unknownKid = items(8).map((it) => {
        const a = fromB64u(it.addr)!;
        a[3]! ^= 0xff;
        return { ...it, addr: b64u(a) };
      });
      const cheap = await deliverDirect(env.rsa.url, { items: unknownKid }, undefined, { path: '/v1/deliver/batch' });
      assert.equal(cheap.status, 200);
      assert.equal(env.rsa.stats.resolves - before, 64);
    });

    it('serves RSA descriptors through the SSA only against a token, checked before it is handed on', async () => {
      const noToken = await fetch(`${env.ssa.url}/v1/rsa-descriptor?rsa=${encodeURIComponent(env.rsa.url)}`);
      assert.equal(noToken.status, 401);
      assert.match(noToken.headers.get('www-authenticate') ?? '', /^PrivateToken challenge=/);
      const t = await env.ssaWallet.take();
      const d = await env.ssaClient.rsaDescriptor(env.rsa.url, t, env.rsa.serviceKey);
      assert.deepEqual(addressKeysOf(d).map((k) => k.kid).sort(), addressKeysOf(await env.rsaClient.descriptor()).map((k) => k.kid).sort());
      await assert.rejects(() => env.ssaClient.rsaDescriptor(env.rsa.url, t), /401.*spent/);
    });

    it('publishes a signed descriptor and rotates epoch keys; expired addresses get 202 and nothing stored', async () => {
      const e = await makeEnv();
      try {
        const d = await e.rsaClient.descriptor(e.rsa.serviceKey);
        const keys = addressKeysOf(d);
        assert.deepEqual(keys.map((k) => k.class).sort(), ['ephemeral', 'long']);
        const r = await recipient(e);
        const ok = await deliverDirect(e.rsa.url, { addr: b64u(fresh(r.addr, r.key)), ttl_s: 60, payload: b64u(payload('in time')) });
        assert.equal(ok.status, 202);
        assert.equal((await r.inbox.fetch()).messages.length, 1);
        e.clock.offset = 4 * DAY;
        await e.rsa.rotateKeys();
        const k2 = addressKeysOf(await e.rsaClient.descriptor()).filter((k) => k.class === 'ephemeral');
        assert.equal(k2.length, 2, 'a successor ephemeral key is published before the current one ends');
        // Past resolve_until (7 d derive + 30 d) the key is deleted: the address resolves no more.
        e.clock.offset = 38 * DAY;
        await e.rsa.rotateKeys();
        assert.ok(!addressKeysOf(await e.rsaClient.descriptor()).some((k) => k.kid === r.key.kid));
        const before = await count(rsaDb(e.rsa), 'messages');
        const late = await deliverDirect(e.rsa.url, { addr: b64u(fresh(r.addr, r.key)), ttl_s: 60, payload: b64u(payload('too late')) }, e.clock);
        assert.equal(late.status, 202);
        assert.equal(await count(rsaDb(e.rsa), 'messages'), before);
      } finally {
        await e.close();
      }
    });

    it('enforces the issuer quota per account', async () => {
      const e = await makeEnv({ quota: { ssa: 3 } });
      try {
        const info = tokenInfoOf(await e.ssaClient.descriptor());
        assert.equal((await e.issuerClient.mint(info, 3)).length, 3);
        await assert.rejects(() => e.issuerClient.mint(info, 1), /429/);
        const q = await e.issuerClient.quota();
        assert.deepEqual(q.ssa, { used: 3, limit: 3 });
        const other = await IssuerClient.register(e.issuer.url);
        assert.equal((await other.mint(info, 1)).length, 1);
        assert.equal((await fetch(`${e.issuer.url}/v1/token-request`, { method: 'POST' })).status, 401);
      } finally {
        await e.close();
      }
    });

    it('stores attachments (size limit, expiry, token)', async () => {
      const data = new Uint8Array(randomBytes(200_000));
      const up = await env.ssaClient.uploadBlob(data, await env.ssaWallet.take(), 60);
      assert.deepEqual(await env.ssaClient.getBlob(up.get_url), data);
      await assert.rejects(() => env.ssaClient.uploadBlob(new Uint8Array(1024 * 1024 + 1), new Uint8Array(354)), /413/);
      const noToken = await fetch(`${env.ssa.url}/v1/blobs`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from('x') });
      assert.equal(noToken.status, 401);
      env.clock.offset = 61_000;
      try {
        assert.equal(await env.ssaClient.getBlob(up.get_url), null);
      } finally {
        env.clock.offset = 0;
      }
    });

    it('loses nothing the RSA acknowledged when it is killed (SIGKILL) and restarted mid-stream', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'umbra-hub-'));
      dirs.push(dir);
      const hub = await startHub({
        dataDir: dir,
        rsaMode: 'child',
        rsaLimits: { perSeedPerMinute: 10_000, perSeedPerDay: 100_000 },
        ssaRetry: { baseMs: 50, maxMs: 400 },
        databases: { issuer: await dbFor('issuer'), ssa: await dbFor('ssa'), rsa: [await dbFor('rsa1'), await dbFor('rsa2')] },
      });
      try {
        const issuer = await IssuerClient.register(hub.issuer);
        const rsa = new RsaClient(hub.rsas[0], nodeServiceClientOptions);
        const ssa = new SsaClient(hub.ssa);
        const rd = await rsa.descriptor();
        const rw = new TokenWallet(issuer, tokenInfoOf(rd), 10);
        const sw = new TokenWallet(issuer, tokenInfoOf(await ssa.descriptor()), 100);
        const inbox = await rsa.createInbox(await rw.takeMany(5));
        const [seed] = await inbox.requestSeeds(await rw.take(), 1);
        const key = currentAddressKey(addressKeysOf(rd), 'ephemeral');
        const addr = deriveAddress(seed!.M, key);
        const N = 60;
        const sids: string[] = [];
        for (let i = 0; i < N; i++) {
          if (i === 20) await hub.rsaHandles[0].kill();
          if (i === 40) await hub.rsaHandles[0].restart();
          const s = await ssa.submit({ rsa: hub.rsas[0], addr: fresh(addr, key), payload: payload(`crash-${i}`) }, await sw.take());
          assert.ok(s.ok);
          sids.push(s.sid);
        }
        await waitFor(async () => (await Promise.all(sids.map((s) => ssa.status(s)))).every((s) => s === 'forwarded'), 30_000, 'all forwarded');
        // Kill again right after everything was acknowledged: all of it must survive.
        await hub.rsaHandles[0].kill();
        await hub.rsaHandles[0].restart();
        const seen = new Set<string>();
        let cursor: string | undefined;
        for (;;) {
          const f = await inbox.fetch(cursor, 100);
          for (const m of f.messages) seen.add(new TextDecoder().decode((await inbox.open(m))!));
          if (f.messages.length < 100) break;
          cursor = f.cursor;
        }
        assert.equal(seen.size, N);
        for (let i = 0; i < N; i++) assert.ok(seen.has(`crash-${i}`), `crash-${i} lost`);
      } finally {
        await hub.close();
      }
    });

    it('decodes base64url strictly', () => {
      assert.equal(fromB64u('AA=='), null);
      assert.equal(fromB64u('A+/'), null);
      assert.deepEqual(fromB64u('AAE'), new Uint8Array([0, 1]));
    });
  });
}
