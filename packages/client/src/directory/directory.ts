/**
 * The client side of a directory (communicator.md F6–F9, §7.5; docs/DIRECTORY.md):
 *
 * - register a name: the directory identity key IK_D is derived from the account key
 *   (HKDF-SHA256, per namespace, name and generation), so nothing secret is stored here;
 *   key packages are single-use invitations made by the Client, bound to IK_D;
 * - contact someone by name (brokered first contact): the lookup is verified against the
 *   checkpoint held for that directory (inclusion, consistency, commitment, rollback, rollover),
 *   then the invitation is accepted with Client.accept;
 * - first contacts arriving through our directory invitations become requests
 *   (consent 'unknown'), like first contacts through the default inbox;
 * - owner monitoring (an alert on any key for our names we did not register), checkpoint gossip
 *   with split-view detection, Follows / Equiv attestations.
 *
 * State (pinned keys, checkpoint, monitor range, openings, the issuer account for tokens) is one
 * JSON document in the client's Store (`store.directory.get(url)`, batch `directoryStates`),
 * written whole, one save at a time, in the order of the changes; it holds no private keys.
 * A state file of an earlier release (`legacyStateFile`) is imported once, in one write, and
 * then removed.
 */
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { INVITATION_PREFIX, fromBase64Url, invitationText, nobleProvider, parseInvitation, toBase64Url, toHex, transparency as t, utf8 } from '@umbra/protocol';
import { EventEmitter } from '../event-emitter.ts';
import { platform } from '../platform.ts';
import { IssuerClient, ServiceError, TokenWallet, ed25519FromSeed, type Ed25519Key, type TokenInfo } from '../services/http/index.ts';
import { DirectoryHttpClient, type DirectoryInfo, type DirectoryProblem } from './http.ts';
import type { Client, ConversationInfo, GossipSource, RelationshipInfo } from '../client.ts';
import { ClientError } from '../errors.ts';
import type { Store } from '../store.ts';

export type DirectoryErrorCode = 'invalid-argument' | 'not-registered' | 'unverifiable' | 'refused' | 'pending' | 'no-tokens' | 'rate-limited';

export class DirectoryError extends Error {
  constructor(
    readonly code: DirectoryErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterS?: number },
  ) {
    super(message, options);
    this.name = 'DirectoryError';
    if (options?.retryAfterS !== undefined) this.retryAfterS = options.retryAfterS;
  }
  /** 'rate-limited': seconds until the directory takes this request again (its Retry-After). */
  readonly retryAfterS?: number;
}

/**
 * Where contact tokens come from: the client's services account (ServicesDelivery.tokensFor),
 * so a directory contact spends from the same issuer quota as sending.
 */
export interface DirectoryTokenSource {
  tokensFor(info: TokenInfo, count: number): Promise<Uint8Array[]>;
}

export interface KeyAlert {
  readonly kind: 'unexpected-key' | 'key-changed-without-follows';
  readonly name: string;
  readonly version: number;
  readonly message: string;
}

export interface SplitView {
  readonly mine: string;
  readonly theirs: string;
  readonly detectedAt: number;
}

export interface DirectoryEventMap {
  'key-alert': KeyAlert;
  'split-view': SplitView;
  request: ConversationInfo & { readonly viaName: string };
}

interface OwnName {
  generation: number;
  version: number;
  /** Invitation ids (hex) of our key packages not yet answered. */
  invitations: string[];
  /** Invitation id (hex) of the reusable last-resort package now uploaded (absent in older state files). */
  lastResort?: string;
}

interface ContactRecord {
  name: string;
  version: number;
  ipk: string;
}

interface State {
  v: 1;
  url: string;
  namespace: string;
  logOrigin: string;
  logKey: string;
  serviceKey: string;
  issuer: { url: string; secret: string } | null;
  verifier: t.LogVerifierJson;
  monitor: t.LogMonitorJson;
  names: Record<string, OwnName>;
  /** conversation id → how it started through this directory. */
  conversations: Record<string, { name: string; role: 'owner' | 'contact'; contact?: ContactRecord }>;
  alerts: KeyAlert[];
  splitViews: SplitView[];
  /** conversation id → size of the checkpoint last gossiped to it (absent in older state files). */
  gossiped?: Record<string, number>;
}

export interface DirectoryStatus {
  readonly url: string;
  readonly namespace: string;
  readonly checkpointSize: number | null;
  readonly monitoredUpTo: number;
  readonly names: readonly { name: string; version: number; invitationsOut: number }[];
  readonly alerts: readonly KeyAlert[];
  readonly splitViews: readonly SplitView[];
}

export interface OpenDirectoryOptions {
  /** The client whose Store keeps this directory's state. */
  readonly client: Client;
  /** Directory base URL. */
  readonly url: string;
  /**
   * The state file an earlier release kept for this directory: imported into the store when the
   * store has no state for this URL yet, then removed (needs a platform entry with files).
   */
  readonly legacyStateFile?: string;
  /** Pays for contacts and anonymous lookups: the client's services account (a ServicesDelivery). */
  readonly tokens?: DirectoryTokenSource;
  /** Without `tokens`: an issuer base URL where an account of its own is created on first use. */
  readonly issuer?: string;
  readonly now?: () => number;
}

const DEFAULT_PACKAGES = 20;
/** Far above any real state (a few KiB to a few hundred): a bigger document is refused before it is parsed. */
const MAX_STATE_CHARS = 16 * 1024 * 1024;

/** A stored (or legacy) state document, checked for the shape the client relies on. */
function parseState(json: string, where: string): State {
  if (json.length > MAX_STATE_CHARS) throw new ClientError('store-corrupt', `${where} is too large`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ClientError('store-corrupt', `${where} is not valid JSON`);
  }
  const s = parsed as Partial<State> | null;
  const isObject = (x: unknown): boolean => x !== null && typeof x === 'object' && !Array.isArray(x);
  const ok =
    isObject(s) &&
    s!.v === 1 &&
    [s!.url, s!.namespace, s!.logOrigin, s!.logKey, s!.serviceKey].every((x) => typeof x === 'string') &&
    (s!.issuer === null || (isObject(s!.issuer) && typeof s!.issuer!.url === 'string' && typeof s!.issuer!.secret === 'string')) &&
    isObject(s!.verifier) &&
    isObject(s!.monitor) &&
    isObject(s!.names) &&
    Object.values(s!.names!).every((n) => isObject(n) && Number.isInteger(n.generation) && Number.isInteger(n.version) && Array.isArray(n.invitations)) &&
    isObject(s!.conversations) &&
    Array.isArray(s!.alerts) &&
    Array.isArray(s!.splitViews) &&
    (s!.gossiped === undefined || isObject(s!.gossiped));
  if (!ok) throw new ClientError('store-corrupt', `${where} is not a directory state`);
  return s as State;
}
const PACKAGE_TTL_S = 30 * 24 * 3600;

/** The directory identity key of (namespace, name, generation), derived from the account key. */
export function directoryIdentity(accountSeed: Uint8Array, namespace: string, name: string, generation: number): Ed25519Key {
  const info = new Uint8Array([...t.lp(namespace), ...t.lp(name), ...t.u32(generation)]);
  return ed25519FromSeed(hkdf(sha256, accountSeed, utf8('umbra/v1/dir-identity'), info, 32));
}

function signedInvitationOf(text: string): Uint8Array {
  const bytes = fromBase64Url(text.slice(INVITATION_PREFIX.length));
  if (bytes === null) throw new DirectoryError('invalid-argument', 'not an invitation');
  return bytes;
}

/** `alice@host:port` → { name, url }. */
export function parseNameAddress(address: string, scheme: 'http' | 'https' = 'http'): { name: string; url: string } {
  const m = /^([^@\s]+)@([^@\s/]+)$/.exec(address.trim());
  if (m === null || !t.isValidName(m[1]!)) throw new DirectoryError('invalid-argument', 'expected name@directory (for example alice@127.0.0.1:7704), the name in a-z 0-9 . _ -');
  return { name: m[1]!, url: `${scheme}://${m[2]!}` };
}

export class DirectoryClient {
  private readonly events = new EventEmitter();
  private readonly http: DirectoryHttpClient;
  private wallet: TokenWallet | null = null;
  private readonly onStarted = (info: ConversationInfo) => void this.noteConversation(info).catch(() => {});
  /** Gossip carried by the Client inside conversations (a checkpointGossip frame with the next message). */
  private readonly gossipSource: GossipSource = {
    outgoing: (conversationId) => {
      const cp = this.verifier.checkpoint;
      if (cp === null || (this.state.gossiped?.[conversationId] ?? -1) >= cp.size) return null;
      return this.gossip();
    },
    sent: (conversationId, bytes) => {
      const g = t.decodeCheckpointGossip(bytes);
      const cp = g === null ? null : t.verifyCheckpoint(g.checkpoint, this.state.logOrigin, fromBase64Url(this.state.logKey)!);
      if (cp === null) return;
      (this.state.gossiped ??= {})[conversationId] = cp.size;
      // Bookkeeping only (at worst the checkpoint is gossiped once more); the next save carries it.
      this.save().catch(() => undefined);
    },
    incoming: (_conversationId, bytes) => void this.receiveGossip(bytes).catch(() => 'ignored'),
  };

  /** The save that has not started yet (later changes ride on it); null when none waits. */
  private saveQueued: Promise<void> | null = null;
  /** The last save in the chain (saves run one at a time, in order). */
  private saveTail: Promise<void> = Promise.resolve();

  private constructor(
    private readonly client: Client,
    private readonly store: Store,
    private state: State,
    private verifier: t.LogVerifier,
    private monitor: t.LogMonitor,
    private readonly issuerUrl: string | undefined,
    private readonly tokenSource: DirectoryTokenSource | undefined,
    private readonly now: () => number,
  ) {
    this.http = new DirectoryHttpClient(state.url);
    client.on('conversation-started', this.onStarted);
    client.addGossipSource(this.gossipSource);
  }

  /**
   * Opens (or first contacts and pins) a directory: its service and log keys are pinned in the
   * client's store. A legacy state file is imported (one write) and then removed.
   */
  static async open(opts: OpenDirectoryOptions): Promise<DirectoryClient> {
    if (opts === null || typeof opts !== 'object' || opts.client === null || typeof opts.client !== 'object' || typeof opts.url !== 'string') {
      throw new DirectoryError('invalid-argument', 'open needs client and url');
    }
    if (opts.legacyStateFile !== undefined && typeof opts.legacyStateFile !== 'string') throw new DirectoryError('invalid-argument', 'legacyStateFile is a path');
    const url = opts.url.replace(/\/+$/, '');
    const store = opts.client.store;
    let state: State;
    let saved: State | null = null;
    let imported = false;
    const stored = await store.directory.get(url);
    if (stored !== null) {
      saved = parseState(stored, `the stored state of ${url}`);
      if (saved.url !== url) throw new ClientError('store-corrupt', `the stored state of ${url} names ${saved.url}`);
    } else if (opts.legacyStateFile !== undefined) {
      const legacy = platform().readPrivateFile(opts.legacyStateFile);
      if (legacy !== null) {
        saved = parseState(legacy, opts.legacyStateFile);
        if (saved.url !== url) throw new DirectoryError('invalid-argument', `${opts.legacyStateFile} belongs to ${saved.url}`);
        imported = true;
      }
    }
    if (saved !== null) {
      state = saved;
      const info = await new DirectoryHttpClient(url).info(fromBase64Url(state.serviceKey)!);
      if (toBase64Url(info.logKey) !== state.logKey || info.logOrigin !== state.logOrigin) throw new DirectoryError('unverifiable', 'the directory changed its log key or origin');
    } else {
      const info: DirectoryInfo = await new DirectoryHttpClient(url).info();
      const verifier = new t.LogVerifier(info.logOrigin, info.logKey);
      const monitor = new t.LogMonitor(info.logOrigin, info.logKey);
      state = {
        v: 1,
        url,
        namespace: info.namespace,
        logOrigin: info.logOrigin,
        logKey: toBase64Url(info.logKey),
        serviceKey: toBase64Url(info.serviceKey),
        issuer: null,
        verifier: verifier.toJSON(),
        monitor: monitor.toJSON(),
        names: {},
        conversations: {},
        alerts: [],
        splitViews: [],
      };
    }
    let verifier: t.LogVerifier;
    let monitor: t.LogMonitor;
    try {
      verifier = t.LogVerifier.fromJSON(state.verifier);
      monitor = t.LogMonitor.fromJSON(state.monitor);
    } catch (e) {
      throw new ClientError('store-corrupt', `the checkpoint state of ${url} does not load: ${(e as Error).message}`, { cause: e });
    }
    const dc = new DirectoryClient(opts.client, store, state, verifier, monitor, opts.issuer, opts.tokens, opts.now ?? Date.now);
    try {
      await dc.save();
      // Imported whole in that one write: the file has nothing the store lacks now.
      if (imported) platform().removePrivateFile(opts.legacyStateFile!);
      // First contacts that arrived while no DirectoryClient was listening (e.g. during Client.open's sync).
      for (const info of await opts.client.conversations({ consent: 'all' })) if (state.conversations[info.id] === undefined) await dc.noteConversation(info);
    } catch (e) {
      await dc.close();
      throw e;
    }
    return dc;
  }

  get namespace(): string {
    return this.state.namespace;
  }

  on<K extends keyof DirectoryEventMap>(event: K, listener: (data: DirectoryEventMap[K]) => void): this {
    this.events.on(event, listener);
    return this;
  }

  off<K extends keyof DirectoryEventMap>(event: K, listener: (data: DirectoryEventMap[K]) => void): this {
    this.events.off(event, listener);
    return this;
  }

  /** Stops listening to the client; resolves once the last save has landed. */
  async close(): Promise<void> {
    this.client.off('conversation-started', this.onStarted);
    this.client.removeGossipSource(this.gossipSource);
    await this.saveTail.catch(() => undefined);
  }

  /**
   * Saves the state as it is when the save starts, after the saves before it; resolves once a
   * save including every change made before the call is durable (the latest state wins).
   */
  private save(): Promise<void> {
    if (this.saveQueued !== null) return this.saveQueued;
    const run = this.saveTail
      .catch(() => undefined)
      .then(() => {
        this.saveQueued = null;
        this.state.verifier = this.verifier.toJSON();
        this.state.monitor = this.monitor.toJSON();
        return this.store.write({ directoryStates: [{ url: this.state.url, state: JSON.stringify(this.state) }] });
      });
    this.saveQueued = run;
    this.saveTail = run;
    return run;
  }

  private identity(name: string, generation: number): Ed25519Key {
    return directoryIdentity(this.client.exportAccountKey(), this.state.namespace, name, generation);
  }

  private async alert(a: KeyAlert): Promise<void> {
    this.state.alerts.push(a);
    await this.save();
    this.events.emit('key-alert', a);
  }

  // ---- names we own ------------------------------------------------------------------------

  /**
   * Registers `name` with a key derived from the account key, and uploads `packages` key
   * packages and a fresh reusable last-resort package (what requesters get when the directory's
   * limits or an empty supply keep one-time packages from them). Registering a name we already
   * own tops up key packages and renews the last-resort one.
   */
  async register(name: string, options: { packages?: number; policy?: 'open' | 'members' | 'approval' | 'closed' } = {}): Promise<{ version: number; packages: number }> {
    if (!t.isValidName(name)) throw new DirectoryError('invalid-argument', 'a name is 1–64 characters of a-z 0-9 . _ - starting with a letter or digit');
    let own = this.state.names[name];
    if (own === undefined) {
      const key = this.identity(name, 0);
      const ts = this.now();
      let r;
      try {
        r = await this.http.register(name, { ipk: key.publicKey, pop: t.signPop(key.seed, this.state.namespace, name, ts), ts });
      } catch (e) {
        throw this.serviceError(e, `could not register ${name}`);
      }
      this.monitor.expect(this.state.namespace, name, r.version, t.commitValue(r.opening, t.nameLabel(this.state.namespace, name), r.version, key.publicKey));
      own = { generation: 0, version: r.version, invitations: [] };
      this.state.names[name] = own;
      await this.save();
    }
    if (options.policy !== undefined) await this.setPolicy(name, options.policy);
    const n = await this.publishPackages(name, options.packages ?? DEFAULT_PACKAGES, { lastResort: true });
    return { version: own.version, packages: n };
  }

  /**
   * Uploads `count` fresh single-use invitations as key packages (and, with `lastResort`, a new
   * reusable last-resort package); returns how many one-time packages are available.
   */
  async publishPackages(name: string, count: number, options: { lastResort?: boolean } = {}): Promise<number> {
    const own = this.owned(name);
    if (!Number.isInteger(count) || count < 0 || count > 100) throw new DirectoryError('invalid-argument', 'count must be 0..100');
    const key = this.identity(name, own.generation);
    // First contacts through a key package are requests from the transaction that stores them.
    const make = async (reusable: boolean) => {
      const inv = await this.client.createInvitation({ reusable, ttlSeconds: PACKAGE_TTL_S, arrivesAsRequest: true });
      return { id: inv.invitationId, kp: t.createKeyPackage(key.seed, this.state.namespace, name, signedInvitationOf(inv.text)) };
    };
    const kps: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const p = await make(false);
      own.invitations.push(p.id);
      kps.push(p.kp);
    }
    let lastResort: Uint8Array | undefined;
    if (options.lastResort === true) {
      const p = await make(true);
      own.lastResort = p.id;
      lastResort = p.kp;
    }
    // Which invitations are ours is durable before they are published.
    await this.save();
    try {
      if (kps.length > 0 || lastResort !== undefined) return (await this.http.uploadPackages(name, key, kps, lastResort)).available;
      return (await this.http.packageStatus(name, key)).available;
    } catch (e) {
      throw this.serviceError(e, 'could not upload key packages');
    }
  }

  async setPolicy(name: string, policy: 'open' | 'members' | 'approval' | 'closed'): Promise<void> {
    const own = this.owned(name);
    try {
      await this.http.setPolicy(name, this.identity(name, own.generation), policy);
    } catch (e) {
      throw this.serviceError(e, 'could not set the policy');
    }
  }

  /** Rolls the name's directory key over to the next generation, with "new follows old". */
  async rotate(name: string, options: { packages?: number } = {}): Promise<{ version: number }> {
    const own = this.owned(name);
    const oldKey = this.identity(name, own.generation);
    const newKey = this.identity(name, own.generation + 1);
    const ts = this.now();
    const follows = t.createFollows(oldKey.seed, newKey.seed, ts);
    let r;
    try {
      r = await this.http.register(name, { ipk: newKey.publicKey, pop: t.signPop(newKey.seed, this.state.namespace, name, ts), ts, follows });
    } catch (e) {
      throw this.serviceError(e, `could not rotate ${name}`);
    }
    this.monitor.expect(this.state.namespace, name, r.version, t.commitValue(r.opening, t.nameLabel(this.state.namespace, name), r.version, newKey.publicKey));
    own.generation += 1;
    own.version = r.version;
    own.invitations = [];
    delete own.lastResort;
    await this.save();
    await this.publishPackages(name, options.packages ?? DEFAULT_PACKAGES, { lastResort: true });
    return { version: r.version };
  }

  /** Pending approval requests for a name we own. */
  async pendingRequests(name: string): Promise<{ id: string; note: string; created: number }[]> {
    const own = this.owned(name);
    return this.http.pendingRequests(name, this.identity(name, own.generation));
  }

  async decide(name: string, requestId: string, decision: 'approve' | 'deny'): Promise<void> {
    const own = this.owned(name);
    try {
      await this.http.decide(name, this.identity(name, own.generation), requestId, decision);
    } catch (e) {
      throw this.serviceError(e, 'could not decide');
    }
  }

  private owned(name: string): OwnName {
    const own = this.state.names[name];
    if (own === undefined) throw new DirectoryError('not-registered', `you have not registered ${name} at ${this.state.url}`);
    return own;
  }

  /** A conversation started through one of our directory invitations becomes a request. */
  private async noteConversation(info: ConversationInfo): Promise<void> {
    if (info.origin !== 'invitation') return;
    const invitationId = this.relationshipOf(info.id)?.invitationId;
    if (invitationId === undefined) return;
    for (const [name, own] of Object.entries(this.state.names)) {
      const i = own.invitations.indexOf(invitationId);
      if (i < 0 && own.lastResort !== invitationId) continue;
      if (i >= 0) own.invitations.splice(i, 1); // the last-resort invitation stays: it is reusable
      this.state.conversations[info.id] = { name, role: 'owner' };
      await this.save();
      // Key packages made before createInvitation's arrivesAsRequest existed arrive 'allowed'.
      if (info.consent === 'allowed') await this.client.setConsent(info.id, 'unknown');
      this.events.emit('request', { ...(await this.client.conversation(info.id)), viaName: name });
      return;
    }
  }

  // ---- looking people up and contacting them -------------------------------------------------

  /** The key of a name we own here, if any (members sign; the directory then knows who asks). */
  private memberSigner(): Ed25519Key | null {
    const mine = Object.entries(this.state.names)[0];
    return mine === undefined ? null : this.identity(mine[0], mine[1].generation);
  }

  /** Lookups: members sign, anyone else pays a token. */
  private async lookupAuth(): Promise<{ signer?: Ed25519Key; token?: Uint8Array }> {
    const signer = this.memberSigner();
    if (signer !== null) return { signer };
    return { token: await this.token() };
  }

  /** Contacts: everyone pays a token when the directory takes them; members also sign. */
  private async contactAuth(): Promise<{ signer?: Ed25519Key; token?: Uint8Array }> {
    const signer = this.memberSigner();
    const info = await this.directoryInfo();
    if (info.token === null) return signer === null ? {} : { signer };
    return { ...(signer === null ? {} : { signer }), token: await this.token() };
  }

  private infoCache: DirectoryInfo | null = null;
  private async directoryInfo(): Promise<DirectoryInfo> {
    return (this.infoCache ??= await this.http.info(fromBase64Url(this.state.serviceKey)!));
  }

  /** Tokens a refused contact did not spend (the directory spends a token only with the work it pays for). */
  private readonly spareTokens: Uint8Array[] = [];

  private async token(): Promise<Uint8Array> {
    const spare = this.spareTokens.pop();
    if (spare !== undefined) return spare;
    const info = await this.directoryInfo();
    if (info.token === null) throw new DirectoryError('no-tokens', 'this directory does not take tokens; register a name to look people up');
    if (this.tokenSource !== undefined) {
      // One at a time: a token minted but not spent is lost when the process ends.
      const [token] = await this.tokenSource.tokensFor(info.token, 1);
      if (token === undefined) throw new DirectoryError('no-tokens', 'the services account gave no token');
      return token;
    }
    if (this.wallet === null) {
      let issuer: IssuerClient;
      if (this.state.issuer !== null) issuer = new IssuerClient(this.state.issuer.url, this.state.issuer.secret);
      else {
        if (this.issuerUrl === undefined) throw new DirectoryError('no-tokens', 'contacts and anonymous lookups need tokens: open the directory with the client\'s services account (tokens) or an issuer URL');
        issuer = await IssuerClient.register(this.issuerUrl);
        this.state.issuer = { url: issuer.url, secret: issuer.secret };
        await this.save();
      }
      this.wallet = new TokenWallet(issuer, info.token, 10);
    }
    return this.wallet.take();
  }

  private async verify(name: string, bundle: t.LookupBundle): Promise<t.LookupResult> {
    let r: t.LookupResult;
    try {
      r = this.verifier.verifyLookup(bundle, this.state.namespace, name);
    } catch (e) {
      if (e instanceof t.TransparencyError && e.code === 'split-view') await this.splitView({ mine: this.verifier.checkpoint?.text ?? '', theirs: bundle.checkpoint, detectedAt: this.now() });
      throw new DirectoryError('unverifiable', `the directory's answer for ${name} does not verify: ${(e as Error).message}`, { cause: e });
    }
    await this.save();
    for (const msg of r.alerts) await this.alert({ kind: 'key-changed-without-follows', name, version: r.version, message: msg });
    return r;
  }

  /** Looks a name up and verifies the answer against the held checkpoint. */
  async lookup(name: string): Promise<{ ipk: Uint8Array; version: number; change: t.KeyChange; alerts: readonly string[] }> {
    if (!t.isValidName(name)) throw new DirectoryError('invalid-argument', 'not a valid name');
    const known = this.verifier.known(this.state.namespace, name);
    let bundle;
    try {
      bundle = await this.http.lookup(name, { since: known?.version ?? 0, from: this.verifier.checkpoint?.size ?? null }, await this.lookupAuth());
    } catch (e) {
      throw this.serviceError(e, `could not look up ${name}`);
    }
    const r = await this.verify(name, bundle);
    return { ipk: r.ipk, version: r.version, change: r.change, alerts: r.alerts };
  }

  /**
   * Brokered first contact (F8): asks the directory for one of `name`'s key packages, verifies
   * the name's key against the log and the package's binding to it, and starts the conversation.
   * Under an 'approval' policy this throws DirectoryError('pending') with the request id in
   * `requestId`; call contactPending(requestId) later.
   */
  async contact(name: string, options: { note?: string } = {}): Promise<ConversationInfo> {
    if (!t.isValidName(name)) throw new DirectoryError('invalid-argument', 'not a valid name');
    let r;
    const auth = await this.contactAuth();
    try {
      r = await this.http.contact(name, { note: options.note ?? '', from: this.verifier.checkpoint?.size ?? null }, auth);
    } catch (e) {
      // A refusal (limit, policy, no packages) leaves the token unspent: keep it for the next request.
      if (auth.token !== undefined && e instanceof ServiceError && e.problem.status !== 401) this.spareTokens.push(auth.token);
      throw this.serviceError(e, `could not contact ${name}`);
    }
    if (r.state === 'pending') {
      const err = new DirectoryError('pending', `${name} approves contacts; request ${r.requestId} is waiting`);
      (err as DirectoryError & { requestId: string }).requestId = r.requestId;
      throw err;
    }
    return this.start(name, r.keyPackage, r.bundle);
  }

  /** After an approval: null while still pending; the conversation once approved. */
  async contactPending(name: string, requestId: string): Promise<ConversationInfo | null> {
    let r;
    try {
      r = await this.http.pollRequest(requestId, this.verifier.checkpoint?.size ?? null);
    } catch (e) {
      throw this.serviceError(e, `request ${requestId}`);
    }
    if (r === null || r.state !== 'approved') return null;
    return this.start(name, r.keyPackage, r.bundle);
  }

  private async start(name: string, keyPackage: Uint8Array, bundle: t.LookupBundle): Promise<ConversationInfo> {
    const v = await this.verify(name, bundle);
    const kp = t.verifyKeyPackage(keyPackage, v.ipk, this.state.namespace, name);
    if (kp === null) throw new DirectoryError('unverifiable', `the key package is not bound to ${name}'s logged key`);
    const text = invitationText(kp.signedInvitation);
    parseInvitation(nobleProvider, text, this.now()); // fail early on a bad invitation
    const conv = await this.client.accept(text);
    this.state.conversations[conv.id] = { name, role: 'contact', contact: { name, version: v.version, ipk: toBase64Url(v.ipk) } };
    await this.save();
    return conv;
  }

  // ---- monitoring and gossip -------------------------------------------------------------------

  /**
   * Owner monitoring (§7.5): downloads the new log entries, checks they extend the tree to the
   * signed checkpoint, and raises 'key-alert' for any version of our names we did not register.
   */
  async monitorNow(): Promise<KeyAlert[]> {
    const checkpoint = await this.http.checkpoint();
    const cp = t.verifyCheckpoint(checkpoint, this.state.logOrigin, fromBase64Url(this.state.logKey)!);
    if (cp === null) throw new DirectoryError('unverifiable', 'the checkpoint does not verify');
    const entries: Uint8Array[] = [];
    for (let start = this.monitor.size; start < cp.size; start += 1000) entries.push(...(await this.http.entries(start, Math.min(cp.size, start + 1000))));
    let found: t.MonitorAlert[];
    try {
      found = this.monitor.process(entries, checkpoint);
    } catch (e) {
      throw new DirectoryError('unverifiable', `the log does not check out: ${(e as Error).message}`, { cause: e });
    }
    // The monitor's checkpoint is also a good one for lookups.
    await this.adopt(checkpoint);
    await this.save();
    const names = new Map(Object.keys(this.state.names).map((n) => [toHex(t.nameLabel(this.state.namespace, n)), n]));
    const out: KeyAlert[] = [];
    for (const a of found) {
      const alert: KeyAlert = { kind: 'unexpected-key', name: names.get(a.label) ?? a.label, version: a.version, message: a.reason };
      out.push(alert);
      await this.alert(alert);
    }
    return out;
  }

  private async adopt(checkpoint: string): Promise<void> {
    const held = this.verifier.checkpoint;
    const cp = t.verifyCheckpoint(checkpoint, this.state.logOrigin, fromBase64Url(this.state.logKey)!);
    if (cp === null || (held !== null && held.size >= cp.size)) return;
    const proof = held === null ? [] : await this.http.consistency(held.size, cp.size);
    const r = this.verifier.resolvePeerCheckpoint(checkpoint, proof);
    if (r.kind === 'split-view') await this.splitView({ mine: r.mine, theirs: r.theirs, detectedAt: this.now() });
  }

  /** The held checkpoint as a gossip payload to attach to an end-to-end message (null before the first lookup). */
  gossip(): Uint8Array | null {
    const cp = this.verifier.checkpoint;
    return cp === null ? null : t.encodeCheckpointGossip(cp.origin, cp.text);
  }

  /**
   * A checkpoint a peer gossiped: compares it with ours, asking the directory for a consistency
   * proof when the sizes differ. 'split-view' also raises the event: the directory showed the two
   * of us different logs.
   */
  async receiveGossip(bytes: Uint8Array): Promise<'ignored' | 'equal' | 'consistent' | 'split-view'> {
    const g = t.decodeCheckpointGossip(bytes);
    if (g === null) return 'ignored';
    const c = this.verifier.checkPeerCheckpoint(g.checkpoint);
    if (c.kind === 'invalid' || c.kind === 'other-directory') return 'ignored';
    if (c.kind === 'equal') return 'equal';
    if (c.kind === 'split-view') {
      await this.splitView({ mine: c.mine, theirs: c.theirs, detectedAt: this.now() });
      return 'split-view';
    }
    let proof: Uint8Array[] = [];
    if (c.from > 0) {
      try {
        proof = await this.http.consistency(c.from, c.to);
      } catch {
        proof = [];
      }
    }
    const r = this.verifier.resolvePeerCheckpoint(g.checkpoint, proof);
    await this.save();
    if (r.kind === 'split-view') {
      await this.splitView({ mine: r.mine, theirs: r.theirs, detectedAt: this.now() });
      return 'split-view';
    }
    return 'consistent';
  }

  private async splitView(s: SplitView): Promise<void> {
    this.state.splitViews.push(s);
    await this.save();
    this.events.emit('split-view', s);
  }

  // ---- attestations ---------------------------------------------------------------------------

  /**
   * "This conversation's identity is equivalent to my directory identity for `name`" (F9 use 2):
   * an Equiv signed by both keys, for the peer to check with verifyLink.
   */
  linkProof(conversationId: string, name: string): Uint8Array {
    const own = this.owned(name);
    const relationship = this.relationshipSigner(conversationId);
    const key = this.identity(name, own.generation);
    return t.createEquivWith(relationship, { publicKey: key.publicKey, sign: (m) => nobleProvider.ed25519Sign(key.seed, m) }, this.now());
  }

  /**
   * Checks a peer's link proof: the Equiv must join the conversation's peer identity and the
   * key the directory logs for `name` (looked up and verified now).
   */
  async verifyLink(conversationId: string, name: string, proof: Uint8Array): Promise<boolean> {
    const claim = t.verifyEquiv(proof);
    const peer = this.peerIdentityKey(conversationId);
    if (claim === null || peer === null) return false;
    const { ipk } = await this.lookup(name);
    const keys = [toHex(claim.a), toHex(claim.b)];
    return keys.includes(toHex(peer)) && keys.includes(toHex(ipk));
  }

  /** The conversation's relationship key as the client's signing port (the secret stays in the client). */
  private relationshipSigner(conversationId: string): t.Ed25519Signer {
    try {
      return this.client.relationshipSigner(conversationId);
    } catch (e) {
      if (e instanceof ClientError && (e.code === 'unknown-conversation' || e.code === 'invalid-argument')) throw new DirectoryError('invalid-argument', 'unknown conversation');
      throw e;
    }
  }

  private peerIdentityKey(conversationId: string): Uint8Array | null {
    return this.relationshipOf(conversationId)?.peerIdentityKey ?? null;
  }

  private relationshipOf(conversationId: string): RelationshipInfo | undefined {
    try {
      return this.client.relationship(conversationId);
    } catch (e) {
      if (e instanceof ClientError && (e.code === 'unknown-conversation' || e.code === 'invalid-argument')) return undefined;
      throw e;
    }
  }

  // ---- status ----------------------------------------------------------------------------------

  status(): DirectoryStatus {
    return {
      url: this.state.url,
      namespace: this.state.namespace,
      checkpointSize: this.verifier.checkpoint?.size ?? null,
      monitoredUpTo: this.monitor.size,
      names: Object.entries(this.state.names).map(([name, o]) => ({ name, version: o.version, invitationsOut: o.invitations.length })),
      alerts: [...this.state.alerts],
      splitViews: [...this.state.splitViews],
    };
  }

  /** How a conversation relates to this directory (for `umbra verify`). */
  conversationStatus(conversationId: string): { name: string; role: 'owner' | 'contact'; version?: number; keyFingerprint?: string } | null {
    const c = this.state.conversations[conversationId];
    if (c === undefined) return null;
    if (c.contact === undefined) return { name: c.name, role: c.role };
    const ipk = fromBase64Url(c.contact.ipk)!;
    return { name: c.name, role: c.role, version: c.contact.version, keyFingerprint: toHex(sha256(ipk)).slice(0, 16) };
  }

  private serviceError(e: unknown, what: string): Error {
    if (e instanceof DirectoryError) return e;
    if (e instanceof ServiceError) {
      const s = e.problem.status;
      if (s === 429) return new DirectoryError('rate-limited', `${what}: ${e.message}`, { cause: e, ...((e.problem as DirectoryProblem).retryAfterS !== undefined ? { retryAfterS: (e.problem as DirectoryProblem).retryAfterS } : {}) });
      if (s === 401 && e.problem.title === 'Token refused') return new DirectoryError('no-tokens', `${what}: ${e.message}`, { cause: e });
      return new DirectoryError(s === 403 || s === 409 ? 'refused' : 'unverifiable', `${what}: ${e.message}`, { cause: e });
    }
    return new DirectoryError('unverifiable', `${what}: ${(e as Error).message}`, { cause: e });
  }
}
