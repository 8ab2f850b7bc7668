/**
 * What a runtime supplies to the platform-neutral core: a crypto provider, a WebSocket, and the
 * file-backed state behind a `dataDir` or a state file. The core uses noble and no files until
 * a platform entry registers itself: `@umbra/client/node` does so when it is imported (SQLite,
 * node:crypto, `ws`). A browser entry would register IndexedDB and the platform WebSocket.
 */
import { nobleProvider, type CryptoProvider } from '@umbra/protocol';
import type { Argon2idParams } from './at-rest.ts';
import { ClientError } from './errors.ts';
import type { WebSocketConstructor } from './services/http/websocket.ts';
import type { ServicesStateStore } from './services/state.ts';
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
  /** The store of `Client.open({ dataDir })`. */
  openDataDirStore(options: DataDirStoreOptions): Store;
  /** The services account of `ServicesDelivery.open({ dataDir })`. */
  openServicesState(dataDir: string, passphrase?: string): ServicesStateStore;
  /** A private state file's text (DirectoryClient), null if it does not exist. */
  readPrivateFile(path: string): string | null;
  /** Replaces a private state file (mode 0600) atomically. */
  writePrivateFile(path: string, text: string): void;
}

function needsPlatform(what: string): never {
  throw new ClientError('invalid-argument', `${what} needs a platform entry point: import from @umbra/client/node`);
}

/** Without a registered platform: noble, the global WebSocket, no files. */
const neutralPlatform: Platform = {
  name: 'neutral',
  crypto: nobleProvider,
  openDataDirStore: () => needsPlatform('a dataDir'),
  openServicesState: () => needsPlatform('a dataDir'),
  readPrivateFile: () => needsPlatform('a state file'),
  writePrivateFile: () => needsPlatform('a state file'),
};

let current: Platform = neutralPlatform;

/** Registers the runtime's platform (called once by its entry point). */
export function registerPlatform(platform: Platform): void {
  current = platform;
}

export function platform(): Platform {
  return current;
}
