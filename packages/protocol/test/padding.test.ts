import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pad, unpad, PADDING_BUCKETS, MAX_PADDED_PLAINTEXT } from '../src/padding.ts';

describe('padding', () => {
  it('pads to the smallest bucket that fits and unpads exactly', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (b) => {
        const p = pad(b)!;
        assert.ok((PADDING_BUCKETS as readonly number[]).includes(p.length));
        assert.ok(p.length > b.length);
        const smaller = PADDING_BUCKETS.filter((x) => x < p.length);
        assert.ok(smaller.every((x) => x <= b.length));
        assert.deepEqual(unpad(p), b);
      }),
      { numRuns: 200 },
    );
  });
  it('boundaries: 255 → 256, 256 → 1024, the largest fits, one more does not', () => {
    assert.equal(pad(new Uint8Array(255))!.length, 256);
    assert.equal(pad(new Uint8Array(256))!.length, 1024);
    assert.equal(pad(new Uint8Array(MAX_PADDED_PLAINTEXT))!.length, 65536);
    assert.equal(pad(new Uint8Array(MAX_PADDED_PLAINTEXT + 1)), null);
  });
  it('rejects malformed padding', () => {
    assert.equal(unpad(new Uint8Array(256)), null); // no marker
    assert.equal(unpad(new Uint8Array(100)), null); // not a bucket
    const p = pad(Uint8Array.of(1, 2, 3))!;
    p[200] = 1;
    assert.equal(unpad(p), null);
  });
});
