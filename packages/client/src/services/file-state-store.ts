/**
 * The services state as a file (Node): JSON written atomically with mode 0600, encrypted at
 * rest under the data dir's master key when there is a passphrase (state.ts describes the format).
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { deriveSubkey, makePrivateFiles, unlockMasterKey, writePrivateFileAtomic, type Argon2idParams } from '../at-rest.ts';
import { ClientError } from '../errors.ts';

import type { ServicesState, ServicesStateStore } from './state.ts';

/** The client store's key header, which services.json shares (the store is `umbra.db` in the same data dir). */
const DEFAULT_KEY_HEADER = 'umbra.db.kdf';
const FORMAT = 'umbra-services-state-v2';
const AAD = Buffer.from('umbra/v2/services-state');
/** Far above any real state (a few KiB): a bigger file is refused before it is parsed. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;
const LEGACY_FORMAT = 'umbra-services-state-v1';
const LEGACY_AAD = Buffer.from('umbra/v1/services-state');
const LEGACY_SCRYPT_MAXMEM = 64 * 1024 * 1024;

interface EncryptedFile {
  readonly format: typeof FORMAT;
  readonly nonce: string;
  readonly ct: string;
}

interface LegacyEncryptedFile {
  readonly format: typeof LEGACY_FORMAT;
  readonly kdf: { readonly alg: 'scrypt'; readonly N: number; readonly r: number; readonly p: number; readonly salt: string };
  readonly nonce: string;
  readonly ct: string;
}

function openGcm(key: Buffer, nonceB64: unknown, ctB64: unknown, aad: Buffer): Buffer | null {
  if (typeof nonceB64 !== 'string' || typeof ctB64 !== 'string') return null;
  const nonce = Buffer.from(nonceB64, 'base64url');
  const blob = Buffer.from(ctB64, 'base64url');
  if (nonce.length !== 12 || blob.length < 16) return null;
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(aad);
    d.setAuthTag(blob.subarray(blob.length - 16));
    return Buffer.concat([d.update(blob.subarray(0, blob.length - 16)), d.final()]);
  } catch {
    return null;
  }
}

export interface FileStateStoreOptions {
  /** The key header to share (default: `umbra.db.kdf` beside the file). */
  readonly keyHeaderPath?: string;
  /** Argon2id parameters if the header does not exist yet. */
  readonly argon2id?: Argon2idParams;
}

export class FileStateStore implements ServicesStateStore {
  private key: Buffer | null = null;
  private readonly keyHeaderPath: string;

  constructor(
    readonly path: string,
    private readonly passphrase?: string,
    private readonly options: FileStateStoreOptions = {},
  ) {
    this.keyHeaderPath = options.keyHeaderPath ?? join(dirname(path), DEFAULT_KEY_HEADER);
  }

  /** The services-state subkey of the data dir's master key (one Argon2id run, then kept). */
  private fileKey(): Buffer {
    if (this.key === null) {
      const master = unlockMasterKey(this.keyHeaderPath, { passphrase: this.passphrase, argon2id: this.options.argon2id }, true);
      this.key = Buffer.from(deriveSubkey(master, 'services-state'));
      master.fill(0);
    }
    return this.key;
  }

  load(): ServicesState | null {
    if (!existsSync(this.path)) return null;
    makePrivateFiles(this.path);
    if (statSync(this.path).size > MAX_FILE_BYTES) throw new ClientError('store-corrupt', `${this.path} is too large`);
    const text = readFileSync(this.path, 'utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ClientError('store-corrupt', `${this.path} is not valid JSON`);
    }
    if (parsed === null || typeof parsed !== 'object') throw new ClientError('store-corrupt', `${this.path} is not a state file`);
    const f = parsed as { format?: string; nonce?: unknown; ct?: unknown };
    const format = f.format;
    if (format !== FORMAT && format !== LEGACY_FORMAT) {
      if (this.passphrase !== undefined) throw new ClientError('store-corrupt', `${this.path} is not encrypted although a passphrase was given`);
      return parsed as ServicesState;
    }
    if (this.passphrase === undefined) throw new ClientError('wrong-passphrase', `${this.path} is encrypted: a passphrase is needed`);
    let plain: Buffer | null;
    if (format === LEGACY_FORMAT) {
      plain = this.openLegacy(parsed as LegacyEncryptedFile);
    } else {
      plain = openGcm(this.fileKey(), f.nonce, f.ct, AAD);
    }
    if (plain === null) throw new ClientError('wrong-passphrase', `wrong passphrase for ${this.path}`);
    let state: ServicesState;
    try {
      state = JSON.parse(plain.toString('utf8')) as ServicesState;
    } catch {
      throw new ClientError('store-corrupt', `${this.path} does not hold valid JSON`);
    }
    if (format === LEGACY_FORMAT) this.save(state); // rewritten at once under the store's key (atomic)
    return state;
  }

  /** The earlier format: scrypt over the passphrase with the file's own salt. */
  private openLegacy(f: LegacyEncryptedFile): Buffer | null {
    const kdf = f.kdf;
    if (kdf === null || typeof kdf !== 'object' || kdf.alg !== 'scrypt' || typeof kdf.salt !== 'string') return null;
    // The parameters the earlier release wrote; anything else is not a file it made.
    if (kdf.N !== 1 << 14 || kdf.r !== 8 || kdf.p !== 1) throw new ClientError('store-corrupt', `${this.path} has unexpected scrypt parameters`);
    const key = scryptSync(this.passphrase!, Buffer.from(kdf.salt, 'base64url'), 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: LEGACY_SCRYPT_MAXMEM });
    return openGcm(key, f.nonce, f.ct, LEGACY_AAD);
  }

  save(state: ServicesState): void {
    let text = JSON.stringify(state);
    if (this.passphrase !== undefined) {
      const nonce = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', this.fileKey(), nonce);
      c.setAAD(AAD);
      const ct = Buffer.concat([c.update(text, 'utf8'), c.final(), c.getAuthTag()]);
      const file: EncryptedFile = { format: FORMAT, nonce: nonce.toString('base64url'), ct: ct.toString('base64url') };
      text = JSON.stringify(file);
    }
    writePrivateFileAtomic(this.path, text);
  }
}
