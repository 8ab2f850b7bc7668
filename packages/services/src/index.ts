/** @umbra/services: issuer, SSA, RSA, directory, hub and storage (their clients: @umbra/client/http). */
export * from './addresses.ts';
export { b64u, fromB64u } from './bytes.ts';
export { startHub, type Hub, type HubOptions, type HubRsa } from './hub.ts';
export { ensurePrivateDir, preparePrivateDatabase, PrivateDirError } from './private-files.ts';
export { startIssuer, type IssuerOptions, type IssuerService, type TokenClass } from './issuer.ts';
export { startRsa, wsAuthMessage, DEFAULT_RSA_LIMITS, KEY_SCHEDULE, type RsaLimits, type RsaOptions, type RsaService } from './rsa.ts';
export { startSsa, DEFAULT_SSA_LIMITS, type SsaLimits, type SsaOptions, type SsaService } from './ssa.ts';
export { generateInboxDhKey, openStored } from './seal.ts';
export { TokenMinter, TokenVerifier, parseIssuerPublicKey, authorizationHeader, tokenChallenge } from './tokens.ts';
export type { Clock } from './common.ts';
export * from './directory/index.ts';
