/**
 * The services' CORS (packages/services/src/cors.ts) as the hub sets it up: an allowed origin's
 * preflight and request get the headers, any other origin none; and in Chromium, a page on the
 * allowed origin reads every service's descriptor while a page on another origin is blocked.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { allowOrigins, CorsOriginError, normalizeOrigin } from '../../services/src/cors.ts';
import { startHub, type Hub } from '../../services/src/hub.ts';
import { launchChromium, serveRoutes, type LaunchedChromium, type StaticServer } from './harness/chromium.ts';

describe('services CORS', () => {
  let hub: Hub | undefined;
  let dataDir = '';
  let allowedSite: StaticServer | undefined;
  let otherSite: StaticServer | undefined;
  let chromium: LaunchedChromium | undefined;
  const page = { type: 'text/html', body: '<!doctype html><title>cors</title>' };

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'umbra-cors-'));
    allowedSite = await serveRoutes({ '/': page });
    otherSite = await serveRoutes({ '/': page });
    hub = await startHub({ dataDir, webOrigins: [allowedSite.url] });
  });

  after(async () => {
    await chromium?.close();
    await hub?.close();
    await allowedSite?.close();
    await otherSite?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers an allowed origin\'s preflight with the methods and the SDK\'s headers, before routing', async () => {
    const res = await fetch(`${hub!.rsas[0]}/v1/inboxes/x/messages`, {
      method: 'OPTIONS',
      headers: { origin: allowedSite!.url, 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'signature, signature-input, content-digest' },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), allowedSite!.url);
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /DELETE/);
    for (const h of ['signature', 'signature-input', 'content-digest', 'authorization', 'content-type']) {
      assert.match(res.headers.get('access-control-allow-headers') ?? '', new RegExp(`\\b${h}\\b`));
    }
    assert.equal(res.headers.get('access-control-allow-credentials'), null);
  });

  it('gives another origin no CORS headers (the browser then blocks the response)', async () => {
    for (const url of [hub!.issuer, hub!.ssa, hub!.rsas[1], hub!.directory]) {
      const res = await fetch(`${url}/.well-known/communicator.json`, { headers: { origin: otherSite!.url } });
      assert.equal(res.headers.get('access-control-allow-origin'), null, url);
      assert.equal(res.headers.get('vary'), 'Origin');
      const pre = await fetch(`${url}/v1/anything`, { method: 'OPTIONS', headers: { origin: otherSite!.url, 'access-control-request-method': 'POST' } });
      assert.notEqual(pre.status, 204, url);
      assert.equal(pre.headers.get('access-control-allow-origin'), null);
    }
  });

  it('refuses origins that are not scheme://host[:port]', () => {
    assert.equal(normalizeOrigin('http://127.0.0.1:7705'), 'http://127.0.0.1:7705');
    assert.equal(normalizeOrigin('https://chat.example/'), 'https://chat.example');
    for (const bad of ['127.0.0.1:7705', 'http://x/path', 'ftp://x', '', 'http://user@x']) {
      assert.throws(() => normalizeOrigin(bad), CorsOriginError, bad);
    }
    assert.throws(() => allowOrigins(hub!.services.issuer.app, ['nope']), CorsOriginError);
  });

  it('in Chromium: the allowed origin reads every service, another origin is blocked', async () => {
    chromium = await launchChromium();
    const urls = [hub!.issuer, hub!.ssa, ...hub!.rsas, hub!.directory].map((u) => `${u}/.well-known/communicator.json`);
    const probe = (targets: string[]) =>
      Promise.all(
        targets.map((u) =>
          fetch(u, { headers: { 'content-type': 'application/json' } }).then(
            (r) => `ok ${r.status}`,
            (e: unknown) => `blocked ${(e as Error).name}`,
          ),
        ),
      );
    const context = await chromium.newContext();
    const allowedPage = await context.newPage();
    await allowedPage.goto(allowedSite!.url);
    const fromAllowed = await allowedPage.evaluate(probe, urls);
    assert.deepEqual(fromAllowed, urls.map(() => 'ok 200'));
    const otherPage = await context.newPage();
    await otherPage.goto(otherSite!.url);
    const fromOther = await otherPage.evaluate(probe, urls);
    assert.deepEqual(fromOther, urls.map(() => 'blocked TypeError'));
  });
});
