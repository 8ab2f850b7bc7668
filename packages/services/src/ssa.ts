/**
 * SSA (sending service agent): token-paid submission of {rsa, addr, ttl_s, payload, idem}, a
 * durable queue with retries and exponential backoff, idempotency by `idem`, RFC 9421-signed
 * delivery to the RSA, and encrypted attachment blobs (communicator.md §6 F3, §8.3).
 *
 * The recipient address is never stored in the clear: the queue holds it sealed with
 * ChaCha20-Poly1305 under the SSA's storage key (nonce ‖ ct ‖ tag, aad = sid), and it is wiped
 * together with the payload as soon as the RSA answers 202. Nothing is logged.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ADDRESS_LENGTH } from '@umbra/protocol/services';
import { parseAddressNative } from './ristretto-native.ts';
import { b64u, fromB64u } from './bytes.ts';
import { bodyObject, createApp, listen, problem, rawBody, seconds, signDescriptor, systemClock, type Clock } from './common.ts';
import { openDriver } from './db.ts';
import { keyidOf, signRequest, type Ed25519Key } from './httpsig.ts';
import { initSchema, loadServiceKey } from './shared-state.ts';
import { checkDescriptor, type SignedDescriptor } from './descriptor-check.ts';
import { checkServiceUrl, OutboundClient, OutboundError } from './outbound.ts';
import { SqlSsaStore, type QueueItem, type SsaStore } from './store.ts';
import { TokenVerifier } from './tokens.ts';

const DAY = 86_400_000;

export interface SsaLimits {
  maxPayload: number;
  maxTtlS: number;
  maxBlob: number;
  maxBlobTtlS: number;
  /** Most bytes the SSA reads of any answer it fetches (RSA descriptors, delivery answers). */
  maxAnswerBytes: number;
  /** Time for a whole RSA descriptor fetch (connect, request, complete answer). */
  descriptorTimeoutMs: number;
  /** Longest "retry later" of an RSA the SSA honours (longer ones are cut to this). */
  maxRetryAfterS: number;
}

export const DEFAULT_SSA_LIMITS: SsaLimits = {
  maxPayload: 128 * 1024 + 1024,
  maxTtlS: 7 * 86_400,
  maxBlob: 1024 * 1024,
  maxBlobTtlS: 30 * 86_400,
  maxAnswerBytes: 64 * 1024,
  descriptorTimeoutMs: 5000,
  maxRetryAfterS: 86_400,
};

export interface RetryPolicy {
  baseMs: number;
  maxMs: number;
  /** Random delay before the first attempt (timing blur, communicator.md F3 step 6). */
  firstDelayMs: number;
  /** Most deliveries in flight at once (all RSAs together). */
  concurrency: number;
  /**
   * Most deliveries in flight to any one RSA. Due items are claimed by age whatever their RSA
   * (see newestFirstAfterMs), so without a cap one slow RSA (a restarted one working through its
   * backlog and its receivers' reconnects) held every slot and the deliveries to the others
   * waited behind it.
   * An RSA at its cap is left out of the next claims until its batches come back.
   */
  perRsaConcurrency: number;
  /** Most deliveries per POST /v1/deliver/batch. */
  batchSize: number;
  requestTimeoutMs: number;
  /**
   * When a delivery finds nothing listening at an RSA (connection refused or reset), the SSA
   * probes that RSA (GET its descriptor) every `probeMs` (0 = off; the interval doubles up to
   * `maxMs` after 30 s down) and makes its queued items due at once when it answers, so a
   * restarted RSA is not left waiting out the items' backoff. The backoff still applies.
   */
  probeMs: number;
  /**
   * A submit wakes the delivery worker this many ms later (0 = at once), so that the submits of
   * that window go to each RSA as one batch: one claim, one signed POST, one commit at the RSA and
   * one markForwarded for all of them, instead of one each when submits arrive one at a time.
   * Below saturation the batches were 3-7 items at once and 12 with 30 ms (load test, 200-400
   * submits/s), and the SSA's and RSAs' CPU per message fell with it (docs/SCALING.md).
   */
  coalesceMs: number;
  /** The worker also wakes every `pollMs` to claim what has become due (retries, backoffs). */
  pollMs: number;
  /**
   * Due items are claimed oldest first, except while the oldest due item not in flight has
   * waited more than this many ms (a backlog: an RSA back after an outage, or more submits than
   * the RSAs take): then newest first until that backlog is gone (adaptive LIFO). Oldest first,
   * every message waited behind the whole backlog: in the load test's RSA kill, 7,799 of the
   * 8,249 messages over 1 s to the killed RSA were late there, after their receiver was back, in
   * a queue that took 20 s and more to drain under the closed loop. Newest first, the fresh ones
   * go at once and the backlog, late already, takes what the RSAs have to spare. (Serving the
   * items that can still be on time first, oldest first, was worse: under the overload of a
   * restart they turn late while they wait. docs/SCALING.md.) 0 = always oldest first.
   */
  newestFirstAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  baseMs: 500,
  maxMs: 5 * 60_000,
  firstDelayMs: 0,
  concurrency: 256,
  perRsaConcurrency: 128,
  batchSize: 32,
  requestTimeoutMs: 10_000,
  probeMs: 200,
  coalesceMs: 30,
  pollMs: 200,
  newestFirstAfterMs: 1000,
};

/** Socket errors that say nothing listens at the RSA (or it went away mid-request): worth probing for its return. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE']);

export interface SsaOptions {
  db: string;
  /** 32-byte storage key that seals queued addresses. Keep it outside the database. */
  sealKey: Uint8Array;
  host?: string;
  port?: number;
  issuerName: string;
  /** Token keys (RSASSA-PSS SPKI) of the issuer's "ssa" class. */
  tokenKeys: Uint8Array[];
  originInfo?: string;
  limits?: Partial<SsaLimits>;
  retry?: Partial<RetryPolicy>;
  clock?: Clock;
  /** Public base URL for blob links (defaults to the listening URL). */
  publicUrl?: string;
  /**
   * Let callers name loopback RSAs (127.0.0.0/8, ::1), and plain http to them: for local use
   * only (the hub, tests). Off by default: https to public addresses only.
   */
  allowLoopback?: boolean;
  /**
   * 32-byte Ed25519 seed of this service's identity (a key file): every instance of the role
   * gets the same, so they sign as one service. Without it, the key in the database (first start).
   */
  serviceKey?: Uint8Array;
}

export interface SsaService {
  url: string;
  originInfo: string;
  serviceKey: Uint8Array;
  app: FastifyInstance;
  store: SsaStore;
  /** Runs one delivery pass now; resolves when it is done. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

function sealAddress(key: Uint8Array, sid: Uint8Array, addr: Uint8Array): Uint8Array {
  const nonce = randomBytes(12);
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  c.setAAD(sid, { plaintextLength: addr.length });
  const ct = Buffer.concat([c.update(addr), c.final()]);
  return new Uint8Array(Buffer.concat([nonce, ct, c.getAuthTag()]));
}

function openAddress(key: Uint8Array, sid: Uint8Array, sealed: Uint8Array): Uint8Array | null {
  if (sealed.length !== 12 + ADDRESS_LENGTH + 16) return null;
  try {
    const d = createDecipheriv('chacha20-poly1305', key, sealed.subarray(0, 12), { authTagLength: 16 });
    d.setAAD(sid, { plaintextLength: ADDRESS_LENGTH });
    d.setAuthTag(sealed.subarray(12 + ADDRESS_LENGTH));
    return new Uint8Array(Buffer.concat([d.update(sealed.subarray(12, 12 + ADDRESS_LENGTH)), d.final()]));
  } catch {
    return null;
  }
}

export async function startSsa(opts: SsaOptions): Promise<SsaService> {
  if (opts.sealKey.length !== 32) throw new Error('SSA sealKey must be 32 bytes');
  const clock = opts.clock ?? systemClock;
  const limits: SsaLimits = { ...DEFAULT_SSA_LIMITS, ...opts.limits };
  const retry: RetryPolicy = { ...DEFAULT_RETRY, ...opts.retry };
  const store = new SqlSsaStore(openDriver(opts.db));
  await initSchema(() => store.init());
  const serviceKey: Ed25519Key = await loadServiceKey(store, opts.serviceKey);
  const keyid = keyidOf(serviceKey.publicKey);
  const outbound = new OutboundClient({ allowLoopback: opts.allowLoopback === true });
  const app = createApp(limits.maxPayload * 2 + 4096);
  let originInfo = opts.originInfo ?? '';
  let verifier: TokenVerifier | null = null;
  const tokens = (): TokenVerifier => verifier!;
  let baseUrl = '';
  /**
   * checkServiceUrl's answers for the RSA URLs submits name: a WHATWG URL parse and the address
   * checks, 5-6 µs of CPU per submit, against 0.02 µs for the lookup. The policy is fixed for the
   * SSA's life, so an answer never changes; bounded, cleared when full.
   */
  const checkedUrls = new Map<string, ReturnType<typeof checkServiceUrl>>();
  const checkedRsaUrl = (u: unknown): ReturnType<typeof checkServiceUrl> => {
    if (typeof u !== 'string') return checkServiceUrl(u, outbound.policy);
    let r = checkedUrls.get(u);
    if (!r) {
      r = checkServiceUrl(u, outbound.policy);
      if (checkedUrls.size >= 1024) checkedUrls.clear();
      checkedUrls.set(u, r);
    }
    return r;
  };

  app.get('/.well-known/communicator.json', async () =>
    signDescriptor(serviceKey, {
      v: 1,
      roles: ['ssa'],
      service_key: b64u(serviceKey.publicKey),
      endpoints: { submit: '/v1/submit', blobs: '/v1/blobs', rsa_descriptor: '/v1/rsa-descriptor' },
      limits: { max_payload: limits.maxPayload, max_ttl_s: limits.maxTtlS, max_blob: limits.maxBlob, max_blob_ttl_s: limits.maxBlobTtlS },
      token: { issuer_name: opts.issuerName, origin_info: originInfo, token_keys: opts.tokenKeys.map(b64u), class: 'ssa' },
      issued_at: seconds(clock.now()),
      expires: seconds(clock.now()) + 3600,
    }),
  );

  app.post('/v1/submit', async (req, reply) => {
    const body = bodyObject(req.body);
    const addr = fromB64u(body.addr);
    const payload = fromB64u(body.payload);
    const idem = fromB64u(body.idem);
    const ttl = body.ttl_s ?? limits.maxTtlS;
    const rsaUrl = checkedRsaUrl(body.rsa);
    if (!rsaUrl.ok) return problem(reply, 400, 'Malformed rsa', rsaUrl.reason);
    if (!addr || addr.length !== ADDRESS_LENGTH) return problem(reply, 400, 'Malformed address', `addr must be ${ADDRESS_LENGTH} bytes of base64url`);
    const parsed = parseAddressNative(addr);
    if (parsed.kind !== 'ok') return problem(reply, 400, 'Malformed address', parsed.reason);
    if (!payload || payload.length === 0) return problem(reply, 400, 'Malformed payload', 'payload must be non-empty base64url');
    if (payload.length > limits.maxPayload) return problem(reply, 413, 'Payload too large', `payload exceeds ${limits.maxPayload} bytes`);
    if (!idem || idem.length !== 16) return problem(reply, 400, 'Malformed idem', 'idem must be 16 bytes of base64url');
    if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > limits.maxTtlS)
      return problem(reply, 400, 'Malformed ttl_s', `ttl_s must be an integer in 1..${limits.maxTtlS}`);
    const t = tokens().verifyHeader(req.headers.authorization);
    if (t.kind !== 'ok') return problem(reply.header('www-authenticate', tokens().wwwAuthenticate()), 401, 'Token refused', t.reason);
    // A retried submit (same idem) is answered from the queue inside enqueue's transaction.
    const now = clock.now();
    const sid = new Uint8Array(randomBytes(16));
    const item: QueueItem = {
      sid,
      rsa: rsaUrl.url,
      sealedAddr: sealAddress(opts.sealKey, sid, addr),
      payload,
      created: now,
      expires: now + ttl * 1000,
      attempts: 0,
    };
    const r = await store.enqueue(item, idem, t.spentKey, now + 40 * DAY, now + Math.floor(Math.random() * retry.firstDelayMs));
    if (r.kind === 'double-spend') return problem(reply.header('www-authenticate', tokens().wwwAuthenticate()), 401, 'Token refused', 'token already spent');
    if (r.kind === 'duplicate') return reply.code(202).send({ sid: b64u(r.sid) });
    wakeSoon();
    return reply.code(202).send({ sid: b64u(sid) });
  });

  app.get('/v1/submissions/:sid', async (req, reply) => {
    const sid = fromB64u((req.params as Record<string, string>).sid);
    const state = sid && sid.length === 16 ? await store.state(sid) : null;
    if (!state) return problem(reply, 404, 'Unknown submission');
    return { state };
  });

  // ---- blobs --------------------------------------------------------------------------------
  app.post('/v1/blobs', { bodyLimit: limits.maxBlob }, async (req, reply) => {
    if (req.headers['content-type'] !== 'application/octet-stream') return problem(reply, 415, 'Unsupported media type', 'send application/octet-stream');
    const data = rawBody(req);
    if (data.length === 0) return problem(reply, 400, 'Empty blob');
    const q = req.query as Record<string, string | undefined>;
    const ttl = q.ttl_s === undefined ? 7 * 86_400 : Number(q.ttl_s);
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > limits.maxBlobTtlS) return problem(reply, 400, 'Malformed ttl_s', `ttl_s must be 1..${limits.maxBlobTtlS}`);
    const t = tokens().verifyHeader(req.headers.authorization);
    if (t.kind !== 'ok') return problem(reply.header('www-authenticate', tokens().wwwAuthenticate()), 401, 'Token refused', t.reason);
    const id = new Uint8Array(randomBytes(32));
    const now = clock.now();
    const expires = now + ttl * 1000;
    if (!(await store.putBlob({ id, data, expires }, t.spentKey, now + 40 * DAY))) return problem(reply, 401, 'Token refused', 'token already spent');
    return reply.code(201).send({ blob_id: b64u(id), get_url: `${baseUrl}/v1/blobs/${b64u(id)}`, expires: seconds(expires) });
  });

  app.get('/v1/blobs/:id', async (req, reply) => {
    const id = fromB64u((req.params as Record<string, string>).id);
    const data = id && id.length === 32 ? await store.getBlob(id, clock.now()) : null;
    if (!data) return problem(reply, 404, 'Unknown or expired blob');
    return reply.type('application/octet-stream').send(Buffer.from(data));
  });

  // ---- RSA descriptor proxy (a second vantage point for key-consistency checks) -------------
  // Paid (one token per lookup, cached or not), and only what checkDescriptor accepts is passed
  // on: the SSA is not a free fetcher of arbitrary URLs.
  const descriptorCache = new Map<string, { at: number; body: SignedDescriptor }>();
  app.get('/v1/rsa-descriptor', async (req, reply) => {
    const target = checkServiceUrl((req.query as Record<string, unknown>).rsa, outbound.policy);
    if (!target.ok) return problem(reply, 400, 'Malformed rsa', target.reason);
    const t = tokens().verifyHeader(req.headers.authorization);
    if (t.kind !== 'ok') return problem(reply.header('www-authenticate', tokens().wwwAuthenticate()), 401, 'Token refused', t.reason);
    if (!(await store.spendToken(t.spentKey, clock.now() + 40 * DAY)))
      return problem(reply.header('www-authenticate', tokens().wwwAuthenticate()), 401, 'Token refused', 'token already spent');
    const hit = descriptorCache.get(target.url);
    if (hit && clock.now() - hit.at < 60_000) return hit.body;
    let answer: { status: number; body: Buffer };
    try {
      answer = await outbound.request(`${target.url}/.well-known/communicator.json`, {
        method: 'GET',
        timeoutMs: limits.descriptorTimeoutMs,
        maxBytes: limits.maxAnswerBytes,
      });
    } catch (e) {
      return problem(reply, 502, 'RSA descriptor unavailable', e instanceof OutboundError ? e.message : 'fetch failed');
    }
    if (answer.status !== 200) return problem(reply, 502, 'RSA descriptor unavailable', 'the RSA did not answer 200');
    const checked = checkDescriptor(answer.body, clock.now());
    if (!checked.ok) return problem(reply, 502, 'RSA descriptor unavailable', checked.reason);
    if (descriptorCache.size >= 1000) descriptorCache.clear();
    descriptorCache.set(target.url, { at: clock.now(), body: checked.descriptor });
    return checked.descriptor;
  });

  // ---- delivery worker ----------------------------------------------------------------------
  // A pipeline, not passes: up to `concurrency` items are in flight at once; due items are leased
  // in chunks, grouped per RSA into batches of up to `batchSize` (POST /v1/deliver/batch, one
  // signature per batch; an RSA without that endpoint gets single POST /v1/deliver), and every
  // finished batch frees its slots and claims more at once.
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  let inFlight = 0;
  /** Items in flight per RSA (for perRsaConcurrency); an RSA with none has no entry. */
  const inFlightByRsa = new Map<string, number>();
  let claimed = 0;
  let claiming: Promise<void> | null = null;
  let again = false;
  const batches = new Set<Promise<void>>();
  /** Per RSA base URL: does it take /v1/deliver/batch? (undefined = not tried yet) */
  const batchSupport = new Map<string, boolean>();
  const MAX_BATCH_BYTES = 1024 * 1024;

  /**
   * status -1: the URL is refused by the outbound policy (permanent); 0: network error or timeout
   * (retry). `unreachable`: the connection was refused or dropped (see probeUntilAnswering).
   */
  async function post(url: string, body: Uint8Array<ArrayBuffer>): Promise<{ status: number; json: unknown; unreachable?: boolean }> {
    try {
      const target = new URL(url);
      const res = await outbound.request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signRequest(serviceKey, keyid, 'POST', target.pathname + target.search, body, seconds(clock.now())) },
        body,
        timeoutMs: retry.requestTimeoutMs,
        maxBytes: limits.maxAnswerBytes,
      });
      let json: unknown = null;
      try {
        json = res.body.length > 0 ? JSON.parse(res.body.toString('utf8')) : null;
      } catch {
        /* not JSON */
      }
      return { status: res.status, json };
    } catch (e) {
      if (e instanceof OutboundError && e.kind === 'refused') return { status: -1, json: null };
      return { status: 0, json: null, unreachable: e instanceof OutboundError && e.code !== undefined && UNREACHABLE_CODES.has(e.code) };
    }
  }

  const utf8enc = new TextEncoder();
  function wire(item: QueueItem, addr: Uint8Array, now: number): { addr: string; ttl_s: number; payload: string } {
    return { addr: b64u(addr), ttl_s: Math.max(1, Math.ceil((item.expires - now) / 1000)), payload: b64u(item.payload) };
  }

  /** Per item: the HTTP status (what /v1/deliver answered or would have) and, for 429, the RSA's retry-after in seconds. */
  type ItemAnswer = { status: number; retryAfterS: number; unreachable?: boolean };

  function retryAfterOf(v: unknown): number {
    return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.min(v, limits.maxRetryAfterS) : 0;
  }

  async function send(rsa: string, items: QueueItem[], addrs: Uint8Array[]): Promise<ItemAnswer[]> {
    const now = clock.now();
    if (items.length > 1 && batchSupport.get(rsa) !== false) {
      const body = utf8enc.encode(JSON.stringify({ items: items.map((it, k) => wire(it, addrs[k]!, now)) }));
      const r = await post(`${rsa}/v1/deliver/batch`, body);
      const answer = r.json as { results?: unknown; retry_after_s?: unknown } | null;
      const results = answer?.results;
      if (r.status === 200 && Array.isArray(results) && results.length === items.length && results.every((x) => typeof x === 'number')) {
        batchSupport.set(rsa, true);
        const after = Array.isArray(answer!.retry_after_s) ? answer!.retry_after_s : [];
        return (results as number[]).map((status, k) => ({ status, retryAfterS: retryAfterOf(after[k]) }));
      }
      if (r.status === 404 || r.status === 405) batchSupport.set(rsa, false);
      else return items.map(() => ({ status: r.status, retryAfterS: 0, unreachable: r.unreachable })); // 401, 429, 5xx, network: the whole batch is retried
    }
    return Promise.all(
      items.map(async (it, k) => {
        const r = await post(`${rsa}/v1/deliver`, utf8enc.encode(JSON.stringify(wire(it, addrs[k]!, now))));
        return { status: r.status, retryAfterS: retryAfterOf((r.json as { retry_after_s?: unknown } | null)?.retry_after_s), unreachable: r.unreachable };
      }),
    );
  }

  async function deliverBatch(rsa: string, claimed: QueueItem[]): Promise<void> {
    const now = clock.now();
    const items: QueueItem[] = [];
    const addrs: Uint8Array[] = [];
    for (const item of claimed) {
      const addr = now < item.expires ? openAddress(opts.sealKey, item.sid, item.sealedAddr) : null;
      if (!addr) await store.markExpired(item.sid); // expired (or the seal key changed)
      else {
        items.push(item);
        addrs.push(addr);
      }
    }
    if (items.length === 0) return;
    const answers = await send(rsa, items, addrs);
    if (answers.some((a) => a.unreachable)) probeUntilAnswering(rsa);
    const forwarded: Uint8Array[] = [];
    const later: Promise<void>[] = [];
    items.forEach((item, k) => {
      const { status, retryAfterS } = answers[k]!;
      if (status === 202) return void forwarded.push(item.sid);
      // Permanent: the RSA will never take it, or the outbound policy refuses its URL.
      if (status === 400 || status === 413 || status === -1) return void later.push(store.markExpired(item.sid));
      const attempts = item.attempts + 1;
      // A "retry later" (429 with a time: a limit at the RSA) is honoured as given, spread by up
      // to 20 % so deferred items do not all return at once; anything else backs off.
      const delay =
        status === 429 && retryAfterS > 0
          ? retryAfterS * 1000 * (1 + 0.2 * Math.random())
          : Math.min(retry.maxMs, retry.baseMs * 2 ** Math.min(attempts - 1, 20)) * (0.5 + Math.random());
      const next = Math.ceil(clock.now() + delay);
      later.push(next >= item.expires ? store.markExpired(item.sid) : store.reschedule(item.sid, next, attempts));
    });
    later.push(store.markForwarded(forwarded));
    await Promise.all(later);
  }

  // ---- RSAs that stopped answering ----------------------------------------------------------
  // A killed or restarting RSA refuses connections; its items back off (up to maxMs) and would
  // sit out that backoff after it is back. One probe loop per such RSA finds it back instead.
  const probes = new Map<string, { timer: NodeJS.Timeout | null; running: Promise<void> | null }>();
  const MAX_PROBED_RSAS = 1024;
  const PROBE_FAST_FOR_MS = 30_000;

  function probeUntilAnswering(rsa: string): void {
    if (retry.probeMs <= 0 || closed || probes.has(rsa) || probes.size >= MAX_PROBED_RSAS) return;
    const since = performance.now();
    let interval = retry.probeMs;
    const entry: { timer: NodeJS.Timeout | null; running: Promise<void> | null } = { timer: null, running: null };
    probes.set(rsa, entry);
    const schedule = () => {
      entry.timer = setTimeout(() => (entry.running = attempt().finally(() => (entry.running = null))), interval);
      entry.timer.unref();
    };
    const attempt = async (): Promise<void> => {
      entry.timer = null;
      if (closed) return;
      let answered = false;
      try {
        // Any HTTP answer means something listens there again; the deliveries will tell the rest.
        await outbound.request(`${rsa}/.well-known/communicator.json`, {
          method: 'GET',
          timeoutMs: Math.min(retry.requestTimeoutMs, 2000),
          maxBytes: limits.maxAnswerBytes,
        });
        answered = true;
      } catch {
        /* still down */
      }
      if (closed) return;
      if (!answered) {
        if (performance.now() - since > PROBE_FAST_FOR_MS) interval = Math.min(Math.max(retry.maxMs, retry.probeMs), interval * 2);
        return schedule();
      }
      try {
        await store.retryNow(rsa, clock.now());
      } catch (e) {
        if (!closed) console.error('[ssa] retry after an RSA came back failed:', e);
      }
      probes.delete(rsa);
      wake();
    };
    schedule();
  }

  function start(rsa: string, chunk: QueueItem[]): void {
    inFlight += chunk.length;
    inFlightByRsa.set(rsa, (inFlightByRsa.get(rsa) ?? 0) + chunk.length);
    const p = deliverBatch(rsa, chunk)
      .catch((e) => {
        if (!closed) console.error('[ssa] delivery bookkeeping failed:', e);
      })
      .finally(() => {
        inFlight -= chunk.length;
        const left = inFlightByRsa.get(rsa)! - chunk.length;
        if (left > 0) inFlightByRsa.set(rsa, left);
        else inFlightByRsa.delete(rsa);
        batches.delete(p);
        wake();
      });
    batches.add(p);
  }

  async function claimLoop(): Promise<void> {
    do {
      again = false;
      while (!closed && inFlight < retry.concurrency) {
        // RSAs at their cap sit out this claim (one claim can take an RSA past it by at most its size).
        const full: string[] = [];
        for (const [rsa, n] of inFlightByRsa) if (n >= retry.perRsaConcurrency) full.push(rsa);
        const now = clock.now();
        const oldest = retry.newestFirstAfterMs > 0 ? await store.oldestDue(now, full) : null;
        const newestFirst = oldest !== null && now - oldest > retry.newestFirstAfterMs;
        const items = await store.claimDue(now, Math.min(retry.concurrency - inFlight, retry.batchSize * 4), retry.requestTimeoutMs * 3, full, newestFirst);
        if (items.length === 0 || closed) break;
        claimed += items.length;
        const perRsa = new Map<string, QueueItem[]>();
        for (const it of items) {
          const list = perRsa.get(it.rsa) ?? [];
          list.push(it);
          perRsa.set(it.rsa, list);
        }
        for (const [rsa, list] of perRsa) {
          let chunk: QueueItem[] = [];
          let bytes = 0;
          for (const it of list) {
            if (chunk.length >= retry.batchSize || (chunk.length > 0 && bytes + it.payload.length > MAX_BATCH_BYTES)) {
              start(rsa, chunk);
              chunk = [];
              bytes = 0;
            }
            chunk.push(it);
            bytes += it.payload.length;
          }
          if (chunk.length) start(rsa, chunk);
        }
      }
    } while (again && !closed && inFlight < retry.concurrency);
  }

  /** After a submit: wake within coalesceMs (one timer for all the submits of that window). */
  let coalesceTimer: NodeJS.Timeout | null = null;
  function wakeSoon(): void {
    if (retry.coalesceMs <= 0) return wake();
    if (closed || coalesceTimer) return;
    coalesceTimer = setTimeout(() => {
      coalesceTimer = null;
      wake();
    }, retry.coalesceMs);
  }

  function wake(): void {
    if (closed) return;
    if (claiming) {
      again = true;
      return;
    }
    claiming = claimLoop()
      .catch((e) => {
        if (!closed) console.error('[ssa] worker pass failed:', e);
      })
      .finally(() => {
        claiming = null;
      });
  }

  const tick = (): void => {
    wake();
    timer = setTimeout(tick, retry.pollMs);
    timer.unref();
  };
  tick();
  const sweeper = setInterval(() => void store.sweep(clock.now()).catch((e) => console.error('[ssa] sweep failed:', e)), 60_000);
  sweeper.unref();

  const url = await listen(app, opts.host ?? '127.0.0.1', opts.port ?? 0);
  baseUrl = (opts.publicUrl ?? url).replace(/\/+$/, '');
  if (!originInfo) originInfo = new URL(url).host;
  verifier = new TokenVerifier(opts.issuerName, originInfo, opts.tokenKeys.map((tokenKey) => ({ tokenKey })));

  return {
    url,
    originInfo,
    serviceKey: serviceKey.publicKey,
    app,
    store,
    async flush() {
      // Until a round claims nothing and nothing is in flight.
      let before: number;
      do {
        before = claimed;
        wake();
        while (claiming || batches.size > 0) await Promise.all([claiming, ...batches]);
      } while (!closed && claimed !== before);
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      if (coalesceTimer) clearTimeout(coalesceTimer);
      clearInterval(sweeper);
      for (const p of probes.values()) if (p.timer) clearTimeout(p.timer);
      await app.close();
      while (claiming || batches.size > 0) await Promise.all([claiming, ...batches]);
      await Promise.all([...probes.values()].map((p) => p.running));
      outbound.close();
      await store.close();
    },
  };
}
