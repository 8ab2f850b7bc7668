import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ScalarType, create, fromBinary, toBinary, type DescField, type DescMessage } from '@bufbuild/protobuf';
import { compilePlan, planDecodeCanonical, planEncode } from '../src/wire/plan-codec.ts';
import * as wire from '../src/wire/codec.ts';
import * as groupWire from '../src/wire/gen/umbra/v1/group_v1_pb.ts';
import * as stateWire from '../src/wire/gen/umbra/v1/state_pb.ts';
import { fromHex } from '../src/bytes.ts';

function isMessageSchema(v: unknown): v is DescMessage {
  return typeof v === 'object' && v !== null && (v as { kind?: string }).kind === 'message';
}

/** The wire's schemas and the local state's (state.proto: stored records are decoded by the plan codec too). */
const schemas: DescMessage[] = [...(Object.values(wire) as unknown[]), ...(Object.values(stateWire) as unknown[])].filter(isMessageSchema);

const stringArb = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.string({ unit: 'binary', maxLength: 6 }), // lone surrogates included
  fc.constant('x'.repeat(70)),
);

function scalarArb(type: ScalarType): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.UINT32:
      return fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 0xffffffff }));
    case ScalarType.INT32:
      return fc.oneof(fc.constant(0), fc.integer({ min: -300, max: 300 }), fc.integer({ min: -0x80000000, max: 0x7fffffff }));
    case ScalarType.UINT64:
      return fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 1n << 40n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.STRING:
      return stringArb;
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 20 });
    default:
      throw new Error(`no arbitrary for scalar ${type}`);
  }
}

function fieldArb(f: DescField, depth: number): fc.Arbitrary<unknown> {
  if (f.fieldKind === 'scalar') return scalarArb(f.scalar);
  if (f.fieldKind === 'message') return messageArb(f.message, depth + 1);
  if (f.fieldKind === 'list') {
    const item = f.listKind === 'scalar' ? scalarArb(f.scalar) : f.listKind === 'message' ? messageArb(f.message, depth + 1) : null;
    if (item === null) throw new Error('no arbitrary for list');
    return fc.array(item, { maxLength: depth > 2 ? 0 : 3 });
  }
  throw new Error(`no arbitrary for ${f.fieldKind}`);
}

/** Random messages of any schema the plan codec covers (oneofs set to any member or none). */
function messageArb(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of desc.fields) {
    if (f.oneof !== undefined) continue;
    if (f.fieldKind === 'message') parts[f.localName] = depth > 2 ? fc.constant(undefined) : fc.option(fieldArb(f, depth), { nil: undefined });
    else parts[f.localName] = fieldArb(f, depth);
  }
  for (const o of desc.oneofs) {
    const members = o.fields.filter((f) => depth <= 2 || f.fieldKind !== 'message');
    parts[o.localName] = fc.oneof(
      fc.constant({ case: undefined }),
      ...members.map((f) => fieldArb(f, depth).map((value) => ({ case: f.localName, value }))),
    );
  }
  return fc.record(parts).map((init) => {
    const clean = Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined));
    return create(desc, clean as never) as unknown as Record<string, unknown>;
  });
}

/** The reference definition of canonical: protobuf-es decodes it, and re-encoding gives the same bytes. */
function referenceDecode(schema: DescMessage, bytes: Uint8Array): unknown {
  let message;
  try {
    message = fromBinary(schema, bytes, { readUnknownFields: false });
  } catch {
    return null;
  }
  return wire.isReencodedSame(schema, message, bytes) ? message : null;
}

const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

interface Mutation {
  kind: 'flip' | 'set' | 'insert' | 'delete' | 'truncate';
  at: number;
  bit?: number;
  value?: number;
}

function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  const at = bytes.length === 0 ? 0 : m.at % (bytes.length + (m.kind === 'insert' ? 1 : 0));
  const out = Array.from(bytes);
  if (m.kind === 'flip' && out.length > 0) out[at] = out[at]! ^ (1 << m.bit!);
  else if (m.kind === 'set' && out.length > 0) out[at] = m.value!;
  else if (m.kind === 'insert') out.splice(at, 0, m.value!);
  else if (m.kind === 'delete') out.splice(at, 1);
  else if (m.kind === 'truncate') out.length = at;
  return Uint8Array.from(out);
}

/** Random messages of `schema`, encoded and mutated: the plan decoder agrees with the reference. */
function agreesOnMutations(schema: DescMessage, numRuns: number): void {
  const plan = compilePlan(schema)!;
  fc.assert(
    fc.property(messageArb(schema), fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (message, mutations) => {
      let bytes: Uint8Array = toBinary(schema, message as never);
      for (const m of mutations) bytes = mutate(bytes, m);
      assert.deepStrictEqual(planDecodeCanonical(plan, bytes), referenceDecode(schema, bytes));
    }),
    { numRuns },
  );
}

describe('plan codec (descriptor-driven fast path)', () => {
  it('covers every message schema of the envelope, invitation and private/v1 wire, and of the stored state', () => {
    for (const schema of schemas) assert.notEqual(compilePlan(schema), null, schema.typeName);
  });

  it('refuses schemas with types it does not cover (enums, maps): callers fall back to protobuf-es', () => {
    const withEnum = (Object.values(groupWire) as unknown[]).filter(isMessageSchema).find((s) => s.fields.some((f) => f.fieldKind === 'enum'));
    assert.ok(withEnum, 'the group wire has a schema with an enum field');
    assert.equal(compilePlan(withEnum), null);
  });

  for (const schema of schemas) {
    it(`${schema.typeName}: encodes exactly as toBinary, decodes exactly as fromBinary`, () => {
      const plan = compilePlan(schema)!;
      fc.assert(
        fc.property(messageArb(schema), (message) => {
          const reference = toBinary(schema, message as never);
          assert.deepEqual(planEncode(plan, message as never), reference);
          assert.deepStrictEqual(planDecodeCanonical(plan, reference), fromBinary(schema, reference));
        }),
        { numRuns: 150 },
      );
    });

    it(`${schema.typeName}: a mutated encoding is accepted exactly when fromBinary + the canonical check accept it`, () => {
      agreesOnMutations(schema, 300);
    });
  }

  it('the receive-path schemas (envelope, payload, initial message): 3000 mutated and 2000 random inputs each agree with the reference', () => {
    for (const schema of [wire.UmbraEnvelopeV1Schema, wire.EncryptedPayloadSchema, wire.InitialMessageSchema]) {
      agreesOnMutations(schema, 3000);
      const plan = compilePlan(schema)!;
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => assert.deepStrictEqual(planDecodeCanonical(plan, bytes), referenceDecode(schema, bytes))),
        { numRuns: 2000 },
      );
    }
  });

  it('rejects the non-canonical encodings a decoder accepts', () => {
    const hex = (h: string) => fromHex(h.replace(/\s/g, ''))!;
    const nonCanonical: [DescMessage, string, string][] = [
      [wire.UmbraEnvelopeV1Schema, '10 81 00', 'padded varint'],
      [wire.UmbraEnvelopeV1Schema, '10 00', 'implicit-presence field set to zero'],
      [wire.UmbraEnvelopeV1Schema, '0a 00', 'empty string present'],
      [wire.UmbraEnvelopeV1Schema, '10 01 0a 01 61', 'fields out of order'],
      [wire.UmbraEnvelopeV1Schema, '0a 01 61 0a 01 62', 'a singular field twice'],
      [wire.UmbraEnvelopeV1Schema, '0a 80 01 61', 'a length with a padded varint'],
      [wire.UmbraEnvelopeV1Schema, '0a 04 ef bb bf 61', 'a string starting with a byte-order mark'],
      [wire.UmbraEnvelopeV1Schema, '18 01', 'an unknown field'],
      [wire.UmbraEnvelopeV1Schema, '90 00 01', 'a padded tag'],
      [wire.EncryptedPayloadSchema, '0a 00 12 00', 'two members of one oneof'],
      [wire.EncryptedPayloadSchema, '12 02 0a 00', 'a nested message with an empty bytes field'],
      [wire.InitialMessageSchema, '20 80 80 80 80 10', 'a uint32 beyond 32 bits'],
      [stateWire.HourWindowStateSchema, '10 80 80 80 80 08', 'an int32 of 2^31 (5 bytes): not the 10-byte encoding of -2^31'],
      [stateWire.HourWindowStateSchema, '10 ff ff ff ff 0f', 'an int32 -1 truncated to 32 bits'],
    ];
    for (const [schema, h, what] of nonCanonical) {
      const b = hex(h);
      assert.equal(referenceDecode(schema, b), null, `reference: ${what}`);
      assert.equal(planDecodeCanonical(compilePlan(schema)!, b), null, what);
    }
    assert.notEqual(planDecodeCanonical(compilePlan(wire.EncryptedPayloadSchema)!, hex('12 00')), null, 'an empty message member is written');
  });

  it('the envelope decoder refuses non-canonical bytes', () => {
    const env = wire.encodeEnvelope('ab', 5n, new Uint8Array([1]));
    assert.notEqual(wire.decodeEnvelope(env), null);
    const padded = Uint8Array.from([...env.subarray(0, 5), 0x85, 0x00, ...env.subarray(6)]);
    assert.equal(wire.decodeEnvelope(padded), null);
  });

  it('rejects what is not canonical: padded varints, repeated or out-of-order fields, zero values, unknown fields, a BOM, bad UTF-8', () => {
    const plan = compilePlan(wire.TextSchema)!;
    const accept = (hex: string) => planDecodeCanonical(plan, Uint8Array.from(Buffer.from(hex, 'hex')));
    assert.equal((accept('0a026869') as { body: string } | null)?.body, 'hi');
    assert.equal(accept('0a82006869'), null); // padded length varint
    assert.equal(accept('0a0168' + '0a0169'), null); // a field twice
    assert.equal(accept('120101' + '0a0168'), null); // out of order
    assert.equal(accept('0a00'), null); // an implicit-presence zero value
    assert.equal(accept('0a0168' + '1801'), null); // unknown field 3
    assert.equal(accept('0a05efbbbf6869'), null); // leading byte-order mark
    assert.equal(accept('0a02c328'), null); // invalid UTF-8
    assert.equal(accept('0a0368'), null); // truncated
    const u64 = compilePlan(wire.UmbraEnvelopeV1Schema)!;
    const max = planDecodeCanonical(u64, Uint8Array.from(Buffer.from('10ffffffffffffffffff01', 'hex'))) as { salt: bigint } | null;
    assert.equal(max?.salt, (1n << 64n) - 1n);
    assert.equal(planDecodeCanonical(u64, Uint8Array.from(Buffer.from('10ffffffffffffffffff02', 'hex'))), null); // 65 bits
  });

  it('bytes fields are views into the input, as with protobuf-es', () => {
    const plan = compilePlan(wire.DoubleRatchetMessageSchema)!;
    const bytes = Uint8Array.of(0x0a, 0x02, 1, 2, 0x12, 0x01, 3);
    const m = planDecodeCanonical(plan, bytes) as unknown as { header: Uint8Array; ciphertext: Uint8Array };
    assert.equal(m.header.buffer, bytes.buffer);
    assert.deepEqual([...m.header, ...m.ciphertext], [1, 2, 3]);
  });
});
