/** The services' wire contract (@umbra/protocol/services): fixed layouts and strings. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toHex, utf8 } from '../src/bytes.ts';
import {
  authorizationHeader,
  contentDigest,
  descriptorSigningBytes,
  lp,
  signatureBase,
  signatureParams,
  splitPathAndQuery,
  tokenChallengeBytes,
  wsAuthMessage,
} from '../src/services/index.ts';

describe('services contract', () => {
  it('LP and the signed byte layouts', () => {
    assert.equal(toHex(lp(utf8('ab'))), '00026162');
    assert.throws(() => lp(new Uint8Array(0x10000)), RangeError);
    assert.equal(toHex(descriptorSigningBytes(utf8('{}'))), '0013' + toHex(utf8('umbra/v1/descriptor')) + '7b7d');
    const m = wsAuthMessage(new Uint8Array([1, 2]), new Uint8Array([3]), 0x0102030405);
    assert.equal(toHex(m), '000f' + toHex(utf8('umbra/v1/rsa-ws')) + '0102' + '03' + '0000000102030405');
  });

  it('the RFC 9421 signature base of the profile', () => {
    const params = signatureParams(1700000000, 'AAAAAAAAAAAAAAAAAAAAAA', 'k');
    assert.equal(params, '("@method" "@path" "@query" "content-digest");created=1700000000;nonce="AAAAAAAAAAAAAAAAAAAAAA";keyid="k";alg="ed25519"');
    assert.deepEqual(splitPathAndQuery('/v1/x?after=3&limit=1'), { path: '/v1/x', query: '?after=3&limit=1' });
    assert.deepEqual(splitPathAndQuery('/v1/x'), { path: '/v1/x', query: '' });
    assert.equal(
      signatureBase('post', '/v1/deliver', '', contentDigest(new Uint8Array(0)), params),
      [
        '"@method": POST',
        '"@path": /v1/deliver',
        '"@query": ?',
        // SHA-256 of the empty string.
        '"content-digest": sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:',
        `"@signature-params": ${params}`,
      ].join('\n'),
    );
  });

  it('TokenChallenge and Authorization (RFC 9577)', () => {
    assert.equal(toHex(tokenChallengeBytes('i', 'o')), '0002' + '000169' + '00' + '00016f');
    assert.equal(authorizationHeader(new Uint8Array([0xfb, 0xff])), 'PrivateToken token="-_8="');
  });
});
