/**
 * State that N instances of one role share through their database (issue 18, docs/SERVICES.md
 * "Instances"): the signed-request replay store, per-key rate windows, a cross-instance lock, the
 * role's identity key, and schema creation that tolerates instances starting together.
 *
 * On SQLite a database has one process (the hub, a single `umbra serve`), so the in-process
 * NonceCache and MemoryRateWindows are equivalent there and stay the fast path; on PostgreSQL
 * the database is the only place every instance sees.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ddl, type SqlDriver } from './db.ts';
import { ed25519FromSeed, NonceCache, type Ed25519Key, type NonceStore, type NonceVerdict } from './httpsig.ts';

/** A configuration that cannot work (a key file or database that does not fit); the message names what to fix. */
export class InstanceConfigError extends Error {
  override readonly name = 'InstanceConfigError';
}

// ---- schema ------------------------------------------------------------------------------------

/** PostgreSQL codes of a concurrent CREATE … IF NOT EXISTS losing to another session's. */
const DDL_RACE_CODES = new Set(['23505', '42P07', '42710']);

/**
 * Runs schema creation, again after a short pause when another instance created the same
 * object at the same moment (PostgreSQL's IF NOT EXISTS is not atomic across sessions).
 */
export async function initSchema(init: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await init();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (attempt >= 5 || typeof code !== 'string' || !DDL_RACE_CODES.has(code)) throw e;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
    }
  }
}

const SHARED_DDL = `
CREATE TABLE IF NOT EXISTS signed_nonces (k BLOB PRIMARY KEY, expires INT NOT NULL);
CREATE INDEX IF NOT EXISTS signed_nonces_expires ON signed_nonces (expires);
CREATE TABLE IF NOT EXISTS rate_windows (k TEXT PRIMARY KEY, start INT NOT NULL, n INT NOT NULL);
`;

// ---- identity key --------------------------------------------------------------------------------

/**
 * The role's Ed25519 identity (service_key, what its descriptors are signed with). With
 * `provided` (a key file: every instance of a role gets the same one) that key, written to the
 * database on first use; a database that already holds another key is refused, so two instances
 * of one role can never sign as two services. Without it, the key in the database, created by
 * the first instance (first writer wins).
 */
export async function loadServiceKey(store: { initMeta(k: string, v: Uint8Array): Promise<Uint8Array> }, provided?: Uint8Array): Promise<Ed25519Key> {
  if (provided !== undefined && provided.length !== 32) throw new InstanceConfigError('the service key must be 32 bytes');
  const seed = await store.initMeta('service_key', provided ?? new Uint8Array(randomBytes(32)));
  if (provided !== undefined && !(seed.length === 32 && timingSafeEqual(seed, provided)))
    throw new InstanceConfigError('this database belongs to a service with another identity key: use that key file, or a database of its own');
  return ed25519FromSeed(seed);
}

// ---- cross-instance lock -----------------------------------------------------------------------

function lockId(name: string): number {
  return createHash('sha256').update(`umbra-lock:${name}`).digest().readInt32BE(0);
}

/**
 * Runs `fn` while holding the database-wide lock `name` (a PostgreSQL transaction-scoped
 * advisory lock), so one instance at a time does it; `fn` uses the store's own connections and
 * its writes are committed before the lock is released. On SQLite (one process per database)
 * it just runs `fn`.
 */
export async function withInstanceLock<T>(db: SqlDriver, name: string, fn: () => Promise<T>): Promise<T> {
  if (db.dialect !== 'pg') return fn();
  return db.tx(async (q) => {
    await q.all('SELECT pg_advisory_xact_lock(?::bigint)', [lockId(name)]);
    return fn();
  });
}

/** Locks held in this process on databases that have one process (SQLite). */
const localLocks = new WeakMap<SqlDriver, Set<string>>();

/**
 * Like withInstanceLock, but does not wait: `{ ran: false }` when another session (or, on
 * SQLite, another caller in this process) holds `name`. For long work (a shard move) that a
 * second instance must not run twice nor wait behind.
 */
export async function tryWithInstanceLock<T>(db: SqlDriver, name: string, fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
  if (db.dialect !== 'pg') {
    let held = localLocks.get(db);
    if (!held) localLocks.set(db, (held = new Set()));
    if (held.has(name)) return { ran: false };
    held.add(name);
    try {
      return { ran: true, value: await fn() };
    } finally {
      held.delete(name);
    }
  }
  return db.tx(async (q) => {
    const got = await q.all('SELECT pg_try_advisory_xact_lock(?::bigint) AS ok', [lockId(name)]);
    if (got[0]?.ok !== true) return { ran: false as const };
    return { ran: true as const, value: await fn() };
  });
}

// ---- replay store ------------------------------------------------------------------------------

/** Live nonces one database holds before new signed requests get 503 (rows are ≈ 60 B + index). */
export const MAX_LIVE_DB_NONCES = 10_000_000;
/** Most nonces in one INSERT (2 parameters each). */
const NONCE_BATCH = 500;
/** Expired rows stay this long past their expiry: instances' clocks may differ by that much. */
const NONCE_CLOCK_SLACK_MS = 60_000;

export interface DbNonceStoreOptions {
  maxLive?: number;
  sweepMs?: number;
}

interface PendingNonce {
  key: Buffer;
  expires: number;
  resolve(v: NonceVerdict): void;
  reject(e: unknown): void;
}

/**
 * NonceStore in the role's database (`signed_nonces`): a nonce is new for exactly one instance,
 * the one whose INSERT … ON CONFLICT DO NOTHING wrote the row. Checks that arrive in the same
 * event-loop turn share one INSERT (one round trip and one commit for all of them); the answer
 * comes after that commit. Expired rows are swept every `sweepMs`, which also counts the live
 * ones against the cap (at the cap: 'full' until a sweep finds room, as the in-memory cache does).
 */
export class DbNonceStore implements NonceStore {
  private pending: PendingNonce[] = [];
  private scheduled = false;
  private full = false;
  private lastSweep = 0;
  private readonly maxLive: number;
  private readonly sweepMs: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly db: SqlDriver,
    private readonly now: () => number,
    options: DbNonceStoreOptions = {},
  ) {
    this.maxLive = options.maxLive ?? MAX_LIVE_DB_NONCES;
    this.sweepMs = options.sweepMs ?? 30_000;
    this.timer = setInterval(() => void this.sweep().catch((e) => console.error('[services] nonce sweep failed:', (e as Error).message)), this.sweepMs);
    this.timer.unref();
  }

  async checkAndRemember(nonce: string, expiresAtMs: number): Promise<NonceVerdict> {
    if (expiresAtMs < this.now()) return 'expired';
    const key = Buffer.from(nonce, 'latin1');
    if (this.full) {
      // Replays are still refused when there is no room for new nonces.
      const seen = await this.db.all('SELECT 1 AS x FROM signed_nonces WHERE k = ?', [key]);
      return seen.length > 0 ? 'replay' : 'full';
    }
    return new Promise<NonceVerdict>((resolve, reject) => {
      this.pending.push({ key, expires: expiresAtMs, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  retryAfterMs(): number {
    return Math.max(1000, this.lastSweep + this.sweepMs - this.now());
  }

  private flush(): void {
    this.scheduled = false;
    while (this.pending.length > 0) void this.insert(this.pending.splice(0, NONCE_BATCH));
  }

  private async insert(batch: PendingNonce[]): Promise<void> {
    // The same nonce twice in one batch: the first one decides, the others are replays of it.
    const first = new Map<string, PendingNonce>();
    const repeats: PendingNonce[] = [];
    for (const p of batch) {
      const id = p.key.toString('latin1');
      if (first.has(id)) repeats.push(p);
      else first.set(id, p);
    }
    const rows = [...first.values()];
    try {
      const inserted = await this.db.all(
        `INSERT INTO signed_nonces (k, expires) VALUES ${rows.map(() => '(?, ?)').join(', ')} ON CONFLICT DO NOTHING RETURNING k`,
        rows.flatMap((p) => [p.key, p.expires]),
      );
      const fresh = new Set(inserted.map((r) => Buffer.from(r.k as Uint8Array).toString('latin1')));
      for (const [id, p] of first) p.resolve(fresh.has(id) ? 'new' : 'replay');
      for (const p of repeats) p.resolve('replay');
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
  }

  /** Drops expired nonces and counts the live ones (at most the cap: the count stays cheap). */
  async sweep(): Promise<void> {
    const now = this.now();
    this.lastSweep = now;
    await this.db.run('DELETE FROM signed_nonces WHERE expires < ?', [now - NONCE_CLOCK_SLACK_MS]);
    const r = await this.db.all('SELECT COUNT(*) AS n FROM (SELECT 1 FROM signed_nonces LIMIT ?) AS live', [this.maxLive]);
    this.full = Number(r[0]?.n ?? 0) >= this.maxLive;
  }

  close(): void {
    clearInterval(this.timer);
  }
}

// ---- rate windows ----------------------------------------------------------------------------

/**
 * Fixed per-key windows ("at most `limit` per minute"): `consume` counts `n` attempts and says
 * how many of them fit; `looksFull` is a cheap early hint from what this instance saw last (the
 * authoritative count is `consume`'s).
 */
export interface RateWindows {
  consume(key: string, n: number, now: number): Promise<{ allowed: number; retryAfterS: number }>;
  looksFull(key: string, now: number): { full: boolean; retryAfterS: number };
  close(): void;
}

interface Window {
  start: number;
  n: number;
}

function retryAfterS(w: Window, windowMs: number, now: number): number {
  return Math.max(1, Math.ceil((w.start + windowMs - now) / 1000));
}

/** In-process windows: what one process holding its database alone needs. */
export class MemoryRateWindows implements RateWindows {
  private readonly windows = new Map<string, Window>();
  constructor(
    private readonly limit: number,
    private readonly windowMs = 60_000,
  ) {}

  private windowOf(key: string, now: number): Window {
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      // Paying signers may bring a new key every time: forget finished windows before growing.
      if (!w && this.windows.size >= 10_000) for (const [k, old] of this.windows) if (now - old.start >= this.windowMs) this.windows.delete(k);
      this.windows.set(key, (w = { start: now, n: 0 }));
    }
    return w;
  }

  async consume(key: string, n: number, now: number): Promise<{ allowed: number; retryAfterS: number }> {
    const w = this.windowOf(key, now);
    const room = Math.max(0, this.limit - w.n);
    w.n += n;
    return { allowed: Math.min(n, room), retryAfterS: retryAfterS(w, this.windowMs, now) };
  }

  looksFull(key: string, now: number): { full: boolean; retryAfterS: number } {
    const w = this.windowOf(key, now);
    return { full: w.n >= this.limit, retryAfterS: retryAfterS(w, this.windowMs, now) };
  }

  close(): void {}
}

/**
 * Windows in the database (`rate_windows`), counted by one atomic upsert per call, so N
 * instances together allow `limit` per window, not N × `limit`.
 */
export class DbRateWindows implements RateWindows {
  /** What the last consume of a key answered here (for looksFull; never authoritative). */
  private readonly seen = new Map<string, Window>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly db: SqlDriver,
    private readonly limit: number,
    private readonly windowMs = 60_000,
    now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => {
      const t = now();
      for (const [k, w] of this.seen) if (t - w.start >= this.windowMs) this.seen.delete(k);
      void this.db.run('DELETE FROM rate_windows WHERE start < ?', [t - 2 * this.windowMs]).catch((e) => console.error('[services] rate window sweep failed:', (e as Error).message));
    }, this.windowMs);
    this.timer.unref();
  }

  async consume(key: string, n: number, now: number): Promise<{ allowed: number; retryAfterS: number }> {
    const stale = now - this.windowMs;
    const rows = await this.db.all(
      `INSERT INTO rate_windows (k, start, n) VALUES (?, ?, ?)
       ON CONFLICT (k) DO UPDATE SET
         start = CASE WHEN rate_windows.start <= ? THEN excluded.start ELSE rate_windows.start END,
         n = CASE WHEN rate_windows.start <= ? THEN excluded.n ELSE rate_windows.n + excluded.n END
       RETURNING start, n`,
      [key, now, n, stale, stale],
    );
    const w = { start: Number(rows[0]!.start), n: Number(rows[0]!.n) };
    this.seen.set(key, w);
    const before = w.n - n;
    return { allowed: Math.max(0, Math.min(n, this.limit - before)), retryAfterS: retryAfterS(w, this.windowMs, now) };
  }

  looksFull(key: string, now: number): { full: boolean; retryAfterS: number } {
    const w = this.seen.get(key);
    if (!w || now - w.start >= this.windowMs) return { full: false, retryAfterS: 1 };
    return { full: w.n >= this.limit, retryAfterS: retryAfterS(w, this.windowMs, now) };
  }

  close(): void {
    clearInterval(this.timer);
  }
}

// ---- per-dialect choice --------------------------------------------------------------------

/** Creates the shared tables (PostgreSQL only: SQLite keeps these in process). */
export async function initSharedState(db: SqlDriver): Promise<void> {
  if (db.dialect === 'pg') await initSchema(() => db.exec(ddl(db.dialect, SHARED_DDL)));
}

/** The replay store for a role on `db`: the database on PostgreSQL, in process on SQLite. */
export function nonceStoreFor(db: SqlDriver, now: () => number): NonceStore & { close?(): void } {
  return db.dialect === 'pg' ? new DbNonceStore(db, now) : new NonceCache(now);
}

/** Rate windows for a role on `db` (see nonceStoreFor). */
export function rateWindowsFor(db: SqlDriver, limit: number, now: () => number, windowMs = 60_000): RateWindows {
  return db.dialect === 'pg' ? new DbRateWindows(db, limit, windowMs, now) : new MemoryRateWindows(limit, windowMs);
}
