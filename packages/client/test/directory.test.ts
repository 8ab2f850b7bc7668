/**
 * Brokered first contact through a real directory service (SQLite, real Privacy Pass tokens)
 * between clients on a memory network: requests and consent, rollover and alerts, owner
 * monitoring, checkpoint gossip and split-view detection, link attestations.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { transparency as t } from '@umbra/protocol';
import { generateEd25519, startDirectory, startIssuer, type DirectoryService, type IssuerService } from '@umbra/services';
import { DirectoryClient, DirectoryError, DirectoryHttpClient, parseNameAddress, type KeyAlert, type SplitView } from '../src/node.ts';
import { MemoryNetwork, openMemoryClient, tempDir, waitFor, texts } from './helpers.ts';

const ADMIN = 'directory-admin-secret-0123456789';

describe('directory: brokered first contact', () => {
  const tmp = tempDir('umbra-dir-client-');
  let issuer: IssuerService;
  let dir: DirectoryService;
  const net = new MemoryNetwork();
  const cleanups: (() => Promise<void> | void)[] = [];

  before(async () => {
    issuer = await startIssuer({ db: join(tmp.dir, 'issuer.db'), quota: { ssa: 10_000 } });
    dir = await startDirectory({ db: join(tmp.dir, 'dir.db'), namespace: 'club.test', issuerName: issuer.issuerName, tokenKeys: [issuer.tokenKeys.ssa], adminSecret: ADMIN });
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await dir.close();
    await issuer.close();
    tmp.cleanup();
  });

  async function person(name: string) {
    const client = await openMemoryClient(net.adapter(), name);
    const directory = await DirectoryClient.open({ client, url: dir.url, legacyStateFile: join(tmp.dir, `${name}-dir.json`), issuer: issuer.url });
    cleanups.push(async () => {
      directory.close();
      await client.close();
    });
    const alerts: KeyAlert[] = [];
    const splits: SplitView[] = [];
    directory.on('key-alert', (a) => alerts.push(a));
    directory.on('split-view', (s) => splits.push(s));
    return { client, directory, alerts, splits };
  }

  it('contact by name: the recipient sees a request and accepts it; a second one is denied', async () => {
    const alice = await person('Alice');
    const bob = await person('Bob');
    const carol = await person('Carol');
    const reg = await alice.directory.register('alice', { packages: 3 });
    assert.deepEqual(reg, { version: 1, packages: 3 });
    const requests: string[] = [];
    alice.directory.on('request', (r) => requests.push(`${r.viaName}:${r.peerName}`));

    // Bob has no name: his lookup and contact are paid with tokens.
    const conv = await bob.directory.contact('alice', { note: 'hi from Bob' });
    await bob.client.send(conv.id, 'hello Alice');
    await waitFor(async () => (await alice.client.requests()).length === 1, 10_000, 'the request');
    const req = (await alice.client.requests())[0]!;
    assert.equal(req.consent, 'unknown');
    assert.equal(req.peerName, 'Bob');
    assert.equal(req.id, conv.id);
    assert.deepEqual(requests, ['alice:Bob']);
    assert.equal((await alice.client.conversations()).length, 0, 'not among allowed conversations until accepted');
    await alice.client.acceptRequest(req.id);
    await alice.client.send(req.id, 'hi Bob');
    await waitFor(async () => (await texts(bob.client, conv.id)).includes('<hi Bob'), 10_000, 'the reply');
    assert.deepEqual(await texts(alice.client, req.id), ['<hello Alice', '>hi Bob']);
    assert.equal(bob.directory.conversationStatus(conv.id)?.name, 'alice');

    // Carol's request is denied: nothing she sends is stored.
    const conv2 = await carol.directory.contact('alice');
    await waitFor(async () => (await alice.client.requests()).length === 1, 10_000, 'the second request');
    await alice.client.block(conv2.id);
    await carol.client.send(conv2.id, 'are you there?');
    await net.idle();
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await texts(alice.client, conv2.id), []);
    assert.equal(alice.directory.status().names[0]!.invitationsOut, 1);
  });

  it('approval policy queues the request until the owner approves', async () => {
    const dana = await person('Dana');
    const erin = await person('Erin');
    await dana.directory.register('dana', { packages: 2, policy: 'approval' });
    let pending = '';
    await assert.rejects(erin.directory.contact('dana', { note: 'Erin from work' }), (e: DirectoryError & { requestId?: string }) => {
      pending = e.requestId ?? '';
      return e.code === 'pending';
    });
    assert.equal(await erin.directory.contactPending('dana', pending), null);
    const list = await dana.directory.pendingRequests('dana');
    assert.deepEqual(list.map((r) => r.note), ['Erin from work']);
    await dana.directory.decide('dana', list[0]!.id, 'approve');
    const conv = await erin.directory.contactPending('dana', pending);
    assert.ok(conv);
    await erin.client.send(conv.id, 'thanks');
    await waitFor(async () => (await dana.client.requests()).some((r) => r.id === conv.id), 10_000, 'the request');
  });

  it('closed names refuse; members-only names take members', async () => {
    const fred = await person('Fred');
    const gina = await person('Gina');
    const hugo = await person('Hugo');
    await fred.directory.register('fred', { packages: 2, policy: 'closed' });
    await assert.rejects(gina.directory.contact('fred'), (e: DirectoryError) => e.code === 'refused' && /Contact closed/.test(e.message));
    await fred.directory.setPolicy('fred', 'members');
    await assert.rejects(gina.directory.contact('fred'), (e: DirectoryError) => e.code === 'refused' && /Members only/.test(e.message));
    await hugo.directory.register('hugo', { packages: 1 });
    const conv = await hugo.directory.contact('fred');
    assert.ok(conv.id);
  });

  it('rollover with "follows" is accepted; an operator reset raises alerts for contacts and for the owner', async () => {
    const ivy = await person('Ivy');
    const jon = await person('Jon');
    await ivy.directory.register('ivy', { packages: 1 });
    assert.equal((await jon.directory.lookup('ivy')).change, 'first-seen');
    await ivy.directory.rotate('ivy', { packages: 1 });
    const r = await jon.directory.lookup('ivy');
    assert.equal(r.change, 'rotated');
    assert.equal(jon.alerts.length, 0);
    assert.deepEqual(await ivy.directory.monitorNow(), []);

    // The operator (or an attacker with its database) swaps Ivy's key without a follows.
    const k = generateEd25519();
    const ts = Date.now();
    await new DirectoryHttpClient(dir.url).register('ivy', { ipk: k.publicKey, pop: t.signPop(k.seed, 'club.test', 'ivy', ts), ts }, ADMIN);
    const r2 = await jon.directory.lookup('ivy');
    assert.equal(r2.change, 'reset');
    assert.equal(jon.alerts.length, 1);
    assert.equal(jon.alerts[0]!.kind, 'key-changed-without-follows');
    const owner = await ivy.directory.monitorNow();
    assert.equal(owner.length, 1);
    assert.equal(owner[0]!.kind, 'unexpected-key');
    assert.equal(owner[0]!.name, 'ivy');
    assert.equal(ivy.alerts.length, 1);
    assert.equal(ivy.directory.status().alerts.length, 1);
  });

  it('gossip: consistent views agree; a forged view is detected as a split view', async () => {
    const kim = await person('Kim');
    const leo = await person('Leo');
    await kim.directory.register('kim', { packages: 1 });
    await leo.directory.lookup('kim');
    await kim.directory.monitorNow();
    const g = leo.directory.gossip()!;
    assert.ok(['equal', 'consistent'].includes(await kim.directory.receiveGossip(g)));
    // The directory grows; Leo's newer view is consistent with Kim's.
    const mia = await person('Mia');
    await mia.directory.register('mia', { packages: 1 });
    await leo.directory.lookup('mia');
    assert.equal(await kim.directory.receiveGossip(leo.directory.gossip()!), 'consistent');
    assert.equal(await kim.directory.receiveGossip(new Uint8Array([1, 2, 3])), 'ignored');

    // A directory showing Kim's peer another tree of the same size (signed with its real log key).
    const logSeed = (await dir.store.db.all("SELECT v FROM meta WHERE k = 'log_key'"))[0]!.v as Uint8Array;
    const held = t.verifyCheckpoint(await new DirectoryHttpClient(dir.url).checkpoint(), dir.logOrigin, dir.logKey)!;
    const kimSize = kim.directory.status().checkpointSize!;
    const forged = t.signCheckpoint(dir.logOrigin, kimSize, new Uint8Array(32).fill(7), new Uint8Array(logSeed));
    assert.ok(held.size >= kimSize);
    assert.equal(await kim.directory.receiveGossip(t.encodeCheckpointGossip(dir.logOrigin, forged.text)), 'split-view');
    assert.equal(kim.splits.length, 1);
    // A bigger forged tree: the directory cannot prove consistency with it.
    const bigger = t.signCheckpoint(dir.logOrigin, kimSize + 5, new Uint8Array(32).fill(8), new Uint8Array(logSeed));
    assert.equal(await kim.directory.receiveGossip(t.encodeCheckpointGossip(dir.logOrigin, bigger.text)), 'split-view');
    assert.equal(kim.directory.status().splitViews.length, 2);
  });

  it('links a relationship to a directory identity with an Equiv the peer checks against the log', async () => {
    const nia = await person('Nia');
    const oto = await person('Oto');
    await nia.directory.register('nia', { packages: 1 });
    const conv = await oto.directory.contact('nia');
    await oto.client.send(conv.id, 'hi');
    await waitFor(async () => (await nia.client.requests()).some((r) => r.id === conv.id), 10_000, 'the request');
    const proof = nia.directory.linkProof(conv.id, 'nia');
    assert.equal(await oto.directory.verifyLink(conv.id, 'nia', proof), true);
    // The same proof does not link Nia to another name.
    const pam = await person('Pam');
    await pam.directory.register('pam', { packages: 0 });
    assert.equal(await oto.directory.verifyLink(conv.id, 'pam', proof), false);
  });

  it('bad input: names and addresses are checked before anything is sent', async () => {
    const q = await person('Quinn');
    await assert.rejects(q.directory.register('Not A Name'), (e: DirectoryError) => e.code === 'invalid-argument');
    await assert.rejects(q.directory.contact('x y'), (e: DirectoryError) => e.code === 'invalid-argument');
    await assert.rejects(q.directory.contact('nobody'), (e: DirectoryError) => /Unknown name/.test(e.message));
    await assert.rejects(q.directory.publishPackages('quinn', 1), (e: DirectoryError) => e.code === 'not-registered');
    assert.deepEqual(parseNameAddress('alice@127.0.0.1:7704'), { name: 'alice', url: 'http://127.0.0.1:7704' });
    assert.throws(() => parseNameAddress('alice'), DirectoryError);
  });
});
