/**
 * The SSA fetches only what it should (issue 14 row 2): https only (http to loopback only when
 * the operator enables it), no private / link-local / loopback / multicast / unspecified
 * destinations, checked on the resolved IP at connect time, no redirects, size and time limits,
 * and a schema + signature check of fetched descriptors. The outbound path does not depend on
 * the database backend, so this runs on SQLite only.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addressKeysOf, currentAddressKey, IssuerClient, RsaClient, SsaClient, tokenInfoOf, TokenWallet } from '@umbra/client/http';
import {
  deriveAddress,
  generateSeed,
  startIssuer,
  startRsa,
  startSsa,
  type IssuerService,
  type RsaService,
  type SsaService,
} from '../src/index.ts';
import { checkServiceUrl, classifyIp } from '../src/outbound.ts';
import { authorizationHeader } from '../src/tokens.ts';

describe('SSA outbound requests (SSRF)', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'umbra-ssrf-'));
  let issuer: IssuerService;
  let rsa: RsaService;
  /** allowLoopback off: what a production SSA does. */
  let strict: SsaService;
  /** allowLoopback on (the hub, tests), short limits. */
  let local: SsaService;
  let hostile: Server;
  let hostileUrl: string;
  const hostileHits: string[] = [];
  let counter: NetServer;
  let counterPort: number;
  let counterConnections = 0;
  const sockets = new Set<Socket>();
  let strictWallet: TokenWallet;
  let localWallet: TokenWallet;

  before(async () => {
    issuer = await startIssuer({ db: join(dir, 'issuer.db'), quota: { ssa: 10_000, rsa: 10_000 } });
    rsa = await startRsa({ db: join(dir, 'rsa.db'), issuerName: issuer.issuerName, tokenKeys: [issuer.tokenKeys.rsa] });
    const common = { issuerName: issuer.issuerName, tokenKeys: [issuer.tokenKeys.ssa], retry: { baseMs: 50, maxMs: 200, requestTimeoutMs: 800 } };
    strict = await startSsa({ ...common, db: join(dir, 'ssa1.db'), sealKey: new Uint8Array(randomBytes(32)) });
    local = await startSsa({
      ...common,
      db: join(dir, 'ssa2.db'),
      sealKey: new Uint8Array(randomBytes(32)),
      allowLoopback: true,
      limits: { descriptorTimeoutMs: 800, maxAnswerBytes: 64 * 1024 },
    });
    const rsaDescriptor = await (await fetch(`${rsa.url}/.well-known/communicator.json`)).text();
    hostile = createHttpServer((req, res: ServerResponse) => {
      hostileHits.push(`${req.method} ${req.url}`);
      const path = req.url ?? '';
      if (path.startsWith('/redirect/')) return res.writeHead(req.method === 'POST' ? 307 : 302, { location: `${rsa.url}${path.slice('/redirect'.length)}` }).end();
      if (path.startsWith('/big/')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const pump = () => {
          while (sent < 10 * 1024 * 1024 && res.write(chunk)) sent += chunk.length;
          if (sent < 10 * 1024 * 1024) res.once('drain', pump);
          else res.end();
        };
        return pump();
      }
      if (path.startsWith('/slow/')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"payload":');
        return; // never finishes
      }
      if (path.startsWith('/garbage/')) return res.writeHead(200, { 'content-type': 'application/json' }).end('{"payload":"e30","sig":"AA"}');
      if (path.startsWith('/forged/')) {
        const d = JSON.parse(rsaDescriptor) as { payload: string; sig: string };
        const sig = Buffer.from(d.sig, 'base64url');
        sig[0]! ^= 1;
        return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ payload: d.payload, sig: sig.toString('base64url') }));
      }
      if (path.startsWith('/echo/')) return res.writeHead(200, { 'content-type': 'application/json' }).end(rsaDescriptor);
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
    hostileUrl = `http://127.0.0.1:${(hostile.address() as { port: number }).port}`;
    counter = createNetServer((s) => {
      counterConnections++;
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => counter.listen(0, '127.0.0.1', r));
    counterPort = (counter.address() as { port: number }).port;
    const account = await IssuerClient.register(issuer.url);
    strictWallet = new TokenWallet(account, tokenInfoOf(await new SsaClient(strict.url).descriptor()), 20);
    localWallet = new TokenWallet(account, tokenInfoOf(await new SsaClient(local.url).descriptor()), 20);
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    hostile?.closeAllConnections();
    await new Promise((r) => hostile?.close(r));
    await new Promise((r) => counter?.close(r));
    await local?.close();
    await strict?.close();
    await rsa?.close();
    await issuer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function anAddress(): Promise<Uint8Array> {
    const key = currentAddressKey(addressKeysOf(await new RsaClient(rsa.url).descriptor()), 'ephemeral');
    return deriveAddress(generateSeed(), key);
  }

  async function descriptorVia(ssa: SsaService, wallet: TokenWallet, target: string): Promise<Response> {
    return fetch(`${ssa.url}/v1/rsa-descriptor?rsa=${encodeURIComponent(target)}`, { headers: { authorization: authorizationHeader(await wallet.take()) } });
  }

  it('classifies destination IPs (private, link-local, loopback, multicast, unspecified, mapped)', () => {
    for (const ip of ['10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '::', 'fe80::1', 'fc00::1', 'ff02::1', '::ffff:10.0.0.1', '::ffff:a9fe:a9fe', '64:ff9b::a00:1', '2002:a00:1::1'])
      assert.equal(classifyIp(ip), 'refused', ip);
    for (const ip of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:ffff:7f00:1']) assert.equal(classifyIp(ip), 'loopback', ip);
    for (const ip of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) assert.equal(classifyIp(ip), 'public', ip);
    assert.equal(classifyIp('not-an-ip'), 'refused');
  });

  it('refuses plain http, private, link-local and loopback URLs at submit, without connecting', async () => {
    const ssa = new SsaClient(strict.url);
    const addr = await anAddress();
    const before = counterConnections;
    for (const rsaUrl of [
      `http://127.0.0.1:${counterPort}`, // loopback, not enabled
      `https://127.0.0.1:${counterPort}`,
      `https://[::1]:${counterPort}`,
      `https://[::ffff:127.0.0.1]:${counterPort}`,
      'https://10.0.0.1',
      'https://169.254.169.254',
      'https://[fe80::1]',
      'https://[::ffff:10.0.0.1]',
      'https://0.0.0.0',
      'https://224.0.0.1',
      'http://example.com', // plain http to a public host
      'ftp://example.com',
    ]) {
      const r = await ssa.submit({ rsa: rsaUrl, addr, payload: new Uint8Array([1]) }, await strictWallet.take());
      assert.ok(!r.ok && r.problem.status === 400, `${rsaUrl}: ${JSON.stringify(r)}`);
    }
    // With loopback enabled, private ranges stay refused and http is for loopback only.
    const lo = new SsaClient(local.url);
    for (const rsaUrl of ['http://10.0.0.1', 'https://169.254.169.254', 'http://[fe80::1]', 'http://[::ffff:192.168.0.1]']) {
      const r = await lo.submit({ rsa: rsaUrl, addr, payload: new Uint8Array([1]) }, await localWallet.take());
      assert.ok(!r.ok && r.problem.status === 400, `${rsaUrl}: ${JSON.stringify(r)}`);
    }
    assert.equal(counterConnections, before);
    assert.deepEqual(checkServiceUrl(`http://localhost:${counterPort}`, { allowLoopback: false }).ok, false);
  });

  it('checks the resolved IP when connecting: a name that resolves to loopback is never connected to', async () => {
    const ssa = new SsaClient(strict.url);
    const before = counterConnections;
    const r = await ssa.submit({ rsa: `https://localhost:${counterPort}`, addr: await anAddress(), payload: new Uint8Array([1]) }, await strictWallet.take());
    assert.ok(r.ok, JSON.stringify(r)); // a name: checked when the SSA connects
    await strict.flush();
    assert.equal(await ssa.status(r.sid), 'expired', 'a refused destination is permanent');
    const d = await descriptorVia(strict, strictWallet, `https://localhost:${counterPort}`);
    assert.equal(d.status, 502);
    assert.equal(counterConnections, before, 'no connection was made to the loopback port');
  });

  it('needs a token for descriptor lookups and refuses private targets before spending it', async () => {
    const plain = await fetch(`${local.url}/v1/rsa-descriptor?rsa=${encodeURIComponent(rsa.url)}`);
    assert.equal(plain.status, 401);
    const t = await localWallet.take();
    const bad = await fetch(`${local.url}/v1/rsa-descriptor?rsa=${encodeURIComponent('http://10.0.0.1')}`, { headers: { authorization: authorizationHeader(t) } });
    assert.equal(bad.status, 400);
    const good = await fetch(`${local.url}/v1/rsa-descriptor?rsa=${encodeURIComponent(rsa.url)}`, { headers: { authorization: authorizationHeader(t) } });
    assert.equal(good.status, 200, 'the token was not spent by the refused lookup');
    const echoed = await descriptorVia(local, localWallet, `${hostileUrl}/echo`);
    assert.equal(echoed.status, 200, 'a genuine signed descriptor passes the check');
  });

  it('does not follow redirects, and refuses oversized, slow, malformed and badly signed answers', async () => {
    hostileHits.length = 0;
    const redirect = await descriptorVia(local, localWallet, `${hostileUrl}/redirect`);
    assert.equal(redirect.status, 502);
    assert.deepEqual(hostileHits, ['GET /redirect/.well-known/communicator.json']);
    const big = await descriptorVia(local, localWallet, `${hostileUrl}/big`);
    assert.equal(big.status, 502);
    assert.match(((await big.json()) as { detail: string }).detail, /exceeds/);
    const slow = await descriptorVia(local, localWallet, `${hostileUrl}/slow`);
    assert.equal(slow.status, 502);
    assert.match(((await slow.json()) as { detail: string }).detail, /within 800 ms/); // the time limit ended it, not the stall
    for (const kind of ['garbage', 'forged']) {
      const r = await descriptorVia(local, localWallet, `${hostileUrl}/${kind}`);
      assert.equal(r.status, 502, kind);
    }
  });

  it('does not follow a redirect when delivering: the item stays queued, nothing reaches the redirect target', async () => {
    const ssa = new SsaClient(local.url);
    hostileHits.length = 0;
    const r = await ssa.submit({ rsa: `${hostileUrl}/redirect`, addr: await anAddress(), payload: new Uint8Array([7]) }, await localWallet.take());
    assert.ok(r.ok);
    await local.flush();
    assert.ok(hostileHits.some((h) => h.startsWith('POST /redirect/v1/deliver')), JSON.stringify(hostileHits));
    assert.equal(await ssa.status(r.sid), 'queued');
  });
});
