/**
 * Unlinkable conversation hints (DESIGN §3, docs/PROTOCOL.md "Hints").
 *
 * The i-th envelope a sender sends in hour e = floor(unix_seconds / 3600) carries
 *   hint = lowercase hex(block[16·(i mod 4) .. +16]),
 *   block = HMAC-SHA512(HK_dir, "umbra/v1/hint" ‖ u32be(e) ‖ u32be(floor(i / 4)))
 * (one MAC serves four consecutive envelopes; senders and receivers walk indices in order).
 * Indices restart every hour, so a receiver that missed any number of envelopes is back in
 * step at the next hour at the latest. The receiver listens, for the previous, current and next
 * hour, for the HINT_WINDOW indices after the highest index seen, plus the indices below it
 * (within HINT_WINDOW) that have not arrived yet (late or reordered envelopes).
 *
 * This module is pure: window state in, window state and table changes out. `HintTable` is the
 * derived in-memory index (one Map lookup per envelope, whatever the number of conversations).
 */
import type { CryptoProvider } from './crypto/provider.ts';
import { constantTimeEqual, fromHex, toHex } from './bytes.ts';
import { IntMultiMap } from './int-multimap.ts';
import { LABEL_HINT } from './labels.ts';

/** Indices listened for beyond the highest seen, and kept below it for late arrivals. */
export const HINT_WINDOW = 32;
export const HINT_BYTES = 16;
/** A direction's hint key (HKDF output). */
export const HINT_KEY_BYTES = 32;
export const HOUR_MS = 3_600_000;
/** What candidates returns for no entry (most stranger envelopes): shared, never changed. */
const NO_CANDIDATES: readonly never[] = Object.freeze([]);

export function hourOf(nowMs: number): number {
  return Math.floor(nowMs / HOUR_MS);
}

/** Hints per HMAC-SHA512 block. */
export const HINTS_PER_BLOCK = 4;

interface HintBlockMemo {
  readonly crypto: CryptoProvider;
  readonly key: Uint8Array; // a copy: a caller that overwrites its key array gets no stale block
  readonly hour: number;
  readonly block: number;
  readonly bytes: Uint8Array;
}

/**
 * The last block computed per hint key, for the most recently used keys (keyed by the key
 * array, which conversations keep). Senders and receivers walk indices in order, so this saves
 * three MACs out of four; it is a pure memo and changes no result. Bounded, so an engine with
 * 100,000 conversations does not keep a block per conversation.
 */
const MEMO_ENTRIES = 64;
const lastBlock = new Map<Uint8Array, HintBlockMemo>();

const BLOCK_INPUT_BYTES = LABEL_HINT.length + 8;
const BLOCK_MAC_BYTES = 64;
const MAX_WINDOW_BLOCKS = (2 * HINT_WINDOW) / HINTS_PER_BLOCK + 1;

/** `count` block inputs end to end, each LABEL_HINT ‖ (8 bytes written by writeBlockInput). */
function blockInputs(count: number): Uint8Array {
  const out = new Uint8Array(count * BLOCK_INPUT_BYTES);
  for (let i = 0; i < count; i++) out.set(LABEL_HINT, i * BLOCK_INPUT_BYTES);
  return out;
}

/** u32be(hour) ‖ u32be(block) after the LABEL_HINT at `offset`. */
function writeBlockInput(input: Uint8Array, offset: number, hour: number, block: number): void {
  const at = offset + LABEL_HINT.length;
  const h = hour >>> 0;
  const b = block >>> 0;
  input[at] = h >>> 24;
  input[at + 1] = (h >>> 16) & 0xff;
  input[at + 2] = (h >>> 8) & 0xff;
  input[at + 3] = h & 0xff;
  input[at + 4] = b >>> 24;
  input[at + 5] = (b >>> 16) & 0xff;
  input[at + 6] = (b >>> 8) & 0xff;
  input[at + 7] = b & 0xff;
}

/** One block's input, reused: only the MAC call below reads it, synchronously (not secret). */
const singleBlockInput = blockInputs(1);

/** HMAC-SHA512(key, LABEL_HINT ‖ u32be(hour) ‖ u32be(block)), no memo. */
function rawHintBlock(crypto: CryptoProvider, hintKey: Uint8Array, hour: number, block: number): Uint8Array {
  writeBlockInput(singleBlockInput, 0, hour, block);
  return crypto.hmacSha512(hintKey, singleBlockInput);
}

function hintBlock(crypto: CryptoProvider, hintKey: Uint8Array, hour: number, block: number): Uint8Array {
  const memo = lastBlock.get(hintKey);
  if (memo !== undefined && memo.hour === hour && memo.block === block && memo.crypto === crypto && constantTimeEqual(memo.key, hintKey)) {
    return memo.bytes;
  }
  const bytes = rawHintBlock(crypto, hintKey, hour, block);
  lastBlock.delete(hintKey);
  lastBlock.set(hintKey, { crypto, key: hintKey.slice(), hour, block, bytes });
  if (lastBlock.size > MEMO_ENTRIES) lastBlock.delete(lastBlock.keys().next().value!);
  return bytes;
}

/** The hint's bytes as a view of its (memoised) block: callers copy it or only read it. */
function hintView(crypto: CryptoProvider, hintKey: Uint8Array, hour: number, index: number): Uint8Array {
  const offset = (index % HINTS_PER_BLOCK) * HINT_BYTES;
  return hintBlock(crypto, hintKey, hour, Math.floor(index / HINTS_PER_BLOCK)).subarray(offset, offset + HINT_BYTES);
}

export function computeHintBytes(crypto: CryptoProvider, hintKey: Uint8Array, hour: number, index: number): Uint8Array {
  return hintView(crypto, hintKey, hour, index).slice();
}

export function computeHint(crypto: CryptoProvider, hintKey: Uint8Array, hour: number, index: number): string {
  // Read in place, no copy: the block is the memo's and is not changed.
  return toHex(hintView(crypto, hintKey, hour, index));
}

/** The sending side: which index the next envelope of this hour gets. */
export interface HintSenderState {
  readonly hour: number;
  readonly nextIndex: number;
}

export function nextSendHint(
  crypto: CryptoProvider,
  hintKey: Uint8Array,
  state: HintSenderState,
  nowMs: number,
): { hint: string; state: HintSenderState } {
  const hour = hourOf(nowMs);
  const index = hour === state.hour ? state.nextIndex : 0;
  return { hint: computeHint(crypto, hintKey, hour, index), state: { hour, nextIndex: index + 1 } };
}

/** One hour of the receiving window. Bit j of seenMask: index (highest - j) has arrived. */
export interface HourWindow {
  readonly hour: number;
  readonly highest: number; // -1 before any envelope of this hour
  readonly seenMask: number; // uint32
}

/** The receiving side of one direction: at most three hours (previous, current, next). */
export interface HintReceiveState {
  readonly hours: readonly HourWindow[];
}

export interface HintSlot {
  readonly hour: number;
  readonly index: number;
}

/** The indices this hour is listening for. */
export function listenedIndices(w: HourWindow): number[] {
  const out: number[] = [];
  for (let j = HINT_WINDOW - 1; j >= 1; j--) {
    const index = w.highest - j;
    if (index >= 0 && ((w.seenMask >>> j) & 1) === 0) out.push(index);
  }
  for (let k = 1; k <= HINT_WINDOW; k++) out.push(w.highest + k);
  return out;
}

export function listenedSlots(state: HintReceiveState): HintSlot[] {
  return state.hours.flatMap((w) => listenedIndices(w).map((index) => ({ hour: w.hour, index })));
}

/** A fresh window: nothing of that hour has arrived yet. */
export function freshWindow(hour: number): HourWindow {
  return { hour, highest: -1, seenMask: 0 };
}

/**
 * The window of `hour`: the state's own, or a fresh one when the state has none. A state keeps
 * the windows of hours it has seen envelopes in; every other hour listens afresh, so the hourly
 * rollover changes no conversation record (engine.ts indexes each hour as it comes).
 */
export function windowAt(state: HintReceiveState, hour: number): HourWindow {
  // Indexed loops here and in markSeen: several run per envelope, and for-of made an
  // iterator result per step where V8 did not elide it.
  const hours = state.hours;
  for (let i = 0; i < hours.length; i++) if (hours[i]!.hour === hour) return hours[i]!;
  return freshWindow(hour);
}

/** Is `index` listened for in window `w` (the set listenedIndices lists)? */
export function isListened(w: HourWindow, index: number): boolean {
  if (index > w.highest) return index - w.highest <= HINT_WINDOW;
  const j = w.highest - index;
  return index >= 0 && j >= 1 && j < HINT_WINDOW && ((w.seenMask >>> j) & 1) === 0;
}

/**
 * Mark (hour, index) as arrived. Null when that slot is not listened for (or already seen).
 * An hour the state has no window for starts from a fresh one (the caller only passes hours it
 * listens to); windows more than two hours from `hour` are dropped, so a state holds at most five.
 */
export function markSeen(state: HintReceiveState, hour: number, index: number): HintReceiveState | null {
  const w = windowAt(state, hour);
  let next: HourWindow;
  if (index > w.highest) {
    const shift = index - w.highest;
    if (shift > HINT_WINDOW) return null;
    const mask = w.highest < 0 || shift >= 32 ? 1 : ((w.seenMask << shift) | 1) >>> 0;
    next = { hour, highest: index, seenMask: mask };
  } else {
    const j = w.highest - index;
    if (j >= HINT_WINDOW || ((w.seenMask >>> j) & 1) === 1) return null;
    next = { hour, highest: w.highest, seenMask: (w.seenMask | (1 << j)) >>> 0 };
  }
  const hours: HourWindow[] = [];
  let placed = false;
  for (let i = 0; i < state.hours.length; i++) {
    const old = state.hours[i]!;
    if (old.hour === hour) {
      hours.push(next);
      placed = true;
    } else if (Math.abs(old.hour - hour) <= 2) {
      if (!placed && old.hour > hour) {
        hours.push(next);
        placed = true;
      }
      hours.push(old);
    }
  }
  if (!placed) hours.push(next);
  return { hours };
}

/** Keep exactly the hours current-1, current, current+1 (fresh windows for new hours). */
export function advanceToHour(state: HintReceiveState, currentHour: number): HintReceiveState {
  const hours: HourWindow[] = [];
  for (let h = currentHour - 1; h <= currentHour + 1; h++) {
    hours.push(state.hours.find((w) => w.hour === h) ?? { hour: h, highest: -1, seenMask: 0 });
  }
  return { hours };
}

export function initialReceiveState(currentHour: number): HintReceiveState {
  return advanceToHour({ hours: [] }, currentHour);
}

/**
 * Slots in `after` that are not in `before`, and the reverse. Windows are immutable values, so
 * an hour whose window object is unchanged is skipped (the common case: one hour changed).
 */
export function diffSlots(before: HintReceiveState, after: HintReceiveState): { added: HintSlot[]; removed: HintSlot[] } {
  const added: HintSlot[] = [];
  const removed: HintSlot[] = [];
  for (const w of after.hours) {
    const old = before.hours.find((b) => b.hour === w.hour);
    if (old === w) continue;
    // listenedIndices is ascending, so one merge pass gives both differences.
    const oldIndices = old === undefined ? [] : listenedIndices(old);
    const newIndices = listenedIndices(w);
    let i = 0;
    let j = 0;
    while (i < oldIndices.length || j < newIndices.length) {
      const o = i < oldIndices.length ? oldIndices[i]! : Infinity;
      const n = j < newIndices.length ? newIndices[j]! : Infinity;
      if (o === n) {
        i++;
        j++;
      } else if (o < n) {
        removed.push({ hour: w.hour, index: o });
        i++;
      } else {
        added.push({ hour: w.hour, index: n });
        j++;
      }
    }
  }
  for (const old of before.hours) {
    if (after.hours.some((w) => w.hour === old.hour)) continue;
    for (const index of listenedIndices(old)) removed.push({ hour: old.hour, index });
  }
  return { added, removed };
}

/**
 * hint → (owner, hour, index), one typed-array multimap per hour (int-multimap.ts): the key is
 * the first 31 bits of the hint, the value packs (owner slot, index) into one int32, so a
 * million entries are a few megabytes the garbage collector never traces. `candidates` returns
 * the entries under a key unconfirmed; `confirms` recomputes the full 16-byte hint (constant-time
 * compare) for callers that need exactness. A lookup probes the few hours present (normally 3):
 * the cost does not depend on the number of conversations, and an hour that leaves every window
 * is dropped whole, without recomputing its hints.
 */
export class HintTable<T> {
  /** Packed values: ownerSlot * INDEX_LIMIT + index (below 2^31). */
  private static readonly INDEX_LIMIT = 1 << 14;
  private static readonly OWNER_LIMIT = 1 << 17;
  private readonly byHour = new Map<number, IntMultiMap>();
  private readonly ownerSlots = new Map<T, number>();
  private readonly owners: T[] = [];
  /**
   * Each owner slot's hint key, HINT_KEY_BYTES per slot end to end (copied in): at 100,000
   * owners one buffer instead of 100,000 key arrays for the garbage collector to trace.
   */
  private ownerKeys = new Uint8Array(HINT_KEY_BYTES * 64);
  /** Entries whose index or owner slot does not fit the packing (rare: > 16,384 per hour). */
  private readonly overflow = new Map<number, { owner: T; hour: number; index: number }[]>();
  private count = 0;
  /** The first candidate of the last lookup (its slot is usually removed next: remove() then skips the MAC), updated in place. */
  private readonly lastFound: { owner: T | undefined; hour: number; index: number; key: number } = { owner: undefined, hour: 0, index: 0, key: 0 };
  /** candidates' values of one hour, reused. */
  private readonly valueScratch: number[] = [];
  /** Per owner slot: the last hour whose listened slots the table holds (the engine's rollover). */
  private readonly coveredTo: number[] = [];
  /** A dropped hour's table being emptied for reuse (`spareClearedTo` slots done so far). */
  private spare: IntMultiMap | null = null;
  private spareClearedTo = 0;

  constructor(private readonly crypto: CryptoProvider) {}

  get size(): number {
    return this.count;
  }

  /** Owners ever added, by slot (0 … ownerCount - 1): the order the rollover walks them in. */
  get ownerCount(): number {
    return this.owners.length;
  }

  ownerAt(slot: number): T | undefined {
    return this.owners[slot];
  }

  /** The last hour indexed for this owner (-Infinity when none). */
  coveredHour(owner: T): number {
    const slot = this.ownerSlots.get(owner);
    return slot === undefined ? -Infinity : (this.coveredTo[slot] ?? -Infinity);
  }

  /** Whether a dropped table is still being emptied (`clearSpare` before indexing a new hour). */
  get spareDirty(): boolean {
    return this.spare !== null && this.spareClearedTo < this.spare.capacity;
  }

  /** Empty up to `maxSlots` more slots of the spare table; returns the slots done. */
  clearSpare(maxSlots: number): number {
    if (this.spare === null) return 0;
    const from = this.spareClearedTo;
    this.spareClearedTo = this.spare.clearSlots(from, maxSlots);
    return this.spareClearedTo - from;
  }

  /** Room for `owners` owners in all, allocated once (an engine opening knows how many). */
  reserve(owners: number): void {
    if (owners * HINT_KEY_BYTES <= this.ownerKeys.length) return;
    const keys = new Uint8Array(owners * HINT_KEY_BYTES);
    keys.set(this.ownerKeys);
    this.ownerKeys = keys;
  }

  /** Give an owner its slot (the rollover's order) with nothing indexed yet, or a new hint key. */
  register(owner: T, hintKey: Uint8Array): void {
    const slot = this.slotOf(owner, hintKey);
    this.coveredTo[slot] ??= -Infinity;
  }

  /** Record that the owner (registered) is indexed up to `hour`. */
  setCoveredHour(owner: T, hour: number): void {
    const slot = this.ownerSlots.get(owner);
    if (slot === undefined) throw new RangeError('hint table: owner not registered');
    this.coveredTo[slot] = hour;
  }

  /** The owner slot's key: a view of the packed keys (for the rare per-hint paths). */
  private keyAt(slot: number): Uint8Array {
    return this.ownerKeys.subarray(slot * HINT_KEY_BYTES, (slot + 1) * HINT_KEY_BYTES);
  }

  /**
   * Index every slot window `w` listens for (the slots `listenedIndices` lists). This is the
   * rollover's and the first indexing's inner loop, so it allocates nothing of its own: the
   * window's blocks are one `hmacSha512Batch` call over reused input and output buffers (no
   * object per MAC, which made young-generation collections inside a slice take 20–50 ms at
   * 100,000 conversations), and each hint's key is read in place.
   */
  addWindow(owner: T, hintKey: Uint8Array, w: HourWindow): void {
    this.slotOf(owner, hintKey);
    this.addOwnersWindow(owner, w);
  }

  /** addWindow under the key the owner was registered with (the engine holds no key array for an encoded conversation). */
  addOwnersWindow(owner: T, w: HourWindow): void {
    const ownerSlot = this.ownerSlots.get(owner);
    if (ownerSlot === undefined) throw new RangeError('hint table: owner not registered');
    const input = this.batchInput;
    // Pass 1: the blocks holding a listened index, ascending, one input each.
    let count = 0;
    let last = -1;
    for (let j = HINT_WINDOW - 1; j >= -HINT_WINDOW; j--) {
      const index = w.highest - j;
      // Below the highest: listened while not seen (j ≥ 1); above it: the next HINT_WINDOW.
      if (index < 0 || (j >= 1 && ((w.seenMask >>> j) & 1) === 1) || j === 0) continue;
      const b = Math.floor(index / HINTS_PER_BLOCK);
      if (b === last) continue;
      writeBlockInput(input, count * BLOCK_INPUT_BYTES, w.hour, b);
      count++;
      last = b;
    }
    if (count === 0) return;
    const macs = this.batchMacs;
    // The key copied into one reused array: a view per window would be an object per MAC batch.
    const hintKey = this.batchKey;
    for (let i = 0, at = ownerSlot * HINT_KEY_BYTES; i < HINT_KEY_BYTES; i++) hintKey[i] = this.ownerKeys[at + i]!;
    this.crypto.hmacSha512Batch(hintKey, input, BLOCK_INPUT_BYTES, count, macs);
    // Pass 2: the same walk, reading each hint's key from its block's MAC.
    let k = -1;
    last = -1;
    for (let j = HINT_WINDOW - 1; j >= -HINT_WINDOW; j--) {
      const index = w.highest - j;
      if (index < 0 || (j >= 1 && ((w.seenMask >>> j) & 1) === 1) || j === 0) continue;
      const b = Math.floor(index / HINTS_PER_BLOCK);
      if (b !== last) {
        k++;
        last = b;
      }
      this.put(owner, ownerSlot, w.hour, index, HintTable.keyAt(macs, k * BLOCK_MAC_BYTES + (index % HINTS_PER_BLOCK) * HINT_BYTES));
    }
    macs.fill(0, 0, count * BLOCK_MAC_BYTES);
    hintKey.fill(0);
  }

  /**
   * Index window `w` (as one hour after the last) for a stand-in owner under an all-zero key,
   * in a small table of this table's own, keeping its last three hours: the code of
   * `addOwnersWindow` (the MACs, the probing, a table's growth) runs on throwaway entries. The
   * engine does this a window per slice before its first pass, until a window is fast: the
   * first windows after open ran 0.5-1 ms each, and 5-26 ms while the JIT compiled and then
   * deoptimized the insert paths it had had no feedback for (probe runs, growth) — at eight
   * MAC blocks a window, that work cannot be split across slices.
   */
  warmUp(w: HourWindow): void {
    let table = this.warmUpTable;
    if (table === null) {
      table = this.warmUpTable = new HintTable<T>(this.crypto);
      table.register(this.owners[0]!, new Uint8Array(HINT_KEY_BYTES));
    }
    const hour = this.warmUpHour++;
    table.addOwnersWindow(this.owners[0]!, { hour, highest: w.highest, seenMask: w.seenMask });
    table.dropHoursBefore(hour - 2);
  }

  private warmUpTable: HintTable<T> | null = null;
  private warmUpHour = 0;

  /** Inputs and MACs of one window's blocks (a window spans 2·HINT_WINDOW indices: 17 blocks at most). */
  private readonly batchInput = blockInputs(MAX_WINDOW_BLOCKS);
  private readonly batchMacs = new Uint8Array(MAX_WINDOW_BLOCKS * BLOCK_MAC_BYTES);
  private readonly batchKey = new Uint8Array(HINT_KEY_BYTES);

  /** The table key of the hint of (hour, index) under `hintKey`, read in place from its block (no copy). */
  private keyOfSlot(hintKey: Uint8Array, hour: number, index: number): number {
    return HintTable.keyAt(hintBlock(this.crypto, hintKey, hour, Math.floor(index / HINTS_PER_BLOCK)), (index % HINTS_PER_BLOCK) * HINT_BYTES);
  }

  /** The table key of the hint at `offset` in `bytes`: its first 31 bits. */
  private static keyAt(bytes: Uint8Array, offset: number): number {
    return ((bytes[offset]! << 23) | (bytes[offset + 1]! << 15) | (bytes[offset + 2]! << 7) | (bytes[offset + 3]! >>> 1)) >>> 0;
  }

  /**
   * The table key of an envelope's hint (the first 31 bits of its first 8 hex digits), or -1
   * when the string is not 32 lowercase hex digits (what a hint is), in one pass: every envelope
   * comes through here, and a regex test plus a parse of a slice cost twice this.
   */
  private static keyOfHex(hint: string): number {
    if (hint.length !== 2 * HINT_BYTES) return -1;
    let key = 0;
    for (let i = 0; i < hint.length; i++) {
      const c = hint.charCodeAt(i);
      const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
      if (digit < 0) return -1;
      if (i < 8) key = key * 16 + digit;
    }
    return key >>> 1;
  }

  /** The owner's slot; its hint key is remembered (copied) once per owner (owners keep one receive key). */
  private slotOf(owner: T, hintKey: Uint8Array): number {
    if (hintKey.length !== HINT_KEY_BYTES) throw new RangeError(`hint table: a hint key is ${HINT_KEY_BYTES} bytes`);
    let slot = this.ownerSlots.get(owner);
    if (slot === undefined) {
      slot = this.owners.length;
      this.ownerSlots.set(owner, slot);
      this.owners[slot] = owner;
      if ((slot + 1) * HINT_KEY_BYTES > this.ownerKeys.length) this.reserve(2 * (slot + 1));
      this.ownerKeys.set(hintKey, slot * HINT_KEY_BYTES);
    } else if (!this.holdsKey(slot, hintKey)) this.ownerKeys.set(hintKey, slot * HINT_KEY_BYTES);
    return slot;
  }

  private holdsKey(slot: number, hintKey: Uint8Array): boolean {
    const keys = this.ownerKeys;
    const at = slot * HINT_KEY_BYTES;
    for (let i = 0; i < HINT_KEY_BYTES; i++) if (keys[at + i] !== hintKey[i]) return false;
    return true;
  }

  add(owner: T, hintKey: Uint8Array, slot: HintSlot): void {
    this.addAt(owner, hintKey, slot.hour, slot.index);
  }

  private addAt(owner: T, hintKey: Uint8Array, hour: number, index: number): void {
    this.put(owner, this.slotOf(owner, hintKey), hour, index, this.keyOfSlot(hintKey, hour, index));
  }

  /**
   * One hour's window of `owner` went from `before` to `after`: the indices listened for in
   * `after` and not in `before` are added (under `hintKey`), the reverse removed (under
   * `previousKey`, which keyed them). Called on every envelope received, so no callback or
   * slot object is made.
   */
  updateWindow(owner: T, previousKey: Uint8Array, hintKey: Uint8Array, before: HourWindow, after: HourWindow): void {
    if (before.highest === after.highest && before.seenMask === after.seenMask) return;
    const low = Math.max(0, Math.min(before.highest, after.highest) - HINT_WINDOW);
    const high = Math.max(before.highest, after.highest) + HINT_WINDOW;
    for (let i = low; i <= high; i++) {
      const was = isListened(before, i);
      if (was === isListened(after, i)) continue;
      if (was) this.removeAt(owner, previousKey, before.hour, i);
      else this.addAt(owner, hintKey, after.hour, i);
    }
  }

  private put(owner: T, ownerSlot: number, hour: number, index: number, key: number): void {
    this.count++;
    if (index >= HintTable.INDEX_LIMIT || ownerSlot >= HintTable.OWNER_LIMIT) {
      const list = this.overflow.get(key) ?? [];
      list.push({ owner, hour, index });
      this.overflow.set(key, list);
      return;
    }
    const value = ownerSlot * HintTable.INDEX_LIMIT + index;
    let map = this.byHour.get(hour);
    if (map === undefined) {
      // A new hour gets as many entries as the fullest hour held now, and at least a fresh
      // window's per owner (the same conversations listen in it; the first indexing after open
      // has no hour to go by): sized for that, filling it never rehashes.
      let expected = this.owners.length * HINT_WINDOW;
      for (const m of this.byHour.values()) expected = Math.max(expected, m.size);
      const spare = this.spare;
      if (spare !== null && this.spareClearedTo >= spare.capacity && spare.capacity >= IntMultiMap.capacityFor(expected)) {
        map = spare;
        this.spare = null;
      } else {
        map = new IntMultiMap(expected);
      }
      this.byHour.set(hour, map);
    }
    map.add(key, value);
  }

  remove(owner: T, hintKey: Uint8Array, slot: HintSlot): void {
    this.removeAt(owner, hintKey, slot.hour, slot.index);
  }

  private removeAt(owner: T, hintKey: Uint8Array, hour: number, index: number): void {
    const last = this.lastFound;
    const known = last.owner === owner && last.hour === hour && last.index === index;
    const map = this.byHour.get(hour);
    const ownerSlot = this.ownerSlots.get(owner);
    const packed = ownerSlot !== undefined && index < HintTable.INDEX_LIMIT && ownerSlot < HintTable.OWNER_LIMIT;
    if (packed && map === undefined) return; // the whole hour was dropped already
    const key = known ? last.key : this.keyOfSlot(hintKey, hour, index);
    if (!packed) {
      const list = this.overflow.get(key);
      const i = list?.findIndex((e) => e.owner === owner && e.hour === hour && e.index === index) ?? -1;
      if (list !== undefined && i >= 0) {
        list.splice(i, 1);
        if (list.length === 0) this.overflow.delete(key);
        this.count--;
      }
      return;
    }
    if (map!.delete(key, ownerSlot * HintTable.INDEX_LIMIT + index)) this.count--;
  }

  /**
   * Forget every entry of the hours before `hour` (they have left every receive window). The
   * largest dropped table is kept for the next new hour: at 100,000 conversations an hour is
   * 32 MB of typed arrays, and allocating that at each rollover (and dropping as much) is
   * external memory that made V8 run a full collection of the whole heap inside a slice.
   */
  dropHoursBefore(hour: number): void {
    for (const [h, map] of this.byHour) {
      if (h >= hour) continue;
      this.count -= map.size;
      this.byHour.delete(h);
      if (this.spare === null || map.capacity > this.spare.capacity) {
        this.spare = map;
        this.spareClearedTo = 0;
      }
    }
    for (const [key, list] of this.overflow) {
      const kept = list.filter((e) => e.hour >= hour);
      this.count -= list.length - kept.length;
      if (kept.length === 0) this.overflow.delete(key);
      else this.overflow.set(key, kept);
    }
  }

  /**
   * The entries whose first 31 bits match `hint` (normally none or one), unconfirmed: a caller
   * that authenticates the hint otherwise (the ratchet binds it into the AEAD's associated
   * data) saves the MAC; one that cannot, calls `confirms`. `hint` is the envelope's string.
   */
  candidates(hint: string): readonly { owner: T; slot: HintSlot }[] {
    const key = HintTable.keyOfHex(hint);
    if (key < 0) return NO_CANDIDATES;
    let out: { owner: T; slot: HintSlot }[] | null = null;
    // Every envelope is looked up here: one values array for all hours, kept, and no entry
    // arrays from iterating the Map.
    const values = this.valueScratch;
    for (const hour of this.byHour.keys()) {
      values.length = 0;
      this.byHour.get(hour)!.appendTo(key, values);
      for (let i = 0; i < values.length; i++) {
        const value = values[i]!;
        const owner = this.owners[Math.floor(value / HintTable.INDEX_LIMIT)];
        if (owner === undefined) continue;
        (out ??= []).push({ owner, slot: { hour, index: value % HintTable.INDEX_LIMIT } });
      }
    }
    const overflow = this.overflow.size === 0 ? undefined : this.overflow.get(key);
    for (const e of overflow ?? []) (out ??= []).push({ owner: e.owner, slot: { hour: e.hour, index: e.index } });
    if (out === null) return NO_CANDIDATES;
    const first = out[0]!;
    const last = this.lastFound;
    last.owner = first.owner;
    last.hour = first.slot.hour;
    last.index = first.slot.index;
    last.key = key;
    return out;
  }

  /** Is `hint` exactly the hint of this candidate's slot (constant-time compare)? */
  confirms(hint: string, candidate: { owner: T; slot: HintSlot }): boolean {
    const bytes = HintTable.keyOfHex(hint) >= 0 ? fromHex(hint) : null;
    const ownerSlot = this.ownerSlots.get(candidate.owner);
    if (bytes === null || ownerSlot === undefined) return false;
    return constantTimeEqual(computeHintBytes(this.crypto, this.keyAt(ownerSlot), candidate.slot.hour, candidate.slot.index), bytes);
  }

  /** The owner and slot of a hint, confirmed in full, or null. */
  lookup(hint: string): { owner: T; slot: HintSlot } | null {
    for (const c of this.candidates(hint)) if (this.confirms(hint, c)) return c;
    return null;
  }
}
