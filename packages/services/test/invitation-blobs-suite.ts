/**
 * Invitation blobs on the directory (src/invitation-blobs.ts): a real issuer and directory on
 * loopback, real Privacy Pass tokens, a controlled clock for expiry. Run on SQLite
 * (invitation-blobs-sqlite.test.ts) and PostgreSQL (invitation-blobs-pg.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { invitationBlobPath, nobleProvider, openInvitationBlob, sealInvitationBlob, toBase64Url } from '@umbra/protocol';
import { DirectoryHttpClient, IssuerClient, TokenWallet } from '@umbra/client/http';
import { startDirectory, startIssuer, type DirectoryService, type IssuerService } from '../src/index.ts';
import { startPostgres, type PrivatePostgres } from './pg.ts';

const crypto = nobleProvider;

interface Env {
  dir: DirectoryService;
  http: DirectoryHttpClient;
  wallet: TokenWallet | null;
  clock: { t: number; now(): number };
}

async function status(res: Response): Promise<{ status: number; title: string; headers: Headers }> {
  const j = (await res.json().catch(() => ({}))) as { title?: string };
  return { status: res.status, title: j.title ?? '', headers: res.headers };
}

export function invitationBlobsSuite(backend: 'sqlite' | 'pg'): void {
describe(`invitation blobs (directory, ${backend})`, () => {
  let pg: PrivatePostgres | null = null;
  const dirs: string[] = [];
  const closers: (() => Promise<void>)[] = [];
  let issuer: IssuerService;
  let paid: Env;
  let unpaid: Env;

  async function makeEnv(opts: { tokens: boolean; limits?: Record<string, number> }): Promise<Env> {
    const d = mkdtempSync(join(tmpdir(), 'umbra-blobs-'));
    dirs.push(d);
    const db = backend === 'pg' ? await pg!.createDb() : join(d, 'directory.db');
    const clock = { t: Date.now(), now() { return this.t; } };
    const dir = await startDirectory({
      db,
      namespace: 'blobs.test',
      clock,
      ...(opts.limits ? { invitationBlobLimits: opts.limits } : {}),
      ...(opts.tokens ? { issuerName: issuer.issuerName, tokenKeys: [issuer.tokenKeys.ssa] } : {}),
    });
    closers.push(() => dir.close());
    const http = new DirectoryHttpClient(dir.url);
    const info = await http.info();
    const wallet = info.token === null ? null : new TokenWallet(await IssuerClient.register(issuer.url), info.token, 20);
    return { dir, http, wallet, clock };
  }

  before(async () => {
    if (backend === 'pg') pg = await startPostgres();
    const d = mkdtempSync(join(tmpdir(), 'umbra-blobs-issuer-'));
    dirs.push(d);
    issuer = await startIssuer({ db: join(d, 'issuer.db'), quota: { ssa: 10_000, rsa: 10 } });
    paid = await makeEnv({ tokens: true, limits: { maxStored: 50, putsPerMinute: 1000, getsPerMinute: 1000 } });
    unpaid = await makeEnv({ tokens: false });
  });

  after(async () => {
    for (const c of closers.reverse()) await c();
    await issuer.close();
    if (pg) await pg.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function sealed(fill: number, size = 100) {
    const key = new Uint8Array(32).fill(fill);
    return { key, path: invitationBlobPath(crypto, key), blob: sealInvitationBlob(crypto, key, new Uint8Array(size).fill(fill)) };
  }
  const inSeconds = (env: Env, s: number) => Math.floor(env.clock.now() / 1000) + s;
  const spentCount = async (env: Env) => Number((await env.dir.store.db.all('SELECT COUNT(*) AS n FROM spent'))[0]!.n);

  it('a paid PUT stores the blob; GET returns it (opens under the link key); the same locator again is 409 and spends nothing', async () => {
    const b = sealed(1);
    const put = await paid.http.request('PUT', b.path, { blob: toBase64Url(b.blob), expires_at: inSeconds(paid, 3600) }, { token: await paid.wallet!.take() });
    assert.equal(put.status, 201);
    assert.equal(put.headers.get('cache-control'), 'no-store');
    const got = await paid.http.request('GET', b.path, undefined);
    assert.equal(got.status, 200);
    const j = (await got.json()) as { blob: string; expires_at: number };
    assert.equal(j.expires_at, inSeconds(paid, 3600));
    assert.deepEqual(openInvitationBlob(crypto, b.key, Buffer.from(j.blob, 'base64url')), new Uint8Array(100).fill(1));
    const spent = await spentCount(paid);
    const again = await status(await paid.http.request('PUT', b.path, { blob: toBase64Url(sealed(2).blob), expires_at: inSeconds(paid, 60) }, { token: await paid.wallet!.take() }));
    assert.equal(again.status, 409);
    assert.equal(await spentCount(paid), spent, 'a refused PUT keeps its token');
  });

  it('unpaid, replayed-token and tokenless-service PUTs are refused; nothing is stored', async () => {
    const b = sealed(3);
    const body = { blob: toBase64Url(b.blob), expires_at: inSeconds(paid, 3600) };
    const none = await status(await paid.http.request('PUT', b.path, body));
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate') ?? '', /PrivateToken/);
    const token = await paid.wallet!.take();
    assert.equal((await paid.http.request('PUT', b.path, body, { token })).status, 201);
    const other = sealed(4);
    const replay = await status(await paid.http.request('PUT', other.path, { ...body, blob: toBase64Url(other.blob) }, { token }));
    assert.deepEqual([replay.status, replay.title], [401, 'Token refused']);
    assert.equal((await paid.http.request('GET', other.path, undefined)).status, 404);
    const off = await status(await unpaid.http.request('PUT', b.path, body));
    assert.deepEqual([off.status, off.title], [403, 'Not offered']);
  });

  it('size cap, TTL bounds, bad locators and bad bodies are typed problems', async () => {
    const b = sealed(5);
    const token = () => paid.wallet!.take();
    const big = await status(await paid.http.request('PUT', b.path, { blob: toBase64Url(new Uint8Array(8193)), expires_at: inSeconds(paid, 60) }, { token: await token() }));
    assert.equal(big.status, 413);
    for (const expires_at of [inSeconds(paid, 0), inSeconds(paid, -10), inSeconds(paid, 7 * 86_400 + 1), 1.5, '100']) {
      const r = await status(await paid.http.request('PUT', b.path, { blob: toBase64Url(b.blob), expires_at }, { token: await token() }));
      assert.deepEqual([r.status, r.title], [400, 'Malformed expires_at'], String(expires_at));
    }
    for (const blob of ['', 'not base64url!', 12]) {
      const r = await status(await paid.http.request('PUT', b.path, { blob, expires_at: inSeconds(paid, 60) }, { token: await token() }));
      assert.deepEqual([r.status, r.title], [400, 'Malformed blob']);
    }
    for (const bad of ['AAAA', toBase64Url(new Uint8Array(33)), toBase64Url(new Uint8Array(32)) + '=', '%00']) {
      assert.equal((await status(await paid.http.request('GET', `/v1/invitation-blob/${bad}`, undefined))).status, 400, bad);
      assert.equal((await status(await paid.http.request('PUT', `/v1/invitation-blob/${bad}`, { blob: 'AA', expires_at: inSeconds(paid, 60) }, { token: await token() }))).status, 400, bad);
    }
    // The longest lifetime is accepted.
    assert.equal((await paid.http.request('PUT', b.path, { blob: toBase64Url(b.blob), expires_at: inSeconds(paid, 7 * 86_400) }, { token: await token() })).status, 201);
  });

  it('unknown → 404, expired → 410 (bytes erased by the sweep), forgotten after a day → 404', async () => {
    const env = await makeEnv({ tokens: true });
    assert.equal((await status(await env.http.request('GET', sealed(9).path, undefined))).status, 404);
    const b = sealed(6);
    assert.equal((await env.http.request('PUT', b.path, { blob: toBase64Url(b.blob), expires_at: inSeconds(env, 120) }, { token: await env.wallet!.take() })).status, 201);
    env.clock.t += 119_000;
    assert.equal((await env.http.request('GET', b.path, undefined)).status, 200);
    env.clock.t += 1_000;
    assert.equal((await status(await env.http.request('GET', b.path, undefined))).status, 410);
    // The sweep (every minute on the directory's timer): erase at expiry, forget a day later.
    const row = async () => (await env.dir.store.db.all('SELECT length(blob) AS n FROM invitation_blobs'))[0];
    await env.dir.invitationBlobs.sweep(env.clock.now());
    assert.equal(Number((await row())!.n), 0);
    assert.equal((await status(await env.http.request('GET', b.path, undefined))).status, 410);
    env.clock.t += 86_400_000;
    await env.dir.invitationBlobs.sweep(env.clock.now());
    assert.equal(await row(), undefined);
    assert.equal((await status(await env.http.request('GET', b.path, undefined))).status, 404);
  });

  it('a full store answers 503 without spending; GETs and PUTs are rate limited per address', async () => {
    const env = await makeEnv({ tokens: true, limits: { maxStored: 2, putsPerMinute: 4, getsPerMinute: 3 } });
    for (const fill of [10, 11]) {
      const b = sealed(fill);
      assert.equal((await env.http.request('PUT', b.path, { blob: toBase64Url(b.blob), expires_at: inSeconds(env, 60) }, { token: await env.wallet!.take() })).status, 201);
    }
    const spent = await spentCount(env);
    const full = sealed(12);
    assert.equal((await status(await env.http.request('PUT', full.path, { blob: toBase64Url(full.blob), expires_at: inSeconds(env, 60) }, { token: await env.wallet!.take() }))).status, 503);
    assert.equal(await spentCount(env), spent);
    const fourth = await status(await env.http.request('PUT', full.path, { blob: toBase64Url(full.blob), expires_at: inSeconds(env, 60) }, { token: await env.wallet!.take() }));
    assert.equal(fourth.status, 503, 'the fourth PUT of the minute still counts as allowed');
    const limited = await status(await env.http.request('PUT', full.path, { blob: toBase64Url(full.blob), expires_at: inSeconds(env, 60) }));
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    const gets = [];
    for (let i = 0; i < 4; i++) gets.push((await env.http.request('GET', full.path, undefined)).status);
    assert.deepEqual(gets, [404, 404, 404, 429]);
  });

});
}
