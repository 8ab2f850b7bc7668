/**
 * CryptoProvider for Node: the noble provider with every primitive node:crypto (OpenSSL) has
 * replaced by the native one. ML-KEM-768, which Node 20's OpenSSL lacks, runs on PQClean's C code
 * (./ml-kem-768.ts; seeded calls, for tests and vectors, on noble). What else OpenSSL
 * lacks (Ed25519 → X25519 conversion) runs in ./field25519.ts on OpenSSL's modexp (noble's results); HPKE is the protocol's one RFC 9180 construction
 * (`hpkeSealBase`) run on these native primitives. Results are byte-identical to
 * `nobleProvider` (packages/protocol/test/crypto-conformance.ts).
 *
 * Speed notes (measured on Node 20.20, see bench/crypto-primitives.ts):
 * - Raw keys are imported as JWK. A private OKP JWK import takes ~50 µs, a PKCS8 DER import
 *   ~700 µs. Node builds the private key from `d` alone and ignores `x` (which it still
 *   requires to be present), so when `x` is not known yet a placeholder is passed; a self-test
 *   at load time checks this and falls back to PKCS8 DER if a future Node stops allowing it.
 * - Public keys come from `createPublicKey(priv).export({ format: 'jwk' }).x`. Private keys are
 *   never exported as JWK (Node 20 hangs after ~1.5k such calls in a loop).
 * - The last 64 KeyObjects per kind are cached, keyed by the caller's Uint8Array (the ratchet
 *   reuses the same arrays). Each entry keeps a copy of the bytes and is used only while the
 *   array still holds them, so overwriting an array in place never yields a stale key.
 *   (Consequence: a secret key that the caller wipes in place stays in the cache copy until
 *   64 newer keys have pushed it out.)
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  randomFillSync,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { constantTimeEqual, hpkeOpenBase, hpkeSealBase, isAllZero, nobleProvider } from '@umbra/protocol';
import type { CryptoProvider, HpkeSealed, KemEncapsulation, KeyPair } from '@umbra/protocol';
import { ed25519PublicToX25519Native } from './field25519.ts';
import { mlKem768DecapsulateNative, mlKem768EncapsulateNative, mlKem768GenerateNative } from './ml-kem-768.ts';

type OkpCurve = 'X25519' | 'Ed25519';

const PKCS8_PREFIX: Record<OkpCurve, Uint8Array> = {
  X25519: Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]),
  Ed25519: Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]),
};

// ---------------------------------------------------------------------------------------------
// byte helpers

function requireLength(name: string, bytes: Uint8Array, length: number): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new RangeError(`${name} must be ${length} bytes`);
  }
}

/** A plain Uint8Array that owns its memory (Node may hand out Buffers from a shared pool). */
function own(buf: Uint8Array): Uint8Array {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength && !(buf.buffer instanceof SharedArrayBuffer)) {
    return new Uint8Array(buf.buffer, 0, buf.byteLength);
  }
  return new Uint8Array(buf);
}

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

function fromB64u(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64url'));
}

// A call into the CSPRNG costs ~4 µs whatever the size; small requests are served from a pool
// filled 4 KiB at a time (each byte handed out once, then overwritten with zeros).
const RANDOM_POOL_BYTES = 4096;
const randomPool = new Uint8Array(RANDOM_POOL_BYTES);
let randomPoolOffset = RANDOM_POOL_BYTES;

function randomBytes(length: number): Uint8Array {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError('length must be a non-negative integer');
  if (length > 256) return randomFillSync(new Uint8Array(length));
  if (randomPoolOffset + length > RANDOM_POOL_BYTES) {
    randomFillSync(randomPool);
    randomPoolOffset = 0;
  }
  const out = randomPool.slice(randomPoolOffset, randomPoolOffset + length);
  randomPool.fill(0, randomPoolOffset, randomPoolOffset + length);
  randomPoolOffset += length;
  return out;
}

// ---------------------------------------------------------------------------------------------
// raw key import with caching

const PLACEHOLDER_X = b64u(new Uint8Array(32));

function importPrivateDer(curve: OkpCurve, raw: Uint8Array): KeyObject {
  const der = new Uint8Array(48);
  der.set(PKCS8_PREFIX[curve], 0);
  der.set(raw, 16);
  const key = createPrivateKey({ key: Buffer.from(der.buffer), format: 'der', type: 'pkcs8' });
  der.fill(0);
  return key;
}

function importPrivateJwk(curve: OkpCurve, raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: curve, d: b64u(raw), x: PLACEHOLDER_X }, format: 'jwk' });
}

function rawPublicOf(privateKey: KeyObject): Uint8Array {
  const x = createPublicKey(privateKey).export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new Error('public key export failed');
  return fromB64u(x);
}

/**
 * Does this Node build the private key from `d` alone (ignoring a placeholder `x`)? Checked
 * once with the RFC 7748 §6.1 and RFC 8032 TEST 1 keys; otherwise use PKCS8 DER (slower).
 */
const jwkPrivateImportWorks: boolean = (() => {
  const probe = (curve: OkpCurve, skHex: string, pkHex: string): boolean => {
    try {
      const pk = rawPublicOf(importPrivateJwk(curve, Uint8Array.from(Buffer.from(skHex, 'hex'))));
      return Buffer.from(pk).toString('hex') === pkHex;
    } catch {
      return false;
    }
  };
  return (
    probe(
      'X25519',
      '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a',
      '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
    ) &&
    probe(
      'Ed25519',
      '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
      'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    )
  );
})();

function importPrivate(curve: OkpCurve, raw: Uint8Array): KeyObject {
  return jwkPrivateImportWorks ? importPrivateJwk(curve, raw) : importPrivateDer(curve, raw);
}

function importPublic(curve: OkpCurve, raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: curve, x: b64u(raw) }, format: 'jwk' });
}

interface CacheEntry<K> {
  readonly copy: Uint8Array;
  readonly key: K;
}

/**
 * The most recently used KeyObjects, keyed by the caller's array (identity) and checked against
 * a copy of its bytes. Bounded: a KeyObject is ~1 KB of native memory plus handles the garbage
 * collector visits, so caching one per live key made an engine with 10,000 conversations
 * measurably slower to collect; the ratchet reuses only its few current keys.
 */
class KeyCache<K> {
  readonly #map = new Map<Uint8Array, CacheEntry<K>>();
  constructor(private readonly capacity: number) {}
  get(raw: Uint8Array): K | undefined {
    const hit = this.#map.get(raw);
    if (hit === undefined || !constantTimeEqual(hit.copy, raw)) return undefined;
    this.#map.delete(raw); // most recently used last
    this.#map.set(raw, hit);
    return hit.key;
  }
  set(raw: Uint8Array, key: K): K {
    this.#map.delete(raw);
    this.#map.set(raw, { copy: new Uint8Array(raw), key });
    if (this.#map.size > this.capacity) this.#map.delete(this.#map.keys().next().value!);
    return key;
  }
  delete(raw: Uint8Array, key: K): void {
    if (this.#map.get(raw)?.key === key) this.#map.delete(raw);
  }
}

const KEY_CACHE_ENTRIES = 64;
const xPrivateCache = new KeyCache<KeyObject>(KEY_CACHE_ENTRIES);
const xPublicCache = new KeyCache<KeyObject>(KEY_CACHE_ENTRIES);
const edPrivateCache = new KeyCache<KeyObject>(KEY_CACHE_ENTRIES);
const edPublicCache = new KeyCache<KeyObject>(KEY_CACHE_ENTRIES);

function xPrivate(raw: Uint8Array): KeyObject {
  return xPrivateCache.get(raw) ?? xPrivateCache.set(raw, importPrivate('X25519', raw));
}
function xPublic(raw: Uint8Array): KeyObject {
  return xPublicCache.get(raw) ?? xPublicCache.set(raw, importPublic('X25519', raw));
}
function edPrivate(raw: Uint8Array): KeyObject {
  return edPrivateCache.get(raw) ?? edPrivateCache.set(raw, importPrivate('Ed25519', raw));
}
function edPublic(raw: Uint8Array): KeyObject {
  return edPublicCache.get(raw) ?? edPublicCache.set(raw, importPublic('Ed25519', raw));
}

/**
 * The X25519 public key of a cached secret (HPKE's open needs pkR again for every handshake on
 * an inbox; a generated pair's is known at once). Values are handed out as copies.
 */
const xPublicOfSecretCache = new KeyCache<Uint8Array>(KEY_CACHE_ENTRIES);

function generate(curve: OkpCurve, cache: KeyCache<KeyObject>): KeyPair {
  const secretKey = randomBytes(32);
  const privateKey = importPrivate(curve, secretKey);
  const publicKey = rawPublicOf(privateKey);
  cache.set(secretKey, privateKey);
  if (curve === 'X25519') xPublicOfSecretCache.set(secretKey, publicKey.slice());
  return { secretKey, publicKey };
}

// ---------------------------------------------------------------------------------------------
// strict Ed25519 checks that OpenSSL does not make (it accepts small-order and non-canonical
// public keys: the identity key with R = identity, S = 0 verifies for every message); noble's
// strict mode rejects these. Remaining difference: OpenSSL checks the cofactorless equation,
// noble the cofactored one, so the two can disagree on signatures crafted with a mixed-order
// key or R. Honest signatures verify under both.

/** The 8 small-order points, canonical encodings (the torsion subgroup). */
const SMALL_ORDER_POINTS: readonly Uint8Array[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
].map((h) => Uint8Array.from(Buffer.from(h, 'hex')));

/** Group order L, little-endian. */
const L_LE = Uint8Array.from(Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex'));
/** p = 2^255 - 19, little-endian. */
const P_LE = Uint8Array.from(Buffer.from('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex'));

/** a < b for 32-byte little-endian numbers (variable time: public data only). */
function lessThanLE(a: Uint8Array, b: Uint8Array, offset = 0, topMask = 0xff): boolean {
  for (let i = 31; i >= 0; i--) {
    const x = i === 31 ? a[offset + i]! & topMask : a[offset + i]!;
    const y = b[i]!;
    if (x !== y) return x < y;
  }
  return false;
}

/** Canonical encoding (y < p; x = 0 only with sign bit 0) and not of small order. */
function isStrictPublicKey(pk: Uint8Array): boolean {
  if (!lessThanLE(pk, P_LE, 0, 0x7f)) return false;
  if ((pk[31]! & 0x80) !== 0) {
    // y = 1 and y = p - 1 have x = 0, which must be encoded with a zero sign bit.
    const y = pk.slice();
    y[31] = y[31]! & 0x7f;
    if (constantTimeEqual(y, SMALL_ORDER_POINTS[2]!) || constantTimeEqual(y, SMALL_ORDER_POINTS[3]!)) return false;
  }
  for (const s of SMALL_ORDER_POINTS) if (constantTimeEqual(pk, s)) return false;
  return true;
}

function hkdfManual(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const prk = createHmac('sha256', salt.length === 0 ? new Uint8Array(32) : salt).update(ikm).digest();
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  for (let i = 0, offset = 0; offset < length; i++) {
    t = createHmac('sha256', prk).update(t).update(info).update(Uint8Array.of(i + 1)).digest();
    out.set(t.subarray(0, Math.min(32, length - offset)), offset);
    offset += 32;
  }
  prk.fill(0);
  return out;
}

export const nodeProvider: CryptoProvider = {
  ...nobleProvider,
  name: 'node',

  randomBytes,

  // noble's toMontgomery with the field exponentiation native: ~20 vs ~85 µs (two per session setup).
  ed25519PublicToX25519: ed25519PublicToX25519Native,

  sha256(data) {
    return own(createHash('sha256').update(data).digest());
  },

  hmacSha256(key, data) {
    return own(createHmac('sha256', key).update(data).digest());
  },

  hmacSha512(key, data) {
    return own(createHmac('sha512', key).update(data).digest());
  },

  hkdfSha256(ikm, salt, info, length) {
    if (!Number.isSafeInteger(length) || length < 0 || length > 255 * 32) {
      throw new RangeError('HKDF-SHA256 length must be 0..8160');
    }
    if (length === 0) return new Uint8Array(0);
    // Two HMAC calls beat hkdfSync for short outputs (135k/s vs 80k/s for 32 B), and hkdfSync
    // refuses info longer than 1,024 bytes, which the RFC allows.
    if (length <= 64 || info.length > 1024) return hkdfManual(ikm, salt, info, length);
    return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
  },

  aeadSeal(key, nonce, plaintext, aad) {
    requireLength('key', key, 32);
    requireLength('nonce', nonce, 12);
    const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    cipher.setAAD(aad, { plaintextLength: plaintext.length });
    const body = cipher.update(plaintext);
    const last = cipher.final();
    const tag = cipher.getAuthTag();
    const out = new Uint8Array(body.length + last.length + 16);
    out.set(body, 0);
    out.set(last, body.length);
    out.set(tag, body.length + last.length);
    return out;
  },

  aeadOpen(key, nonce, ciphertext, aad) {
    if (key.length !== 32 || nonce.length !== 12 || ciphertext.length < 16) return null;
    const bodyLength = ciphertext.length - 16;
    // A tag mismatch is an ordinary outcome here (trial decryption, forged input): make the
    // exception OpenSSL's binding throws cheap by not capturing a stack trace for it.
    const stackTraceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
      decipher.setAuthTag(ciphertext.subarray(bodyLength));
      decipher.setAAD(aad, { plaintextLength: bodyLength });
      const body = decipher.update(ciphertext.subarray(0, bodyLength));
      const last = decipher.final(); // throws when the tag does not verify
      if (last.length === 0) return own(body);
      const out = new Uint8Array(body.length + last.length);
      out.set(body, 0);
      out.set(last, body.length);
      return out;
    } catch {
      return null;
    } finally {
      Error.stackTraceLimit = stackTraceLimit;
    }
  },

  x25519Generate(): KeyPair {
    return generate('X25519', xPrivateCache);
  },

  x25519PublicKey(secretKey) {
    requireLength('X25519 secret key', secretKey, 32);
    const known = xPublicOfSecretCache.get(secretKey);
    if (known !== undefined) return known.slice();
    const publicKey = rawPublicOf(xPrivate(secretKey));
    xPublicOfSecretCache.set(secretKey, publicKey.slice());
    return publicKey;
  },

  x25519(secretKey, peerPublicKey) {
    if (secretKey.length !== 32 || peerPublicKey.length !== 32) return null;
    try {
      // OpenSSL clamps the scalar and masks the top bit of u (RFC 7748); it throws
      // "failed during derivation" when the result is all zero.
      const shared = own(diffieHellman({ privateKey: xPrivate(secretKey), publicKey: xPublic(peerPublicKey) }));
      return isAllZero(shared) ? null : shared;
    } catch {
      return null;
    }
  },

  ed25519Generate(): KeyPair {
    return generate('Ed25519', edPrivateCache);
  },

  ed25519PublicKey(secretKey) {
    requireLength('Ed25519 secret key', secretKey, 32);
    return rawPublicOf(edPrivate(secretKey));
  },

  ed25519Sign(secretKey, message) {
    requireLength('Ed25519 secret key', secretKey, 32);
    return own(nodeSign(null, message, edPrivate(secretKey)));
  },

  ed25519SecretToX25519(secretKey) {
    requireLength('Ed25519 secret key', secretKey, 32);
    // RFC 8032 §5.1.5's scalar: the first half of SHA-512(seed), clamped as X25519 clamps it
    // (noble's toMontgomerySecret, byte for byte). The second half (the signing prefix) is wiped.
    const digest = createHash('sha512').update(secretKey).digest();
    const scalar = new Uint8Array(digest.subarray(0, 32));
    digest.fill(0);
    scalar[0]! &= 248;
    scalar[31]! &= 127;
    scalar[31]! |= 64;
    return scalar;
  },

  ed25519Verify(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    // S < L (OpenSSL checks too), and the public-key checks OpenSSL does not make.
    if (!lessThanLE(signature, L_LE, 32)) return false;
    if (!isStrictPublicKey(publicKey)) return false;
    try {
      return nodeVerify(null, message, edPublic(publicKey), signature);
    } catch {
      return false;
    }
  },

  mlKem768Generate(seed?: Uint8Array): KeyPair {
    return seed === undefined ? mlKem768GenerateNative() : nobleProvider.mlKem768Generate(seed);
  },

  mlKem768Encapsulate(publicKey, randomness?: Uint8Array): KemEncapsulation | null {
    return randomness === undefined ? mlKem768EncapsulateNative(publicKey) : nobleProvider.mlKem768Encapsulate(publicKey, randomness);
  },

  mlKem768Decapsulate(ciphertext, secretKey) {
    return mlKem768DecapsulateNative(ciphertext, secretKey);
  },

  async hpkeSeal(recipientPublicKey, info, aad, plaintext, ephemeralSeed?: Uint8Array): Promise<HpkeSealed> {
    return hpkeSealBase(nodeProvider, recipientPublicKey, info, aad, plaintext, ephemeralSeed);
  },

  async hpkeOpen(recipientSecretKey, enc, info, aad, ciphertext) {
    return hpkeOpenBase(nodeProvider, recipientSecretKey, enc, info, aad, ciphertext);
  },
};
