/**
 * Issue 18's scale-out run: 2 issuer, 2 SSA, 3 RSA and 2 directory instances as separate
 * processes (instance-main.ts, what `umbra serve` runs) on one PostgreSQL started here; 200
 * clients spread over the instances send messages through real tokens and signed requests while
 * instances are SIGKILLed and restarted, one at a time, every role in turn. Every acknowledged
 * submission must arrive exactly once (one stored message per payload), pushes must cross
 * instances, and tokens and signed requests must be refused at every other instance.
 *
 * Default 1,000 messages (npm test: 53 s here with 4 kills); UMBRA_SCALE_MESSAGES=20000 for the issue's full size.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
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
  InboxClient,
  IssuerClient,
  RsaClient,
  SsaClient,
  tokenInfoOf,
  type PublishedAddressKey,
  type ServiceClientOptions,
  type TokenInfo,
} from '@umbra/client/http';
import { deriveAddress, rerandomizeAddress } from '@umbra/protocol/services';
import { b64u } from '../src/bytes.ts';
import { ed25519FromSeed, generateEd25519, keyidOf, signRequest, type Ed25519Key } from '../src/httpsig.ts';
import { generateKeyFile, type InstanceConfig, type Role } from '../src/instance.ts';
import { readyUrl } from '../src/ready-line.ts';
import { startPostgres, type PrivatePostgres } from './pg.ts';

const MESSAGES = Number(process.env.UMBRA_SCALE_MESSAGES ?? 1000);
const CLIENTS = 200;
const CONCURRENCY = 40;
const clientOptions: ServiceClientOptions = { crypto: nodeProvider, webSocket: WebSocket as unknown as ServiceClientOptions['webSocket'] };
const instanceMain = resolve(import.meta.dirname, '../src/instance-main.ts');
const repoRoot = resolve(import.meta.dirname, '../../..');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

/** Children of this file: SIGKILLed in after() and, should that never run, when the process exits. */
const children = new Set<ChildProcess>();
const killAll = () => {
  for (const c of children) c.kill('SIGKILL');
};
process.once('exit', killAll);

class Proc {
  url = '';
  private child: ChildProcess | null = null;
  private output = '';
  constructor(
    readonly role: Role,
    readonly index: number,
    private readonly config: () => InstanceConfig,
  ) {}

  get alive(): boolean {
    return this.child !== null;
  }

  async start(): Promise<void> {
    const port = this.url ? Number(new URL(this.url).port) : 0;
    const child = spawn(process.execPath, ['--import', 'tsx', instanceMain, JSON.stringify({ ...this.config(), port })], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    child.stderr!.on('data', (b: Buffer) => (this.output = (this.output + b.toString()).slice(-4000)));
    this.url = await readyUrl(child, `${this.role} #${this.index}`, () => this.output);
    this.child = child;
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = null;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}

interface Client {
  index: number;
  issuer: IssuerClient;
  creds: InboxClient['creds'];
  addr: Uint8Array;
  key: PublishedAddressKey;
  tokens: Uint8Array[];
  name: string;
  identity: Ed25519Key;
}

describe(`scale-out: 9 instance processes on one PostgreSQL, ${CLIENTS} clients, ${MESSAGES} messages, SIGKILLs`, () => {
  let pg: PrivatePostgres;
  const dir = mkdtempSync(join(tmpdir(), 'umbra-scale-'));
  const procs: Proc[] = [];
  const of = (role: Role) => procs.filter((p) => p.role === role);
  const aliveUrl = (role: Role) => pick(of(role).filter((p) => p.alive)).url;

  before(async () => {
    pg = await startPostgres();
    const db = { issuer: await pg.createDb(), ssa: await pg.createDb(), rsa: await pg.createDb(), directory: await pg.createDb() };
    const keys = { issuer: join(dir, 'issuer.key'), ssa: join(dir, 'ssa.key'), seal: join(dir, 'seal.key'), rsa: join(dir, 'rsa.key'), directory: join(dir, 'dir.key') };
    const ssaPub = generateKeyFile(keys.ssa);
    for (const f of [keys.issuer, keys.seal, keys.rsa, keys.directory]) generateKeyFile(f);
    const base = (role: Role) => ({ role, db: db[role], keyFile: keys[role] });
    for (let i = 0; i < 2; i++) procs.push(new Proc('issuer', i, () => ({ ...base('issuer'), origin: 'issuer.scale.test' })));
    await Promise.all(of('issuer').map((p) => p.start()));
    // A restarted instance asks a live issuer for the token keys.
    const withIssuer = (role: Role, extra: Partial<InstanceConfig>) => () => ({ ...base(role), issuer: aliveUrl('issuer'), ...extra });
    for (let i = 0; i < 2; i++)
      procs.push(
        new Proc('ssa', i, withIssuer('ssa', { sealKeyFile: keys.seal, origin: 'ssa.scale.test', allowLoopback: true, ssaRetry: { baseMs: 100, maxMs: 1000, requestTimeoutMs: 2000 } })),
      );
    for (let i = 0; i < 3; i++)
      procs.push(
        new Proc('rsa', i, withIssuer('rsa', { origin: 'rsa.scale.test', trustedSsaKeys: [ssaPub], rsaLimits: { perSeedPerMinute: 1_000_000, perSeedPerDay: 10_000_000, perSsaPerMinute: 10_000_000 } })),
      );
    for (let i = 0; i < 2; i++) procs.push(new Proc('directory', i, withIssuer('directory', { origin: 'dir.scale.test', namespace: 'scale.test' })));
    await Promise.all(procs.filter((p) => p.role !== 'issuer').map((p) => p.start()));
  });

  after(async () => {
    for (const p of procs) await p.kill().catch(() => {});
    killAll();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers every acknowledged message exactly once, pushes across instances, refuses spent tokens and replays everywhere', async () => {
    const started = performance.now();
    const rsaUrls = of('rsa').map((p) => p.url);
    const rsaDesc = await new RsaClient(rsaUrls[0]!, clientOptions).descriptor();
    const rsaInfo: TokenInfo = tokenInfoOf(rsaDesc);
    const ssaInfo: TokenInfo = tokenInfoOf(await new SsaClient(of('ssa')[0]!.url).descriptor());
    const dirInfo = await new DirectoryHttpClient(of('directory')[0]!.url).info();
    const key = currentAddressKey(addressKeysOf(rsaDesc), 'ephemeral');
    const perClient = Math.ceil(MESSAGES / CLIENTS);

    // ---- setup: accounts at both issuers, inboxes at all three RSAs, names at both directories
    const clients: Client[] = [];
    let nextSetup = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (nextSetup < CLIENTS) {
          const i = nextSetup++;
          const issuer = await IssuerClient.register(of('issuer')[i % 2]!.url);
          const rsaTokens = await issuer.mint(rsaInfo, 6);
          const inbox = await new RsaClient(rsaUrls[i % 3]!, clientOptions).createInbox(rsaTokens.slice(0, 5));
          const [seed] = await inbox.requestSeeds(rsaTokens[5]!, 1);
          const tokens: Uint8Array[] = [];
          for (let left = perClient + 1; left > 0; left -= 100) tokens.push(...(await issuer.mint(ssaInfo, Math.min(100, left))));
          const identity = generateEd25519();
          const name = `c${i}`;
          const ts = Date.now();
          await new DirectoryHttpClient(of('directory')[i % 2]!.url).register(name, { ipk: identity.publicKey, pop: t.signPop(identity.seed, dirInfo.namespace, name, ts), ts });
          clients[i] = { index: i, issuer, creds: inbox.creds, addr: deriveAddress(seed!.M, key), key, tokens, name, identity };
        }
      }),
    );
    const setupS = (performance.now() - started) / 1000;

    // ---- receivers: each on a random RSA instance, reconnecting to a random one after a drop
    const mids = new Map<number, Set<string>>(); // payload id → stored message ids seen
    const viaRsa: number[] = []; // payload id → RSA instance it was submitted for
    let crossPushes = 0;
    let stopping = false;
    const listeners = clients.map(async (c) => {
      let cursor: string | undefined;
      while (!stopping) {
        const at = Math.floor(Math.random() * 3);
        const inbox = new InboxClient(rsaUrls[at]!, c.creds, clientOptions);
        try {
          let pending: Uint8Array[] = [];
          let flush: NodeJS.Timeout | null = null;
          const conn = await inbox.connect(async (m) => {
            cursor = m.cursor;
            const pt = await inbox.open(m);
            if (!pt) return;
            const id = new DataView(pt.buffer, pt.byteOffset).getUint32(0);
            let set = mids.get(id);
            if (!set) mids.set(id, (set = new Set()));
            set.add(b64u(m.mid));
            if (viaRsa[id] !== undefined && viaRsa[id] !== at) crossPushes++;
            pending.push(m.mid);
            flush ??= setTimeout(() => {
              flush = null;
              conn.ack(pending.splice(0));
            }, 50);
          }, cursor);
          await conn.closed;
          if (flush) clearTimeout(flush);
          pending = [];
        } catch {
          // the instance is down: another one next time
        }
        if (!stopping) await sleep(100);
      }
    });

    // ---- chaos: SIGKILL one instance at a time, every role in turn, and restart it
    const order: Proc[] = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((k) => [of('rsa')[0], of('ssa')[0], of('directory')[0], of('issuer')[0], of('rsa')[1], of('ssa')[1], of('rsa')[2], of('directory')[1], of('issuer')[1]][k]!);
    const kills: Record<Role, number> = { issuer: 0, ssa: 0, rsa: 0, directory: 0 };
    let submitting = true;
    const chaos = (async () => {
      for (let k = 0; submitting || Object.values(kills).some((n) => n === 0); k++) {
        await sleep(800 + Math.random() * 1200);
        const p = order[k % order.length]!;
        await p.kill();
        kills[p.role]++;
        await sleep(200 + Math.random() * 600);
        await p.start();
      }
    })();

    // ---- senders: each submission retried (same idem, same token) at another SSA until it is acknowledged
    const acked = new Set<number>();
    let retries = 0;
    let lookups = 0;
    let badLookups = 0;
    const total = perClient * CLIENTS;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < total) {
          const id = next++;
          const from = clients[id % CLIENTS]!;
          const to = clients[(id + 1) % CLIENTS]!;
          const rr = rerandomizeAddress(to.addr, to.key);
          assert.equal(rr.kind, 'ok');
          const payload = new Uint8Array(randomBytes(32));
          new DataView(payload.buffer).setUint32(0, id);
          const at = Math.floor(Math.random() * 3);
          viaRsa[id] = at;
          const item = { rsa: rsaUrls[at]!, addr: (rr as { address: Uint8Array }).address, payload, ttlS: 3600, idem: new Uint8Array(randomBytes(16)) };
          const token = from.tokens.pop()!;
          for (let attempt = 0; ; attempt++) {
            assert.ok(attempt < 200, `submission ${id} never acknowledged`);
            try {
              const r = await new SsaClient(aliveUrl('ssa')).submit(item, token);
              if (r.ok) break;
              assert.ok(r.problem.status >= 500, `submission ${id} refused: ${r.problem.status} ${r.problem.detail ?? ''}`);
            } catch (e) {
              if (e instanceof assert.AssertionError) throw e;
            }
            retries++;
            await sleep(100);
          }
          acked.add(id);
          // A member's signed lookup at a random directory instance now and then.
          if (id % 10 === 0) {
            const target = clients[(id + 7) % CLIENTS]!;
            for (;;) {
              try {
                const bundle = await new DirectoryHttpClient(aliveUrl('directory')).lookup(target.name, {}, { signer: from.identity });
                const v = new t.LogVerifier(dirInfo.logOrigin, dirInfo.logKey).verifyLookup(bundle, dirInfo.namespace, target.name);
                if (b64u(v.ipk) !== b64u(target.identity.publicKey)) badLookups++;
                lookups++;
                break;
              } catch {
                await sleep(100);
              }
            }
          }
        }
      }),
    );
    const submitS = (performance.now() - started) / 1000 - setupS;
    submitting = false;
    await chaos;

    const deadline = Date.now() + 120_000;
    while ([...acked].some((id) => !mids.has(id)) && Date.now() < deadline) await sleep(100);
    const e2eS = (performance.now() - started) / 1000 - setupS;
    stopping = true;
    const missing = [...acked].filter((id) => !mids.has(id));
    const twice = [...mids].filter(([, set]) => set.size !== 1).map(([id]) => id);
    console.log(
      `[scale] ${acked.size} acknowledged, ${mids.size} delivered, ${missing.length} missing, ${twice.length} stored twice; ` +
        `kills ${JSON.stringify(kills)}; ${retries} submit retries; ${crossPushes} pushes by another instance than the one delivered to; ` +
        `${lookups} directory lookups; setup ${setupS.toFixed(1)} s, submit ${submitS.toFixed(1)} s, until all delivered ${e2eS.toFixed(1)} s`,
    );
    assert.equal(acked.size, total);
    assert.deepEqual(missing, [], 'acknowledged messages never delivered');
    assert.deepEqual(twice, [], 'messages stored more than once');
    for (const role of ['issuer', 'ssa', 'rsa', 'directory'] as const) assert.ok(kills[role] >= 1, `no ${role} was killed`);
    assert.ok(crossPushes > 0, 'no message was pushed by another RSA instance than the one it was delivered to');
    assert.equal(badLookups, 0);
    assert.ok(lookups >= total / 10);
    await Promise.race([Promise.all(listeners), sleep(3000)]);

    // ---- after the storm: spent tokens and replays are refused at every other instance
    const c = clients[0]!;
    const blobToken = c.tokens.pop()!;
    const ssaProcs = of('ssa');
    await new SsaClient(ssaProcs[0]!.url).uploadBlob(new Uint8Array([1]), blobToken);
    await assert.rejects(new SsaClient(ssaProcs[1]!.url).uploadBlob(new Uint8Array([2]), blobToken), /spent/);
    const auth = ed25519FromSeed(c.creds.authSeed);
    const inboxId = b64u(c.creds.inboxId);
    const path = `/v1/inboxes/${inboxId}/messages?limit=1`;
    const headers = signRequest(auth, inboxId, 'GET', path, new Uint8Array(0));
    assert.equal((await fetch(`${rsaUrls[2]}${path}`, { headers })).status, 200);
    for (const url of rsaUrls) assert.equal((await fetch(`${url}${path}`, { headers })).status, 401);
    const lookup = `/v1/names/${clients[1]!.name}/identity`;
    const signed = signRequest(c.identity, keyidOf(c.identity.publicKey), 'GET', lookup, new Uint8Array(0));
    const dirProcs = of('directory');
    assert.equal((await fetch(`${dirProcs[0]!.url}${lookup}`, { headers: signed })).status, 200);
    assert.equal((await fetch(`${dirProcs[1]!.url}${lookup}`, { headers: signed })).status, 401);
  });
});
