/**
 * The services delivery end to end, against real servers on loopback (`startHub`: issuer, SSA and
 * two RSAs, each RSA its own process so it can be SIGKILLed): invitations carry RSA addresses,
 * messages flow SSA → RSA → WebSocket/fetch both ways and are acknowledged, an RSA killed and
 * restarted mid-stream loses nothing, a relationship survives losing one of its RSAs, and after
 * an address rotation (a Particle update piggy-backed on a message) the peer uses the new addresses.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { parseInvitation } from '@umbra/protocol';
import { startHub, type Hub } from '@umbra/services';
import { Client, MemoryStateStore, nodeProvider, openStore, ServicesDelivery, SqliteStore, type ServicesDeliveryOptions } from '../src/node.ts';
import { FAST, KEY_A, tempDir, texts, waitFor } from './helpers.ts';

let hub: Hub;
const cleanups: (() => void)[] = [];
const open: { client: Client; delivery: ServicesDelivery }[] = [];

before(async () => {
  const t = tempDir('umbra-services-hub-');
  cleanups.push(t.cleanup);
  hub = await startHub({
    dataDir: t.dir,
    port: 0,
    rsaMode: 'child',
    rsaLimits: { perSeedPerMinute: 10_000, perSeedPerDay: 100_000 },
    ssaRetry: { baseMs: 50, maxMs: 500 },
  });
});

after(async () => {
  for (const o of open) {
    await o.client.close().catch(() => undefined);
    o.delivery.close();
  }
  await hub?.close();
  for (const c of cleanups) c();
});

async function member(name: string, extra: Partial<ServicesDeliveryOptions> = {}): Promise<{ client: Client; delivery: ServicesDelivery }> {
  const delivery = await ServicesDelivery.open({ issuer: hub.issuer, ssa: hub.ssa, rsas: hub.rsas, stateStore: new MemoryStateStore(), ...extra });
  const client = await Client.open({ delivery, store: await SqliteStore.open({ path: ':memory:', key: KEY_A }), profile: { name }, ...FAST });
  const m = { client, delivery };
  open.push(m);
  return m;
}

async function pair(aliceExtra: Partial<ServicesDeliveryOptions> = {}) {
  const alice = await member('Alice', aliceExtra);
  const bob = await member('Bob');
  const inv = await bob.client.createInvitation();
  const conv = await alice.client.accept(inv.text);
  await waitFor(async () => (await bob.client.conversations()).some((c) => c.id === conv.id), 15_000, 'bob to see the conversation');
  await waitFor(async () => (await alice.client.pendingCount(conv.id)) === 0, 15_000, 'the handshake ack');
  return { alice, bob, conv, invitation: inv.text };
}

describe('services delivery (issuer, SSA, two RSAs on loopback)', () => {
  test('invitations carry an address at each RSA; two clients talk both ways through SSA → RSA; everything is acknowledged', async () => {
    const { alice, bob, conv, invitation } = await pair();
    const parsed = parseInvitation(nodeProvider, invitation, Date.now());
    const urls = parsed.endpoints.map((e) => (e.endpoint.case === 'receivingService' ? e.endpoint.value.url : e.endpoint.case));
    assert.deepEqual(urls.sort(), [...hub.rsas].sort());
    for (const e of parsed.endpoints) {
      assert.equal(e.endpoint.case, 'receivingService');
      if (e.endpoint.case === 'receivingService') assert.equal(e.endpoint.value.address.length, 68);
    }

    const acked: string[] = [];
    alice.client.on('acked', (a) => acked.push(a.messageId));
    const m1 = await alice.client.send(conv.id, 'hello Bob, via the services');
    await waitFor(async () => (await texts(bob.client, conv.id)).length === 1, 15_000, 'bob to receive');
    await bob.client.send(conv.id, 'hello Alice');
    await waitFor(() => acked.includes(m1.id), 15_000, 'alice to get the ack');
    await waitFor(async () => (await texts(alice.client, conv.id)).length === 2 && (await bob.client.pendingCount()) === 0, 15_000, 'alice to receive and bob to be acknowledged');
    assert.deepEqual(await texts(alice.client, conv.id), ['>hello Bob, via the services', '<hello Alice']);
    assert.deepEqual(await texts(bob.client, conv.id), ['<hello Bob, via the services', '>hello Alice']);
    // Every envelope was handed over with the route of the address it was resolved to.
    assert.ok([...bob.delivery.receivedByRoute.keys()].every((r) => bob.delivery.issuedRoutes().includes(r)));
    // Nothing stays at the RSAs once the clients have stored it.
    await alice.client.settle();
    await bob.client.settle();
    let left = -1;
    for (let i = 0; i < 50 && left !== 0; i++) {
      left = (await alice.delivery.unacknowledged()) + (await bob.delivery.unacknowledged());
      if (left !== 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(left, 0, 'messages left unacknowledged at the RSAs');
  });

  test('an RSA SIGKILLed and restarted mid-stream loses nothing', async () => {
    const { alice, bob, conv } = await pair();
    const N = 30;
    for (let i = 0; i < N; i++) {
      await alice.client.send(conv.id, `m${i}`);
      if (i === 8) await hub.rsaHandles[0].kill();
      if (i === 18) await hub.rsaHandles[0].restart();
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor(async () => (await texts(bob.client, conv.id)).length === N && (await alice.client.pendingCount(conv.id)) === 0, 45_000, 'all messages delivered and acknowledged');
    assert.deepEqual(await texts(bob.client, conv.id), Array.from({ length: N }, (_, i) => `<m${i}`));
  });

  test('a relationship survives losing one of its RSAs', async () => {
    const { alice, bob, conv } = await pair();
    await hub.rsaHandles[0].kill();
    try {
      await alice.client.send(conv.id, 'one RSA is down');
      await waitFor(async () => (await texts(bob.client, conv.id)).length === 1, 20_000, 'bob to receive through the other RSA');
      await bob.client.send(conv.id, 'still here');
      await waitFor(async () => (await texts(alice.client, conv.id)).length === 2 && (await alice.client.pendingCount()) === 0 && (await bob.client.pendingCount()) === 0, 20_000, 'both ways through the other RSA');
      // A client that opens while an RSA is down still catches up from the other one.
      await bob.client.sync();
    } finally {
      await hub.rsaHandles[0].restart();
    }
  });

  test('address rotation: a Particle update rides on an ordinary message; the peer then delivers to the new addresses', async () => {
    const { alice, bob, conv } = await pair({ rotateAfterMs: 1500 });
    const before = alice.delivery.issuedRoutes();
    assert.equal(before.length, 2, 'the acceptance used one address per RSA');
    await bob.client.send(conv.id, 'before rotation');
    await waitFor(async () => (await texts(alice.client, conv.id)).length === 1, 15_000, 'first message');
    await new Promise((r) => setTimeout(r, 1600));
    await alice.client.send(conv.id, 'rotating');
    await waitFor(() => alice.delivery.issuedRoutes().length === 4, 5000, 'fresh addresses');
    const fresh = alice.delivery.issuedRoutes().filter((r) => !before.includes(r));
    await waitFor(async () => (await texts(bob.client, conv.id)).length === 2, 15_000, 'bob to receive the rotating message');
    await bob.client.send(conv.id, 'after rotation');
    await waitFor(async () => (await texts(alice.client, conv.id)).length === 3, 15_000, 'alice to receive after the rotation');
    const onFresh = fresh.reduce((n, r) => n + (alice.delivery.receivedByRoute.get(r) ?? 0), 0);
    assert.ok(onFresh >= 1, 'bob delivered to the new addresses');
    // The old addresses stay valid until they expire: the conversation still lists them.
    assert.ok(before.every((r) => alice.delivery.issuedRoutes().includes(r)));
  });

  test('the services account is kept in the encrypted store: it survives a reopen and needs the passphrase', async () => {
    const t = tempDir('umbra-services-state-');
    cleanups.push(t.cleanup);
    const store = await openStore({ dataDir: t.dir, passphrase: 'correct horse' });
    const d = await ServicesDelivery.open({ issuer: hub.issuer, ssa: hub.ssa, rsas: hub.rsas, store });
    await d.close();
    await store.close();
    assert.equal(statSync(join(t.dir, 'umbra.db')).mode & 0o777, 0o600);
    await assert.rejects(openStore({ dataDir: t.dir, passphrase: 'wrong' }), /wrong passphrase|wrong-passphrase/);
    const reopened = await openStore({ dataDir: t.dir, passphrase: 'correct horse' });
    assert.notEqual(await reopened.serviceAccount.get(), null);
    const again = await ServicesDelivery.open({ issuer: hub.issuer, ssa: hub.ssa, rsas: hub.rsas, store: reopened });
    assert.deepEqual(again.config.rsas, hub.rsas);
    await again.close();
    await reopened.close();
  });
});
