/**
 * The protocol's crypto conformance vectors inside headless Chromium (Debian's chromium through
 * playwright-core): the suite of packages/protocol/test/crypto-conformance.ts bundled unchanged
 * with the node:test/assert shims, on noble and on the browser provider. Each browser-side test
 * becomes a subtest here, so a failing vector fails by name.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleForBrowser, collectResults, launchChromium, PAGE_HTML, serveRoutes, type BrowserTestResult, type LaunchedChromium, type StaticServer } from './harness/chromium.ts';

const here = dirname(fileURLToPath(import.meta.url));

describe('crypto conformance in Chromium', () => {
  let chromium: LaunchedChromium | undefined;
  let server: StaticServer | undefined;
  let results: BrowserTestResult[] = [];

  before(async () => {
    const js = await bundleForBrowser(join(here, 'browser/crypto-conformance.entry.ts'));
    server = await serveRoutes({ '/': { type: 'text/html', body: PAGE_HTML }, '/bundle.js': { type: 'text/javascript', body: js } });
    chromium = await launchChromium();
    const page = await (await chromium.newContext()).newPage();
    results = await collectResults(page, server.url);
  });

  after(async () => {
    await chromium?.close();
    await server?.close();
  });

  it('every provider suite ran in the browser (noble, browser, cross-provider)', () => {
    assert.ok(results.some((r) => r.name.startsWith('crypto conformance: noble')));
    assert.ok(results.some((r) => r.name.startsWith('crypto conformance: browser')));
    assert.ok(results.some((r) => r.name.includes('HPKE')));
    assert.ok(results.length >= 90, `only ${results.length} browser tests ran`);
  });

  it('every browser-side test passes', async (t) => {
    for (const r of results) {
      await t.test(r.name, () => {
        assert.ok(r.ok, r.error);
      });
    }
  });
});
