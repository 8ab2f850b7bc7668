/**
 * State the previous releases kept beside the store, imported into it once (Node).
 *
 * `services.json` (the services delivery's account: issuer secret, inbox keys, seeds, tokens)
 * now lives in the store's `serviceAccount`. When the data dir's store opens and the file is
 * still there, it is read in any format a release wrote, put into the store in one write, and
 * then deleted with a leftover `services.json.tmp`. A crash between the write and the delete
 * imports the same file again at the next open, which changes nothing: the store's copy wins
 * once it has one. Formats:
 *
 * - v2 (issue 14): `{"format":"umbra-services-state-v2","nonce","ct"}`, AES-256-GCM under the
 *   data dir master key's `services-state` subkey, aad `umbra/v2/services-state`;
 * - v1: `{"format":"umbra-services-state-v1","kdf":{scrypt N=2^14 r=8 p=1, salt},"nonce","ct"}`,
 *   AES-256-GCM under scrypt(passphrase), aad `umbra/v1/services-state`;
 * - plain JSON (written without a passphrase; refused when there is one, as the releases did).
 *
 * A file that does not open is a typed error and stays where it is: nothing is lost.
 */
import { createDecipheriv, scryptSync } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { deriveSubkey, fsyncDirectory } from './at-rest.ts';
import { ClientError } from './errors.ts';
import type { Store } from './store.ts';

/** The services account file of the releases before issue 15. */
export const LEGACY_SERVICES_FILE = 'services.json';
const V2_FORMAT = 'umbra-services-state-v2';
const V2_AAD = Buffer.from('umbra/v2/services-state');
const V1_FORMAT = 'umbra-services-state-v1';
const V1_AAD = Buffer.from('umbra/v1/services-state');
const V1_SCRYPT = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
/** Far above any real state (a few KiB): a bigger file is refused before it is parsed. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

function openGcm(key: Uint8Array, nonceB64: unknown, ctB64: unknown, aad: Buffer): Buffer | null {
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

function parseObject(text: string, where: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ClientError('store-corrupt', `${where} is not valid JSON`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ClientError('store-corrupt', `${where} is not a state file`);
  return parsed as Record<string, unknown>;
}

export interface LegacyKeys {
  /** The data dir's master key (null for a store that is not encrypted). */
  readonly masterKey: Uint8Array | null;
  readonly passphrase?: string | undefined;
}

/**
 * The services account document (ServicesState JSON text) held by a previous release's
 * services.json. Throws ClientError: wrong-passphrase (a file under another passphrase, or an
 * encrypted file without one), store-corrupt (damaged, too large, or plain under a passphrase).
 */
export function readLegacyServicesFile(path: string, keys: LegacyKeys): string {
  if (statSync(path).size > MAX_FILE_BYTES) throw new ClientError('store-corrupt', `${path} is too large`);
  const file = parseObject(readFileSync(path, 'utf8'), path);
  const format = file.format;
  let plain: Buffer | null;
  if (format === V2_FORMAT) {
    if (keys.masterKey === null) throw new ClientError('wrong-passphrase', `${path} is encrypted and this store has no key`);
    const key = deriveSubkey(keys.masterKey, 'services-state');
    plain = openGcm(key, file.nonce, file.ct, V2_AAD);
    key.fill(0);
    // The store opened under this master key, so the file is damaged rather than under another passphrase.
    if (plain === null) throw new ClientError('store-corrupt', `${path} does not decrypt under this data dir's key`);
  } else if (format === V1_FORMAT) {
    if (keys.passphrase === undefined) throw new ClientError('wrong-passphrase', `${path} is encrypted: a passphrase is needed`);
    const kdf = file.kdf as { alg?: unknown; N?: unknown; r?: unknown; p?: unknown; salt?: unknown } | null;
    if (kdf === null || typeof kdf !== 'object' || kdf.alg !== 'scrypt' || typeof kdf.salt !== 'string') throw new ClientError('store-corrupt', `${path} has no scrypt parameters`);
    // The parameters that release wrote; anything else is not a file it made.
    if (kdf.N !== V1_SCRYPT.N || kdf.r !== V1_SCRYPT.r || kdf.p !== V1_SCRYPT.p) throw new ClientError('store-corrupt', `${path} has unexpected scrypt parameters`);
    const key = scryptSync(keys.passphrase, Buffer.from(kdf.salt, 'base64url'), 32, V1_SCRYPT);
    plain = openGcm(key, file.nonce, file.ct, V1_AAD);
    key.fill(0);
    if (plain === null) throw new ClientError('wrong-passphrase', `wrong passphrase for ${path}`);
  } else {
    if (keys.passphrase !== undefined) throw new ClientError('store-corrupt', `${path} is not encrypted although a passphrase was given`);
    return JSON.stringify(file);
  }
  const state = parseObject(plain.toString('utf8'), path);
  plain.fill(0);
  return JSON.stringify(state);
}

/** Imports what the previous releases left beside `storePath` into `store` (see the module comment). */
export async function importLegacySideFiles(storePath: string, store: Store, keys: LegacyKeys): Promise<{ servicesImported: boolean }> {
  const dir = dirname(storePath);
  const services = join(dir, LEGACY_SERVICES_FILE);
  let servicesImported = false;
  let removed = false;
  if (existsSync(services)) {
    const document = readLegacyServicesFile(services, keys);
    if ((await store.serviceAccount.get()) === null) {
      await store.write({ serviceAccount: document });
      servicesImported = true;
    }
    rmSync(services, { force: true });
    removed = true;
  }
  const leftover = `${services}.tmp`;
  if (existsSync(leftover)) {
    rmSync(leftover, { force: true });
    removed = true;
  }
  if (removed) fsyncDirectory(dir);
  return { servicesImported };
}
