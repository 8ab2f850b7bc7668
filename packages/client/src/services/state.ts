/**
 * What the services delivery keeps between runs: the issuer account, the pinned service keys,
 * one inbox per receiving service (its Ed25519 auth seed and X25519 key), the seeds the RSAs
 * granted (unused ones form a pool; used ones map to the addresses we derived and handed out),
 * and unspent tokens (tokens are per account-day quota: throwing them away at every exit would
 * burn the quota of a short-lived CLI).
 *
 * Storage is behind `ServicesStateStore`; `FileStateStore` (file-state-store.ts, Node) is a JSON file written atomically
 * (temp file, fsync, rename) with mode 0600 in a 0700 directory. Given a passphrase it is
 * encrypted at rest under the same master key as the client store (at-rest.ts: Argon2id with
 * the salt and parameters of the store's key header, `umbra.db.kdf` beside it), through its own
 * HKDF subkey: AES-256-GCM, aad = "umbra/v2/services-state". A file of the earlier format
 * (scrypt N = 2^14, r = 8, p = 1) is read once and rewritten in the new one. Without a
 * passphrase (tests) it is plain JSON, readable only by the owner.
 */

/** Binary fields are base64url; times are unix ms unless named …S (seconds). */
export interface SeedRecord {
  readonly seedId: string;
  readonly M: string;
  readonly notAfterS: number;
  /** When it was granted (unix ms). */
  readonly grantedAt: number;
  /** Hex of the address we derived from it and handed out; null while it sits in the pool. */
  address: string | null;
  usedAt: number | null;
}

export interface RsaRecord {
  readonly url: string;
  /** Pinned service key (base64url Ed25519). */
  readonly serviceKey: string;
  readonly inbox: { readonly id: string; readonly authSeed: string; readonly dhPrivateKey: string; readonly dhPublicKey: string };
  seeds: SeedRecord[];
}

export interface ServicesState {
  readonly v: 1;
  readonly issuer: { readonly url: string; readonly secret: string; readonly serviceKey: string };
  readonly ssa: { readonly url: string; readonly serviceKey: string };
  rsas: RsaRecord[];
  /** Unspent tokens by origin URL. */
  tokens: Record<string, string[]>;
}

export interface ServicesStateStore {
  load(): ServicesState | null;
  save(state: ServicesState): void;
}

/** In memory (tests, or an app that persists it elsewhere). */
export class MemoryStateStore implements ServicesStateStore {
  private json: string | null = null;
  load(): ServicesState | null {
    return this.json === null ? null : (JSON.parse(this.json) as ServicesState);
  }
  save(state: ServicesState): void {
    this.json = JSON.stringify(state);
  }
}
