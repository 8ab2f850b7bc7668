/** Directory transparency (communicator.md §7): RFC 9162 Merkle log, checkpoints, attestations, client checks. */
export * from './merkle.ts';
export * from './log.ts';
export * from './attestations.ts';
export * from './verify.ts';
