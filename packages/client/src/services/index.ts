/** The Communicator services delivery (issuer, SSA, RSAs); platform-neutral (FileStateStore is in @umbra/client/node). */
export { ServicesDelivery, SERVICES_ROUTE, SERVICES_STATE_FILE, type ServicesConfig, type ServicesDeliveryOptions } from './delivery.ts';
export { MemoryStateStore, type ServicesState, type ServicesStateStore, type RsaRecord, type SeedRecord } from './state.ts';
