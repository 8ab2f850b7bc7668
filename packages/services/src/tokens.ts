/**
 * Privacy Pass type 0x0002 (publicly verifiable, blind RSA-2048, RSABSSA-SHA384-PSS-Deterministic;
 * RFC 9578 / RFC 9474) for the Umbra services.
 *
 * - Issuer: keys are plain node:crypto RSA-2048 keys. BlindSign is the raw RSA private operation
 *   (`privateDecrypt` with RSA_NO_PADDING, i.e. s = m^d mod n with CRT), followed by the
 *   RFC 9474 §4.3 self-check m == s^e mod n (`publicEncrypt` with RSA_NO_PADDING).
 * - Origins (SSA, RSA): `TokenVerifier` checks the token type, the challenge digest for this
 *   origin, the token key id, and the RSASSA-PSS signature, and gives the spent-nonce key
 *   H(nonce ‖ token_key_id) that the caller records in the same transaction as the paid work.
 * - Clients: `TokenMinter` does the RFC 9474 Blind/Finalize steps with native BigInt (about
 *   1 ms per token instead of ~30 ms in privacypass-ts); privacypass-ts' own `Client` produces
 *   interchangeable requests (see the tests).
 * - HTTP (RFC 9577): `wwwAuthenticate` builds the one `WWW-Authenticate: PrivateToken` value every
 *   origin sends, with base64url *including padding* (RFC 9577 §2.1.2); `parseAuthorization` reads
 *   RFC 9110 credentials (token or quoted-string values, unknown parameters ignored).
 * Wire formats (TokenChallenge, TokenRequest, TokenResponse, Token, the SPKI with the
 * RSASSA-PSS OID) come from @cloudflare/privacypass-ts 0.8.1.
 */
import {
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { TokenChallenge, util as ppUtil } from '@cloudflare/privacypass-ts';
import { b64u, concat, equalBytes, fromB64u } from './bytes.ts';

export const TOKEN_TYPE_BLIND_RSA = 0x0002;
export const NK = 256; // RSA-2048 modulus length in bytes
export const TOKEN_LENGTH = 2 + 32 + 32 + 32 + NK; // 354
export const TOKEN_REQUEST_LENGTH = 2 + 1 + NK; // 259
const SALT_LENGTH = 48; // SHA-384 output length
/** Longest `Authorization` value read; a real one is ~490 characters. */
export const MAX_AUTHORIZATION_LENGTH = 4096;

/** RFC 9578 §8 / RFC 9577 §6 media types. */
export const MEDIA_TYPE = {
  issuerDirectory: 'application/private-token-issuer-directory',
  tokenRequest: 'application/private-token-request',
  tokenResponse: 'application/private-token-response',
} as const;

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function sha384(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha384');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

// ---------------------------------------------------------------------------------------------
// base64url with padding (RFC 4648 §5 with the §3.2 padding), which RFC 9577 §2.1.2 / §2.2 and
// RFC 9578 §4 require for challenges, token keys and tokens.

/** base64url with `=` padding. */
export function b64uPadded(bytes: Uint8Array): string {
  const bare = b64u(bytes);
  return bare + '='.repeat((4 - (bare.length % 4)) % 4);
}

/**
 * Decodes padded base64url (what the RFCs send) and, for clients older than the padding fix,
 * unpadded base64url. Canonical only (the padding, if present, is exactly right and the last
 * character carries no stray bits), so each byte string has at most these two texts.
 */
export function fromB64uPadded(text: string): Uint8Array | null {
  const pad = text.length - text.replace(/=+$/, '').length;
  if (pad > 0 && (pad > 2 || text.length % 4 !== 0)) return null;
  const bare = text.slice(0, text.length - pad);
  if (pad > 0 && (4 - (bare.length % 4)) % 4 !== pad) return null;
  return fromB64u(bare);
}

// ---------------------------------------------------------------------------------------------
// Issuer keys

export interface IssuerKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** SubjectPublicKeyInfo with the id-RSASSA-PSS OID (RFC 9578 §6.5): what directories publish. */
  tokenKey: Uint8Array;
  /** token_key_id = SHA-256(tokenKey). */
  tokenKeyId: Uint8Array;
  /** The modulus n, big-endian, NK bytes: a blinded message must be below it. */
  modulus: Uint8Array;
}

export function generateIssuerKey(): IssuerKey {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  return issuerKeyFromPrivate(privateKey);
}

export function issuerKeyFromPkcs8(der: Uint8Array): IssuerKey {
  return issuerKeyFromPrivate(createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' }));
}

export function issuerKeyToPkcs8(key: IssuerKey): Uint8Array {
  return new Uint8Array(key.privateKey.export({ format: 'der', type: 'pkcs8' }));
}

function issuerKeyFromPrivate(privateKey: KeyObject): IssuerKey {
  const publicKey = createPublicKey(privateKey);
  const spki = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));
  const tokenKey = ppUtil.convertEncToRSASSAPSS(spki);
  const modulus = fromB64u(publicKey.export({ format: 'jwk' }).n);
  if (!modulus || modulus.length !== NK) throw new Error(`issuer keys must be RSA-${NK * 8}`);
  return { privateKey, publicKey, tokenKey, tokenKeyId: sha256(tokenKey), modulus };
}

/** RFC 9578 §6.2 `truncated_token_key_id`: the last byte of token_key_id. */
export function truncatedTokenKeyId(key: { tokenKeyId: Uint8Array }): number {
  return key.tokenKeyId[31]!;
}

/** A token key as published (RSASSA-PSS SPKI) → a node:crypto public key. */
export function publicKeyFromTokenKey(tokenKey: Uint8Array): KeyObject {
  const spki = ppUtil.convertRSASSAPSSToEnc(tokenKey);
  return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
}

export type TokenRequestParse<K extends IssuerKey> =
  | { kind: 'ok'; key: K; blindedMsg: Uint8Array }
  | { kind: 'unprocessable'; reason: string };

/** Big-endian a < b for equal-length byte strings (public values: no constant time needed). */
function lessThan(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

/**
 * RFC 9578 §6.2 checks of one TokenRequest (token_type ‖ truncated_token_key_id ‖ blinded_msg),
 * all cheap (no RSA operation): a supported token_type, a truncated_token_key_id that names one
 * of `keys`, a blinded_msg of Nk bytes, and (RFC 9474 §4.3, RSASP1's input range) below the
 * modulus. Any failure is the RFC's 422.
 */
export function parseTokenRequest<K extends IssuerKey>(tokenRequest: Uint8Array, keys: ReadonlyMap<number, K>): TokenRequestParse<K> {
  if (tokenRequest.length < 2) return { kind: 'unprocessable', reason: `a token request is ${TOKEN_REQUEST_LENGTH} bytes` };
  const type = (tokenRequest[0]! << 8) | tokenRequest[1]!;
  if (type !== TOKEN_TYPE_BLIND_RSA) return { kind: 'unprocessable', reason: 'token_type must be 0x0002 (Blind RSA 2048)' };
  if (tokenRequest.length !== TOKEN_REQUEST_LENGTH) return { kind: 'unprocessable', reason: `a type 0x0002 token request is ${TOKEN_REQUEST_LENGTH} bytes` };
  const key = keys.get(tokenRequest[2]!);
  if (!key) return { kind: 'unprocessable', reason: 'truncated_token_key_id names no key of this issuer' };
  const blindedMsg = tokenRequest.subarray(3);
  if (!lessThan(blindedMsg, key.modulus)) return { kind: 'unprocessable', reason: 'blinded_msg is not below the key modulus' };
  return { kind: 'ok', key, blindedMsg };
}

/**
 * RFC 9474 §4.3 BlindSign of a blinded message `parseTokenRequest` accepted: the TokenResponse
 * (blind_sig, Nk bytes). Throws only on an internal fault (the self-check failing).
 */
export function blindSign(key: IssuerKey, blindedMsg: Uint8Array): Uint8Array {
  const sig = privateDecrypt({ key: key.privateKey, padding: constants.RSA_NO_PADDING }, blindedMsg);
  // RFC 9474 §4.3: the signer checks its own output before releasing it.
  const check = publicEncrypt({ key: key.publicKey, padding: constants.RSA_NO_PADDING }, sig);
  if (!equalBytes(new Uint8Array(check), blindedMsg)) throw new Error('blindSign: RSA self-check failed');
  return new Uint8Array(sig);
}

// ---------------------------------------------------------------------------------------------
// Origins

export function tokenChallenge(issuerName: string, originInfo: string): TokenChallenge {
  return new TokenChallenge(TOKEN_TYPE_BLIND_RSA, issuerName, new Uint8Array(0), [originInfo]);
}

/**
 * The `WWW-Authenticate` value of a Privacy Pass challenge (RFC 9577 §2.1.2): base64url with
 * padding, as quoted-strings (padding `=` is not a token character). SSA, RSA and directory all
 * send this one form.
 */
export function wwwAuthenticate(challenge: Uint8Array, tokenKey: Uint8Array, maxAgeS?: number): string {
  const maxAge = maxAgeS === undefined ? '' : `, max-age=${Math.floor(maxAgeS)}`;
  return `PrivateToken challenge="${b64uPadded(challenge)}", token-key="${b64uPadded(tokenKey)}"${maxAge}`;
}

const TCHAR = "[!#$%&'*+.^_`|~0-9A-Za-z-]";
// auth-param = token BWS "=" BWS ( token / quoted-string ) (RFC 9110 §11.2). The unquoted value
// may also end in "=": privacypass-ts and others in the wild write padded base64url unquoted.
const AUTH_PARAM = new RegExp(`[ \\t]*(${TCHAR}+)[ \\t]*=[ \\t]*(?:"((?:[^"\\\\]|\\\\[\\t !-~])*)"|(${TCHAR}+=*))[ \\t]*(,|$)`, 'y');

/**
 * The parameters of `PrivateToken` credentials (RFC 9110 §11.4 / RFC 9577 §2.2): the scheme is
 * case-insensitive, parameter names are lowercased, values may be tokens or quoted-strings, and
 * unknown parameters are kept for the caller to ignore. Null when it is not one well-formed
 * `PrivateToken` credential, a parameter repeats, or it is over MAX_AUTHORIZATION_LENGTH.
 */
export function parseAuthorization(header: string): Map<string, string> | null {
  if (header.length > MAX_AUTHORIZATION_LENGTH) return null;
  const scheme = /^PrivateToken[ ]+/i.exec(header);
  if (!scheme) return null;
  const params = new Map<string, string>();
  let pos = scheme[0].length;
  for (;;) {
    AUTH_PARAM.lastIndex = pos;
    const m = AUTH_PARAM.exec(header);
    if (!m) return null;
    const name = m[1]!.toLowerCase();
    if (params.has(name)) return null;
    params.set(name, m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!);
    pos = AUTH_PARAM.lastIndex;
    if (m[4] === '') return params; // the regex's `$`: the whole header is consumed
  }
}

export type TokenCheck =
  | { kind: 'ok'; spentKey: Uint8Array }
  | { kind: 'missing' | 'malformed' | 'invalid'; reason: string };

export interface VerifierKey {
  tokenKey: Uint8Array;
}

/** One origin's redemption check (the spent-nonce store is the caller's, in its transaction). */
export class TokenVerifier {
  readonly challenge: TokenChallenge;
  readonly challengeBytes: Uint8Array;
  readonly challengeDigest: Uint8Array;
  private readonly keys: { tokenKey: Uint8Array; tokenKeyId: Uint8Array; publicKey: KeyObject }[];

  constructor(readonly issuerName: string, readonly originInfo: string, keys: VerifierKey[]) {
    this.challenge = tokenChallenge(issuerName, originInfo);
    this.challengeBytes = this.challenge.serialize();
    this.challengeDigest = sha256(this.challengeBytes);
    this.keys = keys.map((k) => ({ tokenKey: k.tokenKey, tokenKeyId: sha256(k.tokenKey), publicKey: publicKeyFromTokenKey(k.tokenKey) }));
  }

  /** RFC 9577 WWW-Authenticate value for 401 answers (the first, preferred key). */
  wwwAuthenticate(): string {
    return wwwAuthenticate(this.challengeBytes, this.keys[0]!.tokenKey);
  }

  /** Checks an `Authorization: PrivateToken token=...` header (RFC 9577 §2.2). */
  verifyHeader(header: string | undefined): TokenCheck {
    if (!header) return { kind: 'missing', reason: 'this request needs a Privacy Pass token (Authorization: PrivateToken token=...)' };
    const params = parseAuthorization(header);
    if (!params) return { kind: 'malformed', reason: 'Authorization must be "PrivateToken token=<base64url>"' };
    const text = params.get('token');
    if (text === undefined) return { kind: 'malformed', reason: 'Authorization has no token parameter' };
    const bytes = fromB64uPadded(text);
    if (!bytes) return { kind: 'malformed', reason: 'token is not base64url' };
    return this.verifyToken(bytes);
  }

  /** Checks one serialized Token (354 bytes). */
  verifyToken(token: Uint8Array): TokenCheck {
    if (token.length !== TOKEN_LENGTH) return { kind: 'malformed', reason: `token must be ${TOKEN_LENGTH} bytes` };
    const type = (token[0]! << 8) | token[1]!;
    if (type !== TOKEN_TYPE_BLIND_RSA) return { kind: 'invalid', reason: 'token type must be 0x0002' };
    const nonce = token.subarray(2, 34);
    const digest = token.subarray(34, 66);
    const keyId = token.subarray(66, 98);
    const authenticator = token.subarray(98);
    if (!equalBytes(digest, this.challengeDigest)) return { kind: 'invalid', reason: 'token was not issued for this origin' };
    const key = this.keys.find((k) => equalBytes(k.tokenKeyId, keyId));
    if (!key) return { kind: 'invalid', reason: 'unknown token key' };
    const ok = cryptoVerify(
      'sha384',
      token.subarray(0, 98),
      { key: key.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: SALT_LENGTH },
      authenticator,
    );
    if (!ok) return { kind: 'invalid', reason: 'token signature does not verify' };
    return { kind: 'ok', spentKey: sha256(nonce, keyId) };
  }
}

// ---------------------------------------------------------------------------------------------
// Clients: RFC 9474 Blind / Finalize with native BigInt

function bytesToBig(b: Uint8Array): bigint {
  let hex = '';
  for (let i = 0; i < b.length; i++) hex += b[i]!.toString(16).padStart(2, '0');
  return hex.length === 0 ? 0n : BigInt('0x' + hex);
}

function bigToBytes(x: bigint, len: number): Uint8Array {
  const hex = x.toString(16).padStart(len * 2, '0');
  if (hex.length > len * 2) throw new Error('integer too large');
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
    const block = sha384(seed, c);
    out.set(block.subarray(0, Math.min(block.length, length - filled)), filled);
    filled += block.length;
  }
  return out;
}

/** EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with SHA-384, MGF1-SHA-384, 48-byte salt, emBits = 2047. */
function emsaPssEncode(msg: Uint8Array, emBits: number): Uint8Array {
  const emLen = Math.ceil(emBits / 8);
  const mHash = sha384(msg);
  const salt = new Uint8Array(randomBytes(SALT_LENGTH));
  const h = sha384(new Uint8Array(8), mHash, salt);
  const db = new Uint8Array(emLen - 48 - 1);
  db[db.length - SALT_LENGTH - 1] = 0x01;
  db.set(salt, db.length - SALT_LENGTH);
  const mask = mgf1Sha384(h, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  return concat(db, h, new Uint8Array([0xbc]));
}

export interface IssuerPublicKey {
  tokenKey: Uint8Array;
  n: bigint;
  e: bigint;
  tokenKeyId: Uint8Array;
  publicKey: KeyObject;
}

export function parseIssuerPublicKey(tokenKey: Uint8Array): IssuerPublicKey {
  const publicKey = publicKeyFromTokenKey(tokenKey);
  const jwk = publicKey.export({ format: 'jwk' });
  const n = bytesToBig(fromB64u(jwk.n)!);
  const e = bytesToBig(fromB64u(jwk.e)!);
  return { tokenKey, n, e, tokenKeyId: sha256(tokenKey), publicKey };
}

export interface PendingToken {
  request: Uint8Array;
  finalize(response: Uint8Array): Uint8Array;
}

/** Makes token requests for one (issuer key, origin challenge) pair and finalizes the answers. */
export class TokenMinter {
  private readonly challengeDigest: Uint8Array;

  constructor(private readonly key: IssuerPublicKey, challenge: TokenChallenge | Uint8Array) {
    const bytes = challenge instanceof Uint8Array ? challenge : challenge.serialize();
    this.challengeDigest = sha256(bytes);
  }

  begin(): PendingToken {
    const { n, e } = this.key;
    const nonce = new Uint8Array(randomBytes(32));
    const authInput = concat(new Uint8Array([0x00, 0x02]), nonce, this.challengeDigest, this.key.tokenKeyId);
    const m = bytesToBig(emsaPssEncode(authInput, 2047));
    let r: bigint;
    let inv: bigint | null;
    do {
      r = bytesToBig(new Uint8Array(randomBytes(NK))) % n;
      inv = r > 1n ? modInverse(r, n) : null;
    } while (inv === null);
    const blinded = (m * modPow(r, e, n)) % n;
    const request = concat(new Uint8Array([0x00, 0x02, this.key.tokenKeyId[31]!]), bigToBytes(blinded, NK));
    const key = this.key;
    const rInv = inv;
    return {
      request,
      finalize(response: Uint8Array): Uint8Array {
        if (response.length !== NK) throw new Error(`token response must be ${NK} bytes`);
        const s = (bytesToBig(response) * rInv) % n;
        const sig = bigToBytes(s, NK);
        const ok = cryptoVerify('sha384', authInput, { key: key.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: SALT_LENGTH }, sig);
        if (!ok) throw new Error('token signature from the issuer does not verify');
        return concat(authInput, sig);
      },
    };
  }
}

/** `Authorization` value for one token (RFC 9577 §2.2: padded base64url, quoted). */
export function authorizationHeader(token: Uint8Array): string {
  return `PrivateToken token="${b64uPadded(token)}"`;
}
