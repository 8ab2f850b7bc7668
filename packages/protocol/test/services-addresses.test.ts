import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ristretto255 } from '@noble/curves/ed25519.js';
import { numberToBytesLE } from '@noble/curves/utils.js';
import {
  ADDRESS_LENGTH,
  addressKid,
  deriveAddress,
  encodeAddress,
  generateAddressKey,
  generateSeed,
  isValidPoint,
  parseAddress,
  rerandomizeAddress,
  resolveAddress,
} from '../src/services/index.ts';

const P = ristretto255.Point;

function rerand(addr: Uint8Array, key: { kid: number; X: Uint8Array }): Uint8Array {
  const r = rerandomizeAddress(addr, key);
  assert.equal(r.kind, 'ok');
  return (r as { address: Uint8Array }).address;
}

describe('RRA addresses (ElGamal over ristretto255)', () => {
  it('derive → resolve gives back the seed, 68 bytes, kid big-endian first', () => {
    const key = generateAddressKey(0x01020304);
    const M = generateSeed();
    const addr = deriveAddress(M, key);
    assert.equal(addr.length, ADDRESS_LENGTH);
    assert.deepEqual([...addr.subarray(0, 4)], [1, 2, 3, 4]);
    assert.equal(addressKid(addr), 0x01020304);
    assert.deepEqual(resolveAddress(addr, key.x), M);
  });

  it('matches the construction by hand: c1 = k·B, c2 = M + k·X, M = c2 − x·c1', () => {
    const x = 7n;
    const k = 11n;
    const X = P.BASE.multiply(x);
    const M = P.BASE.multiply(1234567n);
    const addr = encodeAddress({ kid: 9, c1: P.BASE.multiply(k).toBytes(), c2: M.add(X.multiply(k)).toBytes() });
    assert.deepEqual(resolveAddress(addr, numberToBytesLE(x, 32)), M.toBytes());
  });

  it('re-randomized addresses resolve to the same seed and share no bytes beyond the kid', () => {
    const key = generateAddressKey(42);
    const M = generateSeed();
    const a = deriveAddress(M, key);
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const b = rerand(a, key);
      assert.deepEqual(resolveAddress(b, key.x), M);
      for (let j = 4; j + 4 <= 68; j++) {
        const w = Buffer.from(b.subarray(j, j + 4)).toString('hex');
        assert.ok(!seen.has(w), 'a 4-byte window repeats across re-randomizations');
        seen.add(w);
      }
    }
  });

  it('another epoch key resolves to something else; a wrong kid is refused when re-randomizing', () => {
    const k1 = generateAddressKey(1);
    const k2 = generateAddressKey(2);
    const M = generateSeed();
    const a = deriveAddress(M, k1);
    assert.notDeepEqual(resolveAddress(a, k2.x), M);
    const r = rerandomizeAddress(a, k2);
    assert.equal(r.kind, 'malformed');
  });

  it('rejects wrong lengths, non-canonical encodings and an identity c1', () => {
    assert.equal(parseAddress(new Uint8Array(67)).kind, 'malformed');
    const bad = new Uint8Array(68).fill(0xff);
    assert.equal(parseAddress(bad).kind, 'malformed');
    assert.equal(resolveAddress(bad, generateAddressKey(1).x), null);
    const key = generateAddressKey(3);
    const identityC1 = encodeAddress({ kid: 3, c1: P.ZERO.toBytes(), c2: generateSeed() });
    const parsed = parseAddress(identityC1);
    assert.equal(parsed.kind, 'malformed');
    assert.equal(rerandomizeAddress(identityC1, key).kind, 'malformed');
    assert.ok(!isValidPoint(P.ZERO.toBytes()));
    assert.ok(isValidPoint(generateSeed()));
    assert.throws(() => deriveAddress(new Uint8Array(32).fill(0xff), key));
  });

  it('shows the malleability that per-relationship seeds and the uniform 202 defend against', () => {
    // Enc(M1)² · Enc(M2)⁻¹ = Enc(2·M1 − M2): resolves to M1 exactly when M1 = M2 (communicator.md §4.5).
    const key = generateAddressKey(5);
    const M1 = generateSeed();
    const M2 = generateSeed();
    const combine = (a: Uint8Array, b: Uint8Array) => {
      const pa = parseAddress(a);
      const pb = parseAddress(b);
      assert.ok(pa.kind === 'ok' && pb.kind === 'ok');
      return encodeAddress({ kid: 5, c1: pa.c1.double().subtract(pb.c1).toBytes(), c2: pa.c2.double().subtract(pb.c2).toBytes() });
    };
    assert.deepEqual(resolveAddress(combine(deriveAddress(M1, key), deriveAddress(M1, key)), key.x), M1);
    assert.notDeepEqual(resolveAddress(combine(deriveAddress(M1, key), deriveAddress(M2, key)), key.x), M1);
  });
});
