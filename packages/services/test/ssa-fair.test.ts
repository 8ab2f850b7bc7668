/**
 * The SSA's delivery slots are shared between RSAs (issue 18, the p99 through an RSA kill): due
 * items are claimed oldest first whatever their RSA, so a restarted RSA's backlog (made due at
 * once by the probe) took every slot while that RSA worked through it slowly, and deliveries to
 * the other RSA waited behind it. With `perRsaConcurrency` an RSA at its cap sits out the claims.
 * Two stand-in RSAs: one holds its answers until released, the other answers at once.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { IssuerClient, SsaClient, tokenInfoOf, TokenWallet } from '@umbra/client/http';
import { deriveAddress, generateAddressKey, generateSeed, rerandomizeAddress, startIssuer, startSsa, type IssuerService } from '../src/index.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SSA: a slow RSA does not hold the deliveries to another', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'umbra-ssa-fair-'));
  let issuer: IssuerService;
  let issuerClient: IssuerClient;
  let slow: FastifyInstance;
  let fast: FastifyInstance;
  let slowUrl = '';
  let fastUrl = '';
  /** Items the slow RSA has been sent (and not yet answered). */
  let slowHeld = 0;
  let releaseSlow: () => void = () => {};
  const slowGate = new Promise<void>((r) => (releaseSlow = r));
  /** When the fast RSA got each item (ms, performance.now()). */
  const fastGot: number[] = [];
  const key = generateAddressKey(7);

  const urlOf = (app: FastifyInstance) => `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;

  before(async () => {
    issuer = await startIssuer({ db: join(dir, 'issuer.db'), quota: { ssa: 1000, rsa: 1000 } });
    issuerClient = await IssuerClient.register(issuer.url);
    slow = Fastify({ logger: false });
    slow.post('/v1/deliver/batch', async (req) => {
      const items = (req.body as { items: unknown[] }).items;
      slowHeld += items.length;
      await slowGate;
      return { results: items.map(() => 202), retry_after_s: items.map(() => 0) };
    });
    slow.post('/v1/deliver', async (_req, reply) => {
      slowHeld += 1;
      await slowGate;
      return reply.code(202).send({});
    });
    fast = Fastify({ logger: false });
    fast.post('/v1/deliver/batch', async (req) => {
      const items = (req.body as { items: unknown[] }).items;
      for (const _ of items) fastGot.push(performance.now());
      return { results: items.map(() => 202), retry_after_s: items.map(() => 0) };
    });
    fast.post('/v1/deliver', async (_req, reply) => {
      fastGot.push(performance.now());
      return reply.code(202).send({});
    });
    await slow.listen({ host: '127.0.0.1', port: 0 });
    await fast.listen({ host: '127.0.0.1', port: 0 });
    slowUrl = urlOf(slow);
    fastUrl = urlOf(fast);
  });
  after(async () => {
    releaseSlow();
    await slow.close();
    await fast.close();
    await issuer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('with the slow RSA at its cap, an item for the other is delivered at once', async () => {
    const ssa = await startSsa({
      db: join(dir, 'ssa.db'),
      sealKey: new Uint8Array(randomBytes(32)),
      issuerName: issuer.issuerName,
      tokenKeys: [issuer.tokenKeys.ssa],
      // 16 slots, 8 per RSA; the slow RSA's answers outlast the test unless released.
      retry: { concurrency: 16, perRsaConcurrency: 8, batchSize: 4, coalesceMs: 0, pollMs: 100, requestTimeoutMs: 30_000 },
      allowLoopback: true,
    });
    try {
      const client = new SsaClient(ssa.url);
      const wallet = new TokenWallet(issuerClient, tokenInfoOf(await client.descriptor()), 25);
      const tokens = await wallet.takeMany(25);
      const submit = async (rsa: string, i: number) => {
        const rr = rerandomizeAddress(deriveAddress(generateSeed(), { kid: 7, X: key.X }), { kid: 7, X: key.X });
        assert.equal(rr.kind, 'ok');
        const r = await client.submit({ rsa, addr: (rr as { address: Uint8Array }).address, payload: new TextEncoder().encode(`m${i}`) }, tokens[i]!);
        assert.ok(r.ok);
      };
      // A backlog for the slow RSA, older than the item for the other (claims go oldest first).
      for (let i = 0; i < 24; i++) await submit(slowUrl, i);
      const end = Date.now() + 10_000;
      while (slowHeld < 8 && Date.now() < end) await sleep(10);
      assert.ok(slowHeld >= 8, `the slow RSA was sent ${slowHeld} items`);
      await sleep(300); // a few more claim rounds (pollMs 100)
      const sent = performance.now();
      await submit(fastUrl, 24);
      while (fastGot.length === 0 && performance.now() - sent < 5000) await sleep(10);
      assert.equal(fastGot.length, 1, 'the item for the other RSA was not delivered while the slow one held its slots');
      assert.ok(fastGot[0]! - sent < 1000, `delivered ${(fastGot[0]! - sent).toFixed(0)} ms after its submit`);
      assert.ok(slowHeld < 16, `the slow RSA held ${slowHeld} items, every slot`);
      releaseSlow();
      const done = Date.now() + 15_000;
      while (slowHeld < 24 && Date.now() < done) await sleep(20);
      assert.equal(slowHeld, 24, 'the slow RSA got its whole backlog once it answered');
    } finally {
      releaseSlow();
      await ssa.close();
    }
  });
});
