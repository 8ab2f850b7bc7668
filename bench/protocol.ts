/**
 * Benchmarks of the protocol engine (ours), measured the same way as bench/libsignal:
 * 100 B messages, each count = one encrypt (send) + one decrypt (classify + commit) including
 * the wire encoding. Median of `runs` timed runs after a warm-up.
 */
import { Engine, serializeConversation, wire, type CryptoProvider, type PrivateConversation } from '../packages/protocol/src/index.ts';
// Internals measured on their own (not public API).
import { HOUR_MS } from '../packages/protocol/src/hints.ts';
import { syntheticConversation } from '../packages/protocol/test/synthetic.ts';

export const T0 = Date.UTC(2026, 10, 22, 12, 30);

export function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const text100 = wire.create(wire.ContentSchema, { kind: { case: 'text', value: wire.create(wire.TextSchema, { body: 'x'.repeat(100) }) } });
const body = { case: 'content' as const, value: text100 };

export async function pair(crypto: CryptoProvider) {
  const bob = Engine.create(crypto, T0);
  const alice = Engine.create(crypto, T0);
  const inv = bob.createInvitation({ nowMs: T0, reusable: false, ttlSeconds: 3600, presentation: { name: 'Bob' } });
  const t = performance.now();
  const acc = await alice.acceptInvitation(inv.text, { nowMs: T0, presentation: { name: 'Alice' } });
  const r = await bob.receive(acc.outgoing.envelope, T0);
  // Accept + first read, as libsignal's setup figure (its bundle's keys and signatures are made outside it).
  const setupMs = performance.now() - t;
  if (r.kind !== 'readable') throw new Error('handshake failed');
  return { alice, bob, id: acc.conversation.id, firstEnvelopeBytes: acc.outgoing.envelope.length, setupMs };
}

async function exchange(from: Engine, to: Engine, id: string): Promise<number> {
  const out = from.send(id, body, T0);
  const r = await to.classify(out.outgoing.envelope, T0);
  if (r.kind !== 'readable') throw new Error(`undecryptable: ${JSON.stringify(r)}`);
  to.commit(r.changes);
  return out.outgoing.envelope.length;
}

export interface ProtocolBench {
  oneWayMsgsPerSec: number;
  pingPongMsgsPerSec: number;
  sessionSetupMs: number;
  firstMessageBytes: number;
  messageBytes: number;
}

export async function benchProtocol(crypto: CryptoProvider, messages = 2000, runs = 5): Promise<ProtocolBench> {
  const setups: number[] = [];
  let firstMessageBytes = 0;
  for (let i = 0; i < Math.max(runs, 5) + 2; i++) {
    const p = await pair(crypto);
    if (i >= 2) setups.push(p.setupMs);
    firstMessageBytes = p.firstEnvelopeBytes;
  }
  const { alice, bob, id } = await pair(crypto);
  await exchange(bob, alice, id);
  let messageBytes = 0;
  for (let i = 0; i < 200; i++) messageBytes = await exchange(alice, bob, id); // warm-up
  const oneWay: number[] = [];
  const pingPong: number[] = [];
  for (let r = 0; r < runs; r++) {
    let t = performance.now();
    for (let i = 0; i < messages; i++) await exchange(alice, bob, id);
    oneWay.push(messages / ((performance.now() - t) / 1000));
    t = performance.now();
    for (let i = 0; i < messages; i++) await exchange(i % 2 === 0 ? alice : bob, i % 2 === 0 ? bob : alice, id);
    pingPong.push(messages / ((performance.now() - t) / 1000));
  }
  return {
    oneWayMsgsPerSec: median(oneWay),
    pingPongMsgsPerSec: median(pingPong),
    sessionSetupMs: median(setups),
    firstMessageBytes,
    messageBytes,
  };
}

/** Our counterpart of libsignalRunner: warmed-up sessions, timed run by run (msgs/s per call). */
export async function umbraRunner(crypto: CryptoProvider): Promise<{ oneWay(n: number): Promise<number>; pingPong(n: number): Promise<number>; setup(): Promise<number> }> {
  const a = await pair(crypto);
  const b = await pair(crypto);
  await exchange(a.bob, a.alice, a.id);
  await exchange(b.bob, b.alice, b.id);
  for (let i = 0; i < 500; i++) await exchange(a.alice, a.bob, a.id);
  for (let i = 0; i < 500; i++) await exchange(i % 2 === 0 ? b.alice : b.bob, i % 2 === 0 ? b.bob : b.alice, b.id);
  return {
    async oneWay(n) {
      const t = performance.now();
      for (let i = 0; i < n; i++) await exchange(a.alice, a.bob, a.id);
      return n / ((performance.now() - t) / 1000);
    },
    async pingPong(n) {
      const t = performance.now();
      for (let i = 0; i < n; i++) await exchange(i % 2 === 0 ? b.alice : b.bob, i % 2 === 0 ? b.bob : b.alice, b.id);
      return n / ((performance.now() - t) / 1000);
    },
    /**
     * One session setup (ms), timed like libsignal's: accepting the invitation (parse, verify,
     * PQXDH, first message) and reading that first envelope; the engines and the invitation
     * (key generation, signatures: libsignal's bundle) are made before the clock starts.
     */
    async setup() {
      return (await pair(crypto)).setupMs;
    },
  };
}

/**
 * A receiver with `total` conversations (synthetic sessions from random keys, plus one real
 * peer) and a stream of that peer's envelopes, pre-encrypted so only classification is timed.
 * `run(n)` classifies (and commits) the next n envelopes and returns msgs/s, so two receivers
 * can be measured in alternating rounds.
 */
export async function classifyReceiver(crypto: CryptoProvider, total: number, envelopes: number) {
  const { alice, bob, id } = await pair(crypto);
  await exchange(bob, alice, id);
  // The JS heap plus ArrayBuffer memory (the hint table lives in typed arrays, off the heap),
  // from before the conversations are made to after the engine holds them: ratchet states,
  // conversation records and the engine's indexes.
  const memory = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  global.gc?.();
  const heapBefore = memory();
  const extra: PrivateConversation[] = [];
  for (let i = 1; i < total; i++) extra.push(syntheticConversation(crypto, i, T0));
  // As the client opens: each record serialized in its own buffer (a store row) and handed over
  // encoded (storedConversations), the engine decoding one when it is used. Once the engine holds
  // them the caller drops the records, so the memory figure is what an open engine keeps.
  const open = (): { receiver: Engine; engineOpenMs: number } => {
    const records = [...bob.conversations(), ...extra].map((c) => serializeConversation(c));
    extra.length = 0;
    const t = performance.now();
    const engine = new Engine(crypto, { account: bob.account, inboxes: bob.allInboxes(), conversations: [], storedConversations: records }, T0);
    return { receiver: engine, engineOpenMs: performance.now() - t };
  };
  const { receiver, engineOpenMs } = open();
  // The table is built after open, in the slices a client's tick() / indexHints() runs.
  const indexing = await slices(receiver, T0);
  global.gc?.();
  const heapAfter = memory();
  const stream: Uint8Array[] = [];
  for (let i = 0; i < envelopes; i++) stream.push(alice.send(id, body, T0).outgoing.envelope);
  let next = 0;
  return {
    conversations: total,
    /** new Engine(...) over the encoded records: the protocol's share of opening a client. */
    engineOpenMs,
    /** Building the hint table after open, one tick() slice per call (the event loop runs between them). */
    indexing,
    heapBytesPerConversation: (heapAfter - heapBefore) / total,
    hintEntries: () => receiver.hintTableSize(),
    async run(count: number): Promise<number> {
      if (next + count > stream.length) throw new Error('classifyReceiver: stream exhausted');
      const t = performance.now();
      for (const end = next + count; next < end; next++) {
        const r = await receiver.classify(stream[next]!, T0);
        if (r.kind !== 'readable') throw new Error(`classify: ${r.kind}`);
        receiver.commit(r.changes);
      }
      return count / ((performance.now() - t) / 1000);
    },
    /**
     * The hourly rollover as a client drives it: tick() at the new hour, then again while
     * hintWorkPending() (each call indexes a bounded slice). The longest call is the figure
     * that matters (it blocks the event loop); the total is the hour's work.
     */
    tickRollover(): Promise<SliceFigures> {
      return slices(receiver, T0 + HOUR_MS);
    },
  };
}

export interface SliceFigures {
  calls: number;
  maxCallMs: number;
  /** 99th percentile of the calls' durations. */
  p99CallMs: number;
  medianCallMs: number;
  /** Calls over 10 ms (the bound on one call). */
  callsOver10Ms: number;
  totalMs: number;
}

/**
 * tick(nowMs) once, then again while hintWorkPending(), one call per macrotask as the client's
 * indexHints() runs them (V8's GC tasks run between slices, not inside them): the calls'
 * durations, the longest, p99, the sum.
 */
export async function slices(engine: Engine, nowMs: number): Promise<SliceFigures> {
  const ms: number[] = [];
  do {
    await new Promise((resolve) => setImmediate(resolve));
    const t = performance.now();
    engine.tick(nowMs);
    ms.push(performance.now() - t);
  } while (engine.hintWorkPending());
  return sliceFigures(ms);
}

export function sliceFigures(ms: readonly number[]): SliceFigures {
  const sorted = ms.slice().sort((a, b) => a - b);
  return {
    calls: ms.length,
    maxCallMs: sorted[sorted.length - 1] ?? 0,
    p99CallMs: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0,
    medianCallMs: sorted[Math.floor(sorted.length / 2)] ?? 0,
    callsOver10Ms: ms.filter((x) => x > 10).length,
    totalMs: ms.reduce((a, b) => a + b, 0),
  };
}

/**
 * The primitive floor of a message, run as a loop of exactly the provider calls one message
 * makes (same key, nonce, header, padded-body and AD sizes), with no protocol code between
 * them: msgs/s that no implementation of this protocol on this provider can beat.
 *
 *   one way, per message: 2 HMAC-SHA512 (sending and receiving chain steps) + ½ HMAC-SHA512
 *     (hint blocks: one per 4 envelopes on each side) + AEAD seal and open of the 40 B header
 *     and the 256 B padded body (AD = conversation AD ‖ hint ‖ encrypted header) + random bytes
 *     (2 nonces, message id, envelope salt);
 *   ping-pong adds the receiver's DH ratchet step: one X25519 key generation, one X25519 with
 *     the peer's new ratchet key (an array it has not seen: imported), one with it again, and
 *     two root-KDF HKDFs of 96 B.
 */
export function floorRunner(crypto: CryptoProvider): { oneWay(n: number): number; pingPong(n: number): number } {
  const key = crypto.randomBytes(32);
  const chainKey = crypto.randomBytes(32);
  const hintKey = crypto.randomBytes(32);
  const hintInput = crypto.randomBytes(21);
  const header = crypto.randomBytes(40);
  const body = crypto.randomBytes(256);
  const adBase = crypto.randomBytes(64 + 1 + 32);
  const empty = new Uint8Array(0);
  const chainInput = Uint8Array.of(1);
  const peer = crypto.x25519Generate();
  const rootKey = crypto.randomBytes(32);
  const rootLabel = new TextEncoder().encode('umbra/v1/ratchet-root');
  const message = (i: number, step: boolean): void => {
    // sender
    crypto.hmacSha512(chainKey, chainInput);
    if (i % 4 === 0) crypto.hmacSha512(hintKey, hintInput);
    crypto.randomBytes(16);
    const headerNonce = crypto.randomBytes(12);
    const sealedHeader = crypto.aeadSeal(key, headerNonce, header, empty);
    const aad = new Uint8Array(adBase.length + 12 + sealedHeader.length);
    aad.set(adBase, 0);
    const bodyNonce = crypto.randomBytes(12);
    const sealedBody = crypto.aeadSeal(key, bodyNonce, body, aad);
    crypto.randomBytes(8);
    // receiver
    if (crypto.aeadOpen(key, headerNonce, sealedHeader, empty) === null) throw new Error('floor: header');
    if (step) {
      const fresh = peer.publicKey.slice(); // the peer's new ratchet key arrives as new bytes
      const dh1 = crypto.x25519(key, fresh)!;
      crypto.hkdfSha256(dh1, rootKey, rootLabel, 96);
      const next = crypto.x25519Generate();
      const dh2 = crypto.x25519(next.secretKey, fresh)!;
      crypto.hkdfSha256(dh2, rootKey, rootLabel, 96);
    }
    crypto.hmacSha512(chainKey, chainInput);
    if (crypto.aeadOpen(key, bodyNonce, sealedBody, aad) === null) throw new Error('floor: body');
    if (i % 4 === 2) crypto.hmacSha512(hintKey, hintInput);
  };
  const run = (n: number, step: boolean): number => {
    const t = performance.now();
    for (let i = 0; i < n; i++) message(i, step);
    return n / ((performance.now() - t) / 1000);
  };
  for (let i = 0; i < 200; i++) message(i, i % 2 === 0); // warm-up
  return { oneWay: (n) => run(n, false), pingPong: (n) => run(n, true) };
}

export interface MessageSplit {
  /** µs per message: all of it, inside provider calls, and the rest (protocol code, GC). */
  readonly totalUs: number;
  readonly primitivesUs: number;
  readonly restUs: number;
}

/**
 * Where a message's time goes: umbraRunner's one-way and ping-pong loops over a provider that
 * adds up the time inside its calls (each call costs two performance.now(), ≈ 0.1 µs, which
 * counts as primitive time). Medians of `runs` runs of `n` messages.
 */
export async function messageSplit(crypto: CryptoProvider, n = 1000, runs = 7): Promise<{ oneWay: MessageSplit; pingPong: MessageSplit }> {
  let spent = 0;
  const timed: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(crypto)) {
    if (typeof value !== 'function') {
      timed[name] = value;
      continue;
    }
    const fn = value as (...args: unknown[]) => unknown;
    timed[name] = (...args: unknown[]) => {
      const t = performance.now();
      const result = fn.apply(crypto, args);
      if (result instanceof Promise) return result.finally(() => (spent += performance.now() - t));
      spent += performance.now() - t;
      return result;
    };
  }
  const runner = await umbraRunner(timed as unknown as CryptoProvider);
  const measure = async (run: (k: number) => Promise<number>): Promise<MessageSplit> => {
    const totals: number[] = [];
    const prims: number[] = [];
    for (let r = 0; r < runs; r++) {
      spent = 0;
      const t = performance.now();
      await run(n);
      totals.push(((performance.now() - t) * 1000) / n);
      prims.push((spent * 1000) / n);
    }
    const totalUs = median(totals);
    const primitivesUs = median(prims);
    return { totalUs, primitivesUs, restUs: totalUs - primitivesUs };
  };
  const oneWay = await measure((k) => runner.oneWay(k));
  const pingPong = await measure((k) => runner.pingPong(k));
  return { oneWay, pingPong };
}
