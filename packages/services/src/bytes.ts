/** Byte helpers for the services (pure: no node: imports, usable from browsers). */

import { concat, constantTimeEqual, fromBase64Url, readU32be, toBase64Url, u32be, utf8 } from '@umbra/protocol';

export { concat, readU32be, u32be, utf8 };

// Node's native base64url codec when there is one (servers); the protocol's portable one otherwise.
// Same results: unpadded output, and decoding accepts only the canonical encoding (checked by
// re-encoding), so every byte string still has exactly one accepted text.
const NodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;

/** base64url without padding. */
export function b64u(bytes: Uint8Array): string {
  return NodeBuffer ? NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url') : toBase64Url(bytes);
}

/** Strict base64url (no padding) decoding; null when `text` is not canonical base64url. */
export function fromB64u(text: unknown): Uint8Array | null {
  if (typeof text !== 'string') return null;
  if (!NodeBuffer) return fromBase64Url(text);
  const buf = NodeBuffer.from(text, 'base64url');
  return buf.toString('base64url') === text ? new Uint8Array(buf) : null;
}

/** Constant-time comparison. */
export const equalBytes = constantTimeEqual;

export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}
