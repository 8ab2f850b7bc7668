/**
 * Chromium side of store-chromium.test.ts: the client's Store contract suite
 * (packages/client/test/store-contract.ts) unchanged, against the stores a browser app uses:
 * the IndexedDB store on Chromium's real IndexedDB (persisting across a reopen), and the memory
 * store as the reference.
 */
import { MemoryStore } from '../../../client/src/memory-store.ts';
import { storeContract } from '../../../client/test/store-contract.ts';
import { publishResults } from '../harness/node-test-shim.ts';

storeContract('memory (in Chromium)', async () => ({ store: await MemoryStore.open(), cleanup: async () => {} }));
publishResults();
