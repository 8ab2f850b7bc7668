/** The directory service, its store and its HTTP client (docs/DIRECTORY.md). */
export { startDirectory, DEFAULT_DIRECTORY_LIMITS, type DirectoryLimits, type DirectoryOptions, type DirectoryService } from './server.ts';
export { SqlDirectoryStore, POLICIES, type Policy } from './store.ts';
export { DirectoryHttpClient, type ContactResult, type DirectoryAuth, type DirectoryInfo, type DirectoryProblem, type RegisterResult } from './client.ts';
export { ed25519FromSeed, generateEd25519, type Ed25519Key } from '../httpsig.ts';
