/**
 * Client side of Privacy Pass type 0x0002 (blind RSA-2048, RSABSSA-SHA384-PSS-Deterministic;
 * RFC 9578 / RFC 9474): Blind and Finalize with native BigInt (about 1 ms per token), the same
 * bytes the services' tests check against @cloudflare/privacypass-ts. Platform-neutral: noble
 * hashes, the platform CSPRNG (crypto.getRandomValues) and WebCrypto's RSA-PSS to check the
 * issuer's signature before a token is kept.
 */
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { concat, toBase64Url } from '@umbra/protocol';
import { TOKEN_TYPE_BLIND_RSA } from '@umbra/protocol/services';

export const NK = 256; // RSA-2048 modulus length in bytes
const SALT_LENGTH = 48; // SHA-384 output length

/** Thrown for a token key that is not an RSASSA-PSS SubjectPublicKeyInfo of an RSA-2048 key. */
export class TokenKeyError extends Error {
  constructor(message: string) {
    super(`token key: ${message}`);
    this.name = 'TokenKeyError';
  }
}

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

function bytesToBig(b: Uint8Array): bigint {
  let hex = '';
  for (let i = 0; i < b.length; i++) hex += b[i]!.toString(16).padStart(2, '0');
  return hex.length === 0 ? 0n : BigInt('0x' + hex);
}

function bigToBytes(x: bigint, len: number): Uint8Array {
  const hex = x.toString(16).padStart(len * 2, '0');
  if (hex.length > len * 2) throw new RangeError('integer too large');
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return result;
}

function modInverse(a: bigint, m: bigint): bigint | null {
  let [oldR, r] = [a % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) return null;
  return ((oldS % m) + m) % m;
}

function mgf1Sha384(seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let filled = 0;
  for (let counter = 0; filled < length; counter++) {
    const c = new Uint8Array([counter >>> 24, (counter >>> 16) & 0xff, (counter >>> 8) & 0xff, counter & 0xff]);
    const block = sha384(concat(seed, c));
    out.set(block.subarray(0, Math.min(block.length, length - filled)), filled);
    filled += block.length;
  }
  return out;
}

/** EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with SHA-384, MGF1-SHA-384, 48-byte salt. */
function emsaPssEncode(msg: Uint8Array, emBits: number): Uint8Array {
  const emLen = Math.ceil(emBits / 8);
  const mHash = sha384(msg);
  const salt = randomBytes(SALT_LENGTH);
  const h = sha384(concat(new Uint8Array(8), mHash, salt));
  const db = new Uint8Array(emLen - 48 - 1);
  db[db.length - SALT_LENGTH - 1] = 0x01;
  db.set(salt, db.length - SALT_LENGTH);
  const mask = mgf1Sha384(h, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  return concat(db, h, new Uint8Array([0xbc]));
}

// ---- the token key: RSASSA-PSS SubjectPublicKeyInfo (RFC 9578 §6.5) → n, e --------------------

/** One DER TLV at `at`: its tag, and where its contents start and end. */
function derAt(der: Uint8Array, at: number): { tag: number; start: number; end: number } {
  if (at + 2 > der.length) throw new TokenKeyError('truncated');
  const tag = der[at]!;
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || start + n > der.length) throw new TokenKeyError('bad length');
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | der[start + i]!;
    start += n;
  }
  if (start + len > der.length) throw new TokenKeyError('truncated');
  return { tag, start, end: start + len };
}

function unsignedInteger(der: Uint8Array, tlv: { tag: number; start: number; end: number }): Uint8Array {
  if (tlv.tag !== 0x02) throw new TokenKeyError('expected an INTEGER');
  let s = tlv.start;
  while (s < tlv.end - 1 && der[s] === 0) s++;
  return der.subarray(s, tlv.end);
}

/** SPKI = SEQUENCE { AlgorithmIdentifier, BIT STRING { RSAPublicKey = SEQUENCE { n, e } } }. */
function rsaPublicKeyOf(spki: Uint8Array): { n: Uint8Array; e: Uint8Array } {
  const outer = derAt(spki, 0);
  if (outer.tag !== 0x30 || outer.end !== spki.length) throw new TokenKeyError('not a SubjectPublicKeyInfo');
  const alg = derAt(spki, outer.start);
  if (alg.tag !== 0x30) throw new TokenKeyError('no AlgorithmIdentifier');
  const bits = derAt(spki, alg.end);
  if (bits.tag !== 0x03 || spki[bits.start] !== 0) throw new TokenKeyError('no public key BIT STRING');
  const rsa = derAt(spki, bits.start + 1);
  if (rsa.tag !== 0x30) throw new TokenKeyError('not an RSAPublicKey');
  const nTlv = derAt(spki, rsa.start);
  const eTlv = derAt(spki, nTlv.end);
  return { n: unsignedInteger(spki, nTlv), e: unsignedInteger(spki, eTlv) };
}

export interface IssuerPublicKey {
  tokenKey: Uint8Array;
  n: bigint;
  e: bigint;
  tokenKeyId: Uint8Array;
  /** WebCrypto RSA-PSS (SHA-384) verification key, for the Finalize check. */
  verifyKey: CryptoKey;
}

export async function parseIssuerPublicKey(tokenKey: Uint8Array): Promise<IssuerPublicKey> {
  const { n, e } = rsaPublicKeyOf(tokenKey);
  if (n.length !== NK) throw new TokenKeyError(`must be RSA-${NK * 8}`);
  const verifyKey = await crypto.subtle.importKey('jwk', { kty: 'RSA', n: toBase64Url(n), e: toBase64Url(e), ext: true }, { name: 'RSA-PSS', hash: 'SHA-384' }, false, ['verify']);
  return { tokenKey, n: bytesToBig(n), e: bytesToBig(e), tokenKeyId: sha256(tokenKey), verifyKey };
}

export interface PendingToken {
  request: Uint8Array;
  finalize(response: Uint8Array): Promise<Uint8Array>;
}

/** Makes token requests for one (issuer key, origin challenge) pair and finalizes the answers. */
export class TokenMinter {
  private readonly challengeDigest: Uint8Array;

  constructor(private readonly key: IssuerPublicKey, challenge: Uint8Array) {
    this.challengeDigest = sha256(challenge);
  }

  begin(): PendingToken {
    const { n, e } = this.key;
    const nonce = randomBytes(32);
    const authInput = concat(new Uint8Array([TOKEN_TYPE_BLIND_RSA >> 8, TOKEN_TYPE_BLIND_RSA & 0xff]), nonce, this.challengeDigest, this.key.tokenKeyId);
    const m = bytesToBig(emsaPssEncode(authInput, NK * 8 - 1));
    let r: bigint;
    let inv: bigint | null;
    do {
      r = bytesToBig(randomBytes(NK)) % n;
      inv = r > 1n ? modInverse(r, n) : null;
    } while (inv === null);
    const blinded = (m * modPow(r, e, n)) % n;
    const request = concat(new Uint8Array([TOKEN_TYPE_BLIND_RSA >> 8, TOKEN_TYPE_BLIND_RSA & 0xff, this.key.tokenKeyId[31]!]), bigToBytes(blinded, NK));
    const key = this.key;
    const rInv = inv;
    return {
      request,
      async finalize(response: Uint8Array): Promise<Uint8Array> {
        if (response.length !== NK) throw new RangeError(`token response must be ${NK} bytes`);
        const sig = bigToBytes((bytesToBig(response) * rInv) % n, NK);
        const ok = await crypto.subtle.verify({ name: 'RSA-PSS', saltLength: SALT_LENGTH }, key.verifyKey, new Uint8Array(sig), new Uint8Array(authInput));
        if (!ok) throw new Error('token signature from the issuer does not verify');
        return concat(authInput, sig);
      },
    };
  }
}
