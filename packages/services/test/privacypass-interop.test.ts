/**
 * Privacy Pass interop (RFC 9577 / RFC 9578) with `@cloudflare/privacypass-ts` 0.8.1 as the only
 * client-side Privacy Pass code: it reads the issuer directory, parses the origins' 401
 * challenges, builds and sends the token request, finalizes, and writes the Authorization header.
 * Project code appears only on the fixture side (the services, and a receiver's address for the
 * submit body).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AuthorizationHeader,
  MediaType,
  PRIVATE_TOKEN_ISSUER_DIRECTORY,
  publicVerif,
  sendTokenRequest,
  TOKEN_TYPES,
  Token,
  util,
  WWWAuthenticateHeader,
} from '@cloudflare/privacypass-ts';
import { addressKeysOf, currentAddressKey, fetchDescriptor } from '@umbra/client/http';
import { deriveAddress, generateSeed, startIssuer, startRsa, startSsa, type IssuerService, type RsaService, type SsaService } from '../src/index.ts';
import { generateEd25519, keyidOf, signRequest } from '../src/httpsig.ts';

const PADDED_B64URL = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$/;

interface IssuerDirectory {
  'issuer-request-uri': string;
  'token-keys': { 'token-type': number; 'token-key': string; 'not-before'?: number }[];
}

describe('Privacy Pass with @cloudflare/privacypass-ts as the client', { timeout: 120_000 }, () => {
  let dir: string;
  let issuer: IssuerService;
  let rsa: RsaService;
  let ssa: SsaService;
  let secret: string;
  let directoryUrl: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'umbra-pp-interop-'));
    issuer = await startIssuer({ db: join(dir, 'issuer.db'), quota: { ssa: 100, rsa: 100 } });
    rsa = await startRsa({ db: join(dir, 'rsa.db'), issuerName: issuer.issuerName, tokenKeys: [issuer.tokenKeys.rsa] });
    ssa = await startSsa({ db: join(dir, 'ssa.db'), sealKey: new Uint8Array(randomBytes(32)), issuerName: issuer.issuerName, tokenKeys: [issuer.tokenKeys.ssa], allowLoopback: true });
    const account = await fetch(`${issuer.url}/v1/accounts`, { method: 'POST' });
    assert.equal(account.status, 201);
    secret = ((await account.json()) as { secret: string }).secret;
    directoryUrl = `${issuer.url}${PRIVATE_TOKEN_ISSUER_DIRECTORY}`;
  });

  async function issuerDirectory(): Promise<IssuerDirectory> {
    return (await (await fetch(directoryUrl)).json()) as IssuerDirectory;
  }

  after(async () => {
    await ssa?.close();
    await rsa?.close();
    await issuer?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A submit body the SSA accepts (an address of the RSA under a fresh seed). */
  async function submitBody(): Promise<string> {
    const key = currentAddressKey(addressKeysOf(await fetchDescriptor(rsa.url)), 'ephemeral');
    return JSON.stringify({
      rsa: rsa.url,
      addr: Buffer.from(deriveAddress(generateSeed(), key)).toString('base64url'),
      payload: Buffer.from('hello through privacypass-ts').toString('base64url'),
      ttl_s: 600,
      idem: randomBytes(16).toString('base64url'),
    });
  }

  function submit(authorization?: string): Promise<Response> {
    return submitBody().then((body) =>
      fetch(`${ssa.url}/v1/submit`, { method: 'POST', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body }),
    );
  }

  /** RFC 9578 issuance driven entirely by privacypass-ts, for the challenge in `wwwAuthenticate`. */
  async function fetchToken(wwwAuthenticate: string): Promise<Token> {
    const [challenge] = WWWAuthenticateHeader.parse(wwwAuthenticate);
    assert.ok(challenge, 'privacypass-ts finds a PrivateToken challenge');
    const client = new publicVerif.Client(publicVerif.BlindRSAMode.PSS);
    const request = await client.createTokenRequest(challenge.challenge, challenge.tokenKey);
    const requestUrl = new URL((await issuerDirectory())['issuer-request-uri'], directoryUrl).href;
    const response = await sendTokenRequest(request.serialize(), requestUrl, new Headers({ authorization: `Bearer ${secret}` }));
    return client.finalize(client.deserializeTokenResponse(response));
  }

  it('serves the issuer directory as RFC 9578 §4 says', async () => {
    const res = await fetch(directoryUrl);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), MediaType.PRIVATE_TOKEN_ISSUER_DIRECTORY);
    assert.match(res.headers.get('cache-control') ?? '', /max-age=\d+/);
    const directory = (await res.json()) as IssuerDirectory;
    assert.deepEqual(Object.keys(directory).sort(), ['issuer-request-uri', 'token-keys']);
    assert.equal(typeof directory['issuer-request-uri'], 'string');
    assert.equal(directory['token-keys'].length, 2);
    for (const k of directory['token-keys']) {
      assert.deepEqual(Object.keys(k).sort(), ['token-key', 'token-type']);
      assert.equal(k['token-type'], TOKEN_TYPES.BLIND_RSA.value);
      assert.match(k['token-key'], PADDED_B64URL, 'token-key is base64url with padding');
    }
    const published = directory['token-keys'].map((k) => Buffer.from(k['token-key'], 'base64url').toString('hex')).sort();
    assert.deepEqual(published, [issuer.tokenKeys.ssa, issuer.tokenKeys.rsa].map((k) => Buffer.from(k).toString('hex')).sort());
  });

  it('gets a token for the SSA challenge and spends it in an accepted submit', async () => {
    const refused = await submit();
    assert.equal(refused.status, 401);
    const header = refused.headers.get('www-authenticate') ?? '';
    const [challenge] = WWWAuthenticateHeader.parse(header);
    assert.ok(challenge);
    assert.equal(challenge.challenge.issuerName, issuer.issuerName);
    assert.deepEqual(challenge.challenge.originInfo, [ssa.originInfo]);
    assert.equal(Buffer.from(challenge.tokenKey).toString('base64url'), Buffer.from(issuer.tokenKeys.ssa).toString('base64url'));
    const paddedKey = Buffer.from(challenge.tokenKey).toString('base64').replaceAll('+', '-').replaceAll('/', '_');
    assert.ok((await issuerDirectory())['token-keys'].some((k) => k['token-key'] === paddedKey), 'the challenge names a key from the issuer directory');

    const token = await fetchToken(header);
    // privacypass-ts writes `PrivateToken token=<padded base64url>` (unquoted) by default.
    const accepted = await submit(new AuthorizationHeader(token).toString());
    assert.equal(accepted.status, 202, await accepted.clone().text());
    assert.equal(typeof ((await accepted.json()) as { sid: string }).sid, 'string');

    const replay = await submit(new AuthorizationHeader(token).toString(true));
    assert.equal(replay.status, 401, 'a spent token is refused');
    assert.equal(WWWAuthenticateHeader.parse(replay.headers.get('www-authenticate') ?? '').length, 1);

    // The quoted-string form (RFC 9110 auth-param) is accepted too.
    const second = await fetchToken(header);
    assert.equal((await submit(new AuthorizationHeader(second).toString(true))).status, 202);
  });

  it('selects the signing key by truncated_token_key_id (an RSA challenge is charged to the rsa quota)', async () => {
    // An unpaid delivery from a key the RSA does not trust: 401 with the RSA's challenge.
    const signer = generateEd25519();
    const body = new TextEncoder().encode('{}');
    const refused = await fetch(`${rsa.url}/v1/deliver`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signRequest(signer, keyidOf(signer.publicKey), 'POST', '/v1/deliver', body) },
      body: Buffer.from(body),
    });
    assert.equal(refused.status, 401);
    const header = refused.headers.get('www-authenticate') ?? '';
    const [challenge] = WWWAuthenticateHeader.parse(header);
    assert.ok(challenge);
    assert.deepEqual(challenge.challenge.originInfo, [rsa.originInfo]);

    const quota = async (): Promise<Record<string, { used: number }>> =>
      (await (await fetch(`${issuer.url}/v1/quota`, { headers: { authorization: `Bearer ${secret}` } })).json()) as Record<string, { used: number }>;
    const before = await quota();
    const token = await fetchToken(header);
    const after = await quota();
    assert.equal(after.rsa!.used, before.rsa!.used + 1);
    assert.equal(after.ssa!.used, before.ssa!.used);

    const origin = new publicVerif.Origin(publicVerif.BlindRSAMode.PSS, [rsa.originInfo]);
    const rsaKey = await crypto.subtle.importKey('spki', Buffer.from(util.convertRSASSAPSSToEnc(challenge.tokenKey)), TOKEN_TYPES.BLIND_RSA.rsaParams, true, ['verify']);
    assert.ok(await origin.verify(token, rsaKey), 'the token verifies under the RSA class key');
  });
});
