/**
 * The Delivery contract (src/delivery.ts) as a suite every adapter runs: memory, mailbox,
 * services (a loopback hub) and Waku (a bootstrap node with a store). An adapter factory gives a
 * sender, a receiver, how the sender reaches the receiver, and the receiver's route.
 *
 * What the contract promises, and so what is asserted: what is sent reaches a subscriber of the
 * route, byte for byte (duplicates are allowed, so the suite counts distinct envelopes); fetch
 * hands back what the route holds with a cursor after which those envelopes do not come again;
 * a closed subscription gets nothing more; close() is idempotent and a closed delivery refuses
 * to publish. Nothing waits on a sleep: a second subscriber is the witness that a send arrived.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { DeliveredEnvelope, Delivery } from '../src/delivery.ts';
import { waitFor } from './helpers.ts';

export interface DeliveryPair {
  readonly sender: Delivery;
  readonly receiver: Delivery;
  /** The receiver's route (what it subscribes to and fetches). */
  readonly route: string;
  /** Sends bytes from the sender to the receiver (publish, or the adapter's own way). */
  send(bytes: Uint8Array): Promise<void>;
  /** A second receiver of the same route, for adapters that can have one (witness of arrival). */
  witness?(): Promise<Delivery>;
}

export interface DeliveryAdapter {
  readonly name: string;
  /** Per-suite set-up (servers); returns a teardown. */
  setUp?(): Promise<() => Promise<void>>;
  /** A fresh, connected pair for one test. */
  pair(): Promise<DeliveryPair>;
  readonly timeoutMs?: number;
}

const key = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** An envelope-sized random payload, distinct per call. */
function envelope(size = 200): Uint8Array {
  return new Uint8Array(randomBytes(size));
}

async function closeAll(...ds: Delivery[]): Promise<void> {
  for (const d of ds) await d.close();
}

/** Fetches from `since` until `want` distinct envelopes were seen (or the deadline), following cursors. */
async function fetchUntil(d: Delivery, route: string, want: ReadonlySet<string>, timeoutMs: number): Promise<{ seen: Map<string, DeliveredEnvelope>; cursor: string | null }> {
  const seen = new Map<string, DeliveredEnvelope>();
  let cursor: string | null = null;
  const deadline = Date.now() + timeoutMs;
  while ([...want].some((k) => !seen.has(k))) {
    if (Date.now() > deadline) throw new Error(`fetch returned ${seen.size} of ${want.size} envelopes`);
    const page = await d.fetch(route, cursor);
    for (const e of page.envelopes) seen.set(key(e.bytes), e);
    cursor = page.cursor;
    if (page.envelopes.length === 0) await new Promise((r) => setTimeout(r, 20));
  }
  return { seen, cursor };
}

export function deliveryContractSuite(adapter: DeliveryAdapter): void {
  const timeout = adapter.timeoutMs ?? 20_000;
  describe(`Delivery contract: ${adapter.name}`, { timeout: timeout * 4 }, () => {
    let teardown: (() => Promise<void>) | undefined;
    before(async () => {
      teardown = await adapter.setUp?.();
    });
    after(async () => {
      await teardown?.();
    });

    test('what is sent reaches a subscriber of the route, byte for byte, each at least once', async () => {
      const p = await adapter.pair();
      try {
        const got = new Map<string, DeliveredEnvelope>();
        const sub = p.receiver.subscribe([p.route], (e) => {
          got.set(key(e.bytes), e);
          return Promise.resolve(true);
        });
        const sent = Array.from({ length: 5 }, (_, i) => envelope(100 + i * 37));
        for (const b of sent) await p.send(b);
        await waitFor(() => sent.every((b) => got.has(key(b))), timeout, `${adapter.name}: 5 pushes`);
        for (const b of sent) {
          const e = got.get(key(b))!;
          assert.deepEqual(new Uint8Array(e.bytes), b);
          assert.equal(typeof e.route, 'string');
        }
        assert.equal(got.size, sent.length, 'nothing that was not sent');
        sub.close();
      } finally {
        await closeAll(p.sender, p.receiver);
      }
    });

    test('fetch returns what the route holds, and after its cursor those envelopes do not come again', async () => {
      const p = await adapter.pair();
      try {
        const sent = Array.from({ length: 3 }, () => envelope());
        for (const b of sent) await p.send(b);
        const want = new Set(sent.map(key));
        const { seen, cursor } = await fetchUntil(p.receiver, p.route, want, timeout);
        for (const b of sent) assert.deepEqual(new Uint8Array(seen.get(key(b))!.bytes), b);
        const again = await p.receiver.fetch(p.route, cursor);
        for (const e of again.envelopes) assert.ok(!want.has(key(e.bytes)), 'an envelope came back after its cursor');
      } finally {
        await closeAll(p.sender, p.receiver);
      }
    });

    test('a closed subscription gets nothing more', async () => {
      const p = await adapter.pair();
      if (p.witness === undefined) {
        await closeAll(p.sender, p.receiver);
        return; // the adapter has one receiver per route: the push test covers it
      }
      const witness = await p.witness();
      try {
        const first = new Set<string>();
        const seenByWitness = new Set<string>();
        const sub = p.receiver.subscribe([p.route], (e) => {
          first.add(key(e.bytes));
          return Promise.resolve(true);
        });
        const w = witness.subscribe([p.route], (e) => {
          seenByWitness.add(key(e.bytes));
          return Promise.resolve(true);
        });
        const one = envelope();
        await p.send(one);
        await waitFor(() => first.has(key(one)) && seenByWitness.has(key(one)), timeout, 'the first envelope at both');
        sub.close();
        const two = envelope();
        await p.send(two);
        await waitFor(() => seenByWitness.has(key(two)), timeout, 'the witness to get the second');
        assert.ok(!first.has(key(two)), 'a closed subscription was still pushed to');
        w.close();
      } finally {
        await closeAll(p.sender, p.receiver, witness);
      }
    });

    test('close() is idempotent, and a closed delivery refuses to publish', async () => {
      const p = await adapter.pair();
      await closeAll(p.receiver);
      await p.sender.close();
      await p.sender.close();
      await assert.rejects(p.send(envelope()));
    });
  });
}
