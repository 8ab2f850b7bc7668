/**
 * Plaintext padding to size buckets, so ciphertext lengths reveal only the bucket.
 * ISO/IEC 7816-4 style: plaintext ‖ 0x80 ‖ 0x00…, up to the smallest bucket that fits.
 */
export const PADDING_BUCKETS = [256, 1024, 4096, 16384, 65536] as const;
/** The largest plaintext that fits (one byte goes to the 0x80 marker). */
export const MAX_PADDED_PLAINTEXT = 65536 - 1;

/** Returns null when the plaintext is larger than the largest bucket allows. */
export function pad(plaintext: Uint8Array): Uint8Array | null {
  return padInto(plaintext, null);
}

/**
 * pad(), written into `buffer` (zeroed first) when the bucket is exactly its size, else into a
 * new array. The caller owns the buffer and wipes it after use.
 */
export function padInto(plaintext: Uint8Array, buffer: Uint8Array | null): Uint8Array | null {
  const bucket = bucketFor(plaintext.length);
  if (bucket === undefined) return null;
  let out: Uint8Array;
  if (buffer !== null && buffer.length === bucket) {
    out = buffer;
    out.fill(0, plaintext.length);
  } else out = new Uint8Array(bucket);
  out.set(plaintext);
  out[plaintext.length] = 0x80;
  return out;
}

/** The smallest bucket that holds `length` bytes of plaintext and the marker, if any. */
export function bucketFor(length: number): number | undefined {
  for (const bucket of PADDING_BUCKETS) if (bucket > length) return bucket;
  return undefined;
}

/**
 * Pad in place: `padded` holds the plaintext in its first `length` bytes and is a bucket long
 * (see bucketFor); the marker and zeros are written after it.
 */
export function padTail(padded: Uint8Array, length: number): void {
  padded[length] = 0x80;
  padded.fill(0, length + 1);
}

/** Returns null when the padding is malformed or the length is not a bucket. */
export function unpad(padded: Uint8Array): Uint8Array | null {
  if (!(PADDING_BUCKETS as readonly number[]).includes(padded.length)) return null;
  let i = padded.length - 1;
  while (i >= 0 && padded[i] === 0) i--;
  if (i < 0 || padded[i] !== 0x80) return null;
  return padded.subarray(0, i);
}
