/**
 * The SSA and an RSA that goes away and comes back (issue 18, "one instance first"): items that
 * met a refused connection back off, and without more they would wait out that backoff after the
 * RSA is back (the load test's p99 of 4-8 s after an RSA kill). The SSA probes such an RSA and
 * makes its queued items due as soon as it answers. Each case restarts a real RSA on the same
 * port and database and times the delivery against the backoff the item was given.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addressKeysOf, currentAddressKey, IssuerClient, RsaClient, SsaClient, tokenInfoOf, TokenWallet, type InboxClient } from '@umbra/client/http';
import { nodeServiceClientOptions } from '@umbra/client/node';
import { deriveAddress, rerandomizeAddress, startIssuer, startRsa, startSsa, type IssuerService, type RsaService, type SsaService } from '../src/index.ts';
import type { SqlDriver } from '../src/db.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | null>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('SSA: an RSA that comes back is retried at once', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'umbra-probe-'));
  let issuer: IssuerService;
  let issuerClient: IssuerClient;
  const opened: (SsaService | RsaService)[] = [];

  before(async () => {
    issuer = await startIssuer({ db: join(dir, 'issuer.db'), quota: { ssa: 1000, rsa: 1000 } });
    issuerClient = await IssuerClient.register(issuer.url);
  });
  after(async () => {
    for (const s of opened) await s.close().catch(() => {});
    await issuer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * One SSA (backoff 2-6 s: base = max = 4 s, spread ×0.5-1.5) and one RSA that is stopped, sent
   * to, and restarted. Returns how long after the restart the item was forwarded, with the time
   * its backoff had made it due.
   */
  async function outage(name: string, probeMs: number): Promise<{ forwardedAfterMs: number; dueAfterMs: number; inbox: InboxClient }> {
    const ssa = await startSsa({
      db: join(dir, `${name}-ssa.db`),
      sealKey: new Uint8Array(randomBytes(32)),
      issuerName: issuer.issuerName,
      tokenKeys: [issuer.tokenKeys.ssa],
      retry: { baseMs: 4000, maxMs: 4000, requestTimeoutMs: 2000, probeMs },
      allowLoopback: true,
    });
    opened.push(ssa);
    const rsaOpts = { db: join(dir, `${name}-rsa.db`), issuerName: issuer.issuerName, tokenKeys: [issuer.tokenKeys.rsa], trustedSsaKeys: [ssa.serviceKey] };
    let rsa = await startRsa(rsaOpts);
    const port = Number(new URL(rsa.url).port);
    const fixed = { ...rsaOpts, port, originInfo: rsa.originInfo };
    const rsaClient = new RsaClient(rsa.url, nodeServiceClientOptions);
    const rsaWallet = new TokenWallet(issuerClient, tokenInfoOf(await rsaClient.descriptor()), 10);
    const inbox = await rsaClient.createInbox(await rsaWallet.takeMany(5));
    const [seed] = await inbox.requestSeeds(await rsaWallet.take(), 1);
    const key = currentAddressKey(addressKeysOf(await rsaClient.descriptor()), 'ephemeral');
    const rr = rerandomizeAddress(deriveAddress(seed!.M, key), key);
    assert.equal(rr.kind, 'ok');
    await rsa.close();

    const ssaClient = new SsaClient(ssa.url);
    const ssaWallet = new TokenWallet(issuerClient, tokenInfoOf(await ssaClient.descriptor()), 2);
    const submitted = await ssaClient.submit({ rsa: rsa.url, addr: (rr as { address: Uint8Array }).address, payload: new TextEncoder().encode(`hello ${name}`) }, await ssaWallet.take());
    assert.ok(submitted.ok);
    const db = (ssa.store as unknown as { db: SqlDriver }).db;
    // The first attempt met a refused connection and backed off.
    const row = await waitFor('the first failed attempt', 10_000, async () => {
      const r = (await db.all(`SELECT attempts, next_at, state FROM queue`))[0];
      return r && Number(r.attempts) >= 1 ? r : null;
    });
    assert.equal(row.state, 'queued');
    assert.equal(Number(row.attempts), 1, 'one attempt so far');
    await sleep(300); // down a little longer: the probe must keep probing, not give up after one try

    rsa = await startRsa(fixed);
    opened.push(rsa);
    const restartedAt = Date.now();
    const dueAfterMs = Number(row.next_at) - restartedAt;
    await waitFor('the item forwarded', 15_000, async () => ((await ssaClient.status(submitted.sid)) === 'forwarded' ? true : null));
    const forwardedAfterMs = Date.now() - restartedAt;
    return { forwardedAfterMs, dueAfterMs, inbox };
  }

  it('with the probe: forwarded within a few probe intervals of the restart, long before its backoff, and stored once', async () => {
    const r = await outage('probe', 50);
    assert.ok(r.dueAfterMs > 1000, `the backoff made it due ${r.dueAfterMs} ms after the restart`);
    assert.ok(r.forwardedAfterMs < 1000, `forwarded ${r.forwardedAfterMs} ms after the restart (due after ${r.dueAfterMs} ms)`);
    const { messages } = await r.inbox.fetch();
    assert.equal(messages.length, 1, 'stored exactly once');
    assert.equal(new TextDecoder().decode((await r.inbox.open(messages[0]!))!), 'hello probe');
  });

  it('without it (probeMs 0): the item waits out its backoff', async () => {
    const r = await outage('noprobe', 0);
    assert.ok(r.dueAfterMs > 1000, `the backoff made it due ${r.dueAfterMs} ms after the restart`);
    assert.ok(r.forwardedAfterMs >= r.dueAfterMs - 50, `forwarded ${r.forwardedAfterMs} ms after the restart, due after ${r.dueAfterMs} ms`);
    assert.equal((await r.inbox.fetch()).messages.length, 1);
  });
});
