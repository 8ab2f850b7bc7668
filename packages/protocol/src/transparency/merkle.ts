/**
 * RFC 9162 §2.1 Merkle trees over SHA-256: leaf hash H(0x00 ‖ d), node hash H(0x01 ‖ L ‖ R),
 * the tree head MTH, audit paths (PATH), consistency proofs (PROOF/SUBPROOF), and the
 * verification algorithms of §2.1.3.2 and §2.1.4.2. Pure (no node: imports): clients verify
 * with it, and the directory service generates proofs with it.
 */
import { sha256 } from '@noble/hashes/sha2.js';

export const HASH_BYTES = 32;

function eq(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export function leafHash(entry: Uint8Array): Uint8Array {
  const buf = new Uint8Array(entry.length + 1);
  buf[0] = 0x00;
  buf.set(entry, 1);
  return sha256(buf);
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + left.length + right.length);
  buf[0] = 0x01;
  buf.set(left, 1);
  buf.set(right, 1 + left.length);
  return sha256(buf);
}

/** Largest power of two strictly smaller than n (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function checkSize(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative integer`);
}

/** MTH over leaf hashes leaves[lo, hi). */
function mth(leaves: readonly Uint8Array[], lo: number, hi: number): Uint8Array {
  const n = hi - lo;
  if (n === 0) return sha256(new Uint8Array(0));
  if (n === 1) return leaves[lo]!;
  const k = split(n);
  return nodeHash(mth(leaves, lo, lo + k), mth(leaves, lo + k, hi));
}

/** The root of the tree whose leaves (already leaf-hashed) are `leaves[0, size)`. */
export function treeRoot(leaves: readonly Uint8Array[], size: number = leaves.length): Uint8Array {
  checkSize(size, 'size');
  if (size > leaves.length) throw new RangeError('size exceeds the number of leaves');
  return mth(leaves, 0, size);
}

/** Audit path for leaf `index` in the tree of the first `size` leaves (RFC 9162 PATH). */
export function inclusionProof(leaves: readonly Uint8Array[], index: number, size: number): Uint8Array[] {
  checkSize(index, 'index');
  checkSize(size, 'size');
  if (size > leaves.length || index >= size) throw new RangeError('index must be < size ≤ number of leaves');
  const path = (m: number, lo: number, hi: number): Uint8Array[] => {
    const n = hi - lo;
    if (n === 1) return [];
    const k = split(n);
    return m < k ? [...path(m, lo, lo + k), mth(leaves, lo + k, hi)] : [...path(m - k, lo + k, hi), mth(leaves, lo, lo + k)];
  };
  return path(index, 0, size);
}

/** Consistency proof between the trees of the first `first` and `second` leaves (RFC 9162 PROOF). */
export function consistencyProof(leaves: readonly Uint8Array[], first: number, second: number): Uint8Array[] {
  checkSize(first, 'first');
  checkSize(second, 'second');
  if (second > leaves.length || first > second) throw new RangeError('need first ≤ second ≤ number of leaves');
  if (first === 0 || first === second) return [];
  const sub = (m: number, lo: number, hi: number, b: boolean): Uint8Array[] => {
    const n = hi - lo;
    if (m === n) return b ? [] : [mth(leaves, lo, hi)];
    const k = split(n);
    return m <= k ? [...sub(m, lo, lo + k, b), mth(leaves, lo + k, hi)] : [...sub(m - k, lo + k, hi, false), mth(leaves, lo, lo + k)];
  };
  return sub(first, 0, second, true);
}

function wellFormed(path: readonly Uint8Array[]): boolean {
  return path.length <= 64 && path.every((p) => p instanceof Uint8Array && p.length === HASH_BYTES);
}

/** RFC 9162 §2.1.3.2: does `path` prove that `leaf` (a leaf hash) is at `index` in the tree (size, root)? */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, path: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (leaf.length !== HASH_BYTES || root.length !== HASH_BYTES || !wellFormed(path)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && eq(r, root);
}

/** RFC 9162 §2.1.4.2: is the tree (second, secondRoot) an append-only extension of (first, firstRoot)? */
export function verifyConsistency(
  first: number,
  second: number,
  proof: readonly Uint8Array[],
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 0 || first > second) return false;
  if (firstRoot.length !== HASH_BYTES || secondRoot.length !== HASH_BYTES || !wellFormed(proof)) return false;
  if (first === second) return proof.length === 0 && eq(firstRoot, secondRoot);
  if (first === 0) return proof.length === 0; // the empty tree is a prefix of every tree
  if (proof.length === 0) return false;
  const path = isPow2(first) ? [firstRoot, ...proof] : [...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && eq(fr, firstRoot) && eq(sr, secondRoot);
}

function isPow2(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

/**
 * The right edge of a tree (one perfect-subtree root per set bit of its size, largest first):
 * enough to append leaves and recompute the root without the earlier leaves. Owners keep one
 * to check each new increment of the log against the newest checkpoint (monitoring).
 */
export class CompactRange {
  private constructor(
    private sizeValue: number,
    private readonly stack: { height: number; hash: Uint8Array }[],
  ) {}

  static empty(): CompactRange {
    return new CompactRange(0, []);
  }

  /** Restores a saved range; null when the hashes do not fit `size`. */
  static restore(size: number, hashes: readonly Uint8Array[]): CompactRange | null {
    if (!Number.isSafeInteger(size) || size < 0) return null;
    const heights: number[] = [];
    for (let h = 52; h >= 0; h--) if (Math.floor(size / 2 ** h) % 2 === 1) heights.push(h);
    if (heights.length !== hashes.length || hashes.some((x) => x.length !== HASH_BYTES)) return null;
    return new CompactRange(size, heights.map((height, i) => ({ height, hash: new Uint8Array(hashes[i]!) })));
  }

  get size(): number {
    return this.sizeValue;
  }

  hashes(): Uint8Array[] {
    return this.stack.map((s) => new Uint8Array(s.hash));
  }

  clone(): CompactRange {
    return new CompactRange(this.sizeValue, this.stack.map((s) => ({ ...s })));
  }

  append(leaf: Uint8Array): void {
    let node = { height: 0, hash: leaf };
    while (this.stack.length > 0 && this.stack[this.stack.length - 1]!.height === node.height) {
      const left = this.stack.pop()!;
      node = { height: node.height + 1, hash: nodeHash(left.hash, node.hash) };
    }
    this.stack.push(node);
    this.sizeValue++;
  }

  root(): Uint8Array {
    if (this.stack.length === 0) return sha256(new Uint8Array(0));
    let r = this.stack[this.stack.length - 1]!.hash;
    for (let i = this.stack.length - 2; i >= 0; i--) r = nodeHash(this.stack[i]!.hash, r);
    return r;
  }
}
