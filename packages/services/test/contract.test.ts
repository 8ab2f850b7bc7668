/**
 * The shared wire contract (@umbra/protocol/services) and the SDK's platform-neutral clients
 * (@umbra/client/http) agree byte for byte with what the servers check: TokenChallenge bytes
 * (against @cloudflare/privacypass-ts), Content-Digest (against node:crypto), request
 * signatures, descriptors, and the client's blind-RSA minter against the issuer's BlindSign
 * and an origin's TokenVerifier.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ed25519FromSeed as clientEd25519FromSeed, parseIssuerPublicKey, signRequest as clientSignRequest, TokenMinter, verifyDescriptor, DescriptorError } from '@umbra/client/http';
import { nodeProvider } from '@umbra/crypto-node';
import { authorizationHeader as contractAuthorizationHeader, contentDigest, tokenChallengeBytes } from '@umbra/protocol/services';
import { signDescriptor } from '../src/common.ts';
import { contentDigest as nodeContentDigest, ed25519FromSeed as serverEd25519FromSeed, generateEd25519, NonceCache, signRequest as serviceSignRequest, verifyRequest } from '../src/httpsig.ts';
import { authorizationHeader, blindSign, generateIssuerKey, parseTokenRequest, tokenChallenge, TokenVerifier, truncatedTokenKeyId } from '../src/tokens.ts';

describe('shared services contract', () => {
  it('TokenChallenge bytes equal privacypass-ts serialization', () => {
    for (const [issuer, origin] of [
      ['issuer.example', 'ssa.example'],
      ['i', ''],
      ['umbra-issuer.local:8443', 'rsa-1.umbra.local'],
    ] as const) {
      assert.deepEqual(tokenChallengeBytes(issuer, origin), new Uint8Array(tokenChallenge(issuer, origin).serialize()));
    }
  });

  it('Content-Digest equals the node:crypto one', () => {
    for (const n of [0, 1, 2, 3, 1000, 100_000]) {
      const body = new Uint8Array(randomBytes(n));
      assert.equal(contentDigest(body), nodeContentDigest(body));
      assert.equal(contentDigest(body), `sha-256=:${createHash('sha256').update(body).digest('base64')}:`);
    }
  });

  it('Authorization values are the same on both sides', () => {
    const token = new Uint8Array(randomBytes(354));
    assert.equal(contractAuthorizationHeader(token), authorizationHeader(token));
  });

  it("the client's request signatures (noble and node providers) verify at the server; tampering does not", async () => {
    const seed = new Uint8Array(randomBytes(32));
    const serverKey = serverEd25519FromSeed(seed);
    const nonces = new NonceCache(() => Date.now());
    const body = new TextEncoder().encode('{"mids":[]}');
    for (const provider of [undefined, nodeProvider]) {
      const key = clientEd25519FromSeed(seed, provider);
      assert.deepEqual(key.publicKey, serverKey.publicKey);
      const headers = clientSignRequest(key, 'inbox-1', 'POST', '/v1/inboxes/x/ack?after=3', body, provider);
      const lookup = (keyid: string) => (keyid === 'inbox-1' ? key.publicKey : null);
      const ok = await verifyRequest({ method: 'POST', url: '/v1/inboxes/x/ack?after=3', headers, body }, lookup, nonces, Date.now());
      assert.deepEqual(ok, { kind: 'ok', keyid: 'inbox-1' });
      const moved = await verifyRequest({ method: 'POST', url: '/v1/inboxes/x/ack?after=4', headers, body }, lookup, nonces, Date.now());
      assert.equal(moved.kind, 'refused');
    }
    // And the server's own signer produces what the shared base string describes (same verifier).
    const headers = serviceSignRequest(serverKey, 'inbox-2', 'GET', '/v1/inboxes/x/messages', new Uint8Array(0));
    const check = await verifyRequest({ method: 'GET', url: '/v1/inboxes/x/messages', headers, body: new Uint8Array(0) }, () => serverKey.publicKey, nonces, Date.now());
    assert.equal(check.kind, 'ok');
  });

  it("the client verifies the server's descriptors and refuses altered ones", () => {
    const key = generateEd25519();
    const signed = signDescriptor(key, { service_key: Buffer.from(key.publicKey).toString('base64url'), roles: ['ssa'] });
    assert.deepEqual(verifyDescriptor(signed).serviceKey, key.publicKey);
    assert.deepEqual(verifyDescriptor(signed, undefined, nodeProvider).body.roles, ['ssa']);
    const payload = Buffer.from(signed.payload, 'base64url');
    payload[payload.length - 3]! ^= 1;
    assert.throws(() => verifyDescriptor({ payload: payload.toString('base64url'), sig: signed.sig }), DescriptorError);
    assert.throws(() => verifyDescriptor(signed, generateEd25519().publicKey), /pinned/);
    assert.throws(() => verifyDescriptor({ payload: '!!', sig: signed.sig }), DescriptorError);
  });

  it("the client's minter makes requests the issuer signs and tokens an origin accepts", async () => {
    const issuerKey = generateIssuerKey();
    const verifier = new TokenVerifier('issuer.test', 'ssa.test', [issuerKey]);
    const minter = new TokenMinter(await parseIssuerPublicKey(issuerKey.tokenKey), tokenChallengeBytes('issuer.test', 'ssa.test'));
    const keys = new Map([[truncatedTokenKeyId(issuerKey), issuerKey]]);
    for (let i = 0; i < 3; i++) {
      const pending = minter.begin();
      const parsed = parseTokenRequest(pending.request, keys);
      assert.equal(parsed.kind, 'ok');
      if (parsed.kind !== 'ok') return;
      const token = await pending.finalize(blindSign(issuerKey, parsed.blindedMsg));
      assert.equal(verifier.verifyToken(token).kind, 'ok');
      assert.equal(verifier.verifyHeader(contractAuthorizationHeader(token)).kind, 'ok');
    }
    // A response that is not the issuer's signature is refused at Finalize.
    const pending = minter.begin();
    await assert.rejects(() => pending.finalize(new Uint8Array(randomBytes(256))), /does not verify/);
    // An origin other than the challenge's refuses the token.
    const other = new TokenVerifier('issuer.test', 'rsa.test', [issuerKey]);
    const p = minter.begin();
    const parsed = parseTokenRequest(p.request, keys);
    if (parsed.kind !== 'ok') return assert.fail('request refused');
    assert.equal(other.verifyToken(await p.finalize(blindSign(issuerKey, parsed.blindedMsg))).kind, 'invalid');
  });
});
