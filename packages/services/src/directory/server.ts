/**
 * The directory service (communicator.md F6–F9, §7, §8.5): names in one namespace bound to
 * Ed25519 identity keys, every key change appended to an RFC 9162 transparency log with signed
 * checkpoints, key packages (pre-signed single-use invitations) handed out at most once, a
 * contact policy per name, approval queues, and attestations. See docs/DIRECTORY.md.
 *
 * Auth: the owner of a name signs requests (RFC 9421 profile of httpsig.ts) with the name's
 * current identity key (keyid = base64url of the key). Anonymous lookups pay with a Privacy Pass
 * token for this origin; a member of the directory may sign instead. Every contact (a key
 * package fetch or an approval request) pays a token, members included, and is held to
 * per-requester and per-target limits (DirectoryLimits; docs/DIRECTORY.md "Contact costs").
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { invitationText, nobleProvider, parseInvitation, transparency, UmbraError } from '@umbra/protocol';
import { b64u, fromB64u } from '../bytes.ts';
import { bodyObject, createApp, HttpProblem, listen, problem, rawBody, signDescriptor, systemClock, seconds, type Clock } from '../common.ts';
import { openDriver } from '../db.ts';
import { ed25519FromSeed, rawKeyFromKeyid, verifyRequest, type Ed25519Key } from '../httpsig.ts';
import { initSchema, initSharedState, loadServiceKey, nonceStoreFor } from '../shared-state.ts';
import { TokenVerifier } from '../tokens.ts';
import { registerInvitationBlobs, type InvitationBlobLimits, type InvitationBlobs } from '../invitation-blobs.ts';
import { POLICIES, SqlDirectoryStore, type Policy } from './store.ts';

/**
 * A contact request's id: 16 random bytes whose base64url does not begin with '-'. The owner
 * types it into `umbra approve <name> <id>` (the CLI prints that line), where a leading '-'
 * reads as an option: one id in 64 failed so. Redrawing those costs 0.02 bits of the 128.
 */
export function newRequestId(random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n))): Uint8Array {
  for (;;) {
    const id = random(16);
    if (id[0]! >> 2 !== 62) return id; // the first base64url digit is the top 6 bits; 62 is '-'
  }
}

const t = transparency;
const DAY = 86_400_000;

export interface DirectoryLimits {
  /** Key packages per upload. */
  maxUpload: number;
  /** Key packages stored per name. */
  maxStored: number;
  /** Pending approval requests per name. */
  maxPending: number;
  /** Versions returned per lookup. */
  maxVersions: number;
  /** Entries per /v1/log/entries call. */
  maxEntries: number;
  /** Proof of possession timestamps accepted within ± this. */
  popSkewMs: number;
  /** How long an approval request lives. */
  requestTtlMs: number;
  /** One-time key packages a name hands out per rolling hour (then its last-resort package). */
  oneTimePerTargetPerHour: number;
  /** One-time key packages of one name a member receives per rolling 24 h. */
  oneTimePerRequesterPerTarget: number;
  /** Contacts (package fetches and approval requests, any name) one member makes per rolling hour. */
  contactsPerRequesterPerHour: number;
  /** Pending approval requests one member has per name. */
  pendingPerRequesterPerTarget: number;
  /** Of maxPending, the places anonymous (token-only) approval requests may take. */
  maxPendingAnonymous: number;
}

export const DEFAULT_DIRECTORY_LIMITS: DirectoryLimits = {
  maxUpload: 100,
  maxStored: 1000,
  maxPending: 100,
  maxVersions: 16,
  maxEntries: 1000,
  popSkewMs: 5 * 60_000,
  requestTtlMs: 7 * DAY,
  oneTimePerTargetPerHour: 10,
  oneTimePerRequesterPerTarget: 1,
  contactsPerRequesterPerHour: 30,
  pendingPerRequesterPerTarget: 1,
  maxPendingAnonymous: 50,
};

export interface DirectoryOptions {
  /** SQLite file path or postgres:// URL. */
  db: string;
  host?: string;
  port?: number;
  /** The namespace names live in (default: the listening host:port). */
  namespace?: string;
  /**
   * Token issuer for lookups and contacts. Without tokenKeys no token is asked for, and so no
   * one-time key package is handed out except on the owner's approval: open and members-only
   * contacts get the last-resort package.
   */
  issuerName?: string;
  tokenKeys?: Uint8Array[];
  /** Origin info for token challenges (default: the listening host:port). */
  originInfo?: string;
  /** New names: 'open' (first come) or 'admin' (Bearer adminSecret). */
  registration?: 'open' | 'admin';
  /** Lets the operator reset a name to a new key without "follows" (account recovery); logged as a reset. */
  adminSecret?: string;
  defaultPolicy?: Policy;
  limits?: Partial<DirectoryLimits>;
  /** Short invitation links' sealed invitations (invitation-blobs.ts): paid with this directory's tokens. */
  invitationBlobLimits?: Partial<InvitationBlobLimits>;
  /**
   * 32-byte Ed25519 seed of this service's identity (a key file): every instance of the role
   * gets the same, so they sign as one service. Without it, the key in the database (first start).
   */
  serviceKey?: Uint8Array;
  clock?: Clock;
}

export interface DirectoryService {
  url: string;
  namespace: string;
  logOrigin: string;
  logKey: Uint8Array;
  serviceKey: Uint8Array;
  originInfo: string;
  app: FastifyInstance;
  store: SqlDirectoryStore;
  /** The short-link blobs it stores (its sweep runs with the directory's, every minute). */
  invitationBlobs: InvitationBlobs;
  close(): Promise<void>;
}

const MAX_NOTE_CHARS = 280;

function b64uList(x: readonly Uint8Array[]): string[] {
  return x.map(b64u);
}

/** Whether a stored key package (checked on upload) is a one-time one; an approval may hand out the last-resort one. */
function hasOneTimePrekey(kp: Uint8Array): boolean {
  const decoded = t.decodeKeyPackage(kp);
  if (decoded === null) return false;
  try {
    return parseInvitation(nobleProvider, invitationText(decoded.signedInvitation), 0).oneTimePrekey !== null;
  } catch {
    return false;
  }
}

function parseNat(v: unknown, what: string): number {
  if (typeof v !== 'string' || !/^(0|[1-9][0-9]{0,14})$/.test(v)) throw new HttpProblem(400, `Malformed ${what}`, `${what} must be a non-negative integer`);
  return Number(v);
}

export async function startDirectory(opts: DirectoryOptions): Promise<DirectoryService> {
  const clock = opts.clock ?? systemClock;
  const limits = { ...DEFAULT_DIRECTORY_LIMITS, ...opts.limits };
  const registration = opts.registration ?? 'open';
  const defaultPolicy = opts.defaultPolicy ?? 'open';
  const store = new SqlDirectoryStore(openDriver(opts.db));
  const app = createApp(1024 * 1024);
  await initSchema(() => store.init());
  // Instances of this directory share its database, replay checks included (shared-state.ts).
  await initSharedState(store.db);
  const nonces = nonceStoreFor(store.db, () => clock.now());
  const serviceKey: Ed25519Key = await loadServiceKey(store, opts.serviceKey);
  const logSeed = await store.initMeta('log_key', new Uint8Array(randomBytes(32)));
  const logKey = ed25519FromSeed(logSeed).publicKey;
  // The namespace (and so the log origin) is fixed at the first start and kept in the database;
  // by default it is the listening host:port, known only after listen().
  let namespace = '';
  let logOrigin = '';
  let originInfo = '';
  let tokens: TokenVerifier | null = null;
  const sign = (size: number, root: Uint8Array): string => t.signCheckpoint(logOrigin, size, root, logSeed).text;
  const blobs = await registerInvitationBlobs(app, { db: store.db, tokens: () => tokens, clock, ...(opts.invitationBlobLimits ? { limits: opts.invitationBlobLimits } : {}) });

  // ---- helpers ---------------------------------------------------------------------------

  function nameParam(req: FastifyRequest): string {
    const name = (req.params as { name?: unknown }).name;
    if (!t.isValidName(name)) throw new HttpProblem(400, 'Malformed name', 'a name is 1–64 characters of a-z 0-9 . _ - starting with a letter or digit');
    return name;
  }

  async function existing(name: string) {
    const row = await store.getName(name);
    if (!row) throw new HttpProblem(404, 'Unknown name', `no name "${name}" in ${namespace}`);
    return row;
  }

  async function signedBy(req: FastifyRequest): Promise<Uint8Array | null> {
    if (req.headers['signature-input'] === undefined) return null;
    let key: Uint8Array | null = null;
    const check = await verifyRequest(
      { method: req.method, url: req.url, headers: req.headers, body: rawBody(req) },
      (keyid) => (key = rawKeyFromKeyid(keyid)),
      nonces,
      clock.now(),
    );
    if (check.kind !== 'ok') throw new HttpProblem(401, 'Signature refused', check.reason);
    return key;
  }

  /** The request must be signed by the name's current key. */
  async function owner(req: FastifyRequest, name: string) {
    const row = await existing(name);
    const key = await signedBy(req);
    if (key === null) throw new HttpProblem(401, 'Signature required', "sign the request with the name's identity key");
    if (Buffer.compare(Buffer.from(key), Buffer.from(row.ipk)) !== 0) throw new HttpProblem(403, 'Not the owner', "the request is not signed by the name's current key");
    return row;
  }

  /** The member signing the request (a registered name's current key), or null when unsigned. */
  async function memberOf(req: FastifyRequest, required: boolean): Promise<string | null> {
    const key = await signedBy(req);
    if (key === null) {
      if (required) throw new HttpProblem(403, 'Members only', `only members of ${namespace} may contact this name: sign the request with your name's key`);
      return null;
    }
    const member = await store.nameByKey(key);
    if (member === null) throw new HttpProblem(403, 'Not a member', `the signing key is not a current key of any name in ${namespace}`);
    return member;
  }

  /** The token paying for this request (its spent-nonce key); null when the directory takes none. */
  function payment(req: FastifyRequest, reply: FastifyReply): Uint8Array | null {
    if (tokens === null) return null;
    const check = tokens.verifyHeader(req.headers.authorization);
    if (check.kind !== 'ok') {
      reply.header('www-authenticate', tokens.wwwAuthenticate());
      throw new HttpProblem(401, 'Token refused', check.reason);
    }
    return check.spentKey;
  }

  /** Lookups: a member signs, or anyone pays a token. */
  async function lookupRequester(req: FastifyRequest, reply: FastifyReply): Promise<{ member: string | null; spentKey: Uint8Array | null }> {
    const member = await memberOf(req, false);
    return member !== null ? { member, spentKey: null } : { member: null, spentKey: payment(req, reply) };
  }

  async function bundle(name: string, since: number, from: number | null) {
    const head = await store.head();
    const versions = await store.versions(name, since, limits.maxVersions);
    if (versions.length === 0) {
      const latest = await store.versions(name, 0, 1);
      versions.push(...latest);
    }
    if (from !== null && from > head.size) throw new HttpProblem(400, 'Malformed from', `from must be ≤ the log size ${head.size}`);
    const leaves = await store.leaves(head.size);
    const out: transparency.VersionProof[] = [];
    for (const v of versions) {
      const entry = (await store.entryAt(v.index))!;
      out.push({ version: v.version, ipk: v.ipk, opening: v.opening, entry, index: v.index, inclusion: t.inclusionProof(leaves, v.index, head.size), follows: v.follows });
    }
    return t.bundleToJson({
      namespace,
      name,
      checkpoint: head.checkpoint,
      consistency: from === null || from === 0 ? null : { from, proof: t.consistencyProof(leaves, from, head.size) },
      versions: out,
    });
  }

  function queryNat(req: FastifyRequest, key: string): number | null {
    const v = (req.query as Record<string, unknown>)[key];
    return v === undefined ? null : parseNat(v, key);
  }

  function checkKeyPackage(bytes: Uint8Array | null, ipk: Uint8Array, name: string, oneTime: boolean, what: string): Uint8Array {
    if (bytes === null) throw new HttpProblem(400, 'Malformed key package', `${what} is not base64url`);
    const kp = t.verifyKeyPackage(bytes, ipk, namespace, name);
    if (kp === null) throw new HttpProblem(400, 'Bad key package', `${what} is malformed or not bound to ${name}'s key`);
    let inv;
    try {
      inv = parseInvitation(nobleProvider, invitationText(kp.signedInvitation), clock.now());
    } catch (e) {
      throw new HttpProblem(400, 'Bad key package', `${what}: ${e instanceof UmbraError ? e.message : 'invalid invitation'}`);
    }
    if (oneTime && inv.oneTimePrekey === null) throw new HttpProblem(400, 'Bad key package', `${what} has no one-time prekey (upload reusable ones as last_resort)`);
    if (!oneTime && inv.oneTimePrekey !== null) throw new HttpProblem(400, 'Bad key package', `${what}: a last-resort package must be reusable`);
    return bytes;
  }

  // ---- descriptor and log ------------------------------------------------------------------

  app.get('/.well-known/communicator.json', async () =>
    signDescriptor(serviceKey, {
      v: 1,
      roles: ['directory'],
      service_key: b64u(serviceKey.publicKey),
      namespace,
      log_origin: logOrigin,
      log_key: b64u(logKey),
      policies: POLICIES,
      registration,
      endpoints: { names: '/v1/names/{name}', log: '/v1/log' },
      limits,
      token: tokens ? { issuer_name: opts.issuerName, origin_info: originInfo, token_keys: opts.tokenKeys!.map(b64u), class: 'ssa' } : null,
      issued_at: seconds(clock.now()),
      expires: seconds(clock.now()) + 3600,
    }),
  );

  app.get('/v1/log/checkpoint', async () => ({ checkpoint: (await store.head()).checkpoint }));

  app.get('/v1/log/proof/inclusion', async (req) => {
    const index = queryNat(req, 'index');
    const size = queryNat(req, 'size');
    if (index === null || size === null) throw new HttpProblem(400, 'Missing parameters', 'give index and size');
    const head = await store.head();
    if (size > head.size || index >= size) throw new HttpProblem(400, 'Out of range', `need index < size ≤ ${head.size}`);
    return { inclusion: b64uList(t.inclusionProof(await store.leaves(size), index, size)) };
  });

  app.get('/v1/log/proof/consistency', async (req) => {
    const from = queryNat(req, 'from');
    const to = queryNat(req, 'to');
    if (from === null || to === null) throw new HttpProblem(400, 'Missing parameters', 'give from and to');
    const head = await store.head();
    if (from > to || to > head.size) throw new HttpProblem(400, 'Out of range', `need from ≤ to ≤ ${head.size}`);
    return { proof: b64uList(t.consistencyProof(await store.leaves(to), from, to)) };
  });

  app.get('/v1/log/entries', async (req) => {
    const start = queryNat(req, 'start');
    const end = queryNat(req, 'end');
    if (start === null || end === null) throw new HttpProblem(400, 'Missing parameters', 'give start and end');
    const head = await store.head();
    if (start > end || end > head.size) throw new HttpProblem(400, 'Out of range', `need start ≤ end ≤ ${head.size}`);
    if (end - start > limits.maxEntries) throw new HttpProblem(400, 'Range too large', `at most ${limits.maxEntries} entries per call`);
    return { entries: b64uList(await store.entries(start, end)) };
  });

  // ---- registration ----------------------------------------------------------------------------

  app.put('/v1/names/:name/identity', async (req, reply) => {
    const name = nameParam(req);
    const body = bodyObject(req.body);
    const ipk = fromB64u(body.ipk);
    if (!ipk || ipk.length !== 32) return problem(reply, 400, 'Malformed ipk', 'ipk must be a 32-byte Ed25519 key in base64url');
    const pop = fromB64u(body.pop);
    if (!pop || pop.length !== 64) return problem(reply, 400, 'Malformed pop', 'pop must be a 64-byte Ed25519 signature in base64url');
    const ts = body.ts;
    if (typeof ts !== 'number' || !Number.isSafeInteger(ts)) return problem(reply, 400, 'Malformed ts', 'ts must be the signing time in Unix milliseconds');
    if (Math.abs(ts - clock.now()) > limits.popSkewMs) return problem(reply, 400, 'Stale proof of possession', 'ts is too far from the directory clock');
    if (!t.verifyPop(ipk, namespace, name, ts, pop)) return problem(reply, 400, 'Bad proof of possession', 'pop does not verify under ipk for this namespace and name');
    let follows: Uint8Array | null = null;
    if (body.follows !== undefined && body.follows !== null) {
      follows = fromB64u(body.follows);
      if (!follows) return problem(reply, 400, 'Malformed follows', 'follows must be base64url');
    }
    const auth = req.headers.authorization;
    const admin = opts.adminSecret !== undefined && auth === `Bearer ${opts.adminSecret}`;
    const cur = await store.getName(name);
    let type: transparency.EntryTypeName;
    if (cur === null) {
      if (follows !== null) return problem(reply, 400, 'Unexpected follows', 'a new name has no previous key to follow');
      if (registration === 'admin' && !admin) return problem(reply, 403, 'Registration closed', 'this directory registers names through its operator');
      type = 'register';
    } else if (Buffer.compare(Buffer.from(cur.ipk), Buffer.from(ipk)) === 0) {
      return problem(reply, 409, 'Same key', `${name} already has this key`);
    } else if (follows !== null) {
      const f = t.verifyFollows(follows);
      if (f === null) return problem(reply, 400, 'Bad follows', 'follows is malformed or its signatures do not verify');
      if (Buffer.compare(Buffer.from(f.a), Buffer.from(cur.ipk)) !== 0 || Buffer.compare(Buffer.from(f.b), Buffer.from(ipk)) !== 0) {
        return problem(reply, 400, 'Bad follows', "follows must be signed by the name's current key for the new ipk");
      }
      type = 'rotate';
    } else if (admin) {
      type = 'reset';
    } else {
      return problem(reply, 409, 'Name taken', `${name} is registered; to replace its key send follows signed by the current key`);
    }
    const opening = new Uint8Array(randomBytes(t.OPENING_BYTES));
    const label = t.nameLabel(namespace, name);
    const now = clock.now();
    const r = await store.append({
      name,
      ipk,
      opening,
      follows,
      expectVersion: cur?.version ?? 0,
      now,
      policy: defaultPolicy,
      entry: (version, prev) =>
        t.encodeEntry({
          type,
          namespace,
          label,
          version,
          tsMs: now,
          commitment: t.commitValue(opening, label, version, ipk),
          prev,
          evidence: follows === null ? new Uint8Array(0) : t.followsDigest(follows),
        }),
      sign,
    });
    if (r.kind === 'conflict') return problem(reply, 409, 'Conflict', `${name} changed meanwhile; look it up and retry`);
    return reply.code(201).send({
      name,
      namespace,
      type,
      version: r.version,
      index: r.index,
      entry: b64u(r.entry),
      opening: b64u(opening),
      checkpoint: r.checkpoint,
    });
  });

  app.get('/v1/names/:name/identity', async (req, reply) => {
    const name = nameParam(req);
    const since = queryNat(req, 'since') ?? 0;
    const from = queryNat(req, 'from');
    await existing(name);
    const who = await lookupRequester(req, reply);
    const out = await bundle(name, since, from);
    if (who.spentKey !== null && !(await store.spendToken(who.spentKey, clock.now() + 40 * DAY))) {
      reply.header('www-authenticate', tokens!.wwwAuthenticate());
      return problem(reply, 401, 'Token refused', 'token already spent');
    }
    return out;
  });

  // ---- owner operations ------------------------------------------------------------------------

  app.post('/v1/names/:name/packages', async (req, reply) => {
    const name = nameParam(req);
    const row = await owner(req, name);
    const body = bodyObject(req.body);
    const list = body.packages ?? [];
    if (!Array.isArray(list) || list.length > limits.maxUpload) return problem(reply, 400, 'Malformed packages', `packages must be an array of at most ${limits.maxUpload} base64url key packages`);
    if (list.length === 0 && (body.last_resort === undefined || body.last_resort === null)) return problem(reply, 400, 'Nothing to upload', 'give packages and/or last_resort');
    const kps = list.map((x, i) => checkKeyPackage(fromB64u(x), row.ipk, name, true, `packages[${i}]`));
    const lastResort = body.last_resort === undefined || body.last_resort === null ? null : checkKeyPackage(fromB64u(body.last_resort), row.ipk, name, false, 'last_resort');
    const r = await store.addPackages(name, row.ipk, kps, lastResort, limits.maxStored, clock.now());
    if (r === 'full') return problem(reply, 409, 'Too many key packages', `at most ${limits.maxStored} stored per name`);
    if (r === 'key-changed') return problem(reply, 409, 'Conflict', 'the key changed meanwhile');
    return reply.code(201).send(await store.packageStatus(name));
  });

  app.get('/v1/names/:name/packages/status', async (req) => {
    const name = nameParam(req);
    await owner(req, name);
    const s = await store.packageStatus(name);
    return { available: s.available, last_resort: s.lastResort };
  });

  app.put('/v1/names/:name/policy', async (req, reply) => {
    const name = nameParam(req);
    await owner(req, name);
    const body = bodyObject(req.body);
    if (typeof body.policy !== 'string' || !(POLICIES as readonly string[]).includes(body.policy)) {
      return problem(reply, 400, 'Malformed policy', `policy must be one of ${POLICIES.join(', ')}`);
    }
    await store.setPolicy(name, body.policy as Policy);
    return { policy: body.policy };
  });

  app.get('/v1/names/:name/requests', async (req) => {
    const name = nameParam(req);
    await owner(req, name);
    const rows = await store.pendingRequests(name, clock.now());
    return { requests: rows.map((r) => ({ id: b64u(r.id), note: r.note, created: seconds(r.created) })) };
  });

  app.post('/v1/names/:name/requests/:id', async (req, reply) => {
    const name = nameParam(req);
    await owner(req, name);
    const id = fromB64u((req.params as { id?: unknown }).id);
    if (!id || id.length !== 16) return problem(reply, 400, 'Malformed request id', 'the request id is 16 bytes of base64url');
    const body = bodyObject(req.body);
    if (body.decision !== 'approve' && body.decision !== 'deny') return problem(reply, 400, 'Malformed decision', 'decision must be approve or deny');
    const r = await store.decide(name, id, body.decision === 'approve', clock.now());
    if (r === 'unknown') return problem(reply, 404, 'Unknown request', 'no pending request with this id');
    if (r === 'empty') return problem(reply, 409, 'No key packages', 'upload key packages before approving');
    return { state: body.decision === 'approve' ? 'approved' : 'denied' };
  });

  app.post('/v1/names/:name/attestation', async (req) => {
    const name = nameParam(req);
    const row = await owner(req, name);
    const issuedAt = clock.now();
    const b = await bundle(name, row.version - 1, null);
    const versions = b.versions as { index: number }[];
    const index = versions[versions.length - 1]!.index;
    return {
      attestation: {
        namespace,
        name,
        ipk: b64u(row.ipk),
        version: row.version,
        index,
        issued_at: issuedAt,
        sig: b64u(t.signDirectoryAttestation(logSeed, namespace, name, row.ipk, row.version, index, issuedAt)),
      },
      bundle: b,
    };
  });

  // ---- first contact ---------------------------------------------------------------------------

  app.post('/v1/names/:name/contact', async (req, reply) => {
    const name = nameParam(req);
    const body = bodyObject(req.body);
    const note = body.note ?? '';
    if (typeof note !== 'string' || note.length > MAX_NOTE_CHARS) return problem(reply, 400, 'Malformed note', `note must be a string of at most ${MAX_NOTE_CHARS} characters`);
    const from = body.from === undefined || body.from === null ? null : typeof body.from === 'number' && Number.isSafeInteger(body.from) && body.from >= 0 ? body.from : -1;
    if (from === -1) return problem(reply, 400, 'Malformed from', 'from must be the size of the checkpoint you hold');
    const row = await existing(name);
    if (row.policy === 'closed') return problem(reply, 403, 'Contact closed', `${name} does not accept contact through the directory`);
    const member = await memberOf(req, row.policy === 'members');
    if (member === name) return problem(reply, 400, 'Own name', 'you cannot contact yourself');
    // Every contact pays, members included (a registered name is no free pass).
    const spentKey = payment(req, reply);
    const now = clock.now();
    const ask = { name, requester: member, spentKey, spentExpires: now + 40 * DAY, now };
    const limited = (r: { retryAfterMs: number; reason: string }) =>
      problem(reply.header('retry-after', String(Math.ceil(r.retryAfterMs / 1000))), 429, 'Too many requests', r.reason);
    const doubleSpend = () => problem(reply.header('www-authenticate', tokens!.wwwAuthenticate()), 401, 'Token refused', 'token already spent');
    if (row.policy === 'approval') {
      const id = newRequestId();
      const r = await store.createRequest({ id, name, note: member ? `${member}: ${note}` : note, state: 'pending', kp: null, created: now, expires: now + limits.requestTtlMs }, ask, limits);
      if (typeof r === 'object') return limited(r);
      if (r === 'double-spend') return doubleSpend();
      if (r === 'full') return problem(reply, 429, 'Too many requests', `${name} has too many pending ${member === null ? 'anonymous ' : ''}requests`);
      return reply.code(202).send({ state: 'pending', request_id: b64u(id), poll: `/v1/contact-requests/${b64u(id)}` });
    }
    const r = await store.takePackage(ask, limits);
    if (r.kind === 'limited') return limited(r);
    if (r.kind === 'double-spend') return doubleSpend();
    if (r.kind !== 'ok') {
      return problem(reply, 409, 'No key packages', tokens === null ? `${name} has no last-resort key package (this directory hands out one-time ones only on approval)` : `${name} has no key packages left; try again later`);
    }
    return { state: 'approved', key_package: b64u(r.kp), one_time: r.oneTime, bundle: await bundle(name, row.version - 1, from) };
  });

  app.get('/v1/contact-requests/:id', async (req, reply) => {
    const id = fromB64u((req.params as { id?: unknown }).id);
    if (!id || id.length !== 16) return problem(reply, 400, 'Malformed request id', 'the request id is 16 bytes of base64url');
    const from = queryNat(req, 'from');
    const r = await store.getRequest(id, clock.now());
    if (r === null) return problem(reply, 404, 'Unknown request');
    if (r.state === 'pending') return reply.code(202).send({ state: 'pending' });
    if (r.state === 'denied') return problem(reply, 403, 'Request denied', 'the owner declined this request');
    const row = await existing(r.name);
    return { state: 'approved', key_package: b64u(r.kp!), one_time: hasOneTimePrekey(r.kp!), bundle: await bundle(r.name, row.version - 1, from) };
  });

  const url = await listen(app, opts.host ?? '127.0.0.1', opts.port ?? 0);
  const host = new URL(url).host;
  originInfo = opts.originInfo ?? host;
  namespace = new TextDecoder().decode(await store.initMeta('namespace', new TextEncoder().encode(opts.namespace ?? host)));
  logOrigin = `${namespace}/log`;
  await store.initHead(sign);
  if (opts.tokenKeys && opts.tokenKeys.length > 0 && opts.issuerName) tokens = new TokenVerifier(opts.issuerName, originInfo, opts.tokenKeys.map((tokenKey) => ({ tokenKey })));

  const sweeper = setInterval(() => {
    void store.sweep(clock.now()).catch((e) => console.error('[directory] sweep failed:', e));
    void blobs.sweep(clock.now()).catch((e) => console.error('[directory] invitation-blob sweep failed:', e));
  }, 60_000);
  sweeper.unref();

  return {
    url,
    namespace,
    logOrigin,
    logKey,
    serviceKey: serviceKey.publicKey,
    originInfo,
    app,
    store,
    invitationBlobs: blobs,
    async close() {
      clearInterval(sweeper);
      nonces.close?.();
      blobs.close();
      await app.close();
      await store.close();
    },
  };
}
