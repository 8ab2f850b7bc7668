/** The directory service and its store (docs/DIRECTORY.md); its HTTP client is @umbra/client/http. */
export { startDirectory, DEFAULT_DIRECTORY_LIMITS, type DirectoryLimits, type DirectoryOptions, type DirectoryService } from './server.ts';
export { SqlDirectoryStore, POLICIES, type Policy } from './store.ts';
export { ed25519FromSeed, generateEd25519, type Ed25519Key } from '../httpsig.ts';
