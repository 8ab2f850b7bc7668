/**
 * Where the CLI keeps things and how it reaches the network. The data directory (default
 * ~/.umbra or $UMBRA_DATA) holds the encrypted client store (umbra.db) and, while the agent
 * runs, its socket. The transport is a setting inside the store (read once the passphrase has
 * opened it); a config.json left by an earlier release is moved into the store once and deleted.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CliError, usage } from './errors.ts';

export type TransportConfig =
  | { readonly kind: 'mailbox'; readonly path: string }
  | { readonly kind: 'hub'; readonly url: string }
  | { readonly kind: 'waku'; readonly bootstrap: readonly string[] };

export interface TransportFlags {
  hub?: string;
  mailbox?: string;
  transport?: string;
  bootstrap?: string;
}

export function defaultDataDir(): string {
  return process.env.UMBRA_DATA ?? join(homedir(), '.umbra');
}

/** One mailbox file per machine user, shared by every data directory (two terminals), in its own 0700 directory. */
export function defaultMailboxPath(): string {
  return join(homedir(), '.umbra-mailbox', 'mailbox.db');
}

export function storePath(dataDir: string): string {
  return join(dataDir, 'umbra.db');
}

export function storeExists(dataDir: string): boolean {
  return existsSync(storePath(dataDir));
}

export function transportFromFlags(flags: TransportFlags): TransportConfig | null {
  if (flags.transport === 'waku' || (flags.transport === undefined && flags.bootstrap !== undefined)) {
    const bootstrap = (flags.bootstrap ?? '').split(',').map((a) => a.trim()).filter((a) => a !== '');
    return { kind: 'waku', bootstrap };
  }
  if (flags.hub !== undefined) {
    const url = flags.hub.replace(/\/+$/, '');
    if (url === '') throw usage('--hub needs the hub URL', 'for example --hub http://127.0.0.1:7700 ("umbra hub" prints it)');
    return { kind: 'hub', url };
  }
  if (flags.mailbox !== undefined) return { kind: 'mailbox', path: resolve(flags.mailbox) };
  if (flags.transport === 'mailbox') return { kind: 'mailbox', path: defaultMailboxPath() };
  return null;
}

export function parseTransport(text: string): TransportConfig | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  const t = v as { kind?: unknown; path?: unknown; url?: unknown; bootstrap?: unknown } | null;
  if (t === null || typeof t !== 'object') return null;
  if (t.kind === 'mailbox' && typeof t.path === 'string') return { kind: 'mailbox', path: t.path };
  if (t.kind === 'hub' && typeof t.url === 'string') return { kind: 'hub', url: t.url };
  if (t.kind === 'waku' && Array.isArray(t.bootstrap) && t.bootstrap.every((b) => typeof b === 'string')) return { kind: 'waku', bootstrap: t.bootstrap as string[] };
  return null;
}

export function sameTransport(a: TransportConfig, b: TransportConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function describeTransport(t: TransportConfig): string {
  if (t.kind === 'mailbox') return `local mailbox ${t.path}`;
  if (t.kind === 'hub') return `hub ${t.url}`;
  return `waku (bootstrap ${t.bootstrap.join(', ') || 'none'})`;
}

/** The config.json of releases before the transport moved into the store. */
export function legacyConfigPath(dataDir: string): string {
  return join(dataDir, 'config.json');
}

export function readLegacyConfig(dataDir: string): TransportConfig | null {
  const path = legacyConfigPath(dataDir);
  if (!existsSync(path)) return null;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CliError('internal', `cannot read ${path}: ${(e as Error).message}`);
  }
  const inner = (() => {
    try {
      return JSON.stringify((JSON.parse(text) as { transport?: unknown }).transport ?? null);
    } catch {
      return 'null';
    }
  })();
  const t = parseTransport(inner);
  if (t === null) throw new CliError('internal', `${path} is not a config this version understands`, { hint: 'remove it and pass --hub or --mailbox once' });
  return t;
}

export function removeLegacyConfig(dataDir: string): void {
  rmSync(legacyConfigPath(dataDir), { force: true });
  rmSync(`${legacyConfigPath(dataDir)}.tmp`, { force: true });
}
