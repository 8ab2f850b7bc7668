/**
 * Small HTTP/WebSocket clients for the services (used by the tests, the load test, the hub and
 * later by the client SDK's services delivery adapter). Node-only (node:crypto for Ed25519 and
 * token blinding); no imports from the client package.
 */
import { randomBytes } from 'node:crypto';
import { TokenChallenge } from '@cloudflare/privacypass-ts';
import WebSocket from 'ws';
import { b64u, fromB64u } from './bytes.ts';
import { verifyDescriptorSignature } from './common.ts';
import { ed25519FromSeed, ed25519Sign, generateEd25519, signRequest, type Ed25519Key } from './httpsig.ts';
import { wsAuthMessage } from './rsa.ts';
import { generateInboxDhKey, openStored } from './seal.ts';
import { authorizationHeader, parseIssuerPublicKey, TokenMinter, type IssuerPublicKey } from './tokens.ts';

export interface Problem {
  status: number;
  title?: string;
  detail?: string;
}

async function problemOf(res: Response): Promise<Problem> {
  const text = await res.text().catch(() => '');
  try {
    const j = JSON.parse(text) as { title?: string; detail?: string };
    return { status: res.status, title: j.title, detail: j.detail };
  } catch {
    return { status: res.status, title: text.slice(0, 200) };
  }
}

export class ServiceError extends Error {
  constructor(readonly problem: Problem) {
    super(`${problem.status} ${problem.title ?? ''}${problem.detail ? `: ${problem.detail}` : ''}`);
  }
}

async function json<T>(res: Response): Promise<T> {
  if (!res.ok) throw new ServiceError(await problemOf(res));
  return (await res.json()) as T;
}

function trim(url: string): string {
  return url.replace(/\/+$/, '');
}

export interface Descriptor {
  serviceKey: Uint8Array;
  body: Record<string, unknown>;
}

/** Fetches and verifies a signed descriptor; with `pinnedKey`, also checks the service key. */
export async function fetchDescriptor(url: string, pinnedKey?: Uint8Array): Promise<Descriptor> {
  const d = await json<{ payload: string; sig: string }>(await fetch(`${trim(url)}/.well-known/communicator.json`));
  return verifyDescriptor(d, pinnedKey);
}

export function verifyDescriptor(d: { payload: string; sig: string }, pinnedKey?: Uint8Array): Descriptor {
  const payload = fromB64u(d.payload);
  const sig = fromB64u(d.sig);
  if (!payload || !sig) throw new Error('descriptor: malformed');
  const body = JSON.parse(new TextDecoder().decode(payload)) as Record<string, unknown>;
  const serviceKey = fromB64u(body.service_key);
  if (!serviceKey || !verifyDescriptorSignature(serviceKey, payload, sig)) throw new Error('descriptor: bad signature');
  if (pinnedKey && b64u(pinnedKey) !== b64u(serviceKey)) throw new Error('descriptor: service key differs from the pinned key');
  return { serviceKey, body };
}

export interface TokenInfo {
  issuerName: string;
  originInfo: string;
  tokenKey: Uint8Array;
  challenge: TokenChallenge;
}

export function tokenInfoOf(d: Descriptor): TokenInfo {
  const t = d.body.token as { issuer_name: string; origin_info: string; token_keys: string[] };
  const tokenKey = fromB64u(t.token_keys[0])!;
  return { issuerName: t.issuer_name, originInfo: t.origin_info, tokenKey, challenge: new TokenChallenge(2, t.issuer_name, new Uint8Array(0), [t.origin_info]) };
}

// ---------------------------------------------------------------------------------------------

export class IssuerClient {
  private readonly keyCache = new Map<string, IssuerPublicKey>();
  constructor(readonly url: string, readonly secret: string) {}

  static async register(url: string): Promise<IssuerClient> {
    const r = await json<{ secret: string }>(await fetch(`${trim(url)}/v1/accounts`, { method: 'POST' }));
    return new IssuerClient(trim(url), r.secret);
  }

  async quota(): Promise<Record<string, { used: number; limit: number }>> {
    return json(await fetch(`${this.url}/v1/quota`, { headers: { authorization: `Bearer ${this.secret}` } }));
  }

  /**
   * Mints n tokens (batches of ≤ 100) for `info`'s origin. The issuer picks the key, and so the
   * quota class, from the requests' truncated_token_key_id (RFC 9578 §6.2): `info.tokenKey`.
   */
  async mint(info: TokenInfo, n: number): Promise<Uint8Array[]> {
    const id = b64u(info.tokenKey);
    let key = this.keyCache.get(id);
    if (!key) this.keyCache.set(id, (key = parseIssuerPublicKey(info.tokenKey)));
    const minter = new TokenMinter(key, info.challenge);
    const out: Uint8Array[] = [];
    while (out.length < n) {
      const pending = Array.from({ length: Math.min(100, n - out.length) }, () => minter.begin());
      const r = await json<{ responses: string[] }>(
        await fetch(`${this.url}/v1/token-request/batch`, {
          method: 'POST',
          headers: { authorization: `Bearer ${this.secret}`, 'content-type': 'application/json' },
          body: JSON.stringify({ requests: pending.map((p) => b64u(p.request)) }),
        }),
      );
      r.responses.forEach((resp, i) => out.push(pending[i]!.finalize(fromB64u(resp)!)));
    }
    return out;
  }
}

/** A pre-fetched supply of tokens for one origin, refilled in batches. */
export class TokenWallet {
  private readonly tokens: Uint8Array[] = [];
  constructor(private readonly issuer: IssuerClient, readonly info: TokenInfo, private readonly batch = 50) {}
  async take(): Promise<Uint8Array> {
    if (this.tokens.length === 0) this.tokens.push(...(await this.issuer.mint(this.info, this.batch)));
    return this.tokens.pop()!;
  }
  async takeMany(n: number): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (let i = 0; i < n; i++) out.push(await this.take());
    return out;
  }
}

// ---------------------------------------------------------------------------------------------

export type SubmitResult = { ok: true; sid: string } | { ok: false; problem: Problem };

export class SsaClient {
  constructor(readonly url: string) {
    this.url = trim(url);
  }
  descriptor(pinnedKey?: Uint8Array): Promise<Descriptor> {
    return fetchDescriptor(this.url, pinnedKey);
  }
  async submit(item: { rsa: string; addr: Uint8Array; payload: Uint8Array; ttlS?: number; idem?: Uint8Array }, token: Uint8Array | null): Promise<SubmitResult> {
    const res = await fetch(`${this.url}/v1/submit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: authorizationHeader(token) } : {}) },
      body: JSON.stringify({
        rsa: item.rsa,
        addr: b64u(item.addr),
        payload: b64u(item.payload),
        ttl_s: item.ttlS ?? 86_400,
        idem: b64u(item.idem ?? new Uint8Array(randomBytes(16))),
      }),
    });
    if (res.status === 202) return { ok: true, sid: ((await res.json()) as { sid: string }).sid };
    return { ok: false, problem: await problemOf(res) };
  }
  async status(sid: string): Promise<string> {
    return (await json<{ state: string }>(await fetch(`${this.url}/v1/submissions/${sid}`))).state;
  }
  async uploadBlob(data: Uint8Array, token: Uint8Array, ttlS?: number): Promise<{ blob_id: string; get_url: string; expires: number }> {
    return json(
      await fetch(`${this.url}/v1/blobs${ttlS ? `?ttl_s=${ttlS}` : ''}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', authorization: authorizationHeader(token) },
        body: Buffer.from(data),
      }),
    );
  }
  async getBlob(getUrl: string): Promise<Uint8Array | null> {
    const res = await fetch(getUrl);
    if (res.status === 404) return null;
    if (!res.ok) throw new ServiceError(await problemOf(res));
    return new Uint8Array(await res.arrayBuffer());
  }
  /** An RSA's descriptor as seen through this SSA (second vantage point); costs one "ssa" token. */
  async rsaDescriptor(rsa: string, token: Uint8Array, pinnedKey?: Uint8Array): Promise<Descriptor> {
    return verifyDescriptor(
      await json(await fetch(`${this.url}/v1/rsa-descriptor?rsa=${encodeURIComponent(rsa)}`, { headers: { authorization: authorizationHeader(token) } })),
      pinnedKey,
    );
  }
}

// ---------------------------------------------------------------------------------------------

export interface PublishedAddressKey {
  kid: number;
  class: 'ephemeral' | 'long';
  X: Uint8Array;
  deriveUntil: number;
  resolveUntil: number;
}

export function addressKeysOf(d: Descriptor): PublishedAddressKey[] {
  return (d.body.address_keys as { kid: number; class: 'ephemeral' | 'long'; X: string; derive_until: number; resolve_until: number }[]).map((k) => ({
    kid: k.kid,
    class: k.class,
    X: fromB64u(k.X)!,
    deriveUntil: k.derive_until,
    resolveUntil: k.resolve_until,
  }));
}

/** The key of `cls` that is valid for derivation now and lives longest. */
export function currentAddressKey(keys: PublishedAddressKey[], cls: 'ephemeral' | 'long', nowS = Date.now() / 1000): PublishedAddressKey {
  const k = keys.filter((x) => x.class === cls && x.deriveUntil > nowS).sort((a, b) => b.deriveUntil - a.deriveUntil)[0];
  if (!k) throw new Error(`no ${cls} address key valid now`);
  return k;
}

export interface SeedGrant {
  seedId: Uint8Array;
  M: Uint8Array;
  notAfter: number;
}

export interface RsaMessage {
  mid: Uint8Array;
  seedId: Uint8Array;
  receivedAt: number;
  stored: Uint8Array;
  cursor?: string;
}

export interface InboxCredentials {
  inboxId: Uint8Array;
  authSeed: Uint8Array;
  dhPrivateKey: Uint8Array;
  dhPublicKey: Uint8Array;
}

export class RsaClient {
  constructor(readonly url: string) {
    this.url = trim(url);
  }
  descriptor(pinnedKey?: Uint8Array): Promise<Descriptor> {
    return fetchDescriptor(this.url, pinnedKey);
  }
  /** Generates the inbox keys and creates the inbox (costs `tokens.length` tokens, usually 5). */
  async createInbox(tokens: Uint8Array[]): Promise<InboxClient> {
    const auth = generateEd25519();
    const dh = await generateInboxDhKey();
    const r = await json<{ inbox_id: string }>(
      await fetch(`${this.url}/v1/inboxes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ auth_key: b64u(auth.publicKey), dh_key: b64u(dh.publicKey), tokens: tokens.map(b64u) }),
      }),
    );
    return new InboxClient(this.url, { inboxId: fromB64u(r.inbox_id)!, authSeed: auth.seed, dhPrivateKey: dh.privateKey, dhPublicKey: dh.publicKey });
  }
}

export class InboxClient {
  private readonly key: Ed25519Key;
  readonly id: string;
  constructor(readonly url: string, readonly creds: InboxCredentials) {
    this.key = ed25519FromSeed(creds.authSeed);
    this.id = b64u(creds.inboxId);
  }

  private async signed(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<Response> {
    const bytes = body === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(body));
    const headers: Record<string, string> = { ...signRequest(this.key, this.id, method, path, bytes), ...extra };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(`${this.url}${path}`, { method, headers, body: body === undefined ? undefined : Buffer.from(bytes) });
  }

  async requestSeeds(token: Uint8Array, count = 10, notAfterS?: number): Promise<SeedGrant[]> {
    const r = await json<{ seeds: { seed_id: string; M: string; not_after: number }[] }>(
      await this.signed('POST', `/v1/inboxes/${this.id}/seeds`, { count, ...(notAfterS ? { not_after: notAfterS } : {}) }, { authorization: authorizationHeader(token) }),
    );
    return r.seeds.map((s) => ({ seedId: fromB64u(s.seed_id)!, M: fromB64u(s.M)!, notAfter: s.not_after }));
  }

  async setSeedState(seedId: Uint8Array, state: 'active' | 'paused' | 'revoked'): Promise<void> {
    const res = await this.signed('PATCH', `/v1/inboxes/${this.id}/seeds/${b64u(seedId)}`, { state });
    if (res.status !== 204) throw new ServiceError(await problemOf(res));
  }

  async fetch(after?: string, limit = 100): Promise<{ messages: RsaMessage[]; cursor: string; droppedByLimit: Record<string, number> }> {
    const q = new URLSearchParams({ limit: String(limit), ...(after ? { after } : {}) });
    const r = await json<{ messages: { mid: string; seed_id: string; received_at: number; stored: string }[]; cursor: string; dropped_by_limit: Record<string, number> }>(
      await this.signed('GET', `/v1/inboxes/${this.id}/messages?${q}`),
    );
    return {
      messages: r.messages.map((m) => ({ mid: fromB64u(m.mid)!, seedId: fromB64u(m.seed_id)!, receivedAt: m.received_at, stored: fromB64u(m.stored)! })),
      cursor: r.cursor,
      droppedByLimit: r.dropped_by_limit,
    };
  }

  async ack(mids: Uint8Array[]): Promise<void> {
    const res = await this.signed('POST', `/v1/inboxes/${this.id}/ack`, { mids: mids.map(b64u) });
    if (res.status !== 204) throw new ServiceError(await problemOf(res));
  }

  async delete(): Promise<void> {
    const res = await this.signed('DELETE', `/v1/inboxes/${this.id}`);
    if (res.status !== 204) throw new ServiceError(await problemOf(res));
  }

  /** Opens a stored message (HPKE to the inbox dh key); null if it does not open. */
  open(m: RsaMessage): Promise<Uint8Array | null> {
    return openStored(this.creds.dhPrivateKey, m.mid, m.stored);
  }

  /**
   * WebSocket push. Resolves once authenticated; `onMessage` gets every stored message (backlog
   * first, from `after`), `ack(mids)` acknowledges over the socket.
   */
  async connect(onMessage: (m: RsaMessage) => void, after?: string): Promise<{ ack(mids: Uint8Array[]): void; close(): void; closed: Promise<void> }> {
    const ws = new WebSocket(`${this.url.replace(/^http/, 'ws')}/v1/inboxes/${this.id}/ws`);
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => (resolveClosed = r));
    ws.on('close', () => resolveClosed());
    // Messages are handed to onMessage only once the caller holds the connection handle (a
    // backlog can arrive in the same packet as 'ready'); until then they queue, in order.
    let live = false;
    const early: RsaMessage[] = [];
    await new Promise<void>((resolve, reject) => {
      ws.on('error', reject);
      ws.on('close', (code, reason) => reject(new Error(`websocket closed: ${code} ${reason}`)));
      ws.on('message', (data) => {
        const f = JSON.parse(String(data)) as Record<string, unknown>;
        if (f.t === 'challenge') {
          const ts = Math.floor(Date.now() / 1000);
          const sig = ed25519Sign(this.key, wsAuthMessage(this.creds.inboxId, fromB64u(f.nonce)!, ts));
          ws.send(JSON.stringify({ t: 'auth', ts, sig: b64u(sig), ...(after ? { after } : {}) }));
        } else if (f.t === 'ready') resolve();
        else if (f.t === 'msg') {
          const m: RsaMessage = { mid: fromB64u(f.mid)!, seedId: fromB64u(f.seed_id)!, receivedAt: Number(f.received_at), stored: fromB64u(f.stored)!, cursor: String(f.cursor) };
          if (live) onMessage(m);
          else early.push(m);
        }
      });
    });
    setImmediate(() => {
      live = true;
      for (const m of early.splice(0)) onMessage(m);
    });
    return {
      ack: (mids) => ws.readyState === ws.OPEN && ws.send(JSON.stringify({ t: 'ack', mids: mids.map(b64u) })),
      close: () => ws.close(),
      closed,
    };
  }
}

