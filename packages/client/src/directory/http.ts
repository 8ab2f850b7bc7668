/**
 * The directory's HTTP API (names, key packages, contact requests, attestations, the log). It
 * only moves bytes: verification is the caller's (transparency.LogVerifier in @umbra/protocol).
 * Platform-neutral (fetch, noble or an injected CryptoProvider for request signatures).
 */
import { fromBase64Url, nobleProvider, toBase64Url, transparency, type CryptoProvider } from '@umbra/protocol';
import { authorizationHeader } from '@umbra/protocol/services';
import { fetchDescriptor, tokenInfoFromJson, type Descriptor, type TokenInfo } from '../services/http/descriptor.ts';
import { ServiceError, type Problem } from '../services/http/problem.ts';
import { keyidOf, signRequest, type Ed25519Key } from '../services/http/request-signing.ts';


const b64u = toBase64Url;
/** Strict base64url of a JSON value; null unless it is a canonical base64url string. */
function fromB64u(value: unknown): Uint8Array | null {
  return typeof value === 'string' ? fromBase64Url(value) : null;
}

/** How a request is authorized: signed by a name's key (owner or member), or paid with a token. */
export interface DirectoryAuth {
  readonly signer?: Ed25519Key;
  readonly token?: Uint8Array;
}

export interface DirectoryInfo {
  readonly namespace: string;
  readonly logOrigin: string;
  readonly logKey: Uint8Array;
  readonly serviceKey: Uint8Array;
  readonly token: TokenInfo | null;
  readonly descriptor: Descriptor;
}

export interface RegisterResult {
  name: string;
  namespace: string;
  type: 'register' | 'rotate' | 'reset';
  version: number;
  index: number;
  entry: Uint8Array;
  opening: Uint8Array;
  checkpoint: string;
}

export type ContactResult =
  | { state: 'approved'; keyPackage: Uint8Array; oneTime: boolean; bundle: transparency.LookupBundle }
  | { state: 'pending'; requestId: string };

/** A directory's problem answer; `retryAfterS` from Retry-After on 429 (a contact limit). */
export interface DirectoryProblem extends Problem {
  retryAfterS?: number;
}

async function problemOf(res: Response): Promise<DirectoryProblem> {
  const text = await res.text().catch(() => '');
  const retry = res.headers.get('retry-after');
  const retryAfterS = retry !== null && /^[0-9]{1,9}$/.test(retry) ? { retryAfterS: Number(retry) } : {};
  try {
    const j = JSON.parse(text) as { title?: string; detail?: string };
    return { status: res.status, title: j.title, detail: j.detail, ...retryAfterS };
  } catch {
    return { status: res.status, title: text.slice(0, 200), ...retryAfterS };
  }
}

function bundleOf(x: unknown): transparency.LookupBundle {
  const b = transparency.bundleFromJson(x);
  if (b === null) throw new ServiceError({ status: 502, title: 'Malformed bundle', detail: 'the directory sent a malformed proof bundle' });
  return b;
}

function hashes(x: unknown): Uint8Array[] {
  if (!Array.isArray(x)) throw new ServiceError({ status: 502, title: 'Malformed proof' });
  return x.map((h) => {
    const b = fromB64u(h);
    if (!b || b.length !== 32) throw new ServiceError({ status: 502, title: 'Malformed proof' });
    return b;
  });
}

export class DirectoryHttpClient {
  readonly url: string;
  constructor(url: string, private readonly crypto: CryptoProvider = nobleProvider) {
    this.url = url.replace(/\/+$/, '');
  }

  /** Descriptor: namespace, log origin and key, token parameters (verified signature). */
  async info(pinnedServiceKey?: Uint8Array): Promise<DirectoryInfo> {
    const d = await fetchDescriptor(this.url, pinnedServiceKey, this.crypto);
    const body = d.body as { namespace?: unknown; log_origin?: unknown; log_key?: unknown; token?: unknown };
    const logKey = typeof body.log_key === 'string' ? fromB64u(body.log_key) : null;
    if (!logKey || logKey.length !== 32 || typeof body.namespace !== 'string' || typeof body.log_origin !== 'string') throw new Error('directory descriptor: malformed');
    const token = tokenInfoFromJson(body.token);
    return { namespace: body.namespace, logOrigin: body.log_origin, logKey, serviceKey: d.serviceKey, token, descriptor: d };
  }

  /** Raw request: returns the Response (for tests that look at status codes). */
  async request(method: string, path: string, body: unknown, auth: DirectoryAuth = {}, extraHeaders: Record<string, string> = {}): Promise<Response> {
    const bytes = body === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(body));
    const headers: Record<string, string> = { ...extraHeaders };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth.signer) Object.assign(headers, signRequest(auth.signer, keyidOf(auth.signer.publicKey), method, path, bytes, this.crypto));
    if (auth.token) headers.authorization = authorizationHeader(auth.token);
    return fetch(this.url + path, { method, headers, ...(body === undefined ? {} : { body: bytes }) });
  }

  private async json<T>(method: string, path: string, body: unknown, auth: DirectoryAuth = {}, extraHeaders: Record<string, string> = {}): Promise<T> {
    const res = await this.request(method, path, body, auth, extraHeaders);
    if (!res.ok) throw new ServiceError(await problemOf(res));
    return (await res.json()) as T;
  }

  async register(
    name: string,
    body: { ipk: Uint8Array; pop: Uint8Array; ts: number; follows?: Uint8Array },
    adminSecret?: string,
  ): Promise<RegisterResult> {
    const r = await this.json<{ name: string; namespace: string; type: RegisterResult['type']; version: number; index: number; entry: string; opening: string; checkpoint: string }>(
      'PUT',
      `/v1/names/${encodeURIComponent(name)}/identity`,
      { ipk: b64u(body.ipk), pop: b64u(body.pop), ts: body.ts, ...(body.follows ? { follows: b64u(body.follows) } : {}) },
      {},
      adminSecret ? { authorization: `Bearer ${adminSecret}` } : {},
    );
    return { ...r, entry: fromB64u(r.entry)!, opening: fromB64u(r.opening)! };
  }

  async lookup(name: string, opts: { since?: number; from?: number | null } = {}, auth: DirectoryAuth = {}): Promise<transparency.LookupBundle> {
    const q = new URLSearchParams();
    if (opts.since) q.set('since', String(opts.since));
    if (opts.from) q.set('from', String(opts.from));
    const qs = q.toString();
    return bundleOf(await this.json('GET', `/v1/names/${encodeURIComponent(name)}/identity${qs ? `?${qs}` : ''}`, undefined, auth));
  }

  async uploadPackages(name: string, signer: Ed25519Key, packages: Uint8Array[], lastResort?: Uint8Array): Promise<{ available: number; lastResort: boolean }> {
    return this.json('POST', `/v1/names/${encodeURIComponent(name)}/packages`, { packages: packages.map(b64u), ...(lastResort ? { last_resort: b64u(lastResort) } : {}) }, { signer });
  }

  async packageStatus(name: string, signer: Ed25519Key): Promise<{ available: number; last_resort: boolean }> {
    return this.json('GET', `/v1/names/${encodeURIComponent(name)}/packages/status`, undefined, { signer });
  }

  async setPolicy(name: string, signer: Ed25519Key, policy: string): Promise<void> {
    await this.json('PUT', `/v1/names/${encodeURIComponent(name)}/policy`, { policy }, { signer });
  }

  async contact(name: string, opts: { note?: string; from?: number | null } = {}, auth: DirectoryAuth = {}): Promise<ContactResult> {
    const res = await this.request('POST', `/v1/names/${encodeURIComponent(name)}/contact`, { note: opts.note ?? '', ...(opts.from ? { from: opts.from } : {}) }, auth);
    if (!res.ok) throw new ServiceError(await problemOf(res));
    const j = (await res.json()) as { state: string; request_id?: string; key_package?: string; one_time?: boolean; bundle?: unknown };
    if (j.state === 'pending') return { state: 'pending', requestId: j.request_id! };
    return { state: 'approved', keyPackage: fromB64u(j.key_package)!, oneTime: j.one_time === true, bundle: bundleOf(j.bundle) };
  }

  /** Polls an approval request: null while pending; throws ServiceError 403 once denied. */
  async pollRequest(requestId: string, from?: number | null): Promise<ContactResult | null> {
    const res = await this.request('GET', `/v1/contact-requests/${encodeURIComponent(requestId)}${from ? `?from=${from}` : ''}`, undefined);
    if (res.status === 202) return null;
    if (!res.ok) throw new ServiceError(await problemOf(res));
    const j = (await res.json()) as { key_package: string; one_time: boolean; bundle: unknown };
    return { state: 'approved', keyPackage: fromB64u(j.key_package)!, oneTime: j.one_time, bundle: bundleOf(j.bundle) };
  }

  async pendingRequests(name: string, signer: Ed25519Key): Promise<{ id: string; note: string; created: number }[]> {
    return (await this.json<{ requests: { id: string; note: string; created: number }[] }>('GET', `/v1/names/${encodeURIComponent(name)}/requests`, undefined, { signer })).requests;
  }

  async decide(name: string, signer: Ed25519Key, requestId: string, decision: 'approve' | 'deny'): Promise<void> {
    await this.json('POST', `/v1/names/${encodeURIComponent(name)}/requests/${encodeURIComponent(requestId)}`, { decision }, { signer });
  }

  async attestation(name: string, signer: Ed25519Key): Promise<{ attestation: Record<string, unknown>; bundle: transparency.LookupBundle }> {
    const r = await this.json<{ attestation: Record<string, unknown>; bundle: unknown }>('POST', `/v1/names/${encodeURIComponent(name)}/attestation`, {}, { signer });
    return { attestation: r.attestation, bundle: bundleOf(r.bundle) };
  }

  async checkpoint(): Promise<string> {
    return (await this.json<{ checkpoint: string }>('GET', '/v1/log/checkpoint', undefined)).checkpoint;
  }

  async consistency(from: number, to: number): Promise<Uint8Array[]> {
    return hashes((await this.json<{ proof: unknown }>('GET', `/v1/log/proof/consistency?from=${from}&to=${to}`, undefined)).proof);
  }

  async inclusion(index: number, size: number): Promise<Uint8Array[]> {
    return hashes((await this.json<{ inclusion: unknown }>('GET', `/v1/log/proof/inclusion?index=${index}&size=${size}`, undefined)).inclusion);
  }

  async entries(start: number, end: number): Promise<Uint8Array[]> {
    const r = await this.json<{ entries: unknown }>('GET', `/v1/log/entries?start=${start}&end=${end}`, undefined);
    if (!Array.isArray(r.entries)) throw new ServiceError({ status: 502, title: 'Malformed entries' });
    return r.entries.map((e) => {
      const b = fromB64u(e);
      if (!b) throw new ServiceError({ status: 502, title: 'Malformed entries' });
      return b;
    });
  }
}
