/**
 * The client's Store contract suite inside headless Chromium, on its real IndexedDB: bundled
 * unchanged with the node:test/assert shims, run against the IndexedDB store (with a reopen)
 * and the memory store; each browser-side test is a subtest here.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBrowserSuite, type BrowserSuiteRun, type BrowserTestResult } from './harness/chromium.ts';

const here = dirname(fileURLToPath(import.meta.url));

describe('store contract in Chromium', () => {
  let run: BrowserSuiteRun | undefined;
  let results: BrowserTestResult[] = [];

  before(async () => {
    run = await runBrowserSuite(join(here, 'browser/store-contract.entry.ts'));
    results = run.results;
  });

  after(async () => {
    await run?.close();
  });

  it('the suite ran in the browser for each store', () => {
    const indexedDb = results.filter((r) => r.name.includes('IndexedDB (in Chromium)'));
    const memory = results.filter((r) => r.name.includes('memory (in Chromium)'));
    assert.ok(indexedDb.length >= 30, `only ${indexedDb.length} IndexedDB tests ran`);
    assert.equal(indexedDb.length, memory.length, 'each store ran the whole suite');
  });

  it('every browser-side test passes', async (t) => {
    for (const r of results) {
      await t.test(r.name, () => {
        assert.ok(r.ok, r.error);
      });
    }
  });
});
