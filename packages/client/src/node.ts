/**
 * `@umbra/client/node`: the SDK on Node. Importing it registers the Node platform (SQLite stores
 * in a `dataDir` through better-sqlite3-multiple-ciphers, Argon2id at rest, node:crypto as the
 * crypto provider, the `ws` package for WebSockets, private state files) and re-exports the core
 * `@umbra/client` with the Node-only adapters beside it. The core entry imports none of these.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { writePrivateFileAtomic } from './at-rest.ts';
import { nodeProvider } from './crypto/node-provider.ts';
import { ClientError } from './errors.ts';
import { registerPlatform, type Platform } from './platform.ts';
import { FileStateStore } from './services/file-state-store.ts';
import { SERVICES_STATE_FILE } from './services/delivery.ts';
import type { ServiceClientOptions } from './services/http/rsa.ts';
import type { WebSocketConstructor } from './services/http/websocket.ts';
import { SqliteStore } from './sqlite-store.ts';

export * from './index.ts';
export { SqliteStore, SCHEMA_VERSION, type SqliteStoreOptions } from './sqlite-store.ts';
export { DEFAULT_ARGON2ID, deriveStoreKey, type Argon2idParams } from './at-rest.ts';
export { nodeProvider } from './crypto/node-provider.ts';
export { MailboxDelivery } from './mailbox-delivery.ts';
export { FileStateStore, type FileStateStoreOptions } from './services/file-state-store.ts';

/** The `ws` package behind the standard WebSocket interface the clients use. */
export const nodeWebSocket = WebSocket as unknown as WebSocketConstructor;

/** Options for the services' HTTP clients on Node: node:crypto and `ws`. */
export const nodeServiceClientOptions: ServiceClientOptions = { crypto: nodeProvider, webSocket: nodeWebSocket };

export const nodePlatform: Platform = {
  name: 'node',
  crypto: nodeProvider,
  webSocket: nodeWebSocket,
  openDataDirStore(o) {
    try {
      mkdirSync(o.dataDir, { recursive: true });
    } catch (e) {
      throw new ClientError('invalid-argument', `cannot create dataDir: ${(e as Error).message}`, { cause: e });
    }
    return SqliteStore.open({
      path: join(o.dataDir, 'umbra.db'),
      ...(o.passphrase !== undefined ? { passphrase: o.passphrase } : {}),
      ...(o.key !== undefined ? { key: o.key } : {}),
      ...(o.argon2id !== undefined ? { argon2id: o.argon2id } : {}),
      crypto: o.crypto,
    });
  },
  openServicesState: (dataDir, passphrase) => new FileStateStore(join(dataDir, SERVICES_STATE_FILE), passphrase),
  readPrivateFile(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  },
  writePrivateFile: (path, text) => writePrivateFileAtomic(path, text),
};

registerPlatform(nodePlatform);
