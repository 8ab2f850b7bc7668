/**
 * One signed-in person in the web app: the encrypted IndexedDB store, the hub's services as the
 * delivery (fetch + the browser's WebSocket, CORS-allowed by the hub), and the SDK's Client on
 * the browser crypto provider. Errors the person can act on become `UserFacingError`s with a
 * sentence to show (wrong passphrase, hub unreachable, bad invitation, …).
 */
import { Client, ClientError, ServiceError, ServicesDelivery, browserProvider, openBrowserStore, browserStoreExists, type Store } from '@umbra/client/browser';

/** What `umbra hub` serves at /umbra-hub.json: where its services are. */
export interface HubConfig {
  readonly issuer: string;
  readonly ssa: string;
  readonly rsas: readonly string[];
  readonly directory?: string;
}

/**
 * Argon2id cost for the web store's passphrase. The SDK's default (RFC 9106: 64 MiB, 3 passes,
 * 4 lanes) takes ~6.4 s in Chromium's JavaScript (noble; no native Argon2 in browsers), so the
 * web app uses OWASP's minimum for Argon2id, 19 MiB and 2 passes (~0.9 s); docs/WEB.md.
 */
export const WEB_ARGON2ID = { m: 19 * 1024, t: 2, p: 1 } as const;
/** The IndexedDB database of the web app's one identity. */
export const WEB_STORE_NAME = 'umbra-web';
/** Retries sooner than the SDK's default (2 s doubling to 5 min): a tab is short-lived. */
const WEB_RETRY = { initialMs: 1000, maxMs: 15_000 } as const;
const WEB_SYNC_INTERVAL_MS = 10_000;

export class UserFacingError extends Error {
  override readonly name = 'UserFacingError';
  constructor(
    readonly kind: 'wrong-passphrase' | 'in-another-tab' | 'hub-unreachable' | 'bad-invitation' | 'invalid' | 'other',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The sentence to show for an error from the SDK, the network or the hub. */
export function explain(e: unknown, hub?: HubConfig): UserFacingError {
  if (e instanceof UserFacingError) return e;
  if (e instanceof ClientError) {
    switch (e.code) {
      case 'wrong-passphrase':
        return new UserFacingError('wrong-passphrase', 'Wrong passphrase. Try again.', { cause: e });
      case 'store-locked':
        // One tab per identity (openBrowserStore's Web Lock): two would overwrite each other's sessions.
        return new UserFacingError('in-another-tab', 'This identity is open in another tab. Use that tab, or close it and try again here.', { cause: e });
      case 'invitation-malformed':
        return new UserFacingError('bad-invitation', 'That is not a valid invitation. Check that you pasted all of it.', { cause: e });
      case 'invitation-bad-signature':
        return new UserFacingError('bad-invitation', 'That invitation has been tampered with or damaged (its signature does not verify).', { cause: e });
      case 'invitation-expired':
        return new UserFacingError('bad-invitation', 'That invitation has expired. Ask for a new one.', { cause: e });
      case 'invitation-unsupported-version':
        return new UserFacingError('bad-invitation', 'That invitation is from a newer version of Umbra.', { cause: e });
      case 'invitation-own':
        return new UserFacingError('bad-invitation', 'That is your own invitation: send it to the person you want to talk to.', { cause: e });
      case 'message-too-large':
        return new UserFacingError('invalid', 'That message is too long.', { cause: e });
      case 'delivery-failed':
        return new UserFacingError('hub-unreachable', `Cannot reach the hub${hub ? ` at ${hub.issuer}` : ''}. Is \`umbra hub\` running?`, { cause: e });
      default:
        return new UserFacingError('other', e.message, { cause: e });
    }
  }
  if (e instanceof ServiceError) return new UserFacingError('other', `The hub refused: ${e.message}`, { cause: e });
  // fetch() rejects with a TypeError when the server cannot be reached (or CORS blocks it).
  if (e instanceof TypeError && /fetch|network|Failed/i.test(e.message)) {
    return new UserFacingError('hub-unreachable', `Cannot reach the hub${hub ? ` at ${hub.issuer}` : ''}. Is \`umbra hub\` running?`, { cause: e });
  }
  return new UserFacingError('other', e instanceof Error ? e.message : String(e), { cause: e });
}

export async function loadHubConfig(fetchImpl: typeof fetch = fetch): Promise<HubConfig> {
  let res: Response;
  try {
    res = await fetchImpl('/umbra-hub.json', { cache: 'no-store' });
  } catch (e) {
    throw new UserFacingError('hub-unreachable', 'Cannot reach the hub that serves this page. Is `umbra hub` running?', { cause: e });
  }
  if (!res.ok) throw new UserFacingError('hub-unreachable', `The hub's configuration is missing (${res.status}). Serve this app with \`umbra hub\`.`);
  const j = (await res.json()) as Partial<HubConfig>;
  if (typeof j.issuer !== 'string' || typeof j.ssa !== 'string' || !Array.isArray(j.rsas) || !j.rsas.every((u) => typeof u === 'string')) {
    throw new UserFacingError('other', "The hub's configuration is not valid.");
  }
  return { issuer: j.issuer, ssa: j.ssa, rsas: j.rsas, ...(typeof j.directory === 'string' ? { directory: j.directory } : {}) };
}

export class WebSession {
  private constructor(
    readonly hub: HubConfig,
    readonly store: Store,
    readonly delivery: ServicesDelivery,
    readonly client: Client,
  ) {}

  /** Whether this browser already holds an identity (the encrypted store exists). */
  static exists(): Promise<boolean> {
    return browserStoreExists(WEB_STORE_NAME);
  }

  /**
   * Opens the identity with its passphrase, or creates it (with `name`) when there is none. The
   * store opens before any network call, so a wrong passphrase is reported even with the hub down.
   */
  static async open(hub: HubConfig, options: { passphrase: string; name?: string; onError?: (e: Error) => void }): Promise<WebSession> {
    const creating = !(await WebSession.exists());
    if (creating && (options.name === undefined || options.name.trim() === '')) throw new UserFacingError('invalid', 'Choose a name people will see.');
    if (options.passphrase.length < 8) throw new UserFacingError(creating ? 'invalid' : 'wrong-passphrase', creating ? 'Use a passphrase of at least 8 characters.' : 'Wrong passphrase. Try again.');
    let store: Store | null = null;
    let delivery: ServicesDelivery | null = null;
    try {
      store = await openBrowserStore({ name: WEB_STORE_NAME, passphrase: options.passphrase, argon2id: WEB_ARGON2ID });
      // Background failures (a socket that dropped, a retry that failed) are not the person's to
      // handle: they go to the console (SDK messages carry no key material), and the outbox retries.
      const onError = options.onError ?? ((e: Error) => console.warn('[umbra] delivery:', e.message));
      delivery = await ServicesDelivery.open({ store, issuer: hub.issuer, ssa: hub.ssa, rsas: hub.rsas, crypto: browserProvider, onError });
      const client = await Client.open({
        store,
        delivery,
        crypto: browserProvider,
        retry: WEB_RETRY,
        syncIntervalMs: WEB_SYNC_INTERVAL_MS,
        ...(creating ? { profile: { name: options.name!.trim() } } : {}),
      });
      client.on('error', (e) => console.warn('[umbra] client:', e.code, e.message));
      return new WebSession(hub, store, delivery, client);
    } catch (e) {
      await delivery?.close().catch(() => undefined);
      await store?.close().catch(() => undefined);
      throw explain(e, hub);
    }
  }

  async close(): Promise<void> {
    await this.client.close().catch(() => undefined);
    await this.delivery.close().catch(() => undefined);
    await this.store.close().catch(() => undefined);
  }
}
