/**
 * RSA (receiving service agent): inboxes, per-relationship seeds, RRA address resolution,
 * `202 Accepted` for every well-formed delivery, storage until ack or expiry, fetch with a
 * cursor, WebSocket push, per-inbox quotas and a signed descriptor (communicator.md §4, §6 F0/F3/F4, §8.4).
 */
import { createHash, randomBytes } from 'node:crypto';
import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { wsAuthMessage } from '@umbra/protocol/services';
import { ADDRESS_LENGTH, generateAddressKey, generateSeed, type AddressClass, type ParsedAddress } from '@umbra/protocol/services';
import { b64u, fromB64u } from './bytes.ts';
import { bodyObject, createApp, HttpProblem, listen, problem, rawBody, seconds, signDescriptor, systemClock, type Clock } from './common.ts';
import { openDriver, type SqlDriver } from './db.ts';
import { openShardedRsaStore } from './shards.ts';
import { ed25519Verify, MAX_SKEW_S, rawKeyFromKeyid, verifyRequest, type Ed25519Key } from './httpsig.ts';
import { Slicer } from './slices.ts';
import { prepareResolveKey, resolveParsed, type FastResolveKey } from './resolve.ts';
import { parseAddressNative } from './ristretto-native.ts';
import { isValidDhKey, sealForInboxSync } from './seal.ts';
import { initSchema, initSharedState, loadServiceKey, nonceStoreFor, rateWindowsFor, withInstanceLock } from './shared-state.ts';
import { SqlRsaStore, type AddressKeyRow, type DeliveryLimits, type RsaStore, type Seed, type SeedState } from './store.ts';
import { TokenVerifier } from './tokens.ts';

export { LABEL_RSA_WS, wsAuthMessage } from '@umbra/protocol/services';

declare module 'fastify' {
  interface FastifyRequest {
    /** Spent-token key of the PrivateToken paying for a delivery from an untrusted SSA. */
    deliveryToken?: Uint8Array;
  }
}

const DAY = 86_400_000;

export interface RsaLimits extends DeliveryLimits {
  maxPayload: number;
  maxTtlS: number;
  seedsPerToken: number;
  maxSeedLifetimeS: number;
  inboxTokenCost: number;
  fetchMaxLimit: number;
  /** Deliveries per minute accepted from one SSA key (then 429). */
  perSsaPerMinute: number;
  /**
   * Most deliveries in one POST /v1/deliver/batch (each may cost one resolve, ~0.3-0.5 ms), and
   * its body limit in bytes: bounds the CPU one request can take.
   */
  maxBatchItems: number;
  maxBatchBytes: number;
  /**
   * How long after a WebSocket opens its handshake counts as under way at most (delivery items
   * yield the event loop between each other while any is): a client answers the challenge
   * within a round trip, so a socket that stays silent until its 10 s auth timeout stops
   * counting after this.
   */
  handshakeYieldMs: number;
}

export const DEFAULT_RSA_LIMITS: RsaLimits = {
  maxPayload: 128 * 1024 + 1024,
  maxTtlS: 30 * 86_400,
  seedsPerToken: 10,
  maxSeedLifetimeS: 2 * 365 * 86_400,
  inboxTokenCost: 5,
  fetchMaxLimit: 500,
  perSeedPerMinute: 60,
  perSeedPerDay: 2000,
  inboxMaxMessages: 10_000,
  inboxMaxBytes: 256 * 1024 * 1024,
  overQuotaRetryS: 60,
  perSsaPerMinute: 100_000,
  maxBatchItems: 64,
  maxBatchBytes: 4 * 1024 * 1024,
  handshakeYieldMs: 2000,
};

/** Epoch key schedule per address class (communicator.md §4.2). */
export const KEY_SCHEDULE: Record<AddressClass, { deriveMs: number; resolveExtraMs: number }> = {
  ephemeral: { deriveMs: 7 * DAY, resolveExtraMs: 30 * DAY },
  long: { deriveMs: 180 * DAY, resolveExtraMs: 730 * DAY },
};

export interface RsaOptions {
  db: string;
  host?: string;
  port?: number;
  issuerName: string;
  /** Token keys (RSASSA-PSS SPKI) of the issuer's "rsa" class. */
  tokenKeys: Uint8Array[];
  /** origin_info in token challenges; defaults to the listening host:port. */
  originInfo?: string;
  limits?: Partial<RsaLimits>;
  /**
   * SSA keys (raw Ed25519) whose deliveries this operator accepts unpaid (the hub: its own SSA).
   * Any other signer must pay each delivery with a token of this RSA's "rsa" class
   * (`Authorization: PrivateToken` on POST /v1/deliver; batches are for trusted SSAs only).
   */
  trustedSsaKeys?: Uint8Array[];
  /**
   * 32-byte Ed25519 seed of this RSA's identity (a key file): every instance of one RSA gets
   * the same, so they sign as one service. Without it, the key in the database (first start).
   */
  serviceKey?: Uint8Array;
  /**
   * Mailboxes sharded over PostgreSQL databases (docs/SCALING.md): `db` is then the control
   * database. At start the shards are registered, version 1 of the map is made over them if
   * there is none, and a move left unfinished is resumed (shards.ts openShardedRsaStore).
   */
  shards?: { name: string; url: string }[];
  /** Sharded store tuning (tests): map refresh, retry deadline, and the drain of a resumed move. */
  shardTuning?: { mapRefreshMs?: number; retryDeadlineMs?: number; drainMs?: number };
  clock?: Clock;
}

export interface RsaService {
  url: string;
  originInfo: string;
  serviceKey: Uint8Array;
  app: FastifyInstance;
  store: RsaStore;
  /** Runs the epoch-key schedule now (creates/deletes keys as the clock says). */
  rotateKeys(): Promise<void>;
  /**
   * Work counters (for tests and the cost script): address resolutions attempted, and the
   * WebSocket handshakes counted as under way now (delivery items yield while it is above 0).
   */
  stats: { resolves: number; handshakesUnderWay: number };
  close(): Promise<void>;
}

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}


export async function startRsa(opts: RsaOptions): Promise<RsaService> {
  const clock = opts.clock ?? systemClock;
  const limits: RsaLimits = { ...DEFAULT_RSA_LIMITS, ...opts.limits };
  let store: RsaStore;
  let shared: SqlDriver;
  if (opts.shards) {
    const sharded = await openShardedRsaStore({ control: opts.db, shards: opts.shards, ...opts.shardTuning });
    store = sharded;
    shared = sharded.control;
  } else {
    const single = new SqlRsaStore(openDriver(opts.db));
    await initSchema(() => single.init());
    store = single;
    shared = single.db;
  }
  // Instances of this RSA share its database (the control database when sharded): replay
  // checks, the per-SSA windows and the key schedule go through it (shared-state.ts; in process
  // on SQLite, one process per database).
  await initSharedState(shared);
  const serviceKey: Ed25519Key = await loadServiceKey(store, opts.serviceKey);
  const nonces = nonceStoreFor(shared, () => clock.now());
  const trusted = new Set((opts.trustedSsaKeys ?? []).map(b64u));
  const stats = { resolves: 0, handshakesUnderWay: 0 };

  // ---- epoch keys -------------------------------------------------------------------------
  let keys = new Map<number, AddressKeyRow>();
  /** Native-X25519 resolution state per kid (resolve.ts), prepared once per key. */
  const fastKeys = new Map<number, FastResolveKey | null>();
  async function loadKeys(): Promise<void> {
    keys = new Map((await store.listAddressKeys()).map((k) => [k.kid, k]));
    for (const kid of fastKeys.keys()) if (!keys.has(kid)) fastKeys.delete(kid);
  }
  function fastKey(k: AddressKeyRow): FastResolveKey | null {
    let f = fastKeys.get(k.kid);
    if (f === undefined) fastKeys.set(k.kid, (f = prepareResolveKey(k.x)));
    return f;
  }
  /** The schedule runs under a database lock: instances starting together create one successor, not one each. */
  async function rotateKeys(): Promise<void> {
    await withInstanceLock(shared, 'rsa-key-schedule', rotateKeysLocked);
  }
  async function rotateKeysLocked(): Promise<void> {
    await loadKeys();
    const now = clock.now();
    for (const k of keys.values()) if (k.resolveUntil < now) await store.deleteAddressKey(k.kid); // forward secrecy for linkage
    for (const cls of ['ephemeral', 'long'] as const) {
      const sched = KEY_SCHEDULE[cls];
      const newest = [...keys.values()].filter((k) => k.cls === cls).reduce((a, k) => Math.max(a, k.deriveUntil), 0);
      // A successor appears when the newest key has less than half its derive period left.
      if (newest - now < sched.deriveMs / 2) {
        const start = Math.max(now, newest - sched.deriveMs / 2);
        const fresh = generateAddressKey(new DataView(randomBytes(4).buffer).getUint32(0));
        await store.putAddressKey({
          kid: fresh.kid,
          cls,
          x: fresh.x,
          X: fresh.X,
          created: now,
          deriveUntil: start + sched.deriveMs,
          resolveUntil: start + sched.deriveMs + sched.resolveExtraMs,
        });
      }
    }
    await loadKeys();
  }
  await rotateKeys();
  const rotation = setInterval(() => void rotateKeys().catch((e) => console.error('[rsa] key rotation failed:', e)), 3_600_000);
  rotation.unref();
  // Keys another instance created reach this one's descriptor within a minute.
  const keyRefresh = setInterval(() => void loadKeys().catch((e) => console.error('[rsa] key reload failed:', e)), 60_000);
  keyRefresh.unref();

  /**
   * For an address under a kid this instance does not know: joins the next reload that has not
   * started yet (at most one a second), so a key another instance committed before this delivery
   * arrived is always found, and unknown kids cost at most one key query a second.
   */
  let nextReload: Promise<void> | null = null;
  let lastReloadAt = -Infinity;
  function reloadForUnknownKid(): Promise<void> {
    nextReload ??= new Promise<void>((r) => setTimeout(r, Math.max(0, lastReloadAt + 1000 - performance.now()))).then(() => {
      nextReload = null;
      lastReloadAt = performance.now();
      return loadKeys();
    });
    return nextReload;
  }

  // ---- per-SSA rate (one window per signer key, shared by the instances) ----------------------
  const ssaWindows = rateWindowsFor(shared, limits.perSsaPerMinute, () => clock.now());

  const app = createApp(limits.maxPayload * 2 + 4096);
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  let originInfo = opts.originInfo ?? '';
  let verifier: TokenVerifier | null = null;
  const tokens = (): TokenVerifier => verifier!;

  function publicKeys() {
    const now = clock.now();
    return [...keys.values()]
      .filter((k) => k.resolveUntil >= now)
      .map((k) => ({ kid: k.kid, class: k.cls, X: b64u(k.X), derive_until: seconds(k.deriveUntil), resolve_until: seconds(k.resolveUntil) }));
  }

  app.get('/.well-known/communicator.json', async () =>
    signDescriptor(serviceKey, {
      v: 1,
      roles: ['rsa'],
      service_key: b64u(serviceKey.publicKey),
      endpoints: { deliver: '/v1/deliver', deliver_batch: '/v1/deliver/batch', inboxes: '/v1/inboxes' },
      address_keys: publicKeys(),
      limits: {
        max_payload: limits.maxPayload,
        max_ttl_s: limits.maxTtlS,
        max_batch_items: limits.maxBatchItems,
        max_batch_bytes: limits.maxBatchBytes,
        seeds_per_token: limits.seedsPerToken,
        inbox_token_cost: limits.inboxTokenCost,
        per_seed_per_minute: limits.perSeedPerMinute,
        per_seed_per_day: limits.perSeedPerDay,
        inbox_max_messages: limits.inboxMaxMessages,
        inbox_max_bytes: limits.inboxMaxBytes,
      },
      token: { issuer_name: opts.issuerName, origin_info: originInfo, token_keys: opts.tokenKeys.map(b64u), class: 'rsa' },
      issued_at: seconds(clock.now()),
      expires: seconds(clock.now()) + 3600,
    }),
  );

  // ---- delivery ------------------------------------------------------------------------------
  // Delivery items are always sliced: a batch's items otherwise run back to back in one
  // macrotask (32 resolves and seals, ~50 ms here), and a restarted RSA is sent several batches
  // at once, so new connections and WebSocket upgrades waited 0.5-1.8 s to be accepted before
  // they could count as handshakes. Slices are short (2 ms) while handshakes are under way and
  // longer otherwise (20 ms: a steady-state batch still shares one group commit).
  const deliverySlices = new Slicer(() => (stats.handshakesUnderWay > 0 ? 2 : 20));
  async function resolve(addr: Extract<ParsedAddress, { kind: 'ok' }>): Promise<{ seed: Seed; dhKey: Uint8Array } | null> {
    const kid = addr.kid;
    let key = keys.get(kid);
    if (!key) {
      await reloadForUnknownKid(); // another instance may have created it
      key = keys.get(kid);
    }
    const now = clock.now();
    if (!key || now > key.resolveUntil) return null;
    stats.resolves++;
    const M = resolveParsed(addr, fastKey(key), key.x);
    const found = await store.findSeedForDelivery(M);
    if (!found || found.seed.state !== 'active' || found.seed.notAfter < now) return null;
    return found;
  }

  /**
   * Outcome of one delivery item: 202 for every well-formed one that was stored, dropped or did
   * not resolve; 429 with a retry time when a resolved one meets a per-seed rate or the inbox
   * quota (nothing stored, the SSA keeps it and retries: see docs/SERVICES.md on the trade-off).
   */
  type ItemOutcome =
    | { status: 202 }
    | { status: 429; retryAfterS: number; title: string; detail: string }
    | { status: 400 | 401 | 413; title: string; detail: string };

  const malformed = (status: 400 | 413, title: string, detail: string): ItemOutcome => ({ status, title, detail });

  /** The cheap, syntactic half of an item (no resolve, no database). */
  function parseItem(item: unknown): { addr: Extract<ParsedAddress, { kind: 'ok' }>; payload: Uint8Array; ttl: number } | ItemOutcome {
    const body = typeof item === 'object' && item !== null && !Array.isArray(item) ? (item as Record<string, unknown>) : null;
    if (!body) return malformed(400, 'Malformed body', 'expected a JSON object');
    const addr = fromB64u(body.addr);
    const payload = fromB64u(body.payload);
    const ttl = body.ttl_s;
    if (!addr || addr.length !== ADDRESS_LENGTH) return malformed(400, 'Malformed address', `addr must be ${ADDRESS_LENGTH} bytes of base64url`);
    const parsed = parseAddressNative(addr);
    if (parsed.kind !== 'ok') return malformed(400, 'Malformed address', parsed.reason);
    if (!payload || payload.length === 0) return malformed(400, 'Malformed payload', 'payload must be non-empty base64url');
    if (payload.length > limits.maxPayload) return malformed(413, 'Payload too large', `payload exceeds ${limits.maxPayload} bytes`);
    if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1) return malformed(400, 'Malformed ttl_s', 'ttl_s must be a positive integer');
    return { addr: parsed, payload, ttl };
  }

  /** `spentKey`: the token paying for this item (untrusted signers), spent before any resolve. */
  async function acceptItem(item: unknown, now: number, spentKey: Uint8Array | null): Promise<ItemOutcome> {
    const p = parseItem(item);
    if ('status' in p) return p;
    // The resolve and seal below are the expensive part: pending I/O (connections, WebSocket
    // handshakes, acks) gets the event loop between slices of them, every 2 ms while handshakes
    // are under way (a restarted RSA's backlog would otherwise hold its receivers' reconnects up
    // for seconds), every 20 ms otherwise (sliced items commit in smaller groups).
    await deliverySlices.turn();
    if (spentKey) {
      rememberSpent(spentKey);
      if (!(await store.spendToken(spentKey, now + 40 * DAY))) return { status: 401, title: 'Token refused', detail: 'token already spent' };
    }

    // From here on the answer does not depend on whether the address resolved (communicator.md
    // §4.5), except for the retry-later of a resolved one at a limit (docs/SERVICES.md).
    const found = await resolve(p.addr);
    if (!found) return { status: 202 }; // unknown seed, or its inbox is gone
    const { seed, dhKey } = found;
    const mid = new Uint8Array(randomBytes(16));
    const outcome = await store.deliver(
      {
        mid,
        seed,
        receivedAt: Math.floor(now / 1000) * 1000,
        expires: now + Math.min(p.ttl, limits.maxTtlS) * 1000,
        stored: sealForInboxSync(dhKey, mid, p.payload),
        dedupeKey: sha256(seed.inbox, p.payload),
      },
      limits,
      now,
    );
    if (outcome.kind !== 'deferred') return { status: 202 };
    return {
      status: 429,
      retryAfterS: Math.max(1, Math.ceil((outcome.retryAt - now) / 1000)),
      title: 'Retry later',
      detail: outcome.reason === 'rate-limited' ? 'a delivery rate limit is reached' : 'the recipient inbox is full',
    };
  }

  /** Delivery tokens spent by this process lately: a replayed one is refused before its body is read. */
  const recentlySpent = new Set<string>();
  function rememberSpent(spentKey: Uint8Array): void {
    if (recentlySpent.size >= 100_000) recentlySpent.clear(); // the database stays the authority
    recentlySpent.add(b64u(spentKey));
  }

  /** 429 problem with the time to come back, as a Retry-After header and as `retry_after_s` (RFC 9457 extension member). */
  function retryLater(reply: FastifyReply, retryAfterS: number, title: string, detail?: string): FastifyReply {
    return reply
      .code(429)
      .header('retry-after', String(retryAfterS))
      .type('application/problem+json')
      .send({ type: 'about:blank', title, status: 429, ...(detail ? { detail } : {}), retry_after_s: retryAfterS });
  }

  /** keyid of a delivery's Signature-Input, read without verifying anything (for the early checks). */
  function claimedKeyid(req: FastifyRequest): string | null {
    const input = req.headers['signature-input'];
    const m = typeof input === 'string' ? /;keyid="([A-Za-z0-9_-]{1,128})"/.exec(input) : null;
    return m ? m[1]! : null;
  }

  async function ssaSignature(req: FastifyRequest, now: number): Promise<{ kind: 'ok'; keyid: string } | { kind: 'refused'; reason: string }> {
    return verifyRequest({ method: req.method, url: req.url, headers: req.headers, body: rawBody(req) }, rawKeyFromKeyid, nonces, now);
  }

  /**
   * Before the body is read or parsed: a delivery must come from a trusted SSA key or carry a
   * valid token (RSA-PSS verify, ~0.05 ms), and the signer's per-minute window must have room.
   * The signature itself is verified once the body is there (it covers the body's digest).
   */
  const earlyDeliveryCheck = (batch: boolean) => async (req: FastifyRequest, reply: FastifyReply) => {
    const keyid = claimedKeyid(req);
    if (!keyid) return problem(reply, 401, 'Delivery signature refused', 'missing or malformed Signature-Input');
    if (!trusted.has(keyid)) {
      if (batch) return problem(reply, 401, 'Delivery refused', 'batch delivery is for SSAs this RSA trusts; others send POST /v1/deliver with a PrivateToken');
      const t = tokens().verifyHeader(req.headers.authorization);
      if (t.kind !== 'ok') return problem(reply.header('www-authenticate', tokens().wwwAuthenticate()), 401, 'Token required', `a delivery from an SSA this RSA does not trust must be paid: ${t.reason}`);
      if (recentlySpent.has(b64u(t.spentKey))) return problem(reply.header('www-authenticate', tokens().wwwAuthenticate()), 401, 'Token refused', 'token already spent');
      req.deliveryToken = t.spentKey;
    }
    const hint = ssaWindows.looksFull(keyid, clock.now());
    if (hint.full) return retryLater(reply, hint.retryAfterS, 'Too many deliveries from this SSA');
  };

  /** The JSON body of a delivery, parsed only now that its signature verified. */
  function signedJson(req: FastifyRequest): Record<string, unknown> {
    const raw = req.rawBody ?? Buffer.alloc(0);
    let parsed: unknown;
    try {
      parsed = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpProblem(400, 'Malformed JSON', 'the request body is not valid JSON');
    }
    return bodyObject(parsed);
  }

  // The delivery routes keep their JSON bodies raw until the signature verified: a request that
  // claims a trusted keyid it cannot sign for costs a body read and a SHA-256, never a JSON parse.
  await app.register(async (deliveries) => {
    deliveries.removeContentTypeParser('application/json');
    deliveries.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
      req.rawBody = body as Buffer;
      done(null, null);
    });

    deliveries.post('/v1/deliver', { onRequest: earlyDeliveryCheck(false) }, async (req, reply) => {
      const now = clock.now();
      const sig = await ssaSignature(req, now);
      if (sig.kind !== 'ok') return problem(reply, 401, 'Delivery signature refused', sig.reason);
      const window = await ssaWindows.consume(sig.keyid, 1, now);
      if (window.allowed === 0) return retryLater(reply, window.retryAfterS, 'Too many deliveries from this SSA');
      const r = await acceptItem(signedJson(req), now, trusted.has(sig.keyid) ? null : (req.deliveryToken ?? null));
      if (r.status === 429) return retryLater(reply, r.retryAfterS, r.title, r.detail);
      if (r.status !== 202) return problem(reply, r.status, r.title, r.detail);
      return reply.code(202).send({ accepted: true });
    });

    /**
     * Several deliveries under one signature, from trusted SSAs only: {items: [{addr, ttl_s,
     * payload}]} → 200 {results: [status per item], retry_after_s: [seconds per item, 0 unless
     * 429]} where each status is what /v1/deliver would have answered. The items are stored
     * together (one group commit) before the answer.
     */
    deliveries.post('/v1/deliver/batch', { bodyLimit: limits.maxBatchBytes, onRequest: earlyDeliveryCheck(true) }, async (req, reply) => {
      const now = clock.now();
      const sig = await ssaSignature(req, now);
      if (sig.kind !== 'ok' || !trusted.has(sig.keyid)) return problem(reply, 401, 'Delivery signature refused', sig.kind === 'ok' ? 'not a trusted SSA key' : sig.reason);
      const items = signedJson(req).items;
      if (!Array.isArray(items) || items.length === 0 || items.length > limits.maxBatchItems)
        return problem(reply, 400, 'Malformed items', `items must be an array of 1..${limits.maxBatchItems} deliveries`);
      // The items that fit in the signer's window (one count for the batch), in order.
      const window = await ssaWindows.consume(sig.keyid, items.length, now);
      const results = await Promise.all(
        items.map((item, k): Promise<ItemOutcome> | ItemOutcome =>
          k < window.allowed ? acceptItem(item, now, null) : { status: 429, retryAfterS: window.retryAfterS, title: 'Too many deliveries from this SSA', detail: '' },
        ),
      );
      return reply.code(200).send({ results: results.map((r) => r.status), retry_after_s: results.map((r) => (r.status === 429 ? r.retryAfterS : 0)) });
    });
  });

  // ---- inboxes ------------------------------------------------------------------------------
  app.post('/v1/inboxes', async (req, reply) => {
    const body = bodyObject(req.body);
    const authKey = fromB64u(body.auth_key);
    const dhKey = fromB64u(body.dh_key);
    if (!authKey || authKey.length !== 32) return problem(reply, 400, 'Malformed auth_key', 'auth_key must be a 32-byte Ed25519 public key');
    if (!dhKey || !(await isValidDhKey(dhKey))) return problem(reply, 400, 'Malformed dh_key', 'dh_key must be a 32-byte X25519 public key');
    const list = body.tokens;
    if (!Array.isArray(list) || list.length !== limits.inboxTokenCost)
      return problem(reply, 401, 'Tokens required', `creating an inbox costs ${limits.inboxTokenCost} tokens in body.tokens`);
    const spent: Uint8Array[] = [];
    for (const t of list) {
      const bytes = fromB64u(t);
      const c = bytes ? tokens().verifyToken(bytes) : ({ kind: 'malformed', reason: 'token is not base64url' } as const);
      if (c.kind !== 'ok') return problem(reply, 401, 'Token refused', c.reason);
      if (spent.some((s) => Buffer.compare(s, c.spentKey) === 0)) return problem(reply, 401, 'Token refused', 'the same token appears twice');
      spent.push(c.spentKey);
    }
    const id = new Uint8Array(randomBytes(16));
    const now = clock.now();
    if (!(await store.createInbox({ id, authKey, dhKey }, spent, now + 40 * DAY, now))) return problem(reply, 401, 'Token refused', 'token already spent');
    return reply.code(201).send({ inbox_id: b64u(id) });
  });

  async function inboxAuth(req: FastifyRequest): Promise<Uint8Array> {
    const id = fromB64u((req.params as Record<string, string>).id);
    if (!id || id.length !== 16) throw new HttpProblem(404, 'Not found');
    const check = await verifyRequest(
      { method: req.method, url: req.url, headers: req.headers, body: rawBody(req) },
      async (keyid) => (keyid === b64u(id) ? ((await store.getInbox(id))?.authKey ?? null) : null),
      nonces,
      clock.now(),
    );
    // Same answer for unknown inboxes and bad signatures.
    if (check.kind !== 'ok') throw new HttpProblem(401, 'Inbox authentication refused', check.reason === 'unknown signing key' ? 'signature does not verify' : check.reason);
    return id;
  }

  app.delete('/v1/inboxes/:id', async (req, reply) => {
    const id = await inboxAuth(req);
    await store.deleteInbox(id);
    return reply.code(204).send();
  });

  app.post('/v1/inboxes/:id/seeds', async (req, reply) => {
    const id = await inboxAuth(req);
    const body = bodyObject(req.body);
    const count = body.count ?? limits.seedsPerToken;
    const now = clock.now();
    const notAfterS = body.not_after ?? seconds(now) + limits.maxSeedLifetimeS;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > limits.seedsPerToken)
      return problem(reply, 400, 'Malformed count', `count must be 1..${limits.seedsPerToken}`);
    if (typeof notAfterS !== 'number' || !Number.isInteger(notAfterS) || notAfterS <= seconds(now))
      return problem(reply, 400, 'Malformed not_after', 'not_after must be a future Unix time in seconds');
    const notAfter = Math.min(notAfterS * 1000, now + limits.maxSeedLifetimeS * 1000);
    const t = tokens().verifyHeader(req.headers.authorization);
    if (t.kind !== 'ok') return problem(reply.header('www-authenticate', tokens().wwwAuthenticate()), 401, 'Token refused', t.reason);
    const seeds: Seed[] = Array.from({ length: count }, () => ({
      m: generateSeed(),
      seedId: new Uint8Array(randomBytes(16)),
      inbox: id,
      notAfter,
      state: 'active' as SeedState,
    }));
    if (!(await store.addSeeds(id, seeds, t.spentKey, now + 40 * DAY))) return problem(reply, 401, 'Token refused', 'token already spent');
    return reply.code(201).send({ seeds: seeds.map((s) => ({ seed_id: b64u(s.seedId), M: b64u(s.m), not_after: seconds(s.notAfter) })) });
  });

  app.patch('/v1/inboxes/:id/seeds/:seed_id', async (req, reply) => {
    const id = await inboxAuth(req);
    const seedId = fromB64u((req.params as Record<string, string>).seed_id);
    const state = bodyObject(req.body).state;
    if (state !== 'active' && state !== 'paused' && state !== 'revoked') return problem(reply, 400, 'Malformed state', 'state must be active, paused or revoked');
    if (!seedId || !(await store.setSeedState(id, seedId, state))) return problem(reply, 404, 'Unknown seed');
    return reply.code(204).send();
  });

  app.get('/v1/inboxes/:id/messages', async (req, reply) => {
    const id = await inboxAuth(req);
    const q = req.query as Record<string, string | undefined>;
    const after = q.after === undefined || q.after === '' ? 0 : Number(q.after);
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isSafeInteger(after) || after < 0) return problem(reply, 400, 'Malformed cursor');
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > limits.fetchMaxLimit) return problem(reply, 400, 'Malformed limit', `limit must be 1..${limits.fetchMaxLimit}`);
    const msgs = await store.fetch(id, after, limit, clock.now());
    const dropped = await store.droppedByLimit(id);
    return {
      messages: msgs.map((m) => ({ mid: b64u(m.mid), seed_id: b64u(m.seedId), received_at: seconds(m.receivedAt), stored: b64u(m.stored) })),
      cursor: String(msgs.length > 0 ? msgs[msgs.length - 1]!.seq : after),
      dropped_by_limit: Object.fromEntries(dropped.map((d) => [b64u(d.seedId), d.n])),
    };
  });

  function parseMids(list: unknown): Uint8Array[] | null {
    if (!Array.isArray(list) || list.length > 1000) return null;
    const out = list.map((x) => fromB64u(x));
    return out.every((x) => x && x.length === 16) ? (out as Uint8Array[]) : null;
  }

  app.post('/v1/inboxes/:id/ack', async (req, reply) => {
    const id = await inboxAuth(req);
    const mids = parseMids(bodyObject(req.body).mids);
    if (!mids) return problem(reply, 400, 'Malformed mids', 'mids must be an array of up to 1000 base64url 16-byte ids');
    await store.ack(id, mids);
    return reply.code(204).send();
  });

  // ---- WebSocket push --------------------------------------------------------------------------
  const sockets = new Map<string, Set<{ pump(): void }>>();
  const unlisten = await store.onMessage(
    (hex) => {
      for (const s of sockets.get(hex) ?? []) s.pump();
    },
    // Notifications were lost while the LISTEN connection was down: every socket reads again from its cursor.
    () => {
      for (const set of sockets.values()) for (const s of set) s.pump();
    },
  );

  app.get('/v1/inboxes/:id/ws', { websocket: true }, (socket: WebSocket, req) => {
    const id = fromB64u((req.params as Record<string, string>).id);
    // Under way until authenticated, closed, or handshakeYieldMs (whichever comes first).
    stats.handshakesUnderWay++;
    let handshaking = true;
    const handshakeDone = () => {
      if (handshaking) stats.handshakesUnderWay--;
      handshaking = false;
      clearTimeout(yieldBound);
    };
    const yieldBound = setTimeout(handshakeDone, limits.handshakeYieldMs);
    yieldBound.unref();
    const challenge = new Uint8Array(randomBytes(32));
    const send = (o: unknown) => socket.readyState === socket.OPEN && socket.send(JSON.stringify(o));
    let authed = false;
    let cursor = 0;
    let pumping = false;
    let again = false;
    const hex = id ? Buffer.from(id).toString('hex') : '';
    const entry = {
      pump() {
        if (!authed) return;
        if (pumping) {
          again = true;
          return;
        }
        pumping = true;
        void (async () => {
          try {
            do {
              again = false;
              for (;;) {
                const msgs = await store.fetch(id!, cursor, 100, clock.now());
                for (const m of msgs) {
                  cursor = m.seq;
                  send({ t: 'msg', mid: b64u(m.mid), seed_id: b64u(m.seedId), received_at: seconds(m.receivedAt), stored: b64u(m.stored), cursor: String(m.seq) });
                }
                if (msgs.length < 100) break;
              }
            } while (again);
          } catch (e) {
            if (socket.readyState === socket.OPEN) console.error('[rsa] ws pump failed:', e);
          } finally {
            pumping = false;
          }
        })();
      },
    };
    const timer = setTimeout(() => !authed && socket.close(4001, 'auth timeout'), 10_000);
    send({ t: 'challenge', nonce: b64u(challenge) });
    socket.on('message', (data) => {
      void (async () => {
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(String(data));
        } catch {
          return socket.close(4000, 'malformed frame');
        }
        if (!authed) {
          if (msg.t !== 'auth' || !id) return socket.close(4001, 'expected auth');
          const ts = msg.ts;
          const sig = fromB64u(msg.sig);
          const inbox = await store.getInbox(id);
          if (
            !inbox ||
            typeof ts !== 'number' ||
            Math.abs(ts - clock.now() / 1000) > MAX_SKEW_S ||
            !sig ||
            !ed25519Verify(inbox.authKey, wsAuthMessage(id, challenge, ts), sig)
          )
            return socket.close(4003, 'inbox authentication refused');
          authed = true;
          clearTimeout(timer);
          const after = Number(msg.after ?? 0);
          cursor = Number.isSafeInteger(after) && after >= 0 ? after : 0;
          let set = sockets.get(hex);
          if (!set) sockets.set(hex, (set = new Set()));
          set.add(entry);
          send({ t: 'ready' });
          entry.pump();
          handshakeDone();
          return;
        }
        if (msg.t === 'ack') {
          const mids = parseMids(msg.mids);
          if (!mids) return socket.close(4000, 'malformed ack');
          const n = await store.ack(id!, mids);
          send({ t: 'acked', n });
        } else if (msg.t === 'ping') send({ t: 'pong' });
      })().catch(() => socket.close(1011, 'internal error'));
    });
    socket.on('close', () => {
      handshakeDone();
      clearTimeout(timer);
      sockets.get(hex)?.delete(entry);
      if (sockets.get(hex)?.size === 0) sockets.delete(hex);
    });
  });

  const sweeper = setInterval(() => void store.sweep(clock.now()).catch((e) => console.error('[rsa] sweep failed:', e)), 60_000);
  sweeper.unref();

  const url = await listen(app, opts.host ?? '127.0.0.1', opts.port ?? 0);
  if (!originInfo) originInfo = new URL(url).host;
  verifier = new TokenVerifier(opts.issuerName, originInfo, opts.tokenKeys.map((tokenKey) => ({ tokenKey })));
  return {
    url,
    originInfo,
    serviceKey: serviceKey.publicKey,
    app,
    store,
    rotateKeys,
    stats,
    async close() {
      clearInterval(rotation);
      clearInterval(keyRefresh);
      clearInterval(sweeper);
      ssaWindows.close();
      nonces.close?.();
      await app.close();
      await unlisten();
      await store.close();
    },
  };
}
