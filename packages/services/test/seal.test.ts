/** The node:crypto HPKE in seal.ts against @hpke/core (RFC 9180 reference behaviour), both ways. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305';
import { CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { concat } from '../src/bytes.ts';
import { nodeProvider } from '@umbra/crypto-node';
import { hpkeOpenBase } from '@umbra/protocol';
import { isValidDhKey, LABEL_RSA_STORE, sealForInbox } from '../src/seal.ts';

/** An inbox key pair, and the open the SDK's RSA client does (client/src/services/http/rsa.ts). */
const generateInboxDhKey = (): { publicKey: Uint8Array; privateKey: Uint8Array } => {
  const k = nodeProvider.x25519Generate();
  return { publicKey: k.publicKey, privateKey: k.secretKey };
};
const openStored = (sk: Uint8Array, mid: Uint8Array, stored: Uint8Array): Uint8Array | null =>
  stored.length < 48 ? null : hpkeOpenBase(nodeProvider, sk, stored.subarray(0, 32), LABEL_RSA_STORE, mid, stored.subarray(32));

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Chacha20Poly1305() });

describe('HPKE storage seal (node:crypto) interoperates with @hpke/core', () => {
  it('sealForInbox → @hpke/core open', async () => {
    const kp = await suite.kem.generateKeyPair();
    const pub = new Uint8Array(await suite.kem.serializePublicKey(kp.publicKey));
    for (const len of [1, 31, 512, 4096]) {
      const mid = new Uint8Array(randomBytes(16));
      const pt = new Uint8Array(randomBytes(len));
      const stored = await sealForInbox(pub, mid, pt);
      assert.equal(stored.length, 32 + len + 16);
      const opened = await suite.open({ recipientKey: kp.privateKey, enc: stored.subarray(0, 32), info: LABEL_RSA_STORE }, stored.subarray(32), mid);
      assert.deepEqual(new Uint8Array(opened), pt);
    }
  });

  it('@hpke/core seal → openStored; wrong mid, key or bytes → null', async () => {
    const mine = generateInboxDhKey();
    const recipientPublicKey = await suite.kem.deserializePublicKey(mine.publicKey);
    const mid = new Uint8Array(randomBytes(16));
    const pt = new Uint8Array(randomBytes(300));
    const { enc, ct } = await suite.seal({ recipientPublicKey, info: LABEL_RSA_STORE }, pt, mid);
    const stored = concat(new Uint8Array(enc), new Uint8Array(ct));
    assert.deepEqual(openStored(mine.privateKey, mid, stored), pt);
    assert.equal(openStored(mine.privateKey, new Uint8Array(16), stored), null);
    assert.equal(openStored((generateInboxDhKey()).privateKey, mid, stored), null);
    const bad = stored.slice();
    bad[40]! ^= 1;
    assert.equal(openStored(mine.privateKey, mid, bad), null);
    assert.equal(openStored(mine.privateKey, mid, stored.subarray(0, 40)), null);
  });

  it('@hpke/core accepts the key pairs it generates and ours', async () => {
    const mine = generateInboxDhKey();
    const theirs = await suite.kem.deserializePrivateKey(mine.privateKey);
    assert.ok(theirs);
    assert.ok(await isValidDhKey(mine.publicKey));
    assert.equal(await isValidDhKey(new Uint8Array(31)), false);
  });
});
