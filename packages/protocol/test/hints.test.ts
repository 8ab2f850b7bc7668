import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nobleProvider as crypto } from '../src/crypto/noble.ts';
import {
  HintTable,
  HINT_WINDOW,
  HOUR_MS,
  advanceToHour,
  computeHint,
  diffSlots,
  initialReceiveState,
  listenedSlots,
  markSeen,
  nextSendHint,
} from '../src/hints.ts';
import { toHex, u32be, utf8 } from '../src/bytes.ts';

describe('hints', () => {
  it('are 32 lowercase hex chars, differ per index, hour and key', () => {
    const k1 = crypto.randomBytes(32);
    const k2 = crypto.randomBytes(32);
    const h = computeHint(crypto, k1, 500000, 0);
    assert.match(h, /^[0-9a-f]{32}$/);
    assert.notEqual(h, computeHint(crypto, k1, 500000, 1));
    assert.notEqual(h, computeHint(crypto, k1, 500001, 0));
    assert.notEqual(h, computeHint(crypto, k2, 500000, 0));
  });

  it('sender indices count up within an hour and restart at the next', () => {
    const k = crypto.randomBytes(32);
    let s = { hour: 0, nextIndex: 0 };
    const t = 1000 * HOUR_MS;
    const a = nextSendHint(crypto, k, s, t);
    s = a.state;
    const b = nextSendHint(crypto, k, s, t + 10);
    s = b.state;
    assert.equal(a.hint, computeHint(crypto, k, 1000, 0));
    assert.equal(b.hint, computeHint(crypto, k, 1000, 1));
    const c = nextSendHint(crypto, k, s, t + HOUR_MS);
    assert.equal(c.hint, computeHint(crypto, k, 1001, 0));
  });

  it('the receive window listens for the next HINT_WINDOW indices of three hours', () => {
    const w = initialReceiveState(1000);
    const slots = listenedSlots(w);
    assert.equal(slots.length, 3 * HINT_WINDOW);
    assert.deepEqual([...new Set(slots.map((s) => s.hour))], [999, 1000, 1001]);
  });

  it('property: any order of arrivals within the window marks each index once', () => {
    fc.assert(
      fc.property(fc.shuffledSubarray([...Array(HINT_WINDOW).keys()], { minLength: 1 }), (order) => {
        let w = initialReceiveState(1000);
        for (const i of order) {
          const next = markSeen(w, 1000, i);
          assert.ok(next !== null, `index ${i} is listened for`);
          w = next;
          assert.equal(markSeen(w, 1000, i), null, 'a second arrival is not');
        }
        // Everything not yet seen below the highest is still listened for.
        const highest = Math.max(...order);
        const listened = new Set(listenedSlots(w).filter((s) => s.hour === 1000).map((s) => s.index));
        for (let i = 0; i <= highest; i++) assert.equal(listened.has(i), !order.includes(i));
        for (let i = highest + 1; i <= highest + HINT_WINDOW; i++) assert.ok(listened.has(i));
      }),
    );
  });

  it('the window slides with a long in-order stream (no stall on a lost index)', () => {
    let w = initialReceiveState(1000);
    for (let i = 0; i < 500; i++) {
      if (i === 3) continue; // lost forever
      const next = markSeen(w, 1000, i);
      assert.ok(next, `index ${i}`);
      w = next;
    }
    assert.equal(markSeen(w, 1000, 3), null, 'too old to be listened for once far behind');
  });

  it('a receiver that missed everything is back in step at the next hour', () => {
    let w = initialReceiveState(1000);
    // The sender sent 10,000 envelopes in hour 1000, all lost; then one at hour 1001 index 0.
    assert.equal(markSeen(w, 1000, 9999), null);
    w = advanceToHour(w, 1001);
    assert.ok(markSeen(w, 1001, 0));
    // And after a week offline:
    const later = advanceToHour(w, 1001 + 24 * 7);
    assert.ok(markSeen(later, 1001 + 24 * 7, 0));
    assert.equal(later.hours.length, 3);
  });

  it('diffSlots reports exactly what changed', () => {
    const w = initialReceiveState(1000);
    const w2 = markSeen(w, 1000, 0)!;
    const d = diffSlots(w, w2);
    assert.deepEqual(d.removed, [{ hour: 1000, index: 0 }]);
    assert.deepEqual(d.added, [{ hour: 1000, index: HINT_WINDOW }]);
  });

  it('HintTable: lookup confirms the full hint; foreign, uppercase and truncated hints miss', () => {
    const table = new HintTable<string>(crypto);
    const keys = Array.from({ length: 50 }, () => crypto.randomBytes(32));
    keys.forEach((k, n) => {
      for (const slot of listenedSlots(initialReceiveState(1000))) table.add(`c${n}`, k, slot);
    });
    assert.equal(table.size, 50 * 3 * HINT_WINDOW);
    const h = computeHint(crypto, keys[7]!, 1000, 5);
    assert.deepEqual(table.lookup(h), { owner: 'c7', slot: { hour: 1000, index: 5 } });
    assert.equal(table.lookup(h.toUpperCase()), null);
    assert.equal(table.lookup(h.slice(0, 30)), null);
    // Not a hint at all: no candidate, even one that shares the key's 8 digits.
    for (const bad of [h.toUpperCase(), h.slice(0, 31), `${h}0`, `${h.slice(0, 20)}g${h.slice(21)}`, `${h.slice(0, 31)}G`, `${h.slice(0, 8)}${'-'.repeat(24)}`]) {
      assert.deepEqual(table.candidates(bad), [], bad);
    }
    assert.equal(table.candidates(h).length, 1);
    // Same 31-bit prefix, different tail: must not match.
    const forged = h.slice(0, 8) + (h[8] === '0' ? '1' : '0') + h.slice(9);
    assert.equal(table.lookup(forged), null);
    assert.equal(table.lookup(computeHint(crypto, crypto.randomBytes(32), 1000, 5)), null);
    table.remove('c7', keys[7]!, { hour: 1000, index: 5 });
    assert.equal(table.lookup(h), null);
    assert.equal(table.size, 50 * 3 * HINT_WINDOW - 1);
  });

  it('HintTable.candidates: a 31-bit key match is a candidate that confirms() rejects unless the hint is exact', () => {
    const table = new HintTable<string>(crypto);
    const k = crypto.randomBytes(32);
    for (const slot of listenedSlots(initialReceiveState(1000))) table.add('c', k, slot);
    const h = computeHint(crypto, k, 1000, 9);
    const [hit, ...rest] = table.candidates(h);
    assert.deepEqual(hit, { owner: 'c', slot: { hour: 1000, index: 9 } });
    assert.equal(rest.length, 0);
    assert.equal(table.confirms(h, hit!), true);
    const sameKey = h.slice(0, 8) + (h[8] === 'f' ? 'e' : 'f') + h.slice(9);
    assert.deepEqual(table.candidates(sameKey), [hit]);
    assert.equal(table.confirms(sameKey, hit!), false);
    assert.equal(table.confirms(computeHint(crypto, k, 1000, 10), hit!), false);
    assert.deepEqual(table.candidates(h.toUpperCase()), []);
    assert.deepEqual(table.candidates('zz'), []);
  });

  it('hints come in HMAC-SHA512 blocks of four, whatever order they are computed in', () => {
    const k = crypto.randomBytes(32);
    const block = (hour: number, b: number) => {
      const input = new Uint8Array([...utf8('umbra/v1/hint'), ...u32be(hour), ...u32be(b)]);
      return crypto.hmacSha512(k, input);
    };
    const expected = (hour: number, i: number) => toHex(block(hour, Math.floor(i / 4)).subarray(16 * (i % 4), 16 * (i % 4) + 16));
    const order = [0, 5, 1, 4, 3, 2, 9, 7, 6, 8, 100, 0];
    for (const i of order) assert.equal(computeHint(crypto, k, 1000, i), expected(1000, i), `index ${i}`);
    assert.equal(computeHint(crypto, k, 1001, 5), expected(1001, 5));
    // The memo is keyed by the key array: overwriting it in place must not give stale hints.
    const before = computeHint(crypto, k, 1000, 1);
    k[0]! ^= 1;
    assert.notEqual(computeHint(crypto, k, 1000, 1), before);
    assert.equal(computeHint(crypto, k, 1000, 1), expected(1000, 1));
  });

  it('HintTable.dropHoursBefore forgets whole hours at once', () => {
    const table = new HintTable<string>(crypto);
    const k = crypto.randomBytes(32);
    for (const slot of listenedSlots(initialReceiveState(1000))) table.add('c', k, slot);
    const h999 = computeHint(crypto, k, 999, 3);
    const h1001 = computeHint(crypto, k, 1001, 3);
    assert.ok(table.lookup(h999) && table.lookup(h1001));
    table.dropHoursBefore(1000);
    assert.equal(table.lookup(h999), null);
    assert.ok(table.lookup(h1001));
    assert.equal(table.size, 2 * HINT_WINDOW);
    table.remove('c', k, { hour: 999, index: 4 }); // already gone: a no-op
    assert.equal(table.size, 2 * HINT_WINDOW);
  });

  it('HintTable: indices beyond the packed range (a very busy hour) still route and remove', () => {
    const table = new HintTable<string>(crypto);
    const k = crypto.randomBytes(32);
    const slot = { hour: 1000, index: 20_000 };
    table.add('busy', k, slot);
    const h = computeHint(crypto, k, slot.hour, slot.index);
    assert.deepEqual(table.lookup(h), { owner: 'busy', slot });
    table.remove('busy', k, slot);
    assert.equal(table.lookup(h), null);
    assert.equal(table.size, 0);
  });
});

