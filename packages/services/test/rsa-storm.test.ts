/**
 * A reconnect storm at the RSA (issue 18, the p99 through an RSA kill): with handshakeStormAt or
 * more WebSocket handshakes under way, delivery items wait until fewer are (handshakeHoldMs at
 * most), so a restarted RSA's receivers are connected before it works through its backlog.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { b64u } from '../src/bytes.ts';
import { startRsa, type RsaService } from '../src/rsa.ts';
import { createTestInbox, deliverText, startTestIssuer, trustedSsa, waitFor, type TestInbox, type TestIssuer } from './rsa-fixture.ts';

const HOLD_MS = 1500;
let dir: string;
let iss: TestIssuer;
let rsa: RsaService;
let to: TestInbox;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'umbra-rsa-storm-'));
  iss = await startTestIssuer();
  rsa = await startRsa({
    db: join(dir, 'rsa.db'),
    issuerName: iss.issuer.issuerName,
    tokenKeys: [iss.issuer.tokenKeys.rsa],
    trustedSsaKeys: [trustedSsa.publicKey],
    limits: { handshakeStormAt: 2, handshakeHoldMs: HOLD_MS, handshakeYieldMs: 10_000 },
  });
  to = await createTestInbox(iss.account, rsa.url);
});

after(async () => {
  await rsa.close();
  await iss.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A socket that opens and never authenticates (a handshake under way until it closes). */
async function silentSocket(): Promise<WebSocket> {
  const ws = new WebSocket(`${rsa.url.replace(/^http/, 'ws')}/v1/inboxes/${b64u(new Uint8Array(16))}/ws`);
  await new Promise<void>((resolve, reject) => {
    ws.once('message', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

async function timedDelivery(text: string): Promise<number> {
  const t = performance.now();
  assert.equal(await deliverText(rsa.url, to, text), 202);
  return performance.now() - t;
}

test('below handshakeStormAt a delivery is answered at once', async () => {
  await timedDelivery('warm-up'); // the key's first resolve prepares it
  const one = await silentSocket();
  try {
    assert.equal(rsa.stats.handshakesUnderWay, 1);
    const ms = await timedDelivery('one handshake');
    assert.ok(ms < HOLD_MS / 2, `answered after ${ms.toFixed(0)} ms`);
  } finally {
    one.close();
    await waitFor(() => rsa.stats.handshakesUnderWay === 0, 5000, 'the close');
  }
});

test('during a storm a delivery waits until it passes, and is stored once it has', async () => {
  const a = await silentSocket();
  const b = await silentSocket();
  assert.equal(rsa.stats.handshakesUnderWay, 2);
  let answeredAt = 0;
  const delivered = timedDelivery('in the storm').then((ms) => (answeredAt = performance.now()) && ms);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(answeredAt, 0, 'answered while the storm was on');
  const closedAt = performance.now();
  a.close();
  await delivered;
  assert.ok(answeredAt - closedAt < HOLD_MS - 300, `answered ${(answeredAt - closedAt).toFixed(0)} ms after the storm passed`);
  b.close();
  await waitFor(() => rsa.stats.handshakesUnderWay === 0, 5000, 'the closes');
  const page = await to.inbox.fetch();
  assert.ok(page.messages.length >= 3, 'every delivery stored');
});

test('a storm that does not pass holds a delivery for handshakeHoldMs at most', async () => {
  const a = await silentSocket();
  const b = await silentSocket();
  try {
    const ms = await timedDelivery('a long storm');
    assert.ok(ms >= HOLD_MS - 100 && ms < HOLD_MS + 2000, `answered after ${ms.toFixed(0)} ms`);
  } finally {
    a.close();
    b.close();
  }
});
