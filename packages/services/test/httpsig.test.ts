/**
 * Request signatures and the nonce cache behind their replay check: replays refused while the
 * signature could be accepted, windows expire whole, and at the cap new signed requests get 503
 * (no live nonce is ever forgotten to make room).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HttpProblem } from '../src/common.ts';
import { generateEd25519, keyidOf, MAX_SKEW_S, NONCE_WINDOW_MS, NonceCache, signRequest, verifyRequest, type IncomingSigned } from '../src/httpsig.ts';

function fakeClock(start: number): { now: () => number; set(t: number): void } {
  let t = start;
  return { now: () => t, set: (v) => (t = v) };
}

describe('NonceCache', () => {
  test('a nonce is refused as a replay until its expiry, then its window is dropped', () => {
    const clock = fakeClock(1_000_000);
    const cache = new NonceCache(clock.now);
    const expiresAt = 1_000_000 + 60_000;
    assert.equal(cache.checkAndRemember('a', expiresAt), 'new');
    assert.equal(cache.checkAndRemember('a', expiresAt), 'replay');
    clock.set(expiresAt); // the last instant its signature is still accepted
    assert.equal(cache.checkAndRemember('a', expiresAt), 'replay');
    assert.equal(cache.size, 1);
    // Dropped once the whole window has passed (at most one window width late).
    clock.set((Math.floor(expiresAt / NONCE_WINDOW_MS) + 1) * NONCE_WINDOW_MS);
    assert.equal(cache.checkAndRemember('b', clock.now() + 1000), 'new');
    assert.equal(cache.size, 1, 'the expired window went away whole');
    assert.equal(cache.checkAndRemember('a', clock.now() + 1000), 'new');
  });

  test('a nonce whose expiry has passed by the cache clock is refused as expired, and not remembered', () => {
    const clock = fakeClock(7_777_777);
    const cache = new NonceCache(clock.now);
    assert.equal(cache.checkAndRemember('late', 7_777_776), 'expired');
    assert.equal(cache.size, 0);
    assert.equal(cache.checkAndRemember('on-time', 7_777_777), 'new');
  });

  test('each window is dropped whole, only once all of its nonces have expired', () => {
    const clock = fakeClock(0);
    const cache = new NonceCache(clock.now, { windowMs: 10_000 });
    for (let i = 0; i < 10; i++) assert.equal(cache.checkAndRemember(`w1-${i}`, 10_000 + i * 999), 'new'); // window [10 s, 20 s)
    assert.equal(cache.checkAndRemember('w2', 20_000), 'new'); // window [20 s, 30 s)
    clock.set(10_000 + 9 * 999);
    assert.equal(cache.checkAndRemember('w1-9', 10_000 + 9 * 999), 'replay');
    clock.set(19_999);
    assert.equal(cache.checkAndRemember('probe', 25_000), 'new');
    assert.equal(cache.size, 12, 'nothing dropped before the window has ended');
    clock.set(20_000);
    assert.equal(cache.checkAndRemember('w2', 20_000), 'replay');
    assert.equal(cache.size, 2, 'the first window went away whole, the second stays');
  });

  test('at the cap: new nonces are refused (not remembered), replays still caught, room again after expiry', () => {
    const clock = fakeClock(0);
    const cache = new NonceCache(clock.now, { maxLive: 3, windowMs: 10_000 });
    const expiry: Record<string, number> = { '1': 15_000, '2': 25_000, '3': 25_000, '4': 25_000, '5': 25_000 };
    const check = (n: string) => cache.checkAndRemember(n, expiry[n]!);
    assert.equal(check('1'), 'new');
    assert.equal(check('2'), 'new');
    assert.equal(check('3'), 'new');
    assert.equal(check('4'), 'full');
    assert.equal(check('4'), 'full', 'a refused nonce was not remembered');
    for (const n of ['1', '2', '3']) assert.equal(check(n), 'replay', `live nonce ${n} forgotten at the cap`);
    assert.equal(cache.size, 3);
    assert.equal(cache.retryAfterMs(), 20_000, 'the oldest window ([10 s, 20 s)) frees room at 20 s');
    clock.set(20_000);
    assert.equal(check('4'), 'new', 'room once the window of nonce 1 went away');
    assert.equal(cache.size, 3);
    assert.equal(check('5'), 'full');
    for (const n of ['2', '3', '4']) assert.equal(check(n), 'replay');
    clock.set(30_000);
    assert.equal(check('5'), 'expired');
    assert.equal(cache.checkAndRemember('6', 35_000), 'new');
    assert.equal(cache.size, 1);
  });

  test('1,000 windows of churn keep only the live windows', () => {
    const clock = fakeClock(0);
    const cache = new NonceCache(clock.now);
    let n = 0;
    for (let t = 0; t < 1000 * NONCE_WINDOW_MS; t += 1000) {
      clock.set(t);
      for (let i = 0; i < 5; i++) assert.equal(cache.checkAndRemember(`n${n++}`, t + 2 * MAX_SKEW_S * 1000), 'new');
    }
    // Live: everything expiring at or after the current window start; 240 s of inserts at 5/s,
    // plus up to one window of already-expired ones.
    assert.ok(cache.size >= 240 * 5 && cache.size <= (240 + NONCE_WINDOW_MS / 1000 + 1) * 5, `size ${cache.size}`);
  });
});

describe('verifyRequest replay check', () => {
  const key = generateEd25519();
  const keyid = keyidOf(key.publicKey);
  const lookup = (k: string) => (k === keyid ? key.publicKey : null);
  const body = new TextEncoder().encode('{"x":1}');

  function signed(nowS: number): IncomingSigned {
    return { method: 'POST', url: '/v1/deliver', headers: signRequest(key, keyid, 'POST', '/v1/deliver', body, nowS), body };
  }

  test('a replayed request is refused for as long as its timestamp is acceptable, and later refused as too old', async () => {
    const t0 = 1_800_000_000_000;
    const clock = fakeClock(t0);
    const nonces = new NonceCache(clock.now);
    const req = signed(t0 / 1000);
    assert.deepEqual(await verifyRequest(req, lookup, nonces, t0), { kind: 'ok', keyid });
    assert.deepEqual(await verifyRequest(req, lookup, nonces, t0), { kind: 'refused', reason: 'replayed signature nonce' });
    clock.set(t0 + MAX_SKEW_S * 1000);
    assert.deepEqual(await verifyRequest(req, lookup, nonces, clock.now()), { kind: 'refused', reason: 'replayed signature nonce' });
    clock.set(t0 + MAX_SKEW_S * 1000 + 1000);
    assert.deepEqual(await verifyRequest(req, lookup, nonces, clock.now()), { kind: 'refused', reason: 'signature too old or from the future' });
  });

  test('accepted by the caller\'s clock but past its expiry by the cache\'s (read later): refused as too old', async () => {
    const t0 = 1_800_000_000_000;
    const clock = fakeClock(t0 + MAX_SKEW_S * 1000 + 1);
    const nonces = new NonceCache(clock.now);
    const req = signed(t0 / 1000);
    assert.deepEqual(await verifyRequest(req, lookup, nonces, t0 + MAX_SKEW_S * 1000), { kind: 'refused', reason: 'signature too old or from the future' });
    assert.equal(nonces.size, 0);
  });

  test('a request signed in the future is remembered until its own expiry (created + 120 s)', async () => {
    const t0 = 1_800_000_000_000;
    const clock = fakeClock(t0);
    const nonces = new NonceCache(clock.now);
    const req = signed(t0 / 1000 + MAX_SKEW_S); // the furthest future the skew check allows
    assert.equal((await verifyRequest(req, lookup, nonces, t0)).kind, 'ok');
    clock.set(t0 + 2 * MAX_SKEW_S * 1000);
    assert.deepEqual(await verifyRequest(req, lookup, nonces, clock.now()), { kind: 'refused', reason: 'replayed signature nonce' });
  });

  test('when the cache is full, a new valid request gets 503 with Retry-After and is not remembered', async () => {
    const t0 = 1_800_000_000_000;
    const clock = fakeClock(t0);
    const nonces = new NonceCache(clock.now, { maxLive: 2 });
    const a = signed(t0 / 1000);
    const b = signed(t0 / 1000);
    assert.equal((await verifyRequest(a, lookup, nonces, t0)).kind, 'ok');
    assert.equal((await verifyRequest(b, lookup, nonces, t0)).kind, 'ok');
    const c = signed(t0 / 1000);
    await assert.rejects(verifyRequest(c, lookup, nonces, t0), (e: unknown) => {
      assert.ok(e instanceof HttpProblem);
      assert.equal(e.status, 503);
      const retry = Number(e.headers?.['retry-after']);
      assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 2 * MAX_SKEW_S + NONCE_WINDOW_MS / 1000, `retry-after ${retry}`);
      return true;
    });
    // The live nonces are still refused as replays, full or not.
    assert.deepEqual(await verifyRequest(a, lookup, nonces, t0), { kind: 'refused', reason: 'replayed signature nonce' });
    // A forged request never reaches the cache: refused for its signature, not with 503.
    const forged = { ...c, body: new TextEncoder().encode('{"x":2}') };
    forged.headers = { ...c.headers, 'content-digest': signRequest(key, keyid, 'POST', '/v1/deliver', forged.body, t0 / 1000)['content-digest']! };
    assert.deepEqual(await verifyRequest(forged, lookup, nonces, t0), { kind: 'refused', reason: 'signature does not verify' });
    // Once the window of a and b has gone (it ends at their expiry + up to one window), there is room.
    const later = t0 + MAX_SKEW_S * 1000 + NONCE_WINDOW_MS;
    clock.set(later);
    assert.equal((await verifyRequest(signed(later / 1000), lookup, nonces, later)).kind, 'ok');
    assert.equal(nonces.size, 1);
  });
});
