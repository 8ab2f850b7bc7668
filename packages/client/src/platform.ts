/**
 * What a runtime supplies to the platform-neutral core: a crypto provider, a WebSocket, the
 * store behind a `dataDir`, and access to the private files earlier releases kept (read once,
 * imported into the store, removed). The core uses noble and no files until a platform entry
 * registers itself: `@umbra/client/node` does so when it is imported (SQLite, node:crypto,
 * `ws`). A browser entry would register IndexedDB and the platform WebSocket.
 */
import { nobleProvider, type CryptoProvider } from '@umbra/protocol';
import type { Argon2idParams } from './at-rest-scheme.ts';
import { ClientError } from './errors.ts';
import type { WebSocketConstructor } from './services/http/websocket.ts';
import type { Store } from './store.ts';

export interface DataDirStoreOptions {
  readonly dataDir: string;
  readonly passphrase?: string;
  readonly key?: Uint8Array;
  readonly argon2id?: Argon2idParams;
  readonly crypto: CryptoProvider;
}

export interface Platform {
  /** For error messages ("node"). */
  readonly name: string;
  readonly crypto: CryptoProvider;
  /** Undefined: the global WebSocket, if there is one. */
  readonly webSocket?: WebSocketConstructor;
  /**
   * The store of `Client.open({ dataDir })`, opened (created, migrated, side files of earlier
   * releases imported). Rejects with ClientError.
   */
  openDataDirStore(options: DataDirStoreOptions): Promise<Store>;
  /** A private state file's text (a legacy state file to import), null if it does not exist. */
  readPrivateFile(path: string): string | null;
  /** Replaces a private state file (mode 0600) atomically. */
  writePrivateFile(path: string, text: string): void;
  /** Deletes a private state file once its content is in the store (a missing file is fine). */
  removePrivateFile(path: string): void;
}

function needsPlatform(what: string): never {
  throw new ClientError('invalid-argument', `${what} needs a platform entry point: import from @umbra/client/node`);
}

/** Without a registered platform: noble, the global WebSocket, no files. */
const neutralPlatform: Platform = {
  name: 'neutral',
  crypto: nobleProvider,
  openDataDirStore: async () => needsPlatform('a dataDir'),
  readPrivateFile: () => needsPlatform('a state file'),
  writePrivateFile: () => needsPlatform('a state file'),
  removePrivateFile: () => needsPlatform('a state file'),
};

let current: Platform = neutralPlatform;

/** Registers the runtime's platform (called once by its entry point). */
export function registerPlatform(platform: Platform): void {
  current = platform;
}

export function platform(): Platform {
  return current;
}
