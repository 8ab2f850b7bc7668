/**
 * Chromium side of store-chromium.test.ts: the client's Store contract suite
 * (packages/client/test/store-contract.ts) unchanged, against the stores a browser app uses:
 * the IndexedDB store on Chromium's real IndexedDB (persisting across a reopen), and the memory
 * store as the reference.
 */
import { IndexedDbStore } from '../../../client/src/indexeddb-store.ts';
import { MemoryStore } from '../../../client/src/memory-store.ts';
import { storeContract } from '../../../client/test/store-contract.ts';
import { publishResults } from '../harness/node-test-shim.ts';

const KEY = new Uint8Array(32).fill(7);
let databases = 0;

storeContract('IndexedDB (in Chromium)', async () => {
  // One database per test, so each starts empty.
  const name = `umbra-contract-${++databases}-${Date.now()}`;
  let store = await IndexedDbStore.open({ name, key: KEY });
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await IndexedDbStore.open({ name, key: KEY });
      return store;
    },
    cleanup: async () => IndexedDbStore.destroy(name),
  };
});
storeContract('memory (in Chromium)', async () => ({ store: await MemoryStore.open(), cleanup: async () => {} }));
publishResults();
