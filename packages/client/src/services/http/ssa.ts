/** The sending service agent's HTTP API: submissions (paid with a token), blobs, RSA descriptors. */
import { toBase64Url } from '@umbra/protocol';
import { authorizationHeader } from '@umbra/protocol/services';
import { fetchDescriptor, verifyDescriptor, type Descriptor } from './descriptor.ts';
import { jsonOf, problemOf, ServiceError, trimUrl, type Problem } from './problem.ts';

export type SubmitResult = { ok: true; sid: string } | { ok: false; problem: Problem };

/** Default time to live of a submission at the SSA (one day). */
export const DEFAULT_SUBMIT_TTL_S = 86_400;

export class SsaClient {
  readonly url: string;
  constructor(url: string) {
    this.url = trimUrl(url);
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
        addr: toBase64Url(item.addr),
        payload: toBase64Url(item.payload),
        ttl_s: item.ttlS ?? DEFAULT_SUBMIT_TTL_S,
        idem: toBase64Url(item.idem ?? crypto.getRandomValues(new Uint8Array(16))),
      }),
    });
    if (res.status === 202) {
      const sid = ((await res.json()) as { sid?: unknown }).sid;
      if (typeof sid !== 'string') throw new ServiceError({ status: 502, title: 'Malformed answer', detail: 'submission without a sid' });
      return { ok: true, sid };
    }
    return { ok: false, problem: await problemOf(res) };
  }
  async status(sid: string): Promise<string> {
    return (await jsonOf<{ state: string }>(await fetch(`${this.url}/v1/submissions/${encodeURIComponent(sid)}`))).state;
  }
  async uploadBlob(data: Uint8Array, token: Uint8Array, ttlS?: number): Promise<{ blob_id: string; get_url: string; expires: number }> {
    return jsonOf(
      await fetch(`${this.url}/v1/blobs${ttlS ? `?ttl_s=${ttlS}` : ''}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', authorization: authorizationHeader(token) },
        body: new Uint8Array(data),
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
      await jsonOf(await fetch(`${this.url}/v1/rsa-descriptor?rsa=${encodeURIComponent(rsa)}`, { headers: { authorization: authorizationHeader(token) } })),
      pinnedKey,
    );
  }
}
