/**
 * ServicesDelivery: the client's adapter for the Communicator services (issuer, SSA, RSAs).
 *
 * - Account: registers at the issuer once, then mints Privacy Pass tokens per origin (SSA for
 *   every submission, each RSA for its inbox and seeds); unspent tokens are persisted.
 * - Receiving: one inbox at EACH receiving service (auth key + HPKE key). A new relationship
 *   gets one seed per RSA, from which we derive an address offline; the endpoints go into the
 *   invitation or acceptance. Envelopes arrive by WebSocket push and by `fetch` (cursor paging;
 *   the first fetch of a process starts from the oldest unacknowledged message). Each is handed
 *   to the client with `route` = hex of the address its seed was derived into, and acknowledged
 *   to the RSA (deleted there) only after the client has finished with it: the push handler's
 *   promise resolved true, or for `fetch` pages, when the client asks for the page after (it only
 *   does so once the previous page is processed). Nothing is acknowledged before that, so an RSA
 *   or client crash at any point at worst re-delivers (the client dedupes).
 * - Sending: `publishEndpoint` checks the peer RSA's signed descriptor against the endpoint's
 *   key fingerprint, re-randomizes the address with the key of its kid (every message gets an
 *   unlinkable address) and submits it through our SSA with a token. It rejects when the RSA
 *   does not answer its descriptor (then the client tries the peer's next RSA).
 * - Rotation: a relationship's endpoints are rotated (fresh seeds) when the newest of ours is
 *   older than `rotateAfterMs`; old seeds stay valid until their not_after. The client asks for
 *   rotation endpoints synchronously while it seals a message, so one set is reserved ahead
 *   (taken from the pool and saved) and handed out when asked for.
 * - State: the account lives in the client's Store (`serviceAccount`), or any ServicesStateStore.
 *   Saves are serialized (each writes the latest state; none interleave), and nothing leaves
 *   this process on the strength of a change that is not durable yet: a token is handed to a
 *   service, and a seed's address to a peer, only after the state that records it as used has
 *   been saved. A crash can waste a token or a seed, never spend one twice.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { fromBase64Url, toBase64Url, toHex, wire, type CryptoProvider } from '@umbra/protocol';
import { deriveAddress, rerandomizeAddress } from '@umbra/protocol/services';
import { platform } from '../platform.ts';
import type { Store } from '../store.ts';
import {
  IssuerClient,
  InboxClient,
  RsaClient,
  SsaClient,
  addressKeysOf,
  currentAddressKey,
  fetchDescriptor,
  tokenInfoOf,
  type Descriptor,
  type RsaMessage,
  type ServiceClientOptions,
  type TokenInfo,
} from './http/index.ts';
import type { WebSocketConstructor } from './http/websocket.ts';
import type { DeliveredEnvelope, EnvelopeHandler, FetchResult, ServiceEndpointDelivery, Subscription } from '../delivery.ts';
import { ClientError } from '../errors.ts';
import { storeServicesState, type RsaRecord, type SeedRecord, type ServicesState, type ServicesStateStore } from './state.ts';

export const SERVICES_ROUTE = 'umbra-services-inboxes';
/** The side file earlier releases kept the account in (the data-dir store imports it once when it opens). */
export const SERVICES_STATE_FILE = 'services.json';

export interface ServicesConfig {
  readonly issuer: string;
  readonly ssa: string;
  /** Our receiving services (at least one; the hub has two). */
  readonly rsas: readonly string[];
}

export interface ServicesDeliveryOptions extends ServicesConfig {
  /**
   * Where the account lives: the client's Store (the one the Client using this delivery writes;
   * the account is its `serviceAccount` document), or, for an app that keeps it elsewhere,
   * `stateStore`. Exactly one of the two.
   */
  readonly store?: Store;
  readonly stateStore?: ServicesStateStore;
  /** Ed25519/X25519/HPKE for the inboxes (default: the platform's provider). */
  readonly crypto?: CryptoProvider;
  /** The WebSocket for push (default: the platform's). */
  readonly webSocket?: WebSocketConstructor;
  /** Lifetime of a relationship's seeds (default 90 days). */
  readonly seedLifetimeS?: number;
  /** Rotate a relationship's addresses when ours are older than this (default 7 days). */
  readonly rotateAfterMs?: number;
  /** Time to live of a submission at the SSA (default 7 days, the SSA's maximum). */
  readonly submitTtlS?: number;
  /** Background errors (a socket that failed, a refill that failed). */
  readonly onError?: (e: Error) => void;
}

const SEEDS_PER_REFILL = 10;
const POOL_LOW = 2;
const SSA_TOKEN_BATCH = 20;
const HEALTH_TTL_MS = 3000;
const KEYS_TTL_MS = 10 * 60_000;
const FETCH_LIMIT = 100;
/** A reserved rotation set older than this goes back to the pool (its address keys may have moved on). */
const RESERVATION_TTL_MS = KEYS_TTL_MS;
/**
 * What we submit is `0x01 ‖ 16 random bytes ‖ envelope`. The RSA drops a payload it stored in the
 * last 24 h for the same inbox (so the SSA's own retries never duplicate); the random prefix makes
 * each of the CLIENT's retries a new payload, so a retry after a lost acknowledgement reaches the
 * peer, which then acknowledges again (it dedupes the envelope itself).
 */
const PAYLOAD_V1 = 0x01;
const PAYLOAD_NONCE = 16;

function wrapPayload(envelope: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + PAYLOAD_NONCE + envelope.length);
  out[0] = PAYLOAD_V1;
  out.set(randomBytes(PAYLOAD_NONCE), 1);
  out.set(envelope, 1 + PAYLOAD_NONCE);
  return out;
}

function unwrapPayload(payload: Uint8Array): Uint8Array | null {
  if (payload.length <= 1 + PAYLOAD_NONCE || payload[0] !== PAYLOAD_V1) return null;
  return payload.slice(1 + PAYLOAD_NONCE);
}

interface PeerRsa {
  checkedAt: number;
  ok: boolean;
  error?: string;
  fingerprint?: string;
  keys?: Map<number, Uint8Array>;
  keysAt?: number;
}

interface Page {
  readonly acks: { readonly rsa: number; readonly mid: Uint8Array }[];
  readonly cursors: (string | undefined)[];
}

const fingerprintOf = (key: Uint8Array) => toHex(sha256(key));
const b64u = toBase64Url;
const fromB64u = (text: string): Uint8Array | null => fromBase64Url(text);
const randomBytes = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n));
const trim = (u: string) => u.replace(/\/+$/, '');

/** The first reconnect after a socket drops comes within this (jittered over its second half). */
export const RECONNECT_FIRST_MS = 250;
/** The longest wait between attempts while an outage is young. */
export const RECONNECT_FAST_CAP_MS = 1000;
/** How long an outage counts as young (a service restarting, a brief network drop). */
export const RECONNECT_FAST_WINDOW_MS = 60_000;
/** The longest wait between attempts after that. */
export const RECONNECT_MAX_MS = 10_000;

/**
 * Wait before reconnect attempt `failures + 1` of an outage that began `downForMs` ago: doubling
 * from RECONNECT_FIRST_MS, capped at RECONNECT_FAST_CAP_MS within RECONNECT_FAST_WINDOW_MS of
 * the drop and at RECONNECT_MAX_MS after it, times U(0.5, 1) (`random` in [0, 1)).
 */
export function reconnectDelayMs(failures: number, downForMs: number, random: number): number {
  const cap = downForMs < RECONNECT_FAST_WINDOW_MS ? RECONNECT_FAST_CAP_MS : RECONNECT_MAX_MS;
  return Math.min(cap, RECONNECT_FIRST_MS * 2 ** Math.min(6, failures)) * (0.5 + random * 0.5);
}

export class ServicesDelivery implements ServiceEndpointDelivery {
  readonly servicesRoute = SERVICES_ROUTE;
  private readonly issuer: IssuerClient;
  private readonly ssa: SsaClient;
  private readonly inboxes: InboxClient[];
  private readonly net: ServiceClientOptions;
  private readonly descriptors = new Map<string, Descriptor>();
  private readonly peers = new Map<string, PeerRsa>();
  private readonly handlers = new Set<EnvelopeHandler>();
  private readonly sockets: ({ ack(mids: Uint8Array[]): void; close(): void } | null)[] = [];
  private readonly reconnectTimers = new Set<ReturnType<typeof setTimeout>>();
  /** Pushed messages being handled (fetch waits for them instead of handing them over twice). */
  private readonly inProgress = new Map<string, Promise<void>>();
  private readonly acked = new Set<string>();
  private readonly pages = new Map<string, Page>();
  private refilling: Promise<void> | null = null;
  /** The save that has not started yet (later changes ride on it); null when none waits. */
  private saveQueued: Promise<void> | null = null;
  /** The last save in the chain (saves run one at a time, in order). */
  private saveTail: Promise<void> = Promise.resolve();
  /** Rotation endpoints taken from the pool and durably marked used, for the next rotationEndpoints call. */
  private reserved: { readonly endpoints: wire.DeliveryEndpoint[]; readonly seeds: SeedRecord[]; readonly at: number } | null = null;
  private reserving: Promise<void> | null = null;
  private minting = new Map<string, Promise<void>>();
  private connected = false;
  private closed = false;
  private pageCounter = 0;
  /** Envelopes handed to the client, by route (tests and diagnostics). */
  readonly receivedByRoute = new Map<string, number>();
  readonly seedLifetimeS: number;
  readonly rotateAfterMs: number;
  private readonly submitTtlS: number;

  private constructor(
    private readonly state: ServicesState,
    private readonly stateStore: ServicesStateStore,
    private readonly options: ServicesDeliveryOptions,
  ) {
    this.issuer = new IssuerClient(state.issuer.url, state.issuer.secret);
    this.ssa = new SsaClient(state.ssa.url);
    this.net = ServicesDelivery.networkOf(options);
    this.inboxes = state.rsas.map(
      (r) =>
        new InboxClient(
          r.url,
          {
            inboxId: fromB64u(r.inbox.id)!,
            authSeed: fromB64u(r.inbox.authSeed)!,
            dhPrivateKey: fromB64u(r.inbox.dhPrivateKey)!,
            dhPublicKey: fromB64u(r.inbox.dhPublicKey)!,
          },
          this.net,
        ),
    );
    this.seedLifetimeS = options.seedLifetimeS ?? 90 * 86_400;
    this.rotateAfterMs = options.rotateAfterMs ?? 7 * 86_400_000;
    this.submitTtlS = options.submitTtlS ?? 7 * 86_400;
  }

  /**
   * Opens the saved account, or creates one: registers at the issuer, pins the services' keys
   * and creates an inbox at every RSA. Needs the services to be up the first time only.
   */
  static async open(options: ServicesDeliveryOptions): Promise<ServicesDelivery> {
    if (options === null || typeof options !== 'object') throw new ClientError('invalid-argument', 'ServicesDelivery.open needs options');
    if ((options.store === undefined) === (options.stateStore === undefined)) throw new ClientError('invalid-argument', 'ServicesDelivery needs a store (the client\'s) or a stateStore, one of them');
    if (typeof options.issuer !== 'string' || typeof options.ssa !== 'string' || !Array.isArray(options.rsas) || !options.rsas.every((u) => typeof u === 'string')) {
      throw new ClientError('invalid-argument', 'ServicesDelivery needs issuer, ssa and rsas URLs');
    }
    if (options.rsas.length < 1) throw new ClientError('invalid-argument', 'at least one receiving service is needed');
    const store = options.stateStore ?? storeServicesState(options.store!);
    let state = await store.load();
    if (state !== null && trim(state.issuer.url) !== trim(options.issuer)) {
      throw new ClientError('invalid-argument', `this identity is registered at ${state.issuer.url}, not ${options.issuer}`);
    }
    if (state === null) {
      state = await ServicesDelivery.register(options);
      await store.save(state);
    } else {
      ServicesDelivery.settleReservations(state);
    }
    const d = new ServicesDelivery(state, store, options);
    // Receiving services added to the configuration since: open an inbox there too.
    const known = new Set(state.rsas.map((r) => trim(r.url)));
    for (const url of options.rsas.map(trim)) if (!known.has(url)) await d.addRsa(url);
    return d;
  }

  private static async describe(url: string, role: string): Promise<Descriptor> {
    let d: Descriptor;
    try {
      d = await fetchDescriptor(url);
    } catch (e) {
      throw new ClientError('delivery-failed', `cannot reach ${url}: ${(e as Error).message}`, { cause: e });
    }
    const roles = d.body.roles as string[] | undefined;
    if (!Array.isArray(roles) || !roles.includes(role)) throw new ClientError('invalid-argument', `${url} is not a${role === 'issuer' ? 'n' : ''} ${role} (it says ${JSON.stringify(roles)})`);
    return d;
  }

  /**
   * Seeds an earlier run reserved for a rotation may have been handed out before it ended: they
   * never go back to the pool (they stay, as used, so their envelopes are still routed).
   */
  private static settleReservations(state: ServicesState): void {
    for (const r of state.rsas) {
      for (const s of r.seeds) {
        if (s.reservedAt === undefined) continue;
        s.usedAt ??= s.reservedAt;
        delete s.reservedAt;
      }
    }
  }

  private static async register(o: ServicesDeliveryOptions): Promise<ServicesState> {
    const issuerD = await ServicesDelivery.describe(trim(o.issuer), 'issuer');
    const ssaD = await ServicesDelivery.describe(trim(o.ssa), 'ssa');
    const issuer = await IssuerClient.register(trim(o.issuer));
    const state: ServicesState = {
      v: 1,
      issuer: { url: trim(o.issuer), secret: issuer.secret, serviceKey: b64u(issuerD.serviceKey) },
      ssa: { url: trim(o.ssa), serviceKey: b64u(ssaD.serviceKey) },
      rsas: [],
      tokens: {},
    };
    for (const url of o.rsas.map(trim)) state.rsas.push(await ServicesDelivery.createInbox(issuer, url, ServicesDelivery.networkOf(o)));
    return state;
  }

  /** What the HTTP clients run on: the options', else the platform's crypto and WebSocket. */
  private static networkOf(o: ServicesDeliveryOptions): ServiceClientOptions {
    const webSocket = o.webSocket ?? platform().webSocket;
    return { crypto: o.crypto ?? platform().crypto, ...(webSocket !== undefined ? { webSocket } : {}) };
  }

  private static async createInbox(issuer: IssuerClient, url: string, net: ServiceClientOptions): Promise<RsaRecord> {
    const d = await ServicesDelivery.describe(url, 'rsa');
    const cost = Number((d.body.limits as Record<string, unknown> | undefined)?.inbox_token_cost ?? 5) || 5;
    const tokens = await issuer.mint(tokenInfoOf(d), cost);
    const inbox = await new RsaClient(url, net).createInbox(tokens);
    return {
      url,
      serviceKey: b64u(d.serviceKey),
      inbox: { id: inbox.id, authSeed: b64u(inbox.creds.authSeed), dhPrivateKey: b64u(inbox.creds.dhPrivateKey), dhPublicKey: b64u(inbox.creds.dhPublicKey) },
      seeds: [],
    };
  }

  private async addRsa(url: string): Promise<void> {
    const rec = await ServicesDelivery.createInbox(this.issuer, url, this.net);
    this.state.rsas.push(rec);
    await this.persist();
    this.inboxes.push(
      new InboxClient(
        rec.url,
        {
          inboxId: fromB64u(rec.inbox.id)!,
          authSeed: fromB64u(rec.inbox.authSeed)!,
          dhPrivateKey: fromB64u(rec.inbox.dhPrivateKey)!,
          dhPublicKey: fromB64u(rec.inbox.dhPublicKey)!,
        },
        this.net,
      ),
    );
    if (this.connected) this.connect(this.inboxes.length - 1, 0);
  }

  /**
   * Saves the state as it is when the save starts, after the saves before it. Resolves once a
   * save that includes every change made before this call is durable (changes made while a save
   * waits to start ride on it: the latest state wins, nothing is lost).
   */
  private persist(): Promise<void> {
    if (this.saveQueued !== null) return this.saveQueued;
    const run = this.saveTail
      .catch(() => undefined)
      .then(() => {
        this.saveQueued = null;
        return this.stateStore.save(structuredClone(this.state));
      });
    this.saveQueued = run;
    this.saveTail = run;
    return run;
  }

  private error(e: unknown): void {
    if (this.closed) return;
    try {
      this.options.onError?.(e instanceof Error ? e : new Error(String(e)));
    } catch {
      // a throwing listener must not break delivery
    }
  }

  /** The URLs this delivery uses. */
  get config(): ServicesConfig {
    return { issuer: this.state.issuer.url, ssa: this.state.ssa.url, rsas: this.state.rsas.map((r) => r.url) };
  }

  // ---- descriptors and tokens -------------------------------------------------------------

  /** A service's descriptor, checked against the pinned key (cached for the process). */
  private async ownDescriptor(url: string, pinned: string): Promise<Descriptor> {
    const hit = this.descriptors.get(url);
    if (hit !== undefined) return hit;
    const d = await fetchDescriptor(url, fromB64u(pinned)!);
    this.descriptors.set(url, d);
    return d;
  }

  private async tokenInfo(url: string): Promise<{ cls: 'ssa' | 'rsa'; info: TokenInfo }> {
    if (url === this.state.ssa.url) return { cls: 'ssa', info: tokenInfoOf(await this.ownDescriptor(url, this.state.ssa.serviceKey)) };
    const rsa = this.state.rsas.find((r) => r.url === url);
    if (rsa === undefined) throw new Error(`no token origin ${url}`);
    return { cls: 'rsa', info: tokenInfoOf(await this.ownDescriptor(url, rsa.serviceKey)) };
  }

  /** One token for `url` (SSA tokens are minted in batches; RSA tokens as needed: their quota is small). */
  private async takeToken(url: string): Promise<Uint8Array> {
    for (;;) {
      const list = this.state.tokens[url] ?? [];
      const t = list.pop();
      if (t !== undefined) {
        this.state.tokens[url] = list;
        try {
          await this.persist();
        } catch (e) {
          // Not spent (it never left): back in the list, so a later save keeps it.
          (this.state.tokens[url] ??= []).push(t);
          throw e;
        }
        return fromB64u(t)!;
      }
      let p = this.minting.get(url);
      if (p === undefined) {
        p = (async () => {
          const { cls, info } = await this.tokenInfo(url);
          const minted = await this.issuer.mint(info, cls === 'ssa' ? SSA_TOKEN_BATCH : 1);
          // Saved with the spending of the first of them (a crash before loses them, spends none).
          this.state.tokens[url] = [...(this.state.tokens[url] ?? []), ...minted.map(b64u)];
        })().finally(() => this.minting.delete(url));
        this.minting.set(url, p);
      }
      await p;
    }
  }

  /**
   * `count` tokens from this account for another origin that takes them (a directory:
   * DirectoryClient's token source; the hub's directory names the issuer's 'ssa' key), charged
   * to the same daily quota as sending.
   */
  async tokensFor(info: TokenInfo, count: number): Promise<Uint8Array[]> {
    return this.issuer.mint(info, count);
  }

  // ---- endpoints -----------------------------------------------------------------------------

  private poolSize(rsa: RsaRecord, nowS: number): number {
    return rsa.seeds.filter((s) => s.address === null && s.notAfterS - nowS > this.seedLifetimeS / 2).length;
  }

  /** Tops up every RSA's pool of unused seeds (one token buys 10). */
  private refill(force = false): Promise<void> {
    if (this.refilling !== null) return this.refilling;
    const nowS = Math.floor(Date.now() / 1000);
    const needy = this.state.rsas.map((r, i) => ({ r, i })).filter(({ r }) => force || this.poolSize(r, nowS) < POOL_LOW);
    if (needy.length === 0) return Promise.resolve();
    this.refilling = (async () => {
      const errors: string[] = [];
      await Promise.all(
        needy.map(async ({ r, i }) => {
          if (this.poolSize(r, nowS) >= POOL_LOW) return;
          try {
            const token = await this.takeToken(r.url);
            const seeds = await this.inboxes[i]!.requestSeeds(token, SEEDS_PER_REFILL, nowS + this.seedLifetimeS);
            const now = Date.now();
            r.seeds.push(...seeds.map((s) => ({ seedId: b64u(s.seedId), M: b64u(s.M), notAfterS: s.notAfter, grantedAt: now, address: null, usedAt: null })));
          } catch (e) {
            errors.push(`${r.url}: ${(e as Error).message}`);
          }
        }),
      );
      this.prune(nowS);
      await this.persist().catch((e: unknown) => errors.push(`saving the seeds: ${(e as Error).message}`));
      if (errors.length > 0) this.error(new Error(`seed refill failed at ${errors.join('; ')}`));
    })().finally(() => (this.refilling = null));
    return this.refilling;
  }

  private prune(nowS: number): void {
    for (const r of this.state.rsas) r.seeds = r.seeds.filter((s) => s.notAfterS > nowS);
  }

  /**
   * Takes one pooled seed per RSA (whose descriptor we have) and derives an address from each.
   * Only in memory: the caller saves before the endpoints leave.
   */
  private takeEndpoints(nowMs: number, reserve: boolean, descriptors: ReadonlyMap<string, Descriptor> = this.descriptors): { endpoints: wire.DeliveryEndpoint[]; seeds: SeedRecord[] } {
    const nowS = Math.floor(nowMs / 1000);
    const out: wire.DeliveryEndpoint[] = [];
    const taken: SeedRecord[] = [];
    this.state.rsas.forEach((r) => {
      const d = descriptors.get(r.url);
      if (d === undefined) return;
      const seed = r.seeds.find((s) => s.address === null && s.notAfterS - nowS > this.seedLifetimeS / 2);
      if (seed === undefined) return;
      let key;
      try {
        key = currentAddressKey(addressKeysOf(d), 'long', nowS);
      } catch {
        return;
      }
      const address = deriveAddress(fromB64u(seed.M)!, { kid: key.kid, X: key.X });
      seed.address = toHex(address);
      if (reserve) seed.reservedAt = nowMs;
      else seed.usedAt = nowMs;
      taken.push(seed);
      out.push(
        wire.create(wire.DeliveryEndpointSchema, {
          endpoint: {
            case: 'receivingService',
            value: wire.create(wire.ServiceAddressSchema, {
              url: r.url,
              serviceKeyFingerprint: fromHex32(fingerprintOf(d.serviceKey)),
              address,
              notAfter: BigInt(seed.notAfterS),
            }),
          },
        }),
      );
    });
    return { endpoints: out, seeds: taken };
  }

  async endpointsForNewRelationship(): Promise<wire.DeliveryEndpoint[]> {
    this.assertOpen();
    // Descriptors of our RSAs (address keys), then seeds.
    const reachable: string[] = [];
    await Promise.all(
      this.state.rsas.map(async (r) => {
        try {
          this.descriptors.delete(r.url); // fresh keys for a new relationship
          await this.ownDescriptor(r.url, r.serviceKey);
          reachable.push(r.url);
        } catch (e) {
          this.error(new Error(`${r.url}: ${(e as Error).message}`));
        }
      }),
    );
    if (reachable.length === 0) throw new ClientError('delivery-failed', 'none of our receiving services answers');
    await this.refill();
    const { endpoints, seeds } = this.takeEndpoints(Date.now(), false);
    if (endpoints.length === 0) throw new ClientError('delivery-failed', 'no receiving service granted address seeds');
    try {
      await this.persist();
    } catch (e) {
      // Never handed out: back to the pool.
      for (const s of seeds) {
        s.address = null;
        s.usedAt = null;
      }
      throw e;
    }
    void this.refill().catch((e) => this.error(e));
    return endpoints;
  }

  /** Loads our RSAs' descriptors, tops up the seed pools and reserves a rotation set, so that a rotation can happen without waiting. */
  private async prime(): Promise<void> {
    await Promise.all(this.state.rsas.map((r) => this.ownDescriptor(r.url, r.serviceKey).catch(() => undefined)));
    await this.refill().catch((e) => this.error(e));
    await this.reserve();
  }

  /**
   * Reserves the next rotation set: seeds out of the pool, saved as reserved, so that
   * rotationEndpoints (synchronous) can hand them out with their use already durable. A
   * reservation not handed out in time goes back to the pool.
   */
  private reserve(): Promise<void> {
    if (this.reserving !== null) return this.reserving;
    this.reserving = (async () => {
      const now = Date.now();
      if (this.reserved !== null && now - this.reserved.at <= RESERVATION_TTL_MS) return;
      if (this.reserved !== null) {
        for (const s of this.reserved.seeds) {
          s.address = null;
          delete s.reservedAt;
        }
        this.reserved = null;
      }
      // Our RSAs' descriptors, held here: a new relationship may drop the cached ones meanwhile.
      const descriptors = new Map<string, Descriptor>();
      await Promise.all(
        this.state.rsas.map((r) =>
          this.ownDescriptor(r.url, r.serviceKey).then(
            (d) => descriptors.set(r.url, d),
            () => undefined,
          ),
        ),
      );
      if (this.closed) return;
      const taken = this.takeEndpoints(Date.now(), true, descriptors);
      if (taken.endpoints.length === 0) return;
      try {
        await this.persist();
      } catch (e) {
        for (const s of taken.seeds) {
          s.address = null;
          delete s.reservedAt;
        }
        throw e;
      }
      if (!this.closed) this.reserved = { ...taken, at: Date.now() };
    })()
      .catch((e: unknown) => this.error(e))
      .finally(() => (this.reserving = null));
    return this.reserving;
  }

  /** Our seed for a given own endpoint, if it is one of ours. */
  private ownSeed(e: wire.DeliveryEndpoint): SeedRecord | undefined {
    if (e.endpoint.case !== 'receivingService') return undefined;
    const hex = toHex(e.endpoint.value.address);
    for (const r of this.state.rsas) for (const s of r.seeds) if (s.address === hex) return s;
    return undefined;
  }

  rotationEndpoints(own: readonly wire.DeliveryEndpoint[], nowMs: number): wire.DeliveryEndpoint[] | null {
    if (this.closed) return null;
    const ours = own.map((e) => this.ownSeed(e)).filter((s): s is SeedRecord => s !== undefined);
    const newest = Math.max(-Infinity, ...ours.map((s) => s.usedAt ?? s.grantedAt));
    if (ours.length > 0 && nowMs - newest < this.rotateAfterMs) return null;
    const r = this.reserved;
    this.reserved = null;
    // The next set (after a refill when the pool runs low).
    void this.refill()
      .catch((e) => this.error(e))
      .then(() => this.reserve());
    if (r === null || nowMs - r.at > RESERVATION_TTL_MS) {
      if (r !== null) this.reserved = r; // reserve() releases it and takes fresh seeds
      return null;
    }
    // Handed out now: used from here on (the save after is bookkeeping; the reservation was durable).
    for (const s of r.seeds) {
      delete s.reservedAt;
      s.usedAt = nowMs;
    }
    void this.persist().catch((e: unknown) => this.error(e));
    return r.endpoints;
  }

  /** Routes (address hex) handed out, oldest first (tests and diagnostics). */
  issuedRoutes(): string[] {
    return this.state.rsas
      .flatMap((r) => r.seeds)
      .filter((s) => s.address !== null && s.reservedAt === undefined)
      .sort((a, b) => (a.usedAt ?? 0) - (b.usedAt ?? 0))
      .map((s) => s.address!);
  }

  // ---- sending -------------------------------------------------------------------------------

  /** The peer RSA's descriptor: health (re-checked every few seconds) and address keys. */
  private async peer(url: string, fingerprint: string): Promise<PeerRsa> {
    const now = Date.now();
    let p = this.peers.get(url);
    if (p === undefined || now - p.checkedAt > HEALTH_TTL_MS) {
      const next: PeerRsa = { ...(p ?? {}), checkedAt: now, ok: false };
      try {
        const d = await fetchDescriptor(url);
        if (!Array.isArray(d.body.roles) || !(d.body.roles as string[]).includes('rsa')) throw new Error('not a receiving service');
        next.ok = true;
        next.fingerprint = fingerprintOf(d.serviceKey);
        if (next.fingerprint === fingerprint) {
          next.keys = new Map(addressKeysOf(d).map((k) => [k.kid, k.X]));
          next.keysAt = now;
        }
      } catch (e) {
        next.error = (e as Error).message;
      }
      this.peers.set(url, (p = next));
    }
    return p;
  }

  async publishEndpoint(endpoint: wire.DeliveryEndpoint, bytes: Uint8Array): Promise<void> {
    this.assertOpen();
    if (endpoint.endpoint.case !== 'receivingService') throw new Error('not a receiving-service endpoint');
    const sa = endpoint.endpoint.value;
    const fp = toHex(sa.serviceKeyFingerprint);
    if (sa.notAfter !== 0n && Number(sa.notAfter) * 1000 < Date.now()) throw new Error(`the address at ${sa.url} has expired`);
    let url: string;
    try {
      url = trim(new URL(sa.url).toString());
    } catch {
      throw new Error('the endpoint URL is malformed');
    }
    if (!/^https?:$/.test(new URL(url).protocol)) throw new Error('the endpoint URL is not http(s)');
    const p = await this.peer(url, fp);
    if (!p.ok) throw new Error(`receiving service ${url} unreachable: ${p.error ?? ''}`);
    if (p.fingerprint !== fp) throw new Error(`receiving service ${url} presents another key than the address names`);
    const kid = sa.address.length === 68 ? new DataView(sa.address.buffer, sa.address.byteOffset).getUint32(0, false) : -1;
    let X = p.keys?.get(kid);
    if (X === undefined || Date.now() - (p.keysAt ?? 0) > KEYS_TTL_MS) {
      this.peers.delete(url);
      X = (await this.peer(url, fp)).keys?.get(kid);
    }
    if (X === undefined) throw new Error(`receiving service ${url} no longer publishes key ${kid}`);
    const r = rerandomizeAddress(sa.address, { kid, X });
    if (r.kind !== 'ok') throw new Error(`bad address: ${r.reason}`);
    const idem = new Uint8Array(randomBytes(16));
    for (let attempt = 0; ; attempt++) {
      const token = await this.takeToken(this.state.ssa.url);
      const res = await this.ssa.submit({ rsa: url, addr: r.address, payload: wrapPayload(bytes), ttlS: this.submitTtlS, idem }, token);
      if (res.ok) return;
      if (res.problem.status === 401 && attempt === 0) {
        this.state.tokens[this.state.ssa.url] = []; // issuer keys changed, or tokens spent elsewhere
        continue;
      }
      throw new Error(`the sending service refused: ${res.problem.status} ${res.problem.title ?? ''} ${res.problem.detail ?? ''}`.trim());
    }
  }

  /** Plain routes are not reachable through the services. */
  async publish(route: string): Promise<void> {
    throw new Error(`route ${route.slice(0, 16)}… is not reachable through the Communicator services`);
  }

  // ---- receiving -----------------------------------------------------------------------------

  private routeOf(rsa: number, seedId: Uint8Array): string {
    const id = b64u(seedId);
    return this.state.rsas[rsa]?.seeds.find((s) => s.seedId === id)?.address ?? '';
  }

  private async open(rsa: number, m: RsaMessage): Promise<DeliveredEnvelope | null> {
    const opened = await this.inboxes[rsa]!.open(m);
    const bytes = opened === null ? null : unwrapPayload(opened);
    if (bytes === null) return null;
    const route = this.routeOf(rsa, m.seedId);
    return { route, bytes };
  }

  subscribe(_routes: readonly string[], onEnvelope: EnvelopeHandler): Subscription {
    this.assertOpen();
    this.handlers.add(onEnvelope);
    if (!this.connected) {
      this.connected = true;
      this.inboxes.forEach((_, i) => this.connect(i, 0));
      void this.prime();
    }
    return { close: () => this.handlers.delete(onEnvelope) };
  }

  /**
   * One inbox's push socket. After a drop, the first attempt comes within
   * RECONNECT_FIRST_MS (jittered, so a service's thousands of clients do not all come back in the
   * same instant) and further attempts at most RECONNECT_FAST_CAP_MS apart for the first
   * RECONNECT_FAST_WINDOW_MS: a restarted service is listening again within seconds, and the
   * user should not wait out a long backoff after that. A refused attempt costs the service a
   * TCP reset. Only an outage longer than the window backs off towards RECONNECT_MAX_MS.
   */
  private connect(i: number, failures: number, downSince: number | null = null): void {
    if (this.closed) return;
    const inbox = this.inboxes[i]!;
    inbox
      .connect((m) => void this.onPushed(i, m))
      .then(
        (sock) => {
          if (this.closed) {
            sock.close();
            return;
          }
          this.sockets[i] = sock;
          void sock.closed.then(() => {
            this.sockets[i] = null;
            this.retry(i, 0, Date.now());
          });
        },
        (e) => {
          this.error(new Error(`${inbox.url}: ${(e as Error).message}`));
          this.retry(i, failures + 1, downSince ?? Date.now());
        },
      );
  }

  private retry(i: number, failures: number, downSince: number): void {
    if (this.closed) return;
    const delay = reconnectDelayMs(failures, Date.now() - downSince, Math.random());
    const t = setTimeout(() => {
      this.reconnectTimers.delete(t);
      this.connect(i, failures, downSince);
    }, delay);
    // Node timers keep the process alive unless unref()ed; browsers return a number.
    (t as { unref?: () => void }).unref?.();
    this.reconnectTimers.add(t);
  }

  private async onPushed(i: number, m: RsaMessage): Promise<void> {
    const key = `${i}:${b64u(m.mid)}`;
    if (this.closed || this.inProgress.has(key) || this.acked.has(key)) return;
    const work = (async () => {
      try {
        const env = await this.open(i, m);
        const ok = env === null ? true : await this.hand(env);
        if (ok) {
          this.sockets[i]?.ack([m.mid]);
          this.markAcked(key);
        }
      } catch (e) {
        this.error(e);
      }
    })();
    this.inProgress.set(key, work);
    await work;
    this.inProgress.delete(key);
  }

  /** Hands an envelope to every subscriber; true when all of them finished with it. */
  private async hand(env: DeliveredEnvelope): Promise<boolean> {
    if (this.handlers.size === 0) return false;
    this.receivedByRoute.set(env.route, (this.receivedByRoute.get(env.route) ?? 0) + 1);
    const results = await Promise.all([...this.handlers].map(async (h) => (await h(env)) !== false));
    return results.every(Boolean);
  }

  private markAcked(key: string): void {
    this.acked.add(key);
    if (this.acked.size > 20_000) for (const k of [...this.acked].slice(0, 10_000)) this.acked.delete(k);
  }

  /**
   * `servicesRoute` only (other routes hold nothing here). Acknowledges the page that `since`
   * names (the client has processed it), then returns the next messages of every inbox. A cursor
   * this process did not hand out (one saved by an earlier run) starts from the oldest
   * unacknowledged message: whatever an earlier run left unacknowledged comes back.
   */
  async fetch(route: string, since: string | null): Promise<FetchResult> {
    if (route !== SERVICES_ROUTE) return { envelopes: [], cursor: since };
    this.assertOpen();
    const previous = since === null ? undefined : this.pages.get(since);
    if (previous !== undefined && since !== null) {
      this.pages.delete(since);
      await this.ackAll(previous.acks);
    }
    const cursors = previous?.cursors ?? this.inboxes.map(() => undefined);
    const envelopes: DeliveredEnvelope[] = [];
    const acks: Page['acks'][number][] = [];
    const nextCursors = [...cursors];
    const failures: string[] = [];
    await Promise.all(
      this.inboxes.map(async (inbox, i) => {
        let r;
        try {
          r = await inbox.fetch(cursors[i], FETCH_LIMIT);
        } catch (e) {
          failures.push(`${inbox.url}: ${(e as Error).message}`);
          return;
        }
        for (const m of r.messages) {
          const key = `${i}:${b64u(m.mid)}`;
          const pushed = this.inProgress.get(key);
          if (pushed !== undefined) {
            await pushed; // handled by a push: wait until the client has it, so a sync() returns only after it
            continue;
          }
          if (this.acked.has(key)) continue;
          const env = await this.open(i, m).catch(() => null);
          if (env === null) {
            acks.push({ rsa: i, mid: m.mid }); // cannot be opened: nothing to keep
            continue;
          }
          this.receivedByRoute.set(env.route, (this.receivedByRoute.get(env.route) ?? 0) + 1);
          envelopes.push(env);
          acks.push({ rsa: i, mid: m.mid });
        }
        if (r.messages.length > 0) nextCursors[i] = r.cursor;
      }),
    );
    if (failures.length === this.inboxes.length) throw new Error(`no receiving service answers: ${failures.join('; ')}`);
    if (failures.length > 0) this.error(new Error(`fetch failed at ${failures.join('; ')}`));
    if (envelopes.length === 0 && acks.length === 0) {
      // Nothing new: keep the caller's cursor (no store write on an idle sync).
      if (since !== null) this.pages.set(since, { acks: [], cursors: nextCursors });
      return { envelopes: [], cursor: since };
    }
    const cursor = `p${++this.pageCounter}.${b64u(randomBytes(6))}`;
    this.pages.set(cursor, { acks, cursors: nextCursors });
    if (this.pages.size > 1000) this.pages.delete(this.pages.keys().next().value!);
    return { envelopes, cursor };
  }

  private async ackAll(acks: Page['acks']): Promise<void> {
    const byRsa = new Map<number, Uint8Array[]>();
    for (const a of acks) {
      const key = `${a.rsa}:${b64u(a.mid)}`;
      this.markAcked(key);
      byRsa.set(a.rsa, [...(byRsa.get(a.rsa) ?? []), a.mid]);
    }
    await Promise.all(
      [...byRsa].map(async ([i, mids]) => {
        try {
          await this.inboxes[i]!.ack(mids);
        } catch (e) {
          for (const m of mids) this.acked.delete(`${i}:${b64u(m)}`);
          this.error(new Error(`ack failed at ${this.inboxes[i]!.url}: ${(e as Error).message}`));
        }
      }),
    );
  }

  /** How many messages our inboxes still hold (unacknowledged), for tests and diagnostics. */
  async unacknowledged(): Promise<number> {
    let n = 0;
    for (const inbox of this.inboxes) n += (await inbox.fetch(undefined, 500)).messages.length;
    return n;
  }

  private assertOpen(): void {
    if (this.closed) throw new ClientError('client-closed', 'the services delivery is closed');
  }

  /** Stops the sockets and timers; resolves once the last save has landed (the store may be closed after). */
  async close(): Promise<void> {
    if (this.closed) return this.saveTail.catch(() => undefined);
    this.closed = true;
    for (const t of this.reconnectTimers) clearTimeout(t);
    this.reconnectTimers.clear();
    for (const s of this.sockets) s?.close();
    this.handlers.clear();
    await this.saveTail.catch(() => undefined);
  }
}

function fromHex32(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
