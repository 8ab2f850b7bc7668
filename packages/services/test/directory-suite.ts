/**
 * The directory test suite, run on SQLite (directory-sqlite.test.ts) and PostgreSQL
 * (directory-pg.test.ts): real servers on loopback, real Privacy Pass tokens, real invitations.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nobleProvider, parseInvitation, invitationText, toHex, transparency as t } from '@umbra/protocol';
import { createInvitation } from '../../protocol/src/invitation.ts';
import { DirectoryHttpClient, IssuerClient, ServiceError, TokenWallet, type DirectoryInfo } from '@umbra/client/http';
import {
  generateEd25519,
  startDirectory,
  startHub,
  startIssuer,
  type DirectoryLimits,
  type DirectoryService,
  type Ed25519Key,
  type IssuerService,
} from '../src/index.ts';
import type { SqlDriver } from '../src/db.ts';
import { startPostgres, type PrivatePostgres } from './pg.ts';

export type Backend = 'sqlite' | 'pg';

const ADMIN = 'admin-secret-for-tests-0123456789';

interface Env {
  dir: DirectoryService;
  issuer: IssuerService;
  http: DirectoryHttpClient;
  info: DirectoryInfo;
  wallet: TokenWallet;
  close(): Promise<void>;
}

function db(s: DirectoryService): SqlDriver {
  return s.store.db;
}

async function counts(s: DirectoryService): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of ['dir_names', 'dir_versions', 'dir_log', 'dir_packages', 'dir_last_resort', 'dir_requests', 'spent']) {
    out[table] = Number((await db(s).all(`SELECT COUNT(*) AS n FROM ${table}`))[0]!.n);
  }
  return out;
}

function keyPackage(owner: Ed25519Key, ns: string, name: string, reusable = false): { kp: Uint8Array; opk: string } {
  const { inbox } = createInvitation(nobleProvider, { nowMs: Date.now(), reusable, ttlSeconds: 3600, presentation: { name } });
  return { kp: t.createKeyPackage(owner.seed, ns, name, inbox.signedInvitation), opk: inbox.oneTimePrekey ? toHex(inbox.oneTimePrekey.publicKey) : '' };
}

async function status(res: Response): Promise<{ status: number; title: string; detail: string }> {
  const j = (await res.json().catch(() => ({}))) as { title?: string; detail?: string };
  return { status: res.status, title: j.title ?? '', detail: j.detail ?? '' };
}

export function directorySuite(backend: Backend): void {
  let pg: PrivatePostgres | null = null;
  const dirs: string[] = [];
  const envs: Env[] = [];
  const dbFor = async (name: string): Promise<string> => {
    if (backend === 'pg') return pg!.createDb();
    const dir = mkdtempSync(join(tmpdir(), 'umbra-dir-'));
    dirs.push(dir);
    return join(dir, `${name}.db`);
  };

  async function makeEnv(opts: { tokens?: boolean; limits?: Partial<DirectoryLimits> } = {}): Promise<Env> {
    const issuer = await startIssuer({ db: await dbFor('issuer'), quota: { ssa: 100_000, rsa: 1000 } });
    const dir = await startDirectory({
      db: await dbFor('directory'),
      namespace: 'example.test',
      adminSecret: ADMIN,
      ...(opts.limits ? { limits: opts.limits } : {}),
      ...(opts.tokens === false ? {} : { issuerName: issuer.issuerName, tokenKeys: [issuer.tokenKeys.ssa] }),
    });
    const http = new DirectoryHttpClient(dir.url);
    const info = await http.info();
    const ic = await IssuerClient.register(issuer.url);
    const wallet = new TokenWallet(ic, info.token ?? { issuerName: '', originInfo: '', tokenKey: new Uint8Array(0), challenge: null as never }, 60);
    const env: Env = {
      dir,
      issuer,
      http,
      info,
      wallet,
      async close() {
        await dir.close();
        await issuer.close();
      },
    };
    envs.push(env);
    return env;
  }

  async function register(env: Env, name: string, key: Ed25519Key = generateEd25519()) {
    const ts = Date.now();
    const r = await env.http.register(name, { ipk: key.publicKey, pop: t.signPop(key.seed, env.info.namespace, name, ts), ts });
    return { key, r };
  }

  before(async () => {
    if (backend === 'pg') pg = await startPostgres();
  });
  after(async () => {
    for (const e of envs) await e.close().catch(() => {});
    if (pg) await pg.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  describe(`directory (${backend})`, () => {
    let env: Env;
    before(async () => {
      env = await makeEnv();
    });

    it('registers a name and serves a verifiable, token-gated lookup', async () => {
      const { key, r } = await register(env, 'alice');
      assert.equal(r.version, 1);
      assert.equal(r.type, 'register');
      // Anonymous lookups need a token: 401 with a challenge.
      const res = await env.http.request('GET', '/v1/names/alice/identity', undefined);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^PrivateToken challenge=/);
      const token = await env.wallet.take();
      const bundle = await env.http.lookup('alice', {}, { token });
      const v = new t.LogVerifier(env.info.logOrigin, env.info.logKey);
      const res1 = v.verifyLookup(bundle, env.info.namespace, 'alice');
      assert.equal(toHex(res1.ipk), toHex(key.publicKey));
      assert.equal(res1.change, 'first-seen');
      // A token is spent once.
      const again = await status(await env.http.request('GET', '/v1/names/alice/identity', undefined, { token }));
      assert.equal(again.status, 401);
      assert.match(again.detail, /spent/);
      // A member may sign instead of paying.
      const b2 = await env.http.lookup('alice', { since: 1, from: v.checkpoint!.size }, { signer: key });
      assert.equal(v.verifyLookup(b2, env.info.namespace, 'alice').change, 'same');
    });

    it('rotates a key with "follows"; refuses a takeover; an operator reset raises alerts for contacts and the owner', async () => {
      const { key: k1, r } = await register(env, 'bob');
      const contact = new t.LogVerifier(env.info.logOrigin, env.info.logKey);
      contact.verifyLookup(await env.http.lookup('bob', {}, { signer: k1 }), env.info.namespace, 'bob');
      const monitor = new t.LogMonitor(env.info.logOrigin, env.info.logKey);
      monitor.expect(env.info.namespace, 'bob', 1, t.commitValue(r.opening, t.nameLabel(env.info.namespace, 'bob'), 1, k1.publicKey));

      // Someone else tries to take the name.
      const thief = generateEd25519();
      const ts = Date.now();
      const taken = await env.http.request('PUT', '/v1/names/bob/identity', { ipk: Buffer.from(thief.publicKey).toString('base64url'), pop: Buffer.from(t.signPop(thief.seed, env.info.namespace, 'bob', ts)).toString('base64url'), ts });
      assert.equal((await status(taken)).status, 409);
      // A follows signed by the wrong old key is refused.
      const bad = t.createFollows(thief.seed, generateEd25519().seed, ts);
      const k2 = generateEd25519();
      await assert.rejects(env.http.register('bob', { ipk: k2.publicKey, pop: t.signPop(k2.seed, env.info.namespace, 'bob', ts), ts, follows: bad }), (e: ServiceError) => e.problem.status === 400);

      const follows = t.createFollows(k1.seed, k2.seed, ts);
      const rot = await env.http.register('bob', { ipk: k2.publicKey, pop: t.signPop(k2.seed, env.info.namespace, 'bob', ts), ts, follows });
      assert.equal(rot.type, 'rotate');
      assert.equal(rot.version, 2);
      monitor.expect(env.info.namespace, 'bob', 2, t.commitValue(rot.opening, t.nameLabel(env.info.namespace, 'bob'), 2, k2.publicKey));
      const known = contact.known(env.info.namespace, 'bob')!;
      const r2 = contact.verifyLookup(await env.http.lookup('bob', { since: known.version, from: contact.checkpoint!.size }, { signer: k2 }), env.info.namespace, 'bob');
      assert.equal(r2.change, 'rotated');
      assert.deepEqual(r2.alerts, []);

      // The operator resets bob's key (no follows): contacts and the owner are alerted.
      const k3 = generateEd25519();
      const reset = await env.http.register('bob', { ipk: k3.publicKey, pop: t.signPop(k3.seed, env.info.namespace, 'bob', ts), ts }, ADMIN);
      assert.equal(reset.type, 'reset');
      const r3 = contact.verifyLookup(await env.http.lookup('bob', { since: 2, from: contact.checkpoint!.size }, { signer: k3 }), env.info.namespace, 'bob');
      assert.equal(r3.change, 'reset');
      assert.equal(r3.alerts.length, 1);
      const cp = await env.http.checkpoint();
      const size = t.verifyCheckpoint(cp, env.info.logOrigin, env.info.logKey)!.size;
      const alerts = monitor.process(await env.http.entries(0, size), cp);
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0]!.version, 3);
    });

    it('50 parallel contacts for one name never receive the same one-time prekey', async () => {
      // A name hands out 10 one-time packages an hour by default: this checks concurrency, so it lifts that.
      const env = await makeEnv({ limits: { oneTimePerTargetPerHour: 1000 } });
      const { key } = await register(env, 'carol');
      const made = Array.from({ length: 60 }, () => keyPackage(key, env.info.namespace, 'carol'));
      await env.http.uploadPackages('carol', key, made.slice(0, 30).map((m) => m.kp));
      const st = await env.http.uploadPackages('carol', key, made.slice(30).map((m) => m.kp), keyPackage(key, env.info.namespace, 'carol', true).kp);
      assert.deepEqual(st, { available: 60, lastResort: true });
      const tokens = await env.wallet.takeMany(50);
      const results = await Promise.all(tokens.map((token) => env.http.contact('carol', { note: 'hi' }, { token })));
      const opks = new Set<string>();
      for (const r of results) {
        assert.equal(r.state, 'approved');
        if (r.state !== 'approved') continue;
        const kp = t.verifyKeyPackage(r.keyPackage, key.publicKey, env.info.namespace, 'carol');
        assert.ok(kp, 'bound to the directory key');
        const inv = parseInvitation(nobleProvider, invitationText(kp.signedInvitation), Date.now());
        assert.ok(inv.oneTimePrekey);
        opks.add(toHex(inv.oneTimePrekey));
        assert.ok(r.oneTime);
      }
      assert.equal(opks.size, 50, 'every requester got a different one-time prekey');
      const all = new Set(made.map((m) => m.opk));
      for (const o of opks) assert.ok(all.has(o));
      assert.equal((await env.http.packageStatus('carol', key)).available, 10);
      // Drain the rest: then the reusable last-resort package is handed out.
      for (let i = 0; i < 10; i++) await env.http.contact('carol', {}, { token: await env.wallet.take() });
      const last = await env.http.contact('carol', {}, { token: await env.wallet.take() });
      assert.equal(last.state === 'approved' && last.oneTime, false);
    });

    it('policy: closed refuses, approval queues, members-only checks membership', async () => {
      const { key } = await register(env, 'dave');
      await env.http.uploadPackages('dave', key, [keyPackage(key, env.info.namespace, 'dave').kp, keyPackage(key, env.info.namespace, 'dave').kp]);
      const { key: member } = await register(env, 'erin');

      await env.http.setPolicy('dave', key, 'closed');
      const closed = await status(await env.http.request('POST', '/v1/names/dave/contact', {}, { token: await env.wallet.take() }));
      assert.deepEqual([closed.status, closed.title], [403, 'Contact closed']);

      await env.http.setPolicy('dave', key, 'members');
      const anon = await status(await env.http.request('POST', '/v1/names/dave/contact', {}, { token: await env.wallet.take() }));
      assert.deepEqual([anon.status, anon.title], [403, 'Members only']);
      const stranger = await status(await env.http.request('POST', '/v1/names/dave/contact', {}, { signer: generateEd25519() }));
      assert.deepEqual([stranger.status, stranger.title], [403, 'Not a member']);
      // Members pay for contact too.
      const unpaid = await status(await env.http.request('POST', '/v1/names/dave/contact', {}, { signer: member }));
      assert.deepEqual([unpaid.status, unpaid.title], [401, 'Token refused']);
      const ok = await env.http.contact('dave', {}, { signer: member, token: await env.wallet.take() });
      assert.equal(ok.state, 'approved');

      await env.http.setPolicy('dave', key, 'approval');
      const before = await counts(env.dir);
      const p1 = await env.http.contact('dave', { note: 'it is Reed from the climbing club' }, { token: await env.wallet.take() });
      const p2 = await env.http.contact('dave', { note: 'spam' }, { token: await env.wallet.take() });
      assert.equal(p1.state, 'pending');
      assert.equal(p2.state, 'pending');
      assert.equal((await counts(env.dir)).dir_packages, before.dir_packages, 'nothing handed out while pending');
      const pending = await env.http.pendingRequests('dave', key);
      assert.deepEqual(pending.map((p) => p.note), ['it is Reed from the climbing club', 'spam']);
      assert.equal(await env.http.pollRequest(p1.state === 'pending' ? p1.requestId : ''), null);
      await env.http.decide('dave', key, pending[0]!.id, 'approve');
      await env.http.decide('dave', key, pending[1]!.id, 'deny');
      const got = await env.http.pollRequest(pending[0]!.id);
      assert.equal(got?.state, 'approved');
      await assert.rejects(env.http.pollRequest(pending[1]!.id), (e: ServiceError) => e.problem.status === 403);
      // Only the owner may see or decide requests.
      const notOwner = await status(await env.http.request('GET', '/v1/names/dave/requests', undefined, { signer: member }));
      assert.equal(notOwner.status, 403);
    });

    it('contact costs something: one name cannot drain a victim\'s one-time packages or fill the approval queue (issue 14 row 3)', async () => {
      const ns = env.info.namespace;
      const { key: victim } = await register(env, 'vera');
      await env.http.uploadPackages('vera', victim, Array.from({ length: 20 }, () => keyPackage(victim, ns, 'vera').kp), keyPackage(victim, ns, 'vera', true).kp);
      const { key: attacker } = await register(env, 'mallory');

      // A registered name no longer contacts for free.
      const free = await status(await env.http.request('POST', '/v1/names/vera/contact', {}, { signer: attacker }));
      assert.deepEqual([free.status, free.title], [401, 'Token refused']);

      // Even paying a token each time, the attacker gets one one-time package, then only the
      // reusable last-resort one; past 30 contacts an hour it is refused outright.
      const got: boolean[] = [];
      const refused: { status: number; retryAfter: string | null }[] = [];
      for (let i = 0; i < 40; i++) {
        const res = await env.http.request('POST', '/v1/names/vera/contact', {}, { signer: attacker, token: await env.wallet.take() });
        if (res.ok) got.push(((await res.json()) as { one_time: boolean }).one_time);
        else refused.push({ status: (await status(res)).status, retryAfter: res.headers.get('retry-after') });
      }
      assert.equal(got.filter((x) => x).length, 1, 'one one-time package for the attacker');
      assert.equal(got.length, 30, 'last-resort packages until the hourly limit');
      assert.equal(refused.length, 10);
      for (const r of refused) {
        assert.equal(r.status, 429);
        assert.ok(Number(r.retryAfter) > 0 && Number(r.retryAfter) <= 3600, 'Retry-After within the hour');
      }
      assert.equal((await env.http.packageStatus('vera', victim)).available, 19, 'the victim keeps one-time packages for others');

      // Others still get one-time packages: another member, and an anonymous token payer.
      const { key: other } = await register(env, 'olga');
      const o = await env.http.contact('vera', {}, { signer: other, token: await env.wallet.take() });
      assert.ok(o.state === 'approved' && o.oneTime);
      const anon = await env.http.contact('vera', {}, { token: await env.wallet.take() });
      assert.ok(anon.state === 'approved' && anon.oneTime);

      // Per target: at most 10 one-time packages an hour, whoever asks; then the last-resort one.
      const oneTime: boolean[] = [];
      for (let i = 0; i < 10; i++) {
        const r = await env.http.contact('vera', {}, { token: await env.wallet.take() });
        oneTime.push(r.state === 'approved' && r.oneTime);
      }
      assert.deepEqual(oneTime, [...Array(7).fill(true), false, false, false]);
      assert.equal((await env.http.packageStatus('vera', victim)).available, 10);

      // The approval queue: a member has one pending request per name; anonymous requests take at
      // most 50 of the 100 places; so after both floods a member still gets through.
      const { key: spammer } = await register(env, 'mort');
      const { key: owner } = await register(env, 'wren');
      await env.http.uploadPackages('wren', owner, [keyPackage(owner, ns, 'wren').kp]);
      await env.http.setPolicy('wren', owner, 'approval');
      const flood: number[] = [];
      for (let i = 0; i < 100; i++) flood.push((await env.http.request('POST', '/v1/names/wren/contact', { note: `spam ${i}` }, { signer: spammer, token: await env.wallet.take() })).status);
      assert.equal(flood.filter((s) => s === 202).length, 1, 'one pending request per member');
      assert.equal(flood.filter((s) => s === 429).length, 99);
      const anonFlood: number[] = [];
      for (let i = 0; i < 60; i++) anonFlood.push((await env.http.request('POST', '/v1/names/wren/contact', { note: 'spam' }, { token: await env.wallet.take() })).status);
      assert.equal(anonFlood.filter((s) => s === 202).length, 50);
      assert.equal(anonFlood.filter((s) => s === 429).length, 10);
      const fair = await env.http.contact('wren', { note: 'Olga from the club' }, { signer: other, token: await env.wallet.take() });
      assert.equal(fair.state, 'pending', 'another requester still gets through');
      const pending = await env.http.pendingRequests('wren', owner);
      assert.equal(pending.length, 52);
      assert.ok(pending.some((p) => p.note === 'olga: Olga from the club'));
      // A refused request keeps its token: the 429s spent nothing.
      const token = await env.wallet.take();
      const refusedOnce = await status(await env.http.request('POST', '/v1/names/wren/contact', {}, { signer: spammer, token }));
      assert.equal(refusedOnce.status, 429);
      const { key: late } = await register(env, 'lena');
      assert.equal((await env.http.contact('wren', {}, { signer: late, token })).state, 'pending');
    });

    it('limits hold under concurrency: parallel paid contacts from one member get one one-time package', async () => {
      const ns = env.info.namespace;
      const { key } = await register(env, 'tess');
      await env.http.uploadPackages('tess', key, Array.from({ length: 30 }, () => keyPackage(key, ns, 'tess').kp), keyPackage(key, ns, 'tess', true).kp);
      for (const name of ['quinn', 'quill', 'quest', 'quorn']) {
        const { key: member } = await register(env, name);
        const tokens = await env.wallet.takeMany(25);
        const results = await Promise.all(tokens.map((token) => env.http.contact('tess', {}, { signer: member, token })));
        assert.equal(results.filter((r) => r.state === 'approved' && r.oneTime).length, 1, `${name}: one one-time package`);
        assert.equal(results.filter((r) => r.state === 'approved' && !r.oneTime).length, 24);
      }
      assert.equal((await env.http.packageStatus('tess', key)).available, 26);
    });

    it('an approval hands out a one-time package, the last-resort one when none is left; polling says which', async () => {
      const ns = env.info.namespace;
      const { key } = await register(env, 'yara');
      await env.http.uploadPackages('yara', key, [keyPackage(key, ns, 'yara').kp], keyPackage(key, ns, 'yara', true).kp);
      await env.http.setPolicy('yara', key, 'approval');
      const a = await env.http.contact('yara', { note: 'a' }, { token: await env.wallet.take() });
      const b = await env.http.contact('yara', { note: 'b' }, { token: await env.wallet.take() });
      assert.ok(a.state === 'pending' && b.state === 'pending');
      await env.http.decide('yara', key, a.requestId, 'approve');
      await env.http.decide('yara', key, b.requestId, 'approve');
      const ra = await env.http.pollRequest(a.requestId);
      const rb = await env.http.pollRequest(b.requestId);
      assert.equal(ra?.state === 'approved' && ra.oneTime, true);
      assert.equal(rb?.state === 'approved' && rb.oneTime, false, 'the reusable last-resort package');
    });

    it('attesting mode: a signed name↔key binding with no addresses, verified against the log', async () => {
      const { key } = await register(env, 'fay');
      const a = await env.http.attestation('fay', key);
      assert.equal(a.attestation.name, 'fay');
      assert.ok(!('key_package' in a.attestation));
      const v = new t.LogVerifier(env.info.logOrigin, env.info.logKey);
      const r = v.verifyLookup(a.bundle, env.info.namespace, 'fay');
      assert.equal(toHex(r.ipk), toHex(key.publicKey));
      const sig = Buffer.from(String(a.attestation.sig), 'base64url');
      assert.ok(t.verifyDirectoryAttestationSig(env.info.logKey, env.info.namespace, 'fay', key.publicKey, 1, r.index, Number(a.attestation.issued_at), sig));
    });

    it('log endpoints: inclusion and consistency proofs verify against signed checkpoints', async () => {
      const cp1 = t.verifyCheckpoint(await env.http.checkpoint(), env.info.logOrigin, env.info.logKey)!;
      await register(env, 'gus');
      const cp2 = t.verifyCheckpoint(await env.http.checkpoint(), env.info.logOrigin, env.info.logKey)!;
      assert.equal(cp2.size, cp1.size + 1);
      assert.ok(t.verifyConsistency(cp1.size, cp2.size, await env.http.consistency(cp1.size, cp2.size), cp1.root, cp2.root));
      const [entry] = await env.http.entries(cp1.size, cp2.size);
      assert.ok(t.verifyInclusion(t.leafHash(entry!), cp1.size, cp2.size, await env.http.inclusion(cp1.size, cp2.size), cp2.root));
      const fresh = new t.LogMonitor(env.info.logOrigin, env.info.logKey);
      assert.deepEqual(fresh.process(await env.http.entries(0, cp2.size), await env.http.checkpoint()), []);
    });

    it('bad input on every endpoint: 4xx with a clear message, nothing stored', async () => {
      const { key } = await register(env, 'hana');
      const ns = env.info.namespace;
      const ts = Date.now();
      const k = generateEd25519();
      const b = (x: Uint8Array) => Buffer.from(x).toString('base64url');
      const goodKp = keyPackage(key, ns, 'hana');
      const otherKp = keyPackage(k, ns, 'hana');
      const reusableKp = keyPackage(key, ns, 'hana', true);
      const snapshot = await counts(env.dir);
      const cases: [string, string, unknown, { signer?: Ed25519Key; token?: boolean }, number, RegExp][] = [
        ['PUT', '/v1/names/Bad%20Name/identity', { ipk: b(k.publicKey), pop: b(t.signPop(k.seed, ns, 'x', ts)), ts }, {}, 400, /Malformed name/],
        ['PUT', '/v1/names/ivan/identity', { ipk: 'not base64!', pop: b(t.signPop(k.seed, ns, 'ivan', ts)), ts }, {}, 400, /Malformed ipk/],
        ['PUT', '/v1/names/ivan/identity', { ipk: b(k.publicKey), pop: b(new Uint8Array(10)), ts }, {}, 400, /Malformed pop/],
        ['PUT', '/v1/names/ivan/identity', { ipk: b(k.publicKey), pop: b(t.signPop(k.seed, ns, 'ivan', ts)), ts: 'now' }, {}, 400, /Malformed ts/],
        ['PUT', '/v1/names/ivan/identity', { ipk: b(k.publicKey), pop: b(t.signPop(k.seed, ns, 'ivan', ts - 3_600_000)), ts: ts - 3_600_000 }, {}, 400, /Stale/],
        ['PUT', '/v1/names/ivan/identity', { ipk: b(k.publicKey), pop: b(t.signPop(k.seed, ns, 'ivana', ts)), ts }, {}, 400, /Bad proof of possession/],
        ['PUT', '/v1/names/ivan/identity', { ipk: b(k.publicKey), pop: b(t.signPop(k.seed, ns, 'ivan', ts)), ts, follows: b(new Uint8Array(3)) }, {}, 400, /Unexpected follows/],
        ['PUT', '/v1/names/hana/identity', { ipk: b(k.publicKey), pop: b(t.signPop(k.seed, ns, 'hana', ts)), ts, follows: '!!' }, {}, 400, /Malformed follows/],
        ['PUT', '/v1/names/hana/identity', { ipk: b(k.publicKey), pop: b(t.signPop(k.seed, ns, 'hana', ts)), ts, follows: b(new Uint8Array(40)) }, {}, 400, /Bad follows/],
        ['PUT', '/v1/names/ivan/identity', [1, 2], {}, 400, /Malformed body/],
        ['GET', '/v1/names/nobody/identity', undefined, { token: true }, 404, /Unknown name/],
        ['GET', '/v1/names/hana/identity?since=-1', undefined, { token: true }, 400, /Malformed since/],
        ['GET', '/v1/names/hana/identity?from=99999', undefined, { token: true }, 400, /Malformed from/],
        ['GET', '/v1/names/hana/identity', undefined, {}, 401, /Token refused/],
        ['POST', '/v1/names/hana/packages', { packages: [b(goodKp.kp)] }, {}, 401, /Signature required/],
        ['POST', '/v1/names/hana/packages', { packages: [b(goodKp.kp)] }, { signer: k }, 403, /Not the owner/],
        ['POST', '/v1/names/hana/packages', { packages: 'x' }, { signer: key }, 400, /Malformed packages/],
        ['POST', '/v1/names/hana/packages', {}, { signer: key }, 400, /Nothing to upload/],
        ['POST', '/v1/names/hana/packages', { packages: [b(goodKp.kp), '%%'] }, { signer: key }, 400, /Malformed key package/],
        ['POST', '/v1/names/hana/packages', { packages: [b(goodKp.kp), b(otherKp.kp)] }, { signer: key }, 400, /Bad key package/],
        ['POST', '/v1/names/hana/packages', { packages: [b(reusableKp.kp)] }, { signer: key }, 400, /no one-time prekey/],
        ['POST', '/v1/names/hana/packages', { packages: [], last_resort: b(goodKp.kp) }, { signer: key }, 400, /must be reusable/],
        ['POST', '/v1/names/hana/packages', { packages: [b(new Uint8Array(100))] }, { signer: key }, 400, /Bad key package/],
        ['GET', '/v1/names/hana/packages/status', undefined, { signer: k }, 403, /Not the owner/],
        ['PUT', '/v1/names/hana/policy', { policy: 'everyone' }, { signer: key }, 400, /Malformed policy/],
        ['PUT', '/v1/names/hana/policy', { policy: 'closed' }, {}, 401, /Signature required/],
        ['POST', '/v1/names/hana/contact', { note: 'x'.repeat(281) }, { token: true }, 400, /Malformed note/],
        ['POST', '/v1/names/hana/contact', { from: 'x' }, { token: true }, 400, /Malformed from/],
        ['POST', '/v1/names/hana/contact', {}, {}, 401, /Token refused/],
        ['POST', '/v1/names/hana/contact', {}, { token: true }, 409, /No key packages/],
        ['POST', '/v1/names/hana/contact', {}, { signer: key }, 400, /Own name/],
        ['GET', '/v1/contact-requests/xyz', undefined, {}, 400, /Malformed request id/],
        ['GET', `/v1/contact-requests/${b(new Uint8Array(16))}`, undefined, {}, 404, /Unknown request/],
        ['POST', `/v1/names/hana/requests/${b(new Uint8Array(16))}`, { decision: 'maybe' }, { signer: key }, 400, /Malformed decision/],
        ['POST', `/v1/names/hana/requests/${b(new Uint8Array(16))}`, { decision: 'approve' }, { signer: key }, 404, /Unknown request/],
        ['POST', '/v1/names/hana/requests/short', { decision: 'approve' }, { signer: key }, 400, /Malformed request id/],
        ['POST', '/v1/names/hana/attestation', {}, { signer: k }, 403, /Not the owner/],
        ['GET', '/v1/log/proof/inclusion?index=5', undefined, {}, 400, /Missing parameters/],
        ['GET', '/v1/log/proof/inclusion?index=5&size=5', undefined, {}, 400, /Out of range/],
        ['GET', '/v1/log/proof/consistency?from=3&to=2', undefined, {}, 400, /Out of range/],
        ['GET', '/v1/log/proof/consistency?from=a&to=2', undefined, {}, 400, /Malformed from/],
        ['GET', '/v1/log/entries?start=0&end=100000', undefined, {}, 400, /Out of range/],
        ['GET', '/v1/log/entries?start=0', undefined, {}, 400, /Missing parameters/],
      ];
      for (const [method, path, body, auth, want, title] of cases) {
        const res = await env.http.request(method, path, body, { ...(auth.signer ? { signer: auth.signer } : {}), ...(auth.token ? { token: await env.wallet.take() } : {}) });
        const p = await status(res);
        assert.equal(p.status, want, `${method} ${path}: ${p.title} ${p.detail}`);
        assert.match(`${p.title}: ${p.detail}`, title, `${method} ${path}`);
        assert.equal(res.headers.get('content-type')?.startsWith('application/problem+json'), true);
      }
      // A malformed JSON body and a wrong content type.
      const raw = await fetch(`${env.dir.url}/v1/names/ivan/identity`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{nope' });
      assert.equal((await status(raw)).title, 'Malformed JSON');
      const after = await counts(env.dir);
      // Only spent tokens may have changed (a refused request never spends its token).
      assert.deepEqual({ ...after, spent: 0 }, { ...snapshot, spent: 0 });
    });

    it('survives a restart: same namespace, log key and log', async () => {
      const path = await dbFor('restart');
      const d1 = await startDirectory({ db: path, namespace: 'restart.test' });
      const c1 = new DirectoryHttpClient(d1.url);
      const k = generateEd25519();
      const ts = Date.now();
      await c1.register('zed', { ipk: k.publicKey, pop: t.signPop(k.seed, 'restart.test', 'zed', ts), ts });
      const cp1 = await c1.checkpoint();
      const key1 = toHex(d1.logKey);
      await d1.close();
      const d2 = await startDirectory({ db: path, namespace: 'ignored.test' });
      try {
        assert.equal(d2.namespace, 'restart.test');
        assert.equal(toHex(d2.logKey), key1);
        const c2 = new DirectoryHttpClient(d2.url);
        assert.equal(await c2.checkpoint(), cp1);
        const v = new t.LogVerifier(d2.logOrigin, d2.logKey);
        v.verifyLookup(await c2.lookup('zed'), 'restart.test', 'zed');
      } finally {
        await d2.close();
      }
    });

    if (backend === 'sqlite') {
      it('is part of the hub', async () => {
        const dataDir = mkdtempSync(join(tmpdir(), 'umbra-hub-dir-'));
        dirs.push(dataDir);
        const hub = await startHub({ dataDir });
        try {
          assert.ok(hub.directory);
          const info = await new DirectoryHttpClient(hub.directory).info();
          assert.ok(info.token, 'lookups are token-gated in the hub');
        } finally {
          await hub.close();
        }
      });
    }
  });
}
