/**
 * Envelope fuzzing: mutate valid envelopes (bit flips, byte sets, truncation, extension,
 * splicing, protobuf-shaped garbage) and classify them. The property: classify never throws,
 * never returns anything but the three kinds, and never changes the receiver's state.
 * Used by fuzz.test.ts (100k per npm test) and scripts/fuzz.ts (≥ 1M).
 */
import { Engine, type CryptoProvider } from '../src/index.ts';
import * as wire from '../src/wire/codec.ts';
import { T0, snapshot, startedPair, textBody } from './helpers.ts';

export interface FuzzReport {
  readonly iterations: number;
  readonly readable: number;
  readonly badlyFormed: number;
  readonly notForMe: number;
  readonly throws: number;
  readonly stateChanged: boolean;
}

/** A small deterministic PRNG (xorshift32) so a failing run can be replayed by seed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

export async function fuzzEnvelopes(crypto: CryptoProvider, iterations: number, seed = 1, onProgress?: (done: number) => void): Promise<FuzzReport> {
  const random = rng(seed);
  const int = (n: number) => Math.floor(random() * n);
  const { alice, bob, id } = await startedPair(crypto);
  // Corpus: valid envelopes of every kind the receiver handles.
  const invite = bob.createInvitation({ nowMs: T0, reusable: true, ttlSeconds: 3600, presentation: { name: 'Bob' } });
  const handshake = (await Engine.create(crypto, T0).acceptInvitation(invite.text, { nowMs: T0, presentation: { name: 'F' } })).outgoing.envelope;
  const corpus: Uint8Array[] = [handshake];
  for (let i = 0; i < 8; i++) corpus.push(alice.send(id, textBody(`message ${i} ${'x'.repeat(i * 40)}`), T0).outgoing.envelope);
  const reply = bob.send(id, textBody('reply'), T0).outgoing.envelope;
  corpus.push(reply);
  const before = snapshot(bob);

  let readable = 0;
  let badlyFormed = 0;
  let notForMe = 0;
  let throws = 0;
  for (let i = 0; i < iterations; i++) {
    const base = corpus[int(corpus.length)]!;
    let b: Uint8Array;
    switch (int(7)) {
      case 0: // flip bits
        b = base.slice();
        for (let k = 1 + int(4); k > 0; k--) b[int(b.length)]! ^= 1 << int(8);
        break;
      case 1: // set bytes
        b = base.slice();
        for (let k = 1 + int(4); k > 0; k--) b[int(b.length)] = int(256);
        break;
      case 2: // truncate
        b = base.slice(0, int(base.length));
        break;
      case 3: // extend with garbage
        b = new Uint8Array(base.length + 1 + int(64));
        b.set(base);
        for (let k = base.length; k < b.length; k++) b[k] = int(256);
        break;
      case 4: {
        // splice two envelopes
        const other = corpus[int(corpus.length)]!;
        const cut = int(Math.min(base.length, other.length));
        b = new Uint8Array([...base.subarray(0, cut), ...other.subarray(cut)]);
        break;
      }
      case 5: {
        // a valid envelope shell around a mutated inner payload
        const env = wire.decodeEnvelope(base)!;
        const p = env.payload.slice();
        for (let k = 1 + int(3); k > 0; k--) p[int(p.length)]! ^= 1 << int(8);
        b = wire.encodeEnvelope(env.conversationHint, env.salt, p);
        break;
      }
      default: // random bytes
        b = crypto.randomBytes(int(512));
    }
    try {
      const r = await bob.classify(b, T0);
      if (r.kind === 'readable') readable++;
      else if (r.kind === 'badly-formed') badlyFormed++;
      else if (r.kind === 'not-for-me') notForMe++;
      else throws++;
    } catch {
      throws++;
    }
    if (onProgress !== undefined && (i + 1) % 100_000 === 0) onProgress(i + 1);
  }
  return { iterations, readable, badlyFormed, notForMe, throws, stateChanged: snapshot(bob) !== before };
}
