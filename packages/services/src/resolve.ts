/**
 * RSA-side address resolution, M = c2 − x·c1 (communicator.md §4.2), with the secret scalar
 * multiplication done by node:crypto's native, constant-time X25519 instead of noble's BigInt
 * ladder (about 1.2 ms → 0.1 ms; resolving a parsed address goes from ~1.5 ms to ~0.25 ms).
 *
 * Why this is the same function:
 * - A ristretto255 point decodes to an even Edwards point P; its Montgomery u-coordinate is
 *   u = (Z+Y)/(Z−Y). X25519(k, u) is u(clamp(k)·P). clamp(k) = 2^254 + 8·t is a multiple of 8, so
 *   it kills any torsion component of P, and equals x/c (mod l) for the prime-order part when
 *   we pick, once per epoch key, a small public c with such a representative (about half of
 *   all c work; we scan c = 1, 2, …). Then X25519(s', u(c·P)) = u(x·P') for P' the prime-order
 *   part of P. Ristretto encodings ignore E[4], so c2 − x·P' encodes exactly like c2 − x·P.
 * - X25519 gives u only, that is ±Q. A second X25519 on c·(c1 + B) gives u(x·(P' + B)) =
 *   u(Q + X) with X = x·B the public epoch key, known in full; from u(Q), u(Q + X) and X the
 *   Okeya–Sakurai formula gives v(Q) with no square root, hence Q itself.
 * Anything unusual (identity-like inputs, an all-zero X25519 output, Q = ±X, a failed self-test
 * at key set-up) falls back to noble's own multiplication.
 */
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';
import { ed25519, ristretto255 } from '@noble/curves/ed25519.js';
import type { EdwardsPoint } from '@noble/curves/abstract/edwards.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { parseAddress, type ParsedAddress } from '@umbra/protocol/services';
import { encodeRistretto } from './ristretto-native.ts';

const Ed = ed25519.Point;
const Rist = ristretto255.Point;
type RPoint = InstanceType<typeof Rist>;
const P = Ed.Fp.ORDER;
const L = Ed.Fn.ORDER;
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

const mod = (a: bigint, m: bigint): bigint => {
  const r = a % m;
  return r < 0n ? r + m : r;
};
function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b = mod(b, m);
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}
const inv = (a: bigint, m: bigint): bigint => Ed.Fp.inv(mod(a, m)); // m = P only
/**
 * c·p for the small public factor c (2..128) by double-and-add: noble's multiplyUnsafe builds a
 * wNAF table for the point first, which for c ≤ 128 is most of the work. The resolve of a key
 * with c > 1 went from 374-425 to 303-344 µs of CPU (docs/SCALING.md).
 */
function timesSmall(p: EdwardsPoint, c: bigint): EdwardsPoint {
  let r = p;
  for (let bit = BigInt(c.toString(2).length - 2); bit >= 0n; bit--) {
    r = r.double();
    if ((c >> bit) & 1n) r = r.add(p);
  }
  return r;
}
const edOf = (p: RPoint): EdwardsPoint => (p as unknown as { ep: EdwardsPoint }).ep;

// Curve25519 in Montgomery form v² = u³ + A·u² + u, and the birational map to edwards25519:
// u = (1 + y)/(1 − y), v = C·u/x with C = √(−(A + 2)); back: x = C·u/v, y = (u − 1)/(u + 1).
const A = 486662n;
const C = (() => {
  const t = Ed.Fp.sqrt(mod(-(A + 2n), P));
  return t;
})();

/** Per epoch key: the X25519 private key s' (s'·c ≡ x mod l) and X = x·B in Montgomery form. */
export interface FastResolveKey {
  c: bigint;
  cB: EdwardsPoint;
  uX: bigint;
  vX: bigint;
  /** 1 / (2·vX) */
  inv2vX: bigint;
  priv: KeyObject;
}

function x25519(priv: KeyObject, u: bigint): bigint | null {
  try {
    // JWK import is ~10× cheaper than DER in node (no OpenSSL decoder lookup).
    const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(numberToBytesLE(u, 32)).toString('base64url') }, format: 'jwk' });
    return bytesToNumberLE(new Uint8Array(diffieHellman({ privateKey: priv, publicKey: pub })));
  } catch {
    return null; // all-zero output (small-order input): let the slow path decide
  }
}

/** Prepares an epoch key for fast resolution; null if no usable c was found or the self-test failed. */
export function prepareResolveKey(xBytes: Uint8Array): FastResolveKey | null {
  const x = bytesToNumberLE(xBytes);
  if (x === 0n || x >= L) return null;
  const inv8 = modPow(8n, L - 2n, L);
  const two254 = 1n << 254n;
  const X = Ed.BASE.multiply(x).toAffine();
  const uX = mod((1n + X.y) * inv(1n - X.y, P), P);
  const vX = mod(C * uX % P * inv(X.x, P), P);
  for (let c = 1n; c <= 128n; c++) {
    const s = (x * modPow(c, L - 2n, L)) % L;
    const t = mod((s - two254) * inv8, L);
    if (t >= 1n << 251n) continue;
    const sPrime = two254 + 8n * t;
    const priv = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, numberToBytesLE(sPrime, 32)]), format: 'der', type: 'pkcs8' });
    const key: FastResolveKey = { c, cB: Ed.BASE.multiply(c), uX, vX, inv2vX: inv(2n * vX, P), priv };
    // Self-test against noble on a few points before trusting the key.
    for (let i = 0; i < 4; i++) {
      const c1 = Rist.BASE.multiply(BigInt(1 + i) * 0x1234567n + 99n * c);
      const c2 = Rist.BASE.multiply(BigInt(7 + i) * 0x7654321n);
      const want = c2.subtract(c1.multiply(x)).toBytes();
      const got = fastResolve(c1, c2, key);
      if (!got || Buffer.compare(got, want) !== 0) return null;
    }
    return key;
  }
  return null;
}

/** u = (Z+Y)/(Z−Y) of two points with one inversion; null if either is identity-like. */
function montgomeryU2(a: EdwardsPoint, b: EdwardsPoint): [bigint, bigint] | null {
  const da = mod(a.Z - a.Y, P);
  const db = mod(b.Z - b.Y, P);
  if (da === 0n || db === 0n) return null;
  const i = inv(da * db, P);
  return [mod(((a.Z + a.Y) * db % P) * i, P), mod(((b.Z + b.Y) * da % P) * i, P)];
}

/**
 * M = c2 − x·c1 as 32 bytes via native X25519; null when the fast path does not apply.
 * X25519 gives u(Q) and u(Q + X) for Q = x·c1; with X known in full, the Okeya–Sakurai
 * formula gives v(Q) without a square root:
 *   v(Q) = ((uX·uQ + 1)(uX + uQ + 2A) − 2A − (uX − uQ)²·u(Q+X)) / (2·vX)
 */
export function fastResolve(c1: RPoint, c2: RPoint, key: FastResolveKey): Uint8Array | null {
  const p = edOf(c1);
  const R = key.c === 1n ? p : timesSmall(p, key.c);
  const R2 = R.add(key.cB);
  const us = montgomeryU2(R, R2);
  if (!us) return null;
  const uQ = x25519(key.priv, us[0]);
  const uQX = x25519(key.priv, us[1]);
  if (uQ === null || uQX === null || uQ === key.uX || uQ === P - 1n) return null;
  const d = key.uX - uQ;
  const vQ = mod(((key.uX * uQ + 1n) % P * ((key.uX + uQ + 2n * A) % P) - 2n * A - (d * d % P) * uQX) % P * key.inv2vX, P);
  if (vQ === 0n) return null;
  // Montgomery (uQ, vQ) → extended Edwards: X = C·u(u+1), Y = (u−1)·v, Z = v(u+1), T = C·u(u−1).
  const Q = new Ed(mod(C * uQ % P * (uQ + 1n), P), mod((uQ - 1n) * vQ, P), mod(vQ * (uQ + 1n), P), mod(C * uQ % P * (uQ - 1n), P));
  return encodeRistretto(new Rist(edOf(c2).subtract(Q)));
}

/** RSA: M for a parsed address under `key` (fast path, else noble). */
export function resolveParsed(parsed: Extract<ParsedAddress, { kind: 'ok' }>, key: FastResolveKey | null, xBytes: Uint8Array): Uint8Array {
  if (key) {
    const m = fastResolve(parsed.c1, parsed.c2, key);
    if (m) return m;
  }
  const scalar = bytesToNumberLE(xBytes);
  return parsed.c2.subtract(parsed.c1.multiply(scalar)).toBytes();
}

export { parseAddress };
