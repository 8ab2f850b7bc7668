/**
 * Encryption at rest for the client's files (docs/STORE.md, "Encryption at rest").
 *
 * One master key per data directory: 32 bytes supplied by the app (e.g. from the OS keychain),
 * or derived from the passphrase with Argon2id (RFC 9106 §4, second recommended option:
 * t = 3, p = 4, m = 64 MiB) by the native `argon2` addon. The salt and parameters live in the
 * store's key header, `<store>.kdf` (JSON, mode 0600), so they can be read before unlocking.
 * From the master key, HKDF-SHA256 derives one subkey per file: the SQLite3 Multiple Ciphers
 * key of the store (given in raw form, so SQLite runs no KDF of its own) and the AES-256-GCM
 * key of services.json. A subkey never opens another file.
 *
 * Files are written 0600 in a 0700 directory (`makePrivateDirectory`, `writePrivateFileAtomic`).
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
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
/** A derivation that has not finished in this time is reported, not waited for forever. */
const KDF_TIMEOUT_MS = 120_000;
const KEY_HEADER_FORMAT = 'umbra-store-kdf/v2';
const KEY_HEADER_MAX_BYTES = 4096;

export type KeyPurpose = 'store' | 'services-state';
const PURPOSE_INFO: Record<KeyPurpose, string> = {
  store: 'umbra/v2/at-rest/store',
  'services-state': 'umbra/v2/at-rest/services-state',
};

// ---- Argon2id ------------------------------------------------------------------------------

const requireHere = createRequire(import.meta.url);

/*
 * The native addon only has an async API, and store opening is synchronous (its callers, the
 * client and the tests, open stores synchronously). A worker thread runs the hash while this
 * thread waits on a shared flag: the hash still runs natively on four lanes. The worker is
 * started once and kept (unref'd, so it never keeps the process alive): starting a thread costs
 * tens of milliseconds, and the CLI derives twice per run (services.json, then the store).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const argon2 = require(workerData.module);
parentPort.on('message', (job) => {
  const flag = new Int32Array(job.flag);
  const done = (v) => { Atomics.store(flag, 0, v); Atomics.notify(flag, 0); };
  try {
    argon2.hash(Buffer.from(job.password), {
      type: argon2.argon2id, version: 0x13, raw: true, salt: Buffer.from(job.salt),
      timeCost: job.t, memoryCost: job.m, parallelism: job.p, hashLength: job.length,
    }).then((h) => { new Uint8Array(job.out).set(h); done(1); }, () => done(2));
  } catch { done(2); }
});
`;

let kdfWorker: Worker | null = null;

function worker(): Worker {
  if (kdfWorker === null) {
    const w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { module: requireHere.resolve('argon2') } });
    w.unref();
    const forget = () => {
      if (kdfWorker === w) kdfWorker = null;
    };
    w.on('error', forget);
    w.on('exit', forget);
    kdfWorker = w;
  }
  return kdfWorker;
}

function argon2idBlocking(password: Uint8Array, salt: Uint8Array, params: Argon2idParams, length: number): Uint8Array {
  const flag = new SharedArrayBuffer(4);
  const out = new SharedArrayBuffer(length);
  const w = worker();
  w.postMessage({ flag, out, password, salt, m: params.m, t: params.t, p: params.p, length });
  const state = new Int32Array(flag);
  if (Atomics.wait(state, 0, 0, KDF_TIMEOUT_MS) === 'timed-out' || Atomics.load(state, 0) !== 1) {
    // A worker that failed to start or to hash is replaced at the next derivation.
    if (kdfWorker === w) kdfWorker = null;
    void w.terminate();
    throw new ClientError('internal', 'the Argon2id key derivation failed');
  }
  const key = new Uint8Array(length);
  key.set(new Uint8Array(out));
  new Uint8Array(out).fill(0);
  return key;
}

export function checkArgon2idParams(params: Argon2idParams): Argon2idParams {
  const { m, t, p } = params;
  const ok = [m, t, p].every((x) => Number.isSafeInteger(x)) && p >= 1 && p <= MAX_ARGON2ID.p && t >= 1 && t <= MAX_ARGON2ID.t && m >= 8 * p && m <= MAX_ARGON2ID.m;
  if (!ok) throw new ClientError('store-corrupt', 'the key-derivation parameters are out of range');
  return { m, t, p };
}

/** The master key from a passphrase: Argon2id(NFC(passphrase), salt), 32 bytes. */
export function deriveStoreKey(passphrase: string, salt: Uint8Array, params: Argon2idParams = DEFAULT_ARGON2ID): Uint8Array {
  if (typeof passphrase !== 'string' || passphrase.length === 0) {
    throw new ClientError('invalid-argument', 'the passphrase must be a non-empty string');
  }
  const password = new TextEncoder().encode(passphrase.normalize('NFC'));
  try {
    return argon2idBlocking(password, salt, checkArgon2idParams(params), STORE_KEY_BYTES);
  } finally {
    password.fill(0);
  }
}

/** The key of one file, from the master key (HKDF-SHA256, no salt, info names the file). */
export function deriveSubkey(masterKey: Uint8Array, purpose: KeyPurpose): Uint8Array {
  if (!(masterKey instanceof Uint8Array) || masterKey.length !== STORE_KEY_BYTES) {
    throw new ClientError('invalid-argument', `the store key must be ${STORE_KEY_BYTES} bytes`);
  }
  return new Uint8Array(hkdfSync('sha256', masterKey, new Uint8Array(0), PURPOSE_INFO[purpose], STORE_KEY_BYTES));
}

// ---- the key header --------------------------------------------------------------------------

export type KeyHeader =
  | { readonly alg: 'argon2id'; readonly params: Argon2idParams; readonly salt: Uint8Array }
  | { readonly alg: 'app-key' };

export function keyHeaderPath(storePath: string): string {
  return `${storePath}.kdf`;
}

/** null when there is no header; ClientError('store-corrupt') when there is a bad one. */
export function readKeyHeader(path: string): KeyHeader | null {
  if (!existsSync(path)) return null;
  const bad = () => new ClientError('store-corrupt', `the key header ${path} is malformed`);
  if (statSync(path).size > KEY_HEADER_MAX_BYTES) throw bad();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    throw bad();
  }
  if (parsed === null || typeof parsed !== 'object' || parsed.format !== KEY_HEADER_FORMAT) throw bad();
  if (parsed.alg === 'app-key') return { alg: 'app-key' };
  if (parsed.alg !== 'argon2id' || parsed.version !== 0x13 || typeof parsed.salt !== 'string') throw bad();
  const salt = new Uint8Array(Buffer.from(parsed.salt, 'base64url'));
  if (salt.length !== KDF_SALT_BYTES) throw bad();
  return { alg: 'argon2id', params: checkArgon2idParams({ m: Number(parsed.m), t: Number(parsed.t), p: Number(parsed.p) }), salt };
}

function writeKeyHeader(path: string, header: KeyHeader): void {
  const json =
    header.alg === 'app-key'
      ? { format: KEY_HEADER_FORMAT, alg: 'app-key' }
      : { format: KEY_HEADER_FORMAT, alg: 'argon2id', version: 0x13, ...header.params, salt: Buffer.from(header.salt).toString('base64url') };
  writePrivateFileAtomic(path, JSON.stringify(json) + '\n');
}

export interface Unlock {
  readonly passphrase?: string | undefined;
  readonly key?: Uint8Array | undefined;
  /** Parameters for a header that does not exist yet. */
  readonly argon2id?: Argon2idParams | undefined;
}

/**
 * The master key for the files beside `headerPath`: from the existing header, or (when
 * `create`) from a new one written first. A header made for the other kind of secret (app key
 * vs passphrase) is ClientError('wrong-passphrase').
 */
export function unlockMasterKey(headerPath: string, unlock: Unlock, create: boolean): Uint8Array {
  let header = readKeyHeader(headerPath);
  if (header === null) {
    if (!create) throw new ClientError('store-corrupt', `the key header ${headerPath} is missing`);
    header = unlock.key !== undefined ? { alg: 'app-key' } : { alg: 'argon2id', params: checkArgon2idParams(unlock.argon2id ?? DEFAULT_ARGON2ID), salt: randomBytes(KDF_SALT_BYTES) };
    writeKeyHeader(headerPath, header);
  }
  if (header.alg === 'app-key') {
    if (unlock.key === undefined) throw new ClientError('wrong-passphrase', 'this store is protected by an app-supplied key, not a passphrase');
    if (!(unlock.key instanceof Uint8Array) || unlock.key.length !== STORE_KEY_BYTES) {
      throw new ClientError('invalid-argument', `the store key must be ${STORE_KEY_BYTES} bytes`);
    }
    return new Uint8Array(unlock.key);
  }
  if (unlock.passphrase === undefined) throw new ClientError('wrong-passphrase', 'this store is protected by a passphrase');
  return deriveStoreKey(unlock.passphrase, header.salt, header.params);
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
