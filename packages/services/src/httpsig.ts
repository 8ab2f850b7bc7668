/**
 * Request signatures: a fixed profile of HTTP Message Signatures (RFC 9421) with Ed25519.
 *
 *   Content-Digest: sha-256=:<base64 SHA-256(body)>:            (RFC 9530; empty body for GET)
 *   Signature-Input: sig1=("@method" "@path" "@query" "content-digest");created=<unix s>;nonce="<b64u 16 B>";keyid="<b64u>";alg="ed25519"
 *   Signature: sig1=:<base64 Ed25519 signature over the signature base>:
 *
 * Signature base (RFC 9421 §2.5), lines joined by "\n":
 *   "@method": POST
 *   "@path": /v1/deliver
 *   "@query": ?after=3        ("?" when there is no query)
 *   "content-digest": sha-256=:...:
 *   "@signature-params": ("@method" "@path" "@query" "content-digest");created=...;nonce="...";keyid="...";alg="ed25519"
 *
 * keyid is the base64url raw Ed25519 public key for SSA→RSA deliveries and the inbox id for
 * inbox requests. Receivers reject `created` more than 120 s away from their clock and any
 * nonce they have seen while its signature could still be accepted (until created + 120 s).
 */
import { createHash, createPrivateKey, hash, createPublicKey, randomBytes, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { MAX_SIGNATURE_SKEW_S, signatureBase, signatureParams, splitPathAndQuery } from '@umbra/protocol/services';
import { b64u, fromB64u } from './bytes.ts';
import { HttpProblem } from './common.ts';

// The profile's strings (covered components, params, base) are the shared contract's.
export const MAX_SKEW_S = MAX_SIGNATURE_SKEW_S;

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface Ed25519Key {
  privateKey: KeyObject;
  /** 32-byte raw public key. */
  publicKey: Uint8Array;
  /** 32-byte raw seed (secret). */
  seed: Uint8Array;
}

export function ed25519FromSeed(seed: Uint8Array): Ed25519Key {
  if (seed.length !== 32) throw new Error('Ed25519 seed must be 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey: new Uint8Array(spki.subarray(spki.length - 32)), seed };
}

export function generateEd25519(): Ed25519Key {
  return ed25519FromSeed(new Uint8Array(randomBytes(32)));
}

const publicKeyCache = new Map<string, KeyObject>();

export function ed25519PublicKey(raw: Uint8Array): KeyObject | null {
  if (raw.length !== 32) return null;
  const id = b64u(raw);
  let key = publicKeyCache.get(id);
  if (!key) {
    try {
      // JWK, not SPKI DER: Node imports an OKP JWK from the raw bytes (~7 µs here) while DER goes
      // through OpenSSL's decoders (~75-90 µs); every new WebSocket or inbox key pays it once.
      key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: id }, format: 'jwk' });
    } catch {
      return null;
    }
    if (publicKeyCache.size > 10_000) publicKeyCache.clear();
    publicKeyCache.set(id, key);
  }
  return key;
}

export function ed25519Sign(key: Ed25519Key, message: Uint8Array): Uint8Array {
  return new Uint8Array(cryptoSign(null, message, key.privateKey));
}

export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const key = ed25519PublicKey(publicKey);
  if (!key || signature.length !== 64) return false;
  try {
    return cryptoVerify(null, message, key, signature);
  } catch {
    return false;
  }
}

export function contentDigest(body: Uint8Array): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

/** Headers that sign `method pathAndQuery body` with `key` under `keyid`. */
export function signRequest(
  key: Ed25519Key,
  keyid: string,
  method: string,
  pathAndQuery: string,
  body: Uint8Array,
  nowS: number = Math.floor(Date.now() / 1000),
): Record<string, string> {
  const digest = contentDigest(body);
  const params = signatureParams(nowS, b64u(new Uint8Array(randomBytes(16))), keyid);
  const { path, query } = splitPathAndQuery(pathAndQuery);
  const sig = ed25519Sign(key, new TextEncoder().encode(signatureBase(method, path, query, digest, params)));
  return {
    'content-digest': digest,
    'signature-input': `sig1=${params}`,
    signature: `sig1=:${Buffer.from(sig).toString('base64')}:`,
  };
}

export type SignatureCheck = { kind: 'ok'; keyid: string } | { kind: 'refused'; reason: string };

/** What a nonce store says about a nonce: first sight (now remembered), a replay, past its expiry, or no room. */
export type NonceVerdict = 'new' | 'replay' | 'expired' | 'full';

/**
 * Where verified signature nonces are remembered. Small on purpose: issue 18 moves it to the
 * database, and a DB-backed store only has to implement this (sync or async).
 */
export interface NonceStore {
  /**
   * 'replay' if `nonce` is remembered; 'expired' if `expiresAtMs` (the last instant its
   * signature could be accepted) has passed by the store's clock; otherwise 'new', remembered
   * at least until `expiresAtMs`, or 'full' (not remembered) when the store holds its cap of
   * live nonces. The same `nonce` always comes with
   * the same `expiresAtMs`: verifyRequest's nonce key contains the signed `created` it is
   * derived from (a replay cannot change it without breaking the signature).
   */
  checkAndRemember(nonce: string, expiresAtMs: number): NonceVerdict | Promise<NonceVerdict>;
  /** Milliseconds until a 'full' store frees room (for Retry-After). */
  retryAfterMs(): number;
}

/** Width of one expiry window: a nonce is kept at most this much past its expiry (≤ 12.5% of the cache held by expired nonces). */
export const NONCE_WINDOW_MS = 30_000;
/**
 * Live nonces one cache holds: 1M ÷ 240 s ≈ 4,200 verified signed requests per second sustained
 * (nonceKey keys: ≈ 55 B of heap each, ≈ 55 MB at the cap: bench/nonce-cache.ts). At the cap new signed
 * requests are refused with 503 + Retry-After until the oldest window expires: forgetting a
 * live nonce instead would let its request be replayed.
 */
export const MAX_LIVE_NONCES = 1_000_000;

export interface NonceCacheOptions {
  maxLive?: number;
  windowMs?: number;
}

/**
 * In-memory NonceStore (per process) in time buckets: window w holds the nonces that expire in
 * [w·W, (w+1)·W), and is dropped whole once all of them have expired. Since a nonce's expiry is
 * fixed by the nonce (see NonceStore), a replay lands in the window of the first sight: one set
 * lookup and one insert per request, whatever the number of live nonces (looking in every live
 * window instead cost 3× as much at 1M, bench/nonce-cache.ts).
 */
export class NonceCache implements NonceStore {
  /** Window index → nonces expiring in it. Few entries (see above), so a Map is a fine ring. */
  private readonly windows = new Map<number, Set<string>>();
  private live = 0;
  /** Window index of the last expiry sweep (one sweep per window width, not per insert). */
  private swept = -Infinity;
  readonly maxLive: number;
  readonly windowMs: number;

  constructor(
    private readonly now: () => number,
    options: NonceCacheOptions = {},
  ) {
    this.maxLive = options.maxLive ?? MAX_LIVE_NONCES;
    this.windowMs = options.windowMs ?? NONCE_WINDOW_MS;
    if (!(this.maxLive >= 1) || !(this.windowMs >= 1)) throw new RangeError('NonceCache: maxLive and windowMs must be ≥ 1');
  }

  /** Live nonces (those in windows not yet dropped). */
  get size(): number {
    return this.live;
  }

  checkAndRemember(nonce: string, expiresAtMs: number): NonceVerdict {
    const now = this.now();
    this.expire(now);
    // By this clock, not the caller's (read a moment earlier): what is accepted here is kept in
    // a window that outlives its expiry, and a later replay is refused here or as too old.
    if (expiresAtMs < now) return 'expired';
    const index = Math.floor(expiresAtMs / this.windowMs);
    let w = this.windows.get(index);
    if (w?.has(nonce)) return 'replay';
    if (this.live >= this.maxLive) return 'full';
    if (w === undefined) {
      w = new Set();
      this.windows.set(index, w);
    }
    w.add(nonce);
    this.live++;
    return 'new';
  }

  retryAfterMs(): number {
    const now = this.now();
    let oldest = Infinity;
    for (const index of this.windows.keys()) oldest = Math.min(oldest, index);
    return oldest === Infinity ? 0 : Math.max(0, (oldest + 1) * this.windowMs - now);
  }

  private expire(now: number): void {
    const current = Math.floor(now / this.windowMs);
    if (current <= this.swept) return;
    this.swept = current;
    for (const [index, w] of this.windows) {
      if (index < current) {
        this.live -= w.size;
        this.windows.delete(index);
      }
    }
  }
}

/**
 * What the replay check remembers of a signature: 16 bytes of SHA-256(keyid:created:nonce) as a
 * 16-character string, the same size (≈ 55 B in the cache) whatever lengths the signer chose.
 * `created` is in it because it fixes the expiry, and a replay carries the same one (it is signed).
 */
export function nonceKey(keyid: string, created: string, nonce: string): string {
  return hash('sha256', `${keyid}:${created}:${nonce}`, 'buffer').toString('latin1', 0, 16);
}

export interface IncomingSigned {
  method: string;
  url: string; // path and query as received
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
}

function header(h: IncomingSigned['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

const INPUT_RE = /^sig1=(\("@method" "@path" "@query" "content-digest"\);created=(\d{1,12});nonce="([A-Za-z0-9_-]{16,64})";keyid="([A-Za-z0-9_-]{1,128})";alg="ed25519")$/;

/**
 * Parses and checks a signed request. `lookupKey(keyid)` returns the raw Ed25519 public key
 * allowed to sign for that keyid, or null. Throws HttpProblem 503 (with Retry-After) when the
 * nonce store is full, so that no live nonce is forgotten.
 */
export async function verifyRequest(
  req: IncomingSigned,
  lookupKey: (keyid: string) => Promise<Uint8Array | null> | Uint8Array | null,
  nonces: NonceStore,
  nowMs: number,
): Promise<SignatureCheck> {
  const input = header(req.headers, 'signature-input');
  const sigHeader = header(req.headers, 'signature');
  const digest = header(req.headers, 'content-digest');
  if (!input || !sigHeader || !digest) return { kind: 'refused', reason: 'missing request signature (Signature-Input, Signature, Content-Digest)' };
  const m = INPUT_RE.exec(input);
  if (!m) return { kind: 'refused', reason: 'Signature-Input does not match the required profile' };
  const [, params, createdS, nonce, keyid] = m as unknown as [string, string, string, string, string];
  const sm = /^sig1=:([A-Za-z0-9+/]+={0,2}):$/.exec(sigHeader);
  if (!sm) return { kind: 'refused', reason: 'malformed Signature header' };
  if (Math.abs(nowMs / 1000 - Number(createdS)) > MAX_SKEW_S) return { kind: 'refused', reason: 'signature too old or from the future' };
  if (digest !== contentDigest(req.body)) return { kind: 'refused', reason: 'Content-Digest does not match the body' };
  const publicKey = await lookupKey(keyid);
  if (!publicKey) return { kind: 'refused', reason: 'unknown signing key' };
  const { path, query } = splitPathAndQuery(req.url);
  const base = new TextEncoder().encode(signatureBase(req.method, path, query, digest, params));
  if (!ed25519Verify(publicKey, base, new Uint8Array(Buffer.from(sm[1]!, 'base64')))) return { kind: 'refused', reason: 'signature does not verify' };
  // Remembered only after the signature verifies, so only key holders can fill the store, and
  // only as long as the timestamp check would still accept this signature.
  const verdict = await nonces.checkAndRemember(nonceKey(keyid, createdS, nonce), (Number(createdS) + MAX_SKEW_S) * 1000);
  if (verdict === 'replay') return { kind: 'refused', reason: 'replayed signature nonce' };
  if (verdict === 'expired') return { kind: 'refused', reason: 'signature too old or from the future' };
  if (verdict === 'full') {
    const retryS = Math.max(1, Math.ceil(nonces.retryAfterMs() / 1000));
    throw new HttpProblem(503, 'Too many signed requests', `the replay cache is full; retry in ${retryS} s`, { 'retry-after': String(retryS) });
  }
  return { kind: 'ok', keyid };
}

export function keyidOf(publicKey: Uint8Array): string {
  return b64u(publicKey);
}

export function rawKeyFromKeyid(keyid: string): Uint8Array | null {
  const k = fromB64u(keyid);
  return k && k.length === 32 ? k : null;
}
