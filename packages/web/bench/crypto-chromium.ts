/**
 * `node --import tsx packages/web/bench/crypto-chromium.ts [--json]`: noble vs WebCrypto per
 * primitive inside Debian's headless Chromium (the figures in docs/WEB.md come from here).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleForBrowser, launchChromium, PAGE_HTML, serveRoutes } from '../test/harness/chromium.ts';

interface Row {
  primitive: string;
  impl: string;
  usPerOp: number;
  ops: number;
}

const here = dirname(fileURLToPath(import.meta.url));
const js = await bundleForBrowser(join(here, 'crypto-primitives.entry.ts'), { minify: true });
const server = await serveRoutes({ '/': { type: 'text/html', body: PAGE_HTML }, '/bundle.js': { type: 'text/javascript', body: js } });
const chromium = await launchChromium();
try {
  const page = await (await chromium.newContext()).newPage();
  await page.goto(server.url);
  const handle = await page.waitForFunction(() => (globalThis as { __umbraResults?: unknown }).__umbraResults, undefined, { timeout: 120_000, polling: 250 });
  const rows = (await handle.jsonValue()) as Row[] | { fatal: string };
  if (!Array.isArray(rows)) throw new Error(rows.fatal);
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ chromium: chromium.browser.version(), rows }));
  } else {
    console.log(`Chromium ${chromium.browser.version()} (headless), µs per operation (lower is better)`);
    const byPrimitive = new Map<string, Map<string, number>>();
    for (const r of rows) {
      const m = byPrimitive.get(r.primitive) ?? new Map<string, number>();
      m.set(r.impl, r.usPerOp);
      byPrimitive.set(r.primitive, m);
    }
    console.log('| primitive | noble | WebCrypto | faster |');
    console.log('|---|---|---|---|');
    for (const [primitive, m] of byPrimitive) {
      const n = m.get('noble');
      const w = m.get('webcrypto');
      const faster = n !== undefined && w !== undefined ? (w < n ? `WebCrypto ×${(n / w).toFixed(1)}` : `noble ×${(w / n).toFixed(1)}`) : '—';
      console.log(`| ${primitive} | ${n?.toFixed(1) ?? '—'} | ${w?.toFixed(1) ?? '—'} | ${faster} |`);
    }
  }
} finally {
  await chromium.close();
  await server.close();
}
