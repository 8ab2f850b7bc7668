/**
 * ML-KEM-768 (FIPS 203) on PQClean's C implementation, through `pqclean` (Node bindings by Tobias
 * Nießen, compiled from source at install; no binary is downloaded). Node 20's OpenSSL 3.0 has no
 * ML-KEM; noble's pure-JS one costs ~0.5 ms per operation here, this one ~0.06–0.07 ms
 * (bench/crypto-primitives.ts prints both). PQClean draws its randomness from getrandom(2).
 *
 * Only the randomised operations live here: seeded key generation and encapsulation (tests and
 * vectors only) stay on noble. The results are interchangeable with noble's
 * (packages/crypto-node/test/ml-kem-768.test.ts checks keys, ciphertexts and the
 * implicit-rejection secret across the two).
 *
 * PQClean's `clean` code does not perform FIPS 203's input checks, so they are made here before
 * each call: the encapsulation key's modulus check (§7.2) and the decapsulation key's hash check
 * (§7.3). Both are on public data or on a hash, so they need not be constant-time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';

const PUBLIC_KEY = 1184;
const SECRET_KEY = 2400;
const CIPHERTEXT = 1088;
/** ek = ByteEncode12(t̂) (3 × 384 bytes) ‖ ρ (32 bytes). */
const ENCODED_T = 1152;
/** dk = dk_PKE (1152) ‖ ek (1184) ‖ H(ek) (32) ‖ z (32). */
const DK_EK = 1152;
const DK_H = DK_EK + PUBLIC_KEY;
const Q = 3329;

interface PqcleanKem {
  keypair(): { publicKey: Uint8Array; privateKey: Uint8Array };
  generateKey(publicKey: Uint8Array): { key: Uint8Array; encryptedKey: Uint8Array };
  decryptKey(privateKey: Uint8Array, encryptedKey: Uint8Array): Uint8Array;
}

// A CommonJS package with a native addon: loaded through require, so `bindings` finds its .node file.
const { KEM } = createRequire(import.meta.url)('pqclean') as { KEM: new (algorithm: string) => PqcleanKem };
const kem = new KEM('ml-kem-768');

/** FIPS 203 §7.2: every 12-bit coefficient of t̂ is reduced mod q (ByteEncode12(ByteDecode12(ek)) = ek). */
function modulusCheck(publicKey: Uint8Array): boolean {
  for (let i = 0; i < ENCODED_T; i += 3) {
    const b0 = publicKey[i]!;
    const b1 = publicKey[i + 1]!;
    const b2 = publicKey[i + 2]!;
    if ((b0 | ((b1 & 0x0f) << 8)) >= Q || ((b1 >> 4) | (b2 << 4)) >= Q) return false;
  }
  return true;
}

/** FIPS 203 §7.3: the H(ek) stored in the decapsulation key is the hash of the ek stored beside it. */
function hashCheck(secretKey: Uint8Array): boolean {
  const hash = createHash('sha3-256').update(secretKey.subarray(DK_EK, DK_H)).digest();
  return timingSafeEqual(hash, secretKey.subarray(DK_H, DK_H + 32));
}

function bytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function mlKem768GenerateNative(): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const { publicKey, privateKey } = kem.keypair();
  return { publicKey: bytes(publicKey), secretKey: bytes(privateKey) };
}

/** Null when the key has the wrong length or fails the FIPS 203 §7.2 modulus check. */
export function mlKem768EncapsulateNative(publicKey: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array } | null {
  if (publicKey.length !== PUBLIC_KEY || !modulusCheck(publicKey)) return null;
  const { key, encryptedKey } = kem.generateKey(publicKey);
  return { ciphertext: bytes(encryptedKey), sharedSecret: bytes(key) };
}

/** Null on wrong lengths or a secret key that fails the FIPS 203 §7.3 hash check; else implicit rejection. */
export function mlKem768DecapsulateNative(ciphertext: Uint8Array, secretKey: Uint8Array): Uint8Array | null {
  if (ciphertext.length !== CIPHERTEXT || secretKey.length !== SECRET_KEY || !hashCheck(secretKey)) return null;
  return bytes(kem.decryptKey(secretKey, ciphertext));
}
