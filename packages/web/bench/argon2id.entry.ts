/**
 * Injected into the web app's own page by packages/web/bench/run.ts (an IIFE evaluated through
 * the DevTools protocol, which the page's CSP does not govern): one Argon2id with the web app's
 * unlock parameters, so the unlock's key derivation can be taken out of the page-load figure in
 * the same renderer, right after each load.
 */
import { nobleArgon2id } from '../../client/src/at-rest-scheme.ts';
import { WEB_ARGON2ID } from '../src/session.ts';

(globalThis as { __umbraArgon2idMs?: () => Promise<number> }).__umbraArgon2idMs = async () => {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const t = performance.now();
  await nobleArgon2id(new TextEncoder().encode('correct horse battery'), salt, WEB_ARGON2ID, 32);
  return performance.now() - t;
};
