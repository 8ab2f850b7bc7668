/**
 * GF(2^255 − 19) helpers with the one expensive step, a field exponentiation, done natively:
 * OpenSSL's modular exponentiation reached through an RSA "public key" (n = p, e = the exponent)
 * and RSA_NO_PADDING, i.e. exactly m^e mod p (the services'
 * ristretto255 codec imports these too, as @umbra/crypto-node/field25519). The rest is BigInt arithmetic on public values only: nothing
 * here handles secrets, so nothing here needs to be constant-time.
 *
 * `ed25519PublicToX25519Native` is noble's `ed25519.utils.toMontgomery` (RFC 8032 §5.1.3 strict
 * decoding, then u = (1+y)/(1−y)) with one native exponentiation instead of noble's BigInt square
 * root plus Euclid inversion. Tests compare it with noble on random and edge inputs.
 */
import { constants, createPublicKey, publicEncrypt, type KeyObject } from 'node:crypto';

export const P = 2n ** 255n - 19n;
const D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;
export const SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752n;

export const mod = (a: bigint): bigint => {
  const r = a % P;
  return r < 0n ? r + P : r;
};
export const isNegative = (x: bigint): boolean => (mod(x) & 1n) === 1n;

export function toBE32(x: bigint): Buffer {
  return Buffer.from(x.toString(16).padStart(64, '0'), 'hex');
}

export function leToBig(b: Uint8Array): bigint {
  let hex = '';
  for (let i = b.length - 1; i >= 0; i--) hex += b[i]!.toString(16).padStart(2, '0');
  return BigInt('0x' + hex);
}

export function bigToLE32(x: bigint): Uint8Array {
  const out = new Uint8Array(32);
  let v = x;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

const P58_KEY: KeyObject = createPublicKey({
  key: { kty: 'RSA', n: toBE32(P).toString('base64url'), e: toBE32((P - 5n) / 8n).toString('base64url') },
  format: 'jwk',
});

/** x^((p−5)/8) mod p, natively. */
export function powP58(x: bigint): bigint {
  const out = publicEncrypt({ key: P58_KEY, padding: constants.RSA_NO_PADDING }, toBE32(mod(x)));
  return BigInt('0x' + out.toString('hex'));
}

/** RFC 9496 SQRT_RATIO_M1(u, v): whether u/v is a square, and the non-negative root (noble's uvRatio). */
export function sqrtRatioM1(u: bigint, v: bigint): { wasSquare: boolean; r: bigint } {
  const v3 = mod(v * v * v);
  const v7 = mod(v3 * v3 * v);
  let r = mod(mod(u * v3) * powP58(mod(u * v7)));
  const check = mod(v * r * r);
  const correct = check === mod(u);
  const flipped = check === mod(-u);
  const flippedI = check === mod(-u * SQRT_M1);
  if (flipped || flippedI) r = mod(r * SQRT_M1);
  return { wasSquare: correct || flipped, r: isNegative(r) ? mod(-r) : r };
}

/**
 * The X25519 public key of an Ed25519 public key, or null exactly where noble's toMontgomery
 * throws: not 32 bytes, y ≥ p, (y²−1)/(dy²+1) not a square, x = 0 with the sign bit set, or y = 1.
 * Small-order points are converted as noble does (y = −1 gives u = 0).
 *
 * One exponentiation does both jobs: with a = y²−1, b = dy²+1, w = 1−y (all nonzero here),
 * s = 1/√(a·b·w²) exists iff a/b is a square (w² is one), and then 1/w = a·b·w·s².
 */
export function ed25519PublicToX25519Native(publicKey: Uint8Array): Uint8Array | null {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return null;
  const signBit = (publicKey[31]! & 0x80) !== 0;
  const y = leToBig(publicKey) & ((1n << 255n) - 1n);
  if (y >= P) return null;
  if (y === 1n) return null; // the identity: x = 0, and 1 − y = 0 has no inverse
  if (y === P - 1n) return signBit ? null : new Uint8Array(32); // x = 0: (0, −1), u = 0/2
  const y2 = mod(y * y);
  const a = mod(y2 - 1n);
  const b = mod(D * y2 + 1n);
  const w = mod(1n - y);
  const ab = mod(a * b);
  const { wasSquare, r: s } = sqrtRatioM1(1n, mod(ab * mod(w * w)));
  if (!wasSquare) return null;
  // x ≠ 0 here (a ≠ 0), so the sign bit only picks the root and u does not depend on it.
  const wInv = mod(mod(ab * w) * mod(s * s));
  return bigToLE32(mod((1n + y) * wInv));
}
