import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IntMultiMap } from '../src/int-multimap.ts';

/** Reference model: key → multiset of values. */
function model() {
  const m = new Map<number, number[]>();
  return {
    add: (k: number, v: number) => m.set(k, [...(m.get(k) ?? []), v]),
    delete(k: number, v: number): boolean {
      const vs = m.get(k) ?? [];
      const i = vs.indexOf(v);
      if (i < 0) return false;
      vs.splice(i, 1);
      return true;
    },
    get: (k: number) => (m.get(k) ?? []).slice().sort((a, b) => a - b),
    size: () => [...m.values()].reduce((n, vs) => n + vs.length, 0),
  };
}

describe('IntMultiMap', () => {
  it('behaves like a multimap under random adds and deletes (colliding keys, growth, wrap-around)', () => {
    // Few distinct low bits make long probe runs that wrap around the table end.
    const key = fc.oneof(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 15 }).map((x) => (x << 20) + 63));
    const op = fc.tuple(fc.constantFrom('add', 'add', 'delete', 'deleteMissing'), key, fc.integer({ min: 0, max: 5 }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const map = new IntMultiMap();
        const ref = model();
        const keys = new Set<number>();
        for (const [kind, k, v] of ops) {
          keys.add(k >>> 0);
          if (kind === 'add') {
            map.add(k, v);
            ref.add(k >>> 0, v);
          } else if (kind === 'delete') {
            assert.equal(map.delete(k, v), ref.delete(k >>> 0, v));
          } else {
            assert.equal(map.delete(k, 1000 + v), false);
          }
          assert.equal(map.size, ref.size());
        }
        for (const k of keys) assert.deepEqual(map.get(k).sort((a, b) => a - b), ref.get(k));
      }),
      { numRuns: 300 },
    );
  });

  it('holds a million entries and finds each', () => {
    const map = new IntMultiMap();
    const rand = (i: number) => Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
    for (let i = 0; i < 1_000_000; i++) map.add(rand(i), i);
    assert.equal(map.size, 1_000_000);
    for (let i = 0; i < 1_000_000; i += 997) assert.ok(map.get(rand(i)).includes(i));
    for (let i = 0; i < 1_000_000; i += 2) assert.ok(map.delete(rand(i), i));
    assert.equal(map.size, 500_000);
    for (let i = 1; i < 1_000_000; i += 2000) assert.ok(map.get(rand(i)).includes(i));
    assert.equal(map.get(rand(0)).includes(0), false);
  });

  it('a table sized up front behaves the same, for every storable value from 0 to 2^31 - 1', () => {
    // The property run with a presized table (no growth within it) and the value range's ends.
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2000 }), fc.array(fc.tuple(fc.integer({ min: 0, max: 63 }), fc.constantFrom(0, 1, 0x7ffffffe, 0x7fffffff)), { maxLength: 300 }), (expected, pairs) => {
        const map = new IntMultiMap(expected);
        const ref = model();
        for (const [k, v] of pairs) {
          map.add(k, v);
          ref.add(k, v);
        }
        for (let k = 0; k < 64; k++) assert.deepEqual(map.get(k).sort((a, b) => a - b), ref.get(k));
        for (const [k, v] of pairs) assert.equal(map.delete(k, v), ref.delete(k, v));
        assert.equal(map.size, 0);
        for (let k = 0; k < 64; k++) assert.deepEqual(map.get(k), []);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses values it cannot store', () => {
    const map = new IntMultiMap();
    assert.throws(() => map.add(1, -1), RangeError);
    assert.throws(() => map.add(1, 2 ** 31), RangeError);
    assert.throws(() => map.add(1, 0.5), RangeError);
    assert.equal(map.size, 0);
  });
});
