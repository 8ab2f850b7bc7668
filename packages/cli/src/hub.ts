/**
 * `umbra hub`: the Communicator services on loopback and the web app beside them, until Ctrl-C.
 * The web app (packages/web, built with esbuild at start) is served from the port after the
 * services' five (7705 by default) together with /umbra-hub.json, where the page learns the
 * services' URLs; the services send CORS headers for that origin and any `--web-origin`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir, preparePrivateDatabase, PrivateDirError, startHub, type Hub, type HubOptions } from '@umbra/services';
import { CliError } from './errors.ts';

/** A data directory the hub refuses (another user's, not a directory) is a user error, not a crash. */
function privateDirFailure(e: unknown): never {
  if (e instanceof PrivateDirError) throw new CliError(e.message);
  throw e;
}

/** The web server's port is the one after the services' (issuer, SSA, RSA, RSA, directory). */
export const WEB_PORT_OFFSET = 5;

export interface WebHubOptions {
  readonly dataDir: string;
  /** Base port (0 = any free ports). */
  readonly port: number;
  readonly host?: string;
  /** Serve the web app (default true). */
  readonly web?: boolean;
  /** More origins whose pages may call the services, beyond the hub's own web origin. */
  readonly webOrigins?: readonly string[];
  /** Passed on to startHub (tests). */
  readonly hubOptions?: Omit<HubOptions, 'dataDir' | 'port' | 'host' | 'webOrigins'>;
}

export interface WebHub {
  readonly hub: Hub;
  /** The web app's URL (http://127.0.0.1:7705/), null with `web: false`. */
  readonly webUrl: string | null;
  /** Minified app.js and gzipped size of the served files. */
  readonly bundle: { readonly scriptBytes: number; readonly gzipBytes: number } | null;
  close(): Promise<void>;
}

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

function originOf(url: string): string {
  return new URL(url).origin;
}

/** Content-Security-Policy: scripts and styles from the page's origin only; network to the hub's services. */
function contentSecurityPolicy(hub: Hub): string {
  const services = [hub.issuer, hub.ssa, ...hub.rsas, hub.directory].map(originOf);
  const sockets = services.map((o) => o.replace(/^http/, 'ws'));
  return [
    "default-src 'self'",
    `connect-src 'self' ${[...new Set([...services, ...sockets])].join(' ')}`,
    "img-src 'self' data:",
    "style-src 'self'",
    "script-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

async function listenOn(server: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** Starts the services and (unless `web: false`) the web app's server; close() stops both. */
export async function startWebHub(opts: WebHubOptions): Promise<WebHub> {
  const host = opts.host ?? '127.0.0.1';
  const serveWeb = opts.web ?? true;
  let server: Server | null = null;
  let webUrl: string | null = null;
  let bundle: WebHub['bundle'] = null;
  const assets = new Map<string, Asset>();
  let hubConfig = '';
  let csp = "default-src 'none'";
  if (serveWeb) {
    // Built before listening: a page served is always the current source.
    const { buildWebApp } = await import('@umbra/web/build');
    const built = await buildWebApp();
    bundle = { scriptBytes: built.scriptBytes, gzipBytes: built.gzipBytes };
    for (const [path, file, type] of [
      ['/', 'index.html', 'text/html; charset=utf-8'],
      ['/index.html', 'index.html', 'text/html; charset=utf-8'],
      ['/app.js', 'app.js', 'text/javascript; charset=utf-8'],
      ['/app.css', 'app.css', 'text/css; charset=utf-8'],
    ] as const) {
      assets.set(path, { type, body: readFileSync(join(built.outDir, file)) });
    }
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const path = new URL(req.url ?? '/', 'http://hub').pathname;
      const common = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-cache' };
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { ...common, allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/umbra-hub.json') {
        res.writeHead(200, { ...common, 'content-type': 'application/json' }).end(hubConfig);
        return;
      }
      const asset = assets.get(path);
      if (asset === undefined) {
        res.writeHead(404, { ...common, 'content-type': 'text/plain' }).end('not found');
        return;
      }
      res.writeHead(200, { ...common, 'content-type': asset.type, 'content-security-policy': csp }).end(req.method === 'HEAD' ? undefined : asset.body);
    });
    const webPort = await listenOn(server, host, opts.port === 0 ? 0 : opts.port + WEB_PORT_OFFSET).catch((e: unknown) => {
      throw new CliError(`cannot serve the web app on ${host}:${opts.port + WEB_PORT_OFFSET}: ${(e as Error).message}`);
    });
    const hostPart = host.includes(':') ? `[${host}]` : host;
    webUrl = `http://${hostPart}:${webPort}/`;
  }
  const ownOrigins = webUrl === null ? [] : [originOf(webUrl), ...(host === '127.0.0.1' ? [`http://localhost:${new URL(webUrl).port}`] : [])];
  let hub: Hub;
  try {
    hub = await startHub({ ...opts.hubOptions, dataDir: opts.dataDir, port: opts.port, host, webOrigins: [...ownOrigins, ...(opts.webOrigins ?? [])] }).catch(privateDirFailure);
  } catch (e) {
    server?.closeAllConnections();
    server?.close();
    throw e;
  }
  hubConfig = JSON.stringify({ issuer: hub.issuer, ssa: hub.ssa, rsas: hub.rsas, directory: hub.directory });
  csp = contentSecurityPolicy(hub);
  return {
    hub,
    webUrl,
    bundle,
    async close() {
      if (server !== null) {
        const s = server;
        await new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        });
      }
      await hub.close();
    },
  };
}

export async function hub(opts: { data: string; port: string; waku?: boolean; wakuListen?: string; web?: boolean; webOrigin?: readonly string[] }): Promise<void> {
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535 - WEB_PORT_OFFSET) throw new CliError(`--port must be 0..${65535 - WEB_PORT_OFFSET}`);
  if (opts.waku === true) {
    await wakuHub(opts.data, opts.wakuListen ?? '/ip4/127.0.0.1/tcp/60000');
    return;
  }
  const w = await startWebHub({ dataDir: opts.data, port, ...(opts.web !== undefined ? { web: opts.web } : {}), ...(opts.webOrigin ? { webOrigins: opts.webOrigin } : {}) }).catch((e: unknown) => {
    if (e instanceof Error && e.name === 'CorsOriginError') throw new CliError(`--web-origin: ${e.message}`);
    throw e;
  });
  const h = w.hub;
  console.log(`umbra hub — data in ${h.dataDir}`);
  if (w.webUrl !== null) console.log(`  web app           ${w.webUrl}`);
  console.log(`  issuer            ${h.issuer}`);
  console.log(`  sending service   ${h.ssa}`);
  h.rsas.forEach((url) => console.log(`  receiving service ${url}`));
  console.log(`  directory         ${h.directory}`);
  console.log(`\nOpen ${w.webUrl ?? '(web app off)'} in a browser, or: umbra --hub ${h.issuer} init --name <name>   (Ctrl-C stops the hub)`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await w.close();
}

/** `umbra hub --waku`: a Waku relay node with a store, for others to bootstrap from. */
async function wakuHub(dataDir: string, listen: string): Promise<void> {
  const { startWakuBootstrapNode } = await import('@umbra/client/waku');
  // Same rule as the services' data: a 0700 directory, a 0600 store (and so 0600 -wal/-shm).
  try {
    ensurePrivateDir(dataDir);
  } catch (e) {
    privateDirFailure(e);
  }
  const storePath = join(dataDir, 'waku-store.db');
  preparePrivateDatabase(storePath);
  const node = await startWakuBootstrapNode({ listen: [listen], store: { path: storePath } });
  console.log(`umbra Waku node (relay + store, data in ${dataDir})`);
  for (const addr of node.multiaddrs) console.log(`  ${addr}`);
  console.log(`\nClients: umbra --transport waku --bootstrap ${node.multiaddrs[0] ?? '<multiaddr>'} chat   (Ctrl-C stops the node)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await node.close();
}
