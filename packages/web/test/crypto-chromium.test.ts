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
import { runBrowserSuite, type BrowserSuiteRun, type BrowserTestResult } from './harness/chromium.ts';

const here = dirname(fileURLToPath(import.meta.url));

describe('crypto conformance in Chromium', () => {
  let run: BrowserSuiteRun | undefined;
  let results: BrowserTestResult[] = [];

  before(async () => {
    run = await runBrowserSuite(join(here, 'browser/crypto-conformance.entry.ts'));
    results = run.results;
  });

  after(async () => {
    await run?.close();
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
