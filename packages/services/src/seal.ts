/**
 * HPKE (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) for the
 * RSA's storage re-encryption: stored = enc (32 B) ‖ ciphertext, sealed to the inbox's dh_key
 * with info "umbra/v1/rsa-store" and aad = mid. The bytes a recipient fetches therefore differ
 * from the bytes the SSA delivered, and stored messages are readable only by the inbox owner.
 */
import { CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305';
import { concat, utf8 } from './bytes.ts';

export const LABEL_RSA_STORE = utf8('umbra/v1/rsa-store');

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Chacha20Poly1305() });

export async function generateInboxDhKey(): Promise<{ publicKey: Uint8Array; privateKey: Uint8Array }> {
  const kp = await suite.kem.generateKeyPair();
  return {
    publicKey: new Uint8Array(await suite.kem.serializePublicKey(kp.publicKey)),
    privateKey: new Uint8Array(await suite.kem.serializePrivateKey(kp.privateKey)),
  };
}

export async function isValidDhKey(publicKey: Uint8Array): Promise<boolean> {
  if (publicKey.length !== 32) return false;
  try {
    await suite.kem.deserializePublicKey(publicKey);
    return true;
  } catch {
    return false;
  }
}

export async function sealForInbox(dhKey: Uint8Array, mid: Uint8Array, payload: Uint8Array): Promise<Uint8Array> {
  const recipientPublicKey = await suite.kem.deserializePublicKey(dhKey);
  const { enc, ct } = await suite.seal({ recipientPublicKey, info: LABEL_RSA_STORE }, payload, mid);
  return concat(new Uint8Array(enc), new Uint8Array(ct));
}

/** Client side: opens a stored message; null if it does not open (wrong key, mid or bytes). */
export async function openStored(dhPrivateKey: Uint8Array, mid: Uint8Array, stored: Uint8Array): Promise<Uint8Array | null> {
  if (stored.length < 32 + 16) return null;
  try {
    const recipientKey = await suite.kem.deserializePrivateKey(dhPrivateKey);
    const pt = await suite.open({ recipientKey, enc: stored.subarray(0, 32), info: LABEL_RSA_STORE }, stored.subarray(32), mid);
    return new Uint8Array(pt);
  } catch {
    return null;
  }
}
