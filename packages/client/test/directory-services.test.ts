/**
 * DirectoryClient through a real hub (issuer, SSA, two RSAs, directory on loopback), paying for
 * contacts from the client's services account (ServicesDelivery.tokensFor): every contact costs
 * a token, members included; a member's second contact of the same name gets the reusable
 * last-resort package (docs/DIRECTORY.md "Contact costs") and still starts a conversation that
 * arrives as a request; a second pending approval request is refused as 'rate-limited'.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startHub, type Hub } from '@umbra/services';
import { Client, DirectoryClient, DirectoryError, MemoryStateStore, ServicesDelivery, SqliteStore, type DirectoryTokenSource, type TokenInfo } from '../src/node.ts';
import { FAST, KEY_A, tempDir, texts, waitFor } from './helpers.ts';

let hub: Hub;
let tmp: { dir: string; cleanup: () => void };
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  tmp = tempDir('umbra-dir-services-');
  hub = await startHub({ dataDir: tmp.dir, port: 0, ssaRetry: { baseMs: 50, maxMs: 500 } });
});

after(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  await hub?.close();
  tmp?.cleanup();
});

async function person(name: string) {
  const delivery = await ServicesDelivery.open({ issuer: hub.issuer, ssa: hub.ssa, rsas: hub.rsas, stateStore: new MemoryStateStore() });
  const client = await Client.open({ delivery, store: await SqliteStore.open({ path: ':memory:', key: KEY_A }), profile: { name }, ...FAST });
  // Counts the tokens the directory client takes from the services account.
  let spent = 0;
  const tokens: DirectoryTokenSource = {
    async tokensFor(info: TokenInfo, count: number) {
      spent += count;
      return delivery.tokensFor(info, count);
    },
  };
  // No issuer URL: the only way to pay is the services account.
  const directory = await DirectoryClient.open({ client, url: hub.directory, tokens });
  cleanups.push(async () => {
    directory.close();
    await client.close();
    delivery.close();
  });
  return { client, directory, spent: () => spent };
}

describe('directory contacts paid from the services account (hub on loopback)', () => {
  test('contacts pay a token each, members included; a member\'s second contact gets the last-resort package and still arrives as a request', async () => {
    const alice = await person('Alice');
    const bob = await person('Bob');
    const carol = await person('Carol');
    await alice.directory.register('alice', { packages: 3 });
    const requests: string[] = [];
    alice.directory.on('request', (r) => requests.push(`${r.viaName}:${r.peerName}`));

    // Bob has no name: one token for the contact.
    const conv = await bob.directory.contact('alice', { note: 'hi' });
    assert.equal(bob.spent(), 1);
    const bobState = await bob.client.store.directory.get(hub.directory);
    assert.equal((JSON.parse(bobState!) as { issuer: unknown }).issuer, null, 'no issuer account of its own');
    await bob.client.send(conv.id, 'hello Alice');
    await waitFor(async () => (await alice.client.requests()).some((r) => r.id === conv.id), 15_000, "Bob's request");
    await alice.client.acceptRequest(conv.id);
    await alice.client.send(conv.id, 'hi Bob');
    await waitFor(async () => (await texts(bob.client, conv.id)).includes('<hi Bob'), 15_000, 'the reply');

    // Carol is a member: she signs and pays. Her second contact of alice is served from the
    // last-resort package (one one-time package per member and name a day).
    await carol.directory.register('carol', { packages: 1 });
    const c1 = await carol.directory.contact('alice');
    const c2 = await carol.directory.contact('alice');
    assert.equal(carol.spent(), 2, 'members pay for every contact');
    assert.notEqual(c1.id, c2.id);
    await carol.client.send(c1.id, 'one');
    await carol.client.send(c2.id, 'two');
    await waitFor(async () => (await alice.client.requests()).filter((r) => r.id === c1.id || r.id === c2.id).length === 2, 15_000, "Carol's two requests");
    assert.deepEqual(requests.sort(), ['alice:Bob', 'alice:Carol', 'alice:Carol']);
    assert.equal(alice.directory.status().names[0]!.invitationsOut, 1, 'two one-time packages used, the last-resort one is reusable');
    for (const id of [c1.id, c2.id]) assert.equal((await alice.client.conversation(id)).consent, 'unknown');
  });

  test('approval: a second pending request from the same member is refused as rate-limited, with Retry-After', async () => {
    const dana = await person('Dana');
    const erin = await person('Erin');
    await dana.directory.register('dana', { packages: 1, policy: 'approval' });
    await erin.directory.register('erin', { packages: 0 });
    await assert.rejects(erin.directory.contact('dana', { note: 'Erin here' }), (e: DirectoryError) => e.code === 'pending');
    await assert.rejects(erin.directory.contact('dana', { note: 'Erin again' }), (e: DirectoryError) => {
      assert.equal(e.code, 'rate-limited');
      assert.ok(e.retryAfterS !== undefined && e.retryAfterS > 0);
      return true;
    });
    assert.deepEqual((await dana.directory.pendingRequests('dana')).map((r) => r.note), ['erin: Erin here']);
    // The refused request did not spend its token: the next contact uses it.
    const fay = await person('Fay');
    await fay.directory.register('fay', { packages: 1 });
    await erin.directory.contact('fay');
    assert.equal(erin.spent(), 2, 'two tokens for three contact attempts');
  });
});
