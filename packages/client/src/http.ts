/**
 * `@umbra/client/http`: the services' HTTP/WebSocket clients on their own (issuer, SSA, RSA,
 * directory), platform-neutral: what the services' tests, the load test and tools use without
 * the rest of the SDK.
 */
export * from './services/http/index.ts';
export { DirectoryHttpClient, type ContactResult, type DirectoryAuth, type DirectoryInfo, type DirectoryProblem, type RegisterResult } from './directory/http.ts';
