/**
 * Load test (npm run loadtest; not part of npm test).
 *
 *   npm run loadtest -- [--clients 1000] [--messages 100] [--concurrency 100] [--size 512] [--no-kill]
 *
 * Starts the hub (issuer + SSA in this process, the two RSAs as child processes), gives each
 * client an inbox on one of the RSAs and a seed, and has every client send M messages to the next
 * client through the SSA. Tokens and per-message re-randomized addresses are prepared before
 * the clock starts (clients pre-fetch tokens; re-randomizing is client CPU, not service work).
 * Receivers listen on the RSA WebSocket, ack in batches, reconnect after a drop and dedupe by id.
 * Unless --no-kill, RSA #1 is SIGKILLed at 1/3 of the submissions and restarted 1 s later.
 * Prints msgs/s and p50/p99 latencies beside a bare Fastify echo server driven the same way in the
 * same run, and how many messages were lost (target 0).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import {
  addressKeysOf,
  currentAddressKey,
  deriveAddress,
  IssuerClient,
  rerandomizeAddress,
  RsaClient,
  SsaClient,
  startHub,
  tokenInfoOf,
  TokenWallet,
  type InboxClient,
} from '../packages/services/src/index.ts';

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

// ---- 1. ceiling: a bare Fastify echo server, same client, same concurrency -------------------
async function echoBaseline(count: number): Promise<{ rate: number; p50: number; p99: number }> {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  app.post('/echo', async (req, reply) => reply.code(202).send(req.body));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/echo`;
  const body = JSON.stringify({ payload: Buffer.from(randomBytes(SIZE)).toString('base64url') });
  const lat: number[] = [];
  const t0 = performance.now();
  await pool(Array.from({ length: count }, (_, i) => i), CONC, async () => {
    const s = performance.now();
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await r.arrayBuffer();
    lat.push(performance.now() - s);
  });
  const secs = (performance.now() - t0) / 1000;
  await app.close();
  lat.sort((a, b) => a - b);
  return { rate: count / secs, p50: pct(lat, 50), p99: pct(lat, 99) };
}

const echoCount = Math.min(TOTAL, 20_000);
console.log(`echo baseline: ${echoCount} requests, concurrency ${CONC} ...`);
const echo = await echoBaseline(echoCount);
console.log(`  echo: ${fmt(echo.rate)} req/s, p50 ${fmt(echo.p50)} ms, p99 ${fmt(echo.p99)} ms`);

// ---- 2. the hub --------------------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'umbra-load-'));
const hub = await startHub({
  dataDir: dir,
  rsaMode: 'child',
  quota: { ssa: TOTAL + 1000, rsa: N * 6 + 1000 },
  rsaLimits: { perSeedPerMinute: 1_000_000, perSeedPerDay: 1_000_000, inboxMaxMessages: 1_000_000 },
  ssaRetry: { baseMs: 200, maxMs: 2000, concurrency: 128 },
});
console.log(`hub: ssa ${hub.ssa}, rsas ${hub.rsas.join(' ')} (data ${dir})`);
const issuer = await IssuerClient.register(hub.issuer);
const ssa = new SsaClient(hub.ssa);
const rsas = hub.rsas.map((u) => new RsaClient(u));
const rsaDescs = await Promise.all(rsas.map((r) => r.descriptor()));
const rsaWallets = rsaDescs.map((d) => new TokenWallet(issuer, 'rsa', tokenInfoOf(d), 100));
const ssaWallet = new TokenWallet(issuer, 'ssa', tokenInfoOf(await ssa.descriptor()), 100);

console.log(`setup: ${N} inboxes, ${TOTAL} tokens and addresses ...`);
let t = performance.now();
interface Client {
  rsa: number;
  inbox: InboxClient;
  addr: Uint8Array;
  key: { kid: number; X: Uint8Array };
}
const clients: Client[] = [];
for (let i = 0; i < N; i++) {
  const r = i % 2;
  const inbox = await rsas[r]!.createInbox(await rsaWallets[r]!.takeMany(5));
  const [seed] = await inbox.requestSeeds(await rsaWallets[r]!.take(), 1);
  const key = currentAddressKey(addressKeysOf(rsaDescs[r]!), 'ephemeral');
  clients.push({ rsa: r, inbox, addr: deriveAddress(seed!.M, key), key });
}
interface Job {
  id: number;
  to: number;
  token: Uint8Array;
  addr: Uint8Array;
  payload: Uint8Array;
}
const jobs: Job[] = [];
for (let m = 0; m < M; m++)
  for (let i = 0; i < N; i++) {
    const to = (i + 1) % N;
    const c = clients[to]!;
    const rr = rerandomizeAddress(c.addr, c.key);
    if (rr.kind !== 'ok') throw new Error(rr.reason);
    const payload = new Uint8Array(randomBytes(SIZE));
    const id = jobs.length;
    new DataView(payload.buffer).setUint32(0, id);
    jobs.push({ id, to, token: await ssaWallet.take(), addr: rr.address, payload });
  }
console.log(`  setup took ${fmt((performance.now() - t) / 1000)} s`);

// ---- 3. receivers ---------------------------------------------------------------------------------
const sentAt = new Float64Array(TOTAL);
const received = new Uint8Array(TOTAL);
let receivedCount = 0;
let duplicates = 0;
const e2e: number[] = [];
let stopping = false;
async function listen(c: Client): Promise<void> {
  while (!stopping) {
    let pending: Uint8Array[] = [];
    try {
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
      });
      const flush = setInterval(() => {
        if (pending.length) conn.ack(pending.splice(0, 1000));
      }, 50);
      await conn.closed;
      clearInterval(flush);
    } catch {
      /* the RSA is down: retry */
    }
    pending = [];
    if (!stopping) await new Promise((r) => setTimeout(r, 200));
  }
}
const listeners = clients.map((c) => listen(c));
await new Promise((r) => setTimeout(r, 1000));

// ---- 4. the run ------------------------------------------------------------------------------
console.log(`run: ${N} clients × ${M} messages = ${TOTAL}, concurrency ${CONC}${KILL ? ', RSA #1 killed at 1/3 and restarted 1 s later' : ''}`);
const submitLat: number[] = [];
let refused = 0;
let killed: Promise<void> | null = null;
t = performance.now();
await pool(jobs, CONC, async (job, i) => {
  if (KILL && i === Math.floor(TOTAL / 3)) {
    killed = (async () => {
      await hub.rsaHandles[0].kill();
      console.log(`  RSA #1 killed at message ${i}`);
      await new Promise((r) => setTimeout(r, 1000));
      await hub.rsaHandles[0].restart();
      console.log('  RSA #1 restarted');
    })();
  }
  const s = performance.now();
  sentAt[job.id] = s;
  const r = await ssa.submit({ rsa: hub.rsas[clients[job.to]!.rsa]!, addr: job.addr, payload: job.payload, ttlS: 3600 }, job.token);
  submitLat.push(performance.now() - s);
  if (!r.ok) refused++;
});
const submitSecs = (performance.now() - t) / 1000;
if (killed) await killed;
const deadline = Date.now() + 120_000;
while (receivedCount < TOTAL && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
const e2eSecs = (performance.now() - t) / 1000;
stopping = true;

submitLat.sort((a, b) => a - b);
e2e.sort((a, b) => a - b);
const ssaRate = TOTAL / submitSecs;
console.log('\nresults');
console.log(`  echo ceiling         ${fmt(echo.rate)} req/s   p50 ${fmt(echo.p50)} ms   p99 ${fmt(echo.p99)} ms`);
console.log(`  SSA submit (202)     ${fmt(ssaRate)} msg/s   p50 ${fmt(pct(submitLat, 50))} ms   p99 ${fmt(pct(submitLat, 99))} ms   (${fmt(ssaRate / echo.rate)}× echo)`);
console.log(`  end to end (push)    ${fmt(receivedCount / e2eSecs)} msg/s   p50 ${fmt(pct(e2e, 50))} ms   p99 ${fmt(pct(e2e, 99))} ms   (${fmt(receivedCount / e2eSecs / echo.rate)}× echo)`);
console.log(`  refused submits      ${refused}`);
console.log(`  lost                 ${TOTAL - receivedCount} of ${TOTAL}${KILL ? ' (with an RSA SIGKILLed and restarted)' : ''}`);
console.log(`  duplicates pushed    ${duplicates} (redelivered before an ack; deduped by the receiver)`);

await hub.close();
await Promise.race([Promise.all(listeners), new Promise((r) => setTimeout(r, 2000))]);
rmSync(dir, { recursive: true, force: true });
process.exit(TOTAL - receivedCount === 0 && refused === 0 ? 0 : 1);
