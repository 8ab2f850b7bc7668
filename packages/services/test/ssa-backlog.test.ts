/**
 * The SSA's claim order with a backlog (issue 18, the p99 through an RSA kill): due items are
 * claimed oldest first, except while the oldest due item has waited longer than
 * `newestFirstAfterMs`; then newest first (adaptive LIFO), so a fresh message is not queued
 * behind a backlog that is late already. And an RSA found back makes its queued items due with
 * their age (next_at = created), so the claims see them as the backlog they are.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IssuerClient, SsaClient, tokenInfoOf, TokenWallet } from '@umbra/client/http';
import { generateAddressKey, startIssuer, startSsa, type IssuerService } from '../src/index.ts';
import { openDriver } from '../src/db.ts';
import { SqlSsaStore } from '../src/store.ts';
import { standInRsa, submitText, type StandInRsa } from './ssa-fixture.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SSA: claims with a backlog', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'umbra-ssa-backlog-'));
  let issuer: IssuerService;
  let issuerClient: IssuerClient;
  let rsa: StandInRsa;
  /** Payloads in the order the stand-in RSA was sent them. */
  const got: string[] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const key = generateAddressKey(7);

  before(async () => {
    issuer = await startIssuer({ db: join(dir, 'issuer.db'), quota: { ssa: 1000, rsa: 1000 } });
    issuerClient = await IssuerClient.register(issuer.url);
    // Holds its answers until released, then answers at once (batchSize 1: POST /v1/deliver).
    rsa = await standInRsa(async (payloads) => {
      for (const p of payloads) got.push(new TextDecoder().decode(p));
      await gate;
    });
  });
  after(async () => {
    release();
    await rsa.close();
    await issuer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a fresh item goes before a backlog that has waited past newestFirstAfterMs, and the backlog follows', async () => {
    const ssa = await startSsa({
      db: join(dir, 'ssa.db'),
      sealKey: new Uint8Array(randomBytes(32)),
      issuerName: issuer.issuerName,
      tokenKeys: [issuer.tokenKeys.ssa],
      // One item in flight at a time: the rest wait in the queue, in claim order.
      retry: { concurrency: 1, perRsaConcurrency: 1, batchSize: 1, coalesceMs: 0, pollMs: 50, requestTimeoutMs: 30_000, newestFirstAfterMs: 1000 },
      allowLoopback: true,
    });
    try {
      const client = new SsaClient(ssa.url);
      const wallet = new TokenWallet(issuerClient, tokenInfoOf(await client.descriptor()), 7);
      const tokens = await wallet.takeMany(7);
      const submit = async (i: number) => assert.ok((await submitText(client, rsa.url, key, `m${i}`, tokens[i]!)).ok);
      await submit(0);
      const end = Date.now() + 10_000;
      while (got.length === 0 && Date.now() < end) await sleep(10);
      assert.deepEqual(got, ['m0'], 'the first item is in flight (and held)');
      for (let i = 1; i <= 5; i++) await submit(i); // the backlog: due, waiting for the one slot
      await sleep(1500); // past newestFirstAfterMs (the fresh one is claimed well within it)
      await submit(6);
      release();
      const done = Date.now() + 15_000;
      while (got.length < 7 && Date.now() < done) await sleep(20);
      assert.equal(got.length, 7, `every item delivered: ${got.join(' ')}`);
      assert.deepEqual(got, ['m0', 'm6', 'm5', 'm4', 'm3', 'm2', 'm1'], 'newest first while the backlog lasts');
    } finally {
      release();
      await ssa.close();
    }
  });

  it('an RSA found back makes its queued items due with their age', async () => {
    const store = new SqlSsaStore(openDriver(join(dir, 'ssa-store.db')));
    await store.init();
    try {
      const now = Date.now();
      const item = (created: number) => ({
        sid: new Uint8Array(randomBytes(16)),
        rsa: 'http://rsa.example',
        sealedAddr: new Uint8Array(8),
        payload: new Uint8Array(8),
        created,
        expires: now + 3_600_000,
        attempts: 1,
      });
      // Submitted 5 s and 2 s ago, both backed off into the future while the RSA was down.
      for (const created of [now - 5000, now - 2000]) {
        const r = await store.enqueue(item(created), new Uint8Array(randomBytes(16)), new Uint8Array(randomBytes(32)), now + 3_600_000, now + 60_000);
        assert.equal(r.kind, 'ok');
      }
      assert.equal(await store.oldestDue(now), null, 'nothing due while backed off');
      assert.equal(await store.retryNow('http://rsa.example', now), 2);
      assert.equal(await store.oldestDue(now), now - 5000, 'due since it was submitted');
      const newest = await store.claimDue(now, 1, 10_000, [], true);
      assert.equal(newest[0]?.created, now - 2000, 'newest first when asked');
      const oldest = await store.claimDue(now, 1, 10_000, [], false);
      assert.equal(oldest[0]?.created, now - 5000);
    } finally {
      await store.close();
    }
  });
});
