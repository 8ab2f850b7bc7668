/**
 * Issuer (Auth Service): Privacy Pass type 0x0002 tokens (RFC 9578 §6) under a per-account daily
 * quota. One issuer key per origin class ("ssa", "rsa"): a request names its key by
 * `truncated_token_key_id`, which also picks the quota it is charged to, so the issuer learns the
 * class of a token but never the origin or the redemption (the challenge reaches it only hashed
 * inside the blinded message). Accounts are deliberately simple (a bearer secret from
 * POST /v1/accounts); a real deployment puts its attester (payment, e-mail, OIDC) in front of
 * that endpoint.
 *
 * Every request is parsed and checked (cheap: no RSA operation) and its quota charged atomically
 * before anything is signed, so an over-quota or malformed request costs no signature.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { b64u } from './bytes.ts';
import { bodyObject, createApp, HttpProblem, listen, problem, rawBody, seconds, signDescriptor, systemClock, type Clock } from './common.ts';
import { openDriver } from './db.ts';
import type { Ed25519Key } from './httpsig.ts';
import { initSchema, loadServiceKey } from './shared-state.ts';
import { SqlIssuerStore, type IssuerStore } from './store.ts';
import {
  b64uPadded,
  blindSign,
  fromB64uPadded,
  generateIssuerKey,
  issuerKeyFromPkcs8,
  issuerKeyToPkcs8,
  MEDIA_TYPE,
  parseTokenRequest,
  TOKEN_TYPE_BLIND_RSA,
  truncatedTokenKeyId,
  type IssuerKey,
} from './tokens.ts';

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
  /**
   * 32-byte Ed25519 seed of this service's identity (a key file): every instance of the role
   * gets the same, so they sign as one service. Without it, the key in the database (first start).
   */
  serviceKey?: Uint8Array;
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
/** Cache lifetime of the issuer directory (RFC 9578 §4 asks for cache directives). */
const DIRECTORY_MAX_AGE_S = 300;
/** Stored key slots tried per class before giving up (each new slot holds a non-colliding key). */
const MAX_KEY_SLOTS = 8;

function sha256(b: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(b).digest());
}

interface ClassKey extends IssuerKey {
  cls: TokenClass;
}

/** The media type of a Content-Type value (parameters dropped, lowercased). */
function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

/**
 * Loads (or creates) one key per class. RFC 9578 §6.5 asks issuers to keep the truncated key ids
 * of keys in rotation distinct, since a request names its key only by that byte: a new key is
 * drawn again until its truncated id is unused. A stored key whose id collides with an earlier
 * class (1 in 256 for databases from before key selection by id) is superseded by a key in the
 * next slot (`token_key:<class>#1`, …), written first-writer-wins like the first, so every
 * instance sharing the database settles on the same keys.
 */
async function loadClassKeys(store: IssuerStore): Promise<Record<TokenClass, ClassKey>> {
  const keys = {} as Record<TokenClass, ClassKey>;
  const used = new Set<number>();
  const fresh = (): IssuerKey => {
    for (;;) {
      const k = generateIssuerKey();
      if (!used.has(truncatedTokenKeyId(k))) return k;
    }
  };
  for (const cls of TOKEN_CLASSES) {
    for (let slot = 0; !keys[cls]; slot++) {
      if (slot === MAX_KEY_SLOTS) throw new Error(`issuer: no ${cls} token key with a free truncated key id in ${MAX_KEY_SLOTS} slots`);
      const key = issuerKeyFromPkcs8(await store.initMeta(slot === 0 ? `token_key:${cls}` : `token_key:${cls}#${slot}`, issuerKeyToPkcs8(fresh())));
      if (used.has(truncatedTokenKeyId(key))) continue;
      used.add(truncatedTokenKeyId(key));
      keys[cls] = { ...key, cls };
    }
  }
  return keys;
}

export async function startIssuer(opts: IssuerOptions): Promise<IssuerService> {
  const clock = opts.clock ?? systemClock;
  const quota = { ...DEFAULT_QUOTA, ...opts.quota };
  const store = new SqlIssuerStore(openDriver(opts.db));
  await initSchema(() => store.init());
  const serviceKey: Ed25519Key = await loadServiceKey(store, opts.serviceKey);
  const keys = await loadClassKeys(store);
  const keysById = new Map<number, ClassKey>(TOKEN_CLASSES.map((cls) => [truncatedTokenKeyId(keys[cls]), keys[cls]]));

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

  /**
   * Charges `n` tokens of `key`'s class, then signs. The charge is one conditional UPDATE
   * (`used + n <= limit`), so concurrent requests cannot both pass; nothing is signed unless it
   * succeeded. A signing fault after the charge gives the tokens back.
   */
  async function chargeAndSign(account: string, key: ClassKey, blinded: Uint8Array[], reply: FastifyReply): Promise<Uint8Array[] | null> {
    const day = dayOf(clock.now());
    const limit = quota[key.cls];
    if (!(await store.consumeQuota(account, key.cls, day, blinded.length, limit))) {
      problem(reply, 429, 'Quota exhausted', `the account's daily quota of ${limit} ${key.cls} tokens does not cover ${blinded.length} more`);
      return null;
    }
    try {
      return blinded.map((m) => blindSign(key, m));
    } catch (err) {
      await store.consumeQuota(account, key.cls, day, -blinded.length, Number.MAX_SAFE_INTEGER);
      throw err;
    }
  }

  // RFC 9578 §4: the issuer directory, with the RFC's fields only (the class of each key is in
  // the signed communicator.json). The request URI is relative to the directory's URL.
  const directory = JSON.stringify({
    'issuer-request-uri': '/v1/token-request',
    'token-keys': TOKEN_CLASSES.map((cls) => ({ 'token-type': TOKEN_TYPE_BLIND_RSA, 'token-key': b64uPadded(keys[cls].tokenKey) })),
  });
  app.get('/.well-known/private-token-issuer-directory', async (_req, reply) =>
    reply.header('cache-control', `max-age=${DIRECTORY_MAX_AGE_S}`).type(MEDIA_TYPE.issuerDirectory).send(directory),
  );

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

  // RFC 9578 §6.2: one TokenRequest in, one TokenResponse out; the key (and so the class and
  // quota) is the one its truncated_token_key_id names. A `class` query from older clients is
  // ignored.
  app.post('/v1/token-request', async (req, reply) => {
    const id = await account(req);
    if (mediaTypeOf(req.headers['content-type']) !== MEDIA_TYPE.tokenRequest)
      return problem(reply, 415, 'Unsupported media type', `send ${MEDIA_TYPE.tokenRequest}`);
    const parsed = parseTokenRequest(rawBody(req), keysById);
    if (parsed.kind !== 'ok') return problem(reply, 422, 'Unprocessable token request', parsed.reason);
    const signed = await chargeAndSign(id, parsed.key, [parsed.blindedMsg], reply);
    if (!signed) return reply;
    return reply.type(MEDIA_TYPE.tokenResponse).send(Buffer.from(signed[0]!));
  });

  // Umbra's batch form: {requests: [base64url TokenRequest] (1..100)} → {responses: [base64url]},
  // every request for the same key. Each item is checked as §6.2 says (422), the whole batch is
  // charged at once, and only then signed.
  app.post('/v1/token-request/batch', async (req, reply) => {
    const id = await account(req);
    const list = bodyObject(req.body).requests;
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_BATCH)
      return problem(reply, 400, 'Malformed batch', `requests must be an array of 1..${MAX_BATCH} base64url token requests`);
    let key: ClassKey | null = null;
    const blinded: Uint8Array[] = [];
    for (const [i, item] of list.entries()) {
      const bytes = typeof item === 'string' ? fromB64uPadded(item) : null;
      if (!bytes) return problem(reply, 400, 'Malformed batch', `requests[${i}] is not base64url`);
      const parsed = parseTokenRequest(bytes, keysById);
      if (parsed.kind !== 'ok') return problem(reply, 422, 'Unprocessable token request', `requests[${i}]: ${parsed.reason}`);
      if (key && parsed.key !== key) return problem(reply, 422, 'Unprocessable token request', 'every request of a batch must name the same token key');
      key = parsed.key;
      blinded.push(parsed.blindedMsg);
    }
    const signed = await chargeAndSign(id, key!, blinded, reply);
    if (!signed) return reply;
    return { responses: signed.map(b64u) };
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
