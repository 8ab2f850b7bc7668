/**
 * Test helper: a private PostgreSQL 15 in a temp dir (initdb as user `postgres` when running as
 * root, pg_ctl on 127.0.0.1 with a free port and the socket dir inside the temp dir), stopped and
 * removed by stop(). Throws (never skips) when PostgreSQL is not installed: .ci/run installs it.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';

function findBin(name: string): string {
  for (const dir of ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin']) if (existsSync(join(dir, name))) return join(dir, name);
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`]).toString().trim();
  } catch {
    throw new Error(`PostgreSQL is not installed (${name} not found in /usr/lib/postgresql/*/bin or on PATH); install it with apt-get install -y postgresql`);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface PrivatePostgres {
  /** Creates a fresh database and returns its URL. */
  createDb(): Promise<string>;
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<PrivatePostgres> {
  const initdb = findBin('initdb');
  const pgCtl = findBin('pg_ctl');
  const root = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'umbra-pg-'));
  chmodSync(dir, 0o755);
  if (root) execFileSync('chown', ['postgres:postgres', dir]);
  const run = (cmd: string, args: string[]) =>
    root ? execFileSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { stdio: 'pipe' }) : execFileSync(cmd, args, { stdio: 'pipe' });
  const data = join(dir, 'pgdata');
  const port = await freePort();
  run(initdb, ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  run(pgCtl, [
    '-D',
    data,
    '-o',
    `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c max_connections=300`,
    '-l',
    join(dir, 'pg.log'),
    '-w',
    'start',
  ]);
  // pg_ctl daemonizes the server: a test process that exits without stop() (a timeout, the
  // runner's SIGTERM, --test-force-exit) stops it here, synchronously, so none is left running.
  const stopAtExit = () => {
    try {
      run(pgCtl, ['-D', data, '-m', 'immediate', 'stop']);
    } catch {
      // already stopped
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopAtExit);
  const admin = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1, onnotice: () => {} });
  let n = 0;
  return {
    async createDb() {
      const name = `t${process.pid}_${++n}`;
      await admin.unsafe(`CREATE DATABASE ${name}`);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      process.off('exit', stopAtExit);
      await admin.end({ timeout: 2 });
      try {
        run(pgCtl, ['-D', data, '-m', 'immediate', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
