/**
 * What a network observer sees: envelopes of three interleaved conversations must share no
 * hint, no header bytes and no length pattern that would group them by conversation.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as wire from '../src/wire/codec.ts';
import { T0, startedPair, textBody } from './helpers.ts';

describe('observer', () => {
  it('three interleaved conversations cannot be told apart', async () => {
    const pairs = await Promise.all([startedPair(), startedPair(), startedPair()]);
    const sizes = [1, 50, 200, 300, 900, 2000];
    const seen: { conv: number; bytes: Uint8Array }[] = [];
    for (let round = 0; round < 4; round++) {
      for (const size of sizes) {
        pairs.forEach((p, conv) => {
          const from = round % 2 === 0 ? p.alice : p.bob;
          const to = round % 2 === 0 ? p.bob : p.alice;
          const out = from.send(p.id, textBody('x'.repeat(size)), T0 + round * 1000);
          void to;
          seen.push({ conv, bytes: out.outgoing.envelope });
        });
      }
      // deliver so the ratchets turn (both directions in use)
      for (const p of pairs) {
        const back = (round % 2 === 0 ? p.bob : p.alice).send(p.id, textBody('ack'), T0);
        void back;
      }
    }
    // 1. No hint repeats, within or across conversations.
    const hints = seen.map((e) => wire.decodeEnvelope(e.bytes)!.conversationHint);
    assert.equal(new Set(hints).size, hints.length);

    // 2. Lengths depend only on the padding bucket, not on the conversation.
    for (const size of sizes) {
      const lengths = new Set(
        seen.filter((_e, i) => sizes[Math.floor(i / 3) % sizes.length] === size).map((e) => e.bytes.length),
      );
      assert.equal(lengths.size, 1, `size ${size} gives one envelope length across conversations`);
    }

    // 3. Beyond the protobuf framing shared by all envelopes of a length, no two envelopes share
    //    an 8-byte window (which a header, key or counter in the clear would produce).
    const byLength = new Map<number, Uint8Array[]>();
    for (const e of seen) byLength.set(e.bytes.length, [...(byLength.get(e.bytes.length) ?? []), e.bytes]);
    for (const group of byLength.values()) {
      const len = group[0]!.length;
      const framing = new Array<boolean>(len).fill(true);
      for (const b of group) for (let i = 0; i < len; i++) if (b[i] !== group[0]![i]) framing[i] = false;
      const windows = new Map<string, number>();
      group.forEach((b, n) => {
        for (let i = 0; i + 8 <= len; i++) {
          if (framing.slice(i, i + 8).some(Boolean)) continue;
          const w = Buffer.from(b.subarray(i, i + 8)).toString('hex');
          const prev = windows.get(w);
          assert.ok(prev === undefined || prev === n, `envelopes ${prev} and ${n} share bytes at ${i}`);
          windows.set(w, n);
        }
      });
      // The framing is the same for every envelope of that length, so it cannot group them.
      assert.ok(framing.filter(Boolean).length < 16, `only protobuf tags/lengths are constant (${framing.filter(Boolean).length} bytes)`);
    }
  });
});
