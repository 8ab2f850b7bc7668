/**
 * Short invitation links end to end over the hub on loopback (issuer, SSA, two RSAs, directory):
 * a link of ≤ 100 characters whose QR code fits 80×24, accepted by a second client, messages
 * both ways; the full form still works; a tampered, unknown, expired or unreachable link is a
 * typed error and starts nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import QRCode from 'qrcode';
import { invitationBlobPath, parseInvitationLink } from '@umbra/protocol';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startDirectory, startHub, type Hub } from '@umbra/services';
import { Client, ClientError, MemoryStateStore, nodeProvider, ServicesDelivery, SqliteStore } from '../src/node.ts';
import { fetchDescriptor, tokenInfoFromJson } from '../src/services/http/descriptor.ts';
import { FAST, KEY_A, tempDir, texts, waitFor } from './helpers.ts';

let hub: Hub;
const cleanups: (() => void)[] = [];
const open: { client: Client; delivery: ServicesDelivery }[] = [];

before(async () => {
  const t = tempDir('umbra-links-hub-');
  cleanups.push(t.cleanup);
  hub = await startHub({ dataDir: t.dir, port: 0, ssaRetry: { baseMs: 50, maxMs: 500 } });
});

after(async () => {
  for (const o of open) {
    await o.client.close().catch(() => undefined);
    o.delivery.close();
  }
  await hub?.close();
  for (const c of cleanups) c();
});

async function member(name: string): Promise<{ client: Client; delivery: ServicesDelivery }> {
  const delivery = await ServicesDelivery.open({ issuer: hub.issuer, ssa: hub.ssa, rsas: hub.rsas, stateStore: new MemoryStateStore() });
  const client = await Client.open({ delivery, store: await SqliteStore.open({ path: ':memory:', key: KEY_A }), profile: { name }, ...FAST });
  const m = { client, delivery };
  open.push(m);
  return m;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ClientError, `expected a ClientError, got ${String(e)}`);
    return e.code;
  }
  assert.fail('expected a rejection');
}

/** The terminal rendering the CLI prints (cli/src/output.ts): columns and rows without colour escapes. */
async function terminalQrSize(text: string): Promise<{ columns: number; rows: number }> {
  const code = await QRCode.toString(text, { type: 'terminal', small: true, errorCorrectionLevel: 'L' });
  // eslint-disable-next-line no-control-regex
  const lines = code.split('\n').map((l) => l.replace(/\x1b\[[0-9;]*m/g, '')).filter((l) => l.length > 0);
  return { columns: Math.max(...lines.map((l) => [...l].length)), rows: lines.length };
}

describe('short invitation links over the hub', () => {
  test('createInvitation({ shortLink }) gives a ≤ 100-character link (QR ≤ 80×24); accept(link) starts the conversation; messages both ways', async () => {
    const alice = await member('Alice');
    const bob = await member('Bob');
    const inv = await bob.client.createInvitation({ shortLink: { service: hub.directory } });
    assert.ok(inv.link !== undefined);
    assert.ok(inv.link.length <= 100, `link ${inv.link.length} chars: ${inv.link}`);
    assert.ok(inv.link.startsWith(`${hub.directory}/i#`));
    assert.ok(inv.text.length > 2000, `the full form is ${inv.text.length} chars`);
    assert.equal(inv.linkExpiresAt, inv.expiresAt, 'a 7-day invitation: the link lives as long');
    const qr = await terminalQrSize(inv.link);
    const fullQr = await terminalQrSize(inv.text);
    console.log(`# link ${inv.link.length} chars, QR ${qr.columns}x${qr.rows}; full form ${inv.text.length} chars, QR ${fullQr.columns}x${fullQr.rows}`);
    assert.ok(qr.columns <= 80 && qr.rows <= 24, `QR ${qr.columns}x${qr.rows}`);
    assert.ok(fullQr.columns > 80, 'the full form does not fit (why links exist)');

    const conv = await alice.client.accept(`  ${inv.link}\n`);
    await waitFor(async () => (await bob.client.conversations()).some((c) => c.id === conv.id), 15_000, 'bob to see the conversation');
    await alice.client.send(conv.id, 'hi Bob, from a short link');
    await waitFor(async () => (await texts(bob.client, conv.id)).length === 1, 15_000, 'bob to receive');
    await bob.client.send(conv.id, 'hi Alice');
    await waitFor(async () => (await texts(alice.client, conv.id)).length === 2, 15_000, 'alice to receive');
    assert.deepEqual(await texts(bob.client, conv.id), ['<hi Bob, from a short link', '>hi Alice']);
    assert.equal((await alice.client.conversation(conv.id))?.peerName, 'Bob');
  });

  test('the full form of a linked invitation is accepted as before; a reusable one links too; shortLink() makes another link', async () => {
    const alice = await member('Alice2');
    const bob = await member('Bob2');
    const inv = await bob.client.createInvitation({ reusable: true, ttlSeconds: 3600, shortLink: { service: hub.directory } });
    assert.ok(inv.linkExpiresAt !== undefined && inv.linkExpiresAt === inv.expiresAt);
    const conv = await alice.client.accept(inv.text);
    await waitFor(async () => (await bob.client.conversations()).some((c) => c.id === conv.id), 15_000, 'bob to see it');
    // A separate link for an existing invitation (shortLink): a second, different link.
    const again = await bob.client.shortLink(inv, { service: hub.directory });
    assert.notEqual(again.link, inv.link);
  });

  test('tampered, unknown, substituted, malformed and unreachable links are typed errors and start nothing', async () => {
    const alice = await member('Alice3');
    const bob = await member('Bob3');
    const inv = await bob.client.createInvitation({ shortLink: { service: hub.directory } });
    const link = inv.link!;
    const before = (await alice.client.conversations()).length;
    // One character of the key changed: another locator, nothing stored there.
    const key = link.slice(link.indexOf('#') + 1);
    const flipped = `${link.slice(0, link.indexOf('#') + 1)}${key[0] === 'A' ? 'B' : 'A'}${key.slice(1)}`;
    assert.equal(await codeOf(alice.client.accept(flipped)), 'invitation-malformed');
    // A service (or anyone who paid) putting another invitation's blob under a link's locator:
    // the blob was sealed under another key and locator, so it does not open.
    const other = await bob.client.createInvitation({ shortLink: { service: hub.directory } });
    const res = await fetch(hub.directory + invitationBlobPath(nodeProvider, parseInvitationLink(other.link!).linkKey));
    const stored = (await res.json()) as { blob: string };
    const fake = new Uint8Array(32).fill(9);
    const fakeLink = `${hub.directory}/i#${Buffer.from(fake).toString('base64url')}`;
    const tokens = await bob.delivery.tokensFor(tokenInfoFromJson((await fetchDescriptor(hub.directory)).body.token)!, 1);
    const put = await fetch(hub.directory + invitationBlobPath(nodeProvider, fake), {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `PrivateToken token="${Buffer.from(tokens[0]!).toString('base64url')}"` },
      body: JSON.stringify({ blob: stored.blob, expires_at: Math.floor(Date.now() / 1000) + 600 }),
    });
    assert.equal(put.status, 201);
    assert.equal(await codeOf(alice.client.accept(fakeLink)), 'invitation-malformed');
    for (const bad of [`${hub.directory}/i#short`, `${hub.directory}/x#${key}`, `${hub.directory}/i?a=1#${key}`]) {
      assert.equal(await codeOf(alice.client.accept(bad)), 'invitation-malformed', bad);
    }
    // Nothing listening there.
    assert.equal(await codeOf(alice.client.accept(`http://127.0.0.1:9/i#${key}`)), 'delivery-failed');
    assert.equal((await alice.client.conversations()).length, before);
    // And the real link still works after all that.
    await alice.client.accept(link);
    assert.equal((await alice.client.conversations()).length, before + 1);
  });

  test('a link whose invitation expired is invitation-expired (410), and starts nothing', async () => {
    const t = tempDir('umbra-links-dir-');
    cleanups.push(t.cleanup);
    // A directory of its own with a clock the test moves; paid with the hub issuer's tokens.
    const clock = { t: Date.now(), now() { return this.t; } };
    const issuer = hub.services.issuer;
    const dir = await startDirectory({ db: join(t.dir, 'directory.db'), clock, issuerName: issuer.issuerName, tokenKeys: [issuer.tokenKeys.ssa] });
    try {
      const alice = await member('Alice5');
      const bob = await member('Bob5');
      const inv = await bob.client.createInvitation({ ttlSeconds: 600, shortLink: { service: dir.url } });
      assert.equal(inv.linkExpiresAt, inv.expiresAt);
      // Past the expiry itself, not 601 s after the clock was made: on a loaded machine the set-up
      // above can take over a second, and the invitation's expiry counts from its creation.
      clock.t = inv.expiresAt * 1000 + 1000;
      assert.equal(await codeOf(alice.client.accept(inv.link!)), 'invitation-expired');
      assert.equal((await alice.client.conversations()).length, 0);
    } finally {
      await dir.close();
    }
  });

  test('a hostile service: an endless answer is cut off (invitation-malformed), a redirect is not followed (delivery-failed)', async () => {
    const alice = await member('Alice6');
    let sent = 0;
    const server = createServer((req, res) => {
      if (req.url!.startsWith('/redirect/')) {
        res.writeHead(302, { location: `${hub.directory}${req.url!.slice('/redirect'.length)}` }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = () => {
        while (sent < 64 * 1024 * 1024 && res.write(chunk)) sent += chunk.length;
        if (sent < 64 * 1024 * 1024) res.once('drain', pump);
        else res.end();
      };
      res.on('close', () => undefined);
      pump();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const key = Buffer.alloc(32, 5).toString('base64url');
      assert.equal(await codeOf(alice.client.accept(`${base}/i#${key}`)), 'invitation-malformed');
      assert.ok(sent < 8 * 1024 * 1024, `the client stopped reading early (${sent} bytes sent)`);
      assert.equal(await codeOf(alice.client.accept(`${base}/redirect/i#${key}`)), 'delivery-failed');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  test('bad shortLink options are invalid-argument (checked before the invitation is made); an unreachable directory is delivery-failed', async () => {
    const bob = await member('Bob4');
    assert.equal(await codeOf(bob.client.createInvitation({ shortLink: { service: '' } })), 'invalid-argument');
    assert.equal(await codeOf(bob.client.createInvitation({ shortLink: { service: 'ftp://x.example' } })), 'invalid-argument');
    assert.equal(await codeOf(bob.client.createInvitation({ shortLink: null as never })), 'invalid-argument');
    // A directory that is not there: the error is delivery-failed.
    assert.equal(await codeOf(bob.client.createInvitation({ shortLink: { service: 'http://127.0.0.1:9' } })), 'delivery-failed');
  });
});
