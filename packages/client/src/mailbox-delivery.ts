/**
 * A Delivery over a shared SQLite file: a mailbox that several processes on one machine can use
 * (the crash-safety harness, local demos). Publishing appends a row; subscribers poll for rows
 * newer than the ones they have seen; fetch reads a route's rows after a cursor (the row id).
 * Nothing is ever deleted: it is a test and demo adapter, not a service.
 *
 * The file and its -wal/-shm are 0600 (SQLite gives its side files the main file's mode); a
 * missing directory is created 0700, an existing one is left as the caller made it.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { makePrivateDirectory, makePrivateFiles } from './at-rest.ts';
import type { DeliveredEnvelope, Delivery, EnvelopeHandler, FetchResult, Subscription } from './delivery.ts';

const FETCH_PAGE = 500;

function retryBusy(setUp: () => void): void {
  for (let attempt = 0; ; attempt++) {
    try {
      setUp();
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== 'SQLITE_BUSY' || attempt >= 100) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // 20 ms, synchronously
    }
  }
}

export class MailboxDelivery implements Delivery {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly since: Database.Statement;
  private readonly routeSince: Database.Statement;
  private readonly maxSeq: Database.Statement;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    path: string,
    private readonly pollMs = 10,
  ) {
    if (path !== ':memory:') {
      if (!existsSync(dirname(path))) makePrivateDirectory(dirname(path));
      closeSync(openSync(path, 'a', 0o600)); // created 0600 before SQLite opens it
      makePrivateFiles(path, `${path}-wal`, `${path}-shm`);
    }
    this.db = new Database(path, { timeout: 5000 });
    // Two processes opening a new mailbox at once race to switch it to WAL; SQLite answers
    // SQLITE_BUSY there without waiting on the busy timeout, so retry the set-up briefly.
    retryBusy(() => {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.exec('CREATE TABLE IF NOT EXISTS envelopes (seq INTEGER PRIMARY KEY AUTOINCREMENT, route TEXT NOT NULL, bytes BLOB NOT NULL)');
      this.db.exec('CREATE INDEX IF NOT EXISTS envelopes_route ON envelopes (route, seq)');
    });
    if (path !== ':memory:') makePrivateFiles(`${path}-wal`, `${path}-shm`);
    this.insert = this.db.prepare('INSERT INTO envelopes (route, bytes) VALUES (?, ?)');
    this.since = this.db.prepare('SELECT seq, route, bytes FROM envelopes WHERE seq > ? ORDER BY seq LIMIT 1000');
    this.routeSince = this.db.prepare('SELECT seq, bytes FROM envelopes WHERE route = ? AND seq > ? ORDER BY seq LIMIT ?');
    this.maxSeq = this.db.prepare('SELECT COALESCE(MAX(seq), 0) AS m FROM envelopes');
  }

  async publish(route: string, bytes: Uint8Array): Promise<void> {
    if (this.closed) throw new Error('mailbox closed');
    this.insert.run(route, bytes);
  }

  subscribe(routes: readonly string[], onEnvelope: EnvelopeHandler): Subscription {
    const wanted = new Set(routes);
    let last = (this.maxSeq.get() as { m: number }).m;
    let open = true;
    const poll = () => {
      if (!open || this.closed) return;
      try {
        for (;;) {
          const rows = this.since.all(last) as { seq: number; route: string; bytes: Buffer }[];
          for (const r of rows) {
            last = r.seq;
            if (wanted.has(r.route)) onEnvelope({ route: r.route, bytes: new Uint8Array(r.bytes) });
          }
          if (rows.length < 1000) break;
        }
      } catch {
        // busy or closed: try again at the next tick
      }
      schedule();
    };
    const schedule = () => {
      if (!open || this.closed) return;
      const t = setTimeout(() => {
        this.timers.delete(t);
        poll();
      }, this.pollMs);
      this.timers.add(t);
    };
    schedule();
    return {
      close: () => {
        open = false;
      },
    };
  }

  async fetch(route: string, since: string | null): Promise<FetchResult> {
    const start = since === null ? 0 : Number.parseInt(since, 10);
    if (!Number.isSafeInteger(start) || start < 0) throw new RangeError('bad cursor');
    const rows = this.routeSince.all(route, start, FETCH_PAGE) as { seq: number; bytes: Buffer }[];
    const envelopes: DeliveredEnvelope[] = rows.map((r) => ({ route, bytes: new Uint8Array(r.bytes) }));
    const cursor = rows.length > 0 ? String(rows[rows.length - 1]!.seq) : since;
    return { envelopes, cursor };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.db.close();
  }
}
