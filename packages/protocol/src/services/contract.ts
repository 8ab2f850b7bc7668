/**
 * The wire contract of the Communicator services (issuer, SSA, RSA, directory) that servers and
 * clients both implement: labels, the bytes a signature covers, the request-signature base
 * string, the Privacy Pass challenge bytes and the JSON field names of descriptors. Pure (noble
 * only, no node: imports), so the client SDK and the services import the same definitions and
 * neither side's runtime drags the other along. Servers keep their node:crypto fast paths for
 * hashing and signing; what they hash and sign is defined here.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { concat, toBase64Url, utf8 } from '../bytes.ts';

export const LABEL_DESCRIPTOR = utf8('umbra/v1/descriptor');
export const LABEL_RSA_WS = utf8('umbra/v1/rsa-ws');
export const LABEL_RSA_STORE = utf8('umbra/v1/rsa-store');

/** LP(x) = 2-byte big-endian length ‖ x (communicator.md §1). */
export function lp(x: Uint8Array): Uint8Array {
  if (x.length > 0xffff) throw new RangeError('lp: field too long');
  return concat(new Uint8Array([x.length >> 8, x.length & 0xff]), x);
}

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

// ---- signed descriptors ------------------------------------------------------------------

/** What a service key signs for a descriptor: LP(label) ‖ payload (the JSON bytes as sent). */
export function descriptorSigningBytes(payload: Uint8Array): Uint8Array {
  return concat(lp(LABEL_DESCRIPTOR), payload);
}

/** A descriptor as served at /.well-known/communicator.json. */
export interface SignedDescriptorJson {
  payload: string;
  sig: string;
}

/** The token parameters in a descriptor body (`token`). */
export interface DescriptorTokenJson {
  issuer_name: string;
  origin_info: string;
  token_keys: string[];
}

/** One published address key in an RSA descriptor body (`address_keys`). */
export interface AddressKeyJson {
  kid: number;
  class: 'ephemeral' | 'long';
  X: string;
  derive_until: number;
  resolve_until: number;
}

// ---- RSA inbox WebSocket -----------------------------------------------------------------

/** What an inbox owner signs to open a WebSocket: LP(label) ‖ inbox_id ‖ nonce ‖ u64be(ts). */
export function wsAuthMessage(inboxId: Uint8Array, nonce: Uint8Array, ts: number): Uint8Array {
  return concat(lp(LABEL_RSA_WS), inboxId, nonce, u64be(ts));
}

// ---- request signatures (RFC 9421 profile, docs/SERVICES.md) ------------------------------

/** The covered components, in order. */
export const SIGNATURE_COVERED = '("@method" "@path" "@query" "content-digest")';
/** Receivers reject `created` further than this from their clock. */
export const MAX_SIGNATURE_SKEW_S = 120;

/** `@signature-params` (and the Signature-Input value after `sig1=`). */
export function signatureParams(createdS: number, nonce: string, keyid: string): string {
  return `${SIGNATURE_COVERED};created=${createdS};nonce="${nonce}";keyid="${keyid}";alg="ed25519"`;
}

/** The RFC 9421 §2.5 signature base, lines joined by "\n". `query` is "" or starts with "?". */
export function signatureBase(method: string, path: string, query: string, digest: string, params: string): string {
  return [
    `"@method": ${method.toUpperCase()}`,
    `"@path": ${path}`,
    `"@query": ${query === '' ? '?' : query}`,
    `"content-digest": ${digest}`,
    `"@signature-params": ${params}`,
  ].join('\n');
}

export function splitPathAndQuery(pathAndQuery: string): { path: string; query: string } {
  const i = pathAndQuery.indexOf('?');
  return i < 0 ? { path: pathAndQuery, query: '' } : { path: pathAndQuery.slice(0, i), query: pathAndQuery.slice(i) };
}

/** Standard base64 with padding (what RFC 9421/9530 structured-field byte sequences use). */
export function base64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

/** Content-Digest (RFC 9530) of a body: `sha-256=:<base64>:`. */
export function contentDigest(body: Uint8Array): string {
  return `sha-256=:${base64(sha256(body))}:`;
}

// ---- Privacy Pass -------------------------------------------------------------------------

export const TOKEN_TYPE_BLIND_RSA = 0x0002;

/**
 * The serialized TokenChallenge (RFC 9577 §2.1) of a type 0x0002 token for one origin, with an
 * empty redemption context: token_type ‖ LP(issuer_name) ‖ u8 0 ‖ LP(origin_info).
 */
export function tokenChallengeBytes(issuerName: string, originInfo: string): Uint8Array {
  return concat(new Uint8Array([TOKEN_TYPE_BLIND_RSA >> 8, TOKEN_TYPE_BLIND_RSA & 0xff]), lp(utf8(issuerName)), new Uint8Array([0]), lp(utf8(originInfo)));
}

/** base64url with `=` padding (RFC 9577 §2.1.2 / §2.2 require it for challenges, keys and tokens). */
export function toBase64UrlPadded(bytes: Uint8Array): string {
  const bare = toBase64Url(bytes);
  return bare + '='.repeat((4 - (bare.length % 4)) % 4);
}

/** `Authorization` value for one token (RFC 9577 §2.2: padded base64url, quoted). */
export function authorizationHeader(token: Uint8Array): string {
  return `PrivateToken token="${toBase64UrlPadded(token)}"`;
}
