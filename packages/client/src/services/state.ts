/**
 * What the services delivery keeps between runs: the issuer account, the pinned service keys,
 * one inbox per receiving service (its Ed25519 auth seed and X25519 key), the seeds the RSAs
 * granted (unused ones form a pool; used ones map to the addresses we derived and handed out),
 * and unspent tokens (tokens are per account-day quota: throwing them away at every exit would
 * burn the quota of a short-lived CLI).
 *
 * Storage is behind `ServicesStateStore`. The usual one is the client's Store
 * (`storeServicesState(store)`: one JSON document, `store.serviceAccount`, written in one
 * transaction and kept confidential at rest by the store like everything else in it), so the
 * whole account lives in one place. `MemoryStateStore` is for tests and apps that persist it
 * elsewhere. A `services.json` from an earlier release is imported by the data-dir store when it
 * opens (legacy-side-files.ts), not here.
 */
import { ClientError } from '../errors.ts';
import type { Store } from '../store.ts';

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
  /**
   * Set while the seed is reserved for the next rotation (out of the pool, not yet handed out).
   * One left by an earlier run counts as used: it may have been handed out before the run ended.
   */
  reservedAt?: number;
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

/**
 * Where the services account is kept. `save` resolves once the state is durable: the delivery
 * hands out a token only after the state that no longer lists it has been saved.
 */
export interface ServicesStateStore {
  load(): Promise<ServicesState | null>;
  save(state: ServicesState): Promise<void>;
}

/**
 * Parses a stored services document, checking the shape the delivery relies on (a document
 * that does not match is store-corrupt, never a crash further in).
 */
export function parseServicesState(json: string): ServicesState {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ClientError('store-corrupt', 'the stored services account is not valid JSON');
  }
  const s = parsed as Partial<ServicesState> | null;
  const isString = (x: unknown): x is string => typeof x === 'string';
  const ok =
    s !== null &&
    typeof s === 'object' &&
    s.v === 1 &&
    typeof s.issuer === 'object' &&
    s.issuer !== null &&
    isString(s.issuer.url) &&
    isString(s.issuer.secret) &&
    isString(s.issuer.serviceKey) &&
    typeof s.ssa === 'object' &&
    s.ssa !== null &&
    isString(s.ssa.url) &&
    isString(s.ssa.serviceKey) &&
    Array.isArray(s.rsas) &&
    s.rsas.every((r) => r !== null && typeof r === 'object' && isString(r.url) && isString(r.serviceKey) && typeof r.inbox === 'object' && r.inbox !== null && Array.isArray(r.seeds)) &&
    typeof s.tokens === 'object' &&
    s.tokens !== null &&
    Object.values(s.tokens).every((list) => Array.isArray(list) && list.every(isString));
  if (!ok) throw new ClientError('store-corrupt', 'the stored services account does not have the expected shape');
  return s as ServicesState;
}

/** The services account as the client Store's `serviceAccount` document. */
export function storeServicesState(store: Store): ServicesStateStore {
  return {
    async load() {
      const json = await store.serviceAccount.get();
      return json === null ? null : parseServicesState(json);
    },
    save: (state) => store.write({ serviceAccount: JSON.stringify(state) }),
  };
}

/** In memory (tests, or an app that persists it elsewhere). */
export class MemoryStateStore implements ServicesStateStore {
  private json: string | null = null;
  async load(): Promise<ServicesState | null> {
    return this.json === null ? null : parseServicesState(this.json);
  }
  async save(state: ServicesState): Promise<void> {
    this.json = JSON.stringify(state);
  }
}
