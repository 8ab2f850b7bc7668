import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { publicVerif, Token, TOKEN_TYPES } from '@cloudflare/privacypass-ts';
import { blindSign, generateIssuerKey, parseIssuerPublicKey, tokenChallenge, TokenMinter, TokenVerifier, TOKEN_LENGTH, authorizationHeader } from '../src/tokens.ts';

const key = generateIssuerKey();
const verifier = new TokenVerifier('issuer.test', 'ssa.test', [{ tokenKey: key.tokenKey }]);

function mint(origin = verifier.challenge): Uint8Array {
  const p = new TokenMinter(parseIssuerPublicKey(key.tokenKey), origin).begin();
  const r = blindSign(key, p.request);
  assert.equal(r.kind, 'ok');
  return p.finalize((r as { response: Uint8Array }).response);
}

describe('Privacy Pass type 0x0002 with a node:crypto issuer', () => {
  it('mints tokens that our verifier and privacypass-ts accept', async () => {
    const token = mint();
    assert.equal(token.length, TOKEN_LENGTH);
    const check = verifier.verifyHeader(authorizationHeader(token));
    assert.equal(check.kind, 'ok');
    const origin = new publicVerif.Origin(publicVerif.BlindRSAMode.PSS, ['ssa.test']);
    const pk = await crypto.subtle.importKey('spki', key.publicKey.export({ format: 'der', type: 'spki' }), { name: 'RSA-PSS', hash: 'SHA-384' }, true, ['verify']);
    assert.ok(await origin.verify(Token.deserialize(TOKEN_TYPES.BLIND_RSA, token), pk));
  });

  it('signs requests made by privacypass-ts clients (RFC 9474 blind signing via raw RSA)', async () => {
    const client = new publicVerif.Client(publicVerif.BlindRSAMode.PSS);
    const req = await client.createTokenRequest(tokenChallenge('issuer.test', 'ssa.test'), key.tokenKey);
    const r = blindSign(key, req.serialize());
    assert.equal(r.kind, 'ok');
    const token = await client.finalize(new publicVerif.TokenResponse((r as { response: Uint8Array }).response));
    assert.equal(verifier.verifyToken(token.serialize()).kind, 'ok');
  });

  it('gives one spent-nonce key per token', () => {
    const a = verifier.verifyToken(mint());
    const b = verifier.verifyToken(mint());
    assert.ok(a.kind === 'ok' && b.kind === 'ok');
    assert.notDeepEqual(a.spentKey, b.spentKey);
  });

  it('refuses missing, malformed, forged, other-origin and other-issuer tokens', () => {
    assert.equal(verifier.verifyHeader(undefined).kind, 'missing');
    assert.equal(verifier.verifyHeader('Bearer x').kind, 'malformed');
    assert.equal(verifier.verifyHeader('PrivateToken token=AAAA').kind, 'malformed');
    const forged = mint();
    forged[200]! ^= 1;
    assert.equal(verifier.verifyToken(forged).kind, 'invalid');
    const nonceSwapped = mint();
    nonceSwapped[5]! ^= 1;
    assert.equal(verifier.verifyToken(nonceSwapped).kind, 'invalid');
    assert.equal(verifier.verifyToken(mint(tokenChallenge('issuer.test', 'rsa.test'))).kind, 'invalid');
    const otherKey = generateIssuerKey();
    const other = new TokenVerifier('issuer.test', 'ssa.test', [{ tokenKey: otherKey.tokenKey }]);
    assert.equal(other.verifyToken(mint()).kind, 'invalid');
  });

  it('refuses malformed token requests at the issuer', () => {
    assert.equal(blindSign(key, new Uint8Array(10)).kind, 'bad-request');
    const p = new TokenMinter(parseIssuerPublicKey(key.tokenKey), verifier.challenge).begin();
    const wrongKeyId = new Uint8Array(p.request);
    wrongKeyId[2]! ^= 1;
    assert.equal(blindSign(key, wrongKeyId).kind, 'bad-request');
    const tooBig = new Uint8Array(p.request);
    tooBig.fill(0xff, 3);
    assert.equal(blindSign(key, tooBig).kind, 'bad-request');
  });
});
