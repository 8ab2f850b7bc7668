/** Byte helpers for the services (pure: no node: imports, usable from browsers). */

import { concat, constantTimeEqual, fromBase64Url, readU32be, toBase64Url, u32be, utf8 } from '@umbra/protocol';

export { concat, readU32be, u32be, utf8 };

/** base64url without padding (the protocol's encoder). */
export const b64u = toBase64Url;

/** Strict base64url (no padding) decoding; null when `text` is not canonical base64url. */
export function fromB64u(text: unknown): Uint8Array | null {
  return typeof text === 'string' ? fromBase64Url(text) : null;
}

/** Constant-time comparison. */
export const equalBytes = constantTimeEqual;

/** LP(x) = 2-byte big-endian length ‖ x (communicator.md §1). */
export function lp(x: Uint8Array): Uint8Array {
  if (x.length > 0xffff) throw new Error('lp: field too long');
  return concat(new Uint8Array([x.length >> 8, x.length & 0xff]), x);
}

export function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}
