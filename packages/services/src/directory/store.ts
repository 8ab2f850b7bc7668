/**
 * Directory storage on SqlDriver (SQLite and PostgreSQL, like the other services).
 *
 * dir_names(name PK, ipk, version, policy, created, updated)      current identity key per name
 * dir_versions(name, version, ipk, opening, idx, follows)          every key a name ever had
 * dir_log(idx PK, entry, leaf)                                      the transparency log, dense 0..size-1
 * dir_head(id=1, size, frontier, checkpoint)                        compact range + signed checkpoint
 * dir_packages(id, name, kp, created)                               one-time key packages (popped once)
 * dir_last_resort(name PK, kp)                                      reusable fallback key package
 * dir_requests(id PK, name, note, state, kp, created, expires)      approval-policy queue
 * dir_contacts(id, name, requester, kind, request_id, at)          served contacts (rate limits, 24 h)
 * meta, spent                                                       service keys; spent token nonces
 *
 * Appends lock the head row (FOR UPDATE on PostgreSQL; SQLite transactions are serialized), so
 * log indexes are dense and in commit order. A key package is popped with one
 * DELETE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING, so concurrent requests never
 * get the same one.
 *
 * Contacts (a key package handed out, an approval request queued) lock the target's dir_names row
 * (FOR UPDATE on PostgreSQL) and the requester's, in name order, so the per-target and
 * per-requester counts in dir_contacts are checked and written under one lock: concurrent
 * requests cannot both pass a limit that only one of them fits in.
 */
import { transparency } from '@umbra/protocol';
import { ddl, type Sql, type SqlDriver } from '../db.ts';

export type Policy = 'open' | 'members' | 'approval' | 'closed';
export const POLICIES: readonly Policy[] = ['open', 'members', 'approval', 'closed'];
export type RequestState = 'pending' | 'approved' | 'denied';

function buf(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : new Uint8Array(0);
}
function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

const DDL = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS spent (h BLOB PRIMARY KEY, expires INT NOT NULL);
CREATE TABLE IF NOT EXISTS dir_names (name TEXT PRIMARY KEY, ipk BLOB NOT NULL, version INT NOT NULL, policy TEXT NOT NULL, created INT NOT NULL, updated INT NOT NULL);
CREATE INDEX IF NOT EXISTS dir_names_ipk ON dir_names (ipk);
CREATE TABLE IF NOT EXISTS dir_versions (name TEXT NOT NULL, version INT NOT NULL, ipk BLOB NOT NULL, opening BLOB NOT NULL, idx INT NOT NULL, follows BLOB, PRIMARY KEY (name, version));
CREATE TABLE IF NOT EXISTS dir_log (idx INT PRIMARY KEY, entry BLOB NOT NULL, leaf BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS dir_head (id INT PRIMARY KEY, size INT NOT NULL, frontier BLOB NOT NULL, checkpoint TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dir_packages (id SERIALPK, name TEXT NOT NULL, kp BLOB NOT NULL, created INT NOT NULL);
CREATE INDEX IF NOT EXISTS dir_packages_name ON dir_packages (name, id);
CREATE TABLE IF NOT EXISTS dir_last_resort (name TEXT PRIMARY KEY, kp BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS dir_requests (id BLOB PRIMARY KEY, name TEXT NOT NULL, note TEXT NOT NULL, state TEXT NOT NULL, kp BLOB, created INT NOT NULL, expires INT NOT NULL);
CREATE INDEX IF NOT EXISTS dir_requests_name ON dir_requests (name, state);
CREATE TABLE IF NOT EXISTS dir_contacts (id SERIALPK, name TEXT NOT NULL, requester TEXT, kind TEXT NOT NULL, request_id BLOB, at INT NOT NULL);
CREATE INDEX IF NOT EXISTS dir_contacts_name ON dir_contacts (name, kind, at);
CREATE INDEX IF NOT EXISTS dir_contacts_requester ON dir_contacts (requester, at);
CREATE INDEX IF NOT EXISTS dir_contacts_request ON dir_contacts (request_id);
`;

export interface NameRow {
  name: string;
  ipk: Uint8Array;
  version: number;
  policy: Policy;
}

export interface VersionRow {
  version: number;
  ipk: Uint8Array;
  opening: Uint8Array;
  index: number;
  follows: Uint8Array | null;
}

export interface Head {
  size: number;
  checkpoint: string;
}

export interface AppendRequest {
  name: string;
  ipk: Uint8Array;
  opening: Uint8Array;
  follows: Uint8Array | null;
  /** The version the caller saw (0 for a new name): the append fails if it changed meanwhile. */
  expectVersion: number;
  now: number;
  policy: Policy;
  /** Builds the entry bytes for (version, leaf hash of the name's previous entry or zeros). */
  entry(version: number, prevLeaf: Uint8Array): Uint8Array;
  /** Signs a checkpoint for (size, root). */
  sign(size: number, root: Uint8Array): string;
}

export type AppendResult = { kind: 'ok'; version: number; index: number; entry: Uint8Array; checkpoint: string } | { kind: 'conflict' };

export interface RequestRow {
  id: Uint8Array;
  name: string;
  note: string;
  state: RequestState;
  kp: Uint8Array | null;
  created: number;
  expires: number;
}

class Conflict extends Error {}
class NoPackage extends Error {}
class DoubleSpend extends Error {}
class Limited extends Error {
  constructor(
    readonly retryAfterMs: number,
    message: string,
  ) {
    super(message);
  }
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A contact: who asks (a member's name, or null when anonymous), for which name, paid with which token. */
export interface ContactAsk {
  name: string;
  requester: string | null;
  /** The token's spent-nonce key; null when the directory takes no tokens. */
  spentKey: Uint8Array | null;
  spentExpires: number;
  now: number;
}

/** The contact limits (DirectoryLimits' fields of the same names; docs/DIRECTORY.md "Contact costs"). */
export interface ContactLimits {
  oneTimePerTargetPerHour: number;
  oneTimePerRequesterPerTarget: number;
  contactsPerRequesterPerHour: number;
  pendingPerRequesterPerTarget: number;
  maxPending: number;
  maxPendingAnonymous: number;
}

/** A limit said no: retry after this long (the reason is safe to show). */
export interface LimitedResult {
  kind: 'limited';
  retryAfterMs: number;
  reason: string;
}

async function spend(q: Sql, key: Uint8Array, expires: number): Promise<boolean> {
  return (await q.run('INSERT INTO spent (h, expires) VALUES (?, ?) ON CONFLICT DO NOTHING', [key, expires])) === 1;
}

export class SqlDirectoryStore {
  /** Leaf hashes cached in memory (append-only; refreshed from the database when it grew). */
  private leafCache: Uint8Array[] = [];

  constructor(readonly db: SqlDriver) {}

  async init(): Promise<void> {
    await this.db.exec(ddl(this.db.dialect, DDL));
  }

  /** Creates the empty log's head (size 0) on first start. */
  async initHead(emptyCheckpoint: (size: number, root: Uint8Array) => string): Promise<void> {
    const root = transparency.treeRoot([], 0);
    await this.db.run('INSERT INTO dir_head (id, size, frontier, checkpoint) VALUES (1, 0, ?, ?) ON CONFLICT DO NOTHING', [new Uint8Array(0), emptyCheckpoint(0, root)]);
  }

  async initMeta(k: string, v: Uint8Array): Promise<Uint8Array> {
    await this.db.run('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT DO NOTHING', [k, v]);
    return buf((await this.db.all('SELECT v FROM meta WHERE k = ?', [k]))[0]!.v);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // ---- names and the log -------------------------------------------------------------------

  async getName(name: string): Promise<NameRow | null> {
    const r = (await this.db.all('SELECT name, ipk, version, policy FROM dir_names WHERE name = ?', [name]))[0];
    return r ? { name: String(r.name), ipk: buf(r.ipk), version: num(r.version), policy: r.policy as Policy } : null;
  }

  /** The name whose current key is `ipk` (membership checks). */
  async nameByKey(ipk: Uint8Array): Promise<string | null> {
    const r = (await this.db.all('SELECT name FROM dir_names WHERE ipk = ?', [ipk]))[0];
    return r ? String(r.name) : null;
  }

  async append(req: AppendRequest): Promise<AppendResult> {
    const lock = this.db.dialect === 'pg' ? 'FOR UPDATE' : '';
    try {
      return await this.db.tx(async (q) => {
        const head = (await q.all(`SELECT size, frontier FROM dir_head WHERE id = 1 ${lock}`))[0]!;
        const cur = (await q.all('SELECT version FROM dir_names WHERE name = ?', [req.name]))[0];
        const curVersion = cur ? num(cur.version) : 0;
        if (curVersion !== req.expectVersion) throw new Conflict();
        let prevLeaf: Uint8Array = new Uint8Array(32);
        if (curVersion > 0) {
          const p = (await q.all('SELECT l.leaf FROM dir_versions v JOIN dir_log l ON l.idx = v.idx WHERE v.name = ? AND v.version = ?', [req.name, curVersion]))[0]!;
          prevLeaf = buf(p.leaf);
        }
        const version = curVersion + 1;
        const entry = req.entry(version, prevLeaf);
        const leaf = transparency.leafHash(entry);
        const size = num(head.size);
        const frontier = buf(head.frontier);
        const hashes: Uint8Array[] = [];
        for (let i = 0; i < frontier.length; i += 32) hashes.push(frontier.subarray(i, i + 32));
        const range = transparency.CompactRange.restore(size, hashes);
        if (range === null) throw new Error('directory: corrupt log head');
        range.append(leaf);
        const checkpoint = req.sign(size + 1, range.root());
        const packed = new Uint8Array(range.hashes().length * 32);
        range.hashes().forEach((h, i) => packed.set(h, i * 32));
        await q.run('INSERT INTO dir_log (idx, entry, leaf) VALUES (?, ?, ?)', [size, entry, leaf]);
        await q.run('UPDATE dir_head SET size = ?, frontier = ?, checkpoint = ? WHERE id = 1', [size + 1, packed, checkpoint]);
        await q.run('INSERT INTO dir_versions (name, version, ipk, opening, idx, follows) VALUES (?, ?, ?, ?, ?, ?)', [
          req.name,
          version,
          req.ipk,
          req.opening,
          size,
          req.follows,
        ]);
        if (curVersion === 0) {
          await q.run('INSERT INTO dir_names (name, ipk, version, policy, created, updated) VALUES (?, ?, ?, ?, ?, ?)', [req.name, req.ipk, version, req.policy, req.now, req.now]);
        } else {
          await q.run('UPDATE dir_names SET ipk = ?, version = ?, updated = ? WHERE name = ?', [req.ipk, version, req.now, req.name]);
          // Key packages were bound to the old key: they are void now.
          await q.run('DELETE FROM dir_packages WHERE name = ?', [req.name]);
          await q.run('DELETE FROM dir_last_resort WHERE name = ?', [req.name]);
        }
        return { kind: 'ok' as const, version, index: size, entry, checkpoint };
      });
    } catch (e) {
      if (e instanceof Conflict) return { kind: 'conflict' };
      // A concurrent first registration of the same name loses on the primary key.
      if (req.expectVersion === 0 && /unique|duplicate|constraint/i.test(String((e as Error).message))) return { kind: 'conflict' };
      throw e;
    }
  }

  async head(): Promise<Head> {
    const r = (await this.db.all('SELECT size, checkpoint FROM dir_head WHERE id = 1'))[0]!;
    return { size: num(r.size), checkpoint: String(r.checkpoint) };
  }

  /** Leaf hashes [0, size). */
  async leaves(size: number): Promise<Uint8Array[]> {
    while (this.leafCache.length < size) {
      const start = this.leafCache.length;
      const rows = await this.db.all('SELECT idx, leaf FROM dir_log WHERE idx >= ? AND idx < ? ORDER BY idx', [start, size]);
      if (this.leafCache.length !== start) continue; // a concurrent call extended the cache meanwhile
      if (rows.length === 0) break;
      const next = [...this.leafCache];
      for (const r of rows) {
        if (num(r.idx) !== next.length) throw new Error('directory: log is not dense');
        next.push(buf(r.leaf));
      }
      this.leafCache = next;
    }
    if (this.leafCache.length < size) throw new Error('directory: log shorter than its head');
    return this.leafCache.slice(0, size);
  }

  async entries(start: number, end: number): Promise<Uint8Array[]> {
    const rows = await this.db.all('SELECT entry FROM dir_log WHERE idx >= ? AND idx < ? ORDER BY idx', [start, end]);
    return rows.map((r) => buf(r.entry));
  }

  async entryAt(index: number): Promise<Uint8Array | null> {
    const r = (await this.db.all('SELECT entry FROM dir_log WHERE idx = ?', [index]))[0];
    return r ? buf(r.entry) : null;
  }

  /** Versions > since, oldest first (at most `limit`, the newest ones). */
  async versions(name: string, since: number, limit: number): Promise<VersionRow[]> {
    const rows = await this.db.all('SELECT version, ipk, opening, idx, follows FROM dir_versions WHERE name = ? AND version > ? ORDER BY version DESC LIMIT ?', [
      name,
      since,
      limit,
    ]);
    return rows
      .map((r) => ({ version: num(r.version), ipk: buf(r.ipk), opening: buf(r.opening), index: num(r.idx), follows: r.follows == null ? null : buf(r.follows) }))
      .reverse();
  }

  async setPolicy(name: string, policy: Policy): Promise<void> {
    await this.db.run('UPDATE dir_names SET policy = ? WHERE name = ?', [policy, name]);
  }

  // ---- key packages ----------------------------------------------------------------------------

  async addPackages(name: string, ipk: Uint8Array, kps: Uint8Array[], lastResort: Uint8Array | null, max: number, now: number): Promise<'ok' | 'full' | 'key-changed'> {
    return this.db.tx(async (q) => {
      const cur = (await q.all('SELECT ipk FROM dir_names WHERE name = ?', [name]))[0];
      if (!cur || Buffer.compare(Buffer.from(buf(cur.ipk)), Buffer.from(ipk)) !== 0) return 'key-changed' as const;
      const n = num((await q.all('SELECT COUNT(*) AS n FROM dir_packages WHERE name = ?', [name]))[0]!.n);
      if (n + kps.length > max) return 'full' as const;
      for (const kp of kps) await q.run('INSERT INTO dir_packages (name, kp, created) VALUES (?, ?, ?)', [name, kp, now]);
      if (lastResort !== null) {
        await q.run('INSERT INTO dir_last_resort (name, kp) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET kp = excluded.kp', [name, lastResort]);
      }
      return 'ok' as const;
    });
  }

  async packageStatus(name: string): Promise<{ available: number; lastResort: boolean }> {
    const n = num((await this.db.all('SELECT COUNT(*) AS n FROM dir_packages WHERE name = ?', [name]))[0]!.n);
    const lr = (await this.db.all('SELECT 1 AS x FROM dir_last_resort WHERE name = ?', [name])).length > 0;
    return { available: n, lastResort: lr };
  }

  private async popOneTime(q: Sql, name: string): Promise<{ kp: Uint8Array; oneTime: true } | null> {
    const skip = this.db.dialect === 'pg' ? 'FOR UPDATE SKIP LOCKED' : '';
    const rows = await q.all(`DELETE FROM dir_packages WHERE id = (SELECT id FROM dir_packages WHERE name = ? ORDER BY id LIMIT 1 ${skip}) RETURNING kp`, [name]);
    return rows[0] ? { kp: buf(rows[0].kp), oneTime: true } : null;
  }

  private async lastResort(q: Sql, name: string): Promise<{ kp: Uint8Array; oneTime: false } | null> {
    const lr = (await q.all('SELECT kp FROM dir_last_resort WHERE name = ?', [name]))[0];
    return lr ? { kp: buf(lr.kp), oneTime: false } : null;
  }

  /** A one-time package, or the last-resort one when none is left. */
  private async pop(q: Sql, name: string): Promise<{ kp: Uint8Array; oneTime: boolean } | null> {
    return (await this.popOneTime(q, name)) ?? (await this.lastResort(q, name));
  }

  /** Locks the dir_names rows of the names involved in a contact, in name order (no deadlocks). */
  private async lockNames(q: Sql, names: (string | null)[]): Promise<void> {
    if (this.db.dialect !== 'pg') return; // SQLite transactions are serialized
    for (const n of [...new Set(names.filter((x): x is string => x !== null))].sort()) await q.all('SELECT name FROM dir_names WHERE name = ? FOR UPDATE', [n]);
  }

  /** COUNT(*) and MIN(at) over dir_contacts rows matching `where`. */
  private async window(q: Sql, where: string, params: unknown[]): Promise<{ n: number; first: number }> {
    const r = (await q.all(`SELECT COUNT(*) AS n, MIN(at) AS first FROM dir_contacts WHERE ${where}`, params))[0]!;
    return { n: num(r.n), first: r.first == null ? 0 : num(r.first) };
  }

  /** A member's contact requests (any target) in the last hour. */
  private async requesterHourly(q: Sql, ask: ContactAsk, limits: ContactLimits): Promise<void> {
    if (ask.requester === null) return;
    const w = await this.window(q, 'requester = ? AND at > ?', [ask.requester, ask.now - HOUR]);
    if (w.n >= limits.contactsPerRequesterPerHour) {
      throw new Limited(w.first + HOUR - ask.now, `a name may make at most ${limits.contactsPerRequesterPerHour} contact requests per hour`);
    }
  }

  /**
   * One contact through the open or members policy, in one transaction: checks the limits,
   * hands out a one-time key package when the requester may have one, else the last-resort
   * package, spends the token and records the contact. Anything but 'ok' leaves nothing changed
   * (the token stays unspent).
   *
   * A one-time package goes out only when the request carries a token (`spentKey`), the name
   * has handed out fewer than `oneTimePerTargetPerHour` in the last hour, and a member
   * requester has had fewer than `oneTimePerRequesterPerTarget` of this name's in the last
   * 24 h. Otherwise, or when none is left, the reusable last-resort package goes out; without
   * one the answer is 'limited' (a limit said no) or 'empty'.
   */
  async takePackage(ask: ContactAsk, limits: ContactLimits): Promise<{ kind: 'ok'; kp: Uint8Array; oneTime: boolean } | { kind: 'empty' | 'double-spend' } | LimitedResult> {
    try {
      return await this.db.tx(async (q) => {
        await this.lockNames(q, [ask.name, ask.requester]);
        await this.requesterHourly(q, ask, limits);
        let refusal: Limited | null = null;
        let oneTimeAllowed = ask.spentKey !== null;
        if (oneTimeAllowed && ask.requester !== null) {
          const w = await this.window(q, "name = ? AND requester = ? AND kind = 'one_time' AND at > ?", [ask.name, ask.requester, ask.now - DAY]);
          if (w.n >= limits.oneTimePerRequesterPerTarget) {
            oneTimeAllowed = false;
            refusal = new Limited(w.first + DAY - ask.now, `a name receives at most ${limits.oneTimePerRequesterPerTarget} of ${ask.name}'s one-time key packages per day`);
          }
        }
        if (oneTimeAllowed) {
          const w = await this.window(q, "name = ? AND kind = 'one_time' AND at > ?", [ask.name, ask.now - HOUR]);
          if (w.n >= limits.oneTimePerTargetPerHour) {
            oneTimeAllowed = false;
            refusal = new Limited(w.first + HOUR - ask.now, `${ask.name} hands out at most ${limits.oneTimePerTargetPerHour} one-time key packages per hour`);
          }
        }
        const p = (oneTimeAllowed ? await this.popOneTime(q, ask.name) : null) ?? (await this.lastResort(q, ask.name));
        if (p === null) throw refusal ?? new NoPackage();
        if (ask.spentKey !== null && !(await spend(q, ask.spentKey, ask.spentExpires))) throw new DoubleSpend();
        await q.run('INSERT INTO dir_contacts (name, requester, kind, request_id, at) VALUES (?, ?, ?, NULL, ?)', [ask.name, ask.requester, p.oneTime ? 'one_time' : 'last_resort', ask.now]);
        return { kind: 'ok' as const, ...p };
      });
    } catch (e) {
      if (e instanceof DoubleSpend) return { kind: 'double-spend' };
      if (e instanceof NoPackage) return { kind: 'empty' };
      if (e instanceof Limited) return { kind: 'limited', retryAfterMs: Math.max(1000, e.retryAfterMs), reason: e.message };
      throw e;
    }
  }

  /** Records a spent token on its own (lookups). False if already spent. */
  async spendToken(key: Uint8Array, expires: number): Promise<boolean> {
    return spend(this.db, key, expires);
  }

  // ---- approval queue --------------------------------------------------------------------------

  /**
   * Queues an approval request, spending the token (if any) and recording the contact in the same
   * transaction. A member has at most `pendingPerRequesterPerTarget` pending requests per name;
   * anonymous requests fill at most `maxPendingAnonymous` of a name's `maxPending` places, so
   * an anonymous flood cannot shut members out.
   */
  async createRequest(r: RequestRow, ask: ContactAsk, limits: ContactLimits): Promise<'ok' | 'double-spend' | 'full' | LimitedResult> {
    try {
      return await this.db.tx(async (q) => {
        await this.lockNames(q, [ask.name, ask.requester]);
        await this.requesterHourly(q, ask, limits);
        const pendingBy = async (who: string, params: unknown[]) => {
          const sql = `SELECT COUNT(*) AS n, MIN(r.expires) AS first FROM dir_requests r JOIN dir_contacts c ON c.request_id = r.id WHERE r.name = ? AND r.state = 'pending' AND r.expires > ? AND ${who}`;
          const row = (await q.all(sql, [ask.name, ask.now, ...params]))[0]!;
          return { n: num(row.n), first: row.first == null ? 0 : num(row.first) };
        };
        if (ask.requester !== null) {
          const mine = await pendingBy('c.requester = ?', [ask.requester]);
          if (mine.n >= limits.pendingPerRequesterPerTarget) {
            throw new Limited(mine.first - ask.now, `you already have a pending request for ${ask.name}: poll it, or wait for the owner`);
          }
        } else if ((await pendingBy('c.requester IS NULL', [])).n >= limits.maxPendingAnonymous) {
          return 'full' as const;
        }
        const n = num((await q.all("SELECT COUNT(*) AS n FROM dir_requests WHERE name = ? AND state = 'pending' AND expires > ?", [r.name, ask.now]))[0]!.n);
        if (n >= limits.maxPending) return 'full' as const;
        if (ask.spentKey !== null && !(await spend(q, ask.spentKey, ask.spentExpires))) throw new DoubleSpend();
        await q.run('INSERT INTO dir_requests (id, name, note, state, kp, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?)', [r.id, r.name, r.note, r.state, r.kp, r.created, r.expires]);
        await q.run("INSERT INTO dir_contacts (name, requester, kind, request_id, at) VALUES (?, ?, 'request', ?, ?)", [ask.name, ask.requester, r.id, ask.now]);
        return 'ok' as const;
      });
    } catch (e) {
      if (e instanceof DoubleSpend) return 'double-spend';
      if (e instanceof Limited) return { kind: 'limited', retryAfterMs: Math.max(1000, e.retryAfterMs), reason: e.message };
      throw e;
    }
  }

  async getRequest(id: Uint8Array, now: number): Promise<RequestRow | null> {
    const r = (await this.db.all('SELECT id, name, note, state, kp, created, expires FROM dir_requests WHERE id = ? AND expires > ?', [id, now]))[0];
    return r ? rowToRequest(r) : null;
  }

  async pendingRequests(name: string, now: number): Promise<RequestRow[]> {
    const rows = await this.db.all("SELECT id, name, note, state, kp, created, expires FROM dir_requests WHERE name = ? AND state = 'pending' AND expires > ? ORDER BY created", [name, now]);
    return rows.map(rowToRequest);
  }

  /** Approves (popping a key package in the same transaction) or denies a pending request. */
  async decide(name: string, id: Uint8Array, approve: boolean, now: number): Promise<'ok' | 'unknown' | 'empty'> {
    const lock = this.db.dialect === 'pg' ? 'FOR UPDATE' : '';
    try {
      return await this.db.tx(async (q) => {
        const r = (await q.all(`SELECT state FROM dir_requests WHERE id = ? AND name = ? AND expires > ? ${lock}`, [id, name, now]))[0];
        if (!r || r.state !== 'pending') return 'unknown' as const;
        if (!approve) {
          await q.run("UPDATE dir_requests SET state = 'denied' WHERE id = ?", [id]);
          return 'ok' as const;
        }
        const p = await this.pop(q, name);
        if (p === null) throw new NoPackage();
        await q.run("UPDATE dir_requests SET state = 'approved', kp = ? WHERE id = ?", [p.kp, id]);
        return 'ok' as const;
      });
    } catch (e) {
      if (e instanceof NoPackage) return 'empty';
      throw e;
    }
  }

  async sweep(now: number): Promise<void> {
    await this.db.run('DELETE FROM dir_requests WHERE expires <= ?', [now]);
    await this.db.run('DELETE FROM spent WHERE expires <= ?', [now]);
    // Contacts count for a day at most; a queued request's row lives as long as the request.
    await this.db.run('DELETE FROM dir_contacts WHERE at <= ? AND (request_id IS NULL OR NOT EXISTS (SELECT 1 FROM dir_requests r WHERE r.id = dir_contacts.request_id))', [now - DAY]);
  }
}

function rowToRequest(r: Record<string, unknown>): RequestRow {
  return {
    id: buf(r.id),
    name: String(r.name),
    note: String(r.note),
    state: r.state as RequestState,
    kp: r.kp == null ? null : buf(r.kp),
    created: num(r.created),
    expires: num(r.expires),
  };
}
