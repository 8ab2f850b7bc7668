/**
 * Load test (npm run loadtest; not part of npm test).
 *
 *   npm run loadtest -- [--clients 1000] [--messages 100] [--concurrency 100] [--size 512] [--no-kill]
 *                       [--echo-count 20000] [--profile DIR]
 *                       [--db postgres://user@host:port/db --instances 1,3 [--rounds 1]]
 *
 * Without --db: the hub (SQLite files, two RSAs as child processes), as `umbra hub` runs it.
 * With --db: issuer and SSA in this process and one RSA as N instances (child processes of
 * rsa-main.ts) on one PostgreSQL server; the script creates its databases there (umbra_lt_<pid>_*)
 * and drops them at the end. `--instances 1,3` runs the configurations one after the other in
 * this script run (`--rounds R` repeats the list, interleaved), each with its own echo baseline,
 * and prints them side by side with PostgreSQL transactions, rows and WAL bytes per message
 * (pg_stat_database and pg_current_wal_lsn deltas over the run). Receivers connect to instance
 * i mod N and the SSA delivers to instance i+1 mod N, so with N > 1 every push crosses instances.
 *
 * Two processes (three with the RSAs): this one runs the services (issuer, SSA and directory
 * in-process, the two RSAs as child processes, exactly as `umbra hub --rsa-mode child` would), and
 * a forked *generator* process holds every client: the senders and the 1000 WebSocket receivers.
 * The generator never shares an event loop with a service, so it neither starves the services nor
 * is starved by them.
 *
 * 1. Ceiling: a bare Fastify echo server runs in this process (where the SSA will run) and the
 *    generator drives it with the same pool, the same fetch client, the same concurrency and the
 *    same request body shape as the SSA submits.
 * 2. Setup (not timed): the generator creates an inbox and a seed per client, pre-fetches the SSA
 *    tokens and re-randomizes one address per message (client CPU, not service work).
 * 3. Run: every client sends M messages to the next client through the SSA; receivers listen on
 *    the RSA WebSocket, ack in batches, reconnect after a drop and dedupe by id. Unless --no-kill,
 *    RSA #1 is SIGKILLed when 1/3 of the submissions have been sent and restarted 1 s later.
 *
 * Prints msgs/s and p50/p99 latencies beside the echo ceiling, and how many messages were lost
 * (target 0). The SSA tokens for every configuration are minted once, before the first. `--profile DIR` writes V8 CPU profiles of every process there (services.cpuprofile,
 * generator.cpuprofile, rsa-<pid>.cpuprofile for the RSAs that were not killed).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Fastify from 'fastify';
import postgres from 'postgres';
import { addressKeysOf, currentAddressKey, IssuerClient, RsaClient, SsaClient, tokenInfoOf, TokenWallet, type InboxClient, type InboxConnection } from '../packages/client/src/http.ts';
import { nodeServiceClientOptions } from '../packages/client/src/node.ts';
import { b64u, deriveAddress, readyUrl, rerandomizeAddress, startHub } from '../packages/services/src/index.ts';
import { startIssuer } from '../packages/services/src/issuer.ts';
import { startSsa, type SsaService } from '../packages/services/src/ssa.ts';
import { childCommand } from '../packages/services/src/child-entry.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
function strArg(name: string): string | null {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? null) : null;
}
const N = arg('clients', 1000);
const M = arg('messages', 100);
const CONC = arg('concurrency', 100);
const SIZE = arg('size', 512);
const KILL = !process.argv.includes('--no-kill');
const TOTAL = N * M;
const ECHO_COUNT = arg('echo-count', Math.min(TOTAL, 20_000));
const IS_GENERATOR = process.argv.includes('--generator');
const PROFILE_DIR = strArg('profile');
const DB = strArg('db');
const INSTANCES = (strArg('instances') ?? '1').split(',').map(Number);
const ROUNDS = arg('rounds', 1);
if (INSTANCES.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--instances is a comma-separated list of positive integers');
if (DB && !/^postgres(ql)?:\/\//.test(DB)) throw new Error('--db must be a postgres:// URL');
/** One entry per measured configuration: the SQLite hub, or N RSA instances on PostgreSQL. */
const CONFIGS: number[] = DB ? Array.from({ length: ROUNDS }, () => INSTANCES).flat() : [0];

/** Starts a CPU profile of this process; the returned function writes it to PROFILE_DIR/name. */
async function profile(name: string): Promise<() => Promise<void>> {
  if (!PROFILE_DIR) return async () => {};
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 1000 });
  await session.post('Profiler.start');
  return async () => {
    const { profile: p } = await session.post('Profiler.stop');
    writeFileSync(join(PROFILE_DIR, name), JSON.stringify(p));
  };
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const fmt = (x: number) => x.toFixed(1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pool<T>(items: T[], conc: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(conc, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

// ---- messages between the two processes -------------------------------------------------------
/**
 * `services`: per RSA service, the URLs of its instances (the hub: two services of one instance;
 * PostgreSQL mode: one service of N instances).
 */
type ToGen =
  | { t: 'echo'; url: string; count: number }
  | { t: 'mint'; issuer: string; ssa: string; count: number }
  | { t: 'setup'; services: string[][]; run: number }
  | { t: 'run'; run: number }
  | { t: 'reset' }
  | { t: 'stop' };
interface RunResult {
  submitSecs: number;
  e2eSecs: number;
  received: number;
  duplicates: number;
  refused: number;
  submit: { p50: number; p99: number };
  e2e: { p50: number; p99: number };
  /** Messages slower than 1 s end to end, and how many of them went to the RSA service killed at 1/3. */
  over1s: number;
  over1sKilled: number;
  slowBySend: number[];
  /** Seconds into the run when the kill was asked for (-1: no kill). */
  killAtS: number;
  /** CPU seconds per process over the run (/proc), for the services side filled in by main(). */
  cpu?: Record<string, number>;
}
type FromGen =
  | { t: 'echo'; rate: number; p50: number; p99: number }
  | { t: 'mint'; secs: number }
  | { t: 'setup'; secs: number }
  | { t: 'kill'; at: number }
  /** Every receiver connected again after the kill, `secs` after it was asked for. */
  | { t: 'reconnected'; secs: number; timeline: number[] }
  | { t: 'progress'; submitted: number; received: number; connected: number }
  | { t: 'run'; result: RunResult }
  | { t: 'reset' }
  | { t: 'stopped' };

// =================================================================================================
// The generator process: every client lives here.
// =================================================================================================
async function generator(): Promise<void> {
  const send = (m: FromGen) => process.send!(m);

  async function echo(url: string, count: number): Promise<void> {
    const lat: number[] = [];
    const addr = new Uint8Array(randomBytes(68));
    const payload = new Uint8Array(randomBytes(SIZE));
    const t0 = performance.now();
    await pool(Array.from({ length: count }, (_, i) => i), CONC, async () => {
      const s = performance.now();
      // The same body shape SsaClient.submit sends, built the same way per request.
      const r = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ rsa: url, addr: b64u(addr), payload: b64u(payload), ttl_s: 3600, idem: b64u(new Uint8Array(randomBytes(16))) }),
      });
      await r.arrayBuffer();
      lat.push(performance.now() - s);
    });
    const secs = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    send({ t: 'echo', rate: count / secs, p50: pct(lat, 50), p99: pct(lat, 99) });
  }

  interface Client {
    inbox: InboxClient;
    /** Where the SSA delivers this client's messages (another instance than the receiver's when there are several). */
    deliverUrl: string;
    /** Index of the RSA service holding its inbox (0 is the one whose instance #1 is killed). */
    service: number;
    addr: Uint8Array;
    key: { kid: number; X: Uint8Array };
  }
  interface Job {
    id: number;
    to: number;
    token: Uint8Array;
    addr: Uint8Array;
    payload: Uint8Array;
  }
  let issuer: IssuerClient | null = null;
  let ssa: SsaClient | null = null;
  /** SSA tokens for every configuration, minted once. */
  const ssaTokens: Uint8Array[] = [];
  let clients: Client[] = [];
  let jobs: Job[] = [];

  async function mint(m: { issuer: string; ssa: string; count: number }): Promise<void> {
    const t = performance.now();
    issuer = await IssuerClient.register(m.issuer);
    ssa = new SsaClient(m.ssa);
    const ssaInfo = tokenInfoOf(await ssa.descriptor());
    // A few batches in flight at once (the issuer's blind signing is the slow part).
    const batches = Math.ceil(m.count / 100);
    await pool(Array.from({ length: batches }, (_, i) => i), 4, async (b) => {
      ssaTokens.push(...(await issuer!.mint(ssaInfo, Math.min(100, m.count - b * 100))));
    });
    send({ t: 'mint', secs: (performance.now() - t) / 1000 });
  }

  async function setup(m: { services: string[][] }): Promise<void> {
    const t = performance.now();
    clients = [];
    jobs = [];
    const services = m.services.map((urls) => urls.map((u) => new RsaClient(u, nodeServiceClientOptions)));
    const descs = await Promise.all(services.map((s) => s[0]!.descriptor()));
    const wallets = descs.map((d) => new TokenWallet(issuer!, tokenInfoOf(d), 100));
    const S = services.length;
    for (let i = 0; i < N; i++) {
      const s = i % S;
      const inst = services[s]!;
      const k = Math.floor(i / S);
      const inbox = await inst[k % inst.length]!.createInbox(await wallets[s]!.takeMany(5));
      const [seed] = await inbox.requestSeeds(await wallets[s]!.take(), 1);
      const key = currentAddressKey(addressKeysOf(descs[s]!), 'ephemeral');
      clients.push({ inbox, deliverUrl: inst[(k + 1) % inst.length]!.url, service: s, addr: deriveAddress(seed!.M, key), key });
    }
    for (let mm = 0; mm < M; mm++)
      for (let i = 0; i < N; i++) {
        const to = (i + 1) % N;
        const c = clients[to]!;
        const rr = rerandomizeAddress(c.addr, c.key);
        if (rr.kind !== 'ok') throw new Error(rr.reason);
        const payload = new Uint8Array(randomBytes(SIZE));
        const id = jobs.length;
        new DataView(payload.buffer).setUint32(0, id);
        const token = ssaTokens.pop();
        if (!token) throw new Error('out of SSA tokens');
        jobs.push({ id, to, token, addr: rr.address, payload });
      }
    resetRun();
    send({ t: 'setup', secs: (performance.now() - t) / 1000 });
  }

  // ---- receivers ----------------------------------------------------------------------------
  let sentAt = new Float64Array(0);
  let received = new Uint8Array(0);
  let receivedCount = 0;
  let duplicates = 0;
  let e2e: number[] = [];
  let over1s = 0;
  let over1sKilled = 0;
  /** Messages slower than 1 s by when they were sent, in 5 s buckets from the start of the run. */
  let slowBySend: number[] = [];
  let runStart = 0;
  let stopping = false;
  let connected = 0;
  let listeners: Promise<void>[] = [];
  const connections = new Set<InboxConnection>();
  function resetRun(): void {
    sentAt = new Float64Array(TOTAL);
    received = new Uint8Array(TOTAL);
    receivedCount = 0;
    duplicates = 0;
    e2e = [];
    over1s = 0;
    over1sKilled = 0;
    slowBySend = [];
    stopping = false;
    connected = 0;
    listeners = [];
  }
  async function listen(c: Client): Promise<void> {
    while (!stopping) {
      let pending: Uint8Array[] = [];
      let flush: NodeJS.Timeout | null = null;
      try {
        // Acks go out in batches, 50 ms after the first unacked message (a timer only while
        // something is pending: 1000 idle 50 ms intervals would cost the generator ~10% of a core).
        const conn = await c.inbox.connect(async (msg) => {
          const pt = await c.inbox.open(msg);
          if (!pt) return;
          const id = new DataView(pt.buffer, pt.byteOffset).getUint32(0);
          if (received[id]) duplicates++;
          else {
            received[id] = 1;
            receivedCount++;
            const ms = performance.now() - sentAt[id]!;
            e2e.push(ms);
            if (ms > 1000) {
              over1s++;
              if (c.service === 0) over1sKilled++;
              const bucket = Math.floor((sentAt[id]! - runStart) / 5000);
              slowBySend[bucket] = (slowBySend[bucket] ?? 0) + 1;
            }
          }
          pending.push(msg.mid);
          flush ??= setTimeout(() => {
            flush = null;
            conn.ack(pending.splice(0, 1000));
          }, 50);
        });
        connections.add(conn);
        connected++;
        await conn.closed;
        connections.delete(conn);
        connected--;
        if (flush) clearTimeout(flush);
        flush = null;
      } catch {
        /* the RSA is down: retry */
      }
      pending = [];
      if (!stopping) await sleep(200);
    }
  }

  async function run(runNo: number): Promise<void> {
    for (const c of clients) listeners.push(listen(c));
    await sleep(1000);
    const stopProfile = await profile(`generator-${runNo}.cpuprofile`);
    const submitLat: number[] = [];
    let refused = 0;
    const t = performance.now();
    runStart = t;
    let killSentAtS = -1;
    let seenDown = false;
    const progress = setInterval(() => send({ t: 'progress', submitted: submitLat.length, received: receivedCount, connected }), 5000);
    await pool(jobs, CONC, async (job, i) => {
      if (KILL && i === Math.floor(TOTAL / 3)) {
        killSentAtS = (performance.now() - t) / 1000;
        send({ t: 'kill', at: i });
        const killAt = performance.now();
        const timeline: number[] = [];
        const watch = setInterval(() => {
          const ms = performance.now() - killAt;
          if (ms >= (timeline.length + 1) * 500) timeline.push(connected);
          if (connected < N) seenDown = true;
          if (seenDown && connected === N) {
            clearInterval(watch);
            send({ t: 'reconnected', secs: ms / 1000, timeline });
          }
        }, 20);
      }
      const s = performance.now();
      sentAt[job.id] = s;
      const r = await ssa!.submit({ rsa: clients[job.to]!.deliverUrl, addr: job.addr, payload: job.payload, ttlS: 3600 }, job.token);
      submitLat.push(performance.now() - s);
      if (!r.ok) refused++;
    });
    const submitSecs = (performance.now() - t) / 1000;
    const deadline = Date.now() + 180_000;
    while (receivedCount < TOTAL && Date.now() < deadline) await sleep(20);
    const e2eSecs = (performance.now() - t) / 1000;
    clearInterval(progress);
    await stopProfile();
    submitLat.sort((a, b) => a - b);
    e2e.sort((a, b) => a - b);
    send({
      t: 'run',
      result: {
        submitSecs,
        e2eSecs,
        received: receivedCount,
        duplicates,
        refused,
        submit: { p50: pct(submitLat, 50), p99: pct(submitLat, 99) },
        e2e: { p50: pct(e2e, 50), p99: pct(e2e, 99) },
        over1s,
        over1sKilled,
        slowBySend: Array.from(slowBySend, (n) => n ?? 0),
        killAtS: killSentAtS,
      },
    });
  }

  /** Closes every receiver of the finished run. */
  async function reset(): Promise<void> {
    stopping = true;
    for (const c of connections) c.close();
    await Promise.race([Promise.all(listeners), sleep(5000)]);
  }

  process.on('message', (m: ToGen) => {
    const fail = (e: unknown) => {
      console.error('[generator]', e);
      process.exit(2);
    };
    if (m.t === 'echo') echo(m.url, m.count).catch(fail);
    else if (m.t === 'mint') mint(m).catch(fail);
    else if (m.t === 'setup') setup(m).catch(fail);
    else if (m.t === 'run') run(m.run).catch(fail);
    else if (m.t === 'reset') reset().then(() => send({ t: 'reset' }), fail);
    else if (m.t === 'stop') {
      void reset().then(() => {
        send({ t: 'stopped' });
        process.exit(0);
      });
    }
  });
}

// =================================================================================================
// The service process.
// =================================================================================================

interface Killable {
  url: string;
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

/** One RSA instance as a child process (rsa-main.ts), restartable on the same port. */
async function spawnInstance(config: Record<string, unknown>): Promise<Killable> {
  const start = async (cfg: Record<string, unknown>) => {
    // Bundled like the hub's RSAs (child-entry.ts): a restart is not a tsx compile.
    const { args } = await childCommand('rsa-main');
    const child = spawn(process.execPath, [...args, JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(child);
    child.once('exit', () => children.delete(child));
    const url = await readyUrl(child, 'RSA instance');
    return { child, url };
  };
  const first = await start(config);
  let child = first.child;
  const url = first.url;
  const fixed = { ...config, port: Number(new URL(url).port) };
  let alive = true;
  const end = async (signal: NodeJS.Signals) => {
    if (!alive) return;
    alive = false;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(force);
  };
  return {
    url,
    kill: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
    async restart() {
      await end('SIGKILL');
      ({ child } = await start(fixed));
      alive = true;
    },
  };
}

/** CPU seconds (user + system) of this process and its children, by pid, from /proc (Linux; empty elsewhere). */
function processCpu(): Map<number, { name: string; secs: number }> {
  const out = new Map<number, { name: string; secs: number }>();
  const tick = 100; // USER_HZ
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const d of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(d);
    const ppid = Number(f[1]);
    if (pid !== process.pid && ppid !== process.pid) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
    } catch {
      /* gone */
    }
    const name = pid === process.pid ? 'services' : cmd.includes('--generator') ? 'generator' : cmd.includes('rsa-main') ? 'rsa' : 'child';
    out.set(pid, { name, secs: (Number(f[11]) + Number(f[12])) / tick });
  }
  return out;
}

interface PgCounters {
  xacts: Record<string, number>;
  rows: number;
  lsn: string;
}

interface ConfigResult {
  label: string;
  echo: { rate: number; p50: number; p99: number };
  run: RunResult;
  /** PostgreSQL deltas over the run (PostgreSQL mode). */
  pg?: { xacts: Record<string, number>; rows: number; walBytes: number; sizes: Record<string, number> };
}

async function main(): Promise<void> {
  const gen: ChildProcess = fork(fileURLToPath(import.meta.url), [...process.argv.slice(2), '--generator'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiters = new Map<string, (m: FromGen) => void>();
  let onKill: ((at: number) => void) | null = null;
  let onProgress: ((m: { submitted: number; received: number; connected: number }) => void) | null = null;
  gen.on('message', (m: FromGen) => {
    if (m.t === 'kill') return onKill?.(m.at);
    if (m.t === 'reconnected')
      return console.log(`  every receiver connected again ${fmt(m.secs)} s after the kill (connected every 0.5 s: ${m.timeline.join(' ')})`);
    if (m.t === 'progress') return onProgress?.(m);
    const w = waiters.get(m.t);
    waiters.delete(m.t);
    w?.(m);
  });
  gen.on('exit', (code) => {
    if (code !== 0) {
      console.error(`generator exited with ${code}`);
      process.exit(2);
    }
  });
  const ask = <T extends FromGen['t']>(msg: ToGen, reply: T): Promise<Extract<FromGen, { t: T }>> =>
    new Promise((resolve) => {
      waiters.set(reply, resolve as (m: FromGen) => void);
      gen.send(msg);
    });

  /** A bare Fastify echo server in this process (where the SSA runs), driven by the generator. */
  async function echoCeiling(): Promise<{ rate: number; p50: number; p99: number }> {
    const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
    app.post('/echo', async (req, reply) => reply.code(202).send(req.body));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const echoUrl = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/echo`;
    console.log(`echo baseline: ${ECHO_COUNT} requests, concurrency ${CONC} (generator in its own process) ...`);
    const cpuBefore = processCpu();
    const echo = await ask({ t: 'echo', url: echoUrl, count: ECHO_COUNT }, 'echo');
    const cpuAfter = processCpu();
    await app.close();
    // The CPU one echo request costs (generator + this process), to set beside the run's CPU per message.
    let cpuSecs = 0;
    for (const [pid, { secs }] of cpuAfter) cpuSecs += secs - (cpuBefore.get(pid)?.secs ?? secs);
    console.log(`  echo: ${fmt(echo.rate)} req/s, p50 ${fmt(echo.p50)} ms, p99 ${fmt(echo.p99)} ms, CPU ${((cpuSecs * 1000) / ECHO_COUNT).toFixed(2)} ms/req`);
    return echo;
  }

  /** The machine is shared and its load drifts: the ceiling is measured before and after each run and averaged. */
  const meanEcho = (a: { rate: number; p50: number; p99: number }, b: { rate: number; p50: number; p99: number }) => {
    console.log(`  echo before ${fmt(a.rate)}, after ${fmt(b.rate)} req/s: the ratios use the mean`);
    return { rate: (a.rate + b.rate) / 2, p50: (a.p50 + b.p50) / 2, p99: (a.p99 + b.p99) / 2 };
  };

  /** The timed run against `services`, `kill` being the instance SIGKILLed at 1/3. */
  async function timedRun(runNo: number, ssa: SsaService, kill: Killable): Promise<RunResult> {
    console.log(`run: ${N} clients × ${M} messages = ${TOTAL}, concurrency ${CONC}${KILL ? ', RSA instance #1 killed at 1/3 and restarted 1 s later' : ''}`);
    let killed: Promise<void> | null = null;
    onKill = (at) => {
      killed = (async () => {
        await kill.kill();
        console.log(`  RSA #1 killed at message ${at}`);
        await sleep(1000);
        const restartAt = performance.now();
        await kill.restart();
        console.log(`  RSA #1 restarted (its process took ${fmt((performance.now() - restartAt) / 1000)} s to listen)`);
      })();
    };
    const t0 = performance.now();
    const ssaDb = (ssa.store as unknown as { db: { all(sql: string): Promise<Record<string, unknown>[]> } }).db;
    onProgress = (m) =>
      void ssaDb.all('SELECT state, COUNT(*) AS n FROM queue GROUP BY state').then((rows) => {
        const q = Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]));
        console.log(`  ${fmt((performance.now() - t0) / 1000)} s: submitted ${m.submitted}, received ${m.received}, receivers connected ${m.connected}; SSA queue ${JSON.stringify(q)}`);
      });
    const stopProfile = await profile(`services-${runNo}.cpuprofile`);
    // Event-loop stalls in the services' process (the SSA's SQLite commits and checkpoints run on it).
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const cpuBefore = processCpu();
    const { result } = await ask({ t: 'run', run: runNo }, 'run');
    const cpuAfter = processCpu();
    lag.disable();
    console.log(`  services' event-loop delay: p50 ${fmt(lag.percentile(50) / 1e6)} ms, p99 ${fmt(lag.percentile(99) / 1e6)} ms, max ${fmt(lag.max / 1e6)} ms`);
    await stopProfile();
    if (killed) await killed;
    // Processes alive at both ends (the killed RSA's time is lost with it).
    result.cpu = {};
    for (const [pid, { name, secs }] of cpuAfter) {
      const b = cpuBefore.get(pid);
      if (b) result.cpu[`${name}#${pid}`] = secs - b.secs;
    }
    return result;
  }

  const results: ConfigResult[] = [];
  if (!DB) {
    // ---- the hub (SQLite) -------------------------------------------------------------------
    const echo = await echoCeiling();
    const dir = mkdtempSync(join(tmpdir(), 'umbra-load-'));
    if (PROFILE_DIR) process.env.UMBRA_CPU_PROFILE = PROFILE_DIR; // the RSA children profile themselves
    const hub = await startHub({
      dataDir: dir,
      rsaMode: 'child',
      quota: { ssa: TOTAL + 1000, rsa: N * 6 + 1000 },
      rsaLimits: { perSeedPerMinute: 1_000_000, perSeedPerDay: 1_000_000, inboxMaxMessages: 1_000_000 },
      ssaRetry: { baseMs: 200, maxMs: 2000 },
    });
    console.log(`hub: ssa ${hub.ssa}, rsas ${hub.rsas.join(' ')} (data ${dir})`);
    console.log(`setup: ${N} inboxes, ${TOTAL} tokens and addresses ...`);
    const mint = await ask({ t: 'mint', issuer: hub.issuer, ssa: hub.ssa, count: TOTAL }, 'mint');
    const setup = await ask({ t: 'setup', services: hub.rsas.map((u) => [u]), run: 0 }, 'setup');
    console.log(`  setup took ${fmt(mint.secs + setup.secs)} s`);
    const run = await timedRun(0, hub.services.ssa, hub.rsaHandles[0]);
    await ask({ t: 'reset' }, 'reset');
    await hub.close();
    results.push({ label: 'hub (SQLite)', echo: meanEcho(echo, await echoCeiling()), run });
    rmSync(dir, { recursive: true, force: true });
  } else {
    // ---- issuer, SSA and N RSA instances on one PostgreSQL ----------------------------------
    const admin = postgres(DB, { max: 1, onnotice: () => {} });
    const tag = `umbra_lt_${process.pid}`;
    const created: string[] = [];
    const dbUrl = (name: string) => {
      const u = new URL(DB);
      u.pathname = `/${name}`;
      return u.toString();
    };
    const createDb = async (name: string) => {
      await admin.unsafe(`CREATE DATABASE ${tag}_${name}`);
      created.push(`${tag}_${name}`);
      return dbUrl(`${tag}_${name}`);
    };
    const counters = async (dbs: string[]): Promise<PgCounters> => {
      const rows = await admin.unsafe(
        `SELECT datname, xact_commit + xact_rollback AS x, tup_inserted + tup_updated + tup_deleted AS r FROM pg_stat_database WHERE datname = ANY($1)`,
        [dbs],
      );
      const lsn = String((await admin.unsafe('SELECT pg_current_wal_lsn()::text AS l'))[0]!.l);
      return { xacts: Object.fromEntries(rows.map((r) => [String(r.datname), Number(r.x)])), rows: rows.reduce((a, r) => a + Number(r.r), 0), lsn };
    };
    try {
      const issuer = await startIssuer({ db: await createDb('issuer'), host: '127.0.0.1', port: 0, quota: { ssa: TOTAL * CONFIGS.length + 1000, rsa: (N * 6 + 1000) * CONFIGS.length } });
      const ssa = await startSsa({
        db: await createDb('ssa'),
        sealKey: new Uint8Array(randomBytes(32)),
        host: '127.0.0.1',
        port: 0,
        issuerName: issuer.issuerName,
        tokenKeys: [issuer.tokenKeys.ssa],
        retry: { baseMs: 200, maxMs: 2000 },
        allowLoopback: true,
      });
      console.log(`PostgreSQL ${new URL(DB).host}: issuer ${issuer.url}, ssa ${ssa.url}; configurations: ${CONFIGS.map((n) => `${n} RSA instance${n > 1 ? 's' : ''}`).join(', ')}`);
      console.log(`minting ${TOTAL * CONFIGS.length} SSA tokens for all configurations ...`);
      const mint = await ask({ t: 'mint', issuer: issuer.url, ssa: ssa.url, count: TOTAL * CONFIGS.length }, 'mint');
      console.log(`  minting took ${fmt(mint.secs)} s`);
      for (const [runNo, n] of CONFIGS.entries()) {
        console.log(`\n=== configuration ${runNo + 1}/${CONFIGS.length}: ${n} RSA instance${n > 1 ? 's' : ''} on PostgreSQL`);
        const echo = await echoCeiling();
        const rsaDbName = `rsa${runNo}`;
        const config = {
          db: await createDb(rsaDbName),
          host: '127.0.0.1',
          port: 0,
          issuerName: issuer.issuerName,
          tokenKeys: [b64u(issuer.tokenKeys.rsa)],
          trustedSsaKeys: [b64u(ssa.serviceKey)],
          // One origin for all instances: a token bought for the RSA is good at each of them.
          originInfo: `rsa${runNo}.loadtest.invalid`,
          limits: { perSeedPerMinute: 1_000_000, perSeedPerDay: 1_000_000, inboxMaxMessages: 1_000_000 },
        };
        if (PROFILE_DIR) process.env.UMBRA_CPU_PROFILE = PROFILE_DIR;
        // The first instance creates the schema and keys; the others join it.
        const instances = [await spawnInstance(config)];
        instances.push(...(await Promise.all(Array.from({ length: n - 1 }, () => spawnInstance(config)))));
        console.log(`  RSA instances: ${instances.map((i) => i.url).join(' ')}`);
        const setup = await ask({ t: 'setup', services: [instances.map((i) => i.url)], run: runNo }, 'setup');
        console.log(`  setup (inboxes, addresses) took ${fmt(setup.secs)} s`);
        const dbs = [`${tag}_ssa`, `${tag}_${rsaDbName}`];
        // pg_stat_database lags: an idle backend reports its counters within 10 s (PGSTAT_IDLE_INTERVAL).
        await sleep(11_000);
        const before = await counters(dbs);
        const run = await timedRun(runNo, ssa, instances[0]!);
        await ask({ t: 'reset' }, 'reset');
        for (const i of instances) await i.stop(); // their backends exit and report their counters
        await sleep(11_000);
        const after = await counters(dbs);
        const walBytes = Number((await admin.unsafe('SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn) AS d', [after.lsn, before.lsn]))[0]!.d);
        const sizes = Object.fromEntries(
          (await admin.unsafe('SELECT datname, pg_database_size(datname) AS s FROM pg_database WHERE datname = ANY($1)', [dbs])).map((r) => [String(r.datname).replace(`${tag}_`, ''), Number(r.s)]),
        );
        const xacts = Object.fromEntries(dbs.map((d) => [d.replace(`${tag}_`, '').replace(/\d+$/, ''), (after.xacts[d] ?? 0) - (before.xacts[d] ?? 0)]));
        results.push({ label: `${n} RSA instance${n > 1 ? 's' : ''}`, echo: meanEcho(echo, await echoCeiling()), run, pg: { xacts, rows: after.rows - before.rows, walBytes, sizes } });
      }
      await ssa.close();
      await issuer.close();
    } finally {
      for (const d of created) await admin.unsafe(`DROP DATABASE IF EXISTS ${d} WITH (FORCE)`).catch(() => {});
      await admin.end({ timeout: 5 });
    }
  }

  // ---- results, side by side -----------------------------------------------------------------
  let failed = false;
  console.log('\nresults');
  for (const { label, echo, run: r, pg } of results) {
    const ssaRate = TOTAL / r.submitSecs;
    const e2eRate = r.received / r.e2eSecs;
    const lost = TOTAL - r.received;
    if (lost !== 0 || r.refused !== 0) failed = true;
    console.log(`  ${label}`);
    console.log(`    echo ceiling (mean)  ${fmt(echo.rate)} req/s   p50 ${fmt(echo.p50)} ms   p99 ${fmt(echo.p99)} ms`);
    console.log(`    SSA submit (202)     ${fmt(ssaRate)} msg/s   p50 ${fmt(r.submit.p50)} ms   p99 ${fmt(r.submit.p99)} ms   (${(ssaRate / echo.rate).toFixed(2)}× echo)`);
    console.log(`    end to end (push)    ${fmt(e2eRate)} msg/s   p50 ${fmt(r.e2e.p50)} ms   p99 ${fmt(r.e2e.p99)} ms   (${(e2eRate / echo.rate).toFixed(2)}× echo)`);
    console.log(`    refused submits      ${r.refused}`);
    console.log(`    lost                 ${lost} of ${TOTAL}${KILL ? ' (with an RSA instance SIGKILLed and restarted)' : ''}`);
    console.log(`    duplicates pushed    ${r.duplicates} (redelivered before an ack; deduped by the receiver)`);
    console.log(`    slower than 1 s      ${r.over1s} (${r.over1sKilled} of them to the RSA service whose instance was killed)`);
    console.log(`      by send time       ${r.slowBySend.map((n, k) => `${k * 5}s:${n}`).filter((x) => !x.endsWith(':0')).join(' ')}${r.killAtS >= 0 ? ` (kill at ${fmt(r.killAtS)} s)` : ''}`);
    if (r.cpu) {
      const cpuTotal = Object.values(r.cpu).reduce((a, v) => a + v, 0);
      console.log(`    CPU ms/msg           ${((cpuTotal * 1000) / Math.max(1, r.received)).toFixed(2)} (${Object.entries(r.cpu).map(([k, v]) => `${k} ${((v * 1000) / Math.max(1, r.received)).toFixed(2)}`).join(', ')}; the killed instance not counted)`);
    }
    if (pg) {
      const per = (x: number) => (x / Math.max(1, r.received)).toFixed(2);
      const xs = Object.entries(pg.xacts);
      const total = xs.reduce((a, [, v]) => a + v, 0);
      console.log(`    PostgreSQL           ${per(total)} transactions/msg (${xs.map(([k, v]) => `${k} ${per(v)}`).join(', ')}), ${per(pg.rows)} rows written/msg, ${(pg.walBytes / Math.max(1, r.received)).toFixed(0)} WAL bytes/msg`);
      console.log(`    database sizes       ${Object.entries(pg.sizes).map(([k, v]) => `${k} ${(v / 1e6).toFixed(1)} MB`).join(', ')}`);
    }
  }
  if (results.length > 1) {
    console.log('\n  side by side (end to end)');
    console.log('    ' + results.map((x) => x.label.padEnd(24)).join(''));
    const row = (name: string, f: (x: ConfigResult) => string) => console.log(`    ${results.map((x) => f(x).padEnd(24)).join('')}  ${name}`);
    row('msgs/s', (x) => fmt(x.run.received / x.run.e2eSecs));
    row('× echo', (x) => ((x.run.received / x.run.e2eSecs) / x.echo.rate).toFixed(2));
    row('p50 ms', (x) => fmt(x.run.e2e.p50));
    row('p99 ms', (x) => fmt(x.run.e2e.p99));
    row('lost', (x) => String(TOTAL - x.run.received));
    row('PG transactions/msg', (x) => (x.pg ? (Object.values(x.pg.xacts).reduce((a, v) => a + v, 0) / Math.max(1, x.run.received)).toFixed(2) : '-'));
    row('WAL bytes/msg', (x) => (x.pg ? (x.pg.walBytes / Math.max(1, x.run.received)).toFixed(0) : '-'));
  }

  await ask({ t: 'stop' }, 'stopped');
  process.exit(failed ? 1 : 0);
}

if (IS_GENERATOR) await generator();
else await main();
