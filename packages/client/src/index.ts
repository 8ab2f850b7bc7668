/**
 * @umbra/client's public API, platform-neutral, for apps and the CLI: the Client facade and its
 * event and info types, the relationship ports, the Delivery contract with the memory and
 * services adapters, the Store contract, the platform hook, groups and the directory client.
 * Node-only pieces (SQLite, Argon2id, node:crypto, mailbox, state files) are in
 * @umbra/client/node. Every name is listed on purpose; modules' other exports are internal
 * (tests import them by path).
 */
export { Client } from './client.ts';
export type {
  ClientEvent,
  ClientEventMap,
  ClientOptions,
  ClientStats,
  ConversationInfo,
  GossipSource,
  HistoryPage,
  InvitationInfo,
  MessageInfo,
  RelationshipInfo,
  RelationshipSigner,
} from './client-types.ts';
export { MAX_TEXT_BYTES, MAX_INVITATION_CHARS } from './client-types.ts';
export { ClientError, refusalReasonText, type ClientErrorCode } from './errors.ts';
export { fetchInvitationFromLink, type LinkTokenSource, type PublishedLink, type ShortLinkOptions } from './invitation-links.ts';
export type { Delivery, DeliveredEnvelope, EnvelopeHandler, FetchResult, ServiceEndpointDelivery, Subscription } from './delivery.ts';
export { hasServiceEndpoints } from './delivery.ts';
export {
  ServicesDelivery,
  SERVICES_ROUTE,
  SERVICES_STATE_FILE,
  MemoryStateStore,
  type ServicesConfig,
  type ServicesDeliveryOptions,
  type ServicesState,
  type ServicesStateStore,
  type RsaRecord,
  type SeedRecord,
} from './services/index.ts';
export {
  IssuerClient,
  TokenWallet,
  SsaClient,
  RsaClient,
  InboxClient,
  ServiceError,
  DescriptorError,
  fetchDescriptor,
  verifyDescriptor,
  tokenInfoOf,
  addressKeysOf,
  currentAddressKey,
  type Descriptor,
  type TokenInfo,
  type PublishedAddressKey,
  type Problem,
  type RsaMessage,
  type SeedGrant,
  type InboxCredentials,
  type ServiceClientOptions,
  type SubmitResult,
  type WebSocketConstructor,
} from './services/http/index.ts';
export { DirectoryHttpClient, type DirectoryInfo, type DirectoryProblem, type DirectoryAuth } from './directory/http.ts';
export { registerPlatform, platform, type Platform, type DataDirStoreOptions } from './platform.ts';
export type { Argon2idParams } from './at-rest.ts';
export { MemoryNetwork, MemoryDelivery, type ChaosOptions, type NetworkStats } from './memory-delivery.ts';
/** The Store contract: what an app implements to keep the client's state elsewhere. */
export type {
  AccountReads,
  Consent,
  ConversationMeta,
  ConversationReads,
  DirectoryReads,
  GroupReads,
  MessageReads,
  OutboxReads,
  ServiceAccountReads,
  SettingsReads,
  ConversationOrigin,
  HistoryPosition,
  MessageKey,
  MessageStatus,
  MissingEntry,
  OutboxEntry,
  OutboxKind,
  SeenEnvelope,
  Store,
  StoreBatch,
  StoredAccount,
  StoredConversation,
  StoredGroup,
  StoredGroupEvent,
  StoredGroupMessage,
  StoredInbox,
  StoredMessage,
} from './store.ts';
export { SeededRandom } from './rng.ts';
export {
  Groups,
  GroupError,
  type GroupInfo,
  type GroupMemberInfo,
  type GroupMessageInfo,
  type GroupHistoryPage,
  type GroupStatus,
  type GroupErrorCode,
  type GroupEvent,
  type GroupEventMap,
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
export {
  DirectoryClient,
  DirectoryError,
  directoryIdentity,
  parseNameAddress,
  type DirectoryErrorCode,
  type DirectoryEventMap,
  type DirectoryStatus,
  type DirectoryTokenSource,
  type KeyAlert,
  type OpenDirectoryOptions,
  type SplitView,
} from './directory/directory.ts';
