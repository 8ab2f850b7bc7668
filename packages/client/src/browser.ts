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
import { IndexedDbStore } from './indexeddb-store.ts';
import type { Store } from './store.ts';
import { nobleArgon2id, type Argon2idParams } from './at-rest-scheme.ts';

export * from './index.ts';
export { IndexedDbStore, type IndexedDbStoreOptions } from './indexeddb-store.ts';
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
  /**
   * One tab per store (default true): the store is opened under a Web Lock named after it, held
   * until `close()` or until the page goes away; a second tab gets ClientError('store-locked').
   * Two tabs each running a Client over the same store would each advance their own copy of the
   * ratchets and overwrite the other's, so sharing is not offered.
   */
  readonly exclusive?: boolean;
}

/** How long a page waits for a lock a closing or reloading page of the same identity still holds. */
const LOCK_WAIT_MS = 3000;

interface LockManagerLike {
  request(name: string, options: { mode: 'exclusive'; signal: AbortSignal }, callback: () => Promise<void>): Promise<void>;
}

/** Takes the store's Web Lock; resolves to its release. */
function takeStoreLock(name: string): Promise<() => void> {
  const locks = (globalThis.navigator as { locks?: LockManagerLike } | undefined)?.locks;
  if (locks === undefined) {
    return Promise.reject(new ClientError('internal', 'this browser has no Web Locks (navigator.locks), so one tab per identity cannot be guaranteed'));
  }
  return new Promise((resolve, reject) => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), LOCK_WAIT_MS);
    locks
      .request(`umbra-store:${name}`, { mode: 'exclusive', signal: controller.signal }, () => {
        clearTimeout(timer);
        resolve(release);
        return held;
      })
      .catch((e: unknown) => {
        clearTimeout(timer);
        if ((e as { name?: string } | null)?.name === 'AbortError') reject(new ClientError('store-locked', 'this identity is open in another tab: use that tab, or close it and try again'));
        else reject(new ClientError('internal', 'the Web Lock for the store could not be taken', { cause: e }));
      });
  });
}

/**
 * Opens (or creates) the encrypted IndexedDB store `name` (indexeddb-store.ts): the passphrase
 * is stretched with Argon2id in JavaScript (@noble/hashes; browsers have no native Argon2) under
 * the salt and parameters of the store's key header; a wrong passphrase is
 * ClientError('wrong-passphrase'); another tab holding the store is ClientError('store-locked').
 */
export async function openBrowserStore(options: BrowserStoreOptions): Promise<Store> {
  if (options === null || typeof options !== 'object') throw new ClientError('invalid-argument', 'openBrowserStore needs options');
  const release = options.exclusive === false ? () => undefined : await takeStoreLock(options.name);
  let store: IndexedDbStore;
  try {
    store = await IndexedDbStore.open({ name: options.name, passphrase: options.passphrase, argon2idFunction: nobleArgon2id, ...(options.argon2id ? { argon2id: options.argon2id } : {}) });
  } catch (e) {
    release();
    throw e;
  }
  return {
    account: store.account,
    conversations: store.conversations,
    messages: store.messages,
    outbox: store.outbox,
    groups: store.groups,
    serviceAccount: store.serviceAccount,
    directory: store.directory,
    settings: store.settings,
    write: (batch) => store.write(batch),
    close: async () => {
      try {
        await store.close();
      } finally {
        release();
      }
    },
  };
}

/** Whether this browser holds the store `name` (a database with its key header). */
export function browserStoreExists(name: string): Promise<boolean> {
  return IndexedDbStore.exists(name);
}
