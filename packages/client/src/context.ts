/**
 * What the client's modules share: the parts the facade wires together once at open. Modules
 * take this instead of the Client, so none of them imports the facade.
 */
import type { CryptoProvider, reliability as rel } from '@umbra/protocol';
import type { ClientOptions } from './client-types.ts';
import type { ClientEvents } from './client-events.ts';
import type { ClientStats } from './client-types.ts';
import type { LoadedConversations } from './conversation-records.ts';
import type { AccountKey, ConversationState } from './conversation-state.ts';
import type { Delivery, ServiceEndpointDelivery } from './delivery.ts';
import type { Publisher } from './publisher.ts';
import type { Store } from './store.ts';

export interface ClientContext {
  readonly crypto: CryptoProvider;
  readonly store: Store;
  readonly clock: () => number;
  readonly policy: rel.ReliabilityPolicy;
  readonly stats: ClientStats;
  readonly state: ConversationState;
  readonly publisher: Publisher;
  readonly events: ClientEvents;
  /** The delivery's receiving-service side, when it has one (ServicesDelivery). */
  readonly services: ServiceEndpointDelivery | null;
  /** Our display name (sent in presentations). */
  profileName(): string;
  /** Subscribe to the engine's receive routes not yet subscribed (after a new inbox or conversation). */
  subscribeRoutes(): void;
}

/** What Client.open hands the constructor: the opened store, the account and everything loaded from it. */
export interface ClientWiring {
  readonly crypto: NonNullable<ClientOptions['crypto']>;
  readonly store: Store;
  readonly ownsStore: boolean;
  readonly delivery: Delivery;
  readonly account: AccountKey;
  readonly profileName: string;
  readonly loaded: LoadedConversations;
  readonly clock: () => number;
  readonly options: ClientOptions;
}
