/**
 * Browser side of packages/web/bench/run.ts: the protocol engine's runners from bench/protocol.ts
 * (the code `npm run bench` times in Node, bundled unchanged) on the browser provider (what the
 * web app uses: noble + WebCrypto X25519 inside HPKE) and on plain noble, plus the web app's
 * Argon2id unlock on its own. The Node side calls them one round at a time through
 * `page.evaluate`, so Node and Chromium rounds can be interleaved and share the machine's drift.
 */
import { nobleProvider } from '@umbra/protocol';
import { umbraRunner } from '../../../bench/protocol.ts';
import { nobleArgon2id } from '../../client/src/at-rest-scheme.ts';
import { browserProvider } from '../../client/src/crypto/browser-provider.ts';
import { WEB_ARGON2ID } from '../src/session.ts';

export type BrowserProviderName = 'browser' | 'noble';

export interface BrowserBench {
  oneWay(provider: BrowserProviderName, n: number): Promise<number>;
  pingPong(provider: BrowserProviderName, n: number): Promise<number>;
  setup(provider: BrowserProviderName): Promise<number>;
  /** One Argon2id of the web app's unlock (its parameters, a fresh salt), in ms. */
  argon2id(): Promise<number>;
}

const target = globalThis as { __umbraBench?: BrowserBench; __umbraResults?: unknown };

async function start(): Promise<void> {
  const runners = { browser: await umbraRunner(browserProvider), noble: await umbraRunner(nobleProvider) };
  target.__umbraBench = {
    oneWay: (p, n) => runners[p].oneWay(n),
    pingPong: (p, n) => runners[p].pingPong(n),
    setup: (p) => runners[p].setup(),
    async argon2id() {
      const salt = crypto.getRandomValues(new Uint8Array(16));
      const t = performance.now();
      await nobleArgon2id(new TextEncoder().encode('correct horse battery'), salt, WEB_ARGON2ID, 32);
      return performance.now() - t;
    },
  };
  target.__umbraResults = 'ready';
}

start().catch((e: unknown) => {
  target.__umbraResults = { fatal: String((e as Error)?.stack ?? e) };
});
