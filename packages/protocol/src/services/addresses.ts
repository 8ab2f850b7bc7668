/**
 * RRA: re-randomizable receiving-service addresses (communicator.md §4.2).
 *
 * ElGamal over ristretto255 (RFC 9496). The RSA holds an epoch key (x, X = x·B) per key id
 * (kid); the recipient holds a secret seed point M per relationship. An address is
 *
 *   kid (u32, big-endian, 4 B) ‖ c1 = k·B (32 B) ‖ c2 = M + k·X (32 B)   = 68 bytes
 *
 * - derive (recipient, offline):        k random, (c1, c2) = (k·B, M + k·X)
 * - rerandomize (sender, per message):  r random, (c1 + r·B, c2 + r·X)
 * - resolve (RSA only):                 M = c2 − x·c1
 *
 * Pure module (noble only, no node: imports): the client SDK and the services both import it
 * from '@umbra/protocol/services'. Untrusted bytes give results, not exceptions.
 */
import { ristretto255, ristretto255_hasher } from '@noble/curves/ed25519.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { concat, readU32be, u32be } from '../bytes.ts';

const Point = ristretto255.Point;
type RPoint = InstanceType<typeof Point>;

export const ADDRESS_LENGTH = 68;
export const POINT_LENGTH = 32;
export const SCALAR_LENGTH = 32;

export type AddressClass = 'ephemeral' | 'long';

/** A published epoch key: what senders and recipients need to derive and re-randomize. */
export interface AddressKey {
  kid: number;
  /** X = x·B, 32-byte ristretto255 encoding. */
  X: Uint8Array;
}

export interface AddressParts {
  kid: number;
  c1: Uint8Array;
  c2: Uint8Array;
}

export type ParsedAddress =
  | { kind: 'ok'; kid: number; c1: RPoint; c2: RPoint }
  | { kind: 'malformed'; reason: string };

/** A uniform non-zero scalar mod l from 64 random bytes (wide reduction). */
export function randomScalar(random: (n: number) => Uint8Array = defaultRandom): bigint {
  for (;;) {
    const s = Point.Fn.create(bytesToNumberLE(random(64)));
    if (s !== 0n) return s;
  }
}

function defaultRandom(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

function decodePoint(bytes: Uint8Array): RPoint | null {
  if (bytes.length !== POINT_LENGTH) return null;
  try {
    return Point.fromBytes(bytes);
  } catch {
    return null; // non-canonical encoding
  }
}

/**
 * Epoch keys are few and used for every message to an RSA: keep them decoded with noble's
 * fixed-base window tables (k·X then costs about what k·B does, ~10× less than an uncached point).
 */
const epochKeyCache = new Map<string, RPoint | null>();
function epochKeyPoint(bytes: Uint8Array): RPoint | null {
  let hex = '';
  for (const b of bytes) hex += b.toString(16).padStart(2, '0');
  let p = epochKeyCache.get(hex);
  if (p === undefined) {
    const d = decodePoint(bytes);
    p = d && !d.is0() ? d.precompute(8, false) : null;
    if (epochKeyCache.size >= 64) epochKeyCache.delete(epochKeyCache.keys().next().value!);
    epochKeyCache.set(hex, p);
  }
  return p;
}

/** RSA: a fresh epoch key. `x` is the 32-byte little-endian scalar (secret). */
export function generateAddressKey(kid: number): { kid: number; x: Uint8Array; X: Uint8Array } {
  const x = randomScalar();
  return { kid, x: numberToBytesLE(x, SCALAR_LENGTH), X: Point.BASE.multiply(x).toBytes() };
}

/** RSA: a fresh secret seed point M = one-way-map(64 random bytes) (RFC 9496 §4.3.4). */
export function generateSeed(): Uint8Array {
  return ristretto255_hasher.deriveToCurve!(defaultRandom(64)).toBytes();
}

/** Is `bytes` a canonical ristretto255 encoding of a point other than the identity? */
export function isValidPoint(bytes: Uint8Array): boolean {
  const p = decodePoint(bytes);
  return p !== null && !p.is0();
}

export function encodeAddress(parts: AddressParts): Uint8Array {
  return concat(u32be(parts.kid), parts.c1, parts.c2);
}

/** Parses the 68-byte wire form; requires canonical encodings and c1 ≠ identity. */
export function parseAddress(addr: Uint8Array): ParsedAddress {
  if (addr.length !== ADDRESS_LENGTH) return { kind: 'malformed', reason: `address must be ${ADDRESS_LENGTH} bytes` };
  const kid = readU32be(addr, 0);
  const c1 = decodePoint(addr.subarray(4, 36));
  const c2 = decodePoint(addr.subarray(36, 68));
  if (!c1 || !c2) return { kind: 'malformed', reason: 'address points are not canonical ristretto255 encodings' };
  if (c1.is0()) return { kind: 'malformed', reason: 'address c1 is the identity' };
  return { kind: 'ok', kid, c1, c2 };
}

/** The kid of a 68-byte address (no validation beyond the length). */
export function addressKid(addr: Uint8Array): number | null {
  return addr.length === ADDRESS_LENGTH ? readU32be(addr, 0) : null;
}

/** Recipient, offline: an address for seed M under epoch key (kid, X). */
export function deriveAddress(M: Uint8Array, key: AddressKey): Uint8Array {
  const m = decodePoint(M);
  const X = epochKeyPoint(key.X);
  if (!m || m.is0()) throw new Error('deriveAddress: invalid seed point');
  if (!X) throw new Error('deriveAddress: invalid epoch key');
  const k = randomScalar();
  return encodeAddress({ kid: key.kid, c1: Point.BASE.multiply(k).toBytes(), c2: m.add(X.multiply(k)).toBytes() });
}

export type RerandomizeResult = { kind: 'ok'; address: Uint8Array } | { kind: 'malformed'; reason: string };

/**
 * Anyone holding an address and the epoch key it was made under (sender per message,
 * introducer, directory): a fresh, unlinkable address for the same seed.
 */
export function rerandomizeAddress(addr: Uint8Array, key: AddressKey): RerandomizeResult {
  const parsed = parseAddress(addr);
  if (parsed.kind !== 'ok') return parsed;
  if (parsed.kid !== key.kid) return { kind: 'malformed', reason: `address kid ${parsed.kid} does not match key kid ${key.kid}` };
  const X = epochKeyPoint(key.X);
  if (!X) return { kind: 'malformed', reason: 'invalid epoch key' };
  const r = randomScalar();
  return {
    kind: 'ok',
    address: encodeAddress({
      kid: parsed.kid,
      c1: parsed.c1.add(Point.BASE.multiply(r)).toBytes(),
      c2: parsed.c2.add(X.multiply(r)).toBytes(),
    }),
  };
}

/** RSA: M = c2 − x·c1, as a 32-byte encoding; null if the address is malformed. */
export function resolveAddress(addr: Uint8Array, x: Uint8Array): Uint8Array | null {
  const parsed = parseAddress(addr);
  if (parsed.kind !== 'ok') return null;
  if (x.length !== SCALAR_LENGTH) throw new Error('resolveAddress: x must be 32 bytes');
  const scalar = bytesToNumberLE(x);
  if (scalar === 0n || scalar >= Point.Fn.ORDER) throw new Error('resolveAddress: invalid scalar');
  return parsed.c2.subtract(parsed.c1.multiply(scalar)).toBytes();
}
