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
/**
 * Values are stored plus one so that 0 marks an empty slot: a new table is then zeroed memory
 * straight from the allocator, with no fill pass (a table for 100,000 conversations' hour is
 * 2^22 slots, and filling it was part of one rollover slice).
 */
const EMPTY = 0;
const INITIAL_CAPACITY = 64;
/**
 * Grow beyond this load (linear probing: ≈ 3 probes per hit and 13 per miss at 0.8, fewer
 * below). Each probe is an integer compare in a flat array, and 0.8 keeps 100,000
 * conversations' hours (3.2 M entries each) in 2^22 slots instead of 2^23.
 */
const MAX_LOAD = 0.8;

export class IntMultiMap {
  private keys: Uint32Array;
  private values: Uint32Array;
  private mask: number;
  private count = 0;

  /**
   * `expectedEntries` sizes the table up front, so filling it to that size never rehashes (a
   * growth step re-inserts every entry at once: seconds-long at millions of entries).
   */
  constructor(expectedEntries = 0) {
    const capacity = IntMultiMap.capacityFor(expectedEntries);
    this.keys = new Uint32Array(capacity);
    this.values = new Uint32Array(capacity);
    this.mask = capacity - 1;
  }

  /** The slots a table sized for `expectedEntries` has. */
  static capacityFor(expectedEntries: number): number {
    let capacity = INITIAL_CAPACITY;
    while (expectedEntries > MAX_LOAD * capacity) capacity *= 2;
    return capacity;
  }

  get size(): number {
    return this.count;
  }

  get capacity(): number {
    return this.mask + 1;
  }

  /**
   * Empty the table for reuse, `maxSlots` slots per call (a whole table is megabytes to zero);
   * `from` is where the previous call stopped (0 to begin). Returns where this call stopped:
   * `capacity` once the table is empty and usable again. Until then it must not be used.
   */
  clearSlots(from: number, maxSlots: number): number {
    const to = Math.min(this.mask + 1, from + maxSlots);
    this.values.fill(EMPTY, from, to);
    this.count = 0;
    return to;
  }

  /** Adds one (key, value) pair; a key may hold several values. `value` must be ≥ 0. */
  add(key: number, value: number): void {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0x7fffffff)) throw new RangeError('value must be a non-negative int32');
    if ((this.count + 1) > MAX_LOAD * (this.mask + 1)) this.grow();
    this.insert(key >>> 0, value + 1);
    this.count++;
  }

  /** Every value stored under `key` (usually none or one). */
  get(key: number): number[] {
    return this.appendTo(key, []);
  }

  /** Every value stored under `key`, pushed onto `out` (a caller gathering several tables' values builds one array). */
  appendTo(key: number, out: number[]): number[] {
    const k = key >>> 0;
    for (let i = k & this.mask; this.values[i] !== EMPTY; i = (i + 1) & this.mask) {
      if (this.keys[i] === k) out.push(this.values[i]! - 1);
    }
    return out;
  }

  /** Removes one (key, value) pair; false when it was not there. */
  delete(key: number, value: number): boolean {
    const k = key >>> 0;
    const stored = value + 1;
    let i = k & this.mask;
    for (; this.values[i] !== EMPTY; i = (i + 1) & this.mask) {
      if (this.keys[i] === k && this.values[i] === stored) break;
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

  /** Places a stored (value + 1) pair. */
  private insert(k: number, stored: number): void {
    let i = k & this.mask;
    while (this.values[i] !== EMPTY) i = (i + 1) & this.mask;
    this.keys[i] = k;
    this.values[i] = stored;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldValues = this.values;
    const capacity = (this.mask + 1) * 2;
    this.keys = new Uint32Array(capacity);
    this.values = new Uint32Array(capacity);
    this.mask = capacity - 1;
    for (let i = 0; i < oldValues.length; i++) if (oldValues[i] !== EMPTY) this.insert(oldKeys[i]!, oldValues[i]!);
  }
}
