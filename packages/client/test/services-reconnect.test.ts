/**
 * The push socket's reconnect after a receiving service dies (issue 18): a user of the services
 * expects messages again within about a second of the service being back, not after a backoff
 * that grew while it was down. Against real servers on loopback (the hub, RSAs as child
 * processes), and the delay schedule itself.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startHub, type Hub } from '@umbra/services';
import { MemoryStateStore, ServicesDelivery } from '../src/node.ts';
import { RECONNECT_FAST_CAP_MS, RECONNECT_FAST_WINDOW_MS, RECONNECT_FIRST_MS, RECONNECT_MAX_MS, reconnectDelayMs } from '../src/services/delivery.ts';
import { tempDir, waitFor } from './helpers.ts';

let hub: Hub;
let cleanup: () => void = () => {};
const deliveries: ServicesDelivery[] = [];

before(async () => {
  const t = tempDir('umbra-services-reconnect-');
  cleanup = t.cleanup;
  hub = await startHub({ dataDir: t.dir, port: 0, rsaMode: 'child', ssaRetry: { baseMs: 50, maxMs: 500 } });
});

after(async () => {
  for (const d of deliveries) await d.close().catch(() => undefined);
  await hub?.close();
  cleanup();
});

async function delivery(): Promise<ServicesDelivery> {
  const d = await ServicesDelivery.open({ issuer: hub.issuer, ssa: hub.ssa, rsas: hub.rsas, stateStore: new MemoryStateStore() });
  deliveries.push(d);
  return d;
}

describe('reconnect delays', () => {
  test('the first attempt after a drop comes within RECONNECT_FIRST_MS, jittered over its second half', () => {
    assert.equal(reconnectDelayMs(0, 0, 0), RECONNECT_FIRST_MS / 2);
    assert.ok(reconnectDelayMs(0, 0, 0.999) < RECONNECT_FIRST_MS);
  });

  test('attempts stay at most RECONNECT_FAST_CAP_MS apart while the outage is young, then back off to RECONNECT_MAX_MS', () => {
    for (let failures = 0; failures < 20; failures++) assert.ok(reconnectDelayMs(failures, RECONNECT_FAST_WINDOW_MS - 1, 0.999) < RECONNECT_FAST_CAP_MS);
    assert.equal(reconnectDelayMs(12, RECONNECT_FAST_WINDOW_MS, 0.9999999), RECONNECT_MAX_MS * (0.5 + 0.9999999 * 0.5));
    assert.ok(reconnectDelayMs(12, RECONNECT_FAST_WINDOW_MS, 0) >= RECONNECT_MAX_MS / 2);
  });
});

describe('an RSA killed and restarted (loopback hub)', () => {
  test('the receiver is pushed a message within 1.5 s of the RSA listening again after 8 s down', async () => {
    const receiver = await delivery();
    const sender = await delivery();
    const got: { text: string; at: number }[] = [];
    receiver.subscribe([], async (env) => {
      got.push({ text: new TextDecoder().decode(env.bytes), at: performance.now() });
      return true;
    });
    const endpoints = await receiver.endpointsForNewRelationship();
    const first = endpoints.find((e) => e.endpoint.case === 'receivingService' && new URL(e.endpoint.value.url).port === new URL(hub.rsas[0]).port);
    assert.ok(first, 'an endpoint at the RSA that is killed');
    await sender.publishEndpoint(first, new TextEncoder().encode('before'));
    await waitFor(() => got.some((g) => g.text === 'before'), 15_000, 'the message before the kill');

    await hub.rsaHandles[0].kill();
    // Long enough for the old backoff (0.25, 0.5, 1, 2, 4 s ... doubling to 10 s) to have grown past a second.
    await new Promise((r) => setTimeout(r, 8000));
    await hub.rsaHandles[0].restart();
    const back = performance.now();
    await sender.publishEndpoint(first, new TextEncoder().encode('after'));
    await waitFor(() => got.some((g) => g.text === 'after'), 20_000, 'the message after the restart');
    const ms = got.find((g) => g.text === 'after')!.at - back;
    assert.ok(ms < 1500, `pushed ${ms.toFixed(0)} ms after the RSA was listening again`);
  });
});
