/**
 * `@umbra/client/node`: the SDK on Node. Importing it registers the Node platform (SQLite stores
 * in a `dataDir` through better-sqlite3-multiple-ciphers, Argon2id at rest, node:crypto as the
 * crypto provider, the `ws` package for WebSockets, private state files) and re-exports the core
 * `@umbra/client` with the Node-only adapters beside it. The core entry imports none of these.
 */
import { dirname, join } from 'node:path';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import WebSocket from 'ws';
import type { CryptoProvider } from '@umbra/protocol';
import { fsyncDirectory, writePrivateFileAtomic, type Argon2idParams } from './at-rest.ts';
import { nodeProvider } from './crypto/node-provider.ts';
import { ClientError } from './errors.ts';
import { importLegacySideFiles } from './legacy-side-files.ts';
import { registerPlatform, type Platform } from './platform.ts';
import type { ServiceClientOptions } from './services/http/rsa.ts';
import type { WebSocketConstructor } from './services/http/websocket.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { Store } from './store.ts';

export * from './index.ts';
export { SqliteStore, SCHEMA_VERSION, type SqliteStoreOptions } from './sqlite-store.ts';
export { MemoryStore } from './memory-store.ts';
export { DEFAULT_ARGON2ID, deriveStoreKey, type Argon2idParams } from './at-rest.ts';
export { nodeProvider } from './crypto/node-provider.ts';
export { MailboxDelivery } from './mailbox-delivery.ts';

/** The store file inside a data dir. */
export const STORE_FILE = 'umbra.db';

export interface OpenStoreOptions {
  readonly dataDir: string;
  /** Exactly one of passphrase (Argon2id) or key (32 bytes, e.g. from the OS keychain). */
  readonly passphrase?: string;
  readonly key?: Uint8Array;
  /** Argon2id parameters for a *new* store (an existing one keeps its own). */
  readonly argon2id?: Argon2idParams;
  readonly crypto?: CryptoProvider;
}

/**
 * The store of a data dir, as `Client.open({ dataDir })` opens it: `<dataDir>/umbra.db` created
 * (0700 directory) or opened and migrated, and the side files an earlier release left beside it
 * (services.json) imported into it and removed (legacy-side-files.ts). Rejects with ClientError.
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  if (options === null || typeof options !== 'object' || typeof options.dataDir !== 'string' || options.dataDir.length === 0) {
    throw new ClientError('invalid-argument', 'openStore needs a dataDir');
  }
  try {
    mkdirSync(options.dataDir, { recursive: true });
  } catch (e) {
    throw new ClientError('invalid-argument', `cannot create dataDir: ${(e as Error).message}`, { cause: e });
  }
  const path = join(options.dataDir, STORE_FILE);
  const { store, masterKey } = await SqliteStore.openWithMasterKey({
    path,
    ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}),
    ...(options.key !== undefined ? { key: options.key } : {}),
    ...(options.argon2id !== undefined ? { argon2id: options.argon2id } : {}),
    ...(options.crypto !== undefined ? { crypto: options.crypto } : {}),
  });
  try {
    await importLegacySideFiles(path, store, { masterKey, passphrase: options.passphrase });
    return store;
  } catch (e) {
    await store.close();
    throw e;
  } finally {
    masterKey?.fill(0);
  }
}

/** The `ws` package behind the standard WebSocket interface the clients use. */
export const nodeWebSocket = WebSocket as unknown as WebSocketConstructor;

/** Options for the services' HTTP clients on Node: node:crypto and `ws`. */
export const nodeServiceClientOptions: ServiceClientOptions = { crypto: nodeProvider, webSocket: nodeWebSocket };

export const nodePlatform: Platform = {
  name: 'node',
  crypto: nodeProvider,
  webSocket: nodeWebSocket,
  openDataDirStore: (o) => openStore(o),
  readPrivateFile(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  },
  writePrivateFile: (path, text) => writePrivateFileAtomic(path, text),
  removePrivateFile(path) {
    rmSync(path, { force: true });
    rmSync(`${path}.tmp`, { force: true }); // left by an interrupted atomic write
    fsyncDirectory(dirname(path));
  },
};

registerPlatform(nodePlatform);
