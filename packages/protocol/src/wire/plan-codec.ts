/**
 * A second codec for the messages on the per-envelope path, driven by the same generated
 * descriptors (protoc-gen-es) as protobuf-es: each schema is compiled once into a field plan,
 * then messages are encoded and decoded by walking that plan, without protobuf-es's per-call
 * reflection objects (about half the protocol's JavaScript time per message went there).
 *
 * - `planEncode` gives exactly the bytes `toBinary` gives (fields in number order, zero values
 *   of implicit-presence fields left out, numeric lists packed, strings as TextEncoder's UTF-8).
 * - `planDecodeCanonical` decodes only canonical encodings (the bytes `planEncode` / `toBinary`
 *   would give back for the decoded message) and returns null for anything else, so it accepts
 *   and yields exactly what `fromBinary` followed by a re-encode comparison does, in one pass.
 *   Canonical means: fields in number order, each at most once (a repeated non-packed field's
 *   entries adjacent), at most one member per oneof, the wire type the field's type demands,
 *   minimal varints (tags, lengths and values), no implicit-presence field holding its zero
 *   value, packed lists non-empty, strings without a leading byte-order mark (the decoder
 *   drops it) and valid UTF-8, no unknown fields, no groups, nested messages canonical in turn.
 *
 * Covered: uint32, int32 (a negative one is the 10-byte varint of its 64-bit two's complement,
 * as protobuf writes it), uint64 (as bigint), bool, string, bytes, messages, lists of these, oneofs.
 * `compilePlan` returns null for any schema using something else (the caller then uses
 * protobuf-es). test/plan-codec.test.ts checks both directions against protobuf-es on random
 * and mutated messages.
 */
import { ScalarType, create, type DescMessage, type MessageShape } from '@bufbuild/protobuf';

const KIND_UINT32 = 0;
const KIND_UINT64 = 1;
const KIND_BOOL = 2;
const KIND_STRING = 3;
const KIND_BYTES = 4;
const KIND_MESSAGE = 5;
const KIND_INT32 = 6;
type Kind = typeof KIND_UINT32 | typeof KIND_UINT64 | typeof KIND_BOOL | typeof KIND_STRING | typeof KIND_BYTES | typeof KIND_MESSAGE | typeof KIND_INT32;

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const PRESENCE_EXPLICIT = 1;
/** Nesting limit for decoding (protobuf-es's own limit is higher; ours are at most 4 deep). */
const MAX_DEPTH = 32;

interface FieldPlan {
  readonly number: number;
  /** Property name, or the case name inside the oneof. */
  readonly name: string;
  /** The oneof's property name, when the field is a oneof member. */
  readonly oneof: string | null;
  readonly kind: Kind;
  readonly list: boolean;
  readonly packed: boolean;
  /** Written even when zero (oneof members, explicit presence). */
  readonly explicit: boolean;
  readonly tag: number;
  /** Bit of the field's oneof in the decoder's seen-mask (0 when not a oneof member). */
  readonly oneofBit: number;
  /**
   * A oneof member: the index (in `fields`) just past the run of this oneof's members it is in
   * (members adjacent in number order), so an encoder reads the oneof once per run.
   */
  runEnd: number;
  message: MessagePlan | null;
}

interface MessagePlan {
  readonly typeName: string;
  /** In number order: toBinary's order and the canonical order. */
  readonly fields: readonly FieldPlan[];
  /** Field by number (a sparse array: numbers are small), for the decoder's per-tag lookup. */
  readonly byNumber: readonly (FieldPlan | undefined)[];
  /**
   * Own properties of a fresh message (`create(schema)`) after $typeName, in creation order: the
   * name, what a fresh one holds (DEFAULT_*) and, for DEFAULT_VALUE, that value.
   */
  readonly defaultKeys: readonly string[];
  readonly defaultKinds: readonly number[];
  readonly defaultValues: readonly unknown[];
}

const DEFAULT_VALUE = 0;
const DEFAULT_BYTES = 1;
const DEFAULT_LIST = 2;
const DEFAULT_ONEOF = 3;

const plans = new WeakMap<DescMessage, MessagePlan | null>();

function kindOf(scalar: ScalarType, longAsString: boolean): Kind | null {
  switch (scalar) {
    case ScalarType.UINT32:
      return KIND_UINT32;
    case ScalarType.INT32:
      return KIND_INT32;
    case ScalarType.UINT64:
      return longAsString ? null : KIND_UINT64;
    case ScalarType.BOOL:
      return KIND_BOOL;
    case ScalarType.STRING:
      return KIND_STRING;
    case ScalarType.BYTES:
      return KIND_BYTES;
    default:
      return null;
  }
}

/** The plan of a schema (cached), or null when it or a nested schema is not covered. */
export function compilePlan(desc: DescMessage): MessagePlan | null {
  const known = plans.get(desc);
  if (known !== undefined) return known;
  const plan = build(desc, new Map());
  plans.set(desc, plan);
  return plan;
}

function build(desc: DescMessage, building: Map<DescMessage, MessagePlan>): MessagePlan | null {
  const cached = plans.get(desc) ?? building.get(desc);
  if (cached !== undefined) return cached;
  const fields: FieldPlan[] = [];
  const nested: [FieldPlan, DescMessage][] = [];
  // A message has at most 31 oneofs here (ours have one or none); more: not covered.
  if (desc.oneofs.length > 31) return null;
  for (const f of [...desc.fields].sort((a, b) => a.number - b.number)) {
    let kind: Kind | null;
    let list = false;
    let packed = false;
    if (f.fieldKind === 'scalar') kind = kindOf(f.scalar, f.longAsString);
    else if (f.fieldKind === 'message') kind = f.delimitedEncoding ? null : KIND_MESSAGE;
    else if (f.fieldKind === 'list') {
      list = true;
      if (f.listKind === 'scalar') {
        kind = kindOf(f.scalar, f.longAsString);
        packed = f.packed && kind !== KIND_STRING && kind !== KIND_BYTES;
      } else if (f.listKind === 'message') kind = f.delimitedEncoding ? null : KIND_MESSAGE;
      else kind = null;
    } else kind = null; // enums, maps
    if (kind === null) return null;
    if (kind === KIND_STRING && !(f.fieldKind === 'scalar' || f.fieldKind === 'list' ? f.utf8Validation : false)) return null;
    const wireType = kind === KIND_MESSAGE || kind === KIND_STRING || kind === KIND_BYTES || packed ? WIRE_LEN : WIRE_VARINT;
    const field: FieldPlan = {
      number: f.number,
      name: f.localName,
      oneof: f.oneof?.localName ?? null,
      kind,
      list,
      packed,
      explicit: f.oneof !== undefined || f.presence === PRESENCE_EXPLICIT,
      tag: (f.number << 3) | wireType,
      oneofBit: f.oneof === undefined ? 0 : 1 << desc.oneofs.indexOf(f.oneof),
      runEnd: -1,
      message: null,
    };
    if (kind === KIND_MESSAGE) nested.push([field, f.message!]);
    fields.push(field);
  }
  for (let i = fields.length - 1; i >= 0; i--) {
    const f = fields[i]!;
    if (f.oneof !== null) f.runEnd = i + 1 < fields.length && fields[i + 1]!.oneof === f.oneof ? fields[i + 1]!.runEnd : i + 1;
  }
  const template = create(desc) as unknown as Record<string, unknown>;
  const defaultKeys: string[] = [];
  const defaultKinds: number[] = [];
  const defaultValues: unknown[] = [];
  for (const [key, value] of Object.entries(template)) {
    if (key === '$typeName') continue;
    let kind: number;
    if (value instanceof Uint8Array) kind = DEFAULT_BYTES;
    else if (Array.isArray(value)) kind = DEFAULT_LIST;
    else if (desc.oneofs.some((o) => o.localName === key)) kind = DEFAULT_ONEOF;
    else if (value === null || typeof value !== 'object') kind = DEFAULT_VALUE;
    else return null; // a default this codec does not know how to copy
    defaultKeys.push(key);
    defaultKinds.push(kind);
    defaultValues.push(kind === DEFAULT_VALUE ? value : null);
  }
  const byNumber: (FieldPlan | undefined)[] = [];
  for (const f of fields) byNumber[f.number] = f;
  const plan: MessagePlan = { typeName: desc.typeName, fields, byNumber, defaultKeys, defaultKinds, defaultValues };
  building.set(desc, plan);
  for (const [field, message] of nested) {
    const inner = build(message, building);
    if (inner === null) return null;
    field.message = inner;
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// encoding

const textEncoder = new TextEncoder();

function varintSize(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
}

function uint64Size(value: bigint): number {
  // One conversion (exact below 2^53, and above it the double stays above 2^53 - 1), no BigInt compare.
  const n = Number(value);
  if (n <= Number.MAX_SAFE_INTEGER) return n < 0x10000000 ? varintSize(n) : n < 2 ** 35 ? 5 : n < 2 ** 42 ? 6 : n < 2 ** 49 ? 7 : 8;
  let size = 5;
  for (let rest = value >> 35n; rest > 0n; rest >>= 7n) size++;
  return size;
}

/**
 * Per-call scratch: the sizes of nested messages (and packed lists) and where each string's
 * UTF-8 bytes are, recorded by the sizing pass in the order the writing pass meets them. The
 * arrays only grow (their `count`s are reset instead: truncating an array is a runtime call).
 */
interface Scratch {
  readonly lengths: number[];
  lengthCount: number;
  lengthAt: number;
  /** Per string: its offset in `bytes`, or -1 for a short ASCII one (written from its char codes). */
  readonly stringStarts: number[];
  readonly stringLengths: number[];
  stringCount: number;
  stringAt: number;
  /** The encoded strings, end to end; wiped after each call (they are message text). */
  bytes: Uint8Array;
  bytesUsed: number;
}

function pushLength(scratch: Scratch): number {
  const slot = scratch.lengthCount++;
  scratch.lengths[slot] = 0;
  return slot;
}

function isSet(field: FieldPlan, value: unknown): boolean {
  if (field.list) return (value as unknown[]).length > 0;
  if (field.explicit) return value !== undefined;
  switch (field.kind) {
    case KIND_UINT32:
    case KIND_INT32:
      return value !== 0;
    case KIND_UINT64:
      return value !== 0n;
    case KIND_BOOL:
      return value === true;
    case KIND_STRING:
      return (value as string).length > 0;
    case KIND_BYTES:
      return (value as Uint8Array).length > 0;
    default:
      return value !== undefined;
  }
}

/** Strings this short and ASCII are written from their char codes; longer ones by TextEncoder.encodeInto (one native call beats the two JS passes over a long string). */
const SHORT_STRING = 24;

function stringSize(value: string, scratch: Scratch): number {
  const slot = scratch.stringCount++;
  if (value.length < SHORT_STRING) {
    let ascii = true;
    for (let i = 0; i < value.length && ascii; i++) ascii = value.charCodeAt(i) < 0x80;
    if (ascii) {
      scratch.stringStarts[slot] = -1;
      scratch.stringLengths[slot] = value.length;
      return value.length;
    }
  }
  // UTF-8 takes at most 3 bytes per UTF-16 unit (a surrogate pair: 4 for 2).
  const start = scratch.bytesUsed;
  if (start + 3 * value.length > scratch.bytes.length) {
    const grown = new Uint8Array(Math.max(2 * scratch.bytes.length, start + 3 * value.length));
    grown.set(scratch.bytes.subarray(0, start));
    scratch.bytes.fill(0, 0, start);
    scratch.bytes = grown;
  }
  // encodeInto writes what encode() would (lone surrogates as U+FFFD, like toBinary).
  const written = textEncoder.encodeInto(value, scratch.bytes.subarray(start)).written;
  scratch.bytesUsed = start + written;
  scratch.stringStarts[slot] = start;
  scratch.stringLengths[slot] = written;
  return written;
}

function valueSize(field: FieldPlan, value: unknown, scratch: Scratch): number {
  switch (field.kind) {
    case KIND_UINT32:
      return varintSize(value as number);
    case KIND_INT32:
      return (value as number) < 0 ? 10 : varintSize(value as number);
    case KIND_UINT64:
      return uint64Size(value as bigint);
    case KIND_BOOL:
      return 1;
    case KIND_STRING: {
      const n = stringSize(value as string, scratch);
      return varintSize(n) + n;
    }
    case KIND_BYTES: {
      const n = (value as Uint8Array).length;
      return varintSize(n) + n;
    }
    default: {
      const slot = pushLength(scratch);
      const n = messageSize(field.message!, value as Record<string, unknown>, scratch);
      scratch.lengths[slot] = n;
      return varintSize(n) + n;
    }
  }
}

/**
 * The field at `fields[i]` that is set, with its value, for the walk over `fields`: a oneof
 * member stands for its whole run (the member the oneof holds, if in the run, else none), and
 * `walkNext` is where the walk goes on. Module state instead of a result object: the walk is
 * synchronous and not reentrant across calls of this function.
 */
let walkField: FieldPlan | null = null;
let walkValue: unknown = undefined;
let walkNext = 0;

function fieldAt(fields: readonly FieldPlan[], i: number, message: Record<string, unknown>): void {
  const field = fields[i]!;
  walkField = null;
  walkNext = i + 1;
  if (field.oneof === null) {
    const value = message[field.name];
    if (value !== undefined && isSet(field, value)) {
      walkField = field;
      walkValue = value;
    }
    return;
  }
  walkNext = field.runEnd;
  const oneof = message[field.oneof] as { case: string | undefined; value?: unknown };
  if (oneof.case === undefined) return;
  for (let j = i; j < field.runEnd; j++) {
    const member = fields[j]!;
    if (member.name !== oneof.case) continue;
    if (oneof.value !== undefined && isSet(member, oneof.value)) {
      walkField = member;
      walkValue = oneof.value;
    }
    return;
  }
}

function messageSize(plan: MessagePlan, message: Record<string, unknown>, scratch: Scratch): number {
  let size = 0;
  const fields = plan.fields;
  for (let i = 0; i < fields.length; ) {
    fieldAt(fields, i, message);
    i = walkNext;
    const field = walkField;
    const value = walkValue;
    if (field === null) continue;
    const tagSize = varintSize(field.tag);
    if (!field.list) size += tagSize + valueSize(field, value, scratch);
    else if (field.packed) {
      const slot = pushLength(scratch);
      let n = 0;
      for (const item of value as unknown[]) n += valueSize(field, item, scratch);
      scratch.lengths[slot] = n;
      size += tagSize + varintSize(n) + n;
    } else for (const item of value as unknown[]) size += tagSize + valueSize(field, item, scratch);
  }
  return size;
}

class Writer {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  varint(value: number): void {
    const buf = this.buf;
    while (value > 0x7f) {
      buf[this.pos++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    buf[this.pos++] = value;
  }
  uint64(value: bigint): void {
    const n = Number(value);
    if (n < 0x100000000) return this.varint(n);
    let lo: number;
    let hi: number;
    if (n <= Number.MAX_SAFE_INTEGER) {
      hi = Math.floor(n / 2 ** 32);
      lo = n - hi * 2 ** 32;
    } else {
      lo = Number(value & 0xffffffffn);
      hi = Number(value >> 32n);
    }
    // 28 low bits, then the remaining 4 of lo joined with hi's bits.
    for (let i = 0; i < 4; i++) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    const rest = lo | ((hi & 0x07) << 4);
    hi >>>= 3;
    if (hi === 0) {
      this.buf[this.pos++] = rest;
      return;
    }
    this.buf[this.pos++] = rest | 0x80;
    this.varint(hi);
  }
}

function writeValue(w: Writer, field: FieldPlan, value: unknown, scratch: Scratch): void {
  switch (field.kind) {
    case KIND_UINT32:
      w.varint(value as number);
      return;
    case KIND_INT32:
      if ((value as number) < 0) w.uint64(BigInt.asUintN(64, BigInt(value as number)));
      else w.varint(value as number);
      return;
    case KIND_UINT64:
      w.uint64(value as bigint);
      return;
    case KIND_BOOL:
      w.buf[w.pos++] = value === true ? 1 : 0;
      return;
    case KIND_STRING: {
      const slot = scratch.stringAt++;
      const start = scratch.stringStarts[slot]!;
      const length = scratch.stringLengths[slot]!;
      w.varint(length);
      if (start < 0) {
        const s = value as string;
        for (let i = 0; i < length; i++) w.buf[w.pos++] = s.charCodeAt(i);
      } else {
        w.buf.set(scratch.bytes.subarray(start, start + length), w.pos);
        w.pos += length;
      }
      return;
    }
    case KIND_BYTES: {
      const bytes = value as Uint8Array;
      w.varint(bytes.length);
      w.buf.set(bytes, w.pos);
      w.pos += bytes.length;
      return;
    }
    default:
      w.varint(scratch.lengths[scratch.lengthAt++]!);
      writeMessage(w, field.message!, value as Record<string, unknown>, scratch);
  }
}

function writeMessage(w: Writer, plan: MessagePlan, message: Record<string, unknown>, scratch: Scratch): void {
  const fields = plan.fields;
  for (let i = 0; i < fields.length; ) {
    fieldAt(fields, i, message);
    i = walkNext;
    const field = walkField;
    const value = walkValue;
    if (field === null) continue;
    if (!field.list) {
      w.varint(field.tag);
      writeValue(w, field, value, scratch);
    } else if (field.packed) {
      w.varint(field.tag);
      w.varint(scratch.lengths[scratch.lengthAt++]!);
      for (const item of value as unknown[]) writeValue(w, field, item, scratch);
    } else {
      for (const item of value as unknown[]) {
        w.varint(field.tag);
        writeValue(w, field, item, scratch);
      }
    }
  }
}

/**
 * One scratch for every call: encoding is synchronous and calls nothing outside this module, so
 * calls never overlap. Emptied after each (no string bytes are kept).
 */
const sharedScratch: Scratch = {
  lengths: [],
  lengthCount: 0,
  lengthAt: 0,
  stringStarts: [],
  stringLengths: [],
  stringCount: 0,
  stringAt: 0,
  bytes: new Uint8Array(1024),
  bytesUsed: 0,
};

/** Encode with a compiled plan: the same bytes as protobuf-es's `toBinary`. */
export function planEncode<Desc extends DescMessage>(plan: MessagePlan, message: MessageShape<Desc>): Uint8Array {
  return planEncodeInto(plan, message, newBuffer)!;
}

function newBuffer(size: number): Uint8Array {
  return new Uint8Array(size);
}

/**
 * planEncode, written from index 0 of the buffer `into(size)` returns (at least `size` bytes;
 * the rest is left as it is); null, writing nothing, when `into` returns null. Returns that
 * buffer: a caller that pads (private-v1) encodes straight into its padding bucket.
 */
export function planEncodeInto<Desc extends DescMessage>(
  plan: MessagePlan,
  message: MessageShape<Desc>,
  into: (size: number) => Uint8Array | null,
): Uint8Array | null {
  const scratch = sharedScratch;
  const record = message as unknown as Record<string, unknown>;
  try {
    const size = messageSize(plan, record, scratch);
    const buf = into(size);
    if (buf === null) return null;
    if (buf.length < size) throw new RangeError('plan codec: buffer too small');
    const w = new Writer(buf);
    writeMessage(w, plan, record, scratch);
    if (w.pos !== size) throw new Error('plan codec: size mismatch'); // a bug, never input-dependent
    return buf;
  } finally {
    scratch.lengthCount = 0;
    scratch.lengthAt = 0;
    scratch.stringCount = 0;
    scratch.stringAt = 0;
    scratch.bytes.fill(0, 0, scratch.bytesUsed);
    scratch.bytesUsed = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// decoding (canonical encodings only)

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const INT32_LIMIT = 1n << 31n;
const UINT64_RANGE = 1n << 64n;

/** Thrown (and caught in planDecodeCanonical) for any non-canonical or malformed input. */
class Reject extends Error {}
const REJECT = new Reject();

class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
  ) {
    this.pos = start;
  }
  /** A minimal varint of at most 32 bits. */
  varint32(end: number): number {
    const buf = this.buf;
    let value = 0;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= end) throw REJECT;
      const b = buf[this.pos++]!;
      if (i < 4) value |= (b & 0x7f) << (7 * i);
      else {
        if (b > 0x0f) throw REJECT; // more than 32 bits (or a continuation)
        value |= b << 28;
      }
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw REJECT; // not minimal
        return value >>> 0;
      }
    }
    throw REJECT;
  }
  /** A minimal varint of at most 64 bits. */
  varint64(end: number): bigint {
    const buf = this.buf;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) throw REJECT;
      const b = buf[this.pos++]!;
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi = (b & 0x70) >>> 4;
      } else if (i < 9) hi |= (b & 0x7f) << (7 * i - 32);
      else {
        if (b > 1) throw REJECT;
        hi |= b << 31;
      }
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw REJECT;
        // Below 2^53 (timestamps, counters) one exact double makes the BigInt.
        hi >>>= 0;
        return hi < 0x200000 ? BigInt(hi * 2 ** 32 + (lo >>> 0)) : (BigInt(hi) << 32n) | BigInt(lo >>> 0);
      }
    }
    throw REJECT;
  }
  /** A length-delimited body: its start (reader moved past it). */
  span(end: number): number {
    const length = this.varint32(end);
    const start = this.pos;
    if (length > end - start) throw REJECT;
    this.pos = start + length;
    return start;
  }
}

function freshMessage(plan: MessagePlan): Record<string, unknown> {
  const message: Record<string, unknown> = { $typeName: plan.typeName };
  const keys = plan.defaultKeys;
  const kinds = plan.defaultKinds;
  for (let i = 0; i < keys.length; i++) {
    const kind = kinds[i];
    message[keys[i]!] = kind === DEFAULT_BYTES ? new Uint8Array(0) : kind === DEFAULT_LIST ? [] : kind === DEFAULT_ONEOF ? { case: undefined } : plan.defaultValues[i];
  }
  return message;
}

function readValue(r: Reader, field: FieldPlan, wireType: number, end: number, depth: number): unknown {
  switch (field.kind) {
    case KIND_UINT32:
      if (wireType !== WIRE_VARINT) throw REJECT;
      return r.varint32(end);
    case KIND_INT32: {
      if (wireType !== WIRE_VARINT) throw REJECT;
      const v = r.varint64(end);
      if (v < INT32_LIMIT) return Number(v);
      // A negative int32 is sign-extended to 64 bits; anything between is not what an encoder writes.
      if (v >= UINT64_RANGE - INT32_LIMIT) return Number(v - UINT64_RANGE);
      throw REJECT;
    }
    case KIND_UINT64:
      if (wireType !== WIRE_VARINT) throw REJECT;
      return r.varint64(end);
    case KIND_BOOL: {
      if (wireType !== WIRE_VARINT || r.pos >= end) throw REJECT;
      const b = r.buf[r.pos++]!;
      if (b > 1) throw REJECT;
      return b === 1;
    }
    case KIND_STRING: {
      if (wireType !== WIRE_LEN) throw REJECT;
      const start = r.span(end);
      const bytes = r.buf.subarray(start, r.pos);
      // A leading byte-order mark would be dropped by the decoder: not canonical.
      if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) throw REJECT;
      // TextDecoder is the fastest way to a string even for 32 ASCII bytes (a hint): ~0.4 µs,
      // against ~0.6 for fromCharCode.apply and ~3.7 for fromCharCode(...spread), the old path.
      try {
        return strictUtf8.decode(bytes);
      } catch {
        throw REJECT;
      }
    }
    case KIND_BYTES: {
      if (wireType !== WIRE_LEN) throw REJECT;
      const start = r.span(end);
      return r.buf.subarray(start, r.pos);
    }
    default: {
      if (wireType !== WIRE_LEN) throw REJECT;
      const start = r.span(end);
      const after = r.pos;
      r.pos = start;
      return readMessage(r, after, field.message!, depth + 1);
    }
  }
}

/** The message from r.pos to `end` (one reader for the whole input: it ends at `end`). */
function readMessage(r: Reader, end: number, plan: MessagePlan, depth: number): Record<string, unknown> {
  if (depth > MAX_DEPTH) throw REJECT;
  const message = freshMessage(plan);
  let lastNumber = 0;
  let oneofsSeen = 0;
  while (r.pos < end) {
    const tag = r.varint32(end);
    const number = tag >>> 3;
    const wireType = tag & 7;
    const field = plan.byNumber[number];
    if (field === undefined) throw REJECT; // unknown field: not canonical
    const repeatable = field.list && !field.packed;
    if (number < lastNumber || (number === lastNumber && !repeatable)) throw REJECT;
    if (field.oneof !== null) {
      if ((oneofsSeen & field.oneofBit) !== 0) throw REJECT;
      oneofsSeen |= field.oneofBit;
    }
    lastNumber = number;
    if (!field.list) {
      const value = readValue(r, field, wireType, end, depth);
      if (!isSet(field, value)) throw REJECT; // an implicit-presence zero value is left out
      if (field.oneof !== null) message[field.oneof] = { case: field.name, value };
      else message[field.name] = value;
    } else if (field.packed) {
      if (wireType !== WIRE_LEN) throw REJECT;
      const bodyStart = r.span(end);
      if (r.pos === bodyStart) throw REJECT; // an empty packed list is left out
      const items = message[field.name] as unknown[];
      const bodyEnd = r.pos;
      r.pos = bodyStart;
      while (r.pos < bodyEnd) items.push(readValue(r, field, WIRE_VARINT, bodyEnd, depth));
    } else {
      (message[field.name] as unknown[]).push(readValue(r, field, wireType, end, depth));
    }
  }
  return message;
}

/**
 * Decode a canonical encoding with a compiled plan; null for anything `fromBinary` rejects or
 * that is not canonical. Bytes fields are views into `bytes`, as with protobuf-es.
 */
export function planDecodeCanonical<Desc extends DescMessage>(plan: MessagePlan, bytes: Uint8Array): MessageShape<Desc> | null {
  try {
    return readMessage(new Reader(bytes, 0), bytes.length, plan, 0) as unknown as MessageShape<Desc>;
  } catch (e) {
    if (e === REJECT) return null;
    throw e;
  }
}
