/**
 * Load test (npm run loadtest; not part of npm test).
 *
 *   npm run loadtest -- [--clients 1000] [--messages 100] [--concurrency 100] [--size 512] [--no-kill]
 *                       [--rate R | --rate 0.5x] [--max-inflight <concurrency>]
 *                       [--echo-count 20000] [--receivers 2] [--lock /tmp/bench.lock] [--profile DIR]
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
 * Processes: this one runs the services (issuer, SSA and directory in-process, the RSAs as
 * child processes, exactly as `umbra hub --rsa-mode child` would). The clients live in forked
 * processes of their own, so that no client shares an event loop with a service, and the senders
 * do not share one with the receivers (one loop holding 100 senders and 1000 receivers ran
 * 100-300 ms behind, and the p99 measured it):
 * - the *sender* holds the SSA tokens and every submit (100 in flight);
 * - `--receivers K` *receiver* processes (default 2) hold the 1000 inboxes (each process clients
 *   of every RSA service), each on its RSA WebSocket. A message carries its id and its send time (wall clock,
 *   which the processes share) in its first 12 bytes.
 *
 * 1. Setup (not timed): the receivers create an inbox and a seed per client, the sender mints the
 *    SSA tokens and re-randomizes one address per message (client CPU, not service work).
 * 2. Ceiling: a bare Fastify echo server runs in this process (where the SSA runs) and the
 *    sender drives it with the same pool, the same fetch client, the same concurrency and the
 *    same request body shape as the SSA submits, before and after the run (the ratios use the mean).
 * 3. Run: every client sends M messages to the next client through the SSA; receivers listen on
 *    the RSA WebSocket, ack in batches, reconnect after a drop and dedupe by id. Unless --no-kill,
 *    RSA #1 is SIGKILLed when 1/3 of the submissions have been sent and restarted 1 s later.
 *
 * Closed loop by default: CONC submits in flight, the next starting as one finishes, so the run
 * goes as fast as the services can and its p99 is the backlog of a saturated system. `--rate R`
 * is an open loop instead: message i is submitted at start + i/R (`--rate 0.5x`: R is that
 * fraction of the echo measured just before the run), its latency counted from that scheduled
 * time, at most --max-inflight submits in flight (a due submit waits past the cap and counts as
 * late); the results say how many submits started late against the schedule.
 *
 * `--lock FILE` holds flock(1) on FILE over 2 and 3 only (the minting is minutes of client CPU)
 * and prints the load average when it is taken and released.
 *
 * Prints msgs/s and p50/p99 latencies beside the echo ceiling, and how many messages were lost
 * (target 0). The SSA tokens for every configuration are minted once, before the first. `--profile DIR` writes V8 CPU profiles of every process there (services-N, sender-N, receiverK-N,
 * rsa-<pid>.cpuprofile for the RSAs that were not killed).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Fastify from 'fastify';
import postgres from 'postgres';
import { addressKeysOf, currentAddressKey, IssuerClient, RsaClient, SsaClient, tokenInfoOf, TokenWallet, type InboxClient, type InboxConnection } from '../packages/client/src/http.ts';
import { nodeServiceClientOptions } from '../packages/client/src/node.ts';
import { b64u, deriveAddress, fromB64u, readyUrl, rerandomizeAddress, startHub } from '../packages/services/src/index.ts';
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
/**
 * `--rate R` (msgs/s) or `--rate 0.5x` (that fraction of the echo measured just before the run):
 * an open loop at a fixed offered rate instead of the closed loop of CONC in flight.
 */
const RATE_ARG = strArg('rate');
const RATE: { perSecond: number } | { ofEcho: number } | null = RATE_ARG === null ? null : /^[0-9.]+x$/.test(RATE_ARG) ? { ofEcho: Number(RATE_ARG.slice(0, -1)) } : { perSecond: Number(RATE_ARG) };
if (RATE && !(('perSecond' in RATE ? RATE.perSecond : RATE.ofEcho) > 0)) throw new Error('--rate is a positive number of msgs/s, or a fraction of the echo such as 0.5x');
/**
 * Open loop: most submits in flight at once (then the schedule slips and the submits count as
 * late). Defaults to --concurrency, the closed loop's and the echo's number: fetch opens a
 * connection per concurrent request, and with 2000 allowed a saturated run opened ~2000
 * connections to the SSA and its submits stalled in bursts of 5-25 s.
 */
const MAX_INFLIGHT = arg('max-inflight', CONC);
const SIZE = arg('size', 512);
const KILL = !process.argv.includes('--no-kill');
const TOTAL = N * M;
const ECHO_COUNT = arg('echo-count', Math.min(TOTAL, 20_000));
/** This process's part: the services (main, no --role), the sender, or receiver --part k of --receivers K. */
const ROLE = strArg('role') ?? 'services';
const RECEIVER_PROCS = arg('receivers', 2);
const PART = arg('part', 0);
const PARTS = RECEIVER_PROCS;
const PROFILE_DIR = strArg('profile');
const LOCK = strArg('lock');
const DB = strArg('db');
const INSTANCES = (strArg('instances') ?? '1').split(',').map(Number);
const ROUNDS = arg('rounds', 1);
if (INSTANCES.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--instances is a comma-separated list of positive integers');
if (!Number.isInteger(RECEIVER_PROCS) || RECEIVER_PROCS < 1) throw new Error('--receivers is a positive integer');
if (SIZE < 12) throw new Error('--size must be at least 12 (a message carries its id and send time)');
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

// ---- messages between the processes -----------------------------------------------------------
/**
 * `services`: per RSA service, the URLs of its instances (the hub: two services of one instance;
 * PostgreSQL mode: one service of N instances).
 */
type ToSender =
  | { t: 'echo'; url: string; count: number }
  | { t: 'mint'; issuer: string; ssa: string; count: number }
  | { t: 'jobs'; targets: Target[] }
  /** rate: null for the closed loop, else the open loop's submits per second. */
  | { t: 'run'; run: number; rate: number | null }
  | { t: 'stop' };
type ToReceiver =
  | { t: 'setup'; issuer: string; services: string[][] }
  | { t: 'listen'; run: number }
  | { t: 'watch-kill' }
  | { t: 'result'; runStartWall: number }
  | { t: 'reset' }
  | { t: 'stop' };
/** Where to send client i's messages: what the sender needs of a receiver's inbox. */
interface Target {
  i: number;
  deliverUrl: string;
  /** The address derived from the client's seed (re-randomized per message by the sender). */
  addr: string;
  kid: number;
  X: string;
}
interface SendResult {
  submitSecs: number;
  refused: number;
  submit: { p50: number; p99: number };
  /** Wall-clock ms (performance.timeOrigin + now) when the first submit went out. */
  runStartWall: number;
  /** Seconds into the run when the kill was asked for (-1: no kill). */
  killAtS: number;
  /**
   * Open loop only: the offered rate; submits started more than 10 / 100 ms after their scheduled
   * time, the latest one; how often the in-flight cap held a due submit back; most in flight.
   */
  open?: { rate: number; late10: number; late100: number; maxLateMs: number; capped: number; maxInFlight: number; cap: number };
}
interface ReceiveResult {
  /** End-to-end latencies of first receipts, ms. */
  e2e: number[];
  received: number;
  duplicates: number;
  over1s: number;
  over1sKilled: number;
  slowBySend: number[];
  /**
   * The messages slower than 1 s to the killed RSA service: [sent, received, when the WebSocket
   * they came on was ready (NaN: not yet, i.e. pushed during its handshake)], wall-clock ms.
   */
  slowKilled: [number, number, number][];
  /** Wall-clock ms of the last first receipt. */
  lastWall: number;
}
/**
 * The late (> 1 s) messages to the killed RSA service, their lateness split by phase: before the
 * restarted process listened (the outage), from then until the WebSocket they arrived on was
 * ready (the reconnect: a message pushed during the handshake counts as arriving at it), and after
 * that (the drain: queued at the SSA or the RSA behind the backlog). Seconds summed over the
 * messages, and how many had each phase as their largest.
 */
interface LateSplit {
  n: number;
  secs: { outage: number; reconnect: number; drain: number };
  mostly: { outage: number; reconnect: number; drain: number };
  /** The drain part of the messages mostly late in it: p50 / p90 seconds. */
  drainP50: number;
  drainP90: number;
}

function lateSplit(slow: [number, number, number][], listenWall: number): LateSplit {
  const r: LateSplit = { n: slow.length, secs: { outage: 0, reconnect: 0, drain: 0 }, mostly: { outage: 0, reconnect: 0, drain: 0 }, drainP50: NaN, drainP90: NaN };
  const drains: number[] = [];
  for (const [sent, recv, ready] of slow) {
    const readyAt = Number.isNaN(ready) ? recv : ready;
    const outage = Math.max(0, Math.min(listenWall, recv) - sent);
    const reconnect = readyAt >= listenWall ? Math.max(0, Math.min(readyAt, recv) - Math.max(sent, listenWall)) : 0;
    const drain = Math.max(0, recv - sent - outage - reconnect);
    r.secs.outage += outage / 1000;
    r.secs.reconnect += reconnect / 1000;
    r.secs.drain += drain / 1000;
    const most = outage >= reconnect && outage >= drain ? 'outage' : reconnect >= drain ? 'reconnect' : 'drain';
    r.mostly[most]++;
    if (most === 'drain') drains.push(drain / 1000);
  }
  drains.sort((a, b) => a - b);
  r.drainP50 = pct(drains, 50);
  r.drainP90 = pct(drains, 90);
  return r;
}

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
  /** Where the late messages to the killed RSA service spent their time (see lateSplit). */
  late?: LateSplit;
  /** CPU seconds per process over the run (/proc), for the services side filled in by main(). */
  cpu?: Record<string, number>;
  open?: SendResult['open'];
}
type FromSender =
  | { t: 'echo'; rate: number; p50: number; p99: number }
  | { t: 'mint'; secs: number }
  | { t: 'jobs'; secs: number }
  | { t: 'kill'; at: number }
  | { t: 'progress'; submitted: number }
  | { t: 'sent'; result: SendResult }
  | { t: 'stopped' };
type FromReceiver =
  | { t: 'setup'; secs: number; targets: Target[] }
  | { t: 'listen'; connected: number }
  /** Every receiver of this process connected again after the kill, `secs` after it was asked for. */
  | { t: 'reconnected'; secs: number; timeline: number[]; clients: number }
  | { t: 'progress'; received: number; connected: number }
  /** Every message addressed to this process's clients has arrived. */
  | { t: 'done' }
  | { t: 'result'; result: ReceiveResult }
  | { t: 'reset' }
  | { t: 'stopped' };

/**
 * Wall-clock milliseconds with sub-millisecond resolution, comparable between the sender and the
 * receivers (each process's timeOrigin comes from the same system clock; now() is monotonic).
 */
const wallNow = () => performance.timeOrigin + performance.now();
/** Where the sender writes a message's send time into its payload (after the 4-byte id). */
const SENT_AT_OFFSET = 4;

function onMessages<T>(handlers: (m: T) => Promise<void> | void): void {
  process.on('message', (m: T) => {
    Promise.resolve()
      .then(() => handlers(m))
      .catch((e: unknown) => {
        console.error(`[${ROLE}]`, e);
        process.exit(2);
      });
  });
}

// =================================================================================================
// The sender process: the echo, the SSA tokens and every submit.
// =================================================================================================
async function sender(): Promise<void> {
  const send = (m: FromSender) => process.send!(m);

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

  interface Job {
    id: number;
    to: number;
    token: Uint8Array;
    addr: Uint8Array;
    payload: Uint8Array;
  }
  let ssa: SsaClient | null = null;
  /** SSA tokens for every configuration, minted once. */
  const ssaTokens: Uint8Array[] = [];
  let targets: Target[] = [];
  let jobs: Job[] = [];

  async function mint(m: { issuer: string; ssa: string; count: number }): Promise<void> {
    const t = performance.now();
    const issuer = await IssuerClient.register(m.issuer);
    ssa = new SsaClient(m.ssa);
    const ssaInfo = tokenInfoOf(await ssa.descriptor());
    // A few batches in flight at once (the issuer's blind signing is the slow part).
    const batches = Math.ceil(m.count / 100);
    await pool(Array.from({ length: batches }, (_, i) => i), 4, async (b) => {
      ssaTokens.push(...(await issuer.mint(ssaInfo, Math.min(100, m.count - b * 100))));
    });
    send({ t: 'mint', secs: (performance.now() - t) / 1000 });
  }

  /** Tokens and re-randomized addresses for every message of the next run (client CPU, not timed). */
  function makeJobs(list: Target[]): void {
    const t = performance.now();
    targets = [...list].sort((a, b) => a.i - b.i);
    if (targets.length !== N || targets.some((x, k) => x.i !== k)) throw new Error('the receivers did not set up every client');
    const addrs = targets.map((x) => ({ addr: fromB64u(x.addr)!, key: { kid: x.kid, X: fromB64u(x.X)! } }));
    jobs = [];
    for (let mm = 0; mm < M; mm++)
      for (let i = 0; i < N; i++) {
        const to = (i + 1) % N;
        const rr = rerandomizeAddress(addrs[to]!.addr, addrs[to]!.key);
        if (rr.kind !== 'ok') throw new Error(rr.reason);
        const payload = new Uint8Array(randomBytes(SIZE));
        const id = jobs.length;
        new DataView(payload.buffer).setUint32(0, id);
        const token = ssaTokens.pop();
        if (!token) throw new Error('out of SSA tokens');
        jobs.push({ id, to, token, addr: rr.address, payload });
      }
    send({ t: 'jobs', secs: (performance.now() - t) / 1000 });
  }

  async function run(runNo: number, rate: number | null): Promise<void> {
    const stopProfile = await profile(`sender-${runNo}.cpuprofile`);
    const submitLat: number[] = [];
    let refused = 0;
    const t = performance.now();
    const runStartWall = wallNow();
    let killAtS = -1;
    const progress = setInterval(() => send({ t: 'progress', submitted: submitLat.length }), 1000);
    /** One submit; `sentAt` is the wall time the message counts from (open loop: its scheduled time). */
    const submitOne = async (job: Job, i: number, sentAt: number): Promise<void> => {
      if (KILL && i === Math.floor(TOTAL / 3)) {
        killAtS = (performance.now() - t) / 1000;
        send({ t: 'kill', at: i });
      }
      const s = performance.now();
      // The send time travels in the payload: the receivers live in other processes.
      new DataView(job.payload.buffer, job.payload.byteOffset).setFloat64(SENT_AT_OFFSET, sentAt);
      const r = await ssa!.submit({ rsa: targets[job.to]!.deliverUrl, addr: job.addr, payload: job.payload, ttlS: 3600 }, job.token);
      submitLat.push(performance.now() - s);
      if (!r.ok) refused++;
    };
    let open: SendResult['open'];
    if (rate === null) {
      // Closed loop: CONC submits in flight, each starting when one finishes.
      await pool(jobs, CONC, (job, i) => submitOne(job, i, wallNow()));
    } else {
      open = await openLoop(rate, submitOne);
    }
    const submitSecs = (performance.now() - t) / 1000;
    clearInterval(progress);
    await stopProfile();
    submitLat.sort((a, b) => a - b);
    jobs = [];
    send({ t: 'sent', result: { submitSecs, refused, submit: { p50: pct(submitLat, 50), p99: pct(submitLat, 99) }, runStartWall, killAtS, open } });
  }

  /**
   * Open loop: job i is due at start + i / rate, whatever happened to the ones before it. Its
   * latency counts from that scheduled time (a submit held back by the cap or by this process's
   * own lag is late, and its wait is in its latency: no coordinated omission). At most
   * MAX_INFLIGHT submits are in flight: a stalled SSA makes the schedule slip instead of growing
   * this process's memory without bound.
   */
  async function openLoop(rate: number, submitOne: (job: Job, i: number, sentAt: number) => Promise<void>): Promise<NonNullable<SendResult['open']>> {
    const startPerf = performance.now();
    const startWall = wallNow();
    const intervalMs = 1000 / rate;
    let next = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    let late10 = 0;
    let late100 = 0;
    let maxLateMs = 0;
    /** Submits that were due while the cap was full (each counted once). */
    let capped = 0;
    let cappedAt = -1;
    let wakeUp: (() => void) | null = null;
    const running = new Set<Promise<void>>();
    while (next < jobs.length) {
      const now = performance.now();
      // Start every job that is due, as far as the cap allows.
      while (next < jobs.length && startPerf + next * intervalMs <= now) {
        if (inFlight >= MAX_INFLIGHT) {
          if (cappedAt !== next) capped++;
          cappedAt = next;
          break;
        }
        const i = next++;
        const dueOffset = i * intervalMs;
        const lateMs = now - (startPerf + dueOffset);
        if (lateMs > 10) late10++;
        if (lateMs > 100) late100++;
        if (lateMs > maxLateMs) maxLateMs = lateMs;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const p: Promise<void> = submitOne(jobs[i]!, i, startWall + dueOffset).finally(() => {
          inFlight--;
          running.delete(p);
          const w = wakeUp;
          wakeUp = null;
          w?.();
        });
        running.add(p);
      }
      if (next >= jobs.length) break;
      const waitMs = startPerf + next * intervalMs - performance.now();
      // At the cap: wait for a submit to finish (or the next due time, whichever is later).
      await new Promise<void>((resolve) => {
        if (inFlight >= MAX_INFLIGHT) wakeUp = resolve;
        else setTimeout(resolve, Math.max(0, waitMs));
      });
    }
    await Promise.all(running);
    return { rate, late10, late100, maxLateMs, capped, maxInFlight, cap: MAX_INFLIGHT };
  }

  onMessages<ToSender>(async (m) => {
    if (m.t === 'echo') await echo(m.url, m.count);
    else if (m.t === 'mint') await mint(m);
    else if (m.t === 'jobs') makeJobs(m.targets);
    else if (m.t === 'run') await run(m.run, m.rate);
    else if (m.t === 'stop') {
      send({ t: 'stopped' });
      process.exit(0);
    }
  });
}

// =================================================================================================
// A receiver process: the inboxes of clients i ≡ PART (mod PARTS), each on its RSA WebSocket.
// =================================================================================================
async function receiver(): Promise<void> {
  const send = (m: FromReceiver) => process.send!(m);

  interface Client {
    i: number;
    inbox: InboxClient;
    /** Index of the RSA service holding its inbox (0 is the one whose instance #1 is killed). */
    service: number;
  }
  let issuer: IssuerClient | null = null;
  let clients: Client[] = [];

  async function setup(m: { issuer: string; services: string[][] }): Promise<void> {
    const t = performance.now();
    issuer ??= await IssuerClient.register(m.issuer);
    clients = [];
    const services = m.services.map((urls) => urls.map((u) => new RsaClient(u, nodeServiceClientOptions)));
    const descs = await Promise.all(services.map((s) => s[0]!.descriptor()));
    const wallets = descs.map((d) => new TokenWallet(issuer!, tokenInfoOf(d), 100));
    const S = services.length;
    const targets: Target[] = [];
    for (let i = 0; i < N; i++) {
      const s = i % S;
      const inst = services[s]!;
      const k = Math.floor(i / S);
      // Every receiver process holds clients of every RSA service (the killed one's included).
      if (k % PARTS !== PART) continue;
      const inbox = await inst[k % inst.length]!.createInbox(await wallets[s]!.takeMany(5));
      const [seed] = await inbox.requestSeeds(await wallets[s]!.take(), 1);
      const key = currentAddressKey(addressKeysOf(descs[s]!), 'ephemeral');
      clients.push({ i, inbox, service: s });
      targets.push({ i, deliverUrl: inst[(k + 1) % inst.length]!.url, addr: b64u(deriveAddress(seed!.M, key)), kid: key.kid, X: b64u(key.X) });
    }
    resetRun();
    send({ t: 'setup', secs: (performance.now() - t) / 1000, targets });
  }

  /** Messages addressed to this process's clients in one run (each client is sent M). */
  const expected = () => clients.length * M;
  let received = new Uint8Array(0);
  /** Send times of the messages slower than 1 s. */
  let slowSentWall: number[] = [];
  let slowKilled: [number, number, number][] = [];
  let receivedCount = 0;
  let duplicates = 0;
  let e2e: number[] = [];
  let over1s = 0;
  let over1sKilled = 0;
  let lastWall = 0;
  let stopping = false;
  let connected = 0;
  let listeners: Promise<void>[] = [];
  let progress: NodeJS.Timeout | null = null;
  let stopProfile: () => Promise<void> = async () => {};
  const connections = new Set<InboxConnection>();
  function resetRun(): void {
    received = new Uint8Array(TOTAL);
    slowSentWall = [];
    slowKilled = [];
    receivedCount = 0;
    duplicates = 0;
    e2e = [];
    over1s = 0;
    over1sKilled = 0;
    lastWall = 0;
    stopping = false;
    connected = 0;
    listeners = [];
  }

  async function listen(c: Client): Promise<void> {
    while (!stopping) {
      let pending: Uint8Array[] = [];
      let flush: NodeJS.Timeout | null = null;
      /** When this connection was ready (wall clock); NaN while its handshake is under way. */
      let readyWall = NaN;
      try {
        // Acks go out in batches, 50 ms after the first unacked message (a timer only while
        // something is pending: 1000 idle 50 ms intervals would cost ~10% of a core).
        const conn = await c.inbox.connect(async (msg) => {
          const pt = await c.inbox.open(msg);
          if (!pt) return;
          const view = new DataView(pt.buffer, pt.byteOffset);
          const id = view.getUint32(0);
          if (id >= TOTAL) return;
          if (received[id]) duplicates++;
          else {
            const now = wallNow();
            const sent = view.getFloat64(SENT_AT_OFFSET);
            received[id] = 1;
            receivedCount++;
            lastWall = now;
            const ms = now - sent;
            e2e.push(ms);
            if (ms > 1000) {
              over1s++;
              slowSentWall.push(sent);
              if (c.service === 0) {
                over1sKilled++;
                slowKilled.push([sent, now, readyWall]);
              }
            }
            if (receivedCount === expected()) send({ t: 'done' });
          }
          pending.push(msg.mid);
          flush ??= setTimeout(() => {
            flush = null;
            conn.ack(pending.splice(0, 1000));
          }, 50);
        });
        readyWall = wallNow();
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

  async function startListening(runNo: number): Promise<void> {
    for (const c of clients) listeners.push(listen(c));
    // Every receiver connected (or 10 s) before the first submit.
    const until = performance.now() + 10_000;
    while (connected < clients.length && performance.now() < until) await sleep(20);
    stopProfile = await profile(`receiver${PART}-${runNo}.cpuprofile`);
    progress = setInterval(() => send({ t: 'progress', received: receivedCount, connected }), 1000);
    send({ t: 'listen', connected });
  }

  /** The reconnect after the kill: how many of this process's receivers are connected, every 0.5 s, until all are back. */
  function watchKill(): void {
    const killAt = performance.now();
    const timeline: number[] = [];
    let seenDown = false;
    const watch = setInterval(() => {
      const ms = performance.now() - killAt;
      if (ms >= (timeline.length + 1) * 500) timeline.push(connected);
      if (connected < clients.length) seenDown = true;
      // Back, or (with no client of the killed instance here) nothing dropped within 5 s.
      if ((connected === clients.length && (seenDown || ms > 5000)) || stopping) {
        clearInterval(watch);
        send({ t: 'reconnected', secs: ms / 1000, timeline, clients: clients.length });
      }
    }, 20);
  }

  async function result(runStartWall: number): Promise<void> {
    if (progress) clearInterval(progress);
    progress = null;
    await stopProfile();
    stopProfile = async () => {};
    // Messages slower than 1 s by when they were sent, in 5 s buckets from the start of the run.
    const slowBySend: number[] = [];
    for (const s of slowSentWall) {
      const b = Math.max(0, Math.floor((s - runStartWall) / 5000));
      slowBySend[b] = (slowBySend[b] ?? 0) + 1;
    }
    send({ t: 'result', result: { e2e, received: receivedCount, duplicates, over1s, over1sKilled, slowBySend: Array.from(slowBySend, (n) => n ?? 0), slowKilled, lastWall } });
  }

  /** Closes every receiver of the finished run. */
  async function reset(): Promise<void> {
    stopping = true;
    for (const c of connections) c.close();
    await Promise.race([Promise.all(listeners), sleep(5000)]);
  }

  onMessages<ToReceiver>(async (m) => {
    if (m.t === 'setup') await setup(m);
    else if (m.t === 'listen') await startListening(m.run);
    else if (m.t === 'watch-kill') watchKill();
    else if (m.t === 'result') await result(m.runStartWall);
    else if (m.t === 'reset') {
      await reset();
      send({ t: 'reset' });
    } else if (m.t === 'stop') {
      await reset();
      send({ t: 'stopped' });
      process.exit(0);
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

/**
 * With --lock FILE: holds flock(1) on FILE from the first echo to the last of a configuration
 * (the measured part; the setup's token minting runs unlocked), and prints the load average at
 * both ends. Returns the release.
 */
async function benchLock(): Promise<() => void> {
  const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
  if (!LOCK) {
    console.log(`  load average ${load()}`);
    return () => console.log(`  load average ${load()}`);
  }
  const t = performance.now();
  const holder = spawn('flock', [LOCK, '-c', 'echo locked; exec cat > /dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(holder);
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.once('data', () => resolve());
    holder.once('exit', (code) => reject(new Error(`flock ${LOCK} exited with ${code}`)));
  });
  console.log(`  ${LOCK} held after ${fmt((performance.now() - t) / 1000)} s; load average ${load()}`);
  return () => {
    console.log(`  ${LOCK} released; load average ${load()}`);
    holder.stdin!.end();
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
    const args = cmd.split('\0');
    const role = args[args.indexOf('--role') + 1];
    const name = pid === process.pid ? 'services' : args.includes('--role') && role ? (role === 'receiver' ? `receiver${args[args.indexOf('--part') + 1]}` : role) : cmd.includes('rsa-main') ? 'rsa' : 'child';
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
  const forkRole = (role: string, extra: string[] = []): ChildProcess =>
    fork(fileURLToPath(import.meta.url), [...process.argv.slice(2), '--role', role, ...extra], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
  const senderProc = forkRole('sender');
  const receiverProcs = Array.from({ length: RECEIVER_PROCS }, (_, k) => forkRole('receiver', ['--part', String(k)]));
  for (const [name, child] of [['sender', senderProc], ...receiverProcs.map((c, k) => [`receiver ${k}`, c] as const)] as const)
    child.on('exit', (code) => {
      if (code !== 0) {
        console.error(`${name} exited with ${code}`);
        process.exit(2);
      }
    });

  /** One-off answers by type, per child; the rest (kill, progress, reconnect, done) go to handlers. */
  const waiters = new Map<ChildProcess, Map<string, (m: unknown) => void>>();
  const ask = <R extends { t: string }, T extends R['t']>(child: ChildProcess, msg: object, reply: T): Promise<Extract<R, { t: T }>> =>
    new Promise((resolve) => {
      let w = waiters.get(child);
      if (!w) waiters.set(child, (w = new Map()));
      w.set(reply, resolve as (m: unknown) => void);
      child.send(msg);
    });
  const answer = (child: ChildProcess, m: { t: string }): void => {
    const w = waiters.get(child)?.get(m.t);
    waiters.get(child)?.delete(m.t);
    w?.(m);
  };
  const askSender = <T extends FromSender['t']>(msg: ToSender, reply: T) => ask<FromSender, T>(senderProc, msg, reply);
  const askReceivers = <T extends FromReceiver['t']>(msg: ToReceiver, reply: T) => Promise.all(receiverProcs.map((c) => ask<FromReceiver, T>(c, msg, reply)));

  let onKill: ((at: number) => void) | null = null;
  let submitted = 0;
  senderProc.on('message', (m: FromSender) => {
    if (m.t === 'kill') return onKill?.(m.at);
    if (m.t === 'progress') return void (submitted = m.submitted);
    answer(senderProc, m);
  });
  const receiving = receiverProcs.map(() => ({ received: 0, connected: 0, done: false, reconnected: null as null | { secs: number; timeline: number[]; clients: number } }));
  let onDone: (() => void) | null = null;
  receiverProcs.forEach((child, k) =>
    child.on('message', (m: FromReceiver) => {
      const r = receiving[k]!;
      if (m.t === 'progress') return void Object.assign(r, { received: m.received, connected: m.connected });
      if (m.t === 'done') {
        r.done = true;
        return onDone?.();
      }
      if (m.t === 'reconnected') {
        r.reconnected = m;
        if (!receiving.every((x) => x.reconnected)) return;
        // Summed over the receiver processes, each counted whole once it was back.
        const all = receiving.map((x) => x.reconnected!);
        const len = Math.max(...all.map((x) => x.timeline.length));
        const timeline = Array.from({ length: len }, (_, s) => all.reduce((a, x) => a + (x.timeline[s] ?? x.clients), 0));
        const secs = Math.max(...all.map((x) => x.secs));
        return console.log(`  every receiver connected again ${fmt(secs)} s after the kill (connected every 0.5 s: ${timeline.join(' ')})`);
      }
      answer(child, m);
    }),
  );

  /** A bare Fastify echo server in this process (where the SSA runs), driven by the sender. */
  async function echoCeiling(): Promise<{ rate: number; p50: number; p99: number }> {
    const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
    app.post('/echo', async (req, reply) => reply.code(202).send(req.body));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const echoUrl = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/echo`;
    console.log(`echo baseline: ${ECHO_COUNT} requests, concurrency ${CONC} (from the sender process, as the submits) ...`);
    const cpuBefore = processCpu();
    const echo = await askSender({ t: 'echo', url: echoUrl, count: ECHO_COUNT }, 'echo');
    const cpuAfter = processCpu();
    await app.close();
    // The CPU one echo request costs (sender + this process), to set beside the run's CPU per message.
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

  /** The open loop's offered rate for a run whose echo (before it) is `echo`; null: the closed loop. */
  const rateFor = (echo: { rate: number }): number | null => {
    if (!RATE) return null;
    const r = 'perSecond' in RATE ? RATE.perSecond : RATE.ofEcho * echo.rate;
    console.log(`  offered rate ${fmt(r)} msgs/s${'ofEcho' in RATE ? ` (${RATE.ofEcho}× the echo before the run)` : ''}`);
    return r;
  };

  /** Inboxes on `services` (made by the receivers), then the sender's jobs addressed to them. */
  async function setupRun(issuerUrl: string, services: string[][]): Promise<number> {
    const t = performance.now();
    const parts = await askReceivers({ t: 'setup', issuer: issuerUrl, services }, 'setup');
    await askSender({ t: 'jobs', targets: parts.flatMap((p) => p.targets) }, 'jobs');
    return (performance.now() - t) / 1000;
  }

  /** The timed run against `services`, `kill` being the instance SIGKILLed at 1/3. */
  async function timedRun(runNo: number, ssa: SsaService, kill: Killable, rate: number | null): Promise<RunResult> {
    console.log(
      `run: ${N} clients × ${M} messages = ${TOTAL}, ${rate === null ? `closed loop, concurrency ${CONC}` : `open loop at ${fmt(rate)} msgs/s (at most ${MAX_INFLIGHT} in flight)`}, receivers in ${RECEIVER_PROCS} process${RECEIVER_PROCS > 1 ? 'es' : ''}${KILL ? ', RSA instance #1 killed at 1/3 and restarted 1 s later' : ''}`,
    );
    for (const r of receiving) Object.assign(r, { received: 0, connected: 0, done: false, reconnected: null });
    submitted = 0;
    const listening = await askReceivers({ t: 'listen', run: runNo }, 'listen');
    console.log(`  receivers connected: ${listening.reduce((a, l) => a + l.connected, 0)} of ${N}`);
    let killed: Promise<void> | null = null;
    let listenWall = NaN;
    onKill = (at) => {
      for (const c of receiverProcs) c.send({ t: 'watch-kill' } satisfies ToReceiver);
      killed = (async () => {
        await kill.kill();
        console.log(`  RSA #1 killed at message ${at}`);
        await sleep(1000);
        const restartAt = performance.now();
        await kill.restart();
        listenWall = wallNow();
        console.log(`  RSA #1 restarted (its process took ${fmt((performance.now() - restartAt) / 1000)} s to listen)`);
      })();
    };
    const t0 = performance.now();
    const ssaDb = (ssa.store as unknown as { db: { all(sql: string): Promise<Record<string, unknown>[]> } }).db;
    const progress = setInterval(
      () =>
        void ssaDb.all('SELECT state, COUNT(*) AS n FROM queue GROUP BY state').then((rows) => {
          const q = Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]));
          const received = receiving.reduce((a, r) => a + r.received, 0);
          const connected = receiving.reduce((a, r) => a + r.connected, 0);
          console.log(`  ${fmt((performance.now() - t0) / 1000)} s: submitted ${submitted}, received ${received}, receivers connected ${connected}; SSA queue ${JSON.stringify(q)}`);
        }),
      5000,
    );
    const stopProfile = await profile(`services-${runNo}.cpuprofile`);
    // Event-loop stalls in the services' process (the SSA's SQLite commits and checkpoints run on it).
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const cpuBefore = processCpu();
    const allDone = new Promise<void>((resolve) => {
      onDone = () => receiving.every((r) => r.done) && resolve();
      onDone();
    });
    const { result: sent } = await askSender({ t: 'run', run: runNo, rate }, 'sent');
    const complete = await Promise.race([allDone.then(() => true), sleep(180_000).then(() => false)]);
    const endWall = performance.timeOrigin + performance.now();
    const cpuAfter = processCpu();
    lag.disable();
    clearInterval(progress);
    onDone = null;
    console.log(`  services' event-loop delay: p50 ${fmt(lag.percentile(50) / 1e6)} ms, p99 ${fmt(lag.percentile(99) / 1e6)} ms, max ${fmt(lag.max / 1e6)} ms`);
    await stopProfile();
    if (killed) await killed;
    const parts = (await askReceivers({ t: 'result', runStartWall: sent.runStartWall }, 'result')).map((r) => r.result);
    const e2e = parts.flatMap((p) => p.e2e).sort((a, b) => a - b);
    const slowBySend: number[] = [];
    for (const p of parts) p.slowBySend.forEach((n, b) => (slowBySend[b] = (slowBySend[b] ?? 0) + n));
    const result: RunResult = {
      submitSecs: sent.submitSecs,
      // Until the last message arrived (or the 180 s wait for the missing ones ran out).
      e2eSecs: ((complete ? Math.max(...parts.map((p) => p.lastWall)) : endWall) - sent.runStartWall) / 1000,
      received: parts.reduce((a, p) => a + p.received, 0),
      duplicates: parts.reduce((a, p) => a + p.duplicates, 0),
      refused: sent.refused,
      submit: sent.submit,
      e2e: { p50: pct(e2e, 50), p99: pct(e2e, 99) },
      over1s: parts.reduce((a, p) => a + p.over1s, 0),
      over1sKilled: parts.reduce((a, p) => a + p.over1sKilled, 0),
      slowBySend: Array.from(slowBySend, (n) => n ?? 0),
      killAtS: sent.killAtS,
      late: Number.isNaN(listenWall) ? undefined : lateSplit(parts.flatMap((p) => p.slowKilled), listenWall),
      open: sent.open,
    };
    // Processes alive at both ends (the killed RSA's time is lost with it).
    result.cpu = {};
    for (const [pid, { name, secs }] of cpuAfter) {
      const b = cpuBefore.get(pid);
      if (b && secs > b.secs) result.cpu[`${name}#${pid}`] = secs - b.secs;
    }
    return result;
  }

  const results: ConfigResult[] = [];
  if (!DB) {
    // ---- the hub (SQLite) -------------------------------------------------------------------
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
    const mint = await askSender({ t: 'mint', issuer: hub.issuer, ssa: hub.ssa, count: TOTAL }, 'mint');
    const setupSecs = await setupRun(hub.issuer, hub.rsas.map((u) => [u]));
    console.log(`  setup took ${fmt(mint.secs + setupSecs)} s`);
    const unlock = await benchLock();
    const echo = await echoCeiling();
    const run = await timedRun(0, hub.services.ssa, hub.rsaHandles[0], rateFor(echo));
    await askReceivers({ t: 'reset' }, 'reset');
    const echoAfter = await echoCeiling();
    unlock();
    await hub.close();
    results.push({ label: 'hub (SQLite)', echo: meanEcho(echo, echoAfter), run });
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
      const mint = await askSender({ t: 'mint', issuer: issuer.url, ssa: ssa.url, count: TOTAL * CONFIGS.length }, 'mint');
      console.log(`  minting took ${fmt(mint.secs)} s`);
      for (const [runNo, n] of CONFIGS.entries()) {
        console.log(`\n=== configuration ${runNo + 1}/${CONFIGS.length}: ${n} RSA instance${n > 1 ? 's' : ''} on PostgreSQL`);
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
        const setupSecs = await setupRun(issuer.url, [instances.map((i) => i.url)]);
        console.log(`  setup (inboxes, addresses) took ${fmt(setupSecs)} s`);
        const dbs = [`${tag}_ssa`, `${tag}_${rsaDbName}`];
        // pg_stat_database lags: an idle backend reports its counters within 10 s (PGSTAT_IDLE_INTERVAL).
        await sleep(11_000);
        const unlock = await benchLock();
        const echo = await echoCeiling();
        const before = await counters(dbs);
        const run = await timedRun(runNo, ssa, instances[0]!, rateFor(echo));
        await askReceivers({ t: 'reset' }, 'reset');
        const echoAfter = await echoCeiling();
        unlock();
        for (const i of instances) await i.stop(); // their backends exit and report their counters
        await sleep(11_000);
        const after = await counters(dbs);
        const walBytes = Number((await admin.unsafe('SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn) AS d', [after.lsn, before.lsn]))[0]!.d);
        const sizes = Object.fromEntries(
          (await admin.unsafe('SELECT datname, pg_database_size(datname) AS s FROM pg_database WHERE datname = ANY($1)', [dbs])).map((r) => [String(r.datname).replace(`${tag}_`, ''), Number(r.s)]),
        );
        const xacts = Object.fromEntries(dbs.map((d) => [d.replace(`${tag}_`, '').replace(/\d+$/, ''), (after.xacts[d] ?? 0) - (before.xacts[d] ?? 0)]));
        results.push({ label: `${n} RSA instance${n > 1 ? 's' : ''}`, echo: meanEcho(echo, echoAfter), run, pg: { xacts, rows: after.rows - before.rows, walBytes, sizes } });
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
    if (r.open)
      console.log(
        `    open loop            offered ${fmt(r.open.rate)} msgs/s (${(r.open.rate / echo.rate).toFixed(2)}× the mean echo); late against the schedule: ${r.open.late10} by > 10 ms, ${r.open.late100} by > 100 ms, latest ${fmt(r.open.maxLateMs)} ms; held by the cap of ${r.open.cap}: ${r.open.capped}; most in flight ${r.open.maxInFlight}; latencies count from the scheduled time`,
      );
    console.log(`    refused submits      ${r.refused}`);
    console.log(`    lost                 ${lost} of ${TOTAL}${KILL ? ' (with an RSA instance SIGKILLed and restarted)' : ''}`);
    console.log(`    duplicates pushed    ${r.duplicates} (redelivered before an ack; deduped by the receiver)`);
    console.log(`    slower than 1 s      ${r.over1s} (${r.over1sKilled} of them to the RSA service whose instance was killed)`);
    console.log(`      by send time       ${r.slowBySend.map((n, k) => `${k * 5}s:${n}`).filter((x) => !x.endsWith(':0')).join(' ')}${r.killAtS >= 0 ? ` (kill at ${fmt(r.killAtS)} s)` : ''}`);
    if (r.late) {
      const l = r.late;
      console.log(
        `      to the killed one  late by phase (s summed): outage ${fmt(l.secs.outage)}, reconnect ${fmt(l.secs.reconnect)}, drain ${fmt(l.secs.drain)}; mostly late in the outage ${l.mostly.outage}, the reconnect ${l.mostly.reconnect}, the drain ${l.mostly.drain} (drain p50 ${l.drainP50.toFixed(2)} s, p90 ${l.drainP90.toFixed(2)} s)`,
      );
    }
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

  await askReceivers({ t: 'stop' }, 'stopped');
  await askSender({ t: 'stop' }, 'stopped');
  process.exit(failed ? 1 : 0);
}

if (ROLE === 'sender') await sender();
else if (ROLE === 'receiver') await receiver();
else await main();
