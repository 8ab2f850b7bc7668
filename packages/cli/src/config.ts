/**
 * Where the CLI keeps things: a data directory (the encrypted client store and config.json),
 * and how it reaches the network. Defaults: ~/.umbra, and the local mailbox transport.
 */
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export type TransportConfig =
  | { readonly kind: 'mailbox'; readonly path: string }
  | { readonly kind: 'hub'; readonly url: string }
  | { readonly kind: 'waku'; readonly bootstrap: readonly string[] };

export interface CliConfig {
  readonly transport: TransportConfig;
}

export function defaultDataDir(): string {
  return process.env.UMBRA_DATA ?? join(homedir(), '.umbra');
}

/** One mailbox file per machine user, shared by every data directory (two terminals), in its own 0700 directory. */
export function defaultMailboxPath(): string {
  return join(homedir(), '.umbra-mailbox', 'mailbox.db');
}

export function configPath(dataDir: string): string {
  return join(dataDir, 'config.json');
}

export function readConfig(dataDir: string): CliConfig | null {
  const path = configPath(dataDir);
  if (!existsSync(path)) return null;
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as CliConfig;
  return parsed;
}

/** config.json: 0600 in the 0700 data directory (narrowed if it was looser), written atomically. */
export function writeConfig(dataDir: string, config: CliConfig): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if ((statSync(dataDir).mode & 0o077) !== 0) chmodSync(dataDir, 0o700);
  const path = configPath(dataDir);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(config, null, 2) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export function transportFromFlags(flags: { hub?: string; mailbox?: string; transport?: string; bootstrap?: string }): TransportConfig | null {
  if (flags.transport === 'waku' || (flags.transport === undefined && flags.bootstrap !== undefined)) {
    const bootstrap = (flags.bootstrap ?? '').split(',').map((a) => a.trim()).filter((a) => a !== '');
    return { kind: 'waku', bootstrap };
  }
  if (flags.hub !== undefined) return { kind: 'hub', url: flags.hub.replace(/\/+$/, '') };
  if (flags.mailbox !== undefined) return { kind: 'mailbox', path: resolve(flags.mailbox) };
  if (flags.transport === 'mailbox') return { kind: 'mailbox', path: defaultMailboxPath() };
  return null;
}
