/**
 * Invitation blobs: the sealed invitations behind short links (docs/PROTOCOL.md "Short
 * invitation links", docs/SERVICES.md "Invitation blobs"). The service stores opaque bytes under
 * a 32-byte locator until their expiry; it never sees the link key, so it can neither read nor
 * substitute an invitation. Storing pays one token (like every other write that costs storage);
 * fetching is free but bounded (size cap, per-address rate limit). Mounted on the directory.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MAX_INVITATION_BLOB_BYTES } from '@umbra/protocol';
import { b64u, fromB64u } from './bytes.ts';
import { bodyObject, problem, seconds, type Clock } from './common.ts';
import { ddl, type SqlDriver } from './db.ts';
import { initSchema, rateWindowsFor, type RateWindows } from './shared-state.ts';
import type { TokenVerifier } from './tokens.ts';

const DAY = 86_400_000;

export interface InvitationBlobLimits {
  /** Largest blob, bytes. */
  maxBytes: number;
  /** Longest lifetime from the PUT, seconds (the invitation's own expiry is usually sooner). */
  maxTtlS: number;
  /** Blobs stored at once (live ones); a PUT beyond gets 503. */
  maxStored: number;
  /** PUTs per client address per minute (before the token is looked at). */
  putsPerMinute: number;
  /** GETs per client address per minute. */
  getsPerMinute: number;
  /** How long an expired blob's locator is remembered (answers 410, not 404), ms. */
  expiredMemoryMs: number;
}

export const DEFAULT_INVITATION_BLOB_LIMITS: InvitationBlobLimits = {
  maxBytes: MAX_INVITATION_BLOB_BYTES,
  maxTtlS: 7 * 86_400,
  maxStored: 100_000,
  putsPerMinute: 30,
  getsPerMinute: 120,
  expiredMemoryMs: DAY,
};

const DDL = `
CREATE TABLE IF NOT EXISTS invitation_blobs (locator BLOB PRIMARY KEY, blob BLOB NOT NULL, expires INT NOT NULL, created INT NOT NULL);
CREATE INDEX IF NOT EXISTS invitation_blobs_expires ON invitation_blobs (expires);
`;

class LocatorTaken extends Error {}
class TokenSpent extends Error {}

export interface InvitationBlobs {
  /** Erases expired blobs' bytes, and forgets locators expired longer than expiredMemoryMs. */
  sweep(now: number): Promise<void>;
  close(): void;
}

export interface InvitationBlobOptions {
  db: SqlDriver;
  /** The verifier of the service's tokens; null = the service takes none, so it stores no blobs. */
  tokens: () => TokenVerifier | null;
  clock: Clock;
  limits?: Partial<InvitationBlobLimits>;
}

function locatorParam(req: FastifyRequest): Uint8Array | null {
  const l = fromB64u((req.params as { locator?: unknown }).locator);
  return l !== null && l.length === 32 ? l : null;
}

/** Registers PUT/GET /v1/invitation-blob/:locator on `app` (before it listens) and creates the table. */
export async function registerInvitationBlobs(app: FastifyInstance, opts: InvitationBlobOptions): Promise<InvitationBlobs> {
  const limits: InvitationBlobLimits = { ...DEFAULT_INVITATION_BLOB_LIMITS, ...opts.limits };
  const { db, clock } = opts;
  await initSchema(() => db.exec(ddl(db.dialect, DDL)));
  const putWindows: RateWindows = rateWindowsFor(db, limits.putsPerMinute, () => clock.now());
  const getWindows: RateWindows = rateWindowsFor(db, limits.getsPerMinute, () => clock.now());

  // The kind is in the key: on PostgreSQL both windows live in one shared table.
  async function limited(windows: RateWindows, kind: 'put' | 'get', req: FastifyRequest, reply: FastifyReply): Promise<boolean> {
    const r = await windows.consume(`invitation-blob-${kind}:${req.ip}`, 1, clock.now());
    if (r.allowed >= 1) return false;
    problem(reply.header('retry-after', String(r.retryAfterS)), 429, 'Rate limited', 'too many invitation-blob requests from this address');
    return true;
  }

  // base64url of maxBytes, the JSON around it and room for a slightly larger (refused) blob.
  const bodyLimit = Math.ceil((limits.maxBytes * 4) / 3) + 1024;
  app.put('/v1/invitation-blob/:locator', { bodyLimit }, async (req, reply) => {
    if (await limited(putWindows, 'put', req, reply)) return reply;
    const locator = locatorParam(req);
    if (locator === null) return problem(reply, 400, 'Malformed locator', 'a locator is base64url of 32 bytes');
    const tokens = opts.tokens();
    if (tokens === null) return problem(reply, 403, 'Not offered', 'this service takes no tokens, so it stores no invitation blobs');
    const check = tokens.verifyHeader(req.headers.authorization);
    if (check.kind !== 'ok') return problem(reply.header('www-authenticate', tokens.wwwAuthenticate()), 401, 'Token required', `storing an invitation blob costs one token: ${check.reason}`);
    const body = bodyObject(req.body);
    const blob = fromB64u(body.blob);
    if (blob === null || blob.length === 0) return problem(reply, 400, 'Malformed blob', 'blob must be non-empty base64url');
    if (blob.length > limits.maxBytes) return problem(reply, 413, 'Blob too large', `a blob is at most ${limits.maxBytes} bytes`);
    const now = clock.now();
    const expiresAt = body.expires_at;
    if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt) || expiresAt <= seconds(now) || expiresAt > seconds(now) + limits.maxTtlS) {
      return problem(reply, 400, 'Malformed expires_at', `expires_at must be unix seconds in the next ${limits.maxTtlS} s`);
    }
    try {
      await db.tx(async (q) => {
        const live = Number((await q.all('SELECT COUNT(*) AS n FROM invitation_blobs WHERE expires > ?', [now]))[0]!.n);
        if (live >= limits.maxStored) throw Object.assign(new Error('full'), { statusCode: 503 });
        // The token is spent only together with the blob it pays for (a refused PUT keeps it).
        if ((await q.run('INSERT INTO spent (h, expires) VALUES (?, ?) ON CONFLICT DO NOTHING', [check.spentKey, now + 40 * DAY])) !== 1) throw new TokenSpent();
        if ((await q.run('INSERT INTO invitation_blobs (locator, blob, expires, created) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', [locator, blob, expiresAt * 1000, now])) !== 1) throw new LocatorTaken();
      });
    } catch (e) {
      if (e instanceof TokenSpent) return problem(reply.header('www-authenticate', tokens.wwwAuthenticate()), 401, 'Token refused', 'token already spent');
      if (e instanceof LocatorTaken) return problem(reply, 409, 'Locator taken', 'a blob is already stored under this locator');
      throw e;
    }
    return reply.code(201).header('cache-control', 'no-store').send({ expires_at: expiresAt });
  });

  app.get('/v1/invitation-blob/:locator', async (req, reply) => {
    if (await limited(getWindows, 'get', req, reply)) return reply;
    const locator = locatorParam(req);
    if (locator === null) return problem(reply, 400, 'Malformed locator', 'a locator is base64url of 32 bytes');
    const row = (await db.all('SELECT blob, expires FROM invitation_blobs WHERE locator = ?', [locator]))[0];
    if (row === undefined) return problem(reply, 404, 'Unknown invitation', 'no invitation is stored under this locator');
    const expires = Number(row.expires);
    if (expires <= clock.now()) return problem(reply, 410, 'Invitation expired', 'the invitation stored under this locator has expired');
    return reply.header('cache-control', 'no-store').send({ blob: b64u(new Uint8Array(row.blob as Buffer)), expires_at: Math.floor(expires / 1000) });
  });

  return {
    async sweep(now: number) {
      await db.run('UPDATE invitation_blobs SET blob = ? WHERE expires <= ? AND length(blob) > 0', [new Uint8Array(0), now]);
      await db.run('DELETE FROM invitation_blobs WHERE expires <= ?', [now - limits.expiredMemoryMs]);
    },
    close() {
      putWindows.close();
      getWindows.close();
    },
  };
}
