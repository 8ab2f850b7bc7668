/**
 * What the services delivery keeps between runs: the issuer account, the pinned service keys,
 * one inbox per receiving service (its Ed25519 auth seed and X25519 key), the seeds the RSAs
 * granted (unused ones form a pool; used ones map to the addresses we derived and handed out),
 * and unspent tokens (tokens are per account-day quota: throwing them away at every exit would
 * burn the quota of a short-lived CLI).
 *
 * Storage is behind `ServicesStateStore`; `FileStateStore` is a JSON file written atomically
 * (temp file, fsync, rename) with mode 0600. Given a passphrase it is encrypted at rest:
 * scrypt (N = 2^14, r = 8, p = 1, 16-byte salt) → AES-256-GCM, aad = "umbra/v1/services-state".
 * Without one (tests) it is plain JSON, readable only by the owner.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ClientError } from '../errors.ts';

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

const MAGIC = 'umbra-services-state-v1';
const AAD = Buffer.from('umbra/v1/services-state');
const SCRYPT = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

interface EncryptedFile {
  readonly format: typeof MAGIC;
  readonly kdf: { readonly alg: 'scrypt'; readonly N: number; readonly r: number; readonly p: number; readonly salt: string };
  readonly nonce: string;
  readonly ct: string;
}

export class FileStateStore implements ServicesStateStore {
  private key: Buffer | null = null;
  private salt: Buffer | null = null;

  constructor(
    readonly path: string,
    private readonly passphrase?: string,
  ) {}

  load(): ServicesState | null {
    if (!existsSync(this.path)) return null;
    const text = readFileSync(this.path, 'utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ClientError('store-corrupt', `${this.path} is not valid JSON`);
    }
    const f = parsed as Partial<EncryptedFile> & Partial<ServicesState>;
    if (f.format !== MAGIC) {
      if (this.passphrase !== undefined) throw new ClientError('store-corrupt', `${this.path} is not encrypted although a passphrase was given`);
      return f as ServicesState;
    }
    if (this.passphrase === undefined) throw new ClientError('wrong-passphrase', `${this.path} is encrypted: a passphrase is needed`);
    const salt = Buffer.from(f.kdf!.salt, 'base64url');
    const key = scryptSync(this.passphrase, salt, 32, { N: f.kdf!.N, r: f.kdf!.r, p: f.kdf!.p, maxmem: SCRYPT.maxmem });
    const blob = Buffer.from(f.ct!, 'base64url');
    try {
      const d = createDecipheriv('aes-256-gcm', key, Buffer.from(f.nonce!, 'base64url'));
      d.setAAD(AAD);
      d.setAuthTag(blob.subarray(blob.length - 16));
      const plain = Buffer.concat([d.update(blob.subarray(0, blob.length - 16)), d.final()]);
      this.key = key;
      this.salt = salt;
      return JSON.parse(plain.toString('utf8')) as ServicesState;
    } catch {
      throw new ClientError('wrong-passphrase', `wrong passphrase for ${this.path}`);
    }
  }

  save(state: ServicesState): void {
    let text = JSON.stringify(state);
    if (this.passphrase !== undefined) {
      if (this.key === null) {
        this.salt = randomBytes(16);
        this.key = scryptSync(this.passphrase, this.salt, 32, SCRYPT);
      }
      const nonce = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', this.key, nonce);
      c.setAAD(AAD);
      const ct = Buffer.concat([c.update(text, 'utf8'), c.final(), c.getAuthTag()]);
      const file: EncryptedFile = {
        format: MAGIC,
        kdf: { alg: 'scrypt', N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, salt: this.salt!.toString('base64url') },
        nonce: nonce.toString('base64url'),
        ct: ct.toString('base64url'),
      };
      text = JSON.stringify(file);
    }
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    try {
      const dfd = openSync(dirname(this.path), 'r');
      fsyncSync(dfd);
      closeSync(dfd);
    } catch {
      // directory fsync is best effort (not supported everywhere)
    }
  }
}
