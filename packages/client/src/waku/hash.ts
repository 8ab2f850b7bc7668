/**
 * Deterministic message hash of 14/WAKU2-MESSAGE:
 * sha256(pubsub_topic ‖ payload ‖ content_topic ‖ meta ‖ timestamp), the timestamp as 8 bytes
 * big-endian (nanoseconds). Absent optional fields (meta, timestamp) are skipped. Protobuf
 * encodings are not canonical across implementations, so this is the identity used for dedupe
 * and as the store cursor, not a hash of the encoded bytes.
 */
import { createHash } from 'node:crypto';

export interface HashableMessage {
  readonly payload: Uint8Array;
  readonly contentTopic: string;
  readonly meta?: Uint8Array | undefined;
  /** Unix time in nanoseconds. */
  readonly timestamp?: bigint | undefined;
}

export function wakuMessageHash(pubsubTopic: string, message: HashableMessage): Uint8Array {
  const h = createHash('sha256');
  h.update(pubsubTopic, 'utf8');
  h.update(message.payload);
  h.update(message.contentTopic, 'utf8');
  if (message.meta !== undefined) h.update(message.meta);
  if (message.timestamp !== undefined) {
    const ts = Buffer.alloc(8);
    ts.writeBigUInt64BE(BigInt.asUintN(64, message.timestamp));
    h.update(ts);
  }
  return new Uint8Array(h.digest());
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** A bounded set of recently seen message hashes (insertion order, oldest evicted). */
export class SeenHashes {
  private readonly set = new Set<string>();

  constructor(private readonly capacity = 50_000) {}

  /** Adds the hash; returns false if it was already there. */
  add(hashHex: string): boolean {
    if (this.set.has(hashHex)) return false;
    this.set.add(hashHex);
    if (this.set.size > this.capacity) {
      const oldest = this.set.values().next().value;
      if (oldest !== undefined) this.set.delete(oldest);
    }
    return true;
  }

  has(hashHex: string): boolean {
    return this.set.has(hashHex);
  }

  get size(): number {
    return this.set.size;
  }
}
