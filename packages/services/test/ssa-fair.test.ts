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
import { IssuerClient, SsaClient, tokenInfoOf, TokenWallet } from '@umbra/client/http';
import { generateAddressKey, startIssuer, startSsa, type IssuerService } from '../src/index.ts';
import { standInRsa, submitText, type StandInRsa } from './ssa-fixture.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SSA: a slow RSA does not hold the deliveries to another', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'umbra-ssa-fair-'));
  let issuer: IssuerService;
  let issuerClient: IssuerClient;
  let slow: StandInRsa;
  let fast: StandInRsa;
  /** Items the slow RSA has been sent (and not yet answered). */
  let slowHeld = 0;
  let releaseSlow: () => void = () => {};
  const slowGate = new Promise<void>((r) => (releaseSlow = r));
  /** When the fast RSA got each item (ms, performance.now()). */
  const fastGot: number[] = [];
  const key = generateAddressKey(7);

  before(async () => {
    issuer = await startIssuer({ db: join(dir, 'issuer.db'), quota: { ssa: 1000, rsa: 1000 } });
    issuerClient = await IssuerClient.register(issuer.url);
    slow = await standInRsa(async (payloads) => {
      slowHeld += payloads.length;
      await slowGate;
    });
    fast = await standInRsa((payloads) => {
      for (const _ of payloads) fastGot.push(performance.now());
    });
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
      const submit = async (rsa: string, i: number) => assert.ok((await submitText(client, rsa, key, `m${i}`, tokens[i]!)).ok);
      // A backlog for the slow RSA, older than the item for the other (claims go oldest first).
      for (let i = 0; i < 24; i++) await submit(slow.url, i);
      const end = Date.now() + 10_000;
      while (slowHeld < 8 && Date.now() < end) await sleep(10);
      assert.ok(slowHeld >= 8, `the slow RSA was sent ${slowHeld} items`);
      await sleep(300); // a few more claim rounds (pollMs 100)
      const sent = performance.now();
      await submit(fast.url, 24);
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
