/**
 * `@umbra/client/services-http`: HTTP/WebSocket clients for the Communicator services (issuer,
 * SSA, RSA) on `fetch`, WebCrypto and a WebSocket constructor. Platform-neutral: no node:
 * imports; the Node entry (`@umbra/client/node`) supplies node:crypto and `ws` as options.
 */
export { ServiceError, type Problem } from './problem.ts';
export {
  DescriptorError,
  addressKeysOf,
  currentAddressKey,
  fetchDescriptor,
  tokenInfoFromJson,
  tokenInfoOf,
  verifyDescriptor,
  type Descriptor,
  type PublishedAddressKey,
  type TokenInfo,
} from './descriptor.ts';
export { IssuerClient, TokenWallet, MINT_BATCH } from './issuer.ts';
export { SsaClient, DEFAULT_SUBMIT_TTL_S, type SubmitResult } from './ssa.ts';
export { RsaClient, InboxClient, type InboxConnection, type InboxCredentials, type RsaMessage, type SeedGrant, type ServiceClientOptions } from './rsa.ts';
export { TokenMinter, TokenKeyError, parseIssuerPublicKey, type IssuerPublicKey, type PendingToken } from './token-minter.ts';
export { ed25519FromSeed, keyidOf, signRequest, type Ed25519Key } from './request-signing.ts';
export type { WebSocketConstructor, WebSocketLike } from './websocket.ts';
