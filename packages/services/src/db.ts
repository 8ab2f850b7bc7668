/**
 * A tiny SQL driver layer under the service stores: the same store code runs on SQLite
 * (better-sqlite3, WAL, synchronous=FULL: a commit is on disk before the service answers) and on
 * PostgreSQL (`postgres`, porsager). SQL uses `?` placeholders; integers are JS numbers (ms
 * timestamps fit), bytes are Buffers. Only DDL and a few locking/notification details differ per
 * dialect, and the stores branch on `dialect` for those.
 */
import Database from 'better-sqlite3';
import postgres from 'postgres';

export type Row = Record<string, unknown>;

export interface Sql {
  all(sql: string, params?: unknown[]): Promise<Row[]>;
  run(sql: string, params?: unknown[]): Promise<number>;
}

export interface SqlDriver extends Sql {
  readonly dialect: 'sqlite' | 'pg';
  tx<T>(fn: (q: Sql) => Promise<T>): Promise<T>;
  exec(ddl: string): Promise<void>;
  /** Cross-process notifications (PG LISTEN/NOTIFY); SQLite notifies within the process. */
  listen(channel: string, cb: (payload: string) => void): Promise<() => Promise<void>>;
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

export class SqliteDriver implements SqlDriver {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly mutex = new Mutex();
  private readonly stmts = new Map<string, Database.Statement>();
  private readonly listeners = new Map<string, Set<(p: string) => void>>();
  private readonly pending: [string, string][] = [];

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
  }

  private stmt(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
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

  async all(sql: string, params?: unknown[]): Promise<Row[]> {
    const release = await this.mutex.lock();
    try {
      return await this.direct.all(sql, params);
    } finally {
      release();
    }
  }

  async run(sql: string, params?: unknown[]): Promise<number> {
    const release = await this.mutex.lock();
    try {
      return await this.direct.run(sql, params);
    } finally {
      release();
    }
  }

  async tx<T>(fn: (q: Sql) => Promise<T>): Promise<T> {
    const release = await this.mutex.lock();
    try {
      this.db.exec('BEGIN IMMEDIATE');
      let result: T;
      try {
        result = await fn(this.direct);
        this.db.exec('COMMIT');
      } catch (e) {
        this.pending.length = 0;
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw e;
      }
      const fire = this.pending.splice(0);
      for (const [ch, payload] of fire) for (const cb of this.listeners.get(ch) ?? []) cb(payload);
      return result;
    } finally {
      release();
    }
  }

  async exec(ddl: string): Promise<void> {
    const release = await this.mutex.lock();
    try {
      this.db.exec(ddl);
    } finally {
      release();
    }
  }

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
    this.pending.push([channel, payload]);
  }

  async close(): Promise<void> {
    const release = await this.mutex.lock();
    try {
      this.db.close();
    } finally {
      release();
    }
  }
}

// ---------------------------------------------------------------------------------------------

function toPg(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

export class PgDriver implements SqlDriver {
  readonly dialect = 'pg' as const;
  private readonly sql: postgres.Sql;

  constructor(url: string, options: { max?: number } = {}) {
    this.sql = postgres(url, {
      max: options.max ?? 10,
      onnotice: () => {},
      types: {
        // int8 → JS number (ms timestamps and counters fit in 2^53).
        bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
      },
    });
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

  async listen(channel: string, cb: (payload: string) => void): Promise<() => Promise<void>> {
    const sub = await this.sql.listen(channel, cb);
    return () => sub.unlisten();
  }

  async notify(q: Sql, channel: string, payload: string): Promise<void> {
    await q.all('SELECT pg_notify(?, ?)', [channel, payload]);
  }

  async close(): Promise<void> {
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
