import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519PublicToX25519Native, P, bigToLE32, mod, powP58 } from '../src/field25519.ts';

const noble = (k: Uint8Array): Uint8Array | null => {
  try {
    return ed25519.utils.toMontgomery(k);
  } catch {
    return null;
  }
};

function same(k: Uint8Array): void {
  assert.deepEqual(ed25519PublicToX25519Native(k), noble(k), Buffer.from(k).toString('hex'));
}

const withSign = (y: bigint, sign: boolean): Uint8Array => {
  const b = bigToLE32(y);
  if (sign) b[31]! |= 0x80;
  return b;
};

test('powP58 matches BigInt exponentiation', () => {
  const e = (P - 5n) / 8n;
  for (const x of [0n, 1n, 2n, P - 1n, 123456789n ** 5n]) {
    let r = 1n;
    let b = mod(x);
    for (let k = e; k > 0n; k >>= 1n) {
      if (k & 1n) r = (r * b) % P;
      b = (b * b) % P;
    }
    assert.equal(powP58(x), r);
  }
});

test('ed25519PublicToX25519Native equals noble toMontgomery on valid keys', () => {
  for (let i = 0; i < 300; i++) {
    const k = ed25519.getPublicKey(ed25519.utils.randomSecretKey());
    const u = ed25519PublicToX25519Native(k);
    assert.ok(u);
    assert.deepEqual(u, noble(k));
  }
});

test('ed25519PublicToX25519Native equals noble on random bytes (about half are not points)', () => {
  let nulls = 0;
  for (let i = 0; i < 1000; i++) {
    const k = crypto.getRandomValues(new Uint8Array(32));
    if (noble(k) === null) nulls++;
    same(k);
  }
  assert.ok(nulls > 100, 'random bytes exercise the non-square path');
});

test('ed25519PublicToX25519Native equals noble on edge and small-order inputs', () => {
  const ys = [0n, 1n, 2n, P - 1n, P - 2n, P, P + 1n, P + 18n, 2n ** 255n - 1n];
  for (const y of ys) for (const sign of [false, true]) same(withSign(y, sign));
  // The eight small-order points (torsion subgroup), in both sign encodings.
  const T = ed25519.Point.BASE.multiply(1n).subtract(ed25519.Point.BASE); // identity
  let g = ed25519.Point.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a');
  for (let i = 0; i < 8; i++) {
    const b = g.toBytes();
    same(b);
    const flipped = Uint8Array.from(b);
    flipped[31]! ^= 0x80;
    same(flipped);
    g = g.add(ed25519.Point.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'));
  }
  same(T.toBytes());
  // y = 0 (x² = 1/1 → points (±1, 0)), both signs; y = −1 with the sign bit set is rejected.
  assert.equal(ed25519PublicToX25519Native(withSign(P - 1n, true)), null);
  assert.deepEqual(ed25519PublicToX25519Native(withSign(P - 1n, false)), new Uint8Array(32));
  // Wrong lengths and a non-canonical y (y + p fits in 255 bits for small y).
  assert.equal(ed25519PublicToX25519Native(new Uint8Array(31)), null);
  assert.equal(ed25519PublicToX25519Native(new Uint8Array(33)), null);
  for (let y = 0n; y < 19n; y++) assert.equal(ed25519PublicToX25519Native(withSign(P + y, false)), null);
});
