/** The Communicator services delivery (issuer, SSA, RSAs). Node-only. */
export { ServicesDelivery, SERVICES_ROUTE, SERVICES_STATE_FILE, type ServicesConfig, type ServicesDeliveryOptions } from './delivery.ts';
export { FileStateStore, MemoryStateStore, type ServicesState, type ServicesStateStore, type RsaRecord, type SeedRecord } from './state.ts';
