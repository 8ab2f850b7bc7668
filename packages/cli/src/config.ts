/**
 * Where the CLI keeps things: a data directory (the encrypted client store and config.json),
 * and how it reaches the network. Defaults: ~/.umbra, and the local mailbox transport.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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

/** One mailbox file per machine user, shared by every data directory (two terminals). */
export function defaultMailboxPath(): string {
  return join(homedir(), '.umbra-mailbox.db');
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

export function writeConfig(dataDir: string, config: CliConfig): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(configPath(dataDir), JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
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
