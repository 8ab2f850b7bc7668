// hmacSha512Batch (the hint table's window blocks) on every provider the node side uses: each
// MAC byte-identical to node:crypto's HMAC-SHA512 of that message, across pad-block boundaries
// of key and message, with no state carried from one call (or key) to the next; and a hint
// table built with it finds exactly the hints computeHint gives one MAC at a time.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { nobleProvider, type CryptoProvider } from '@umbra/protocol';
import { nodeProvider } from '../src/index.ts';
import { HINT_WINDOW, HintTable, computeHint, listenedIndices, type HourWindow } from '../../protocol/src/hints.ts';

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

for (const p of [nodeProvider, nobleProvider] as CryptoProvider[]) {
  describe(`hmacSha512Batch (${p.name})`, () => {
    it('equals HMAC-SHA512 of each message, for keys and messages around the 128-byte block', () => {
      for (const keyLength of [0, 1, 32, 64, 127, 128, 129, 300]) {
        for (const messageLength of [0, 1, 21, 111, 112, 113, 127, 128, 129, 256, 300]) {
          const key = randomBytes(keyLength);
          const count = 3;
          const messages = randomBytes(messageLength * count + 7); // trailing bytes are not read
          const out = new Uint8Array(5 + count * 64 + 9).fill(0xa5);
          p.hmacSha512Batch(key, messages, messageLength, count, out, 5);
          for (let m = 0; m < count; m++) {
            const expected = createHmac('sha512', key).update(messages.subarray(m * messageLength, (m + 1) * messageLength)).digest('hex');
            assert.equal(hex(out.subarray(5 + 64 * m, 5 + 64 * (m + 1))), expected, `key ${keyLength}, message ${messageLength}, #${m}`);
          }
          assert.ok(out.subarray(0, 5).every((b) => b === 0xa5), 'bytes before outOffset untouched');
          assert.ok(out.subarray(5 + count * 64).every((b) => b === 0xa5), 'bytes after the MACs untouched');
        }
      }
    });

    it('carries nothing from one call to the next: alternating keys give each key its own MACs', () => {
      const keys = [randomBytes(32), randomBytes(32), randomBytes(200)];
      const message = randomBytes(21);
      const out = new Uint8Array(64);
      for (let round = 0; round < 3; round++) {
        for (const key of keys) {
          p.hmacSha512Batch(key, message, message.length, 1, out);
          assert.equal(hex(out), createHmac('sha512', key).update(message).digest('hex'));
        }
      }
      // A zero count writes nothing.
      const untouched = new Uint8Array(8).fill(7);
      p.hmacSha512Batch(keys[0]!, new Uint8Array(0), 21, 0, untouched);
      assert.deepEqual([...untouched], new Array<number>(8).fill(7));
    });

    it('RangeError when the lengths do not fit (never a partial write past the end)', () => {
      const key = randomBytes(32);
      const out = new Uint8Array(128);
      assert.throws(() => p.hmacSha512Batch(key, new Uint8Array(41), 21, 2, out), RangeError);
      assert.throws(() => p.hmacSha512Batch(key, new Uint8Array(42), 21, 2, out, 1), RangeError);
      assert.throws(() => p.hmacSha512Batch(key, new Uint8Array(42), 21, 3, new Uint8Array(1000)), RangeError);
      assert.throws(() => p.hmacSha512Batch(key, new Uint8Array(42), -1, 2, out), RangeError);
      assert.throws(() => p.hmacSha512Batch(key, new Uint8Array(42), 21, 1.5, out), RangeError);
      assert.throws(() => p.hmacSha512Batch(key, new Uint8Array(42), 21, 2, out, -1), RangeError);
      assert.throws(() => p.hmacSha512Batch('k' as unknown as Uint8Array, new Uint8Array(42), 21, 2, out), RangeError);
    });

    it('a hint table indexed by windows (one batch each) finds exactly the hints computeHint gives', () => {
      const table = new HintTable<string>(p);
      const key = randomBytes(32);
      const windows: HourWindow[] = [
        { hour: 500_000, highest: -1, seenMask: 0 },
        { hour: 500_001, highest: 3, seenMask: 0b1011 },
        { hour: 500_002, highest: 70, seenMask: 0x8000_0001 | 0x0f0 },
      ];
      for (const w of windows) table.addWindow('a', key, w);
      for (const w of windows) {
        const listened = new Set(listenedIndices(w));
        for (let index = Math.max(0, w.highest - HINT_WINDOW); index <= w.highest + HINT_WINDOW + 4; index++) {
          // Hints computed with the other provider, one MAC at a time.
          const hint = computeHint(p === nodeProvider ? nobleProvider : nodeProvider, key, w.hour, index);
          assert.deepEqual(table.lookup(hint), listened.has(index) ? { owner: 'a', slot: { hour: w.hour, index } } : null, `hour ${w.hour} index ${index}`);
        }
      }
    });
  });
}
