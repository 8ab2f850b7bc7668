/**
 * Node 20 lacks `Promise.withResolvers` (Node 22 has it); current libp2p dependencies (it-queue,
 * used by the peer store's lock) call it at the first peer-store write. Import this module before
 * anything from libp2p or js-waku (the adapter module does, first).
 */
interface WithResolversCtor {
  withResolvers?: <T>() => { promise: Promise<T>; resolve: (value: T | PromiseLike<T>) => void; reject: (reason?: unknown) => void };
}

const P = Promise as unknown as WithResolversCtor;
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T>() {
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason?: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

export {};
