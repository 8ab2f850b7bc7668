/** The RSA's native-X25519 address resolution (resolve.ts) agrees with noble's c2 − x·c1. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deriveAddress, generateAddressKey, generateSeed, parseAddress, rerandomizeAddress, resolveAddress } from '@umbra/protocol/services';
import { fastResolve, prepareResolveKey, resolveParsed } from '../src/resolve.ts';

describe('fast address resolution (native X25519 + Okeya–Sakurai)', () => {
  it('matches noble for many keys (every factor c) and re-randomized addresses', () => {
    const factors = new Set<bigint>();
    for (let k = 0; k < 24; k++) {
      const key = generateAddressKey(k);
      const fk = prepareResolveKey(key.x);
      assert.ok(fk, 'every key gets a fast path');
      factors.add(fk.c);
      for (let i = 0; i < 5; i++) {
        const M = generateSeed();
        let addr = deriveAddress(M, { kid: k, X: key.X });
        for (let j = 0; j < i; j++) {
          const r = rerandomizeAddress(addr, { kid: k, X: key.X });
          assert.equal(r.kind, 'ok');
          if (r.kind === 'ok') addr = r.address;
        }
        const parsed = parseAddress(addr);
        assert.equal(parsed.kind, 'ok');
        if (parsed.kind !== 'ok') continue;
        const fast = fastResolve(parsed.c1, parsed.c2, fk);
        assert.ok(fast, 'the fast path applies');
        assert.deepEqual(fast, M);
        assert.deepEqual(resolveAddress(addr, key.x), M);
      }
    }
    assert.ok(factors.size > 1, 'keys needing c > 1 were exercised');
  });

  it('an address made under another key resolves to some other point, as with noble', () => {
    const a = generateAddressKey(1);
    const b = generateAddressKey(1);
    const M = generateSeed();
    const addr = deriveAddress(M, { kid: 1, X: a.X });
    const parsed = parseAddress(addr);
    assert.equal(parsed.kind, 'ok');
    if (parsed.kind !== 'ok') return;
    const fk = prepareResolveKey(b.x);
    const got = resolveParsed(parsed, fk, b.x);
    assert.notDeepEqual(got, M);
    assert.deepEqual(got, resolveAddress(addr, b.x));
    // Without a fast key the noble path gives the same answer.
    assert.deepEqual(resolveParsed(parsed, null, b.x), got);
  });
});
