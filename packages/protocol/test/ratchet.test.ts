import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nobleProvider as crypto } from '../src/crypto/noble.ts';
import {
  initInitiator,
  initResponder,
  ratchetDecrypt,
  ratchetEncrypt,
  MAX_SKIP,
  MAX_STORED_SKIPPED_KEYS,
  SKIPPED_KEY_MAX_AGE_MS,
  type RatchetState,
  type RatchetCiphertext,
} from '../src/ratchet.ts';
import { utf8 } from '../src/bytes.ts';

const AD = utf8('associated data');
const NOW = 1_800_000_000_000;

function pair(): { a: RatchetState; b: RatchetState } {
  const sk = crypto.randomBytes(32);
  const hka = crypto.randomBytes(32);
  const nhkb = crypto.randomBytes(32);
  const bobKey = crypto.x25519Generate();
  return { a: initInitiator(crypto, sk, bobKey.publicKey, hka, nhkb), b: initResponder(sk, bobKey, hka, nhkb) };
}

function send(state: RatchetState, text: string): { state: RatchetState; msg: RatchetCiphertext } {
  const r = ratchetEncrypt(crypto, state, utf8(text), AD);
  return { state: r.state, msg: r.message };
}

function recv(state: RatchetState, msg: RatchetCiphertext, now = NOW) {
  return ratchetDecrypt(crypto, state, msg, AD, now);
}

const dec = (b: Uint8Array) => new TextDecoder().decode(b);

describe('Double Ratchet with header encryption', () => {
  it('ping-pong with a DH ratchet step every turn', () => {
    let { a, b } = pair();
    for (let i = 0; i < 20; i++) {
      const m = send(a, `a${i}`);
      a = m.state;
      const r = recv(b, m.msg);
      assert.ok(r.ok);
      assert.equal(dec(r.plaintext), `a${i}`);
      b = r.state;
      const m2 = send(b, `b${i}`);
      b = m2.state;
      const r2 = recv(a, m2.msg);
      assert.ok(r2.ok);
      assert.equal(dec(r2.plaintext), `b${i}`);
      a = r2.state;
    }
    assert.equal(a.skipped.size + b.skipped.size, 0);
  });

  it('header and body are 68 B and padded-length + 28 B; no plain counters on the wire', () => {
    const { a } = pair();
    const m = send(a, 'x'.repeat(100));
    assert.equal(m.msg.header.length, 68);
    assert.equal(m.msg.ciphertext.length, 100 + 28);
  });

  it('the responder cannot send before it has received', () => {
    const { b } = pair();
    assert.throws(() => ratchetEncrypt(crypto, b, utf8('x'), AD));
  });

  it('property: any delivery order within the skip window decrypts every message exactly once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 6 }), // burst sizes, alternating sides
        fc.integer(),
        (bursts, seed) => {
          let { a, b } = pair();
          // Everyone first exchanges one message so both can send.
          const m0 = send(a, 'hello');
          a = m0.state;
          const r0 = recv(b, m0.msg);
          assert.ok(r0.ok);
          b = r0.state;
          const toB: { msg: RatchetCiphertext; text: string }[] = [];
          const toA: { msg: RatchetCiphertext; text: string }[] = [];
          bursts.forEach((n, k) => {
            for (let i = 0; i < n; i++) {
              const text = `${k}-${i}`;
              if (k % 2 === 0) {
                const m = send(a, text);
                a = m.state;
                toB.push({ msg: m.msg, text });
              } else {
                const m = send(b, text);
                b = m.state;
                toA.push({ msg: m.msg, text });
              }
            }
          });
          const shuffle = <T>(xs: T[], s: number) => {
            const out = xs.slice();
            let x = s | 1;
            for (let i = out.length - 1; i > 0; i--) {
              x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
              const j = Math.abs(x) % (i + 1);
              [out[i], out[j]] = [out[j]!, out[i]!];
            }
            return out;
          };
          for (const m of shuffle(toB, seed)) {
            const r = recv(b, m.msg);
            assert.ok(r.ok, 'delivered once');
            assert.equal(dec(r.plaintext), m.text);
            b = r.state;
            assert.equal(recv(b, m.msg).ok, false, 'a replay is rejected');
          }
          for (const m of shuffle(toA, seed + 1)) {
            const r = recv(a, m.msg);
            assert.ok(r.ok);
            assert.equal(dec(r.plaintext), m.text);
            a = r.state;
            assert.equal(recv(a, m.msg).ok, false);
          }
          assert.equal(b.skipped.size, 0);
          assert.equal(a.skipped.size, 0);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('replays are rejected, in order and out of order', () => {
    const p = pair();
    let b = p.b;
    const m1 = send(p.a, '1');
    const m2 = send(m1.state, '2');
    let r = recv(b, m2.msg);
    assert.ok(r.ok);
    b = r.state;
    const replay2 = recv(b, m2.msg);
    assert.deepEqual(replay2, { ok: false, reason: 'replay' });
    r = recv(b, m1.msg); // skipped key
    assert.ok(r.ok);
    b = r.state;
    assert.deepEqual(recv(b, m1.msg), { ok: false, reason: 'replay' });
  });

  it('refuses to skip more than MAX_SKIP keys in a chain', () => {
    const p = pair();
    const b = p.b;
    let a = p.a;
    let last: RatchetCiphertext | null = null;
    for (let i = 0; i <= MAX_SKIP + 1; i++) {
      const m = send(a, String(i));
      a = m.state;
      last = m.msg;
    }
    assert.deepEqual(recv(b, last!), { ok: false, reason: 'too-many-skipped' });
  });

  it(`keeps at most ${MAX_STORED_SKIPPED_KEYS} skipped keys, evicting the oldest`, () => {
    let { a, b } = pair();
    const first = send(a, 'first');
    a = first.state;
    // Three chains of 900 skipped messages each (the peer replies in between to start new chains).
    const oldest = first.msg;
    for (let chain = 0; chain < 3; chain++) {
      let tip: RatchetCiphertext | null = null;
      for (let i = 0; i < 900; i++) {
        const m = send(a, 'x');
        a = m.state;
        tip = m.msg;
      }
      const r = recv(b, tip!);
      assert.ok(r.ok);
      b = r.state;
      const reply = send(b, 'reply');
      b = reply.state;
      const rr = recv(a, reply.msg);
      assert.ok(rr.ok);
      a = rr.state;
    }
    assert.equal(b.skipped.size, MAX_STORED_SKIPPED_KEYS);
    assert.equal(recv(b, oldest).ok, false, 'the oldest skipped key was evicted');
  });

  it('skipped keys expire after 30 days', () => {
    let { a, b } = pair();
    const m1 = send(a, '1');
    a = m1.state;
    const m2 = send(a, '2');
    a = m2.state;
    const r = recv(b, m2.msg, NOW);
    assert.ok(r.ok);
    b = r.state;
    assert.equal(b.skipped.size, 1);
    const m3 = send(a, '3');
    const later = recv(b, m3.msg, NOW + SKIPPED_KEY_MAX_AGE_MS + 1);
    assert.ok(later.ok);
    assert.equal(later.state.skipped.size, 0);
    assert.equal(recv(later.state, m1.msg, NOW + SKIPPED_KEY_MAX_AGE_MS + 2).ok, false);
  });

  it('property: a flipped byte anywhere is rejected and the input state object is untouched', () => {
    let { a, b } = pair();
    const m0 = send(a, 'hello');
    a = m0.state;
    const r0 = recv(b, m0.msg);
    assert.ok(r0.ok);
    b = r0.state;
    const m = send(a, 'the message');
    const frozenSkipped = b.skipped.size;
    const before = JSON.stringify(b, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v instanceof Map ? [...v] : v));
    fc.assert(
      fc.property(fc.boolean(), fc.nat(), fc.integer({ min: 1, max: 255 }), (inHeader, pos, x) => {
        const header = m.msg.header.slice();
        const ciphertext = m.msg.ciphertext.slice();
        if (inHeader) header[pos % header.length]! ^= x;
        else ciphertext[pos % ciphertext.length]! ^= x;
        const r = recv(b, { header, ciphertext });
        assert.equal(r.ok, false);
      }),
      { numRuns: 300 },
    );
    const after = JSON.stringify(b, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v instanceof Map ? [...v] : v));
    assert.equal(after, before);
    assert.equal(b.skipped.size, frozenSkipped);
    assert.ok(recv(b, m.msg).ok, 'the genuine message still decrypts');
  });

  it('fresh states share one empty skipped-key map, and skipping, using and expiring keys never writes to it', () => {
    const first = pair();
    const shared = first.b.skipped;
    let { a, b } = first;
    // Skip two keys on the current chain, then a third across a DH step, use one, expire the rest.
    const m1 = send(a, '1');
    const m2 = send(m1.state, '2');
    const m3 = send(m2.state, '3');
    a = m3.state;
    let r = recv(b, m3.msg);
    assert.ok(r.ok);
    b = r.state;
    assert.equal(b.skipped.size, 2);
    const reply = send(b, 'reply');
    b = reply.state;
    const ra = recv(a, reply.msg);
    assert.ok(ra.ok);
    const m4 = send(ra.state, '4');
    const m5 = send(m4.state, '5');
    r = recv(b, m5.msg);
    assert.ok(r.ok);
    b = r.state;
    assert.equal(b.skipped.size, 3);
    r = recv(b, m1.msg);
    assert.ok(r.ok);
    assert.equal(r.state.skipped.size, 2);
    assert.equal(recv(r.state, send(m5.state, '6').msg, NOW + SKIPPED_KEY_MAX_AGE_MS + 1).ok, true);
    assert.equal(shared.size, 0, 'the shared empty map stayed empty');
    const second = pair();
    assert.equal(second.a.skipped.size + second.b.skipped.size, 0, 'a new state starts with no skipped keys');
  });

  it('a chain key keeps no other key material in its buffer, and a stored skipped key does not keep the chain key', () => {
    // Only the key's own bytes may be non-zero in the memory its array keeps alive.
    const keepsOnlyItself = (key: Uint8Array) => {
      const all = new Uint8Array(key.buffer);
      return all.every((b, i) => b === 0 || (i >= key.byteOffset && i < key.byteOffset + key.length));
    };
    let { a, b } = pair();
    const m0 = send(a, 'first');
    a = m0.state;
    const r0 = recv(b, m0.msg);
    assert.ok(r0.ok);
    b = r0.state;
    assert.ok(keepsOnlyItself(a.sendingChainKey!), 'sender, after a message');
    assert.ok(keepsOnlyItself(b.receivingChainKey!), 'receiver, after a message');
    const sent = [send(a, 'x')];
    for (let i = 0; i < 3; i++) sent.push(send(sent[sent.length - 1]!.state, `y${i}`));
    const r = recv(b, sent[3]!.msg); // skips three keys
    assert.ok(r.ok);
    assert.equal(r.state.skipped.size, 3);
    assert.ok(keepsOnlyItself(r.state.receivingChainKey!), 'receiver, after skipping');
    for (const entry of r.state.skipped.values()) {
      assert.ok(keepsOnlyItself(entry.messageKey), 'a stored skipped key has its own buffer');
      assert.notEqual(entry.messageKey.buffer, r.state.receivingChainKey!.buffer);
    }
    const late = recv(r.state, sent[1]!.msg);
    assert.ok(late.ok && dec(late.plaintext) === 'y0');
  });

  it('a wrong associated data is rejected', () => {
    const { a, b } = pair();
    const m = send(a, 'x');
    assert.equal(ratchetDecrypt(crypto, b, m.msg, utf8('other'), NOW).ok, false);
  });
});
