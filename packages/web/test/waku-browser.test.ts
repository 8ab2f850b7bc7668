/**
 * Waku from the browser (issue 19, docs/WAKU.md "From a browser"): the hub's Waku node
 * (`startWakuBootstrapNode`, what `umbra hub --waku --waku-listen …/ws` runs) listens on a plain
 * WebSocket; a js-waku relay node in headless Chromium dials it and publishes a first-contact
 * envelope and a text message sealed by an Umbra engine on the browser provider; a Node js-waku
 * peer (the SDK's WakuDelivery, connected to the hub only) receives them and its engine reads the
 * text; its reply travels back through the hub and is read in the browser.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { Engine, wire } from '@umbra/protocol';
import { endpointRoute } from '../../protocol/src/engine.ts';
import { nodeProvider } from '../../client/src/crypto/node-provider.ts';
import { startWakuBootstrapNode, WakuDelivery, type WakuBootstrapNode } from '../../client/src/waku/index.ts';
import { bundleForBrowser, launchChromium, PAGE_HTML, serveRoutes, type LaunchedChromium, type StaticServer } from './harness/chromium.ts';

const here = dirname(fileURLToPath(import.meta.url));

interface BrowserSide {
  start(hub: string, invitation: string): Promise<{ meshPeers: number; published: number; conversationId: string }>;
  nextText(timeoutMs: number): Promise<string>;
}

const textBody = (body: string) => ({
  case: 'content' as const,
  value: wire.create(wire.ContentSchema, { kind: { case: 'text', value: wire.create(wire.TextSchema, { body }) } }),
});

describe('Waku from Chromium through the hub node', { timeout: 180_000 }, () => {
  let hub: WakuBootstrapNode | undefined;
  let bobDelivery: WakuDelivery | undefined;
  let chromium: LaunchedChromium | undefined;
  let server: StaticServer | undefined;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    hub = await startWakuBootstrapNode({ listen: ['/ip4/127.0.0.1/tcp/0/ws'] });
    bobDelivery = await WakuDelivery.create({ bootstrap: [...hub.multiaddrs] });
    const js = await bundleForBrowser(join(here, 'browser', 'waku-relay.entry.ts'));
    server = await serveRoutes({ '/': { type: 'text/html', body: PAGE_HTML }, '/bundle.js': { type: 'text/javascript', body: js } });
    chromium = await launchChromium();
    page = await (await chromium.newContext()).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(server.url);
    await page.waitForFunction(() => (globalThis as { __umbraResults?: unknown }).__umbraResults === 'ready', undefined, { timeout: 60_000 });
  });

  after(async () => {
    await chromium?.close();
    await server?.close();
    await bobDelivery?.close();
    await hub?.close();
  });

  it('the hub node listens on WebSocket; the browser publishes, a Node js-waku peer reads it, and the reply comes back', async () => {
    const wsAddress = hub!.multiaddrs.find((a) => a.includes('/ws/p2p/'));
    assert.ok(wsAddress, `the hub has a /ws address: ${hub!.multiaddrs.join(', ')}`);

    const now = Date.now();
    const bob = Engine.create(nodeProvider, now);
    const invitation = bob.createInvitation({ nowMs: now, reusable: false, ttlSeconds: 3600, presentation: { name: 'Bob' } });
    const readable: { conversationId: string; started: boolean; texts: string[] }[] = [];
    const arrived = new Set<() => void>();
    bobDelivery!.subscribe(bob.receiveRoutes(), async (e) => {
      const r = await bob.receive(e.bytes, Date.now(), { route: e.route });
      if (r.kind !== 'readable') return false;
      const texts = r.frames.flatMap((f) => (f.body.case === 'content' && f.body.value.kind.case === 'text' ? [f.body.value.kind.value.body] : []));
      readable.push({ conversationId: r.conversationId, started: r.started !== null, texts });
      for (const f of arrived) f();
      return true;
    });
    await bobDelivery!.ready();

    const started = await page.evaluate(
      ([address, text]) => (globalThis as unknown as { __wakuBrowser: BrowserSide }).__wakuBrowser.start(address, text),
      [wsAddress, invitation.text] as const,
    );
    assert.ok(started.meshPeers >= 1, 'the browser node has the hub in its relay mesh');
    assert.ok(started.published >= 2, 'both envelopes were accepted by a relay peer');

    const deadline = Date.now() + 30_000;
    while (readable.length < 2 && Date.now() < deadline) {
      await new Promise<void>((r) => {
        arrived.add(r);
        setTimeout(r, 200);
      });
    }
    assert.equal(readable.length, 2, `Bob read ${readable.length} of the browser's 2 envelopes`);
    assert.equal(readable[0]!.started, true, 'the first envelope opened the conversation (first contact)');
    assert.deepEqual(
      readable.map((r) => r.conversationId),
      [started.conversationId, started.conversationId],
    );
    assert.deepEqual(readable[1]!.texts, ['hello from Chromium over Waku']);

    const reply = bob.send(started.conversationId, textBody('hi Chromium, from Node'), Date.now());
    const routes = reply.outgoing.endpoints.map(endpointRoute).filter((r): r is string => r !== null);
    assert.ok(routes.length > 0, 'the reply has a route');
    for (const route of routes) await bobDelivery!.publish(route, reply.outgoing.envelope);
    const text = await page.evaluate(() => (globalThis as unknown as { __wakuBrowser: BrowserSide }).__wakuBrowser.nextText(30_000));
    assert.equal(text, 'hi Chromium, from Node');
    assert.deepEqual(pageErrors, []);
  });
});
