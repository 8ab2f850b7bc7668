/**
 * CryptoProvider built only on @noble/* (pure JS); HPKE is ./hpke.ts over these primitives. No node: imports: this module
 * runs in browsers. Randomness comes from `globalThis.crypto.getRandomValues`.
 *
 * Error policy (shared with the node:crypto provider, checked by test/crypto-conformance.ts):
 * - functions whose result can say "no" (verify, open, x25519, Ed→X public, ML-KEM encaps/decaps)
 *   return false/null for any bad input and never throw;
 * - the others throw a RangeError for wrong-length keys or nonces (a programming error).
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { isAllZero } from '../bytes.ts';
import { hmacSha512BatchNoble } from './hmac-sha512-batch.ts';
import { hpkeOpenBase, hpkeSealBase } from './hpke.ts';
import type { CryptoProvider, HpkeSealed, KemEncapsulation, KeyPair } from './provider.ts';

/** FIPS 203 sizes for ML-KEM-768. */
export const ML_KEM_768 = {
  publicKey: 1184,
  secretKey: 2400,
  ciphertext: 1088,
  seed: 64,
  randomness: 32,
} as const;

const MAX_RANDOM_CHUNK = 65536; // getRandomValues limit per call

function requireLength(name: string, bytes: Uint8Array, length: number): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new RangeError(`${name} must be ${length} bytes`);
  }
}

function randomBytes(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError('length must be a non-negative integer');
  const out = new Uint8Array(length);
  for (let offset = 0; offset < length; offset += MAX_RANDOM_CHUNK) {
    globalThis.crypto.getRandomValues(out.subarray(offset, Math.min(length, offset + MAX_RANDOM_CHUNK)));
  }
  return out;
}

export const nobleProvider: CryptoProvider = {
  name: 'noble',

  randomBytes,

  sha256(data) {
    return sha256(data);
  },

  hmacSha256(key, data) {
    return hmac(sha256, key, data);
  },

  hmacSha512(key, data) {
    return hmac(sha512, key, data);
  },

  hmacSha512Batch: hmacSha512BatchNoble,

  hkdfSha256(ikm, salt, info, length) {
    if (!Number.isSafeInteger(length) || length < 0 || length > 255 * 32) {
      throw new RangeError('HKDF-SHA256 length must be 0..8160');
    }
    if (length === 0) return new Uint8Array(0);
    return hkdf(sha256, ikm, salt, info, length);
  },

  aeadSeal(key, nonce, plaintext, aad) {
    requireLength('key', key, 32);
    requireLength('nonce', nonce, 12);
    return chacha20poly1305(key, nonce, aad).encrypt(plaintext);
  },

  aeadOpen(key, nonce, ciphertext, aad) {
    if (key.length !== 32 || nonce.length !== 12 || ciphertext.length < 16) return null;
    try {
      return chacha20poly1305(key, nonce, aad).decrypt(ciphertext);
    } catch {
      return null;
    }
  },

  x25519Generate(): KeyPair {
    const secretKey = randomBytes(32);
    return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
  },

  x25519PublicKey(secretKey) {
    requireLength('X25519 secret key', secretKey, 32);
    return x25519.getPublicKey(secretKey);
  },

  x25519(secretKey, peerPublicKey) {
    if (secretKey.length !== 32 || peerPublicKey.length !== 32) return null;
    try {
      // noble throws on an all-zero result (low-order peer); check again anyway.
      const shared = x25519.getSharedSecret(secretKey, peerPublicKey);
      return isAllZero(shared) ? null : shared;
    } catch {
      return null;
    }
  },

  ed25519Generate(): KeyPair {
    const secretKey = randomBytes(32);
    return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
  },

  ed25519PublicKey(secretKey) {
    requireLength('Ed25519 secret key', secretKey, 32);
    return ed25519.getPublicKey(secretKey);
  },

  ed25519Sign(secretKey, message) {
    requireLength('Ed25519 secret key', secretKey, 32);
    return ed25519.sign(message, secretKey);
  },

  ed25519Verify(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    try {
      // Strict RFC 8032 / FIPS 186-5: canonical A and R, S < L, small-order A rejected.
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },

  ed25519PublicToX25519(publicKey) {
    if (publicKey.length !== 32) return null;
    try {
      // Strict decoding (canonical y < p); throws for a non-point or y = 1 (division by zero).
      return ed25519.utils.toMontgomery(publicKey);
    } catch {
      return null;
    }
  },

  ed25519SecretToX25519(secretKey) {
    requireLength('Ed25519 secret key', secretKey, 32);
    return ed25519.utils.toMontgomerySecret(secretKey);
  },

  mlKem768Generate(seed?: Uint8Array): KeyPair {
    if (seed !== undefined) requireLength('ML-KEM seed', seed, ML_KEM_768.seed);
    const { publicKey, secretKey } = ml_kem768.keygen(seed ?? randomBytes(ML_KEM_768.seed));
    return { publicKey, secretKey };
  },

  mlKem768Encapsulate(publicKey, randomness?: Uint8Array): KemEncapsulation | null {
    if (publicKey.length !== ML_KEM_768.publicKey) return null;
    if (randomness !== undefined && randomness.length !== ML_KEM_768.randomness) return null;
    try {
      // Throws when the key fails the FIPS 203 §7.2 modulus check.
      const { cipherText, sharedSecret } = ml_kem768.encapsulate(
        publicKey,
        randomness ?? randomBytes(ML_KEM_768.randomness),
      );
      return { ciphertext: cipherText, sharedSecret };
    } catch {
      return null;
    }
  },

  mlKem768Decapsulate(ciphertext, secretKey) {
    if (ciphertext.length !== ML_KEM_768.ciphertext || secretKey.length !== ML_KEM_768.secretKey) return null;
    try {
      // Throws when the secret key fails the FIPS 203 §7.3 hash check.
      return ml_kem768.decapsulate(ciphertext, secretKey);
    } catch {
      return null;
    }
  },

  async hpkeSeal(recipientPublicKey, info, aad, plaintext, ephemeralSeed?: Uint8Array): Promise<HpkeSealed> {
    return hpkeSealBase(nobleProvider, recipientPublicKey, info, aad, plaintext, ephemeralSeed);
  },

  async hpkeOpen(recipientSecretKey, enc, info, aad, ciphertext) {
    return hpkeOpenBase(nobleProvider, recipientSecretKey, enc, info, aad, ciphertext);
  },
};
