/**
 * Load test (npm run loadtest; not part of npm test).
 *
 *   npm run loadtest -- [--clients 1000] [--messages 100] [--concurrency 100] [--size 512] [--no-kill]
 *                       [--echo-count 20000]
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
 * (target 0). `--profile DIR` writes V8 CPU profiles of every process there (services.cpuprofile,
 * generator.cpuprofile, rsa-<pid>.cpuprofile for the RSAs that were not killed).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import Fastify from 'fastify';
import { addressKeysOf, currentAddressKey, IssuerClient, RsaClient, SsaClient, tokenInfoOf, TokenWallet, type InboxClient } from '../packages/client/src/http.ts';
import { nodeServiceClientOptions } from '../packages/client/src/node.ts';
import { b64u, deriveAddress, rerandomizeAddress, startHub } from '../packages/services/src/index.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const N = arg('clients', 1000);
const M = arg('messages', 100);
const CONC = arg('concurrency', 100);
const SIZE = arg('size', 512);
const KILL = !process.argv.includes('--no-kill');
const TOTAL = N * M;
const ECHO_COUNT = arg('echo-count', Math.min(TOTAL, 20_000));
const IS_GENERATOR = process.argv.includes('--generator');
const PROFILE_DIR = (() => {
  const i = process.argv.indexOf('--profile');
  return i >= 0 ? process.argv[i + 1]! : null;
})();

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
type ToGen =
  | { t: 'echo'; url: string; count: number }
  | { t: 'setup'; issuer: string; ssa: string; rsas: string[] }
  | { t: 'run' }
  | { t: 'stop' };
interface RunResult {
  submitSecs: number;
  e2eSecs: number;
  received: number;
  duplicates: number;
  refused: number;
  submit: { p50: number; p99: number };
  e2e: { p50: number; p99: number };
}
type FromGen =
  | { t: 'echo'; rate: number; p50: number; p99: number }
  | { t: 'setup'; secs: number }
  | { t: 'kill'; at: number }
  | { t: 'progress'; submitted: number; received: number; connected: number }
  | { t: 'run'; result: RunResult }
  | { t: 'stopped' };

// =================================================================================================
// The generator process: every client lives here.
// =================================================================================================
async function generator(): Promise<void> {
  const send = (m: FromGen) => process.send!(m);
  let stopProfile = async () => {};

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
    rsa: number;
    inbox: InboxClient;
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
  let hub: { ssa: string; rsas: string[] } | null = null;
  let ssa: SsaClient | null = null;
  const clients: Client[] = [];
  const jobs: Job[] = [];

  async function setup(m: { issuer: string; ssa: string; rsas: string[] }): Promise<void> {
    const t = performance.now();
    hub = m;
    const issuer = await IssuerClient.register(m.issuer);
    ssa = new SsaClient(m.ssa);
    const rsas = m.rsas.map((u) => new RsaClient(u, nodeServiceClientOptions));
    const rsaDescs = await Promise.all(rsas.map((r) => r.descriptor()));
    const rsaWallets = rsaDescs.map((d) => new TokenWallet(issuer, tokenInfoOf(d), 100));
    const ssaInfo = tokenInfoOf(await ssa.descriptor());
    for (let i = 0; i < N; i++) {
      const r = i % 2;
      const inbox = await rsas[r]!.createInbox(await rsaWallets[r]!.takeMany(5));
      const [seed] = await inbox.requestSeeds(await rsaWallets[r]!.take(), 1);
      const key = currentAddressKey(addressKeysOf(rsaDescs[r]!), 'ephemeral');
      clients.push({ rsa: r, inbox, addr: deriveAddress(seed!.M, key), key });
    }
    // SSA tokens: a few batches in flight at once (the issuer's blind signing is the slow part).
    const tokens: Uint8Array[] = [];
    const batches = Math.ceil(TOTAL / 100);
    await pool(Array.from({ length: batches }, (_, i) => i), 4, async (b) => {
      tokens.push(...(await issuer.mint(ssaInfo, Math.min(100, TOTAL - b * 100))));
    });
    for (let mm = 0; mm < M; mm++)
      for (let i = 0; i < N; i++) {
        const to = (i + 1) % N;
        const c = clients[to]!;
        const rr = rerandomizeAddress(c.addr, c.key);
        if (rr.kind !== 'ok') throw new Error(rr.reason);
        const payload = new Uint8Array(randomBytes(SIZE));
        const id = jobs.length;
        new DataView(payload.buffer).setUint32(0, id);
        jobs.push({ id, to, token: tokens.pop()!, addr: rr.address, payload });
      }
    send({ t: 'setup', secs: (performance.now() - t) / 1000 });
  }

  // ---- receivers ----------------------------------------------------------------------------
  const sentAt = new Float64Array(TOTAL);
  const received = new Uint8Array(TOTAL);
  let receivedCount = 0;
  let duplicates = 0;
  const e2e: number[] = [];
  let stopping = false;
  let connected = 0;
  const listeners: Promise<void>[] = [];
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
            e2e.push(performance.now() - sentAt[id]!);
          }
          pending.push(msg.mid);
          flush ??= setTimeout(() => {
            flush = null;
            conn.ack(pending.splice(0, 1000));
          }, 50);
        });
        connected++;
        await conn.closed;
        connected--;
        if (flush) clearTimeout(flush);
        flush = null;
      } catch {
        /* the RSA is down: retry */
      }
      pending = [];
      if (!stopping) await new Promise((r) => setTimeout(r, 200));
    }
  }

  async function run(): Promise<void> {
    for (const c of clients) listeners.push(listen(c));
    await new Promise((r) => setTimeout(r, 1000));
    stopProfile = await profile('generator.cpuprofile');
    const submitLat: number[] = [];
    let refused = 0;
    const t = performance.now();
    const progress = setInterval(() => send({ t: 'progress', submitted: submitLat.length, received: receivedCount, connected }), 5000);
    await pool(jobs, CONC, async (job, i) => {
      if (KILL && i === Math.floor(TOTAL / 3)) send({ t: 'kill', at: i });
      const s = performance.now();
      sentAt[job.id] = s;
      const r = await ssa!.submit({ rsa: hub!.rsas[clients[job.to]!.rsa]!, addr: job.addr, payload: job.payload, ttlS: 3600 }, job.token);
      submitLat.push(performance.now() - s);
      if (!r.ok) refused++;
    });
    const submitSecs = (performance.now() - t) / 1000;
    const deadline = Date.now() + 180_000;
    while (receivedCount < TOTAL && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
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
      },
    });
  }

  process.on('message', (m: ToGen) => {
    const fail = (e: unknown) => {
      console.error('[generator]', e);
      process.exit(2);
    };
    if (m.t === 'echo') echo(m.url, m.count).catch(fail);
    else if (m.t === 'setup') setup(m).catch(fail);
    else if (m.t === 'run') run().catch(fail);
    else if (m.t === 'stop') {
      stopping = true;
      void Promise.race([Promise.all(listeners), new Promise((r) => setTimeout(r, 2000))]).then(() => {
        send({ t: 'stopped' });
        process.exit(0);
      });
    }
  });
}

// =================================================================================================
// The service process.
// =================================================================================================
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

  // ---- 1. ceiling: a bare Fastify echo server in this process, driven by the generator -------
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  app.post('/echo', async (req, reply) => reply.code(202).send(req.body));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const echoUrl = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/echo`;
  console.log(`echo baseline: ${ECHO_COUNT} requests, concurrency ${CONC} (generator in its own process) ...`);
  const echo = await ask({ t: 'echo', url: echoUrl, count: ECHO_COUNT }, 'echo');
  await app.close();
  console.log(`  echo: ${fmt(echo.rate)} req/s, p50 ${fmt(echo.p50)} ms, p99 ${fmt(echo.p99)} ms`);

  // ---- 2. the hub -----------------------------------------------------------------------------
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
  const setup = await ask({ t: 'setup', issuer: hub.issuer, ssa: hub.ssa, rsas: hub.rsas }, 'setup');
  console.log(`  setup took ${fmt(setup.secs)} s`);

  // ---- 3. the run -----------------------------------------------------------------------------
  console.log(`run: ${N} clients × ${M} messages = ${TOTAL}, concurrency ${CONC}${KILL ? ', RSA #1 killed at 1/3 and restarted 1 s later' : ''}`);
  let killed: Promise<void> | null = null;
  onKill = (at) => {
    killed = (async () => {
      await hub.rsaHandles[0].kill();
      console.log(`  RSA #1 killed at message ${at}`);
      await new Promise((r) => setTimeout(r, 1000));
      await hub.rsaHandles[0].restart();
      console.log('  RSA #1 restarted');
    })();
  };
  const t0 = performance.now();
  const ssaDb = (hub.services.ssa.store as unknown as { db: { all(sql: string): Promise<Record<string, unknown>[]> } }).db;
  onProgress = (m) =>
    void ssaDb.all('SELECT state, COUNT(*) AS n FROM queue GROUP BY state').then((rows) => {
      const q = Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]));
      console.log(`  ${fmt((performance.now() - t0) / 1000)} s: submitted ${m.submitted}, received ${m.received}, receivers connected ${m.connected}; SSA queue ${JSON.stringify(q)}`);
    });
  const stopProfile = await profile('services.cpuprofile');
  const { result: r } = await ask({ t: 'run' }, 'run');
  await stopProfile();
  if (killed) await killed;

  const ssaRate = TOTAL / r.submitSecs;
  const e2eRate = r.received / r.e2eSecs;
  const lost = TOTAL - r.received;
  console.log('\nresults');
  console.log(`  echo ceiling         ${fmt(echo.rate)} req/s   p50 ${fmt(echo.p50)} ms   p99 ${fmt(echo.p99)} ms`);
  console.log(`  SSA submit (202)     ${fmt(ssaRate)} msg/s   p50 ${fmt(r.submit.p50)} ms   p99 ${fmt(r.submit.p99)} ms   (${(ssaRate / echo.rate).toFixed(2)}× echo)`);
  console.log(`  end to end (push)    ${fmt(e2eRate)} msg/s   p50 ${fmt(r.e2e.p50)} ms   p99 ${fmt(r.e2e.p99)} ms   (${(e2eRate / echo.rate).toFixed(2)}× echo)`);
  console.log(`  refused submits      ${r.refused}`);
  console.log(`  lost                 ${lost} of ${TOTAL}${KILL ? ' (with an RSA SIGKILLed and restarted)' : ''}`);
  console.log(`  duplicates pushed    ${r.duplicates} (redelivered before an ack; deduped by the receiver)`);

  await ask({ t: 'stop' }, 'stopped');
  await hub.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(lost === 0 && r.refused === 0 ? 0 : 1);
}

if (IS_GENERATOR) await generator();
else await main();
