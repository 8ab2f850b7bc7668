/**
 * Signed requests to the services (the RFC 9421 profile of `@umbra/protocol/services`): inbox
 * requests to an RSA and member/owner requests to a directory. Ed25519 through a CryptoProvider.
 */
import { nobleProvider, toBase64Url, type CryptoProvider } from '@umbra/protocol';
import { base64, contentDigest, signatureBase, signatureParams, splitPathAndQuery } from '@umbra/protocol/services';

export interface Ed25519Key {
  /** 32-byte raw public key. */
  readonly publicKey: Uint8Array;
  /** 32-byte raw seed (secret). */
  readonly seed: Uint8Array;
}

export function ed25519FromSeed(seed: Uint8Array, crypto: CryptoProvider = nobleProvider): Ed25519Key {
  if (seed.length !== 32) throw new RangeError('Ed25519 seed must be 32 bytes');
  return { publicKey: crypto.ed25519PublicKey(seed), seed };
}

/** A directory keyid: the base64url raw public key. */
export function keyidOf(publicKey: Uint8Array): string {
  return toBase64Url(publicKey);
}

/** Headers that sign `method pathAndQuery body` with `key` under `keyid`. */
export function signRequest(
  key: Ed25519Key,
  keyid: string,
  method: string,
  pathAndQuery: string,
  body: Uint8Array,
  crypto: CryptoProvider = nobleProvider,
  nowS: number = Math.floor(Date.now() / 1000),
): Record<string, string> {
  const digest = contentDigest(body);
  const params = signatureParams(nowS, toBase64Url(crypto.randomBytes(16)), keyid);
  const { path, query } = splitPathAndQuery(pathAndQuery);
  const sig = crypto.ed25519Sign(key.seed, new TextEncoder().encode(signatureBase(method, path, query, digest, params)));
  return { 'content-digest': digest, 'signature-input': `sig1=${params}`, signature: `sig1=:${base64(sig)}:` };
}
