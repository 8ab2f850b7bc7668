/** The issuer's HTTP API: an account, its quota, and Privacy Pass tokens minted in batches. */
import { fromBase64Url, toBase64Url } from '@umbra/protocol';
import type { TokenInfo } from './descriptor.ts';
import { jsonOf, malformed, trimUrl } from './problem.ts';
import { parseIssuerPublicKey, TokenMinter, type IssuerPublicKey } from './token-minter.ts';

/** Token requests per batch request (the issuer's limit). */
export const MINT_BATCH = 100;

export class IssuerClient {
  private readonly keyCache = new Map<string, Promise<IssuerPublicKey>>();
  readonly url: string;
  constructor(url: string, readonly secret: string) {
    this.url = trimUrl(url);
  }

  static async register(url: string): Promise<IssuerClient> {
    const r = await jsonOf<{ secret?: unknown }>(await fetch(`${trimUrl(url)}/v1/accounts`, { method: 'POST' }));
    if (typeof r.secret !== 'string') throw malformed('issuer account without a secret');
    return new IssuerClient(url, r.secret);
  }

  async quota(): Promise<Record<string, { used: number; limit: number }>> {
    return jsonOf(await fetch(`${this.url}/v1/quota`, { headers: { authorization: `Bearer ${this.secret}` } }));
  }

  /**
   * Mints n tokens (batches of ≤ MINT_BATCH) for `info`'s origin. The issuer picks the key, and
   * so the quota class, from the requests' truncated_token_key_id (RFC 9578 §6.2): `info.tokenKey`.
   */
  async mint(info: TokenInfo, n: number): Promise<Uint8Array[]> {
    const id = toBase64Url(info.tokenKey);
    let key = this.keyCache.get(id);
    if (!key) {
      key = parseIssuerPublicKey(info.tokenKey);
      key.catch(() => this.keyCache.delete(id));
      this.keyCache.set(id, key);
    }
    const minter = new TokenMinter(await key, info.challenge);
    const out: Uint8Array[] = [];
    while (out.length < n) {
      const pending = Array.from({ length: Math.min(MINT_BATCH, n - out.length) }, () => minter.begin());
      const r = await jsonOf<{ responses?: unknown }>(
        await fetch(`${this.url}/v1/token-request/batch`, {
          method: 'POST',
          headers: { authorization: `Bearer ${this.secret}`, 'content-type': 'application/json' },
          body: JSON.stringify({ requests: pending.map((p) => toBase64Url(p.request)) }),
        }),
      );
      if (!Array.isArray(r.responses) || r.responses.length !== pending.length) throw malformed('token responses do not match the requests');
      for (let i = 0; i < pending.length; i++) {
        const resp = typeof r.responses[i] === 'string' ? fromBase64Url(r.responses[i] as string) : null;
        if (!resp) throw malformed('token response is not base64url');
        out.push(await pending[i]!.finalize(resp));
      }
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
