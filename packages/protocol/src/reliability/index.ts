/** Reliability as a sans-I/O state machine (docs/PROTOCOL.md §8 "Reliability"). */
export * from './limits.ts';
export * from './state.ts';
export * from './machine.ts';
