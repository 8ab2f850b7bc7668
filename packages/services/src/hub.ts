/**
 * The hub: issuer, one SSA and two RSAs on loopback, data under `dataDir` (SQLite files by
 * default). `umbra hub` / `npm run hub` run it; tests and the load test use `startHub`.
 * With `rsaMode: 'child'` each RSA runs in its own process and can be killed (SIGKILL) and
 * restarted on the same port and database, for crash tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { b64u } from './bytes.ts';
import { startIssuer, type IssuerService } from './issuer.ts';
import { startRsa, type RsaLimits, type RsaService } from './rsa.ts';
import { startSsa, type RetryPolicy, type SsaService } from './ssa.ts';
import { startDirectory, type DirectoryService } from './directory/server.ts';
import { allowOrigins } from './cors.ts';
import { ensurePrivateDir, preparePrivateDatabase, PRIVATE_FILE_MODE } from './private-files.ts';
import { readyUrl } from './ready-line.ts';
import { childCommand } from './child-entry.ts';

export interface HubOptions {
  dataDir?: string;
  host?: string;
  /** Base port: issuer = port, SSA = port+1, RSAs = port+2, port+3. 0 (default) = any free ports. */
  port?: number;
  /** Database locations; default SQLite files in dataDir. */
  databases?: { issuer?: string; ssa?: string; rsa?: [string, string]; directory?: string };
  /** Directory namespace (default: the directory's host:port); port+4. */
  directoryNamespace?: string;
  rsaMode?: 'in-process' | 'child';
  rsaLimits?: Partial<RsaLimits>;
  ssaRetry?: Partial<RetryPolicy>;
  quota?: { ssa?: number; rsa?: number };
  /** Web origins whose pages may call the services (CORS, cors.ts); '*' = any. Default none. */
  webOrigins?: readonly string[];
}

export interface HubRsa {
  url: string;
  /** Kills the RSA at once (SIGKILL in child mode; close() in-process). */
  kill(): Promise<void>;
  /** Stops the RSA gracefully (SIGTERM in child mode, SIGKILL after 5 s; close() in-process). */
  stop(): Promise<void>;
  /** Starts it again on the same port and database. */
  restart(): Promise<void>;
}

export interface Hub {
  issuer: string;
  ssa: string;
  rsas: [string, string];
  rsaHandles: [HubRsa, HubRsa];
  /** Directory service (names, key packages, transparency log); lookups paid with 'ssa' tokens. */
  directory: string;
  dataDir: string;
  services: { issuer: IssuerService; ssa: SsaService; directory: DirectoryService };
  close(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));

/**
 * RSA child processes started by this process. SIGKILLed when it exits (process.exit included),
 * so a test that never reached hub.close() or a hub that crashed leaves no RSA serving behind.
 */
const rsaChildren = new Set<ChildProcess>();

function trackRsaChild(child: ChildProcess): void {
  if (rsaChildren.size === 0) process.once('exit', killRsaChildren);
  rsaChildren.add(child);
  child.once('exit', () => {
    rsaChildren.delete(child);
    if (rsaChildren.size === 0) process.off('exit', killRsaChildren);
  });
}

function killRsaChildren(): void {
  for (const child of rsaChildren) child.kill('SIGKILL');
}

function loadOrCreateKey(file: string): Uint8Array {
  if (existsSync(file)) {
    const k = new Uint8Array(readFileSync(file));
    if (k.length !== 32) throw new Error(`${file} must hold 32 bytes`);
    return k;
  }
  const k = new Uint8Array(randomBytes(32));
  writeFileSync(file, k, { mode: PRIVATE_FILE_MODE });
  chmodSync(file, PRIVATE_FILE_MODE);
  return k;
}

async function spawnRsa(config: Record<string, unknown>): Promise<{ child: ChildProcess; url: string }> {
  const { args } = await childCommand('rsa-main');
  const child = spawn(process.execPath, [...args, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: resolve(here, '../../..'),
  });
  trackRsaChild(child);
  const url = await readyUrl(child, 'RSA process');
  return { child, url };
}

export async function startHub(opts: HubOptions = {}): Promise<Hub> {
  const dataDir = resolve(opts.dataDir ?? 'data');
  // Keys and databases: 0600 files in a 0700 directory (private-files.ts; an existing looser
  // directory is tightened, one owned by another user refused).
  ensurePrivateDir(dataDir);
  const host = opts.host ?? '127.0.0.1';
  const base = opts.port ?? 0;
  const port = (i: number) => (base === 0 ? 0 : base + i);
  const dbs = {
    issuer: opts.databases?.issuer ?? join(dataDir, 'issuer.db'),
    ssa: opts.databases?.ssa ?? join(dataDir, 'ssa.db'),
    rsa: opts.databases?.rsa ?? [join(dataDir, 'rsa1.db'), join(dataDir, 'rsa2.db')],
    directory: opts.databases?.directory ?? join(dataDir, 'directory.db'),
  };
  for (const db of [dbs.issuer, dbs.ssa, ...dbs.rsa, dbs.directory]) preparePrivateDatabase(db);

  const webOrigins = opts.webOrigins ?? [];
  const issuer = await startIssuer({ db: dbs.issuer, host, port: port(0), quota: opts.quota });
  allowOrigins(issuer.app, webOrigins);
  // The SSA starts first: the RSAs trust its key (deliveries from other signers must be paid).
  const ssa = await startSsa({
    db: dbs.ssa,
    sealKey: loadOrCreateKey(join(dataDir, 'ssa-seal.key')),
    host,
    port: port(1),
    issuerName: issuer.issuerName,
    tokenKeys: [issuer.tokenKeys.ssa],
    retry: opts.ssaRetry,
    allowLoopback: true, // the hub's RSAs are on loopback (plain http)
  });
  allowOrigins(ssa.app, webOrigins);
  const rsaHandles: HubRsa[] = [];
  for (let i = 0; i < 2; i++) {
    const config = {
      db: dbs.rsa[i]!,
      host,
      port: port(2 + i),
      issuerName: issuer.issuerName,
      tokenKeys: [b64u(issuer.tokenKeys.rsa)],
      trustedSsaKeys: [b64u(ssa.serviceKey)],
      limits: opts.rsaLimits,
      corsOrigins: webOrigins, // rsa-main.ts applies them in child mode
    };
    if (opts.rsaMode === 'child') {
      let { child, url } = await spawnRsa(config);
      const fixed = { ...config, port: Number(new URL(url).port), originInfo: new URL(url).host };
      let alive = true;
      rsaHandles.push({
        url,
        async kill() {
          if (!alive) return;
          alive = false;
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGKILL');
          await exited;
        },
        async stop() {
          if (!alive) return;
          alive = false;
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          const force = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(force);
        },
        async restart() {
          if (alive) await this.kill();
          ({ child, url } = await spawnRsa(fixed));
          alive = true;
        },
      });
    } else {
      const keys = { tokenKeys: [issuer.tokenKeys.rsa], trustedSsaKeys: [ssa.serviceKey] };
      const startCorsRsa = async (o: Parameters<typeof startRsa>[0]): Promise<RsaService> => {
        const started = await startRsa(o);
        allowOrigins(started.app, webOrigins);
        return started;
      };
      let svc: RsaService | null = await startCorsRsa({ ...config, ...keys });
      const fixed = { ...config, port: Number(new URL(svc.url).port), originInfo: svc.originInfo, ...keys };
      rsaHandles.push({
        url: svc.url,
        async kill() {
          await svc?.close();
          svc = null;
        },
        async stop() {
          await svc?.close();
          svc = null;
        },
        async restart() {
          await svc?.close();
          svc = await startCorsRsa(fixed);
        },
      });
    }
  }
  const directory = await startDirectory({
    db: dbs.directory,
    host,
    port: port(4),
    issuerName: issuer.issuerName,
    tokenKeys: [issuer.tokenKeys.ssa],
    ...(opts.directoryNamespace ? { namespace: opts.directoryNamespace } : {}),
  });
  allowOrigins(directory.app, webOrigins);
  return {
    issuer: issuer.url,
    ssa: ssa.url,
    rsas: [rsaHandles[0]!.url, rsaHandles[1]!.url],
    rsaHandles: [rsaHandles[0]!, rsaHandles[1]!],
    directory: directory.url,
    dataDir,
    services: { issuer, ssa, directory },
    async close() {
      await directory.close();
      await ssa.close();
      for (const r of rsaHandles) await r.stop();
      await issuer.close();
    },
  };
}
