/**
 * Opening an identity: the passphrase opens the store; the transport is read from the store's
 * settings (a legacy config.json is moved in once); the delivery is built on the same store; then
 * Client.open. Exactly one process holds a session at a time: the agent, a `chat`, or a single
 * command when neither runs.
 */
import { Client, ClientError, openStore, type Store } from '@umbra/client/node';
import { CliError } from './errors.ts';
import { defaultMailboxPath, parseTransport, readLegacyConfig, removeLegacyConfig, sameTransport, storeExists, type TransportConfig } from './config.ts';
import { readPassphrase } from './passphrase.ts';
import { openTransport, type OpenedDelivery } from './transport.ts';
import { SETTING, storeSettings, type Settings } from './settings.ts';
import { DeliveryWatch } from './delivery-watch.ts';
import { NameBook } from './names.ts';

export interface GlobalOptions {
  data: string;
  json?: boolean;
  debug?: boolean;
  hub?: string;
  mailbox?: string;
  transport?: string;
  bootstrap?: string;
}

export interface Session {
  readonly dataDir: string;
  readonly client: Client;
  readonly store: Store;
  /** The adapter as built (a ServicesDelivery with --hub: directory contacts spend its tokens). */
  readonly delivery: OpenedDelivery;
  /** What the client's publishes did (which envelopes a service accepted). */
  readonly watch: DeliveryWatch;
  readonly transport: TransportConfig;
  readonly settings: Settings;
  readonly names: NameBook;
  close(): Promise<void>;
}

function storeOpenError(e: unknown, dataDir: string): never {
  if (e instanceof ClientError && e.code === 'wrong-passphrase') throw new CliError('wrong-passphrase', 'wrong passphrase for this store', { hint: 'check UMBRA_PASSPHRASE', cause: e });
  if (e instanceof ClientError && e.code === 'store-locked') {
    throw new CliError('store-locked', `the store in ${dataDir} is in use by another umbra process`, { hint: 'if it is "umbra agent" or "umbra chat", commands use it automatically; otherwise wait for it to finish', cause: e });
  }
  throw e;
}

export async function openSession(
  dataDir: string,
  transportOverride: TransportConfig | null,
  options: { create?: { name: string }; syncIntervalMs?: number; passphrase?: string } = {},
): Promise<Session> {
  const exists = storeExists(dataDir);
  if (!exists && options.create === undefined) {
    throw new CliError('no-identity', `no Umbra identity in ${dataDir}`, { hint: 'run "umbra --hub <url> init --name <your name>" first, or pass --data DIR' });
  }
  if (exists && options.create !== undefined) throw new CliError('identity-exists', `${dataDir} already holds an identity`, { hint: 'use another --data directory' });
  const passphrase = options.passphrase ?? (await readPassphrase({ confirm: options.create !== undefined && process.env.UMBRA_PASSPHRASE === undefined }));
  const store = await openStore({ dataDir, passphrase }).catch((e: unknown) => storeOpenError(e, dataDir));
  let delivery: OpenedDelivery | null = null;
  try {
    const settings = storeSettings(store);
    const saved = await savedTransport(settings, dataDir);
    const transport = transportOverride ?? saved ?? { kind: 'mailbox', path: defaultMailboxPath() };
    delivery = await openTransport(transport, store);
    const watch = new DeliveryWatch(delivery);
    const client = await Client.open({
      store,
      delivery: watch.delivery,
      ...(options.create !== undefined ? { profile: { name: options.create.name } } : {}),
      syncIntervalMs: options.syncIntervalMs ?? 2000,
    });
    if (saved === null || (transportOverride !== null && !sameTransport(saved, transportOverride))) await settings.set({ [SETTING.transport]: JSON.stringify(transport) });
    const names = await NameBook.load(settings);
    const opened = delivery;
    return {
      dataDir,
      client,
      store,
      delivery: opened,
      watch,
      transport,
      settings,
      names,
      async close() {
        try {
          await client.settle();
          await client.close();
        } finally {
          await opened.close?.();
          await store.close();
        }
      },
    };
  } catch (e) {
    await delivery?.close?.();
    await store.close();
    throw e;
  }
}

/** The transport in the store, or a legacy config.json moved into it (and deleted). */
async function savedTransport(settings: Settings, dataDir: string): Promise<TransportConfig | null> {
  const raw = await settings.get(SETTING.transport);
  if (raw !== null) {
    const t = parseTransport(raw);
    if (t !== null) return t;
  }
  const legacy = readLegacyConfig(dataDir);
  if (legacy === null) return null;
  await settings.set({ [SETTING.transport]: JSON.stringify(legacy) });
  removeLegacyConfig(dataDir);
  return legacy;
}
