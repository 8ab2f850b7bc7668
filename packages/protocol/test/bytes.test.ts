import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { constantTimeEqual, fromBase64Url, fromHex, toBase64Url, toHex, u32be, readU32be } from '../src/bytes.ts';

describe('bytes', () => {
  it('base64url round-trips any bytes and matches Buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        const s = toBase64Url(b);
        assert.equal(s, Buffer.from(b).toString('base64url'));
        assert.deepEqual(fromBase64Url(s), b);
      }),
    );
  });
  it('base64url rejects non-canonical and foreign characters', () => {
    assert.equal(fromBase64Url('AB'), null); // trailing bits set
    assert.deepEqual(fromBase64Url('AA'), Uint8Array.of(0));
    assert.equal(fromBase64Url('A'), null);
    assert.equal(fromBase64Url('AA=='), null);
    assert.equal(fromBase64Url('a+b/'), null);
    assert.equal(fromBase64Url('é'), null);
  });
  it('hex round-trips and rejects malformed input', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => assert.deepEqual(fromHex(toHex(b)), b)));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => assert.equal(toHex(b), Buffer.from(b).toString('hex'))));
    // Longer than one String.fromCharCode chunk (4096 bytes).
    const long = Uint8Array.from({ length: 10_001 }, (_, i) => (i * 131) & 0xff);
    assert.equal(toHex(long), Buffer.from(long).toString('hex'));
    assert.equal(fromHex('abc'), null);
    assert.equal(fromHex('zz'), null);
  });
  it('constant-time equality', () => {
    assert.equal(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2)), true);
    assert.equal(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3)), false);
    assert.equal(constantTimeEqual(Uint8Array.of(1), Uint8Array.of(1, 2)), false);
  });
  it('u32be', () => {
    assert.deepEqual(u32be(0x01020304), Uint8Array.of(1, 2, 3, 4));
    assert.equal(readU32be(u32be(0xfffffffe), 0), 0xfffffffe);
  });
});
