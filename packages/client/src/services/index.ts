/** The Communicator services delivery (issuer, SSA, RSAs); platform-neutral. Its account lives in the client Store (or any ServicesStateStore). */
export { ServicesDelivery, SERVICES_ROUTE, SERVICES_STATE_FILE, type ServicesConfig, type ServicesDeliveryOptions } from './delivery.ts';
export { MemoryStateStore, parseServicesState, storeServicesState, type ServicesState, type ServicesStateStore, type RsaRecord, type SeedRecord } from './state.ts';
