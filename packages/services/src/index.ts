/**
 * @umbra/services' public API, for the CLI's hub, deployments, tests and load scripts: the
 * servers (issuer, SSA, RSA, directory, hub) with their options and limits, private-file setup,
 * token minting and verifying, and the address math they share with clients (re-exported from
 * @umbra/protocol/services). Their clients are in @umbra/client/http. Every name is listed on
 * purpose; the rest is internal.
 */
export {
  ADDRESS_LENGTH,
  POINT_LENGTH,
  SCALAR_LENGTH,
  addressKid,
  deriveAddress,
  encodeAddress,
  generateAddressKey,
  generateSeed,
  isValidPoint,
  parseAddress,
  randomScalar,
  rerandomizeAddress,
  resolveAddress,
  type AddressClass,
  type AddressKey,
  type AddressParts,
  type ParsedAddress,
  type RerandomizeResult,
} from '@umbra/protocol/services';
export { b64u, fromB64u } from './bytes.ts';
export { startHub, type Hub, type HubOptions, type HubRsa } from './hub.ts';
export { startInstance, readKeyFile, generateKeyFile, InstanceConfigError, ROLES, type Instance, type InstanceConfig, type Role } from './instance.ts';
export { readyUrl } from './ready-line.ts';
export { ensurePrivateDir, preparePrivateDatabase, PrivateDirError } from './private-files.ts';
export { startIssuer, type IssuerOptions, type IssuerService, type TokenClass } from './issuer.ts';
export { startRsa, wsAuthMessage, DEFAULT_RSA_LIMITS, KEY_SCHEDULE, type RsaLimits, type RsaOptions, type RsaService } from './rsa.ts';
export { ShardAdmin, ShardMapError, ShardUnavailableError, type MoveReport, type ShardAdminOptions, type ShardMap } from './shards.ts';
export { startSsa, DEFAULT_SSA_LIMITS, type SsaLimits, type SsaOptions, type SsaService } from './ssa.ts';
export { TokenVerifier, authorizationHeader, tokenChallenge } from './tokens.ts';
export type { Clock } from './common.ts';
export {
  startDirectory,
  DEFAULT_DIRECTORY_LIMITS,
  SqlDirectoryStore,
  POLICIES,
  ed25519FromSeed,
  generateEd25519,
  type DirectoryLimits,
  type DirectoryOptions,
  type DirectoryService,
  type Policy,
  type Ed25519Key,
} from './directory/index.ts';
