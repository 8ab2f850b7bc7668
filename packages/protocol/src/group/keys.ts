/**
 * Group keys: a fresh secp256k1 key per group per member (Communicator group identities), the
 * status-go signature scheme over it, and the "0x04…" string form that names a member.
 *
 *   signature = R(32) ‖ S(32) ‖ V(1), V ∈ {0, 1}, over a 32-byte keccak256 digest,
 *               RFC 6979 deterministic nonce, low S (go-ethereum crypto.Sign).
 *
 * noble's 'recovered' format is V ‖ R ‖ S; the two helpers below rotate it explicitly.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import type { CryptoProvider } from '../crypto/provider.ts';
import { fromHex, toHex } from '../bytes.ts';

export const SIGNATURE_BYTES = 65;
/** Uncompressed SEC1 point: 0x04 ‖ X(32) ‖ Y(32). */
export const GROUP_KEY_BYTES = 65;
/** "0x04" + 128 lowercase hex digits. */
export const GROUP_KEY_ID_CHARS = 2 + 2 * GROUP_KEY_BYTES;

const MEMBER_ID_PATTERN = /^0x04[0-9a-f]{128}$/;

export interface GroupKeyPair {
  /** 32-byte secp256k1 scalar. */
  readonly secretKey: Uint8Array;
  /** 65-byte uncompressed public key. */
  readonly publicKey: Uint8Array;
  /** The member id: "0x" + lowercase hex of publicKey. */
  readonly id: string;
}

export function keccak256(data: Uint8Array): Uint8Array {
  return keccak_256(data);
}

/** A fresh group key from the provider's CSPRNG (48 bytes reduced mod n: no bias, no retry). */
export function generateGroupKey(crypto: CryptoProvider): GroupKeyPair {
  return groupKeyFromSecret(secp256k1.utils.randomSecretKey(crypto.randomBytes(48)));
}

/** Throws on an invalid scalar (a local programming error, not untrusted input). */
export function groupKeyFromSecret(secretKey: Uint8Array): GroupKeyPair {
  if (!secp256k1.utils.isValidSecretKey(secretKey)) throw new Error('invalid secp256k1 secret key');
  const publicKey = secp256k1.getPublicKey(secretKey, false);
  return { secretKey: Uint8Array.from(secretKey), publicKey, id: memberIdOf(publicKey) };
}

/** "0x04…" for a 65-byte uncompressed key (status-go types.EncodeHex(crypto.FromECDSAPub)). */
export function memberIdOf(publicKey: Uint8Array): string {
  return '0x' + toHex(publicKey);
}

/** Syntactic check of a member id: "0x04" + 128 lowercase hex digits. */
export function isMemberId(id: string): boolean {
  return id.length === GROUP_KEY_ID_CHARS && MEMBER_ID_PATTERN.test(id);
}

/** The 65 key bytes of a member id, or null when malformed or not a curve point. */
export function memberKeyBytes(id: string): Uint8Array | null {
  if (!isMemberId(id)) return null;
  const bytes = fromHex(id.slice(2));
  if (bytes === null || !secp256k1.utils.isValidPublicKey(bytes, false)) return null;
  return bytes;
}

/** go-ethereum crypto.Sign: 65 bytes R ‖ S ‖ V over a 32-byte digest. */
export function signDigest(secretKey: Uint8Array, digest: Uint8Array): Uint8Array {
  if (digest.length !== 32) throw new Error('digest must be 32 bytes');
  const vrs = secp256k1.sign(digest, secretKey, { prehash: false, format: 'recovered', lowS: true });
  const out = new Uint8Array(SIGNATURE_BYTES);
  out.set(vrs.subarray(1, 65), 0); // R ‖ S
  out[64] = vrs[0]!; // V
  return out;
}

const HALF_N = secp256k1.Point.Fn.ORDER >> 1n;

/**
 * Recover the 65-byte uncompressed signer key from R ‖ S ‖ V over `digest`. Returns null (never
 * throws) unless: 65 bytes, V ∈ {0, 1}, 0 < R, S < n, S ≤ n/2 (low S, so a signature cannot be
 * mutated into a second valid one that would escape de-duplication by signature bytes).
 */
export function recoverSigner(signature: Uint8Array, digest: Uint8Array): Uint8Array | null {
  if (signature.length !== SIGNATURE_BYTES || digest.length !== 32) return null;
  const v = signature[64]!;
  if (v !== 0 && v !== 1) return null;
  try {
    const sig = secp256k1.Signature.fromBytes(signature.subarray(0, 64), 'compact');
    if (sig.s > HALF_N) return null;
    return sig.addRecoveryBit(v).recoverPublicKey(digest).toBytes(false);
  } catch {
    return null;
  }
}
