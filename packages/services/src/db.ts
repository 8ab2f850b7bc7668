/**
 * A tiny SQL driver layer under the service stores: the same store code runs on SQLite
 * (better-sqlite3, WAL: a commit is on disk before the service answers; group commit: concurrent
 * transactions share one COMMIT, each answered after it; the WAL fsync that makes a group durable
 * runs on the libuv thread pool, not on the event loop; plain reads on a second connection that
 * sees only committed data) and on
 * PostgreSQL (`postgres`, porsager). SQL uses `?` placeholders; integers are JS numbers (ms
 * timestamps fit), bytes are Buffers. Only DDL and a few locking/notification details differ per
 * dialect, and the stores branch on `dialect` for those.
 */
import { closeSync, fsync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import postgres from 'postgres';
import { preparePrivateDatabase } from './private-files.ts';

export type Row = Record<string, unknown>;

export interface Sql {
  all(sql: string, params?: unknown[]): Promise<Row[]>;
  run(sql: string, params?: unknown[]): Promise<number>;
}

export interface SqlDriver extends Sql {
  readonly dialect: 'sqlite' | 'pg';
  tx<T>(fn: (q: Sql) => Promise<T>): Promise<T>;
  exec(ddl: string): Promise<void>;
  /**
   * Cross-process notifications (PG LISTEN/NOTIFY); SQLite notifies within the process.
   * `onReconnect` is called after the listening connection was lost and LISTENs again: the
   * notifications sent in between are gone, so the subscriber must re-read what it watches.
   */
  listen(channel: string, cb: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>>;
  notify(q: Sql, channel: string, payload: string): Promise<void>;
  close(): Promise<void>;
}

function toParam(v: unknown): unknown {
  if (v instanceof Uint8Array && !Buffer.isBuffer(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'boolean') return v ? 1 : 0;
  return v;
}

// ---------------------------------------------------------------------------------------------

class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const prev = this.tail;
    this.tail = prev.then(() => next);
    await prev;
    return release;
  }
}

/** One group commit: the transactions run inside one SQLite transaction, each in a savepoint. */
interface Group {
  /** Resolves when the group is committed durably (its WAL frames fsynced), rejects if it is not. */
  committed: Promise<void>;
  resolve(): void;
  reject(e: unknown): void;
  /** Set when SQLite rolled the whole transaction back under a member: the group cannot commit. */
  failed: unknown;
  notes: [string, string][];
  size: number;
}

export interface SqliteOptions {
  /**
   * Group commit (default on for files): transactions that arrive while one is being collected
   * share one COMMIT (one WAL fsync). Each caller's promise still resolves only after *its*
   * data is committed, and a failing transaction rolls back only its own savepoint.
   */
  groupCommit?: boolean;
  /** Most transactions in one group before it commits at once (default 512). */
  maxGroup?: number;
  /**
   * Durability off the event loop (default on with group commit): SQLite commits with
   * synchronous=NORMAL (no fsync inside COMMIT; checkpoints still fsync the WAL before and the
   * database after) and the driver fsyncs the WAL file itself on the thread pool, answering a
   * group's members only once an fsync that started after their COMMIT has finished. Off:
   * synchronous=FULL, the fsync inside COMMIT blocks the event loop (~2 ms here, a quarter of the
   * hub's SSA time under the load test).
   */
  asyncFsync?: boolean;
}

export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  /** A second connection for plain reads outside transactions: sees only committed data, never waits for the writer. */
  private readonly reader: Database.Database | null;
  private readonly mutex = new Mutex();
  private readonly stmts = new Map<string, Database.Statement>();
  private readonly readStmts = new Map<string, Database.Statement>();
  private readonly listeners = new Map<string, Set<(p: string) => void>>();
  private readonly grouped: boolean;
  private readonly maxGroup: number;
  private group: Group | null = null;
  /** Committed groups waiting for the next WAL fsync (asyncFsync). */
  private unsynced: Group[] = [];
  private syncing: Promise<void> = Promise.resolve();
  private syncRunning = false;
  private walFd: number | null = null;
  private readonly walFile: string;
  private readonly asyncFsync: boolean;
  /** An fsync failed: nothing committed since can be promised durable, so every later transaction fails. */
  private syncFailure: unknown = null;
  /** Notifications of the transaction being run (kept only if its savepoint is released). */
  private txNotes: [string, string][] | null = null;
  private closed = false;

  constructor(file: string, options: SqliteOptions = {}) {
    preparePrivateDatabase(file); // 0600 database, and so 0600 -wal/-shm (private-files.ts)
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    const inMemory = file === '' || file === ':memory:' || file.startsWith('file::memory:');
    this.grouped = !inMemory && (options.groupCommit ?? true);
    this.asyncFsync = this.grouped && (options.asyncFsync ?? true);
    this.walFile = `${file}-wal`;
    this.db.pragma(this.asyncFsync ? 'synchronous = NORMAL' : 'synchronous = FULL');
    this.maxGroup = options.maxGroup ?? 512;
    this.reader = inMemory ? null : new Database(file, { readonly: true });
    this.reader?.pragma('busy_timeout = 5000');
  }

  private stmt(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /** Transaction control as prepared statements (exec would parse them again for every transaction: ~3 µs each here). */
  private control(sql: 'BEGIN IMMEDIATE' | 'COMMIT' | 'ROLLBACK' | 'SAVEPOINT umbra_tx' | 'RELEASE umbra_tx' | 'ROLLBACK TO umbra_tx'): void {
    this.stmt(sql).run();
  }

  private readStmt(sql: string): Database.Statement | null {
    if (!this.reader || !this.stmt(sql).readonly) return null;
    let s = this.readStmts.get(sql);
    if (!s) {
      s = this.reader.prepare(sql);
      this.readStmts.set(sql, s);
    }
    return s;
  }

  private readonly direct: Sql = {
    all: async (sql, params = []) => {
      const s = this.stmt(sql);
      return s.reader ? (s.all(...params.map(toParam)) as Row[]) : (s.run(...params.map(toParam)), []);
    },
    run: async (sql, params = []) => this.stmt(sql).run(...params.map(toParam)).changes,
  };

  async all(sql: string, params: unknown[] = []): Promise<Row[]> {
    const r = this.readStmt(sql);
    if (r) return r.all(...params.map(toParam)) as Row[];
    return this.tx((q) => q.all(sql, params));
  }

  async run(sql: string, params: unknown[] = []): Promise<number> {
    const r = this.readStmt(sql);
    if (r) return r.run(...params.map(toParam)).changes;
    return this.tx((q) => q.run(sql, params));
  }

  private openGroup(): Group {
    if (this.group && !this.group.failed && this.group.size < this.maxGroup) return this.group;
    if (this.group) this.commit(this.group); // full or failed: close it first (we hold the mutex)
    this.control('BEGIN IMMEDIATE');
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const committed = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    committed.catch(() => {}); // members see the rejection through their own await
    const g: Group = { committed, resolve, reject, failed: null, notes: [], size: 0 };
    this.group = g;
    if (this.grouped) setImmediate(() => void this.flush(g));
    return g;
  }

  /** Commits group `g` (unless it is already gone) and wakes its members. */
  private async flush(g: Group): Promise<void> {
    const release = await this.mutex.lock();
    try {
      this.commit(g);
    } finally {
      release();
    }
  }

  private commit(g: Group): void {
    if (this.group !== g) return;
    this.group = null;
    if (g.failed) return g.reject(g.failed);
    try {
      this.control('COMMIT');
    } catch (e) {
      if (this.db.inTransaction) this.control('ROLLBACK');
      return g.reject(e);
    }
    if (!this.asyncFsync) return this.settle(g);
    this.unsynced.push(g);
    if (!this.syncRunning) {
      this.syncRunning = true;
      this.syncing = this.syncLoop();
    }
  }

  /** Wakes a durable group's members and delivers its notifications (after the data is on disk, as PostgreSQL's NOTIFY is after commit). */
  private settle(g: Group): void {
    g.resolve();
    for (const [ch, payload] of g.notes) for (const cb of this.listeners.get(ch) ?? []) cb(payload);
  }

  /** fsyncs the WAL for every group committed before the fsync started; again while more arrive. */
  private async syncLoop(): Promise<void> {
    try {
      await this.syncBatches();
    } finally {
      this.syncRunning = false;
    }
  }

  private async syncBatches(): Promise<void> {
    while (this.unsynced.length > 0) {
      const batch = this.unsynced;
      this.unsynced = [];
      try {
        if (this.syncFailure) throw this.syncFailure;
        // The WAL file exists once the first transaction committed; SQLite keeps the same file
        // (it restarts it in place after a checkpoint), so one descriptor serves the connection's life.
        this.walFd ??= openSync(this.walFile, 'r');
        const fd = this.walFd;
        await new Promise<void>((res, rej) => fsync(fd, (e) => (e ? rej(e) : res())));
      } catch (e) {
        this.syncFailure ??= e;
        for (const g of batch) g.reject(e);
        continue;
      }
      for (const g of batch) this.settle(g);
    }
  }

  async tx<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
    const release = await this.mutex.lock();
    let g: Group;
    let result: T;
    try {
      if (this.closed) throw new Error('database closed');
      if (this.syncFailure) throw new Error('database unusable: a WAL fsync failed', { cause: this.syncFailure });
      g = this.openGroup();
      g.size++;
      this.control('SAVEPOINT umbra_tx');
      const notes: [string, string][] = [];
      this.txNotes = notes;
      try {
        result = await fn(this.direct);
        this.control('RELEASE umbra_tx');
        g.notes.push(...notes);
      } catch (e) {
        if (this.db.inTransaction) {
          this.control('ROLLBACK TO umbra_tx');
          this.control('RELEASE umbra_tx');
        } else g.failed = e; // SQLite rolled the whole group back: no member may report success
        throw e;
      } finally {
        this.txNotes = null;
      }
      if (!this.grouped) this.commit(g);
    } finally {
      release();
    }
    await g.committed;
    return result;
  }

  async exec(ddl: string): Promise<void> {
    await this.tx(async () => {
      this.db.exec(ddl);
    });
  }

  /** In process, nothing can drop: `onReconnect` is never called. */
  async listen(channel: string, cb: (payload: string) => void): Promise<() => Promise<void>> {
    let set = this.listeners.get(channel);
    if (!set) this.listeners.set(channel, (set = new Set()));
    set.add(cb);
    return async () => {
      set.delete(cb);
    };
  }

  async notify(_q: Sql, channel: string, payload: string): Promise<void> {
    // Delivered after COMMIT (like PostgreSQL's NOTIFY); notify is only called inside tx().
    if (!this.txNotes) throw new Error('notify outside a transaction');
    this.txNotes.push([channel, payload]);
  }

  async close(): Promise<void> {
    const g = this.group;
    if (g) await this.flush(g);
    const release = await this.mutex.lock();
    try {
      if (this.group) this.commit(this.group);
      this.closed = true;
    } finally {
      release();
    }
    await this.syncing;
    if (this.walFd !== null) closeSync(this.walFd);
    this.reader?.close();
    this.db.close();
  }
}

// ---------------------------------------------------------------------------------------------

function toPg(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

export interface PgDriverOptions {
  max?: number;
  /** Re-LISTEN backoff after the listening connection is lost: first wait, doubling up to max (default 100 ms … 5 s). */
  listenBackoffMs?: { min: number; max: number };
  /** How often the listening connection is probed with `SELECT 1`; no answer within as long counts as lost (default 10 s). */
  listenHeartbeatMs?: number;
}

interface Subscription {
  cb: (payload: string) => void;
  onReconnect?: () => void;
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * The LISTEN side of a PgDriver: one dedicated connection, its LISTENs re-issued after any loss.
 *
 * postgres.js' own `listen` re-LISTENs once when its connection closes, silently, and a failed
 * re-LISTEN drops the channel for good; either way the notifications sent while nobody listened
 * are lost and nothing says so. Here a lost connection (a close, or a heartbeat with no answer)
 * starts a loop that re-LISTENs every channel with backoff until it works, then calls each
 * subscription's onReconnect, after the LISTEN is in place, so a re-read misses nothing.
 */
class PgListener {
  private sql: postgres.Sql | null = null;
  private readonly channels = new Map<string, Set<Subscription>>();
  /** Bumped by every loss: a re-LISTEN round that saw another loss goes again. */
  private generation = 0;
  private healthy = false;
  private recovering: Promise<void> | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly backoff: { min: number; max: number };
  private readonly heartbeatMs: number;
  /** Losses seen and successful re-LISTEN rounds (tests, diagnostics). */
  readonly stats = { losses: 0, reconnects: 0 };

  constructor(
    private readonly url: string,
    options: PgDriverOptions,
  ) {
    this.backoff = options.listenBackoffMs ?? { min: 100, max: 5000 };
    this.heartbeatMs = options.listenHeartbeatMs ?? 10_000;
  }

  private client(): postgres.Sql {
    if (this.sql) return this.sql;
    const sql: postgres.Sql = postgres(this.url, {
      max: 1,
      // The connection must stay up for as long as we listen: no recycling (and no idle end, the default).
      max_lifetime: null,
      fetch_types: false,
      onnotice: () => {},
      onclose: () => {
        if (this.sql === sql) this.lost();
      },
      // Not in postgres.js' option types, but what its own listen uses.
      ...({ onnotify: (channel: string, payload: string) => this.dispatch(channel, payload) } as object),
    });
    this.sql = sql;
    return sql;
  }

  private dispatch(channel: string, payload: string): void {
    for (const s of this.channels.get(channel) ?? []) s.cb(payload);
  }

  async add(channel: string, sub: Subscription): Promise<() => Promise<void>> {
    if (this.closed) throw new Error('listener closed');
    let subs = this.channels.get(channel);
    const first = !subs;
    if (!subs) this.channels.set(channel, (subs = new Set()));
    subs.add(sub);
    // A round under way LISTENs every channel in the map, this one included.
    if (first && !this.recovering) {
      try {
        await this.client().unsafe(`LISTEN ${quoteIdent(channel)}`);
      } catch (e) {
        subs.delete(sub);
        if (subs.size === 0) this.channels.delete(channel);
        throw e;
      }
      this.healthy = true;
      this.startHeartbeat();
    }
    return async () => {
      subs.delete(sub);
      if (subs.size > 0 || this.channels.get(channel) !== subs) return;
      this.channels.delete(channel);
      if (this.healthy) await this.sql?.unsafe(`UNLISTEN ${quoteIdent(channel)}`).catch(() => {});
    };
  }

  private startHeartbeat(): void {
    if (this.heartbeat || this.heartbeatMs <= 0) return;
    this.heartbeat = setInterval(() => void this.probe(), this.heartbeatMs);
    this.heartbeat.unref();
  }

  /** A connection that stopped answering (no RST: a dead peer, a partition) is dropped and replaced. */
  private async probe(): Promise<void> {
    const sql = this.sql;
    if (!sql || !this.healthy || this.recovering) return;
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([
      sql.unsafe('SELECT 1').then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.heartbeatMs))),
    ]);
    clearTimeout(timer);
    if (answered || this.sql !== sql || this.closed) return;
    this.sql = null; // its close must not count twice
    void sql.end({ timeout: 0 }).catch(() => {});
    this.lost();
  }

  private lost(): void {
    if (this.closed) return;
    this.generation++;
    if (this.healthy) {
      this.stats.losses++;
      console.error('[services] the PostgreSQL LISTEN connection was lost; listening again');
    }
    this.healthy = false;
    this.recovering ??= this.recover().finally(() => (this.recovering = null));
  }

  private async recover(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      await new Promise((r) => setTimeout(r, Math.min(this.backoff.max, this.backoff.min * 2 ** Math.min(attempt, 20))));
      if (this.closed) return;
      // Nothing to listen to (the first LISTEN failed, or all unlistened): the next add LISTENs itself.
      if (this.channels.size === 0) return;
      const round = this.generation;
      try {
        const sql = this.client();
        for (const channel of this.channels.keys()) await sql.unsafe(`LISTEN ${quoteIdent(channel)}`);
      } catch {
        continue; // refused or dropped again: the next attempt waits longer
      }
      if (round !== this.generation) continue; // lost again while we listened
      this.healthy = true;
      this.stats.reconnects++;
      console.error('[services] listening on PostgreSQL again');
      for (const subs of this.channels.values())
        for (const s of subs)
          try {
            s.onReconnect?.();
          } catch (e) {
            console.error('[services] a re-sync after the LISTEN reconnect failed:', (e as Error).message);
          }
      return;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    const sql = this.sql;
    this.sql = null;
    await sql?.end({ timeout: 5 });
  }
}

export class PgDriver implements SqlDriver {
  readonly dialect = 'pg' as const;
  private readonly sql: postgres.Sql;
  private readonly listener: PgListener;

  constructor(url: string, options: PgDriverOptions = {}) {
    this.sql = postgres(url, {
      max: options.max ?? 10,
      onnotice: () => {},
      types: {
        // int8 → JS number (ms timestamps and counters fit in 2^53).
        bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
      },
    });
    this.listener = new PgListener(url, options);
  }

  /** The LISTEN connection's losses and re-LISTEN rounds so far. */
  get listenStats(): { losses: number; reconnects: number } {
    return { ...this.listener.stats };
  }

  private static wrap(s: postgres.Sql | postgres.TransactionSql): Sql {
    return {
      all: async (sql, params = []) => [...(await s.unsafe(toPg(sql), params.map(toParam) as postgres.ParameterOrJSON<never>[]))] as Row[],
      run: async (sql, params = []) => (await s.unsafe(toPg(sql), params.map(toParam) as postgres.ParameterOrJSON<never>[])).count,
    };
  }

  all(sql: string, params?: unknown[]): Promise<Row[]> {
    return PgDriver.wrap(this.sql).all(sql, params);
  }

  run(sql: string, params?: unknown[]): Promise<number> {
    return PgDriver.wrap(this.sql).run(sql, params);
  }

  async tx<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
    return (await this.sql.begin((t) => fn(PgDriver.wrap(t)))) as T;
  }

  async exec(ddl: string): Promise<void> {
    await this.sql.unsafe(ddl);
  }

  listen(channel: string, cb: (payload: string) => void, onReconnect?: () => void): Promise<() => Promise<void>> {
    return this.listener.add(channel, onReconnect ? { cb, onReconnect } : { cb });
  }

  async notify(q: Sql, channel: string, payload: string): Promise<void> {
    await q.all('SELECT pg_notify(?, ?)', [channel, payload]);
  }

  async close(): Promise<void> {
    await this.listener.close();
    await this.sql.end({ timeout: 5 });
  }
}

/** `sqlite:<file>` / a file path, or a `postgres://` URL. */
export function openDriver(location: string): SqlDriver {
  if (/^postgres(ql)?:\/\//.test(location)) return new PgDriver(location);
  return new SqliteDriver(location.replace(/^sqlite:/, ''));
}

/** Integer → BIGINT on PG / INTEGER on SQLite; bytes → BYTEA / BLOB; autoincrement column. */
export function ddl(dialect: 'sqlite' | 'pg', text: string): string {
  if (dialect === 'pg') return text.replace(/\bBLOB\b/g, 'BYTEA').replace(/\bINT\b/g, 'BIGINT').replace(/\bSERIALPK\b/g, 'BIGSERIAL PRIMARY KEY');
  return text.replace(/\bSERIALPK\b/g, 'INTEGER PRIMARY KEY AUTOINCREMENT').replace(/\bINT\b/g, 'INTEGER');
}
