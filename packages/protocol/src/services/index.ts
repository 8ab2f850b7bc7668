/** `@umbra/protocol/services`: what the services and their clients share (pure, noble only). */
export * from './addresses.ts';
export * from './contract.ts';
