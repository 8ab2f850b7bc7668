/**
 * Schema and signature check of a fetched RSA descriptor (`/.well-known/communicator.json`),
 * before the SSA caches it or hands it on: whatever an arbitrary server answers, only a
 * well-formed, self-consistently signed, unexpired RSA descriptor leaves the SSA, re-serialized
 * as exactly `{payload, sig}`.
 */
import { isValidPoint } from '@umbra/protocol/services';
import { fromB64u } from './bytes.ts';
import { verifyDescriptorSignature } from './common.ts';

export interface SignedDescriptor {
  payload: string;
  sig: string;
}

const MAX_ADDRESS_KEYS = 64;

function isUint(v: unknown, max = Number.MAX_SAFE_INTEGER): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= max;
}

function record(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

function addressKeyProblem(k: unknown): string | null {
  const r = record(k);
  if (!r) return 'an address key is not an object';
  if (!isUint(r.kid, 0xffff_ffff)) return 'an address key has no u32 kid';
  if (r.class !== 'ephemeral' && r.class !== 'long') return 'an address key has an unknown class';
  const X = fromB64u(r.X);
  if (!X || X.length !== 32 || !isValidPoint(X)) return 'an address key is not a canonical ristretto255 point';
  if (!isUint(r.derive_until) || !isUint(r.resolve_until) || r.resolve_until < r.derive_until) return 'an address key has malformed times';
  return null;
}

/** Parses `body` (the raw answer) as a signed RSA descriptor; `now` in ms. */
export function checkDescriptor(body: Uint8Array, now: number): { ok: true; descriptor: SignedDescriptor } | { ok: false; reason: string } {
  let outer: Record<string, unknown> | null;
  try {
    outer = record(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)));
  } catch {
    return { ok: false, reason: 'the answer is not JSON' };
  }
  if (!outer || typeof outer.payload !== 'string' || typeof outer.sig !== 'string') return { ok: false, reason: 'the answer is not a signed descriptor {payload, sig}' };
  const payload = fromB64u(outer.payload);
  const sig = fromB64u(outer.sig);
  if (!payload || !sig || sig.length !== 64) return { ok: false, reason: 'payload or sig is not base64url (sig: 64 bytes)' };
  let d: Record<string, unknown> | null;
  try {
    d = record(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)));
  } catch {
    return { ok: false, reason: 'the payload is not JSON' };
  }
  if (!d) return { ok: false, reason: 'the payload is not an object' };
  if (d.v !== 1) return { ok: false, reason: 'unsupported descriptor version' };
  if (!Array.isArray(d.roles) || !d.roles.includes('rsa')) return { ok: false, reason: 'not an RSA descriptor' };
  const serviceKey = fromB64u(d.service_key);
  if (!serviceKey || serviceKey.length !== 32) return { ok: false, reason: 'service_key must be 32 bytes' };
  if (!verifyDescriptorSignature(serviceKey, payload, sig)) return { ok: false, reason: 'the descriptor signature does not verify' };
  if (!isUint(d.issued_at) || !isUint(d.expires) || d.expires * 1000 < now) return { ok: false, reason: 'the descriptor is expired or has malformed times' };
  if (!Array.isArray(d.address_keys) || d.address_keys.length === 0 || d.address_keys.length > MAX_ADDRESS_KEYS)
    return { ok: false, reason: `address_keys must list 1..${MAX_ADDRESS_KEYS} keys` };
  for (const k of d.address_keys) {
    const p = addressKeyProblem(k);
    if (p) return { ok: false, reason: p };
  }
  const token = record(d.token);
  if (!token || typeof token.issuer_name !== 'string' || typeof token.origin_info !== 'string' || !Array.isArray(token.token_keys))
    return { ok: false, reason: 'the descriptor has no token section' };
  return { ok: true, descriptor: { payload: outer.payload, sig: outer.sig } };
}
