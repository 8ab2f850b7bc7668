/** The servers' ristretto255 codec with native exponentiation agrees with noble's, point for point. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ristretto255 } from '@noble/curves/ed25519.js';
import { deriveAddress, generateAddressKey, generateSeed, parseAddress } from '@umbra/protocol/services';
import { decodeRistretto, encodeRistretto, parseAddressNative } from '../src/ristretto-native.ts';

const Rist = ristretto255.Point;

function nobleDecode(b: Uint8Array): InstanceType<typeof Rist> | null {
  try {
    return Rist.fromBytes(b);
  } catch {
    return null;
  }
}

describe('ristretto255 codec with native exponentiation', () => {
  it('decodes and encodes like noble on valid points (RFC 9496 multiples of B, random points)', () => {
    let p = Rist.ZERO;
    for (let i = 0; i < 16; i++) {
      const enc = p.toBytes();
      const d = decodeRistretto(enc);
      assert.ok(d, `multiple ${i}`);
      assert.ok(d.equals(p));
      assert.deepEqual(encodeRistretto(p), enc);
      assert.deepEqual(encodeRistretto(d), enc);
      p = p.add(Rist.BASE);
    }
    for (let i = 0; i < 200; i++) {
      const q = Rist.BASE.multiply(BigInt('0x' + randomBytes(31).toString('hex')) + 1n).add(Rist.fromBytes(generateSeed()));
      const enc = q.toBytes();
      assert.deepEqual(encodeRistretto(q), enc);
      assert.deepEqual(decodeRistretto(enc)!.toBytes(), enc);
      assert.deepEqual(encodeRistretto(q.add(q).subtract(q)), enc); // a non-affine representative
    }
  });

  it('rejects exactly what noble rejects (random, non-canonical and negative encodings)', () => {
    const cases: Uint8Array[] = [new Uint8Array(32).fill(0xff), new Uint8Array(32)];
    for (let i = 0; i < 400; i++) cases.push(new Uint8Array(randomBytes(32)));
    for (let i = 0; i < 100; i++) {
      const b = new Uint8Array(randomBytes(32));
      b[31]! &= 0x7f;
      b[0]! &= 0xfe;
      cases.push(b);
    }
    const pNeg = Rist.BASE.toBytes().slice();
    pNeg[0]! |= 1;
    cases.push(pNeg);
    const overP = new Uint8Array(32).fill(0xff);
    overP[31] = 0x7f;
    overP[0] = 0xee; // p + 1 - 2 = 2^255 - 20 (even, ≥ p? no: p - 1) and neighbours
    cases.push(overP);
    let valid = 0;
    for (const c of cases) {
      const a = decodeRistretto(c);
      const b = nobleDecode(c);
      assert.equal(a === null, b === null, Buffer.from(c).toString('hex'));
      if (a && b) {
        valid++;
        assert.ok(a.equals(b));
      }
    }
    assert.ok(valid > 10);
  });

  it('parseAddressNative = parseAddress', () => {
    const key = generateAddressKey(7);
    for (let i = 0; i < 20; i++) {
      const addr = deriveAddress(generateSeed(), { kid: 7, X: key.X });
      const a = parseAddressNative(addr);
      const b = parseAddress(addr);
      assert.equal(a.kind, 'ok');
      assert.equal(b.kind, 'ok');
      if (a.kind === 'ok' && b.kind === 'ok') {
        assert.equal(a.kid, b.kid);
        assert.ok(a.c1.equals(b.c1) && a.c2.equals(b.c2));
      }
      const bad = addr.slice();
      bad[40]! ^= 0x55;
      assert.equal(parseAddressNative(bad).kind, parseAddress(bad).kind);
    }
    assert.equal(parseAddressNative(new Uint8Array(67)).kind, 'malformed');
  });
});
