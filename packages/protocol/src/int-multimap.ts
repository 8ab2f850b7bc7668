/**
 * A multimap from uint32 keys to non-negative int32 values in two typed arrays (open
 * addressing, linear probing, backward-shift deletion). A million entries are then a few
 * megabytes of plain memory that the garbage collector never traces — a `Map` of the same
 * size is millions of slots it scans on every full collection, which made classification at
 * 10,000 conversations markedly slower than at 10 (the hint table is the one big structure).
 *
 * Keys are expected to be uniformly distributed already (they are MAC output), so the slot is
 * the key's low bits.
 */
const EMPTY = -1;
const INITIAL_CAPACITY = 64;
/**
 * Grow beyond this load (linear probing: ≈ 3 probes per hit and 13 per miss at 0.8, fewer
 * below). Each probe is an integer compare in a flat array, and 0.8 keeps 100,000
 * conversations' hours (3.2 M entries each) in 2^22 slots instead of 2^23.
 */
const MAX_LOAD = 0.8;

export class IntMultiMap {
  private keys = new Uint32Array(INITIAL_CAPACITY);
  private values = new Int32Array(INITIAL_CAPACITY).fill(EMPTY);
  private mask = INITIAL_CAPACITY - 1;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds one (key, value) pair; a key may hold several values. `value` must be ≥ 0. */
  add(key: number, value: number): void {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0x7fffffff)) throw new RangeError('value must be a non-negative int32');
    if ((this.count + 1) > MAX_LOAD * (this.mask + 1)) this.grow();
    this.insert(key >>> 0, value);
    this.count++;
  }

  /** Every value stored under `key` (usually none or one). */
  get(key: number): number[] {
    const k = key >>> 0;
    const out: number[] = [];
    for (let i = k & this.mask; this.values[i] !== EMPTY; i = (i + 1) & this.mask) {
      if (this.keys[i] === k) out.push(this.values[i]!);
    }
    return out;
  }

  /** Removes one (key, value) pair; false when it was not there. */
  delete(key: number, value: number): boolean {
    const k = key >>> 0;
    let i = k & this.mask;
    for (; this.values[i] !== EMPTY; i = (i + 1) & this.mask) {
      if (this.keys[i] === k && this.values[i] === value) break;
    }
    if (this.values[i] === EMPTY) return false;
    // Backward shift: pull later entries of the probe run into the hole when their home slot
    // allows, so lookups never need tombstones.
    let hole = i;
    for (let j = (hole + 1) & this.mask; this.values[j] !== EMPTY; j = (j + 1) & this.mask) {
      const home = this.keys[j]! & this.mask;
      if (((j - home) & this.mask) >= ((j - hole) & this.mask)) {
        this.keys[hole] = this.keys[j]!;
        this.values[hole] = this.values[j]!;
        hole = j;
      }
    }
    this.values[hole] = EMPTY;
    this.count--;
    return true;
  }

  private insert(k: number, value: number): void {
    let i = k & this.mask;
    while (this.values[i] !== EMPTY) i = (i + 1) & this.mask;
    this.keys[i] = k;
    this.values[i] = value;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldValues = this.values;
    const capacity = (this.mask + 1) * 2;
    this.keys = new Uint32Array(capacity);
    this.values = new Int32Array(capacity).fill(EMPTY);
    this.mask = capacity - 1;
    for (let i = 0; i < oldValues.length; i++) if (oldValues[i] !== EMPTY) this.insert(oldKeys[i]!, oldValues[i]!);
  }
}
