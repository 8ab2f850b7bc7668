/**
 * The Client's narrow ports: a conversation's relationship key signs through
 * Client.relationshipSigner (the secret never leaves the client), Client.relationship gives the
 * public facts, and the DirectoryClient works through them alone (no reach into the engine).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { nobleProvider } from '@umbra/protocol';
import { startDirectory, startIssuer, type DirectoryService, type IssuerService } from '@umbra/services';
import { Client, ClientError, DirectoryClient } from '../src/index.ts';
import { MemoryNetwork, connect, openMemoryClient, tempDir, waitFor } from './helpers.ts';

/** Private fields of the Client that hold or reach the engine. */
const ENGINE_HOLDERS = new Set<string | symbol>(['engine', 'state', 'ctx', 'outbox', 'receiver', 'invitations', 'consent', 'due']);

/** The client as code outside it sees it: none of the private fields that reach the engine is there. */
function withoutEngine(client: Client): Client {
  return new Proxy(client, {
    get(target, key) {
      if (ENGINE_HOLDERS.has(key)) return undefined;
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const unknownId = '00'.repeat(16);

describe('client ports: relationship signer', () => {
  const net = new MemoryNetwork();
  const clients: Client[] = [];
  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
  });

  it('signs with the conversation key the peer holds, never hands out the secret, and stops once closed', async () => {
    const alice = await openMemoryClient(net.adapter(), 'Alice');
    const bob = await openMemoryClient(net.adapter(), 'Bob');
    clients.push(alice, bob);
    const conv = await connect(alice, bob);

    const signer = alice.relationshipSigner(conv.id);
    assert.deepEqual(Object.keys(signer).sort(), ['publicKey', 'sign']);
    // The peer knows this key as our identity in the conversation.
    assert.deepEqual(bob.relationship(conv.id).peerIdentityKey, signer.publicKey);
    assert.deepEqual(alice.relationship(conv.id).peerIdentityKey, bob.relationshipSigner(conv.id).publicKey);
    // Both sides name the same invitation.
    assert.equal(alice.relationship(conv.id).invitationId, bob.relationship(conv.id).invitationId);
    assert.match(alice.relationship(conv.id).invitationId, /^[0-9a-f]{32}$/);

    const message = new TextEncoder().encode('a link proof');
    const sig = signer.sign(message);
    assert.equal(nobleProvider.ed25519Verify(signer.publicKey, message, sig), true);
    assert.equal(nobleProvider.ed25519Verify(bob.relationshipSigner(conv.id).publicKey, message, sig), false);
    // Not a key in any form: the account key is not what it signs with either.
    assert.notDeepEqual(nobleProvider.ed25519PublicKey(alice.exportAccountKey()), signer.publicKey);
    // Changing the returned public key does not change the client's.
    signer.publicKey.fill(0);
    assert.deepEqual(bob.relationship(conv.id).peerIdentityKey, alice.relationshipSigner(conv.id).publicKey);

    assert.throws(() => signer.sign('text' as unknown as Uint8Array), (e: unknown) => e instanceof ClientError && e.code === 'invalid-argument');
    assert.throws(() => alice.relationshipSigner(unknownId), (e: unknown) => e instanceof ClientError && e.code === 'unknown-conversation');
    assert.throws(() => alice.relationship(unknownId), (e: unknown) => e instanceof ClientError && e.code === 'unknown-conversation');
    assert.throws(() => alice.relationshipSigner('not hex'), (e: unknown) => e instanceof ClientError && e.code === 'invalid-argument');

    await alice.close();
    assert.throws(() => signer.sign(message), (e: unknown) => e instanceof ClientError && e.code === 'client-closed');
  });
});

describe('client ports: the directory works through them alone', () => {
  const tmp = tempDir('umbra-ports-');
  let issuer: IssuerService;
  let dir: DirectoryService;
  const net = new MemoryNetwork();
  const cleanups: (() => Promise<void> | void)[] = [];

  before(async () => {
    issuer = await startIssuer({ db: join(tmp.dir, 'issuer.db'), quota: { ssa: 10_000 } });
    dir = await startDirectory({ db: join(tmp.dir, 'dir.db'), namespace: 'club.test', issuerName: issuer.issuerName, tokenKeys: [issuer.tokenKeys.ssa], adminSecret: 'directory-admin-secret-0123456789' });
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c();
    await dir.close();
    await issuer.close();
    tmp.cleanup();
  });

  async function person(name: string) {
    const client = await openMemoryClient(net.adapter(), name);
    const directory = await DirectoryClient.open({ client: withoutEngine(client), url: dir.url, issuer: issuer.url });
    cleanups.push(async () => {
      directory.close();
      await client.close();
    });
    return { client, directory };
  }

  it('a contact by name is a request, and the link proof verifies, with the engine out of reach', async () => {
    const nia = await person('Nia');
    const oto = await person('Oto');
    await nia.directory.register('nia', { packages: 1 });
    const requests: string[] = [];
    nia.directory.on('request', (r) => requests.push(r.viaName));
    const conv = await oto.directory.contact('nia');
    await oto.client.send(conv.id, 'hi');
    await waitFor(() => requests.length === 1, 10_000, 'the request through the directory');
    assert.deepEqual(requests, ['nia']);
    assert.equal(nia.directory.conversationStatus(conv.id)?.role, 'owner');

    const proof = nia.directory.linkProof(conv.id, 'nia');
    assert.equal(await oto.directory.verifyLink(conv.id, 'nia', proof), true);
    assert.throws(() => nia.directory.linkProof(unknownId, 'nia'), /unknown conversation/);
    assert.equal(await oto.directory.verifyLink(unknownId, 'nia', proof), false);
  });
});
