/**
 * The protocol's one HPKE construction (src/crypto/hpke.ts) against @hpke/core, the reference
 * implementation of RFC 9180, both ways, on the noble provider (the node:crypto provider runs the
 * same code; its byte-equality with noble is in crypto-conformance.ts, RFC 9180 A.2 there too).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305';
import { CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import { hpkeOpenBase, hpkeSealBase } from '../src/crypto/hpke.ts';
import { nobleProvider as p } from '../src/crypto/noble.ts';

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Chacha20Poly1305() });
const buf = (b: Uint8Array): ArrayBuffer => new Uint8Array(b).buffer;

describe('HPKE (RFC 9180 base, X25519/HKDF-SHA256/ChaCha20-Poly1305) against @hpke/core', () => {
  const shapes = [
    { info: 0, aad: 0, pt: 0 },
    { info: 18, aad: 16, pt: 1 },
    { info: 64, aad: 0, pt: 255 },
    { info: 1, aad: 300, pt: 4096 },
  ];

  it('hpkeSealBase → @hpke/core open', async () => {
    for (const s of shapes) {
      const kp = await suite.kem.generateKeyPair();
      const pkR = new Uint8Array(await suite.kem.serializePublicKey(kp.publicKey));
      const info = p.randomBytes(s.info), aad = p.randomBytes(s.aad), pt = p.randomBytes(s.pt);
      const sealed = hpkeSealBase(p, pkR, info, aad, pt);
      assert.equal(sealed.enc.length, 32);
      assert.equal(sealed.ciphertext.length, s.pt + 16);
      const opened = await suite.open({ recipientKey: kp, enc: buf(sealed.enc), info: buf(info) }, buf(sealed.ciphertext), buf(aad));
      assert.deepEqual(new Uint8Array(opened), pt);
    }
  });

  it('@hpke/core seal → hpkeOpenBase; a changed byte anywhere → null', async () => {
    for (const s of shapes) {
      const r = p.x25519Generate();
      const info = p.randomBytes(s.info), aad = p.randomBytes(s.aad), pt = p.randomBytes(s.pt);
      const sealed = await suite.seal({ recipientPublicKey: await suite.kem.deserializePublicKey(buf(r.publicKey)), info: buf(info) }, buf(pt), buf(aad));
      const enc = new Uint8Array(sealed.enc), ct = new Uint8Array(sealed.ct);
      assert.deepEqual(hpkeOpenBase(p, r.secretKey, enc, info, aad, ct), pt);
      const flip = (b: Uint8Array, i: number): Uint8Array => { const c = new Uint8Array(b); c[i % c.length]! ^= 1; return c; };
      assert.equal(hpkeOpenBase(p, r.secretKey, flip(enc, 7), info, aad, ct), null);
      assert.equal(hpkeOpenBase(p, r.secretKey, enc, info, aad, flip(ct, 3)), null);
      if (s.aad > 0) assert.equal(hpkeOpenBase(p, r.secretKey, enc, info, flip(aad, 1), ct), null);
      if (s.info > 0) assert.equal(hpkeOpenBase(p, r.secretKey, enc, flip(info, 2), aad, ct), null);
      assert.equal(hpkeOpenBase(p, p.x25519Generate().secretKey, enc, info, aad, ct), null);
    }
  });

  it('the same ephemeral ikm gives @hpke/core\'s bytes exactly (DeriveKeyPair)', async () => {
    const r = p.x25519Generate();
    const ikm = p.randomBytes(32), info = p.randomBytes(9), aad = p.randomBytes(5), pt = p.randomBytes(77);
    const ours = hpkeSealBase(p, r.publicKey, info, aad, pt, ikm);
    const theirs = await suite.seal({ recipientPublicKey: await suite.kem.deserializePublicKey(buf(r.publicKey)), info: buf(info), ekm: buf(ikm) }, buf(pt), buf(aad));
    assert.deepEqual(ours.enc, new Uint8Array(theirs.enc));
    assert.deepEqual(ours.ciphertext, new Uint8Array(theirs.ct));
  });

  it('bad lengths and low-order keys: seal throws a RangeError, open returns null', () => {
    const r = p.x25519Generate();
    assert.throws(() => hpkeSealBase(p, r.publicKey.subarray(1), new Uint8Array(0), new Uint8Array(0), new Uint8Array(1)), RangeError);
    assert.throws(() => hpkeSealBase(p, new Uint8Array(32), new Uint8Array(0), new Uint8Array(0), new Uint8Array(1)), RangeError);
    assert.equal(hpkeOpenBase(p, r.secretKey, new Uint8Array(32), new Uint8Array(0), new Uint8Array(0), new Uint8Array(16)), null);
    assert.equal(hpkeOpenBase(p, r.secretKey, new Uint8Array(31), new Uint8Array(0), new Uint8Array(0), new Uint8Array(16)), null);
    assert.equal(hpkeOpenBase(p, r.secretKey, p.x25519Generate().publicKey, new Uint8Array(0), new Uint8Array(0), new Uint8Array(15)), null);
  });
});
