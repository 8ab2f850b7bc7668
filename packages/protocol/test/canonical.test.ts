import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { isCanonicalEncoding } from '../src/wire/canonical.ts';
import * as wire from '../src/wire/codec.ts';
import { fromHex } from '../src/bytes.ts';

/** The reference: decodes, and re-encoding gives the same bytes. */
function reference(schema: DescMessage, bytes: Uint8Array): boolean {
  let message;
  try {
    message = fromBinary(schema, bytes, { readUnknownFields: false });
  } catch {
    return false;
  }
  return wire.isReencodedSame(schema, message, bytes);
}

function decodes(schema: DescMessage, bytes: Uint8Array): boolean {
  try {
    fromBinary(schema, bytes, { readUnknownFields: false });
    return true;
  } catch {
    return false;
  }
}

/** The one-pass check, where it applies, must agree with the reference on every input that decodes. */
function agrees(schema: DescMessage, bytes: Uint8Array): void {
  if (!decodes(schema, bytes)) return;
  const fast = isCanonicalEncoding(schema, bytes);
  if (fast === undefined) return;
  assert.equal(fast, reference(schema, bytes), `${schema.typeName} ${Buffer.from(bytes).toString('hex')}`);
}

const bytesArb = (max: number) => fc.uint8Array({ maxLength: max });
const envelopeArb = fc
  .record({ hint: fc.string({ maxLength: 40 }), salt: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), payload: bytesArb(40) })
  .map((e) => wire.toBinary(wire.UmbraEnvelopeV1Schema, wire.create(wire.UmbraEnvelopeV1Schema, { conversationHint: e.hint, salt: e.salt, payload: e.payload })));
const payloadArb = fc.oneof(
  bytesArb(20).map((b) => wire.encodeEncryptedPayload({ case: 'plaintext', value: wire.create(wire.PlaintextSchema, { payload: b }) })),
  fc.tuple(bytesArb(20), bytesArb(20)).map(([h, c]) =>
    wire.encodeEncryptedPayload({ case: 'doubleRatchet', value: wire.create(wire.DoubleRatchetMessageSchema, { header: h, ciphertext: c }) }),
  ),
  fc.tuple(bytesArb(20), bytesArb(20)).map(([e, c]) =>
    wire.encodeEncryptedPayload({ case: 'inboxHandshake', value: wire.create(wire.InboxHandshakeSchema, { enc: e, ciphertext: c }) }),
  ),
  fc.constant(wire.encodeEncryptedPayload(undefined as never)),
);
const initialArb = fc
  .record({ id: bytesArb(16), a: fc.nat(), b: fc.nat(), c: fc.nat(), kem: bytesArb(8), first: fc.option(fc.tuple(bytesArb(8), bytesArb(8))) })
  .map((m) =>
    wire.toBinary(
      wire.InitialMessageSchema,
      wire.create(wire.InitialMessageSchema, {
        invitationId: m.id,
        signedPrekeyId: m.a,
        oneTimePrekeyId: m.b,
        kemPrekeyId: m.c,
        kemCiphertext: m.kem,
        firstMessage: m.first === null ? undefined : wire.create(wire.DoubleRatchetMessageSchema, { header: m.first[0], ciphertext: m.first[1] }),
      }),
    ),
  );

/** Mutations that keep bytes decodable more often than a random flip does. */
const mutate = (base: Uint8Array) =>
  fc.oneof(
    fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([p, x]) => {
      const b = base.slice();
      if (b.length > 0) b[p % b.length]! ^= x;
      return b;
    }),
    fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([p, ins]) => {
      const at = base.length === 0 ? 0 : p % (base.length + 1);
      return Uint8Array.from([...base.subarray(0, at), ...ins, ...base.subarray(at)]);
    }),
    fc.tuple(fc.nat(), fc.nat()).map(([p, n]) => {
      const at = base.length === 0 ? 0 : p % base.length;
      return Uint8Array.from([...base.subarray(0, at), ...base.subarray(at + 1 + (n % 3))]);
    }),
    fc.nat().map((p) => Uint8Array.from([...base, ...base.subarray(0, base.length === 0 ? 0 : p % base.length)])),
    fc.constant(Uint8Array.from([...base, ...base])),
  );

describe('canonical encoding check (one pass, no re-encode)', () => {
  it('covers the schemas the receive path decodes', () => {
    for (const schema of [wire.UmbraEnvelopeV1Schema, wire.EncryptedPayloadSchema, wire.InitialMessageSchema]) {
      assert.notEqual(isCanonicalEncoding(schema, new Uint8Array(0)), undefined, schema.typeName);
    }
  });

  it('accepts what the encoder writes', () => {
    fc.assert(fc.property(envelopeArb, (b) => assert.equal(isCanonicalEncoding(wire.UmbraEnvelopeV1Schema, b), true)), { numRuns: 300 });
    fc.assert(fc.property(payloadArb, (b) => assert.equal(isCanonicalEncoding(wire.EncryptedPayloadSchema, b), true)), { numRuns: 300 });
    fc.assert(fc.property(initialArb, (b) => assert.equal(isCanonicalEncoding(wire.InitialMessageSchema, b), true)), { numRuns: 300 });
  });

  it('agrees with re-encoding on mutated and random bytes', () => {
    const cases: [DescMessage, fc.Arbitrary<Uint8Array>][] = [
      [wire.UmbraEnvelopeV1Schema, envelopeArb],
      [wire.EncryptedPayloadSchema, payloadArb],
      [wire.InitialMessageSchema, initialArb],
    ];
    for (const [schema, arb] of cases) {
      fc.assert(fc.property(arb.chain(mutate), (b) => agrees(schema, b)), { numRuns: 3000 });
      fc.assert(fc.property(bytesArb(24), (b) => agrees(schema, b)), { numRuns: 2000 });
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
    ];
    for (const [schema, h, what] of nonCanonical) {
      const b = hex(h);
      assert.equal(reference(schema, b), false, `reference: ${what}`);
      assert.equal(decodes(schema, b) ? isCanonicalEncoding(schema, b) : false, false, what);
    }
    assert.equal(isCanonicalEncoding(wire.EncryptedPayloadSchema, hex('12 00')), true, 'an empty message member is written');
    assert.equal(isCanonicalEncoding(wire.UmbraEnvelopeV1Schema, hex('10 ff ff ff ff ff ff ff ff ff 01')), true, 'the largest uint64');
  });

  it('the envelope decoders refuse non-canonical bytes', () => {
    const env = wire.encodeEnvelope('ab', 5n, new Uint8Array([1]));
    assert.notEqual(wire.decodeEnvelope(env), null);
    const padded = Uint8Array.from([...env.subarray(0, 5), 0x85, 0x00, ...env.subarray(6)]);
    assert.equal(wire.decodeEnvelope(padded), null);
  });
});
