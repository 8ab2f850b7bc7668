/**
 * Many small byte strings end to end in one buffer, with where each starts in a typed array.
 * Opening a client over 100,000 stored conversations keeps their records this way: a few arrays
 * instead of 100,000 row buffers (each an ArrayBuffer with its own backing store, which every
 * garbage collection traces). The strings given are copied, not kept.
 */
export class PackedBytes {
  readonly bytes: Uint8Array;
  /** String i is bytes[starts[i], starts[i + 1]). */
  readonly starts: Float64Array;

  constructor(strings: readonly Uint8Array[]) {
    let total = 0;
    for (const s of strings) total += s.length;
    this.bytes = new Uint8Array(total);
    this.starts = new Float64Array(strings.length + 1);
    let at = 0;
    for (let i = 0; i < strings.length; i++) {
      this.starts[i] = at;
      this.bytes.set(strings[i]!, at);
      at += strings[i]!.length;
    }
    this.starts[strings.length] = at;
  }

  get count(): number {
    return this.starts.length - 1;
  }

  /** String i, as a view of the one buffer. */
  at(i: number): Uint8Array {
    return this.bytes.subarray(this.starts[i], this.starts[i + 1]);
  }
}
