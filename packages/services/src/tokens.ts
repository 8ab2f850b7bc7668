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
 * - Clients mint with the SDK's platform-neutral `TokenMinter` (`@umbra/client/http`, RFC 9474
 *   Blind/Finalize with native BigInt); privacypass-ts' own `Client` produces interchangeable
 *   requests (see the tests). The servers carry no client code.
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
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { TokenChallenge, util as ppUtil } from '@cloudflare/privacypass-ts';
import { b64u, equalBytes, fromB64u } from './bytes.ts';

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

/** `Authorization` value for one token (RFC 9577 §2.2: padded base64url, quoted). */
export function authorizationHeader(token: Uint8Array): string {
  return `PrivateToken token="${b64uPadded(token)}"`;
}
