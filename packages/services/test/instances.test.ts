/**
 * Instances of one role sharing one PostgreSQL database (issue 18 item 1), in process: replay
 * checks, spent tokens, the issuer quota, the per-SSA delivery window, the epoch-key schedule and
 * WebSocket push all hold across instances; identity keys come from key files; `umbra serve`
 * starts an instance. The multi-process run with kills is instances-processes.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { nodeProvider } from '@umbra/crypto-node';
import { transparency as t } from '@umbra/protocol';
import {
  addressKeysOf,
  currentAddressKey,
  DirectoryHttpClient,
  IssuerClient,
  RsaClient,
  SsaClient,
  tokenInfoOf,
  TokenWallet,
  type RsaMessage,
  type ServiceClientOptions,
} from '@umbra/client/http';
import { deriveAddress, generateAddressKey, rerandomizeAddress } from '@umbra/protocol/services';
import { b64u } from '../src/bytes.ts';
import { startDirectory, type DirectoryService } from '../src/directory/server.ts';
import { ed25519FromSeed, generateEd25519, keyidOf, NonceCache, signRequest } from '../src/httpsig.ts';
import { generateKeyFile, readKeyFile, startInstance, type Instance } from '../src/instance.ts';
import { startIssuer, type IssuerService } from '../src/issuer.ts';
import { startRsa, type RsaService } from '../src/rsa.ts';
import { DbNonceStore, InstanceConfigError, nonceStoreFor } from '../src/shared-state.ts';
import { SqliteDriver } from '../src/db.ts';
import { startSsa, type SsaService } from '../src/ssa.ts';
import { authorizationHeader } from '../src/tokens.ts';
import { startPostgres, type PrivatePostgres } from './pg.ts';

const clientOptions: ServiceClientOptions = { crypto: nodeProvider, webSocket: WebSocket as unknown as ServiceClientOptions['webSocket'] };
const repoRoot = resolve(import.meta.dirname, '../../..');

async function waitFor(cond: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function problemOf(res: Response): Promise<{ status: number; detail: string }> {
  const j = (await res.json().catch(() => ({}))) as { detail?: string };
  return { status: res.status, detail: j.detail ?? '' };
}

describe('instances of a role on one PostgreSQL', () => {
  let pg: PrivatePostgres;
  const dir = mkdtempSync(join(tmpdir(), 'umbra-instances-'));
  const closers: (() => Promise<void>)[] = [];
  let issuers: IssuerService[];
  let ssas: SsaService[];
  let rsas: RsaService[];
  let dirs: DirectoryService[];
  const trustedSsa = generateEd25519();
  const rsaKey = new Uint8Array(randomBytes(32));
  let rsaDb: string;
  let account: IssuerClient;

  before(async () => {
    pg = await startPostgres();
    const [issuerDb, ssaDb, rdb, dirDb] = [await pg.createDb(), await pg.createDb(), await pg.createDb(), await pg.createDb()];
    rsaDb = rdb;
    // Instances of one role start together: schema, first keys and the key schedule race.
    issuers = await Promise.all([0, 1].map(() => startIssuer({ db: issuerDb, issuerName: 'issuer.test' })));
    closers.push(...issuers.map((s) => () => s.close()));
    const sealKey = new Uint8Array(randomBytes(32));
    ssas = await Promise.all(
      [0, 1].map(() => startSsa({ db: ssaDb, sealKey, issuerName: 'issuer.test', tokenKeys: [issuers[0]!.tokenKeys.ssa], originInfo: 'ssa.test', allowLoopback: true })),
    );
    closers.push(...ssas.map((s) => () => s.close()));
    rsas = await Promise.all(
      [0, 1, 2].map(() =>
        startRsa({
          db: rsaDb,
          serviceKey: rsaKey,
          issuerName: 'issuer.test',
          tokenKeys: [issuers[0]!.tokenKeys.rsa],
          originInfo: 'rsa.test',
          trustedSsaKeys: [ssas[0]!.serviceKey, trustedSsa.publicKey],
          limits: { perSsaPerMinute: 5 },
        }),
      ),
    );
    closers.push(...rsas.map((s) => () => s.close()));
    dirs = await Promise.all(
      [0, 1].map(() => startDirectory({ db: dirDb, namespace: 'dir.test', originInfo: 'dir.test', issuerName: 'issuer.test', tokenKeys: [issuers[0]!.tokenKeys.ssa] })),
    );
    closers.push(...dirs.map((s) => () => s.close()));
    account = await IssuerClient.register(issuers[0]!.url);
  });

  after(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('agree on identity and keys: one token key pair, one service key per role, one epoch key per class', async () => {
    assert.equal(b64u(issuers[0]!.tokenKeys.ssa), b64u(issuers[1]!.tokenKeys.ssa));
    assert.equal(b64u(issuers[0]!.tokenKeys.rsa), b64u(issuers[1]!.tokenKeys.rsa));
    assert.equal(b64u(issuers[0]!.serviceKey), b64u(issuers[1]!.serviceKey));
    assert.equal(b64u(ssas[0]!.serviceKey), b64u(ssas[1]!.serviceKey));
    for (const r of rsas) assert.equal(b64u(r.serviceKey), b64u(ed25519FromSeed(rsaKey).publicKey));
    // Three RSAs started at once ran the key schedule one at a time: one key per class.
    const keys = await rsas[0]!.store.listAddressKeys();
    assert.deepEqual(keys.map((k) => k.cls).sort(), ['ephemeral', 'long']);
    const published = await Promise.all(rsas.map(async (r) => addressKeysOf(await new RsaClient(r.url, clientOptions).descriptor()).map((k) => k.kid).sort()));
    assert.deepEqual(published[1], published[0]);
    assert.deepEqual(published[2], published[0]);
  });

  it('refuses a database that holds another identity key than the key file', async () => {
    await assert.rejects(
      startRsa({ db: rsaDb, serviceKey: new Uint8Array(randomBytes(32)), issuerName: 'issuer.test', tokenKeys: [issuers[0]!.tokenKeys.rsa] }),
      (e: unknown) => e instanceof InstanceConfigError && /another identity key/.test(e.message),
    );
  });

  it('charge one issuer quota: concurrent batches at both instances never pass it together', async () => {
    const acct = await IssuerClient.register(issuers[1]!.url);
    const info = tokenInfoOf(await new RsaClient(rsas[0]!.url, clientOptions).descriptor());
    // rsa class: 50 a day. Eight batches of 10, alternating instances, all at once: five pass.
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => new IssuerClient(issuers[i % 2]!.url, acct.secret).mint(info, 10)));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 5);
    assert.deepEqual((await acct.quota()).rsa, { used: 50, limit: 50 });
  });

  it('refuse at every instance a token spent at one (SSA, RSA, directory)', async () => {
    const ssaInfo = tokenInfoOf(await new SsaClient(ssas[0]!.url).descriptor());
    const rsaInfo = tokenInfoOf(await new RsaClient(rsas[0]!.url, clientOptions).descriptor());
    // SSA: a blob upload paid at instance 0, the same token at instance 1.
    const [blobToken] = await account.mint(ssaInfo, 1);
    await new SsaClient(ssas[0]!.url).uploadBlob(new Uint8Array([1, 2, 3]), blobToken!);
    await assert.rejects(new SsaClient(ssas[1]!.url).uploadBlob(new Uint8Array([4]), blobToken!), /spent/);
    // RSA: seeds paid at instance 0; the same token at instances 1 and 2.
    const rw = new TokenWallet(account, rsaInfo, 10);
    const inbox = await new RsaClient(rsas[0]!.url, clientOptions).createInbox(await rw.takeMany(5));
    const seedToken = await rw.take();
    await inbox.requestSeeds(seedToken, 1);
    for (const r of [rsas[1]!, rsas[2]!]) {
      const res = await fetch(`${r.url}/v1/inboxes/${inbox.id}/seeds`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: authorizationHeader(seedToken) }, body: '{}' });
      assert.equal(res.status, 401);
    }
    // Directory: a lookup paid at instance 0; the same token at instance 1.
    const owner = generateEd25519();
    const d0 = new DirectoryHttpClient(dirs[0]!.url);
    const info = await d0.info();
    const ts = Date.now();
    await d0.register('carol', { ipk: owner.publicKey, pop: t.signPop(owner.seed, info.namespace, 'carol', ts), ts });
    const [dirToken] = await account.mint(info.token!, 1);
    await d0.lookup('carol', {}, { token: dirToken! });
    const again = await problemOf(await new DirectoryHttpClient(dirs[1]!.url).request('GET', '/v1/names/carol/identity', undefined, { token: dirToken! }));
    assert.equal(again.status, 401);
    assert.match(again.detail, /spent/);
  });

  it('refuse a signed request replayed to another instance (RSA inbox read, directory lookup)', async () => {
    const rsaInfo = tokenInfoOf(await new RsaClient(rsas[0]!.url, clientOptions).descriptor());
    const rw = new TokenWallet(account, rsaInfo, 5);
    const inbox = await new RsaClient(rsas[1]!.url, clientOptions).createInbox(await rw.takeMany(5));
    const auth = ed25519FromSeed(inbox.creds.authSeed);
    const path = `/v1/inboxes/${inbox.id}/messages?limit=10`;
    const headers = signRequest(auth, inbox.id, 'GET', path, new Uint8Array(0));
    assert.equal((await fetch(`${rsas[0]!.url}${path}`, { headers })).status, 200);
    for (const r of rsas) {
      const p = await problemOf(await fetch(`${r.url}${path}`, { headers }));
      assert.equal(p.status, 401);
      assert.match(p.detail, /replayed/);
    }
    // Directory: a member's signed lookup, then the same bytes at the other instance.
    const member = generateEd25519();
    const d0 = new DirectoryHttpClient(dirs[0]!.url);
    const info = await d0.info();
    const ts = Date.now();
    await d0.register('dave', { ipk: member.publicKey, pop: t.signPop(member.seed, info.namespace, 'dave', ts), ts });
    const lookup = '/v1/names/dave/identity';
    const signed = signRequest(member, keyidOf(member.publicKey), 'GET', lookup, new Uint8Array(0));
    assert.equal((await fetch(`${dirs[1]!.url}${lookup}`, { headers: signed })).status, 200);
    const replay = await problemOf(await fetch(`${dirs[0]!.url}${lookup}`, { headers: signed }));
    assert.equal(replay.status, 401);
    assert.match(replay.detail, /replayed/);
  });

  it('count one per-SSA delivery window across RSA instances', async () => {
    // perSsaPerMinute is 5: eight signed deliveries from one key, spread over three instances.
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const body = new TextEncoder().encode(JSON.stringify({ addr: 'AA', ttl_s: 60, payload: 'AA' }));
      const res = await fetch(`${rsas[i % 3]!.url}/v1/deliver`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signRequest(trustedSsa, keyidOf(trustedSsa.publicKey), 'POST', '/v1/deliver', body) },
        body,
      });
      statuses.push(res.status);
    }
    // The five inside the window reach the item check (a malformed address: 400); the rest wait.
    assert.deepEqual(statuses, [400, 400, 400, 400, 400, 429, 429, 429]);
  });

  it('deliver through one instance, push over another, and find an epoch key another instance just created', async () => {
    const rsaInfo = tokenInfoOf(await new RsaClient(rsas[0]!.url, clientOptions).descriptor());
    const rw = new TokenWallet(account, rsaInfo, 6);
    const inbox = await new RsaClient(rsas[0]!.url, clientOptions).createInbox(await rw.takeMany(5));
    const [seed] = await inbox.requestSeeds(await rw.take(), 1);
    const got: RsaMessage[] = [];
    const conn = await inbox.connect((m) => got.push(m));
    try {
      // A key written by "another instance" (straight into the shared database): instance 2 has
      // never loaded it, and must not drop the delivery as an unknown kid.
      const fresh = generateAddressKey(0x7000_0001);
      const now = Date.now();
      await rsas[1]!.store.putAddressKey({ kid: fresh.kid, cls: 'ephemeral', x: fresh.x, X: fresh.X, created: now, deriveUntil: now + 86_400_000, resolveUntil: now + 2 * 86_400_000 });
      const key = { kid: fresh.kid, X: fresh.X };
      const ssaInfo = tokenInfoOf(await new SsaClient(ssas[1]!.url).descriptor());
      const [tok1, tok2] = await account.mint(ssaInfo, 2);
      const addr = deriveAddress(seed!.M, key);
      const r1 = rerandomizeAddress(addr, key);
      assert.equal(r1.kind, 'ok');
      // Submitted at SSA 1 for RSA instance 2; the receiver is connected to RSA instance 0.
      const s1 = await new SsaClient(ssas[1]!.url).submit({ rsa: rsas[2]!.url, addr: (r1 as { address: Uint8Array }).address, payload: new TextEncoder().encode('via-2') }, tok1!);
      assert.ok(s1.ok);
      // And one under the published key, through SSA 0 and RSA instance 1.
      const pub = currentAddressKey(addressKeysOf(await new RsaClient(rsas[1]!.url, clientOptions).descriptor()), 'ephemeral');
      const r2 = rerandomizeAddress(deriveAddress(seed!.M, pub), pub);
      const s2 = await new SsaClient(ssas[0]!.url).submit({ rsa: rsas[1]!.url, addr: (r2 as { address: Uint8Array }).address, payload: new TextEncoder().encode('via-1') }, tok2!);
      assert.ok(s2.ok);
      await waitFor(() => got.length >= 2, 20_000, 'two pushes on instance 0');
      const texts = await Promise.all(got.map(async (m) => new TextDecoder().decode((await inbox.open(m))!)));
      assert.deepEqual(texts.sort(), ['via-1', 'via-2']);
    } finally {
      conn.close();
    }
  });
});

describe('replay store per dialect', () => {
  it('keeps the in-process cache on SQLite and the database store on PostgreSQL', async () => {
    const d = mkdtempSync(join(tmpdir(), 'umbra-nonce-'));
    const sqlite = new SqliteDriver(join(d, 'x.db'));
    try {
      assert.ok(nonceStoreFor(sqlite, Date.now) instanceof NonceCache);
    } finally {
      await sqlite.close();
      rmSync(d, { recursive: true, force: true });
    }
    const fakePg = { dialect: 'pg' } as unknown as SqliteDriver;
    const store = nonceStoreFor(fakePg, Date.now);
    assert.ok(store instanceof DbNonceStore);
    store.close?.();
  });
});

describe('key files and umbra serve', () => {
  let pg: PrivatePostgres;
  const dir = mkdtempSync(join(tmpdir(), 'umbra-serve-'));
  const started: Instance[] = [];
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    for (const s of started) await s.close().catch(() => {});
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('generates 0600 key files, never overwrites one, refuses loose or malformed ones', () => {
    const f = join(dir, 'a.key');
    const pub = generateKeyFile(f);
    assert.equal(b64u(ed25519FromSeed(readKeyFile(f)).publicKey), pub);
    assert.throws(() => generateKeyFile(f), (e: unknown) => e instanceof InstanceConfigError && /never overwritten/.test(e.message));
    const text = join(dir, 'b.key');
    writeFileSync(text, `${b64u(new Uint8Array(32).fill(7))}\n`, { mode: 0o600 });
    assert.deepEqual(readKeyFile(text), new Uint8Array(32).fill(7));
    chmodSync(text, 0o644);
    assert.throws(() => readKeyFile(text), /chmod 600/);
    const short = join(dir, 'c.key');
    writeFileSync(short, 'abc', { mode: 0o600 });
    assert.throws(() => readKeyFile(short), /32 bytes/);
    assert.throws(() => readKeyFile(join(dir, 'missing.key')), /ENOENT/);
  });

  it('starts instances of a role that sign as one service, and refuses an SSA without a seal key', async () => {
    const db = await pg.createDb();
    const keyFile = join(dir, 'issuer.key');
    const pub = generateKeyFile(keyFile);
    for (let i = 0; i < 2; i++) started.push(await startInstance({ role: 'issuer', db, keyFile, origin: 'issuer.example' }));
    for (const s of started) assert.equal(b64u(s.serviceKey), pub);
    await assert.rejects(startInstance({ role: 'ssa', db: await pg.createDb(), issuer: started[0]!.url }), /seal-key-file/);
    await assert.rejects(startInstance({ role: 'rsa', db: await pg.createDb(), issuer: started[0]!.url, issuerKey: b64u(new Uint8Array(32)) }), /another key than --issuer-key/);
    const rsa = await startInstance({ role: 'rsa', db: await pg.createDb(), issuer: started[1]!.url, issuerKey: pub, origin: 'rsa.example' });
    started.push(rsa);
    const d = await new RsaClient(rsa.url, clientOptions).descriptor();
    assert.equal(tokenInfoOf(d).issuerName, 'issuer.example');
    assert.equal(tokenInfoOf(d).originInfo, 'rsa.example');
  });

  it('umbra serve <role> runs one instance until SIGTERM; bad arguments exit 2', async () => {
    const keyFile = join(dir, 'dir.key');
    const bin = join(repoRoot, 'packages/cli/bin/umbra.js');
    const run = (args: string[]) => {
      const child = spawn(process.execPath, [bin, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (out += b.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      return { child, exited, out: () => out };
    };
    const keygen = run(['serve', 'keygen', '--key-file', keyFile]);
    assert.equal(await keygen.exited, 0);
    const pub = /public key: (\S+)/.exec(keygen.out())![1]!;
    const db = await pg.createDb();
    const issuer = started[0]!;
    const serve = run(['serve', 'directory', '--db', db, '--port', '0', '--key-file', keyFile, '--issuer', issuer.url, '--origin', 'dir.example', '--namespace', 'example']);
    try {
      await waitFor(() => /umbra serve directory: (http\S+)/.test(serve.out()), 60_000, `umbra serve to start (${serve.out()})`);
      const url = /umbra serve directory: (http\S+)/.exec(serve.out())![1]!;
      const info = await new DirectoryHttpClient(url).info();
      assert.equal(b64u(info.serviceKey), pub);
      assert.equal(info.namespace, 'example');
    } finally {
      serve.child.kill('SIGTERM');
    }
    assert.equal(await serve.exited, 0);
    const bad = run(['serve', 'mailbox', '--db', db]);
    assert.equal(await bad.exited, 2);
    assert.match(bad.out(), /unknown role/);
  });
});
