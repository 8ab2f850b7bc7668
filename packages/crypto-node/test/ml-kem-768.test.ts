// PQClean's ML-KEM-768 (native, through pqclean) against noble's: each side's keys and ciphertexts work on the
// other, implicit rejection gives the same secret, malformed inputs give null on both.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nobleProvider, toHex } from '@umbra/protocol';
import { mlKem768DecapsulateNative, mlKem768EncapsulateNative, mlKem768GenerateNative } from '../src/ml-kem-768.ts';

const noble = nobleProvider;

describe('ML-KEM-768 on PQClean (native) against noble', () => {
  it('a PQClean key pair is a valid FIPS 203 pair for noble (public key embedded in the secret key)', () => {
    for (let i = 0; i < 5; i++) {
      const kp = mlKem768GenerateNative();
      assert.equal(kp.publicKey.length, 1184);
      assert.equal(kp.secretKey.length, 2400);
      assert.equal(toHex(kp.secretKey.subarray(1152, 1152 + 1184)), toHex(kp.publicKey));
      const enc = noble.mlKem768Encapsulate(kp.publicKey)!;
      assert.equal(toHex(mlKem768DecapsulateNative(enc.ciphertext, kp.secretKey)!), toHex(enc.sharedSecret));
    }
  });

  it('PQClean encapsulates to noble keys (seeded) and noble decapsulates it', () => {
    for (let i = 0; i < 5; i++) {
      const kp = noble.mlKem768Generate(noble.randomBytes(64));
      const enc = mlKem768EncapsulateNative(kp.publicKey)!;
      assert.equal(enc.ciphertext.length, 1088);
      assert.equal(toHex(noble.mlKem768Decapsulate(enc.ciphertext, kp.secretKey)!), toHex(enc.sharedSecret));
      assert.equal(toHex(mlKem768DecapsulateNative(enc.ciphertext, kp.secretKey)!), toHex(enc.sharedSecret));
    }
  });

  it('implicit rejection: a modified ciphertext gives the same pseudo-random secret on both', () => {
    const kp = noble.mlKem768Generate(noble.randomBytes(64));
    const enc = mlKem768EncapsulateNative(kp.publicKey)!;
    for (const position of [0, 500, 1087]) {
      const bad = enc.ciphertext.slice();
      bad[position]! ^= 1;
      const ours = mlKem768DecapsulateNative(bad, kp.secretKey)!;
      assert.notEqual(toHex(ours), toHex(enc.sharedSecret));
      assert.equal(toHex(ours), toHex(noble.mlKem768Decapsulate(bad, kp.secretKey)!));
    }
  });

  it('malformed inputs give null, never an exception', () => {
    const kp = mlKem768GenerateNative();
    const enc = mlKem768EncapsulateNative(kp.publicKey)!;
    assert.equal(mlKem768EncapsulateNative(kp.publicKey.subarray(1)), null);
    assert.equal(mlKem768EncapsulateNative(new Uint8Array(1185)), null);
    const unreduced = kp.publicKey.slice();
    unreduced[0] = 0xff;
    unreduced[1] = 0xff; // first coefficient 4095 ≥ q: the modulus check fails
    assert.equal(mlKem768EncapsulateNative(unreduced), null);
    assert.equal(noble.mlKem768Encapsulate(unreduced), null);
    assert.equal(mlKem768DecapsulateNative(enc.ciphertext.subarray(1), kp.secretKey), null);
    assert.equal(mlKem768DecapsulateNative(enc.ciphertext, kp.secretKey.subarray(1)), null);
    const inconsistent = kp.secretKey.slice();
    inconsistent[1200]! ^= 1; // inside the embedded public key: H(ek) no longer matches
    assert.equal(mlKem768DecapsulateNative(enc.ciphertext, inconsistent), null);
    assert.equal(noble.mlKem768Decapsulate(enc.ciphertext, inconsistent), null);
  });

  it('fresh randomness per call: two key pairs and two encapsulations differ', () => {
    const a = mlKem768GenerateNative();
    const b = mlKem768GenerateNative();
    assert.notEqual(toHex(a.publicKey), toHex(b.publicKey));
    const e1 = mlKem768EncapsulateNative(a.publicKey)!;
    const e2 = mlKem768EncapsulateNative(a.publicKey)!;
    assert.notEqual(toHex(e1.ciphertext), toHex(e2.ciphertext));
    assert.notEqual(toHex(e1.sharedSecret), toHex(e2.sharedSecret));
  });
});
