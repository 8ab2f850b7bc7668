/**
 * `node --import tsx bench/waku.ts [--json]`: Umbra over Waku Relay, three processes on
 * loopback (alice → hub → bob: two relay hops; the hub is also the store peer). Measures
 * end-to-end latency (engine.send on alice to engine.classify done on bob, both processes on
 * one clock) of paced messages, p50/p99, then throughput of back-to-back messages (msgs/s
 * received at bob). Every message is a full 1:1 Double Ratchet envelope (padded to 256 B).
 */
import { PEER_SCRIPT, Proc } from '../packages/client/test/fixtures/waku-harness.ts';

const json = process.argv.includes('--json');
const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const LATENCY_MSGS = arg('latency', 300);
const LATENCY_INTERVAL_MS = arg('interval', 20);
const THROUGHPUT_MSGS = arg('throughput', 2000);
const progress = (s: string) => process.stderr.write(`… ${s}\n`);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

async function main() {
  const t0 = Date.now();
  const hub = await Proc.spawn('hub', PEER_SCRIPT);
  const { multiaddrs } = (await hub.request('hub')) as { multiaddrs: string[] };
  const [alice, bob] = await Promise.all([Proc.spawn('alice', PEER_SCRIPT), Proc.spawn('bob', PEER_SCRIPT)]);
  try {
    await Promise.all([alice.request('member', { name: 'alice', bootstrap: multiaddrs }), bob.request('member', { name: 'bob', bootstrap: multiaddrs })]);
    await Promise.all([alice.request('ready'), bob.request('ready')]);
    progress(`three processes up, mesh formed (${Date.now() - t0} ms)`);
    const { text } = (await bob.request('invite')) as { text: string };
    const { conversationId } = (await alice.request('accept', { text })) as { conversationId: string };
    await bob.waitEvent((e) => e.event === 'started');
    const peers = {
      alice: ((await alice.request('stats')) as { peers: number }).peers,
      bob: ((await bob.request('stats')) as { peers: number }).peers,
    };

    const collect = (from: number, prefix: (i: number) => boolean) =>
      bob.events
        .slice(from)
        .filter((e) => e.event === 'text' && typeof e.text === 'string' && e.text.startsWith('t:'))
        .map((e) => {
          const [, i, sent] = (e.text as string).split(':');
          return { i: Number(i), sent: Number(sent), at: e.at as number };
        })
        .filter((x) => prefix(x.i));

    // warm-up (JIT, connections, gossipsub fanout)
    let mark = bob.events.length;
    await alice.request('sendStamped', { conversationId, count: 50, intervalMs: 5 });
    await bob.waitEvent((e) => e.event === 'text' && String(e.text).startsWith('t:49:'), 20_000);

    progress(`latency: ${LATENCY_MSGS} messages, one every ${LATENCY_INTERVAL_MS} ms`);
    mark = bob.events.length;
    await alice.request('sendStamped', { conversationId, count: LATENCY_MSGS, intervalMs: LATENCY_INTERVAL_MS }, 120_000);
    const last = LATENCY_MSGS - 1;
    await bob.waitEvent((e) => e.event === 'text' && String(e.text).startsWith(`t:${last}:`), 20_000).catch(() => undefined);
    const lat = collect(mark, () => true).map((x) => x.at - x.sent).sort((a, b) => a - b);
    const latency = {
      sent: LATENCY_MSGS,
      received: lat.length,
      p50: percentile(lat, 50),
      p90: percentile(lat, 90),
      p99: percentile(lat, 99),
      max: lat[lat.length - 1] ?? NaN,
    };

    progress(`throughput: ${THROUGHPUT_MSGS} messages back to back`);
    mark = bob.events.length;
    const sendRes = (await alice.request('sendStamped', { conversationId, count: THROUGHPUT_MSGS, intervalMs: 0 }, 300_000)) as { ms: number };
    const lastT = THROUGHPUT_MSGS - 1;
    await bob.waitEvent((e) => e.event === 'text' && String(e.text).startsWith(`t:${lastT}:`), 60_000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    const got = collect(mark, () => true);
    const first = Math.min(...got.map((x) => x.sent));
    const end = Math.max(...got.map((x) => x.at));
    const tput = got.map((x) => x.at - x.sent).sort((a, b) => a - b);
    const throughput = {
      sent: THROUGHPUT_MSGS,
      received: got.length,
      sendMsgsPerSec: (THROUGHPUT_MSGS / sendRes.ms) * 1000,
      endToEndMsgsPerSec: (got.length / (end - first)) * 1000,
      p50UnderLoad: percentile(tput, 50),
      p99UnderLoad: percentile(tput, 99),
    };
    const bobStats = (await bob.request('stats')) as { delivery: Record<string, number>; results: Record<string, unknown> };
    const hubStats = (await hub.request('stats')) as { store: Record<string, number> };
    const result = { hops: 2, peers, latency, throughput, bob: bobStats.delivery, store: hubStats.store };
    if (json) {
      console.log(JSON.stringify(result, null, 2));
    } else {
      const f = (n: number) => n.toFixed(2);
      console.log('');
      console.log(`Umbra over Waku Relay, 3 processes on loopback, alice → hub → bob (2 hops; alice has ${peers.alice} peer, bob ${peers.bob}):`);
      console.log(`  latency, 1 msg / ${LATENCY_INTERVAL_MS} ms: p50 ${f(latency.p50)} ms   p90 ${f(latency.p90)} ms   p99 ${f(latency.p99)} ms   max ${f(latency.max)} ms   (${latency.received}/${latency.sent} received)`);
      console.log(
        `  throughput, back to back: ${Math.round(throughput.endToEndMsgsPerSec)} msgs/s end to end (sender ${Math.round(throughput.sendMsgsPerSec)} msgs/s; ${throughput.received}/${throughput.sent} received; latency under load p50 ${f(throughput.p50UnderLoad)} ms, p99 ${f(throughput.p99UnderLoad)} ms)`,
      );
      console.log(`  store peer kept ${hubStats.store.messages} messages (${hubStats.store.bytes} B); bob dropped ${bobStats.delivery.duplicates} duplicates`);
      console.log('  (end to end = Engine.send + publish on alice → gossipsub via the hub → Engine.classify on bob)');
    }
  } finally {
    await Promise.all([alice.stop(), bob.stop(), hub.stop()]);
  }
}

await main();
