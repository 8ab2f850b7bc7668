/**
 * Issuer (Auth Service): Privacy Pass type 0x0002 tokens under a per-account daily quota.
 * One issuer key per origin class ("ssa", "rsa"): the issuer learns the class of a token but
 * never the origin or the redemption (the challenge reaches it only hashed inside the blinded
 * message). Accounts are deliberately simple (a bearer secret from POST /v1/accounts); a real
 * deployment puts its attester (payment, e-mail, OIDC) in front of that endpoint.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { b64u, fromB64u } from './bytes.ts';
import { bodyObject, createApp, HttpProblem, listen, problem, rawBody, seconds, signDescriptor, systemClock, type Clock } from './common.ts';
import { openDriver } from './db.ts';
import { ed25519FromSeed, type Ed25519Key } from './httpsig.ts';
import { SqlIssuerStore, type IssuerStore } from './store.ts';
import { blindSign, generateIssuerKey, issuerKeyFromPkcs8, issuerKeyToPkcs8, type IssuerKey } from './tokens.ts';

export const TOKEN_CLASSES = ['ssa', 'rsa'] as const;
export type TokenClass = (typeof TOKEN_CLASSES)[number];

export interface IssuerOptions {
  /** SQLite file path or postgres:// URL. */
  db: string;
  host?: string;
  port?: number;
  /** Issuer name written into token challenges; defaults to the listening host:port. */
  issuerName?: string;
  quota?: Partial<Record<TokenClass, number>>;
  openRegistration?: boolean;
  clock?: Clock;
}

export interface IssuerService {
  url: string;
  issuerName: string;
  tokenKeys: Record<TokenClass, Uint8Array>;
  serviceKey: Uint8Array;
  app: FastifyInstance;
  store: IssuerStore;
  close(): Promise<void>;
}

export const DEFAULT_QUOTA: Record<TokenClass, number> = { ssa: 2000, rsa: 50 };
const MAX_BATCH = 100;

function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

function isClass(c: unknown): c is TokenClass {
  return typeof c === 'string' && (TOKEN_CLASSES as readonly string[]).includes(c);
}

export async function startIssuer(opts: IssuerOptions): Promise<IssuerService> {
  const clock = opts.clock ?? systemClock;
  const quota = { ...DEFAULT_QUOTA, ...opts.quota };
  const store = new SqlIssuerStore(openDriver(opts.db));
  await store.init();
  const serviceKey: Ed25519Key = ed25519FromSeed(await store.initMeta('service_key', new Uint8Array(randomBytes(32))));
  const keys = {} as Record<TokenClass, IssuerKey>;
  for (const cls of TOKEN_CLASSES) keys[cls] = issuerKeyFromPkcs8(await store.initMeta(`token_key:${cls}`, issuerKeyToPkcs8(generateIssuerKey())));

  const app = createApp(64 * 1024);
  let issuerName = opts.issuerName ?? '';

  async function account(req: FastifyRequest): Promise<string> {
    const h = req.headers.authorization;
    const m = h ? /^Bearer\s+([A-Za-z0-9_-]{20,100})$/.exec(h) : null;
    if (!m) throw new HttpProblem(401, 'Account required', 'send Authorization: Bearer <account secret>');
    const id = await store.accountBySecret(sha256(new TextEncoder().encode(m[1]!)));
    if (!id) throw new HttpProblem(401, 'Unknown account');
    return id;
  }

  function dayOf(now: number): number {
    return Math.floor(now / 86_400_000);
  }

  function classOf(req: FastifyRequest): TokenClass {
    const cls = (req.query as Record<string, unknown>).class ?? 'ssa';
    if (!isClass(cls)) throw new HttpProblem(400, 'Unknown token class', `class must be one of ${TOKEN_CLASSES.join(', ')}`);
    return cls;
  }

  app.get('/.well-known/private-token-issuer-directory', async (_req, reply) => {
    reply.header('cache-control', 'max-age=300');
    return {
      'issuer-request-uri': '/v1/token-request',
      'token-keys': TOKEN_CLASSES.map((cls) => ({ 'token-type': 2, 'token-key': b64u(keys[cls].tokenKey), 'umbra-class': cls })),
    };
  });

  app.get('/.well-known/communicator.json', async () =>
    signDescriptor(serviceKey, {
      v: 1,
      roles: ['issuer'],
      service_key: b64u(serviceKey.publicKey),
      issuer_name: issuerName,
      token_keys: Object.fromEntries(TOKEN_CLASSES.map((c) => [c, b64u(keys[c].tokenKey)])),
      limits: { quota_per_day: quota, max_batch: MAX_BATCH },
      issued_at: seconds(clock.now()),
      expires: seconds(clock.now()) + 3600,
    }),
  );

  app.post('/v1/accounts', async (_req, reply) => {
    if (opts.openRegistration === false) return problem(reply, 403, 'Registration closed');
    const secret = b64u(new Uint8Array(randomBytes(32)));
    const id = b64u(new Uint8Array(randomBytes(16)));
    await store.createAccount(id, sha256(new TextEncoder().encode(secret)), clock.now());
    return reply.code(201).send({ account: id, secret });
  });

  app.get('/v1/quota', async (req) => {
    const id = await account(req);
    const day = dayOf(clock.now());
    const out: Record<string, { used: number; limit: number }> = {};
    for (const cls of TOKEN_CLASSES) out[cls] = { used: await store.quotaUsed(id, cls, day), limit: quota[cls] };
    return out;
  });

  app.post('/v1/token-request', async (req, reply) => {
    const id = await account(req);
    const cls = classOf(req);
    if (req.headers['content-type'] !== 'application/private-token-request')
      return problem(reply, 415, 'Unsupported media type', 'send application/private-token-request');
    const r = blindSign(keys[cls], rawBody(req));
    if (r.kind !== 'ok') return problem(reply, 400, 'Malformed token request', r.reason);
    if (!(await store.consumeQuota(id, cls, dayOf(clock.now()), 1, quota[cls])))
      return problem(reply, 429, 'Quota exhausted', `the account's daily quota of ${quota[cls]} ${cls} tokens is used up`);
    return reply.type('application/private-token-response').send(Buffer.from(r.response));
  });

  app.post('/v1/token-request/batch', async (req, reply) => {
    const id = await account(req);
    const body = bodyObject(req.body);
    const cls = body.class ?? 'ssa';
    if (!isClass(cls)) return problem(reply, 400, 'Unknown token class');
    const list = body.requests;
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_BATCH)
      return problem(reply, 400, 'Malformed batch', `requests must be an array of 1..${MAX_BATCH} base64url token requests`);
    const reqs = list.map((x) => fromB64u(x));
    if (reqs.some((x) => x === null)) return problem(reply, 400, 'Malformed batch', 'requests must be base64url');
    const responses: string[] = [];
    for (const r of reqs) {
      const s = blindSign(keys[cls], r!);
      if (s.kind !== 'ok') return problem(reply, 400, 'Malformed token request', s.reason);
      responses.push(b64u(s.response));
    }
    // Signatures are released only after the quota is charged.
    if (!(await store.consumeQuota(id, cls, dayOf(clock.now()), reqs.length, quota[cls])))
      return problem(reply, 429, 'Quota exhausted', `the account's daily quota of ${quota[cls]} ${cls} tokens does not cover ${reqs.length} more`);
    return { responses };
  });

  const url = await listen(app, opts.host ?? '127.0.0.1', opts.port ?? 0);
  if (!issuerName) issuerName = new URL(url).host;
  return {
    url,
    issuerName,
    tokenKeys: Object.fromEntries(TOKEN_CLASSES.map((c) => [c, keys[c].tokenKey])) as Record<TokenClass, Uint8Array>,
    serviceKey: serviceKey.publicKey,
    app,
    store,
    async close() {
      await app.close();
      await store.close();
    },
  };
}
