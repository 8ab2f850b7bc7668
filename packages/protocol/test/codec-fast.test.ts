import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromBinary } from '@bufbuild/protobuf';
import {
  EncryptedPayloadSchema,
  MAX_HINT_CHARS,
  UmbraEnvelopeV1Schema,
  decodeEncryptedPayload,
  decodeEnvelope,
  decodeEnvelopeRouting,
  doubleRatchetMessage,
  encodeEncryptedPayload,
  encodeEnvelope,
  encodeRatchetEnvelope,
  ratchetEnvelopeFraming,
  ratchetEnvelopeHeaderAt,
  isReencodedSame,
} from '../src/wire/codec.ts';

/** The general encoders: what encodeRatchetEnvelope must give byte for byte. */
function reference(hint: string, salt: bigint, header: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return encodeEnvelope(hint, salt, encodeEncryptedPayload({ case: 'doubleRatchet', value: doubleRatchetMessage(header, ciphertext) }));
}

// A small deterministic PRNG (xorshift32), so a failure is reproducible.
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** The sender's in-place path: ratchetEnvelopeFraming, then the header and ciphertext written where it says. */
function framed(hint: string, salt: bigint, header: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const out = ratchetEnvelopeFraming(hint, Number(salt >> 32n), Number(salt & 0xffffffffn), header.length, ciphertext.length);
  out.set(header, ratchetEnvelopeHeaderAt(out.length, header.length, ciphertext.length));
  out.set(ciphertext, out.length - ciphertext.length);
  return out;
}

test('encodeRatchetEnvelope and the in-place framing give the general encoders\' bytes', () => {
  const random = rng(17);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
  const lengths = [0, 1, 68, 127, 128, 272, 16383, 16384, 65552];
  const salts = [0n, 1n, 127n, 128n, 0xffffffffn, 0x100000000n, 1n << 35n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n];
  const hints = ['', 'a', '0123456789abcdef0123456789abcdef', 'x'.repeat(64), 'é', '\uFEFFab', '\uD800'];
  for (const hint of hints) {
    for (const salt of salts) {
      for (const h of lengths) {
        for (const c of lengths) {
          if (random() < 0.7) continue;
          const header = bytes(h);
          const ciphertext = bytes(c);
          const expected = reference(hint, salt, header, ciphertext);
          assert.deepEqual(encodeRatchetEnvelope(hint, salt, header, ciphertext), expected, `${hint} ${salt} ${h} ${c}`);
          if (h > 0 && c > 0) assert.deepEqual(framed(hint, salt, header, ciphertext), expected, `framed ${hint} ${salt} ${h} ${c}`);
        }
      }
    }
  }
  for (let i = 0; i < 2000; i++) {
    const salt = BigInt(Math.floor(random() * 2 ** 32)) * 2n ** 32n + BigInt(Math.floor(random() * 2 ** 32));
    const hint = 'abcdef0123456789'.repeat(2).slice(0, Math.floor(random() * 33));
    const header = bytes(Math.floor(random() * 200));
    const ciphertext = bytes(Math.floor(random() * 3000));
    const expected = reference(hint, salt, header, ciphertext);
    assert.deepEqual(encodeRatchetEnvelope(hint, salt, header, ciphertext), expected);
    if (header.length > 0 && ciphertext.length > 0) assert.deepEqual(framed(hint, salt, header, ciphertext), expected);
  }
});

test('encodeRatchetEnvelope refuses what the general encoder refuses', () => {
  for (const salt of [-1n, 1n << 64n]) {
    let general: unknown = null;
    try {
      reference('ab', salt, new Uint8Array(1), new Uint8Array(1));
    } catch (e) {
      general = e;
    }
    let fast: unknown = null;
    try {
      encodeRatchetEnvelope('ab', salt, new Uint8Array(1), new Uint8Array(1));
    } catch (e) {
      fast = e;
    }
    assert.equal(fast === null, general === null, `salt ${salt}`);
  }
});

/**
 * What decodeEnvelope / decodeEncryptedPayload must return, from protobuf-es alone: the
 * message when the bytes are its canonical encoding (re-encoding gives them back), else null.
 */
function referenceDecode<S extends typeof UmbraEnvelopeV1Schema | typeof EncryptedPayloadSchema>(schema: S, bytes: Uint8Array): unknown {
  let message;
  try {
    message = fromBinary(schema, bytes, { readUnknownFields: false });
  } catch {
    return null;
  }
  if (!isReencodedSame(schema, message, bytes)) return null;
  if (schema === UmbraEnvelopeV1Schema && (message as { conversationHint: string }).conversationHint.length > MAX_HINT_CHARS) return null;
  return message;
}

test('decodeEnvelope and decodeEncryptedPayload agree with protobuf-es on valid and mutated envelopes', () => {
  const random = rng(29);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
  const hints = ['0123456789abcdef0123456789abcdef', 'a', 'x'.repeat(64), 'x'.repeat(65), 'x'.repeat(127), 'x'.repeat(128), '', 'é'];
  let fastShape = 0;
  for (let i = 0; i < 3000; i++) {
    const hint = hints[Math.floor(random() * hints.length)]!;
    const salt = random() < 0.8 ? (1n << 63n) | BigInt(Math.floor(random() * 2 ** 53)) : BigInt(Math.floor(random() * 2 ** 40));
    const header = bytes(random() < 0.1 ? 0 : random() < 0.8 ? 68 : Math.floor(random() * 300));
    const ciphertext = bytes(random() < 0.1 ? 0 : random() < 0.5 ? 284 : Math.floor(random() * 20000));
    const envelope = encodeRatchetEnvelope(hint, salt, header, ciphertext);
    const inputs = [envelope];
    // Mutations: a flipped byte, a truncation, an appended byte, a changed length.
    for (let k = 0; k < 4; k++) {
      const m = envelope.slice();
      const at = Math.floor(random() * Math.min(m.length, 64));
      m[at] = m[at]! ^ (1 << Math.floor(random() * 8));
      inputs.push(m);
    }
    inputs.push(envelope.subarray(0, Math.floor(random() * envelope.length)), Uint8Array.from([...envelope, 0]));
    for (const input of inputs) {
      const env = decodeEnvelope(input);
      assert.deepEqual(env, referenceDecode(UmbraEnvelopeV1Schema, input));
      // The receive path's decoder: decodeEnvelope's hint and payload, or null with it.
      assert.deepEqual(decodeEnvelopeRouting(input), env === null ? null : { hint: env.conversationHint, payload: env.payload });
      if (env === null) continue;
      const payload = decodeEncryptedPayload(env.payload);
      assert.deepEqual(payload, referenceDecode(EncryptedPayloadSchema, env.payload));
      if (payload?.encryption.case === 'doubleRatchet') fastShape++;
      // Mutated payloads on their own.
      const m = env.payload.slice();
      const at = Math.floor(random() * Math.min(m.length, 8));
      m[at] = m[at]! ^ (1 << Math.floor(random() * 8));
      assert.deepEqual(decodeEncryptedPayload(m), referenceDecode(EncryptedPayloadSchema, m));
    }
  }
  assert.ok(fastShape > 1000, `${fastShape} envelopes took the double-ratchet shape`);
});

test('decodeEnvelopeRouting refuses, like decodeEnvelope, the non-canonical salts and lengths its fast shape could meet', () => {
  const payload = [0x12, 0x00]; // opaque at this layer
  const envelope = (salt: number[], payloadField: number[] = [0x2a, payload.length, ...payload]) =>
    Uint8Array.from([0x0a, 0x02, 0x61, 0x62, 0x10, ...salt, ...payloadField]);
  const cases = [
    [0x01], // canonical
    [0x00], // a zero salt written out
    [0x81, 0x00], // a padded varint
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // 2^64 - 1
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], // above 64 bits
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00], // 11 bytes
    [0xff], // truncated
  ];
  for (const salt of cases) {
    for (const input of [envelope(salt), envelope(salt, [0x2a, 0x00]), envelope(salt, [0x2a, 0x82, 0x00, ...payload]), envelope(salt, [0x2a, payload.length + 1, ...payload])]) {
      const env = decodeEnvelope(input);
      assert.deepEqual(env, referenceDecode(UmbraEnvelopeV1Schema, input), `${input}`);
      assert.deepEqual(decodeEnvelopeRouting(input), env === null ? null : { hint: env.conversationHint, payload: env.payload }, `${input}`);
    }
  }
  assert.notEqual(decodeEnvelopeRouting(envelope([0x01])), null);
});
