/**
 * Is an encoding canonical — exactly the bytes protobuf-es's `toBinary` gives for the message
 * it decodes to — decided by one pass over the bytes instead of re-encoding (the receive
 * path did two re-encodes per envelope).
 *
 * Canonical means: fields in number order, each at most once (a repeated non-packed field's
 * entries adjacent), at most one member per oneof, the wire type the field's type demands,
 * minimal varints (tags, lengths and values), no implicit-presence field holding its zero
 * value, packed lists non-empty, strings without a leading byte-order mark (the decoder drops
 * it), no unknown fields, no groups, nested messages canonical in turn.
 *
 * Only the field types Umbra's hot-path messages use are understood (uint32, uint64, bool,
 * string, bytes, messages, lists of those); for any schema with another type `check` returns
 * `undefined` and the caller re-encodes instead. The decoder itself still runs (UTF-8 and
 * structure), so this only has to reject what decodes but would re-encode differently.
 * test/canonical.test.ts checks it against re-encoding on mutated inputs.
 */
import { ScalarType, type DescField, type DescMessage, type DescOneof } from '@bufbuild/protobuf';

const PRESENCE_EXPLICIT = 1;
const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const SUPPORTED_SCALARS = new Set<ScalarType>([ScalarType.UINT32, ScalarType.UINT64, ScalarType.BOOL, ScalarType.STRING, ScalarType.BYTES]);
const MAX_DEPTH = 32;

interface Plan {
  readonly byNumber: ReadonlyMap<number, DescField>;
}

const plans = new WeakMap<DescMessage, Plan | null>();

/** The field table of a schema, or null when it (or a nested schema) has unsupported types. */
function planOf(desc: DescMessage, visiting = new Set<DescMessage>()): Plan | null {
  const known = plans.get(desc);
  if (known !== undefined) return known;
  if (visiting.has(desc)) return { byNumber: new Map(desc.fields.map((f) => [f.number, f])) }; // recursion: checked by the outer call
  visiting.add(desc);
  let ok = true;
  for (const f of desc.fields) {
    if (f.fieldKind === 'scalar') ok &&= SUPPORTED_SCALARS.has(f.scalar) && (f.scalar !== ScalarType.STRING || f.utf8Validation);
    else if (f.fieldKind === 'message') ok &&= !f.delimitedEncoding && planOf(f.message, visiting) !== null;
    else if (f.fieldKind === 'list') {
      if (f.listKind === 'scalar') ok &&= SUPPORTED_SCALARS.has(f.scalar) && (f.scalar !== ScalarType.STRING || f.utf8Validation);
      else if (f.listKind === 'message') ok &&= !f.delimitedEncoding && planOf(f.message, visiting) !== null;
      else ok = false;
    } else ok = false; // enums, maps
  }
  visiting.delete(desc);
  const plan = ok ? { byNumber: new Map(desc.fields.map((f) => [f.number, f])) } : null;
  plans.set(desc, plan);
  return plan;
}

/**
 * A minimal varint at `pos`: [low 32 bits, 1 if any bit above them is set else 0, next
 * position], or null when truncated, longer than 10 bytes, or not minimal (a multi-byte
 * varint ending in a zero byte).
 */
function readVarint(bytes: Uint8Array, pos: number): [number, number, number] | null {
  let low = 0;
  let high = 0;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= bytes.length) return null;
    const b = bytes[pos + i]!;
    if (i < 4) low |= (b & 0x7f) << (7 * i);
    else if (i === 4) {
      low |= (b & 0x0f) << 28;
      if ((b & 0x70) !== 0) high = 1;
    } else if ((b & 0x7f) !== 0) high = 1;
    if ((b & 0x80) === 0) {
      if (i > 0 && b === 0) return null;
      if (i === 9 && b > 1) return null;
      return [low >>> 0, high, pos + i + 1];
    }
  }
  return null;
}

/** A scalar value at `pos`: its end, or null if not canonical; `zero` reports a zero value. */
function readScalar(bytes: Uint8Array, pos: number, wireType: number, type: ScalarType): { end: number; zero: boolean } | null {
  if (type === ScalarType.STRING || type === ScalarType.BYTES) {
    if (wireType !== WIRE_LEN) return null;
    const len = readVarint(bytes, pos);
    if (len === null || len[1] !== 0) return null;
    const start = len[2];
    const end = start + len[0];
    if (end > bytes.length) return null;
    if (type === ScalarType.STRING && len[0] >= 3 && bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf) return null;
    return { end, zero: len[0] === 0 };
  }
  if (wireType !== WIRE_VARINT) return null;
  const v = readVarint(bytes, pos);
  if (v === null) return null;
  const [low, high, end] = v;
  if (type === ScalarType.UINT32 && high !== 0) return null;
  if (type === ScalarType.BOOL && (high !== 0 || low > 1)) return null;
  return { end, zero: low === 0 && high === 0 };
}

function check(plan: Plan, bytes: Uint8Array, depth: number): boolean | undefined {
  if (depth > MAX_DEPTH) return false;
  let pos = 0;
  let lastNumber = 0;
  let oneofs: DescOneof[] | null = null;
  while (pos < bytes.length) {
    const tag = readVarint(bytes, pos);
    if (tag === null || tag[1] !== 0) return false;
    pos = tag[2];
    const number = tag[0] >>> 3;
    const wireType = tag[0] & 7;
    const field = plan.byNumber.get(number);
    if (field === undefined) return false;
    const repeatable = field.fieldKind === 'list' && !(field.listKind === 'scalar' && field.packed);
    if (number < lastNumber || (number === lastNumber && !repeatable)) return false;
    if (field.oneof !== undefined && number !== lastNumber) {
      oneofs ??= [];
      if (oneofs.includes(field.oneof)) return false;
      oneofs.push(field.oneof);
    }
    lastNumber = number;
    if (field.fieldKind === 'scalar') {
      const r = readScalar(bytes, pos, wireType, field.scalar);
      if (r === null) return false;
      if (r.zero && field.oneof === undefined && field.presence !== PRESENCE_EXPLICIT) return false;
      pos = r.end;
    } else if (field.fieldKind === 'message' || (field.fieldKind === 'list' && field.listKind === 'message')) {
      if (wireType !== WIRE_LEN) return false;
      const len = readVarint(bytes, pos);
      if (len === null || len[1] !== 0 || len[2] + len[0] > bytes.length) return false;
      const nested = planOf(field.message!);
      if (nested === null) return undefined; // only reachable through a recursive schema
      const inner = check(nested, bytes.subarray(len[2], len[2] + len[0]), depth + 1);
      if (inner !== true) return inner;
      pos = len[2] + len[0];
    } else if (field.fieldKind === 'list' && field.listKind === 'scalar') {
      if (field.packed) {
        if (wireType !== WIRE_LEN) return false;
        const len = readVarint(bytes, pos);
        if (len === null || len[1] !== 0 || len[0] === 0) return false;
        const end = len[2] + len[0];
        if (end > bytes.length) return false;
        let p = len[2];
        while (p < end) {
          const r = readScalar(bytes.subarray(0, end), p, WIRE_VARINT, field.scalar);
          if (r === null) return false;
          p = r.end;
        }
        pos = end;
      } else {
        const r = readScalar(bytes, pos, wireType, field.scalar);
        if (r === null) return false;
        pos = r.end;
      }
    } else return false;
  }
  return true;
}

/**
 * true / false: whether `bytes` is the canonical encoding (given that it decodes at all);
 * undefined: this schema uses types this checker does not cover — re-encode instead.
 */
export function isCanonicalEncoding(desc: DescMessage, bytes: Uint8Array): boolean | undefined {
  const plan = planOf(desc);
  if (plan === null) return undefined;
  return check(plan, bytes, 0);
}
