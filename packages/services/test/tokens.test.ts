import assert from 'node:assert/strict';
import nodeCrypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { AuthorizationHeader, publicVerif, Token, TOKEN_TYPES, WWWAuthenticateHeader, type TokenChallenge } from '@cloudflare/privacypass-ts';
import { b64u } from '../src/bytes.ts';
import { startIssuer, type IssuerService } from '../src/issuer.ts';
import { startPostgres, type PrivatePostgres } from './pg.ts';
import { parseIssuerPublicKey, TokenMinter } from '@umbra/client/http';
import {
  authorizationHeader,
  b64uPadded,
  blindSign,
  fromB64uPadded,
  generateIssuerKey,
  MAX_AUTHORIZATION_LENGTH,
  parseAuthorization,
  parseTokenRequest,
  tokenChallenge,
  TokenVerifier,
  TOKEN_LENGTH,
  truncatedTokenKeyId,
  wwwAuthenticate,
  type IssuerKey,
} from '../src/tokens.ts';

const key = generateIssuerKey();
const keys = new Map([[truncatedTokenKeyId(key), key]]);
/** truncated_token_key_id of a published token key (the last byte of its SHA-256). */
const keyIdOf = (tokenKey: Uint8Array): number => truncatedTokenKeyId({ tokenKeyId: new Uint8Array(nodeCrypto.createHash('sha256').update(tokenKey).digest()) });
const verifier = new TokenVerifier('issuer.test', 'ssa.test', [{ tokenKey: key.tokenKey }]);

function sign(request: Uint8Array, withKeys: ReadonlyMap<number, IssuerKey> = keys): Uint8Array {
  const parsed = parseTokenRequest(request, withKeys);
  assert.equal(parsed.kind, 'ok');
  const ok = parsed as { key: IssuerKey; blindedMsg: Uint8Array };
  return blindSign(ok.key, ok.blindedMsg);
}

/** A token from the SDK's minter (`@umbra/client/http`), signed by this issuer key in-process. */
async function mint(origin: TokenChallenge = verifier.challenge): Promise<Uint8Array> {
  const p = new TokenMinter(await parseIssuerPublicKey(key.tokenKey), origin.serialize()).begin();
  return p.finalize(sign(p.request));
}

/**
 * Counts RSA private operations (BlindSign is `privateDecrypt` with RSA_NO_PADDING) while `fn`
 * runs: the issuer's signing work, measured without timing.
 */
async function countSignatures<T>(fn: () => Promise<T>): Promise<{ result: T; signatures: number }> {
  const original = nodeCrypto.privateDecrypt;
  let signatures = 0;
  nodeCrypto.privateDecrypt = ((...args: Parameters<typeof original>) => {
    signatures++;
    return original(...args);
  }) as typeof original;
  syncBuiltinESMExports();
  try {
    return { result: await fn(), signatures };
  } finally {
    nodeCrypto.privateDecrypt = original;
    syncBuiltinESMExports();
  }
}

describe('Privacy Pass type 0x0002 with a node:crypto issuer', () => {
  it('mints tokens that our verifier and privacypass-ts accept', async () => {
    const token = await mint();
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
    const token = await client.finalize(new publicVerif.TokenResponse(sign(req.serialize())));
    assert.equal(verifier.verifyToken(token.serialize()).kind, 'ok');
  });

  it('gives one spent-nonce key per token', async () => {
    const a = verifier.verifyToken(await mint());
    const b = verifier.verifyToken(await mint());
    assert.ok(a.kind === 'ok' && b.kind === 'ok');
    assert.notDeepEqual(a.spentKey, b.spentKey);
  });

  it('refuses missing, malformed, forged, other-origin and other-issuer tokens', async () => {
    assert.equal(verifier.verifyHeader(undefined).kind, 'missing');
    assert.equal(verifier.verifyHeader('Bearer x').kind, 'malformed');
    assert.equal(verifier.verifyHeader('PrivateToken token=AAAA').kind, 'malformed');
    const forged = await mint();
    forged[200]! ^= 1;
    assert.equal(verifier.verifyToken(forged).kind, 'invalid');
    const nonceSwapped = await mint();
    nonceSwapped[5]! ^= 1;
    assert.equal(verifier.verifyToken(nonceSwapped).kind, 'invalid');
    assert.equal(verifier.verifyToken(await mint(tokenChallenge('issuer.test', 'rsa.test'))).kind, 'invalid');
    const otherKey = generateIssuerKey();
    const other = new TokenVerifier('issuer.test', 'ssa.test', [{ tokenKey: otherKey.tokenKey }]);
    assert.equal(other.verifyToken(await mint()).kind, 'invalid');
  });

  it('refuses malformed token requests with the RFC 9578 §6.2 conditions', async () => {
    const p = new TokenMinter(await parseIssuerPublicKey(key.tokenKey), verifier.challengeBytes).begin();
    const reasons = (r: Uint8Array) => parseTokenRequest(r, keys).kind;
    assert.equal(reasons(new Uint8Array(0)), 'unprocessable');
    assert.equal(reasons(new Uint8Array(10)), 'unprocessable');
    assert.equal(reasons(p.request.subarray(0, p.request.length - 1)), 'unprocessable');
    const wrongType = new Uint8Array(p.request);
    wrongType[1] = 0x01;
    assert.equal(reasons(wrongType), 'unprocessable');
    const wrongKeyId = new Uint8Array(p.request);
    wrongKeyId[2]! ^= 1;
    assert.equal(reasons(wrongKeyId), 'unprocessable');
    const tooBig = new Uint8Array(p.request);
    tooBig.fill(0xff, 3);
    assert.equal(reasons(tooBig), 'unprocessable');
    const modulus = new Uint8Array(p.request);
    modulus.set(key.modulus, 3);
    assert.equal(reasons(modulus), 'unprocessable', 'blinded_msg = n is out of range');
    assert.equal(reasons(p.request), 'ok');
  });
});

describe('RFC 9577 header encoding', () => {
  it('pads base64url and decodes padded (and, for older clients, unpadded) canonical text only', () => {
    for (let n = 0; n < 12; n++) {
      const bytes = new Uint8Array(nodeCrypto.randomBytes(n));
      const text = b64uPadded(bytes);
      assert.equal(text.length % 4, 0);
      assert.equal(text, Buffer.from(bytes).toString('base64').replaceAll('+', '-').replaceAll('/', '_'));
      assert.deepEqual(fromB64uPadded(text), bytes);
      assert.deepEqual(fromB64uPadded(b64u(bytes)), bytes);
    }
    for (const bad of ['AA=', 'AAA==', 'A===', 'AA===', 'AB==', '=', 'AA=A', 'AA+A', 'AAAA=']) assert.equal(fromB64uPadded(bad), null, bad);
  });

  it('writes challenges privacypass-ts parses, with padding', () => {
    const header = wwwAuthenticate(verifier.challengeBytes, key.tokenKey);
    assert.equal(header, verifier.wwwAuthenticate());
    assert.match(header, /^PrivateToken challenge="[A-Za-z0-9_-]+=*", token-key="[A-Za-z0-9_-]+=*"$/);
    const [parsed] = WWWAuthenticateHeader.parse(header);
    assert.ok(parsed);
    assert.deepEqual(parsed.challenge.serialize(), verifier.challengeBytes);
    assert.deepEqual(parsed.tokenKey, key.tokenKey);
    // The challenge here is 2+2+11+1+2+8 = 26 bytes: one '=' of padding (the 294-byte key needs none).
    assert.ok(header.includes('=", token-key='));
    const keyText = /token-key="([^"]*)"/.exec(header)![1]!;
    assert.equal(keyText.length % 4, 0);
    assert.match(wwwAuthenticate(verifier.challengeBytes, key.tokenKey, 300), /, max-age=300$/);
  });

  it('reads RFC 9110 credentials: token or quoted-string, any case of the scheme, unknown parameters ignored', async () => {
    const token = await mint();
    const padded = b64uPadded(token);
    const ppts = new AuthorizationHeader(Token.deserialize(TOKEN_TYPES.BLIND_RSA, token));
    for (const h of [
      authorizationHeader(token),
      ppts.toString(),
      ppts.toString(true),
      `privatetoken token="${padded}"`,
      `PrivateToken   TOKEN = "${padded}" , extensions="AAA="`,
      `PrivateToken foo=bar, token=${padded}`,
      `PrivateToken token="${b64u(token)}"`,
    ])
      assert.equal(verifier.verifyHeader(h).kind, 'ok', h);
    for (const h of [
      'PrivateToken',
      'PrivateToken ',
      `PrivateToken token="${padded}`,
      `PrivateToken token="${padded}" token="${padded}"`,
      `PrivateToken token="${padded}", token="${padded}"`,
      `PrivateToken token="${padded}",`,
      `PrivateToken extensions="AAA="`,
      `Bearer token="${padded}"`,
      `PrivateToken token="${padded}", x="${'a'.repeat(MAX_AUTHORIZATION_LENGTH)}"`,
    ])
      assert.equal(verifier.verifyHeader(h).kind, 'malformed', h);
    assert.deepEqual(parseAuthorization('PrivateToken a="x\\"y", b=z'), new Map([['a', 'x"y'], ['b', 'z']]));
  });
});

for (const backend of ['sqlite', 'pg'] as const) {
  describe(`issuer over HTTP on ${backend} (RFC 9578 §6.2 statuses, quota before signing)`, { timeout: 120_000 }, () => {
    let dir: string;
    let pg: PrivatePostgres | undefined;
    let issuer: IssuerService;
    let ssaMinter: TokenMinter;
    let rsaMinter: TokenMinter;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'umbra-issuer-'));
      if (backend === 'pg') pg = await startPostgres();
      issuer = await startIssuer({ db: pg ? await pg.createDb() : join(dir, 'issuer.db'), quota: { ssa: 100, rsa: 5 } });
      ssaMinter = new TokenMinter(await parseIssuerPublicKey(issuer.tokenKeys.ssa), tokenChallenge(issuer.issuerName, 'ssa.test').serialize());
      rsaMinter = new TokenMinter(await parseIssuerPublicKey(issuer.tokenKeys.rsa), tokenChallenge(issuer.issuerName, 'rsa.test').serialize());
    });

    after(async () => {
      await issuer?.close();
      await pg?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    async function account(): Promise<string> {
      return ((await (await fetch(`${issuer.url}/v1/accounts`, { method: 'POST' })).json()) as { secret: string }).secret;
    }

    function single(secret: string, body: Uint8Array, contentType = 'application/private-token-request'): Promise<Response> {
      return fetch(`${issuer.url}/v1/token-request`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': contentType }, body: Buffer.from(body) });
    }

    function batch(secret: string, requests: unknown): Promise<Response> {
      return fetch(`${issuer.url}/v1/token-request/batch`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ requests }),
      });
    }

    async function used(secret: string): Promise<Record<string, number>> {
      const q = (await (await fetch(`${issuer.url}/v1/quota`, { headers: { authorization: `Bearer ${secret}` } })).json()) as Record<string, { used: number }>;
      return Object.fromEntries(Object.entries(q).map(([k, v]) => [k, v.used]));
    }

    it('keeps the truncated key ids of its classes distinct', () => {
      assert.notEqual(issuer.tokenKeys.ssa.length, 0);
      assert.notEqual(keyIdOf(issuer.tokenKeys.ssa), keyIdOf(issuer.tokenKeys.rsa));
    });

    it('answers a good request with application/private-token-response, charged to the class its key id names', async () => {
      const secret = await account();
      const p = rsaMinter.begin();
      const res = await single(secret, p.request);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/private-token-response');
      await p.finalize(new Uint8Array(await res.arrayBuffer()));
      assert.deepEqual(await used(secret), { ssa: 0, rsa: 1 });
      // A `class` query from older clients changes nothing: the key id decides.
      const q = ssaMinter.begin();
      const viaQuery = await fetch(`${issuer.url}/v1/token-request?class=rsa`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/private-token-request' },
        body: Buffer.from(q.request),
      });
      assert.equal(viaQuery.status, 200);
      await q.finalize(new Uint8Array(await viaQuery.arrayBuffer()));
      assert.deepEqual(await used(secret), { ssa: 1, rsa: 1 });
    });

    it('answers 422 to token requests RFC 9578 §6.2 calls malformed, signing nothing and charging nothing', async () => {
      const secret = await account();
      const good = ssaMinter.begin().request;
      const wrongType = new Uint8Array(good);
      wrongType[1] = 0x01;
      const unknownKey = new Uint8Array(good);
      unknownKey[2] = (keyIdOf(issuer.tokenKeys.ssa) ^ 0x80) & 0xff;
      if (unknownKey[2] === keyIdOf(issuer.tokenKeys.rsa)) unknownKey[2] ^= 0x01;
      const outOfRange = new Uint8Array(good);
      outOfRange.fill(0xff, 3);
      const { result, signatures } = await countSignatures(async () => {
        const statuses: number[] = [];
        for (const body of [new Uint8Array(0), good.subarray(0, 100), new Uint8Array([...good, 0]), wrongType, unknownKey, outOfRange]) {
          const res = await single(secret, body);
          assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
          statuses.push(res.status);
        }
        return statuses;
      });
      assert.deepEqual(result, [422, 422, 422, 422, 422, 422]);
      assert.equal(signatures, 0);
      assert.deepEqual(await used(secret), { ssa: 0, rsa: 0 });

      assert.equal((await single(secret, good, 'application/octet-stream')).status, 415);
      assert.equal((await single('x'.repeat(30), good)).status, 401);

      // The batch form: items checked the same way (422), the JSON shape is a 400.
      assert.equal((await batch(secret, [b64u(good), b64u(wrongType)])).status, 422);
      assert.equal((await batch(secret, [b64u(good), b64u(rsaMinter.begin().request)])).status, 422, 'one key per batch');
      assert.equal((await batch(secret, [b64u(good), 'not base64url!'])).status, 400);
      assert.equal((await batch(secret, 'x')).status, 400);
      assert.equal((await batch(secret, [])).status, 400);
      assert.equal((await batch(secret, Array.from({ length: 101 }, () => b64u(good)))).status, 400);
      assert.deepEqual(await used(secret), { ssa: 0, rsa: 0 });
    });

    it('refuses an over-quota batch before signing anything (issue 14 row 5)', async () => {
      const secret = await account();
      const ssaBatch = (n: number) => Array.from({ length: n }, () => b64u(ssaMinter.begin().request));
      assert.equal((await single(secret, ssaMinter.begin().request)).status, 200); // 1 of the 100 ssa tokens used
      const over = await countSignatures(() => batch(secret, ssaBatch(100)));
      assert.equal(over.result.status, 429);
      assert.equal(over.signatures, 0, 'an over-quota batch costs no RSA operation');
      assert.deepEqual(await used(secret), { ssa: 1, rsa: 0 });

      const within = await countSignatures(() => batch(secret, ssaBatch(99)));
      assert.equal(within.result.status, 200);
      assert.equal(within.signatures, 99);
      const one = await countSignatures(() => single(secret, ssaMinter.begin().request));
      assert.equal(one.result.status, 429);
      assert.equal(one.signatures, 0);

      // The rsa class has its own quota (5), charged by the rsa key's id.
      const rsaOver = await countSignatures(() => batch(secret, Array.from({ length: 6 }, () => b64u(rsaMinter.begin().request))));
      assert.equal(rsaOver.result.status, 429);
      assert.equal(rsaOver.signatures, 0);
      assert.deepEqual(await used(secret), { ssa: 100, rsa: 0 });
    });

    it('lets only one of two concurrent batches through when the quota covers one', async () => {
      const secret = await account();
      const make = () => Array.from({ length: 60 }, () => b64u(ssaMinter.begin().request)); // ssa quota is 100
      const [a, b] = [make(), make()];
      const { result, signatures } = await countSignatures(() => Promise.all([batch(secret, a), batch(secret, b)]));
      assert.deepEqual(result.map((r) => r.status).sort(), [200, 429]);
      assert.equal(signatures, 60);
      assert.deepEqual(await used(secret), { ssa: 60, rsa: 0 });
    });
  });
}

describe('issuer keys with colliding truncated key ids', { timeout: 120_000 }, () => {
  it('supersedes a stored key whose truncated id an earlier class already uses, the same way on every start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'umbra-issuer-keys-'));
    const db = join(dir, 'issuer.db');
    try {
      const first = await startIssuer({ db });
      const ssaKey = first.tokenKeys.ssa;
      await first.close();
      // A database from before key selection by id whose rsa key collides: here the same key.
      const raw = new Database(db);
      raw.prepare("UPDATE meta SET v = (SELECT v FROM meta WHERE k = 'token_key:ssa') WHERE k = 'token_key:rsa'").run();
      raw.close();

      const second = await startIssuer({ db });
      const rsaKey = second.tokenKeys.rsa;
      assert.deepEqual(second.tokenKeys.ssa, ssaKey);
      assert.notDeepEqual(rsaKey, ssaKey);
      assert.notEqual(keyIdOf(rsaKey), keyIdOf(ssaKey));
      await second.close();

      const third = await startIssuer({ db });
      assert.deepEqual(third.tokenKeys.rsa, rsaKey, 'the superseding key is stored, not drawn again');
      await third.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
