/**
 * HMAC-SHA512 (RFC 2104) of many short messages under one key, on noble's SHA-512, allocating no
 * buffer per message: the key's inner and outer pad states are computed once per call and cloned
 * (`_cloneInto`) into one reused hash for each message, as noble's own HMAC does between uses.
 * Why: the hint table MACs 8 blocks per conversation per hour (800,000 at 100,000 conversations),
 * and an object plus a buffer per MAC (node:crypto's createHmac, or noble's `hmac()`) made every
 * young-generation collection inside a rollover slice take 20–50 ms.
 *
 * Results are byte-identical to `hmac(sha512, key, message)` (test: crypto-node hint-mac.test.ts,
 * RFC 4231 and node:crypto on varied key and message lengths).
 */
import { sha512 } from '@noble/hashes/sha2.js';

const BLOCK_BYTES = 128;
export const HMAC_SHA512_BYTES = 64;

type Sha512 = ReturnType<typeof sha512.create>;

class HmacSha512Batcher {
  private readonly initial: Sha512 = sha512.create(); // never updated: the SHA-512 IV
  private readonly inner: Sha512 = sha512.create();
  private readonly outer: Sha512 = sha512.create();
  private readonly work: Sha512 = sha512.create();
  private readonly pad = new Uint8Array(BLOCK_BYTES);
  private readonly digest = new Uint8Array(HMAC_SHA512_BYTES);

  run(key: Uint8Array, messages: Uint8Array, messageLength: number, count: number, out: Uint8Array, outOffset: number): void {
    const pad = this.pad;
    try {
      pad.fill(0);
      pad.set(key.length > BLOCK_BYTES ? sha512(key) : key);
      for (let i = 0; i < BLOCK_BYTES; i++) pad[i]! ^= 0x36;
      this.initial._cloneInto(this.inner).update(pad);
      for (let i = 0; i < BLOCK_BYTES; i++) pad[i]! ^= 0x36 ^ 0x5c;
      this.initial._cloneInto(this.outer).update(pad);
      pad.fill(0);
      const digest = this.digest;
      for (let m = 0; m < count; m++) {
        const w = this.inner._cloneInto(this.work);
        w.update(messages.subarray(m * messageLength, (m + 1) * messageLength));
        w.digestInto(digest);
        this.outer._cloneInto(w).update(digest).digestInto(digest);
        out.set(digest, outOffset + m * HMAC_SHA512_BYTES);
      }
    } finally {
      // The pad states are as good as the key: none outlives the call.
      pad.fill(0);
      this.digest.fill(0);
      this.inner.destroy();
      this.outer.destroy();
      this.work.destroy();
    }
  }
}

const batcher = new HmacSha512Batcher();

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/**
 * out[outOffset + 64·m .. +64] = HMAC-SHA512(key, messages[messageLength·m .. +messageLength])
 * for m < count. Throws a RangeError for lengths that do not fit (a programming error).
 */
export function hmacSha512BatchNoble(key: Uint8Array, messages: Uint8Array, messageLength: number, count: number, out: Uint8Array, outOffset = 0): void {
  if (!(key instanceof Uint8Array) || !(messages instanceof Uint8Array) || !(out instanceof Uint8Array)) {
    throw new RangeError('HMAC-SHA512 batch: key, messages and out must be Uint8Arrays');
  }
  if (!isCount(messageLength) || !isCount(count) || !isCount(outOffset)) throw new RangeError('HMAC-SHA512 batch: lengths must be non-negative integers');
  if (messageLength * count > messages.length) throw new RangeError('HMAC-SHA512 batch: messages shorter than count × messageLength');
  if (outOffset + count * HMAC_SHA512_BYTES > out.length) throw new RangeError('HMAC-SHA512 batch: out shorter than count × 64 bytes');
  if (count === 0) return;
  batcher.run(key, messages, messageLength, count, out, outOffset);
}
