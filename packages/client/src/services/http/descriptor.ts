/**
 * Signed service descriptors (/.well-known/communicator.json): fetched, verified against the
 * service key they carry (and a pinned key when the caller has one), and read into typed values.
 */
import { constantTimeEqual, fromBase64Url, fromUtf8, nobleProvider, type CryptoProvider } from '@umbra/protocol';
import { descriptorSigningBytes, tokenChallengeBytes, type AddressKeyJson, type DescriptorTokenJson, type SignedDescriptorJson } from '@umbra/protocol/services';
import { jsonOf, trimUrl } from './problem.ts';

export interface Descriptor {
  serviceKey: Uint8Array;
  body: Record<string, unknown>;
}

/** Thrown for a descriptor that does not parse or verify. */
export class DescriptorError extends Error {
  constructor(message: string) {
    super(`descriptor: ${message}`);
    this.name = 'DescriptorError';
  }
}

/** Fetches and verifies a signed descriptor; with `pinnedKey`, also checks the service key. */
export async function fetchDescriptor(url: string, pinnedKey?: Uint8Array, crypto: CryptoProvider = nobleProvider): Promise<Descriptor> {
  return verifyDescriptor(await jsonOf<SignedDescriptorJson>(await fetch(`${trimUrl(url)}/.well-known/communicator.json`)), pinnedKey, crypto);
}

export function verifyDescriptor(d: SignedDescriptorJson, pinnedKey?: Uint8Array, crypto: CryptoProvider = nobleProvider): Descriptor {
  const payload = typeof d?.payload === 'string' ? fromBase64Url(d.payload) : null;
  const sig = typeof d?.sig === 'string' ? fromBase64Url(d.sig) : null;
  if (!payload || !sig) throw new DescriptorError('malformed');
  const text = fromUtf8(payload);
  let body: unknown;
  try {
    body = text === null ? null : JSON.parse(text);
  } catch {
    body = null;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new DescriptorError('malformed');
  const key = (body as { service_key?: unknown }).service_key;
  const serviceKey = typeof key === 'string' ? fromBase64Url(key) : null;
  if (!serviceKey || serviceKey.length !== 32 || sig.length !== 64 || !crypto.ed25519Verify(serviceKey, descriptorSigningBytes(payload), sig)) {
    throw new DescriptorError('bad signature');
  }
  if (pinnedKey && !constantTimeEqual(pinnedKey, serviceKey)) throw new DescriptorError('service key differs from the pinned key');
  return { serviceKey, body: body as Record<string, unknown> };
}

/** What a client needs to mint tokens for one origin. `challenge` is the serialized TokenChallenge. */
export interface TokenInfo {
  issuerName: string;
  originInfo: string;
  tokenKey: Uint8Array;
  challenge: Uint8Array;
}

/** The `token` parameters of a descriptor body; null when it has none. */
export function tokenInfoFromJson(t: unknown): TokenInfo | null {
  if (t === null || t === undefined) return null;
  const j = t as Partial<DescriptorTokenJson>;
  const tokenKey = Array.isArray(j.token_keys) && typeof j.token_keys[0] === 'string' ? fromBase64Url(j.token_keys[0]) : null;
  if (typeof j.issuer_name !== 'string' || typeof j.origin_info !== 'string' || !tokenKey) throw new DescriptorError('malformed token parameters');
  return { issuerName: j.issuer_name, originInfo: j.origin_info, tokenKey, challenge: tokenChallengeBytes(j.issuer_name, j.origin_info) };
}

export function tokenInfoOf(d: Descriptor): TokenInfo {
  const info = tokenInfoFromJson(d.body.token);
  if (info === null) throw new DescriptorError('no token parameters');
  return info;
}

export interface PublishedAddressKey {
  kid: number;
  class: 'ephemeral' | 'long';
  X: Uint8Array;
  deriveUntil: number;
  resolveUntil: number;
}

export function addressKeysOf(d: Descriptor): PublishedAddressKey[] {
  const keys = d.body.address_keys;
  if (!Array.isArray(keys)) throw new DescriptorError('no address keys');
  return (keys as Partial<AddressKeyJson>[]).map((k) => {
    const X = typeof k.X === 'string' ? fromBase64Url(k.X) : null;
    if (!X || typeof k.kid !== 'number' || (k.class !== 'ephemeral' && k.class !== 'long') || typeof k.derive_until !== 'number' || typeof k.resolve_until !== 'number') {
      throw new DescriptorError('malformed address key');
    }
    return { kid: k.kid, class: k.class, X, deriveUntil: k.derive_until, resolveUntil: k.resolve_until };
  });
}

/** The key of `cls` that is valid for derivation now and lives longest. */
export function currentAddressKey(keys: PublishedAddressKey[], cls: 'ephemeral' | 'long', nowS = Date.now() / 1000): PublishedAddressKey {
  const k = keys.filter((x) => x.class === cls && x.deriveUntil > nowS).sort((a, b) => b.deriveUntil - a.deriveUntil)[0];
  if (!k) throw new Error(`no ${cls} address key valid now`);
  return k;
}
