/** Every Store implementation against the one contract suite (store-contract.ts). */
import { join } from 'node:path';
import { MemoryStore } from '../src/memory-store.ts';
import { SqliteStore } from '../src/sqlite-store.ts';
import { storeContract } from './store-contract.ts';
import { KEY_A, tempDir } from './helpers.ts';

storeContract('SQLite (a temp file)', async () => {
  const { dir, cleanup } = tempDir('umbra-store-contract-');
  const path = join(dir, 'umbra.db');
  let store = await SqliteStore.open({ path, key: KEY_A });
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await SqliteStore.open({ path, key: KEY_A });
      return store;
    },
    cleanup: async () => cleanup(),
  };
});

storeContract('memory', async () => ({ store: await MemoryStore.open(), cleanup: async () => {} }));
