/**
 * HPKE (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) for the
 * RSA's storage re-encryption: stored = enc (32 B) ‖ ciphertext, sealed to the inbox's dh_key
 * with info "umbra/v1/rsa-store" and aad = mid. The bytes a recipient fetches therefore differ
 * from the bytes the SSA delivered, and stored messages are readable only by the inbox owner.
 *
 * Implemented on node:crypto (native X25519, HMAC-SHA256, ChaCha20-Poly1305): one seal costs
 * about 0.1 ms instead of about 1.5 ms through @hpke/core's WebCrypto path. The output is
 * byte-for-byte the RFC 9180 construction; the tests check it against @hpke/core both ways.
 */
import { createCipheriv, createDecipheriv, createHmac, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { concat, utf8 } from './bytes.ts';

export const LABEL_RSA_STORE = utf8('umbra/v1/rsa-store');

const KEM_ID = 0x0020; // DHKEM(X25519, HKDF-SHA256)
const KDF_ID = 0x0001; // HKDF-SHA256
const AEAD_ID = 0x0003; // ChaCha20Poly1305
const HPKE_V1 = utf8('HPKE-v1');
const KEM_SUITE = concat(utf8('KEM'), new Uint8Array([KEM_ID >> 8, KEM_ID & 0xff]));
const HPKE_SUITE = concat(utf8('HPKE'), new Uint8Array([KEM_ID >> 8, KEM_ID & 0xff, KDF_ID >> 8, KDF_ID & 0xff, AEAD_ID >> 8, AEAD_ID & 0xff]));
const EMPTY = new Uint8Array(0);

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function labeledExtract(suite: Uint8Array, salt: Uint8Array, label: Uint8Array, ikm: Uint8Array): Uint8Array {
  return hmac(salt, HPKE_V1, suite, label, ikm);
}

/** HKDF-Expand for L ≤ 32 (one block). */
function labeledExpand(suite: Uint8Array, prk: Uint8Array, label: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const t = hmac(prk, new Uint8Array([length >> 8, length & 0xff]), HPKE_V1, suite, label, info, new Uint8Array([1]));
  return t.subarray(0, length);
}

// The key-schedule context is fixed for our one info string (mode_base, empty psk_id).
const KEY_SCHEDULE_CONTEXT = concat(
  new Uint8Array([0x00]),
  labeledExtract(HPKE_SUITE, EMPTY, utf8('psk_id_hash'), EMPTY),
  labeledExtract(HPKE_SUITE, EMPTY, utf8('info_hash'), LABEL_RSA_STORE),
);
const LABEL_EAE_PRK = utf8('eae_prk');
const LABEL_SHARED_SECRET = utf8('shared_secret');
const LABEL_SECRET = utf8('secret');
const LABEL_KEY = utf8('key');
const LABEL_BASE_NONCE = utf8('base_nonce');

/** (key, base_nonce) for sequence number 0 from the DH output and kem_context = enc ‖ pkR. */
function keySchedule(dh: Uint8Array, enc: Uint8Array, pkR: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  if (dh.every((b) => b === 0)) throw new Error('hpke: all-zero shared secret');
  const eaePrk = labeledExtract(KEM_SUITE, EMPTY, LABEL_EAE_PRK, dh);
  const sharedSecret = labeledExpand(KEM_SUITE, eaePrk, LABEL_SHARED_SECRET, concat(enc, pkR), 32);
  const secret = labeledExtract(HPKE_SUITE, sharedSecret, LABEL_SECRET, EMPTY);
  return {
    key: labeledExpand(HPKE_SUITE, secret, LABEL_KEY, KEY_SCHEDULE_CONTEXT, 32),
    nonce: labeledExpand(HPKE_SUITE, secret, LABEL_BASE_NONCE, KEY_SCHEDULE_CONTEXT, 12),
  };
}

// JWK import/export: ~10× cheaper than DER/SPKI in node (no OpenSSL decoder/encoder lookup).
function rawPublic(key: KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url'));
}

/** Small bounded caches: an RSA seals to the same inbox keys over and over. */
class KeyCache<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(bytes: Uint8Array, make: () => V): V {
    const id = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
    let v = this.map.get(id);
    if (v === undefined) {
      v = make();
      if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
      this.map.set(id, v);
    }
    return v;
  }
}
const publicKeys = new KeyCache<KeyObject | null>(50_000);
const privateKeys = new KeyCache<{ key: KeyObject; pub: Uint8Array } | null>(10_000);

function importPublic(raw: Uint8Array): KeyObject | null {
  if (raw.length !== 32) return null;
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url') }, format: 'jwk' });
  } catch {
    return null;
  }
}

function publicKeyObject(raw: Uint8Array): KeyObject | null {
  return raw.length === 32 ? publicKeys.get(raw, () => importPublic(raw)) : null;
}

function privateKeyObject(raw: Uint8Array): { key: KeyObject; pub: Uint8Array } | null {
  if (raw.length !== 32) return null;
  return privateKeys.get(raw, () => {
    try {
      const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: 'der', type: 'pkcs8' });
      return { key, pub: rawPublic(createPublicKey(key)) };
    } catch {
      return null;
    }
  });
}

export async function generateInboxDhKey(): Promise<{ publicKey: Uint8Array; privateKey: Uint8Array }> {
  const kp = generateKeyPairSync('x25519');
  const pkcs8 = kp.privateKey.export({ format: 'der', type: 'pkcs8' });
  return { publicKey: rawPublic(kp.publicKey), privateKey: new Uint8Array(pkcs8.subarray(pkcs8.length - 32)) };
}

export async function isValidDhKey(publicKey: Uint8Array): Promise<boolean> {
  return publicKeyObject(publicKey) !== null;
}

/** Seal (synchronous core): enc ‖ ChaCha20-Poly1305(key, base_nonce, aad = mid, payload). */
export function sealForInboxSync(dhKey: Uint8Array, mid: Uint8Array, payload: Uint8Array): Uint8Array {
  const pkR = publicKeyObject(dhKey);
  if (!pkR) throw new Error('hpke: invalid recipient key');
  const eph = generateKeyPairSync('x25519');
  const enc = rawPublic(eph.publicKey);
  const dh = new Uint8Array(diffieHellman({ privateKey: eph.privateKey, publicKey: pkR }));
  const { key, nonce } = keySchedule(dh, enc, dhKey);
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  c.setAAD(mid, { plaintextLength: payload.length });
  return new Uint8Array(Buffer.concat([enc, c.update(payload), c.final(), c.getAuthTag()]));
}

export async function sealForInbox(dhKey: Uint8Array, mid: Uint8Array, payload: Uint8Array): Promise<Uint8Array> {
  return sealForInboxSync(dhKey, mid, payload);
}

/** Client side: opens a stored message; null if it does not open (wrong key, mid or bytes). */
export async function openStored(dhPrivateKey: Uint8Array, mid: Uint8Array, stored: Uint8Array): Promise<Uint8Array | null> {
  if (stored.length < 32 + 16) return null;
  try {
    const sk = privateKeyObject(dhPrivateKey);
    const pkE = importPublic(stored.subarray(0, 32)); // ephemeral: not worth caching
    if (!sk || !pkE) return null;
    const dh = new Uint8Array(diffieHellman({ privateKey: sk.key, publicKey: pkE }));
    const { key, nonce } = keySchedule(dh, stored.subarray(0, 32), sk.pub);
    const ctLen = stored.length - 32 - 16;
    const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    d.setAAD(mid, { plaintextLength: ctLen });
    d.setAuthTag(stored.subarray(stored.length - 16));
    return new Uint8Array(Buffer.concat([d.update(stored.subarray(32, 32 + ctLen)), d.final()]));
  } catch {
    return null;
  }
}
