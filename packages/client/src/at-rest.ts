/**
 * Encryption at rest for the client's files on Node (docs/STORE.md, "Encryption at rest"). The
 * scheme itself (header, labels, subkeys, parameter bounds) is at-rest-scheme.ts, shared with
 * the IndexedDB store; this module keeps it in files and runs Argon2id natively.
 *
 * One master key per data directory: 32 bytes supplied by the app (e.g. from the OS keychain),
 * or derived from the passphrase with Argon2id (RFC 9106 §4, second recommended option:
 * t = 3, p = 4, m = 64 MiB) by the native `argon2` addon (it hashes on libuv's thread pool, so
 * the event loop stays free). The salt and parameters live in the store's key header,
 * `<store>.kdf` (JSON, mode 0600), so they can be read before unlocking. From the master key,
 * HKDF-SHA256 derives one subkey per file: the SQLite3 Multiple Ciphers key of the store (given
 * in raw form, so SQLite runs no KDF of its own) and the AES-256-GCM key of the previous
 * release's services.json (legacy-side-files.ts). A subkey never opens another file.
 *
 * Files are written 0600 in a 0700 directory (`makePrivateDirectory`, `writePrivateFileAtomic`).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import argon2 from 'argon2';
import {
  DEFAULT_ARGON2ID,
  KEY_HEADER_MAX_BYTES,
  derivePassphraseKey,
  newKeyHeader,
  parseKeyHeader,
  serializeKeyHeader,
  unlockMasterKey as unlockUnderHeader,
  type Argon2idFunction,
  type Argon2idParams,
  type KeyHeader,
  type SqlitePageCipher,
  type Unlock,
} from './at-rest-scheme.ts';
import { ClientError } from './errors.ts';

export {
  DEFAULT_ARGON2ID,
  KDF_SALT_BYTES,
  STORE_KEY_BYTES,
  checkArgon2idParams,
  deriveSubkey,
  type Argon2idParams,
  type KeyHeader,
  type KeyPurpose,
  type SqlitePageCipher,
  type Unlock,
} from './at-rest-scheme.ts';

/** A derivation that has not finished in this time is reported, not waited for forever. */
const KDF_TIMEOUT_MS = 120_000;

// ---- Argon2id ------------------------------------------------------------------------------

/** The native addon (libuv thread pool, `p` lanes). */
export const nativeArgon2id: Argon2idFunction = async (password, salt, params, length) => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ClientError('internal', 'the Argon2id key derivation timed out')), KDF_TIMEOUT_MS);
    timer.unref?.();
  });
  try {
    const hash = await Promise.race([
      argon2.hash(Buffer.from(password), {
        type: argon2.argon2id,
        version: 0x13,
        raw: true,
        salt: Buffer.from(salt),
        timeCost: params.t,
        memoryCost: params.m,
        parallelism: params.p,
        hashLength: length,
      }),
      timeout,
    ]);
    const key = new Uint8Array(hash);
    hash.fill(0);
    return key;
  } finally {
    clearTimeout(timer);
  }
};

/** The master key from a passphrase: Argon2id(NFC(passphrase), salt), 32 bytes (native). */
export function deriveStoreKey(passphrase: string, salt: Uint8Array, params: Argon2idParams = DEFAULT_ARGON2ID): Promise<Uint8Array> {
  return derivePassphraseKey(nativeArgon2id, passphrase, salt, params);
}

// ---- the key header --------------------------------------------------------------------------

export function keyHeaderPath(storePath: string): string {
  return `${storePath}.kdf`;
}

/** null when there is no header; ClientError('store-corrupt') when there is a bad one. */
export function readKeyHeader(path: string): KeyHeader | null {
  if (!existsSync(path)) return null;
  if (statSync(path).size > KEY_HEADER_MAX_BYTES) throw new ClientError('store-corrupt', `the key header ${path} is malformed`);
  return parseKeyHeader(readFileSync(path, 'utf8'), path);
}

/**
 * The master key for the files beside `headerPath`: from the existing header, or (when
 * `create`) from a new one written first, which names the page cipher of a new store (AEGIS-256).
 * A header made for the other kind of secret (app key vs passphrase) is
 * ClientError('wrong-passphrase').
 */
export async function unlockMasterKey(headerPath: string, unlock: Unlock, create: boolean): Promise<Uint8Array> {
  let header = readKeyHeader(headerPath);
  if (header === null) {
    if (!create) throw new ClientError('store-corrupt', `the key header ${headerPath} is missing`);
    header = { ...newKeyHeader(unlock, (n) => new Uint8Array(randomBytes(n))), cipher: NEW_STORE_CIPHER };
    writePrivateFileAtomic(headerPath, serializeKeyHeader(header));
  }
  return unlockUnderHeader(header, unlock, nativeArgon2id);
}

/**
 * AEGIS-256 with AES-NI decrypts a store's pages about 3× faster than ChaCha20-Poly1305 here
 * (100,000 conversations: 82-146 against 297-330 ms) and halves a write's cipher time
 * (docs/STORE.md, "Encryption at rest").
 */
const NEW_STORE_CIPHER: SqlitePageCipher = 'aegis';

/** The page cipher the header at `headerPath` names (a header from before the field: ChaCha20-Poly1305). */
export function sqlitePageCipher(headerPath: string): SqlitePageCipher {
  return readKeyHeader(headerPath)?.cipher ?? 'chacha20';
}

/** Gives SQLite3 Multiple Ciphers the raw store key under `cipher` (no KDF of its own), before any read. */
export function keySqliteDatabase(db: { pragma(source: string): unknown; key(key: Buffer): unknown }, rawKey: Uint8Array, cipher: SqlitePageCipher): void {
  db.pragma(`cipher = '${cipher}'`);
  const key = Buffer.concat([Buffer.from('raw:'), rawKey]);
  try {
    db.key(key);
  } finally {
    key.fill(0);
  }
}

// ---- private files -------------------------------------------------------------------------

/** Creates `dir` (0700) if missing; an existing one we own is narrowed to 0700, unless it is a shared sticky directory such as /tmp. */
export function makePrivateDirectory(dir: string): void {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700); // mkdir's mode is filtered by the umask
    return;
  }
  const st = statSync(dir);
  const ownedByUs = typeof process.getuid !== 'function' || st.uid === process.getuid();
  if (ownedByUs && (st.mode & 0o1000) === 0 && (st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/** Narrows existing files to 0600 (missing ones are skipped; symlinks are left alone). */
export function makePrivateFiles(...paths: string[]): void {
  for (const p of paths) {
    try {
      const st = lstatSync(p);
      if (st.isFile() && (st.mode & 0o077) !== 0) chmodSync(p, 0o600);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
    }
  }
}

export function fsyncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // directory fsync is best effort (not supported everywhere)
  }
}

export function fsyncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Temp file (0600) beside the target, fsync, rename over it, fsync the directory. */
export function writePrivateFileAtomic(path: string, data: string | Uint8Array): void {
  makePrivateDirectory(dirname(path));
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600); // a stale temp file keeps its old mode through open(…, 'w')
  renameSync(tmp, path);
  fsyncDirectory(dirname(path));
}
