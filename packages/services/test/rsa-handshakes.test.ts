/**
 * The RSA's delivery items yield the event loop only while WebSocket handshakes are under way
 * (slices.ts). A socket counts as handshaking until it authenticates, closes, or
 * handshakeYieldMs has passed: one that opens and stays silent must not keep deliveries
 * sliced for its whole 10 s auth timeout.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { b64u } from '../src/bytes.ts';
import { startRsa, type RsaService } from '../src/rsa.ts';
import { createTestInbox, startTestIssuer, trustedSsa, waitFor, type TestIssuer } from './rsa-fixture.ts';

const YIELD_MS = 300;
let dir: string;
let iss: TestIssuer;
let rsa: RsaService;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'umbra-rsa-handshakes-'));
  iss = await startTestIssuer();
  rsa = await startRsa({
    db: join(dir, 'rsa.db'),
    issuerName: iss.issuer.issuerName,
    tokenKeys: [iss.issuer.tokenKeys.rsa],
    trustedSsaKeys: [trustedSsa.publicKey],
    limits: { handshakeYieldMs: YIELD_MS },
  });
});

after(async () => {
  await rsa.close();
  await iss.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A raw socket to an inbox's push endpoint, open once the RSA's challenge has arrived. */
async function silentSocket(inboxId: string): Promise<WebSocket> {
  const ws = new WebSocket(`${rsa.url.replace(/^http/, 'ws')}/v1/inboxes/${inboxId}/ws`);
  await new Promise<void>((resolve, reject) => {
    ws.once('message', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

test('a socket that never authenticates stops counting as a handshake after handshakeYieldMs, while it stays open', async () => {
  const { inbox } = await createTestInbox(iss.account, rsa.url);
  const ws = await silentSocket(inbox.id);
  assert.equal(rsa.stats.handshakesUnderWay, 1);
  const openedAt = performance.now();
  await waitFor(() => rsa.stats.handshakesUnderWay === 0, 5000, 'the handshake bound');
  const counted = performance.now() - openedAt;
  assert.ok(counted >= YIELD_MS - 50, `counted for ${counted.toFixed(0)} ms, less than the bound`);
  assert.equal(ws.readyState, WebSocket.OPEN, 'the socket itself is only closed by the auth timeout');
  ws.close();
});

test('authenticating, or closing before the bound, ends the count once (never below zero)', async () => {
  const { inbox } = await createTestInbox(iss.account, rsa.url);
  const conn = await inbox.connect(() => {});
  assert.equal(rsa.stats.handshakesUnderWay, 0, 'an authenticated socket is no longer counted');
  const early = await silentSocket(b64u(new Uint8Array(16)));
  assert.equal(rsa.stats.handshakesUnderWay, 1);
  early.close();
  await waitFor(() => rsa.stats.handshakesUnderWay === 0, 5000, 'the close to be seen');
  await new Promise((r) => setTimeout(r, YIELD_MS + 100)); // the bound fires after the close: no second decrement
  assert.equal(rsa.stats.handshakesUnderWay, 0);
  conn.close();
  await conn.closed;
  assert.equal(rsa.stats.handshakesUnderWay, 0);
});
