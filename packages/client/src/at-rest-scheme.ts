/**
 * The one at-rest key scheme every store uses (docs/STORE.md, "Encryption at rest"),
 * platform-neutral: no Node builtin, so the IndexedDB store can be bundled for browsers.
 *
 * A master key (32 bytes) is app-supplied or derived from the passphrase with Argon2id over a
 * random salt; the key header records which, with the salt and parameters, and is readable
 * before unlocking (SQLite: the `<store>.kdf` file beside the database; IndexedDB: a record in
 * the database). HKDF-SHA256 derives one subkey per purpose from the master key; a subkey never
 * opens anything made under another purpose.
 *
 * Who runs Argon2id is the caller's choice (`Argon2idFunction`): Node uses the native `argon2`
 * addon (at-rest.ts), browsers @noble/hashes (`nobleArgon2id`). Both compute the same bytes.
 */
import { argon2idAsync } from '@noble/hashes/argon2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromBase64Url, toBase64Url } from '@umbra/protocol';
import { ClientError } from './errors.ts';

export interface Argon2idParams {
  /** Memory in KiB. */
  readonly m: number;
  /** Passes. */
  readonly t: number;
  /** Lanes. */
  readonly p: number;
}

/** RFC 9106 §4, second recommended option (the first needs 2 GiB). */
export const DEFAULT_ARGON2ID: Argon2idParams = { m: 64 * 1024, t: 3, p: 4 };
export const STORE_KEY_BYTES = 32;
export const KDF_SALT_BYTES = 16;
/** Upper bounds on stored parameters: a hostile header must not buy unbounded work. */
const MAX_ARGON2ID: Argon2idParams = { m: 2 * 1024 * 1024, t: 64, p: 16 };
export const KEY_HEADER_FORMAT = 'umbra-store-kdf/v2';
export const KEY_HEADER_MAX_BYTES = 4096;
const ARGON2_VERSION = 0x13;

export type KeyPurpose = 'store' | 'services-state' | 'indexeddb';
const PURPOSE_INFO: Record<KeyPurpose, string> = {
  store: 'umbra/v2/at-rest/store',
  'services-state': 'umbra/v2/at-rest/services-state',
  indexeddb: 'umbra/v2/at-rest/indexeddb',
};

/** Argon2id(password, salt) → `length` bytes (version 0x13). */
export type Argon2idFunction = (password: Uint8Array, salt: Uint8Array, params: Argon2idParams, length: number) => Promise<Uint8Array>;

/** @noble/hashes (pure JS): for runtimes without the native addon. */
export const nobleArgon2id: Argon2idFunction = (password, salt, params, length) =>
  argon2idAsync(password, salt, { t: params.t, m: params.m, p: params.p, dkLen: length, version: ARGON2_VERSION });

export function checkArgon2idParams(params: Argon2idParams): Argon2idParams {
  const { m, t, p } = params;
  const ok = [m, t, p].every((x) => Number.isSafeInteger(x)) && p >= 1 && p <= MAX_ARGON2ID.p && t >= 1 && t <= MAX_ARGON2ID.t && m >= 8 * p && m <= MAX_ARGON2ID.m;
  if (!ok) throw new ClientError('store-corrupt', 'the key-derivation parameters are out of range');
  return { m, t, p };
}

/** The master key from a passphrase: Argon2id(NFC(passphrase), salt), 32 bytes. */
export async function derivePassphraseKey(argon2id: Argon2idFunction, passphrase: string, salt: Uint8Array, params: Argon2idParams = DEFAULT_ARGON2ID): Promise<Uint8Array> {
  if (typeof passphrase !== 'string' || passphrase.length === 0) {
    throw new ClientError('invalid-argument', 'the passphrase must be a non-empty string');
  }
  const checked = checkArgon2idParams(params);
  const password = new TextEncoder().encode(passphrase.normalize('NFC'));
  try {
    return await argon2id(password, salt, checked, STORE_KEY_BYTES);
  } catch (e) {
    if (e instanceof ClientError) throw e;
    throw new ClientError('internal', 'the Argon2id key derivation failed');
  } finally {
    password.fill(0);
  }
}

export function checkMasterKey(key: unknown): asserts key is Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== STORE_KEY_BYTES) {
    throw new ClientError('invalid-argument', `the store key must be ${STORE_KEY_BYTES} bytes`);
  }
}

/** The key for one purpose, from the master key (HKDF-SHA256, no salt, info names the purpose). */
export function deriveSubkey(masterKey: Uint8Array, purpose: KeyPurpose): Uint8Array {
  checkMasterKey(masterKey);
  return hkdf(sha256, masterKey, new Uint8Array(0), new TextEncoder().encode(PURPOSE_INFO[purpose]), STORE_KEY_BYTES);
}

// ---- the key header --------------------------------------------------------------------------

/**
 * The page cipher of the SQLite file beside a `.kdf` header (SQLite3 Multiple Ciphers' scheme
 * name): `aegis` (AEGIS-256, AES-NI) for stores made since 3 December 2026; a header without
 * the field is a store made before, in `chacha20` (ChaCha20-Poly1305), and stays in it.
 */
export type SqlitePageCipher = 'aegis' | 'chacha20';
const SQLITE_PAGE_CIPHERS: readonly SqlitePageCipher[] = ['aegis', 'chacha20'];

export type KeyHeader = (
  | { readonly alg: 'argon2id'; readonly params: Argon2idParams; readonly salt: Uint8Array }
  | { readonly alg: 'app-key' }
) & { readonly cipher?: SqlitePageCipher };

/** Parses a key header's JSON text; ClientError('store-corrupt') when it is not one (`where` names it in the message). */
export function parseKeyHeader(text: string, where: string): KeyHeader {
  const bad = () => new ClientError('store-corrupt', `the key header ${where} is malformed`);
  if (typeof text !== 'string' || text.length > KEY_HEADER_MAX_BYTES) throw bad();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw bad();
  }
  if (parsed === null || typeof parsed !== 'object' || parsed.format !== KEY_HEADER_FORMAT) throw bad();
  if (parsed.cipher !== undefined && !SQLITE_PAGE_CIPHERS.includes(parsed.cipher as SqlitePageCipher)) throw bad();
  const cipher = parsed.cipher === undefined ? {} : { cipher: parsed.cipher as SqlitePageCipher };
  if (parsed.alg === 'app-key') return { alg: 'app-key', ...cipher };
  if (parsed.alg !== 'argon2id' || parsed.version !== ARGON2_VERSION || typeof parsed.salt !== 'string') throw bad();
  const salt = fromBase64Url(parsed.salt);
  if (salt === null || salt.length !== KDF_SALT_BYTES) throw bad();
  return { alg: 'argon2id', params: checkArgon2idParams({ m: Number(parsed.m), t: Number(parsed.t), p: Number(parsed.p) }), salt, ...cipher };
}

export function serializeKeyHeader(header: KeyHeader): string {
  const cipher = header.cipher === undefined ? {} : { cipher: header.cipher };
  const json =
    header.alg === 'app-key'
      ? { format: KEY_HEADER_FORMAT, alg: 'app-key', ...cipher }
      : { format: KEY_HEADER_FORMAT, alg: 'argon2id', version: ARGON2_VERSION, ...header.params, salt: toBase64Url(header.salt), ...cipher };
  return JSON.stringify(json) + '\n';
}

export interface Unlock {
  readonly passphrase?: string | undefined;
  readonly key?: Uint8Array | undefined;
  /** Parameters for a header that does not exist yet. */
  readonly argon2id?: Argon2idParams | undefined;
}

/** Exactly one of passphrase (non-empty) or key (32 bytes): ClientError('invalid-argument') otherwise. */
export function checkUnlock(unlock: Unlock): void {
  const hasPassphrase = unlock.passphrase !== undefined;
  const hasKey = unlock.key !== undefined;
  if (hasPassphrase === hasKey) throw new ClientError('invalid-argument', 'give exactly one of passphrase or key');
  if (hasPassphrase && (typeof unlock.passphrase !== 'string' || unlock.passphrase.length === 0)) {
    throw new ClientError('invalid-argument', 'the passphrase must be a non-empty string');
  }
  if (hasKey) checkMasterKey(unlock.key);
  if (unlock.argon2id !== undefined) {
    try {
      checkArgon2idParams(unlock.argon2id);
    } catch {
      throw new ClientError('invalid-argument', 'the Argon2id parameters are out of range');
    }
  }
}

/** The header for a new store: app-key when a key is given, else Argon2id with a fresh salt. */
export function newKeyHeader(unlock: Unlock, randomBytes: (n: number) => Uint8Array): KeyHeader {
  if (unlock.key !== undefined) return { alg: 'app-key' };
  return { alg: 'argon2id', params: checkArgon2idParams(unlock.argon2id ?? DEFAULT_ARGON2ID), salt: randomBytes(KDF_SALT_BYTES) };
}

/**
 * The master key under `header`. A header made for the other kind of secret (app key vs
 * passphrase) is ClientError('wrong-passphrase'). Whether the key is the *right* one is for the
 * caller to find out (SQLite: page 1's tag; IndexedDB: the sealed check value).
 */
export async function unlockMasterKey(header: KeyHeader, unlock: Unlock, argon2id: Argon2idFunction): Promise<Uint8Array> {
  if (header.alg === 'app-key') {
    if (unlock.key === undefined) throw new ClientError('wrong-passphrase', 'this store is protected by an app-supplied key, not a passphrase');
    checkMasterKey(unlock.key);
    return new Uint8Array(unlock.key);
  }
  if (unlock.passphrase === undefined) throw new ClientError('wrong-passphrase', 'this store is protected by a passphrase');
  return derivePassphraseKey(argon2id, unlock.passphrase, header.salt, header.params);
}
