/**
 * The SSA's delivery worker waits `coalesceMs` after a submit before it claims (issue 18, CPU
 * per message): submits that arrive one at a time within that window reach the RSA as one
 * batch (one claim, one signed POST, one commit at the RSA, one markForwarded), instead of one
 * POST each. An RSA stand-in counts the batches it is sent.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { IssuerClient, SsaClient, tokenInfoOf, TokenWallet } from '@umbra/client/http';
import { generateAddressKey, startIssuer, startSsa, type IssuerService, type SsaService } from '../src/index.ts';
import { standInRsa, submitText, type StandInRsa } from './ssa-fixture.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SSA: submits one at a time go to the RSA in one batch', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'umbra-coalesce-'));
  let issuer: IssuerService;
  let issuerClient: IssuerClient;
  let rsa: StandInRsa;
  /** Items per POST the stand-in RSA was sent. */
  const batches: number[] = [];
  const key = generateAddressKey(7);

  before(async () => {
    issuer = await startIssuer({ db: join(dir, 'issuer.db'), quota: { ssa: 1000, rsa: 1000 } });
    issuerClient = await IssuerClient.register(issuer.url);
    rsa = await standInRsa((payloads) => {
      batches.push(payloads.length);
    });
  });
  after(async () => {
    await rsa.close();
    await issuer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Five submits, each sent once the previous one was answered (and `gapMs` later); the batch sizes the RSA saw. */
  async function fiveSubmits(name: string, coalesceMs: number, gapMs: number): Promise<number[]> {
    const ssa: SsaService = await startSsa({
      db: join(dir, `${name}.db`),
      sealKey: new Uint8Array(randomBytes(32)),
      issuerName: issuer.issuerName,
      tokenKeys: [issuer.tokenKeys.ssa],
      // The worker's own wake-up every pollMs would claim them too: out of the way here.
      retry: { coalesceMs, pollMs: 60_000 },
      allowLoopback: true,
    });
    try {
      const client = new SsaClient(ssa.url);
      const wallet = new TokenWallet(issuerClient, tokenInfoOf(await client.descriptor()), 5);
      const tokens = await wallet.takeMany(5);
      batches.length = 0;
      for (let i = 0; i < 5; i++) {
        assert.ok((await submitText(client, rsa.url, key, `m${i}`, tokens[i]!)).ok);
        if (gapMs > 0) await sleep(gapMs);
      }
      const end = Date.now() + 10_000;
      while (batches.reduce((a, n) => a + n, 0) < 5 && Date.now() < end) await sleep(10);
      return [...batches];
    } finally {
      await ssa.close();
    }
  }

  // Without coalescing the five went as five batches of one (1, 1, 1, 1, 1).
  it('with coalesceMs: the five submits of the window arrive in one batch', async () => {
    const got = await fiveSubmits('coalesced', 3000, 0);
    assert.deepEqual(got, [5], `batches ${got.join(', ')}`);
  });

  it('with coalesceMs 0: a submit is claimed at once (five submits 100 ms apart, five batches or nearly)', async () => {
    const got = await fiveSubmits('at-once', 0, 100);
    assert.equal(got.reduce((a, n) => a + n, 0), 5);
    assert.ok(got.length >= 4, `${got.length} batches: ${got.join(', ')}`);
  });
});
