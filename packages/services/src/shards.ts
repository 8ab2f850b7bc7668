/**
 * RSA mailboxes sharded over K SQL databases (issue 18 item 2; docs/SCALING.md).
 *
 * An inbox, its seeds, its messages and its dedupe keys live on one *shard* chosen by a stable
 * hash of the inbox id (`inboxHash`: the first 4 bytes of SHA-256(id), big-endian, in [0, 2^32)).
 * A small *control* database holds what is not per inbox (meta, spent tokens, epoch keys, the
 * seed → inbox routes a resolve needs) and the *versioned map*: per version, which shard owns
 * which hash range, and the current version.
 *
 * Every shard also keeps its own `owned` table: the ranges it accepts now. Every store operation
 * runs in one shard transaction whose first statement reads the `owned` row covering the inbox's
 * hash (FOR KEY SHARE on PostgreSQL); a shard that does not own the hash answers "not owned" and
 * the store re-reads the map and tries again. Ownership is exclusive at every instant: a range is
 * taken from its source shard (which waits for the transactions holding its `owned` row) before
 * it is given to the destination, so no write can land on a shard that lost the range, whatever
 * map an instance has cached. That is what makes a move lossless under traffic (`ShardAdmin.moveRange`:
 * copy, fence, sync, switch, drain, delete).
 *
 * Message sequence numbers are per inbox (`inboxes.next_seq`), so a move copies them unchanged and
 * a reader's cursor stays valid on the new shard.
 */
import { createHash } from 'node:crypto';
import { ddl, openDriver, type Row, type Sql, type SqlDriver } from './db.ts';
import { initSchema, tryWithInstanceLock, withInstanceLock } from './shared-state.ts';
import {
  addressKeys,
  admitDelivery,
  buf,
  COMMON_DDL,
  DoubleSpend,
  getMeta,
  initMeta,
  num,
  placeholders,
  RSA_MESSAGE_CHANNEL,
  spend,
  SEED_FOR_DELIVERY_SQL,
  toSeed,
  type AddressKeyRow,
  type DeliverOutcome,
  type DeliveryLimits,
  type Inbox,
  type NewMessage,
  type RsaStore,
  type Seed,
  type SeedState,
  type StoredMessage,
} from './store.ts';

export const HASH_SPACE = 2 ** 32;

/** Stable placement hash of an inbox id: SHA-256(id)[0..4] as a big-endian u32. */
export function inboxHash(id: Uint8Array): number {
  return createHash('sha256').update(id).digest().readUInt32BE(0);
}

/** A shard stayed unreachable or unowned for an inbox longer than the retry deadline. */
export class ShardUnavailableError extends Error {
  override readonly name = 'ShardUnavailableError';
  /** What the HTTP servers answer for it (common.ts): 503 with Retry-After. */
  readonly statusCode = 503;
}

/** A map or move request that cannot be carried out as asked (unknown shard, range not owned by one shard, …). */
export class ShardMapError extends Error {
  override readonly name = 'ShardMapError';
}

export interface MapEntry {
  lo: number;
  hi: number;
  shard: string;
}

export interface ShardMap {
  version: number;
  /** Sorted by lo, covering [0, 2^32) without gaps or overlaps. */
  entries: MapEntry[];
  /** Registered shards (name → URL), mapped or not yet. */
  shards: Map<string, string>;
}

/** The shard owning hash h under `map`. */
export function ownerOf(map: ShardMap, h: number): string {
  let lo = 0;
  let hi = map.entries.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const e = map.entries[mid]!;
    if (h < e.lo) hi = mid - 1;
    else if (h >= e.hi) lo = mid + 1;
    else return e.shard;
  }
  throw new ShardMapError(`the shard map version ${map.version} does not cover hash ${h}`);
}

const MAP_CHANNEL = 'umbra_shard_map';

const CONTROL_DDL = `
CREATE TABLE IF NOT EXISTS address_keys (kid INT PRIMARY KEY, class TEXT NOT NULL, x BLOB NOT NULL, pub BLOB NOT NULL,
  created INT NOT NULL, derive_until INT NOT NULL, resolve_until INT NOT NULL);
CREATE TABLE IF NOT EXISTS seed_routes (m BLOB PRIMARY KEY, inbox BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS shards (name TEXT PRIMARY KEY, url TEXT NOT NULL, added INT NOT NULL);
CREATE TABLE IF NOT EXISTS shard_map (version INT NOT NULL, lo INT NOT NULL, hi INT NOT NULL, shard TEXT NOT NULL, PRIMARY KEY (version, lo));
CREATE TABLE IF NOT EXISTS shard_current (id INT PRIMARY KEY, version INT NOT NULL);
CREATE TABLE IF NOT EXISTS shard_moves (id SERIALPK, lo INT NOT NULL, hi INT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL,
  from_version INT NOT NULL, to_version INT, phase TEXT NOT NULL, started INT NOT NULL, updated INT NOT NULL);
CREATE TABLE IF NOT EXISTS shard_move_digests (id INT PRIMARY KEY, digest TEXT NOT NULL);
`;

const SHARD_DDL = `
CREATE TABLE IF NOT EXISTS owned (lo INT PRIMARY KEY, hi INT NOT NULL, version INT NOT NULL);
CREATE TABLE IF NOT EXISTS inboxes (id BLOB PRIMARY KEY, hash INT NOT NULL, auth_key BLOB NOT NULL, dh_key BLOB NOT NULL, created INT NOT NULL,
  msg_count INT NOT NULL, msg_bytes INT NOT NULL, next_seq INT NOT NULL);
CREATE INDEX IF NOT EXISTS inboxes_hash ON inboxes (hash);
CREATE TABLE IF NOT EXISTS seeds (m BLOB PRIMARY KEY, seed_id BLOB NOT NULL UNIQUE, inbox BLOB NOT NULL, hash INT NOT NULL, not_after INT NOT NULL,
  state TEXT NOT NULL, win_start INT NOT NULL, win_count INT NOT NULL, day_start INT NOT NULL, day_count INT NOT NULL, dropped INT NOT NULL);
CREATE INDEX IF NOT EXISTS seeds_inbox ON seeds (inbox);
CREATE INDEX IF NOT EXISTS seeds_hash ON seeds (hash);
CREATE TABLE IF NOT EXISTS messages (inbox BLOB NOT NULL, seq INT NOT NULL, mid BLOB NOT NULL UNIQUE, hash INT NOT NULL, seed_id BLOB NOT NULL,
  received_at INT NOT NULL, expires INT NOT NULL, stored BLOB NOT NULL, size INT NOT NULL, PRIMARY KEY (inbox, seq));
CREATE INDEX IF NOT EXISTS messages_hash ON messages (hash);
CREATE INDEX IF NOT EXISTS messages_expires ON messages (expires);
CREATE TABLE IF NOT EXISTS dedupe (h BLOB PRIMARY KEY, hash INT NOT NULL, expires INT NOT NULL);
CREATE INDEX IF NOT EXISTS dedupe_hash ON dedupe (hash);
`;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function readMap(control: Sql): Promise<ShardMap | null> {
  const cur = (await control.all('SELECT version FROM shard_current WHERE id = 1'))[0];
  if (!cur) return null;
  const version = num(cur.version);
  const entries = (await control.all('SELECT lo, hi, shard FROM shard_map WHERE version = ? ORDER BY lo', [version])).map((r) => ({
    lo: num(r.lo),
    hi: num(r.hi),
    shard: String(r.shard),
  }));
  const shards = new Map((await control.all('SELECT name, url FROM shards')).map((r) => [String(r.name), String(r.url)]));
  return { version, entries, shards };
}

/** The map as it was at `version` (moves keep every version's rows). */
async function readMapVersion(control: Sql, version: number): Promise<ShardMap> {
  const entries = (await control.all('SELECT lo, hi, shard FROM shard_map WHERE version = ? ORDER BY lo', [version])).map((r) => ({
    lo: num(r.lo),
    hi: num(r.hi),
    shard: String(r.shard),
  }));
  if (entries.length === 0) throw new ShardMapError(`no shard map version ${version}`);
  const shards = new Map((await control.all('SELECT name, url FROM shards')).map((r) => [String(r.name), String(r.url)]));
  return { version, entries, shards };
}

function validEntries(entries: MapEntry[]): boolean {
  let at = 0;
  for (const e of entries) {
    if (e.lo !== at || e.hi <= e.lo) return false;
    at = e.hi;
  }
  return at === HASH_SPACE;
}

const NOT_OWNED = Symbol('not owned');

export interface ShardedStoreOptions {
  /** The control database (a driver, or a location for `openDriver`). */
  control: SqlDriver | string;
  /** Opens a shard's database from its registered URL (default `openDriver`). */
  open?: (url: string) => SqlDriver;
  /** How often the map is re-read even without a "not owned" answer, for push subscriptions to new shards (default 1000 ms). */
  mapRefreshMs?: number;
  /** How long one operation keeps retrying a range that is being moved before ShardUnavailableError (default 30 s). */
  retryDeadlineMs?: number;
}

/**
 * `RsaStore` over a control database and K shards. Several instances (processes) may use the
 * same databases at once; each caches the map and follows it when a shard says "not owned".
 */
export class ShardedRsaStore implements RsaStore {
  readonly control: SqlDriver;
  private readonly open: (url: string) => SqlDriver;
  private readonly mapRefreshMs: number;
  private readonly retryDeadlineMs: number;
  private map: ShardMap | null = null;
  private mapRead = 0;
  private mapLoading: Promise<ShardMap> | null = null;
  private readonly drivers = new Map<string, SqlDriver>();
  /** Seed M (hex) → inbox id: immutable once written, so cached (bounded). */
  private readonly routes = new Map<string, Uint8Array>();
  private readonly messageListeners = new Set<(inboxHex: string) => void>();
  private readonly resyncListeners = new Set<() => void>();
  private readonly shardUnlisten = new Map<string, Promise<() => Promise<void>>>();
  private controlUnlisten: (() => Promise<void>) | null = null;
  private refresher: NodeJS.Timeout | null = null;
  private closed = false;
  /** Operations that met a shard which no longer owned their range and went again (tests, reports). */
  readonly stats = { notOwnedRetries: 0, mapReloads: 0 };

  constructor(opts: ShardedStoreOptions) {
    this.control = typeof opts.control === 'string' ? openDriver(opts.control) : opts.control;
    this.open = opts.open ?? openDriver;
    this.mapRefreshMs = opts.mapRefreshMs ?? 1000;
    this.retryDeadlineMs = opts.retryDeadlineMs ?? 30_000;
  }

  async init(): Promise<void> {
    await this.control.exec(ddl(this.control.dialect, COMMON_DDL + CONTROL_DDL));
    await this.loadMap();
    const reload = () => void this.loadMap().catch(() => {});
    this.controlUnlisten = await this.control.listen(MAP_CHANNEL, reload, reload);
    this.refresher = setInterval(() => void this.loadMap().catch(() => {}), this.mapRefreshMs);
    this.refresher.unref();
  }

  /** The map as this instance knows it (re-read at most once at a time). */
  async currentMap(): Promise<ShardMap> {
    return this.map ?? this.loadMap();
  }

  private loadMap(): Promise<ShardMap> {
    this.mapLoading ??= (async () => {
      try {
        const m = await readMap(this.control);
        if (!m) throw new ShardMapError('no shard map yet: run ShardAdmin.bootstrap first');
        this.stats.mapReloads++;
        this.map = m;
        this.mapRead = Date.now();
        await this.subscribeShards(m);
        return m;
      } finally {
        this.mapLoading = null;
      }
    })();
    return this.mapLoading;
  }

  /** Listens on every registered shard (mapped or about to be), so pushes from a new owner arrive. */
  private async subscribeShards(m: ShardMap): Promise<void> {
    if (this.messageListeners.size === 0 || this.closed) return;
    for (const name of m.shards.keys()) {
      if (this.shardUnlisten.has(name)) continue;
      // Registered before the await: a concurrent map reload must not listen twice.
      const un = this.driver(name, m).listen(
        RSA_MESSAGE_CHANNEL,
        (hex) => {
          for (const cb of this.messageListeners) cb(hex);
        },
        () => {
          for (const cb of this.resyncListeners) cb();
        },
      );
      this.shardUnlisten.set(name, un);
      await un;
    }
  }

  private driver(name: string, m: ShardMap): SqlDriver {
    let d = this.drivers.get(name);
    if (!d) {
      const url = m.shards.get(name);
      if (!url) throw new ShardMapError(`shard ${name} is not registered`);
      d = this.open(url);
      this.drivers.set(name, d);
    }
    return d;
  }

  /**
   * Runs `fn` in a transaction on the shard that owns `inbox`, after checking (and, on
   * PostgreSQL, share-locking) that ownership inside the same transaction. A shard that no longer
   * owns the range sends us back to the map; a range being moved is retried with backoff until
   * the move's switch, at most retryDeadlineMs.
   */
  private async onShard<T>(inbox: Uint8Array, fn: (q: Sql, db: SqlDriver, hash: number) => Promise<T>): Promise<T> {
    const h = inboxHash(inbox);
    const deadline = Date.now() + this.retryDeadlineMs;
    for (let attempt = 0; ; attempt++) {
      const map = attempt === 0 ? await this.currentMap() : await this.loadMap();
      const db = this.driver(ownerOf(map, h), map);
      const r = await db.tx(async (q) => {
        const own = await q.all(`SELECT version FROM owned WHERE lo <= ? AND ? < hi ${db.dialect === 'pg' ? 'FOR KEY SHARE' : ''}`, [h, h]);
        if (own.length === 0) return NOT_OWNED;
        return { value: await fn(q, db, h) };
      });
      if (r !== NOT_OWNED) return r.value;
      this.stats.notOwnedRetries++;
      if (Date.now() > deadline) throw new ShardUnavailableError(`no shard accepted hash ${h} within ${this.retryDeadlineMs} ms (a move stuck between fence and switch?)`);
      if (attempt > 0) await sleep(Math.min(200, 5 * 2 ** attempt));
    }
  }

  // ---- control-database operations ---------------------------------------------------------

  getMeta(k: string): Promise<Uint8Array | null> {
    return getMeta(this.control, k);
  }
  initMeta(k: string, v: Uint8Array): Promise<Uint8Array> {
    return initMeta(this.control, k, v);
  }
  spendToken(key: Uint8Array, expires: number): Promise<boolean> {
    return spend(this.control, key, expires);
  }
  putAddressKey(k: AddressKeyRow): Promise<void> {
    return addressKeys.put(this.control, k);
  }
  listAddressKeys(): Promise<AddressKeyRow[]> {
    return addressKeys.list(this.control);
  }
  deleteAddressKey(kid: number): Promise<void> {
    return addressKeys.delete(this.control, kid);
  }

  // ---- inboxes -----------------------------------------------------------------------------

  /** Spends the tokens in the control database, then creates the inbox on its shard (a failure in between loses the tokens, as a delivery interrupted after its spend does). */
  async createInbox(inbox: { id: Uint8Array; authKey: Uint8Array; dhKey: Uint8Array }, spentKeys: Uint8Array[], spentExpires: number, now: number): Promise<boolean> {
    try {
      await this.control.tx(async (q) => {
        for (const k of spentKeys) if (!(await spend(q, k, spentExpires))) throw new DoubleSpend();
      });
    } catch (e) {
      if (e instanceof DoubleSpend) return false;
      throw e;
    }
    await this.onShard(inbox.id, (q, _db, h) =>
      q.run('INSERT INTO inboxes (id, hash, auth_key, dh_key, created, msg_count, msg_bytes, next_seq) VALUES (?, ?, ?, ?, ?, 0, 0, 1)', [
        inbox.id,
        h,
        inbox.authKey,
        inbox.dhKey,
        now,
      ]),
    );
    return true;
  }

  getInbox(id: Uint8Array): Promise<Inbox | null> {
    return this.onShard(id, async (q) => {
      const r = (await q.all('SELECT id, auth_key, dh_key, msg_count, msg_bytes FROM inboxes WHERE id = ?', [id]))[0];
      return r ? { id: buf(r.id), authKey: buf(r.auth_key), dhKey: buf(r.dh_key), msgCount: num(r.msg_count), msgBytes: num(r.msg_bytes) } : null;
    });
  }

  async deleteInbox(id: Uint8Array): Promise<void> {
    const ms = await this.onShard(id, async (q) => {
      await q.run('DELETE FROM messages WHERE inbox = ?', [id]);
      const seeds = await q.all('DELETE FROM seeds WHERE inbox = ? RETURNING m', [id]);
      await q.run('DELETE FROM inboxes WHERE id = ?', [id]);
      return seeds.map((r) => buf(r.m));
    });
    for (const m of ms) this.routes.delete(Buffer.from(m).toString('hex'));
    if (ms.length > 0) await this.control.run(`DELETE FROM seed_routes WHERE m IN (${placeholders(ms.length)})`, ms);
  }

  async addSeeds(inbox: Uint8Array, seeds: Seed[], spentKey: Uint8Array, spentExpires: number): Promise<boolean> {
    try {
      await this.control.tx(async (q) => {
        if (!(await spend(q, spentKey, spentExpires))) throw new DoubleSpend();
        for (const s of seeds) await q.run('INSERT INTO seed_routes (m, inbox) VALUES (?, ?)', [s.m, inbox]);
      });
    } catch (e) {
      if (e instanceof DoubleSpend) return false;
      throw e;
    }
    await this.onShard(inbox, async (q, _db, h) => {
      for (const s of seeds)
        await q.run(
          `INSERT INTO seeds (m, seed_id, inbox, hash, not_after, state, win_start, win_count, day_start, day_count, dropped)
           VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 0)`,
          [s.m, s.seedId, inbox, h, s.notAfter, s.state],
        );
    });
    return true;
  }

  /** The inbox a seed belongs to (the control database's route, cached), null if unknown. */
  private async seedInbox(m: Uint8Array): Promise<Uint8Array | null> {
    const key = Buffer.from(m).toString('hex');
    let inbox = this.routes.get(key);
    if (!inbox) {
      const r = (await this.control.all('SELECT inbox FROM seed_routes WHERE m = ?', [m]))[0];
      if (!r) return null;
      inbox = buf(r.inbox);
      if (this.routes.size >= 200_000) this.routes.clear();
      this.routes.set(key, inbox);
    }
    return inbox;
  }

  async findSeed(m: Uint8Array): Promise<Seed | null> {
    const inbox = await this.seedInbox(m);
    if (!inbox) return null;
    return this.onShard(inbox, async (q) => {
      const r = (await q.all('SELECT m, seed_id, inbox, not_after, state FROM seeds WHERE m = ?', [m]))[0];
      return r ? toSeed(r) : null;
    });
  }

  async findSeedForDelivery(m: Uint8Array): Promise<{ seed: Seed; dhKey: Uint8Array } | null> {
    const inbox = await this.seedInbox(m);
    if (!inbox) return null;
    return this.onShard(inbox, async (q) => {
      const r = (await q.all(SEED_FOR_DELIVERY_SQL, [m]))[0];
      return r ? { seed: toSeed(r), dhKey: buf(r.dh_key) } : null;
    });
  }

  setSeedState(inbox: Uint8Array, seedId: Uint8Array, state: SeedState): Promise<boolean> {
    return this.onShard(inbox, async (q) => (await q.run('UPDATE seeds SET state = ? WHERE inbox = ? AND seed_id = ?', [state, inbox, seedId])) === 1);
  }

  // ---- messages ----------------------------------------------------------------------------

  deliver(msg: NewMessage, limits: DeliveryLimits, now: number): Promise<DeliverOutcome> {
    const inbox = msg.seed.inbox;
    return this.onShard(inbox, async (q, db, h): Promise<DeliverOutcome> => {
      const lock = db.dialect === 'pg' ? 'FOR UPDATE' : '';
      // The inbox row lock serializes this inbox's inserts: next_seq order is commit order.
      const ib = (await q.all(`SELECT msg_count, msg_bytes, next_seq FROM inboxes WHERE id = ? ${lock}`, [inbox]))[0];
      if (!ib) return { kind: 'gone' };
      const s = (await q.all(`SELECT state, not_after, win_start, win_count, day_start, day_count FROM seeds WHERE m = ? ${lock}`, [msg.seed.m]))[0];
      if (!s || String(s.state) !== 'active' || num(s.not_after) < now) return { kind: 'gone' };
      if ((await q.all('SELECT 1 AS x FROM dedupe WHERE h = ?', [msg.dedupeKey])).length > 0) return { kind: 'duplicate' };
      const admit = admitDelivery(s, ib, msg.stored.length, limits, now);
      if ('deferred' in admit) {
        await q.run('UPDATE seeds SET dropped = dropped + 1 WHERE m = ?', [msg.seed.m]);
        return admit.deferred;
      }
      const seq = num(ib.next_seq);
      await q.run('INSERT INTO dedupe (h, hash, expires) VALUES (?, ?, ?)', [msg.dedupeKey, h, now + 86_400_000]);
      await q.run('UPDATE seeds SET win_start = ?, win_count = ?, day_start = ?, day_count = ? WHERE m = ?', [
        admit.winStart,
        admit.winCount,
        admit.dayStart,
        admit.dayCount,
        msg.seed.m,
      ]);
      await q.run(
        'INSERT INTO messages (inbox, seq, mid, hash, seed_id, received_at, expires, stored, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [inbox, seq, msg.mid, h, msg.seed.seedId, msg.receivedAt, msg.expires, msg.stored, msg.stored.length],
      );
      await q.run('UPDATE inboxes SET msg_count = msg_count + 1, msg_bytes = msg_bytes + ?, next_seq = ? WHERE id = ?', [msg.stored.length, seq + 1, inbox]);
      await db.notify(q, RSA_MESSAGE_CHANNEL, Buffer.from(inbox).toString('hex'));
      return { kind: 'stored' };
    });
  }

  fetch(inbox: Uint8Array, after: number, limit: number, now: number): Promise<StoredMessage[]> {
    return this.onShard(inbox, async (q) => {
      const rows = await q.all(
        'SELECT seq, mid, seed_id, received_at, stored FROM messages WHERE inbox = ? AND seq > ? AND expires > ? ORDER BY seq LIMIT ?',
        [inbox, after, now, limit],
      );
      return rows.map((r) => ({ seq: num(r.seq), mid: buf(r.mid), seedId: buf(r.seed_id), receivedAt: num(r.received_at), stored: buf(r.stored) }));
    });
  }

  droppedByLimit(inbox: Uint8Array): Promise<{ seedId: Uint8Array; n: number }[]> {
    return this.onShard(inbox, async (q) => {
      const rows = await q.all('SELECT seed_id, dropped FROM seeds WHERE inbox = ? AND dropped > 0', [inbox]);
      return rows.map((r) => ({ seedId: buf(r.seed_id), n: num(r.dropped) }));
    });
  }

  async ack(inbox: Uint8Array, mids: Uint8Array[]): Promise<number> {
    if (mids.length === 0) return 0;
    return this.onShard(inbox, async (q) => {
      const rows = await q.all(`DELETE FROM messages WHERE inbox = ? AND mid IN (${placeholders(mids.length)}) RETURNING size`, [inbox, ...mids]);
      const bytes = rows.reduce((a, r) => a + num(r.size), 0);
      if (rows.length > 0) await q.run('UPDATE inboxes SET msg_count = msg_count - ?, msg_bytes = msg_bytes - ? WHERE id = ?', [rows.length, bytes, inbox]);
      return rows.length;
    });
  }

  async onMessage(cb: (inboxHex: string) => void, onResync?: () => void): Promise<() => Promise<void>> {
    this.messageListeners.add(cb);
    if (onResync) this.resyncListeners.add(onResync);
    await this.subscribeShards(await this.currentMap());
    return async () => {
      this.messageListeners.delete(cb);
      if (onResync) this.resyncListeners.delete(onResync);
    };
  }

  /** Expired messages and dedupe keys on every shard (only in the ranges it owns: a range being moved is left to its new owner) and expired spent tokens. */
  async sweep(now: number): Promise<void> {
    const map = await this.currentMap();
    for (const name of map.shards.keys()) {
      const db = this.driver(name, map);
      await db.tx(async (q) => {
        await q.all(`SELECT lo FROM owned ${db.dialect === 'pg' ? 'FOR KEY SHARE' : ''}`);
        const inOwned = (t: string) => `EXISTS (SELECT 1 FROM owned o WHERE ${t}.hash >= o.lo AND ${t}.hash < o.hi)`;
        const rows = await q.all(`DELETE FROM messages WHERE expires <= ? AND ${inOwned('messages')} RETURNING inbox, size`, [now]);
        const per = new Map<string, { id: Uint8Array; n: number; bytes: number }>();
        for (const r of rows) {
          const id = buf(r.inbox);
          const key = Buffer.from(id).toString('hex');
          const e = per.get(key) ?? { id, n: 0, bytes: 0 };
          e.n++;
          e.bytes += num(r.size);
          per.set(key, e);
        }
        for (const e of per.values()) await q.run('UPDATE inboxes SET msg_count = msg_count - ?, msg_bytes = msg_bytes - ? WHERE id = ?', [e.n, e.bytes, e.id]);
        await q.run(`DELETE FROM dedupe WHERE expires <= ? AND ${inOwned('dedupe')}`, [now]);
      });
    }
    await this.control.run('DELETE FROM spent WHERE expires <= ?', [now]);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.refresher) clearInterval(this.refresher);
    await this.mapLoading?.catch(() => {});
    await this.controlUnlisten?.();
    for (const un of this.shardUnlisten.values()) await (await un.catch(() => async () => {}))();
    for (const d of this.drivers.values()) await d.close();
    await this.control.close();
  }
}

// =============================================================================================
// Administration: bootstrap, add a shard, move a range.

export type MovePhase = 'copy' | 'fence' | 'sync' | 'switch' | 'drain' | 'delete' | 'done';
const MOVE_PHASES: MovePhase[] = ['copy', 'fence', 'sync', 'switch', 'drain', 'delete', 'done'];
/** Held (on the control database) by whoever runs a move or a resume. */
const MOVE_LOCK = 'rsa-shard-move';

/** A move as `shard_moves` records it. */
export interface MoveRecord {
  id: number;
  lo: number;
  hi: number;
  src: string;
  dst: string;
  fromVersion: number;
}

export interface MoveReport {
  lo: number;
  hi: number;
  src: string;
  dst: string;
  fromVersion: number;
  toVersion: number;
  /** Rows copied before the fence (the bulk of the range, while the source still serves). */
  copied: Record<TableName, number>;
  /** Rows inserted, updated or deleted on the destination while the range was fenced. */
  synced: Record<TableName, number>;
  deleted: Record<TableName, number>;
  /** How long writers of the range were held off (fence → switch), ms. */
  fencedMs: number;
}

type TableName = 'inboxes' | 'seeds' | 'messages' | 'dedupe';

/** Per table: its key columns (for paging and diffs) and all columns (copied as they are). */
const TABLES: Record<TableName, { key: string[]; cols: string[] }> = {
  inboxes: { key: ['id'], cols: ['id', 'hash', 'auth_key', 'dh_key', 'created', 'msg_count', 'msg_bytes', 'next_seq'] },
  seeds: { key: ['m'], cols: ['m', 'seed_id', 'inbox', 'hash', 'not_after', 'state', 'win_start', 'win_count', 'day_start', 'day_count', 'dropped'] },
  messages: { key: ['inbox', 'seq'], cols: ['inbox', 'seq', 'mid', 'hash', 'seed_id', 'received_at', 'expires', 'stored', 'size'] },
  dedupe: { key: ['h'], cols: ['h', 'hash', 'expires'] },
};
const TABLE_ORDER: TableName[] = ['inboxes', 'seeds', 'messages', 'dedupe'];
const zero = (): Record<TableName, number> => ({ inboxes: 0, seeds: 0, messages: 0, dedupe: 0 });

const keyOf = (t: TableName, r: Row): string => TABLES[t].key.map((k) => (r[k] instanceof Uint8Array ? Buffer.from(r[k] as Uint8Array).toString('hex') : String(r[k]))).join(':');

/** An upsert of whole rows: the destination's copy becomes the source's. */
function upsertSql(t: TableName, dialect: 'sqlite' | 'pg'): string {
  const { key, cols } = TABLES[t];
  const rest = cols.filter((c) => !key.includes(c));
  const set = rest.map((c) => `${c} = excluded.${c}`).join(', ');
  void dialect; // the same ON CONFLICT … DO UPDATE on both
  return `INSERT INTO ${t} (${cols.join(', ')}) VALUES (${placeholders(cols.length)}) ON CONFLICT (${key.join(', ')}) DO UPDATE SET ${set}`;
}

export interface ShardAdminOptions {
  open?: (url: string) => SqlDriver;
  /** Rows per page when copying (default 500). */
  pageSize?: number;
  /** Wait after the switch before deleting from the source (default 2000 ms; ≥ the instances' mapRefreshMs). */
  drainMs?: number;
  /** A shard receives ranges only once it has been registered this long, so every instance listens on it (default 2 × 1000 ms). */
  subscribeGraceMs?: number;
  /** Called as each phase of a move starts (progress, tests). */
  onPhase?: (phase: MovePhase, move: { lo: number; hi: number; src: string; dst: string }) => void | Promise<void>;
}

export class ShardAdmin {
  readonly control: SqlDriver;
  private readonly open: (url: string) => SqlDriver;
  private readonly drivers = new Map<string, SqlDriver>();
  private readonly opts: ShardAdminOptions;

  constructor(control: SqlDriver | string, opts: ShardAdminOptions = {}) {
    this.control = typeof control === 'string' ? openDriver(control) : control;
    this.open = opts.open ?? openDriver;
    this.opts = opts;
  }

  async init(): Promise<void> {
    await this.control.exec(ddl(this.control.dialect, COMMON_DDL + CONTROL_DDL));
  }

  async currentMap(): Promise<ShardMap | null> {
    return readMap(this.control);
  }

  private async shardDb(name: string): Promise<SqlDriver> {
    let d = this.drivers.get(name);
    if (!d) {
      const r = (await this.control.all('SELECT url FROM shards WHERE name = ?', [name]))[0];
      if (!r) throw new ShardMapError(`shard ${name} is not registered`);
      d = this.open(String(r.url));
      this.drivers.set(name, d);
    }
    return d;
  }

  /** Creates the shard's tables and registers it (owning nothing until a move or bootstrap gives it a range). */
  async addShard(name: string, url: string): Promise<void> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw new ShardMapError('a shard name is 1-64 letters, digits, - or _');
    const db = this.open(url);
    try {
      await db.exec(ddl(db.dialect, SHARD_DDL));
    } finally {
      await db.close();
    }
    const existing = (await this.control.all('SELECT url FROM shards WHERE name = ?', [name]))[0];
    if (existing && String(existing.url) !== url) throw new ShardMapError(`shard ${name} is already registered with another URL`);
    if (!existing) await this.control.run('INSERT INTO shards (name, url, added) VALUES (?, ?, ?)', [name, url, Date.now()]);
    await this.control.tx((q) => this.control.notify(q, MAP_CHANNEL, `shard ${name}`));
  }

  /** Version 1: the hash space split evenly over `names` (registered, empty shards). */
  async bootstrap(names: string[]): Promise<ShardMap> {
    if (names.length === 0) throw new ShardMapError('bootstrap needs at least one shard');
    if ((await this.control.all('SELECT version FROM shard_current WHERE id = 1')).length > 0) throw new ShardMapError('the shard map already exists');
    const entries: MapEntry[] = names.map((shard, i) => ({ lo: Math.floor((HASH_SPACE * i) / names.length), hi: Math.floor((HASH_SPACE * (i + 1)) / names.length), shard }));
    for (const e of entries) {
      const db = await this.shardDb(e.shard);
      await db.run('INSERT INTO owned (lo, hi, version) VALUES (?, ?, 1)', [e.lo, e.hi]);
    }
    await this.control.tx(async (q) => {
      for (const e of entries) await q.run('INSERT INTO shard_map (version, lo, hi, shard) VALUES (1, ?, ?, ?)', [e.lo, e.hi, e.shard]);
      await q.run('INSERT INTO shard_current (id, version) VALUES (1, 1)');
      await this.control.notify(q, MAP_CHANNEL, 'version 1');
    });
    return (await readMap(this.control))!;
  }

  private async phase(p: MovePhase, move: MoveRecord): Promise<void> {
    await this.control.run('UPDATE shard_moves SET phase = ?, updated = ? WHERE id = ?', [p, Date.now(), move.id]);
    await this.opts.onPhase?.(p, move);
  }

  /**
   * Moves the inboxes whose hash is in [lo, hi) to shard `dst`, under traffic, losing and
   * duplicating nothing (docs/SCALING.md, "Moving a range"):
   *  1. copy: the range's rows are copied page by page while the source still serves;
   *  2. fence: the source gives the range up (its `owned` row, locked FOR UPDATE, waits for every
   *     transaction holding it); from here no instance can read or write the range anywhere, and
   *     their operations retry;
   *  3. sync: the destination is made equal to the now-frozen source (rows added, changed or
   *     deleted since the copy), then compared by digest;
   *  4. switch: the destination takes the range (`owned`), then the control database publishes
   *     version v+1 and notifies the instances; retrying operations land on the destination;
   *  5. drain: wait drainMs for every instance to follow, then check the source's copy did not change;
   *  6. delete: the range's rows are deleted from the source.
   * Each phase is recorded in `shard_moves` before it starts and every phase can run again, so a
   * move that failed or was interrupted (a crash, a lost connection) is finished by `resume()`.
   * One move or resume runs at a time (an advisory lock on the control database).
   */
  async moveRange(lo: number, hi: number, dst: string): Promise<MoveReport> {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi > HASH_SPACE || lo >= hi) throw new ShardMapError('a range is integers 0 <= lo < hi <= 2^32');
    const locked = await tryWithInstanceLock(this.control, MOVE_LOCK, async () => {
      const unfinished = await this.unfinishedMoves();
      if (unfinished.length > 0) throw new ShardMapError(`move ${unfinished[0]!.id} is unfinished: resume() it first`);
      const map = await readMap(this.control);
      if (!map) throw new ShardMapError('no shard map yet: bootstrap first');
      const entry = map.entries.find((e) => e.lo <= lo && hi <= e.hi);
      if (!entry) throw new ShardMapError(`[${lo}, ${hi}) is not inside one entry of map version ${map.version}`);
      const src = entry.shard;
      if (src === dst) throw new ShardMapError(`[${lo}, ${hi}) is already on ${dst}`);
      const dstRow = (await this.control.all('SELECT added FROM shards WHERE name = ?', [dst]))[0];
      if (!dstRow) throw new ShardMapError(`shard ${dst} is not registered`);
      await this.shardDb(src);
      await this.shardDb(dst);
      const wait = num(dstRow.added) + (this.opts.subscribeGraceMs ?? 2000) - Date.now();
      if (wait > 0) await sleep(wait);
      const now = Date.now();
      const id = num(
        (
          await this.control.all(
            `INSERT INTO shard_moves (lo, hi, src, dst, from_version, phase, started, updated) VALUES (?, ?, ?, ?, ?, 'copy', ?, ?) RETURNING id`,
            [lo, hi, src, dst, map.version, now, now],
          )
        )[0]!.id,
      );
      return this.runMove({ id, lo, hi, src, dst, fromVersion: map.version }, 'copy');
    });
    if (!locked.ran) throw new ShardMapError('another move (or a resume) is under way');
    return locked.value;
  }

  /** Moves that were started and have not reached 'done', oldest first. */
  async unfinishedMoves(): Promise<(MoveRecord & { phase: MovePhase })[]> {
    const rows = await this.control.all("SELECT id, lo, hi, src, dst, from_version, phase FROM shard_moves WHERE phase <> 'done' ORDER BY id");
    return rows.map((r) => ({ id: num(r.id), lo: num(r.lo), hi: num(r.hi), src: String(r.src), dst: String(r.dst), fromVersion: num(r.from_version), phase: String(r.phase) as MovePhase }));
  }

  /**
   * Finishes every move that failed or was interrupted, each from the phase it had reached
   * (phases are idempotent: a fence already done is seen as done, a switch already published is
   * not published twice). Returns their reports; none while another admin holds the move lock
   * (it is running a move: nothing here is unfinished).
   */
  async resume(): Promise<MoveReport[]> {
    const locked = await tryWithInstanceLock(this.control, MOVE_LOCK, async () => {
      const reports: MoveReport[] = [];
      for (const m of await this.unfinishedMoves()) {
        await this.shardDb(m.src);
        await this.shardDb(m.dst);
        reports.push(await this.runMove(m, m.phase));
      }
      return reports;
    });
    return locked.ran ? locked.value : [];
  }

  private async runMove(move: MoveRecord, from: MovePhase): Promise<MoveReport> {
    const { id, lo, hi, src, dst, fromVersion } = move;
    const map = await readMapVersion(this.control, fromVersion);
    const entry = map.entries.find((e) => e.lo <= lo && hi <= e.hi && e.shard === src);
    if (!entry) throw new ShardMapError(`move ${id}: [${lo}, ${hi}) is not on ${src} in map version ${fromVersion}`);
    const srcDb = await this.shardDb(src);
    const dstDb = await this.shardDb(dst);
    const report: MoveReport = { lo, hi, src, dst, fromVersion, toVersion: fromVersion + 1, copied: zero(), synced: zero(), deleted: zero(), fencedMs: 0 };
    const inRange = 'hash >= ? AND hash < ?';
    const at = MOVE_PHASES.indexOf(from);
    const reached = (p: MovePhase) => at <= MOVE_PHASES.indexOf(p);
    const currentVersion = async () => num((await this.control.all('SELECT version FROM shard_current WHERE id = 1'))[0]!.version);
    // Before its switch a move owns the map: nothing else may have published a version since.
    if (at < MOVE_PHASES.indexOf('switch')) {
      const cur = await currentVersion();
      if (cur !== fromVersion) throw new ShardMapError(`move ${id}: the map is at version ${cur}, the move started from ${fromVersion}`);
    }

    // 1. copy (the source keeps serving; pages by key; upserts, so a second run is harmless)
    if (reached('copy')) {
      await this.phase('copy', move);
      const pageSize = this.opts.pageSize ?? 500;
      for (const t of TABLE_ORDER) {
        const { key, cols } = TABLES[t];
        let after: unknown[] | null = null;
        for (;;) {
          const cond = after ? `AND (${key.join(', ')}) > (${placeholders(key.length)})` : '';
          const rows = await srcDb.all(`SELECT ${cols.join(', ')} FROM ${t} WHERE ${inRange} ${cond} ORDER BY ${key.join(', ')} LIMIT ?`, [lo, hi, ...(after ?? []), pageSize]);
          if (rows.length === 0) break;
          await dstDb.tx(async (q) => {
            for (const r of rows) await q.run(upsertSql(t, dstDb.dialect), cols.map((c) => r[c]));
          });
          report.copied[t] += rows.length;
          const last = rows[rows.length - 1]!;
          after = key.map((k) => last[k]);
          if (rows.length < pageSize) break;
        }
      }
    }

    // 2. fence: the source stops owning [lo, hi) (keeping the rest of its row); already fenced is fine
    const fencedAt = performance.now();
    if (reached('fence')) {
      await this.phase('fence', move);
      await srcDb.tx(async (q) => {
        const own = await q.all(`SELECT lo, hi, version FROM owned WHERE lo < ? AND ? < hi ${srcDb.dialect === 'pg' ? 'FOR UPDATE' : ''}`, [hi, lo]);
        if (own.length === 0) return; // fenced by the interrupted run
        const row = own.find((r) => num(r.lo) <= lo && hi <= num(r.hi));
        if (!row || own.length > 1) throw new ShardMapError(`${src} owns only part of [${lo}, ${hi}) (another move under way?)`);
        await q.run('DELETE FROM owned WHERE lo = ?', [row.lo]);
        if (num(row.lo) < lo) await q.run('INSERT INTO owned (lo, hi, version) VALUES (?, ?, ?)', [row.lo, lo, fromVersion + 1]);
        if (hi < num(row.hi)) await q.run('INSERT INTO owned (lo, hi, version) VALUES (?, ?, ?)', [hi, row.hi, fromVersion + 1]);
      });
    }

    // 3. sync: destination := frozen source, for the range
    if (reached('sync')) {
      await this.phase('sync', move);
      for (const t of TABLE_ORDER) {
        const { cols } = TABLES[t];
        const mutable = t === 'inboxes' || t === 'seeds';
        const srcRows = await srcDb.all(`SELECT ${mutable ? cols.join(', ') : TABLES[t].key.join(', ')} FROM ${t} WHERE ${inRange}`, [lo, hi]);
        const dstRows = await dstDb.all(`SELECT ${mutable ? cols.join(', ') : TABLES[t].key.join(', ')} FROM ${t} WHERE ${inRange}`, [lo, hi]);
        const dstByKey = new Map(dstRows.map((r) => [keyOf(t, r), r]));
        const srcKeys = new Set(srcRows.map((r) => keyOf(t, r)));
        const changed = srcRows.filter((r) => {
          const d = dstByKey.get(keyOf(t, r));
          return !d || (mutable && cols.some((c) => !sameValue(r[c], d[c])));
        });
        const gone = dstRows.filter((r) => !srcKeys.has(keyOf(t, r)));
        await dstDb.tx(async (q) => {
          for (const r of gone) await q.run(`DELETE FROM ${t} WHERE ${TABLES[t].key.map((k) => `${k} = ?`).join(' AND ')}`, TABLES[t].key.map((k) => r[k]));
          for (const r of changed) {
            const full = mutable
              ? r
              : (await srcDb.all(`SELECT ${cols.join(', ')} FROM ${t} WHERE ${TABLES[t].key.map((k) => `${k} = ?`).join(' AND ')}`, TABLES[t].key.map((k) => r[k])))[0]!;
            await q.run(upsertSql(t, dstDb.dialect), cols.map((c) => full[c]));
          }
        });
        report.synced[t] = changed.length + gone.length;
      }
      const srcDigest = await rangeDigest(srcDb, lo, hi);
      const dstDigest = await rangeDigest(dstDb, lo, hi);
      if (srcDigest !== dstDigest) throw new ShardMapError(`after the sync ${dst} differs from ${src} on [${lo}, ${hi}); the range stays fenced (resume() runs the sync again)`);
      // The fenced source's digest, for the drain check (which may run in a later resume).
      await this.control.run('DELETE FROM shard_move_digests WHERE id = ?', [id]);
      await this.control.run('INSERT INTO shard_move_digests (id, digest) VALUES (?, ?)', [id, srcDigest]);
    }

    // 4. switch: destination owns, then the map says so (each step skipped if already done)
    if (reached('switch')) {
      await this.phase('switch', move);
      const next: MapEntry[] = [];
      for (const e of map.entries) {
        if (e !== entry) next.push(e);
        else {
          if (e.lo < lo) next.push({ lo: e.lo, hi: lo, shard: e.shard });
          next.push({ lo, hi, shard: dst });
          if (hi < e.hi) next.push({ lo: hi, hi: e.hi, shard: e.shard });
        }
      }
      if (!validEntries(next)) throw new ShardMapError('internal: the new map does not cover the hash space');
      await dstDb.tx(async (q) => {
        const own = await q.all('SELECT lo, hi FROM owned WHERE lo < ? AND ? < hi', [hi, lo]);
        if (own.length === 0) await q.run('INSERT INTO owned (lo, hi, version) VALUES (?, ?, ?)', [lo, hi, fromVersion + 1]);
        else if (own.length > 1 || num(own[0]!.lo) !== lo || num(own[0]!.hi) !== hi) throw new ShardMapError(`${dst} already owns part of [${lo}, ${hi}) otherwise`);
      });
      await this.control.tx(async (q) => {
        const cur = num((await q.all(`SELECT version FROM shard_current WHERE id = 1 ${this.control.dialect === 'pg' ? 'FOR UPDATE' : ''}`))[0]!.version);
        const published = num((await q.all('SELECT COALESCE(to_version, 0) AS v FROM shard_moves WHERE id = ?', [id]))[0]!.v);
        if (cur === fromVersion + 1 && published === cur) return; // the interrupted run published it
        if (cur !== fromVersion) throw new ShardMapError(`the map changed under the move (version ${cur}, expected ${fromVersion})`);
        for (const e of next) await q.run('INSERT INTO shard_map (version, lo, hi, shard) VALUES (?, ?, ?, ?)', [fromVersion + 1, e.lo, e.hi, e.shard]);
        await q.run('UPDATE shard_current SET version = ? WHERE id = 1', [fromVersion + 1]);
        await q.run('UPDATE shard_moves SET to_version = ? WHERE id = ?', [fromVersion + 1, id]);
        await this.control.notify(q, MAP_CHANNEL, `version ${fromVersion + 1}`);
      });
      report.fencedMs = performance.now() - fencedAt;
    }

    // 5. drain: instances follow the new version; the fenced source copy must not have moved
    // (not when resuming the delete: a partial delete changed the source on purpose)
    if (reached('drain')) {
      await this.phase('drain', move);
      await sleep(this.opts.drainMs ?? 2000);
      const fenced = (await this.control.all('SELECT digest FROM shard_move_digests WHERE id = ?', [id]))[0];
      if (!fenced) throw new ShardMapError(`move ${id}: no digest of the fenced source recorded`);
      if ((await rangeDigest(srcDb, lo, hi)) !== String(fenced.digest)) throw new ShardMapError(`${src} changed on [${lo}, ${hi}) after the fence; its rows are kept for inspection`);
    }

    // 6. delete from the source (a second run deletes what the first left)
    await this.phase('delete', move);
    for (const t of [...TABLE_ORDER].reverse()) report.deleted[t] = await srcDb.run(`DELETE FROM ${t} WHERE ${inRange}`, [lo, hi]);
    await this.phase('done', move);
    return report;
  }

  async close(): Promise<void> {
    for (const d of this.drivers.values()) await d.close();
    await this.control.close();
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0;
  return num(a) === num(b) || String(a) === String(b);
}

/** Row counts and sums over the range, per table (the move's consistency check). */
async function rangeDigest(db: SqlDriver, lo: number, hi: number): Promise<string> {
  const parts: string[] = [];
  for (const t of TABLE_ORDER) {
    const extra = t === 'inboxes' ? ', SUM(msg_count) AS a, SUM(msg_bytes) AS b, SUM(next_seq) AS c' : t === 'messages' ? ', SUM(seq) AS a, SUM(size) AS b' : t === 'seeds' ? ', SUM(win_count + day_count + dropped) AS a' : '';
    const r = (await db.all(`SELECT COUNT(*) AS n ${extra} FROM ${t} WHERE hash >= ? AND hash < ?`, [lo, hi]))[0]!;
    parts.push(`${t}:${num(r.n)}:${num(r.a ?? 0) || 0}:${num(r.b ?? 0) || 0}:${num(r.c ?? 0) || 0}`);
  }
  return parts.join('|');
}

// =============================================================================================
// Start-up of an RSA on shards (startRsa with `shards`, `umbra serve rsa --shard …`).

export interface ShardedStartOptions {
  /** The control database (a PostgreSQL URL). */
  control: string;
  /** Shards to register (in this order for version 1 of the map, when there is none yet). */
  shards: { name: string; url: string }[];
  mapRefreshMs?: number;
  retryDeadlineMs?: number;
  /** For moves resumed at start (default 2000 ms). */
  drainMs?: number;
  open?: (url: string) => SqlDriver;
}

/**
 * Opens the sharded store for one RSA instance: registers the listed shards (schema included;
 * a name already registered with another URL is refused), creates version 1 of the map over
 * them if there is none, and finishes any move a crash left unfinished (not one another admin is
 * running), so a range left fenced is served again. Instances starting together do the
 * registration one at a time.
 */
export async function openShardedRsaStore(o: ShardedStartOptions): Promise<ShardedRsaStore> {
  if (o.shards.length === 0) throw new ShardMapError('a sharded RSA needs at least one shard');
  const admin = new ShardAdmin(o.control, { drainMs: o.drainMs ?? 2000, subscribeGraceMs: 0, ...(o.open ? { open: o.open } : {}) });
  try {
    await initSchema(() => admin.init());
    await withInstanceLock(admin.control, 'rsa-shard-registry', async () => {
      for (const s of o.shards) await admin.addShard(s.name, s.url);
      if (!(await admin.currentMap())) await admin.bootstrap(o.shards.map((s) => s.name));
    });
    try {
      for (const r of await admin.resume()) console.error(`[rsa] resumed the move of [${r.lo}, ${r.hi}) from ${r.src} to ${r.dst}: map version ${r.toVersion}`);
    } catch (e) {
      // The other ranges still serve; the fenced one waits for an operator (ShardAdmin.resume).
      console.error('[rsa] an unfinished shard move could not be resumed:', (e as Error).message);
    }
  } finally {
    await admin.close();
  }
  const store = new ShardedRsaStore({
    control: o.control,
    ...(o.open ? { open: o.open } : {}),
    ...(o.mapRefreshMs !== undefined ? { mapRefreshMs: o.mapRefreshMs } : {}),
    ...(o.retryDeadlineMs !== undefined ? { retryDeadlineMs: o.retryDeadlineMs } : {}),
  });
  await initSchema(() => store.init());
  return store;
}
