/**
 * Group fan-out (a script, not a test):
 *
 *   node --import tsx bench/group-fanout.ts [--members 50] [--messages 100] [--json]
 *
 * One process, in-memory SQLite stores, the memory network (no latency). Builds a group of N
 * members (the creator invites everyone; every member opens its pairwise sessions from the
 * relayed cards), then from the creator:
 *   - one message: the sender's CPU for the fan-out (encode once, N-1 pairwise envelopes, one
 *     transaction for the intent, one per session for the envelopes), and the time until every
 *     member has it;
 *   - a burst of messages: group messages per second and pairwise deliveries per second until
 *     every member has every message.
 * Receivers run in the same process, so wall-clock figures include their work too; the CPU
 * figure is measured around the sender's send() only.
 */
import { Client, MemoryNetwork, SqliteStore, type GroupMessageInfo } from '../packages/client/src/node.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const MEMBERS = arg('--members', 50);
const MESSAGES = arg('--messages', 100);
const json = process.argv.includes('--json');
const KEY = new Uint8Array(32).fill(7);
const log = (s: string) => {
  if (!json) console.log(s);
};

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

// Client.open({ store }) leaves the store to the caller: closed after the clients, at the end.
const stores: SqliteStore[] = [];
async function open(net: MemoryNetwork, name: string): Promise<Client> {
  const store = await SqliteStore.open({ path: ':memory:', key: KEY });
  stores.push(store);
  return Client.open({ delivery: net.adapter(), store, profile: { name }, retry: { initialMs: 2000, maxMs: 8000 }, ackDelayMs: 5, syncIntervalMs: 0 });
}

const net = new MemoryNetwork();
const setupStart = performance.now();
const clients = await Promise.all(Array.from({ length: MEMBERS }, (_, i) => open(net, `m${i}`)));
const [sender, ...others] = clients as [Client, ...Client[]];
const convIds: string[] = [];
for (const o of others) {
  const inv = await o.createInvitation();
  convIds.push((await sender.accept(inv.text)).id);
}
const everyAsync = async (cs: readonly Client[], pred: (c: Client) => Promise<boolean>) => (await Promise.all(cs.map(pred))).every(Boolean);
await waitFor(async () => (await everyAsync(others, async (o) => (await o.conversations()).length === 1)) && (await sender.pendingCount()) === 0, 120_000, 'the 1:1 sessions');
const g = await sender.groups.create('bench', convIds);
await waitFor(() => others.every((o) => o.groups.list().length === 1), 120_000, 'the invitations');
await Promise.all(others.map((o) => o.groups.accept(g.chatId)));
const connected = (c: Client) => {
  const x = c.groups.get(g.chatId);
  return x.status === 'member' && x.memberCount === MEMBERS && x.pendingCount === 0;
};
await waitFor(() => clients.every(connected), 600_000, 'every pairwise session');
await waitFor(() => everyAsync(clients, async (c) => (await c.pendingCount()) === 0), 600_000, 'the network to settle');
await net.idle();
const setupS = (performance.now() - setupStart) / 1000;
log(`setup: ${MEMBERS} members, ${(MEMBERS * (MEMBERS - 1)) / 2} pairwise sessions, ${setupS.toFixed(1)} s`);

const received = new Map<string, number>();
for (const o of others) o.on('group-message', (m: GroupMessageInfo) => received.set(m.id, (received.get(m.id) ?? 0) + 1));

// One message: sender CPU and time to every member (median of 7).
const cpuMs: number[] = [];
const wallMs: number[] = [];
const allMs: number[] = [];
for (let i = 0; i < 7; i++) {
  await net.idle();
  await waitFor(async () => (await sender.pendingCount()) === 0, 30_000, 'acks');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const msg = await sender.groups.send(g.chatId, `single ${i}`);
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  await waitFor(() => received.get(msg.id) === MEMBERS - 1, 30_000, 'every member');
  const t2 = performance.now();
  cpuMs.push((cpu.user + cpu.system) / 1000);
  wallMs.push(t1 - t0);
  allMs.push(t2 - t0);
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

// A burst.
await waitFor(async () => (await sender.pendingCount()) === 0, 30_000, 'acks');
const b0 = performance.now();
const ids: string[] = [];
for (let i = 0; i < MESSAGES; i++) ids.push((await sender.groups.send(g.chatId, `burst ${i}`)).id);
const sentMs = performance.now() - b0;
await waitFor(() => ids.every((id) => received.get(id) === MEMBERS - 1), 600_000, 'the burst');
const burstMs = performance.now() - b0;

const result = {
  members: MEMBERS,
  setupSeconds: Number(setupS.toFixed(1)),
  single: {
    senderCpuMs: Number(median(cpuMs).toFixed(1)),
    senderWallMs: Number(median(wallMs).toFixed(1)),
    everyMemberMs: Number(median(allMs).toFixed(1)),
  },
  burst: {
    messages: MESSAGES,
    sendCallsPerSecond: Math.round((MESSAGES / sentMs) * 1000),
    groupMessagesPerSecond: Math.round((MESSAGES / burstMs) * 1000),
    pairwiseDeliveriesPerSecond: Math.round(((MESSAGES * (MEMBERS - 1)) / burstMs) * 1000),
  },
};
if (json) console.log(JSON.stringify(result, null, 2));
else {
  log(`one message to ${MEMBERS - 1} members (median of 7):`);
  log(`  sender CPU for the fan-out   ${result.single.senderCpuMs} ms  (target < 50 ms)`);
  log(`  send() wall time             ${result.single.senderWallMs} ms`);
  log(`  until every member has it    ${result.single.everyMemberMs} ms`);
  log(`burst of ${MESSAGES} messages:`);
  log(`  send() calls                 ${result.burst.sendCallsPerSecond}/s`);
  log(`  every member has every one   ${result.burst.groupMessagesPerSecond} group msgs/s = ${result.burst.pairwiseDeliveriesPerSecond} pairwise deliveries/s`);
}
await Promise.all(clients.map((c) => c.close()));
await Promise.all(stores.map((s) => s.close()));
