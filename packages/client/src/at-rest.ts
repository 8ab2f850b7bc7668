/**
 * Encryption at rest for the local store.
 *
 * Store key: 32 bytes, either supplied by the app (e.g. from the OS keychain) or derived from a
 * passphrase with Argon2id (RFC 9106) over a random 16-byte salt kept in the store's meta table.
 * Default parameters: m = 19 MiB, t = 1, p = 1 → about 150–200 ms with @noble/hashes (pure JS)
 * on this project's 2-core machines. That is below OWASP's 2-pass recommendation because the
 * pure-JS implementation is ~2x slower than native; the parameters are stored with each store,
 * so a later version can raise them (re-keying is a migration).
 *
 * Sealed value: nonce (12 random bytes) ‖ ChaCha20-Poly1305(key, nonce, plaintext, aad), with
 * aad = "umbra/v1/store/" ‖ what ‖ 0x00 ‖ row key. Binding the row key stops an attacker who can
 * write the file from swapping two rows' secrets (e.g. one conversation's state for another's).
 */
import { argon2id } from '@noble/hashes/argon2.js';
import { concat, utf8, type CryptoProvider } from '@umbra/protocol';
import { ClientError } from './errors.ts';

export interface Argon2idParams {
  /** Memory in KiB. */
  readonly m: number;
  /** Passes. */
  readonly t: number;
  /** Lanes. */
  readonly p: number;
}

export const DEFAULT_ARGON2ID: Argon2idParams = { m: 19 * 1024, t: 1, p: 1 };
export const STORE_KEY_BYTES = 32;
export const KDF_SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const AAD_PREFIX = utf8('umbra/v1/store/');
const KEY_CHECK_PLAINTEXT = utf8('umbra/v1/store/key-check');

export function deriveStoreKey(passphrase: string, salt: Uint8Array, params: Argon2idParams = DEFAULT_ARGON2ID): Uint8Array {
  if (typeof passphrase !== 'string' || passphrase.length === 0) {
    throw new ClientError('invalid-argument', 'the passphrase must be a non-empty string');
  }
  if (params.m < 8 * params.p || params.t < 1 || params.p < 1 || params.m > 4 * 1024 * 1024 || params.t > 64 || params.p > 16) {
    throw new ClientError('store-corrupt', 'the stored key-derivation parameters are out of range');
  }
  return argon2id(utf8(passphrase.normalize('NFC')), salt, { m: params.m, t: params.t, p: params.p, dkLen: STORE_KEY_BYTES });
}

/** Seals and opens secrets under the store key. */
export class SecretBox {
  private readonly key: Uint8Array;

  constructor(
    private readonly crypto: CryptoProvider,
    key: Uint8Array,
  ) {
    if (!(key instanceof Uint8Array) || key.length !== STORE_KEY_BYTES) {
      throw new ClientError('invalid-argument', `the store key must be ${STORE_KEY_BYTES} bytes`);
    }
    this.key = new Uint8Array(key);
  }

  private static aad(what: string, rowKey: Uint8Array | string): Uint8Array {
    return concat(AAD_PREFIX, utf8(what), new Uint8Array([0]), typeof rowKey === 'string' ? utf8(rowKey) : rowKey);
  }

  seal(what: string, rowKey: Uint8Array | string, plaintext: Uint8Array): Uint8Array {
    const nonce = this.crypto.randomBytes(NONCE_BYTES);
    return concat(nonce, this.crypto.aeadSeal(this.key, nonce, plaintext, SecretBox.aad(what, rowKey)));
  }

  /** Throws ClientError('store-corrupt') when the value does not open. */
  open(what: string, rowKey: Uint8Array | string, sealed: Uint8Array): Uint8Array {
    const opened = this.tryOpen(what, rowKey, sealed);
    if (opened === null) throw new ClientError('store-corrupt', `a stored ${what} record does not decrypt`);
    return opened;
  }

  tryOpen(what: string, rowKey: Uint8Array | string, sealed: Uint8Array): Uint8Array | null {
    if (sealed.length < NONCE_BYTES + TAG_BYTES) return null;
    return this.crypto.aeadOpen(this.key, sealed.subarray(0, NONCE_BYTES), sealed.subarray(NONCE_BYTES), SecretBox.aad(what, rowKey));
  }

  keyCheck(): Uint8Array {
    return this.seal('key-check', '', KEY_CHECK_PLAINTEXT);
  }

  verifyKeyCheck(sealed: Uint8Array): boolean {
    const opened = this.tryOpen('key-check', '', sealed);
    return opened !== null && opened.length === KEY_CHECK_PLAINTEXT.length && opened.every((b, i) => b === KEY_CHECK_PLAINTEXT[i]);
  }
}
