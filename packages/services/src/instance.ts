/**
 * One instance of one role (issuer, SSA, RSA, directory) on a database: what `umbra serve`
 * starts (docs/SERVICES.md "Instances"). N instances of a role share its database (PostgreSQL;
 * a SQLite file takes one process) and, through it, everything that matters for correctness;
 * each is given the role's identity key from a file so that all of them sign as one service.
 * The hub (hub.ts) stays the single-machine default.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, writeSync } from 'node:fs';
import { b64u, fromB64u } from './bytes.ts';
import { verifyDescriptorSignature } from './common.ts';
import { ed25519FromSeed } from './httpsig.ts';
import { startDirectory } from './directory/server.ts';
import { startIssuer, type TokenClass } from './issuer.ts';
import { PRIVATE_FILE_MODE } from './private-files.ts';
import { startRsa, type RsaLimits } from './rsa.ts';
import { InstanceConfigError } from './shared-state.ts';
import { startSsa, type RetryPolicy } from './ssa.ts';

export { InstanceConfigError } from './shared-state.ts';

export const ROLES = ['issuer', 'ssa', 'rsa', 'directory'] as const;
export type Role = (typeof ROLES)[number];

export interface InstanceConfig {
  role: Role;
  /** SQLite file path or postgres:// URL; the role's own database, shared by its instances. */
  db: string;
  host?: string;
  port?: number;
  /** The role's identity key (32 bytes, raw or base64url text, mode 0600): the same file for every instance. */
  keyFile?: string;
  /** SSA only, required: the 32-byte key that seals queued addresses; every SSA instance needs the same. */
  sealKeyFile?: string;
  /**
   * The public name of the role, the same on every instance: the issuer's issuer_name, the
   * origin_info in the token challenges of the SSA, RSA and directory. Default: host:port.
   */
  origin?: string;
  /** SSA, RSA, directory: the issuer's URL, for its token keys and issuer_name (its signed descriptor). */
  issuer?: string;
  /** Pins the issuer's service key (base64url): its descriptor must be signed by it. */
  issuerKey?: string;
  /** SSA, RSA, directory without `issuer`: the issuer_name and the token keys (base64url SPKI). */
  issuerName?: string;
  tokenKeys?: string[];
  /**
   * RSA: mailbox shards, each `name=postgres://…` (or a bare URL, named s0, s1, … by position);
   * `db` is then the control database. Names are fixed once registered.
   */
  shards?: string[];
  /** RSA: SSA service keys (base64url Ed25519) whose deliveries are accepted unpaid. */
  trustedSsaKeys?: string[];
  /** SSA: base URL for blob links. */
  publicUrl?: string;
  /** SSA: let callers name loopback RSAs over plain http (local setups and tests only). */
  allowLoopback?: boolean;
  /** Directory: the namespace names live in (fixed at the first start). */
  namespace?: string;
  quota?: Partial<Record<TokenClass, number>>;
  rsaLimits?: Partial<RsaLimits>;
  ssaRetry?: Partial<RetryPolicy>;
}

export interface Instance {
  role: Role;
  url: string;
  /** The role's identity (Ed25519 public key). */
  serviceKey: Uint8Array;
  close(): Promise<void>;
}

// ---- key files -------------------------------------------------------------------------------

/**
 * Reads a 32-byte secret: 32 raw bytes, or their base64url text (a mounted secret). The file must
 * not be readable by group or others (as ssh refuses loose private keys).
 */
export function readKeyFile(path: string, what = 'key file'): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new InstanceConfigError(`${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? 'cannot be read'}`);
  }
  try {
    if ((fstatSync(fd).mode & 0o077) !== 0) throw new InstanceConfigError(`${what} ${path} is readable by others: chmod 600 it`);
    const raw = new Uint8Array(readFileSync(fd));
    if (raw.length === 32) return raw;
    const text = fromB64u(new TextDecoder().decode(raw).trim());
    if (text && text.length === 32) return text;
    throw new InstanceConfigError(`${what} ${path} must hold 32 bytes (raw, or as base64url text)`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes a new 32-byte secret to `path` (mode 0600, refused if the file exists) and returns the
 * Ed25519 public key it gives as an identity key (base64url): what RSAs list as a trusted SSA.
 */
export function generateKeyFile(path: string): string {
  const seed = new Uint8Array(randomBytes(32));
  let fd: number;
  try {
    fd = openSync(path, 'wx', PRIVATE_FILE_MODE);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InstanceConfigError(code === 'EEXIST' ? `${path} exists: a key file is never overwritten` : `${path}: ${code ?? 'cannot be written'}`);
  }
  try {
    writeSync(fd, seed);
  } finally {
    closeSync(fd);
  }
  return b64u(ed25519FromSeed(seed).publicKey);
}

// ---- the issuer's token keys ----------------------------------------------------------------------

interface IssuerInfo {
  issuerName: string;
  tokenKeys: Record<TokenClass, Uint8Array>;
}

function parseIssuerDescriptor(body: unknown, pinned: Uint8Array | null): IssuerInfo {
  const outer = body as { payload?: unknown; sig?: unknown } | null;
  const payload = fromB64u(outer?.payload);
  const sig = fromB64u(outer?.sig);
  if (!payload || !sig) throw new InstanceConfigError('the issuer answered no signed descriptor');
  let d: { roles?: unknown; service_key?: unknown; issuer_name?: unknown; token_keys?: Record<string, unknown> };
  try {
    d = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    throw new InstanceConfigError('the issuer descriptor is not JSON');
  }
  const serviceKey = fromB64u(d.service_key);
  if (!serviceKey || serviceKey.length !== 32 || !verifyDescriptorSignature(serviceKey, payload, sig)) throw new InstanceConfigError('the issuer descriptor signature does not verify');
  if (pinned && b64u(pinned) !== b64u(serviceKey)) throw new InstanceConfigError('the issuer descriptor is signed by another key than --issuer-key');
  if (!Array.isArray(d.roles) || !d.roles.includes('issuer') || typeof d.issuer_name !== 'string') throw new InstanceConfigError('not an issuer descriptor');
  const ssa = fromB64u(d.token_keys?.ssa);
  const rsa = fromB64u(d.token_keys?.rsa);
  if (!ssa || !rsa) throw new InstanceConfigError('the issuer descriptor has no ssa and rsa token keys');
  return { issuerName: d.issuer_name, tokenKeys: { ssa, rsa } };
}

/** Fetches the issuer's signed descriptor, retrying for up to `waitMs` while it is not up yet. */
async function fetchIssuer(url: string, pinned: Uint8Array | null, waitMs = 30_000): Promise<IssuerInfo> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    let res: Response | null;
    try {
      res = await fetch(`${url.replace(/\/+$/, '')}/.well-known/communicator.json`, { signal: AbortSignal.timeout(5000) });
    } catch {
      res = null; // not reachable (yet)
    }
    if (res?.status === 200) return parseIssuerDescriptor(await res.json().catch(() => null), pinned);
    if (Date.now() > deadline) throw new InstanceConfigError(`the issuer at ${url} did not answer its descriptor${res ? ` (status ${res.status})` : ''}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function tokenSource(c: InstanceConfig, cls: TokenClass): Promise<{ issuerName: string; tokenKeys: Uint8Array[] }> {
  if (c.issuer) {
    const pinned = c.issuerKey === undefined ? null : fromB64u(c.issuerKey);
    if (c.issuerKey !== undefined && (!pinned || pinned.length !== 32)) throw new InstanceConfigError('--issuer-key must be a 32-byte key in base64url');
    const info = await fetchIssuer(c.issuer, pinned);
    return { issuerName: info.issuerName, tokenKeys: [info.tokenKeys[cls]] };
  }
  if (!c.issuerName || !c.tokenKeys || c.tokenKeys.length === 0) throw new InstanceConfigError(`the ${c.role} needs --issuer <url> (or an issuer name and token keys)`);
  const keys = c.tokenKeys.map((k) => fromB64u(k));
  if (keys.some((k) => !k || k.length === 0)) throw new InstanceConfigError('token keys must be base64url');
  return { issuerName: c.issuerName, tokenKeys: keys as Uint8Array[] };
}

// ---- shards ---------------------------------------------------------------------------------

/** `name=postgres://…` or a bare PostgreSQL URL (named s<position>). */
export function parseShards(list: string[]): { name: string; url: string }[] {
  if (!Array.isArray(list) || list.length === 0) throw new InstanceConfigError('--shard needs at least one name=postgres://… (or a postgres:// URL)');
  const out = list.map((item, i) => {
    const m = /^([A-Za-z0-9_-]{1,64})=(.*)$/.exec(String(item));
    const [name, url] = m ? [m[1]!, m[2]!] : [`s${i}`, String(item)];
    if (!/^postgres(ql)?:\/\//.test(url)) throw new InstanceConfigError(`--shard ${name}: a shard is a postgres:// URL`);
    return { name, url };
  });
  const names = new Set(out.map((s) => s.name));
  if (names.size !== out.length) throw new InstanceConfigError('--shard names must differ');
  return out;
}

// ---- start --------------------------------------------------------------------------------

/** Starts one instance of `config.role`; configuration mistakes throw InstanceConfigError. */
export async function startInstance(config: InstanceConfig): Promise<Instance> {
  if (!(ROLES as readonly string[]).includes(config.role)) throw new InstanceConfigError(`unknown role "${String(config.role)}" (one of ${ROLES.join(', ')})`);
  if (typeof config.db !== 'string' || config.db === '') throw new InstanceConfigError('--db is required (a SQLite file or a postgres:// URL)');
  const host = config.host ?? '127.0.0.1';
  const port = config.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InstanceConfigError('--port must be 0..65535');
  if (config.shards !== undefined && config.role !== 'rsa') throw new InstanceConfigError('--shard is for the rsa role');
  const serviceKey = config.keyFile ? readKeyFile(config.keyFile) : undefined;
  const common = { db: config.db, host, port, ...(serviceKey ? { serviceKey } : {}) };

  switch (config.role) {
    case 'issuer': {
      const s = await startIssuer({ ...common, ...(config.origin ? { issuerName: config.origin } : {}), ...(config.quota ? { quota: config.quota } : {}) });
      return { role: 'issuer', url: s.url, serviceKey: s.serviceKey, close: () => s.close() };
    }
    case 'ssa': {
      if (!config.sealKeyFile) throw new InstanceConfigError('the ssa needs --seal-key-file (the same file for every SSA instance)');
      const sealKey = readKeyFile(config.sealKeyFile, 'seal key file');
      const s = await startSsa({
        ...common,
        ...(await tokenSource(config, 'ssa')),
        sealKey,
        ...(config.origin ? { originInfo: config.origin } : {}),
        ...(config.publicUrl ? { publicUrl: config.publicUrl } : {}),
        ...(config.ssaRetry ? { retry: config.ssaRetry } : {}),
        allowLoopback: config.allowLoopback === true,
      });
      return { role: 'ssa', url: s.url, serviceKey: s.serviceKey, close: () => s.close() };
    }
    case 'rsa': {
      const trusted = (config.trustedSsaKeys ?? []).map((k) => fromB64u(k));
      if (trusted.some((k) => !k || k.length !== 32)) throw new InstanceConfigError('--trust-ssa takes 32-byte Ed25519 keys in base64url');
      const shards = config.shards === undefined ? undefined : parseShards(config.shards);
      const s = await startRsa({
        ...common,
        ...(shards ? { shards } : {}),
        ...(await tokenSource(config, 'rsa')),
        trustedSsaKeys: trusted as Uint8Array[],
        ...(config.origin ? { originInfo: config.origin } : {}),
        ...(config.rsaLimits ? { limits: config.rsaLimits } : {}),
      });
      return { role: 'rsa', url: s.url, serviceKey: s.serviceKey, close: () => s.close() };
    }
    case 'directory': {
      const s = await startDirectory({
        ...common,
        ...(await tokenSource(config, 'ssa')),
        ...(config.origin ? { originInfo: config.origin } : {}),
        ...(config.namespace ? { namespace: config.namespace } : {}),
      });
      return { role: 'directory', url: s.url, serviceKey: s.serviceKey, close: () => s.close() };
    }
  }
}
