/**
 * Runs TypeScript in Debian's Chromium for the web package's tests: esbuild bundles an entry for
 * the browser (node:test and node:assert swapped for small browser shims, so suites written for
 * the Node runner run unchanged), a loopback node:http server serves it, and playwright-core
 * drives the system `chromium` binary with a fresh profile. Never a downloaded browser.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const SHIMS: Record<string, string> = {
  'node:test': join(here, 'node-test-shim.ts'),
  'node:assert/strict': join(here, 'assert-shim.ts'),
  'node:assert': join(here, 'assert-shim.ts'),
};

/** The flags every launch uses: no sandbox (root in CI), nothing that phones home. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-gpu',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Debian's chromium, or null when it is not installed (the tests then fail with a clear message). */
export function chromiumPath(): string | null {
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

const testShims: Plugin = {
  name: 'umbra-test-shims',
  setup(b) {
    b.onResolve({ filter: /^node:(test|assert)(\/strict)?$/ }, (args) => ({ path: SHIMS[args.path]! }));
  },
};

/** Bundles `entry` for Chromium (ESM, ES2022). Test shims replace node:test and node:assert. */
export async function bundleForBrowser(entry: string, options: { minify?: boolean } = {}): Promise<string> {
  const result = await build({
    entryPoints: [resolve(entry)],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    minify: options.minify ?? false,
    sourcemap: false,
    logLevel: 'silent',
    plugins: [testShims],
  });
  return result.outputFiles[0]!.text;
}

export interface Route {
  readonly type: string;
  readonly body: string | Uint8Array;
}

export interface StaticServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves fixed routes on 127.0.0.1 (any free port); anything else is 404. */
export async function serveRoutes(routes: Record<string, Route>): Promise<StaticServer> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const route = routes[new URL(req.url ?? '/', 'http://x').pathname];
    if (route === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': route.type, 'cache-control': 'no-store' }).end(route.body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

export interface LaunchedChromium {
  readonly browser: Browser;
  /** A new isolated context (its own IndexedDB), closed with the browser. */
  newContext(options?: BrowserContextOptions): Promise<BrowserContext>;
  close(): Promise<void>;
}

/**
 * Launches Debian's chromium. playwright-core gives every launch a fresh user-data dir of its own
 * (under os.tmpdir(), removed on close); each context is isolated (own IndexedDB and storage).
 */
export async function launchChromium(): Promise<LaunchedChromium> {
  const executablePath = chromiumPath();
  if (executablePath === null) throw new Error('chromium is not installed (apt-get install chromium)');
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
  return {
    browser,
    newContext: (options) => browser.newContext(options),
    close: () => browser.close().catch(() => undefined),
  };
}

/** One test as the browser-side shim reports it. */
export interface BrowserTestResult {
  readonly name: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly ms: number;
}

export const PAGE_HTML = '<!doctype html><meta charset="utf-8"><title>umbra test</title><script type="module" src="/bundle.js"></script>';

/** Opens `url` and waits for the shim's results (window.__umbraResults). Page errors fail the run. */
export async function collectResults(page: Page, url: string, timeoutMs = 240_000): Promise<BrowserTestResult[]> {
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url);
  const handle = await page.waitForFunction(() => (globalThis as { __umbraResults?: unknown }).__umbraResults, undefined, {
    timeout: timeoutMs,
    polling: 200,
  });
  const results = (await handle.jsonValue()) as BrowserTestResult[] | { fatal: string };
  if (!Array.isArray(results)) throw new Error(`browser suite failed to run: ${results.fatal}`);
  if (pageErrors.length > 0) throw new Error(`page errors: ${pageErrors.join('; ')}`);
  return results;
}

/** A browser-side suite that has run: its results, and the browser and server to close in `after`. */
export interface BrowserSuiteRun {
  readonly results: BrowserTestResult[];
  close(): Promise<void>;
}

/**
 * Bundles a browser entry, serves it on loopback, runs it in a fresh Chromium page and returns
 * its results. Whatever was started is closed again if the run throws.
 */
export async function runBrowserSuite(entry: string): Promise<BrowserSuiteRun> {
  let launched: LaunchedChromium | undefined;
  let server: StaticServer | undefined;
  const close = async () => {
    await launched?.close();
    await server?.close();
  };
  try {
    const js = await bundleForBrowser(entry);
    server = await serveRoutes({ '/': { type: 'text/html', body: PAGE_HTML }, '/bundle.js': { type: 'text/javascript', body: js } });
    launched = await launchChromium();
    const page = await (await launched.newContext()).newPage();
    return { results: await collectResults(page, server.url), close };
  } catch (e) {
    await close();
    throw e;
  }
}
