// A contact request's id is typed on a command line (`umbra approve <name> <id>`): it never
// begins with '-', which the CLI would read as an option (one random id in 64 did).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { b64u } from '../src/bytes.ts';
import { newRequestId } from '../src/directory/server.ts';

describe('directory request ids', () => {
  it("redraws an id whose base64url begins with '-', keeps every other", () => {
    const draws = [0xf8, 0xfb, 0xfc, 0x00].map((first) => Uint8Array.of(first, ...new Uint8Array(15).fill(7)));
    assert.ok(b64u(draws[0]!).startsWith('-') && b64u(draws[1]!).startsWith('-'), 'the first two draws would begin with -');
    let taken = 0;
    const id = newRequestId((n) => {
      assert.equal(n, 16);
      return draws[taken++]!;
    });
    assert.equal(taken, 3, 'two redraws');
    assert.deepEqual(id, draws[2]);
    assert.ok(b64u(id).startsWith('_'), "'_' is kept: only '-' reads as an option");
  });

  it('real ids: 16 bytes, 22 base64url digits, none beginning with -', () => {
    for (let i = 0; i < 2000; i++) {
      const id = newRequestId();
      assert.equal(id.length, 16);
      const text = b64u(id);
      assert.match(text, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
  });
});
