export { Client } from './client.ts';
export type {
  ClientEvent,
  ClientEventMap,
  ClientOptions,
  ClientStats,
  ConversationInfo,
  HistoryPage,
  InvitationInfo,
  MessageInfo,
} from './client.ts';
export { MAX_TEXT_BYTES, MAX_INVITATION_CHARS } from './client.ts';
export { ClientError, type ClientErrorCode } from './errors.ts';
export type { Delivery, DeliveredEnvelope, EnvelopeHandler, FetchResult, ServiceEndpointDelivery, Subscription } from './delivery.ts';
export { hasServiceEndpoints } from './delivery.ts';
export * from './services/index.ts';
export { MemoryNetwork, MemoryDelivery, type ChaosOptions, type NetworkStats } from './memory-delivery.ts';
export { MailboxDelivery } from './mailbox-delivery.ts';
export type * from './store.ts';
export { SqliteStore, SCHEMA_VERSION, type SqliteStoreOptions } from './sqlite-store.ts';
export { DEFAULT_ARGON2ID, deriveStoreKey, type Argon2idParams } from './at-rest.ts';
export { SeededRandom } from './rng.ts';
export { nodeProvider } from './crypto/node-provider.ts';
export {
  Groups,
  GroupError,
  type GroupInfo,
  type GroupMemberInfo,
  type GroupMessageInfo,
  type GroupHistoryPage,
  type GroupStatus,
  type GroupErrorCode,
  type GroupChangeKind,
  type GroupChangeInfo,
  type GroupMemberRef,
  type GroupRejectedInfo,
  type GroupRejectReason,
  type GroupAddOutcome,
  type GroupAddResult,
  type GroupInviteResult,
  type GroupRecipientInfo,
  type GroupSendResult,
} from './group/groups.ts';
export * from './directory/index.ts';
