/**
 * @umbra/protocol's public API: what the client, the services and the node crypto provider
 * build on. The Engine (sessions, classify, seal), its persisted state, invitations, the crypto
 * provider contract, byte helpers, and four namespaces: `wire` (message schemas and limits),
 * `group` (group/v1), `transparency` (directory log) and `reliability` (the sans-I/O machine).
 * Ratchet, PQXDH, padding, hint and codec internals are not exported: tests import them by path.
 */
export type { CryptoProvider, HpkeSealed, KemEncapsulation, KeyPair } from './crypto/provider.ts';
export { nobleProvider } from './crypto/noble.ts';
/** HPKE base mode (RFC 9180) over a provider's primitives: for providers that add a fast path. */
export { hpkeOpenBase, hpkeSealBase, type HpkePrimitives } from './crypto/hpke.ts';
export {
  concat,
  constantTimeEqual,
  fromBase64Url,
  fromHex,
  fromUtf8,
  isAllZero,
  readU32be,
  toBase64Url,
  toHex,
  u32be,
  utf8,
} from './bytes.ts';
export { UmbraError, type UmbraErrorCode } from './errors.ts';
export {
  INVITATION_PREFIX,
  invitationText,
  parseInvitation,
  safetyNumber,
  type Inbox,
  type ParsedInvitation,
  type Presentation,
} from './invitation.ts';
export {
  INVITATION_LINK_KEY_BYTES,
  MAX_INVITATION_BLOB_BYTES,
  MAX_INVITATION_LINK_CHARS,
  invitationBlobPath,
  invitationLink,
  invitationLinkLocator,
  looksLikeInvitationLink,
  openInvitationBlob,
  parseInvitationLink,
  sealInvitationBlob,
  type InvitationBlobJson,
  type InvitationLink,
} from './invitation-link.ts';
export type { FrameBody, PrivateConversation } from './private-v1.ts';
export {
  Engine,
  type BadlyFormedReason,
  type ClassifyContext,
  type ClassifyResult,
  type ConversationStarted,
  type EngineSnapshot,
  type Outgoing,
  type RefusalReply,
  type StateChanges,
} from './engine.ts';
export type { HandshakeRefused, HandshakeRefusalReason } from './handshake-refusal.ts';
export { deserializeConversation, deserializeInbox, serializeConversation, serializeInbox } from './state.ts';
export { PackedBytes } from './packed-bytes.ts';
export * as wire from './wire/index.ts';
export * as group from './group/index.ts';
export * as transparency from './transparency/index.ts';
export * as reliability from './reliability/index.ts';
