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

  test('the same nonce is a replay whatever expiry the second caller gives', () => {
    const clock = fakeClock(5_000_000);
    const cache = new NonceCache(clock.now);
    assert.equal(cache.checkAndRemember('n', 5_000_000 + 200_000), 'new');
    assert.equal(cache.checkAndRemember('n', 5_000_000 + 1_000), 'replay');
    assert.equal(cache.checkAndRemember('n', 5_000_000 + 230_000), 'replay');
  });

  test('an expiry already past is still remembered for the current window', () => {
    const clock = fakeClock(7_777_777);
    const cache = new NonceCache(clock.now);
    assert.equal(cache.checkAndRemember('late', 7_777_000), 'new');
    assert.equal(cache.checkAndRemember('late', 7_777_000), 'replay');
  });

  test('at the cap: new nonces are refused (not remembered), replays still caught, room again after expiry', () => {
    const clock = fakeClock(0);
    const cache = new NonceCache(clock.now, { maxLive: 3, windowMs: 10_000 });
    assert.equal(cache.checkAndRemember('1', 15_000), 'new');
    assert.equal(cache.checkAndRemember('2', 25_000), 'new');
    assert.equal(cache.checkAndRemember('3', 25_000), 'new');
    assert.equal(cache.checkAndRemember('4', 25_000), 'full');
    assert.equal(cache.checkAndRemember('4', 25_000), 'full', 'a refused nonce was not remembered');
    for (const n of ['1', '2', '3']) assert.equal(cache.checkAndRemember(n, 25_000), 'replay', `live nonce ${n} forgotten at the cap`);
    assert.equal(cache.size, 3);
    assert.equal(cache.retryAfterMs(), 20_000, 'the oldest window ([10 s, 20 s)) frees room at 20 s');
    clock.set(20_000);
    assert.equal(cache.checkAndRemember('4', 25_000), 'new');
    assert.equal(cache.size, 3);
    assert.equal(cache.checkAndRemember('1', 25_000), 'full', 'nonce 1 expired with its window: no longer a replay, and no room');
    clock.set(30_000);
    assert.equal(cache.size, 3, 'sizes change only when the clock reaches a new window and a call sweeps');
    assert.equal(cache.checkAndRemember('1', 35_000), 'new');
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
    // Once the windows expire there is room, and c (still within its skew) is accepted.
    clock.set(t0 + MAX_SKEW_S * 1000 + NONCE_WINDOW_MS);
    assert.equal((await verifyRequest(c, lookup, nonces, t0 + MAX_SKEW_S * 1000)).kind, 'ok');
  });
});
