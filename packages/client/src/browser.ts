/**
 * `@umbra/client/browser`: the SDK in a browser. Importing it registers the browser platform
 * (the browser crypto provider: noble, with WebCrypto's X25519 inside HPKE; the page's own
 * WebSocket) and re-exports the core `@umbra/client` with the IndexedDB store beside it. An app
 * opens its store with `openBrowserStore` and passes it as `store` to Client.open and
 * ServicesDelivery.open; there is no `dataDir` and there are no files in a browser.
 */
import { browserProvider } from './crypto/browser-provider.ts';
import { ClientError } from './errors.ts';
import { registerPlatform, type Platform } from './platform.ts';
import type { WebSocketConstructor } from './services/http/websocket.ts';
import { MemoryStore } from './memory-store.ts';
import type { Store } from './store.ts';
import type { Argon2idParams } from './at-rest-scheme.ts';

export * from './index.ts';
export { browserProvider, createBrowserProvider, type BrowserProviderOptions } from './crypto/browser-provider.ts';

function noFiles(what: string): never {
  throw new ClientError('invalid-argument', `${what} does not exist in a browser: open a store with openBrowserStore and pass it as \`store\``);
}

export const browserPlatform: Platform = {
  name: 'browser',
  crypto: browserProvider,
  ...(typeof globalThis.WebSocket === 'function' ? { webSocket: globalThis.WebSocket as unknown as WebSocketConstructor } : {}),
  openDataDirStore: async () => noFiles('a dataDir'),
  // Earlier releases kept no side files in a browser: there is never a legacy file to import.
  readPrivateFile: () => null,
  writePrivateFile: () => noFiles('a state file'),
  removePrivateFile: () => undefined,
};

registerPlatform(browserPlatform);

export interface BrowserStoreOptions {
  /** The IndexedDB database name. */
  readonly name: string;
  readonly passphrase: string;
  /** Argon2id cost for a new store (an existing one keeps the parameters it was made with). */
  readonly argon2id?: Argon2idParams;
}

/**
 * INTERIM (issue 19 in progress): an in-memory store per name, lost on reload, until the
 * IndexedDB store (indexeddb-store.ts) lands; then these open and probe the IndexedDB database.
 */
const devStores = new Map<string, MemoryStore>();
export async function openBrowserStore(options: BrowserStoreOptions): Promise<Store> {
  let s = devStores.get(options.name);
  if (!s) {
    s = await MemoryStore.open();
    devStores.set(options.name, s);
  }
  return s;
}
export async function browserStoreExists(name: string): Promise<boolean> {
  return devStores.has(name);
}
