import { test } from 'node:test';
import assert from 'node:assert/strict';
import { doubleRatchetMessage, encodeEncryptedPayload, encodeEnvelope, encodeRatchetEnvelope } from '../src/wire/codec.ts';

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

test('encodeRatchetEnvelope gives the general encoders\' bytes', () => {
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
          assert.deepEqual(encodeRatchetEnvelope(hint, salt, header, ciphertext), reference(hint, salt, header, ciphertext), `${hint} ${salt} ${h} ${c}`);
        }
      }
    }
  }
  for (let i = 0; i < 2000; i++) {
    const salt = BigInt(Math.floor(random() * 2 ** 32)) * 2n ** 32n + BigInt(Math.floor(random() * 2 ** 32));
    const hint = 'abcdef0123456789'.repeat(2).slice(0, Math.floor(random() * 33));
    const header = bytes(Math.floor(random() * 200));
    const ciphertext = bytes(Math.floor(random() * 3000));
    assert.deepEqual(encodeRatchetEnvelope(hint, salt, header, ciphertext), reference(hint, salt, header, ciphertext));
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
