/**
 * Opening the client for one command: config, transport, passphrase, then Client.open.
 * Every command goes through here so errors read the same everywhere.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client, ClientError, type ConversationInfo, type Delivery } from '@umbra/client/node';
import { CliError } from './errors.ts';
import { defaultMailboxPath, readConfig, writeConfig, type TransportConfig } from './config.ts';
import { readPassphrase } from './passphrase.ts';
import { openTransport } from './transport.ts';

export interface GlobalOptions {
  data: string;
  json?: boolean;
  hub?: string;
  mailbox?: string;
  transport?: string;
  bootstrap?: string;
}

export interface Session {
  readonly client: Client;
  readonly transport: TransportConfig;
  /** The client's delivery (a ServicesDelivery with --hub: directory contacts spend its tokens). */
  readonly delivery: Delivery;
  close(): Promise<void>;
}

export function storeExists(dataDir: string): boolean {
  return existsSync(join(dataDir, 'umbra.db'));
}

export async function openSession(
  dataDir: string,
  transportOverride: TransportConfig | null,
  options: { create?: { name: string } } = {},
): Promise<Session> {
  const exists = storeExists(dataDir);
  if (!exists && options.create === undefined) {
    throw new CliError(`no Umbra identity in ${dataDir}: run "umbra init --name <your name>" first (or pass --data DIR)`);
  }
  if (exists && options.create !== undefined) {
    throw new CliError(`${dataDir} already holds an identity; use another --data directory`);
  }
  const transport = transportOverride ?? readConfig(dataDir)?.transport ?? { kind: 'mailbox', path: defaultMailboxPath() };
  const passphrase = await readPassphrase({ confirm: options.create !== undefined && process.env.UMBRA_PASSPHRASE === undefined });
  const delivery = await openTransport(transport, { dataDir, passphrase });
  let client: Client;
  try {
    client = await Client.open({
      dataDir,
      passphrase,
      delivery,
      ...(options.create !== undefined ? { profile: { name: options.create.name } } : {}),
      syncIntervalMs: 2000,
    });
  } catch (e) {
    delivery.close?.();
    if (e instanceof ClientError && e.code === 'wrong-passphrase') throw new CliError('wrong passphrase for this store');
    throw e;
  }
  if (options.create !== undefined || transportOverride !== null) writeConfig(dataDir, { transport });
  return {
    client,
    transport,
    delivery,
    async close() {
      await client.settle();
      await client.close();
      delivery.close?.();
    },
  };
}

/**
 * A conversation named on the command line: a list number (1, 2, …), an id or id prefix
 * (≥ 4 hex chars), or a peer name (case-insensitive, unique).
 */
export function findConversation(client: Client, ref: string): ConversationInfo {
  const all = client.conversations({ consent: 'all' });
  if (/^\d{1,3}$/.test(ref)) {
    const c = all[Number(ref) - 1];
    if (c !== undefined) return c;
  }
  const byId = /^[0-9a-f]{4,32}$/.test(ref) ? all.filter((c) => c.id.startsWith(ref)) : [];
  if (byId.length === 1) return byId[0]!;
  const byName = all.filter((c) => c.peerName.toLowerCase() === ref.toLowerCase());
  if (byName.length === 1) return byName[0]!;
  if (byId.length + byName.length > 1) throw new CliError(`"${ref}" matches several conversations; use the id from "umbra list"`);
  throw new CliError(`no conversation "${ref}"; "umbra list" shows them`);
}
