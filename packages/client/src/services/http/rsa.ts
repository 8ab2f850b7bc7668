/**
 * The receiving service agent's HTTP/WebSocket API: inbox creation (paid with tokens), seeds,
 * signed fetch/ack/delete, WebSocket push, and opening stored messages (HPKE to the inbox key).
 */
import { fromBase64Url, hpkeOpenBase, nobleProvider, toBase64Url, type CryptoProvider } from '@umbra/protocol';
import { authorizationHeader, LABEL_RSA_STORE, wsAuthMessage } from '@umbra/protocol/services';
import { fetchDescriptor, type Descriptor } from './descriptor.ts';
import { jsonOf, malformed, problemOf, ServiceError, trimUrl } from './problem.ts';
import { ed25519FromSeed, signRequest, type Ed25519Key } from './request-signing.ts';
import { WEBSOCKET_OPEN, frameText, webSocketConstructor, type WebSocketConstructor } from './websocket.ts';

/** What the clients run on: the crypto provider (Ed25519, X25519, HPKE) and the WebSocket. */
export interface ServiceClientOptions {
  readonly crypto?: CryptoProvider;
  readonly webSocket?: WebSocketConstructor;
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

/** enc (32 B) ‖ AEAD tag (16 B): the smallest stored message that can open. */
const MIN_STORED_BYTES = 32 + 16;

function bytes(value: unknown, what: string): Uint8Array {
  const b = typeof value === 'string' ? fromBase64Url(value) : null;
  if (!b) throw malformed(`${what} is not base64url`);
  return b;
}

function messageOf(m: { mid?: unknown; seed_id?: unknown; received_at?: unknown; stored?: unknown }): RsaMessage {
  return { mid: bytes(m.mid, 'mid'), seedId: bytes(m.seed_id, 'seed_id'), receivedAt: Number(m.received_at), stored: bytes(m.stored, 'stored') };
}

export class RsaClient {
  readonly url: string;
  constructor(url: string, private readonly options: ServiceClientOptions = {}) {
    this.url = trimUrl(url);
  }
  descriptor(pinnedKey?: Uint8Array): Promise<Descriptor> {
    return fetchDescriptor(this.url, pinnedKey, this.options.crypto);
  }
  /** Generates the inbox keys and creates the inbox (costs `tokens.length` tokens, usually 5). */
  async createInbox(tokens: Uint8Array[]): Promise<InboxClient> {
    const crypto = this.options.crypto ?? nobleProvider;
    const authSeed = crypto.randomBytes(32);
    const auth = ed25519FromSeed(authSeed, crypto);
    const dh = crypto.x25519Generate();
    const r = await jsonOf<{ inbox_id?: unknown }>(
      await fetch(`${this.url}/v1/inboxes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ auth_key: toBase64Url(auth.publicKey), dh_key: toBase64Url(dh.publicKey), tokens: tokens.map(toBase64Url) }),
      }),
    );
    return new InboxClient(this.url, { inboxId: bytes(r.inbox_id, 'inbox_id'), authSeed, dhPrivateKey: dh.secretKey, dhPublicKey: dh.publicKey }, this.options);
  }
}

export interface InboxConnection {
  ack(mids: Uint8Array[]): void;
  close(): void;
  closed: Promise<void>;
}

export class InboxClient {
  private readonly key: Ed25519Key;
  private readonly crypto: CryptoProvider;
  readonly id: string;
  readonly url: string;
  constructor(url: string, readonly creds: InboxCredentials, private readonly options: ServiceClientOptions = {}) {
    this.url = trimUrl(url);
    this.crypto = options.crypto ?? nobleProvider;
    this.key = ed25519FromSeed(creds.authSeed, this.crypto);
    this.id = toBase64Url(creds.inboxId);
  }

  private async signed(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<Response> {
    const data = body === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(body));
    const headers: Record<string, string> = { ...signRequest(this.key, this.id, method, path, data, this.crypto), ...extra };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(`${this.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: data }) });
  }

  async requestSeeds(token: Uint8Array, count = 10, notAfterS?: number): Promise<SeedGrant[]> {
    const r = await jsonOf<{ seeds?: unknown }>(
      await this.signed('POST', `/v1/inboxes/${this.id}/seeds`, { count, ...(notAfterS ? { not_after: notAfterS } : {}) }, { authorization: authorizationHeader(token) }),
    );
    if (!Array.isArray(r.seeds)) throw malformed('no seeds');
    return (r.seeds as { seed_id?: unknown; M?: unknown; not_after?: unknown }[]).map((s) => ({ seedId: bytes(s.seed_id, 'seed_id'), M: bytes(s.M, 'M'), notAfter: Number(s.not_after) }));
  }

  async setSeedState(seedId: Uint8Array, state: 'active' | 'paused' | 'revoked'): Promise<void> {
    const res = await this.signed('PATCH', `/v1/inboxes/${this.id}/seeds/${toBase64Url(seedId)}`, { state });
    if (res.status !== 204) throw new ServiceError(await problemOf(res));
  }

  async fetch(after?: string, limit = 100): Promise<{ messages: RsaMessage[]; cursor: string; droppedByLimit: Record<string, number> }> {
    const q = new URLSearchParams({ limit: String(limit), ...(after ? { after } : {}) });
    const r = await jsonOf<{ messages?: unknown; cursor?: unknown; dropped_by_limit?: Record<string, number> }>(await this.signed('GET', `/v1/inboxes/${this.id}/messages?${q}`));
    if (!Array.isArray(r.messages) || typeof r.cursor !== 'string') throw malformed('inbox page without messages or cursor');
    return { messages: r.messages.map(messageOf), cursor: r.cursor, droppedByLimit: r.dropped_by_limit ?? {} };
  }

  async ack(mids: Uint8Array[]): Promise<void> {
    const res = await this.signed('POST', `/v1/inboxes/${this.id}/ack`, { mids: mids.map(toBase64Url) });
    if (res.status !== 204) throw new ServiceError(await problemOf(res));
  }

  async delete(): Promise<void> {
    const res = await this.signed('DELETE', `/v1/inboxes/${this.id}`);
    if (res.status !== 204) throw new ServiceError(await problemOf(res));
  }

  /** Opens a stored message (HPKE to the inbox dh key); null if it does not open. */
  async open(m: RsaMessage): Promise<Uint8Array | null> {
    if (m.stored.length < MIN_STORED_BYTES) return null;
    return hpkeOpenBase(this.crypto, this.creds.dhPrivateKey, m.stored.subarray(0, 32), LABEL_RSA_STORE, m.mid, m.stored.subarray(32));
  }

  /**
   * WebSocket push. Resolves once authenticated; `onMessage` gets every stored message (backlog
   * first, from `after`), `ack(mids)` acknowledges over the socket.
   */
  async connect(onMessage: (m: RsaMessage) => void, after?: string): Promise<InboxConnection> {
    const Socket = webSocketConstructor(this.options.webSocket);
    const ws = new Socket(`${this.url.replace(/^http/, 'ws')}/v1/inboxes/${this.id}/ws`);
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => (resolveClosed = r));
    ws.addEventListener('close', () => resolveClosed());
    // Messages are handed to onMessage only once the caller holds the connection handle (a
    // backlog can arrive in the same packet as 'ready'); until then they queue, in order.
    let live = false;
    const early: RsaMessage[] = [];
    await new Promise<void>((resolve, reject) => {
      // ws hands over an ErrorEvent with the cause's message; browsers give no detail.
      ws.addEventListener('error', (e) => {
        const detail = (e as { message?: unknown } | null)?.message;
        reject(new Error(`websocket error${typeof detail === 'string' && detail !== '' ? `: ${detail}` : ''}`));
      });
      ws.addEventListener('close', (e) => reject(new Error(`websocket closed: ${e.code} ${e.reason}`)));
      ws.addEventListener('message', (event) => {
        let f: Record<string, unknown>;
        try {
          f = JSON.parse(frameText(event.data) ?? '') as Record<string, unknown>;
        } catch {
          return ws.close(1003, 'malformed frame');
        }
        if (f.t === 'challenge') {
          const nonce = typeof f.nonce === 'string' ? fromBase64Url(f.nonce) : null;
          if (!nonce) return ws.close(1003, 'malformed challenge');
          const ts = Math.floor(Date.now() / 1000);
          const sig = this.crypto.ed25519Sign(this.key.seed, wsAuthMessage(this.creds.inboxId, nonce, ts));
          ws.send(JSON.stringify({ t: 'auth', ts, sig: toBase64Url(sig), ...(after ? { after } : {}) }));
        } else if (f.t === 'ready') resolve();
        else if (f.t === 'msg') {
          let m: RsaMessage;
          try {
            m = { ...messageOf(f), cursor: String(f.cursor) };
          } catch {
            return ws.close(1003, 'malformed message');
          }
          if (live) onMessage(m);
          else early.push(m);
        }
      });
    });
    // A macrotask: runs after the caller's `await connect()` continuation.
    setTimeout(() => {
      live = true;
      for (const m of early.splice(0)) onMessage(m);
    }, 0);
    return {
      ack: (mids) => {
        if (ws.readyState === WEBSOCKET_OPEN) ws.send(JSON.stringify({ t: 'ack', mids: mids.map(toBase64Url) }));
      },
      close: () => ws.close(),
      closed,
    };
  }
}
