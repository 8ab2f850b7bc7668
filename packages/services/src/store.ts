/**
 * Storage for the three services: one small interface per service (`IssuerStore`, `SsaStore`,
 * `RsaStore`) and one SQL implementation of each over `SqlDriver`, which runs on SQLite and on
 * PostgreSQL. Each paid operation records its spent token nonce in the same transaction as the
 * work it pays for.
 */
import { ddl, type Row, type Sql, type SqlDriver } from './db.ts';

export function buf(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : new Uint8Array(0);
}
export function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}
export function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

/** Inserts a spent-token key; false if it was already there (double spend). */
export async function spend(q: Sql, key: Uint8Array, expires: number): Promise<boolean> {
  return (await q.run('INSERT INTO spent (h, expires) VALUES (?, ?) ON CONFLICT DO NOTHING', [key, expires])) === 1;
}

export class DoubleSpend extends Error {}

/** The meta table (k → v) on any connection: the single-database stores and the shards' control database share it. */
export async function getMeta(q: Sql, k: string): Promise<Uint8Array | null> {
  const rows = await q.all('SELECT v FROM meta WHERE k = ?', [k]);
  return rows[0] ? buf(rows[0].v) : null;
}

/** Sets k to v unless already set; returns the stored value (first writer wins across instances). */
export async function initMeta(q: Sql, k: string, v: Uint8Array): Promise<Uint8Array> {
  await q.run('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT DO NOTHING', [k, v]);
  return (await getMeta(q, k))!;
}

/** The RSA's address-key table, on whichever database holds it (its own, or the shards' control database). */
export const addressKeys = {
  async put(q: Sql, k: AddressKeyRow): Promise<void> {
    await q.run(
      `INSERT INTO address_keys (kid, class, x, pub, created, derive_until, resolve_until) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      [k.kid, k.cls, k.x, k.X, k.created, k.deriveUntil, k.resolveUntil],
    );
  },
  async list(q: Sql): Promise<AddressKeyRow[]> {
    const rows = await q.all('SELECT kid, class, x, pub, created, derive_until, resolve_until FROM address_keys ORDER BY kid');
    return rows.map((r) => ({
      kid: num(r.kid),
      cls: String(r.class) as 'ephemeral' | 'long',
      x: buf(r.x),
      X: buf(r.pub),
      created: num(r.created),
      deriveUntil: num(r.derive_until),
      resolveUntil: num(r.resolve_until),
    }));
  },
  async delete(q: Sql, kid: number): Promise<void> {
    await q.run('DELETE FROM address_keys WHERE kid = ?', [kid]);
  },
};

export const COMMON_DDL = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS spent (h BLOB PRIMARY KEY, expires INT NOT NULL);
`;

abstract class SqlStoreBase {
  constructor(readonly db: SqlDriver) {}
  getMeta(k: string): Promise<Uint8Array | null> {
    return getMeta(this.db, k);
  }
  /** Sets k to v unless already set; returns the stored value (first writer wins across instances). */
  initMeta(k: string, v: Uint8Array): Promise<Uint8Array> {
    return initMeta(this.db, k, v);
  }
  /** Records a spent token on its own (work that has no transaction of its own); false on a double spend. */
  spendToken(key: Uint8Array, expires: number): Promise<boolean> {
    return spend(this.db, key, expires);
  }
  close(): Promise<void> {
    return this.db.close();
  }
}

// =============================================================================================
// Issuer

export interface IssuerStore {
  init(): Promise<void>;
  initMeta(k: string, v: Uint8Array): Promise<Uint8Array>;
  createAccount(id: string, secretHash: Uint8Array, now: number): Promise<void>;
  accountBySecret(secretHash: Uint8Array): Promise<string | null>;
  /** Atomically adds n to the account's use for (class, day) if that stays ≤ limit. */
  consumeQuota(account: string, cls: string, day: number, n: number, limit: number): Promise<boolean>;
  quotaUsed(account: string, cls: string, day: number): Promise<number>;
  close(): Promise<void>;
}

export class SqlIssuerStore extends SqlStoreBase implements IssuerStore {
  async init(): Promise<void> {
    await this.db.exec(
      ddl(
        this.db.dialect,
        COMMON_DDL +
          `CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, secret_hash BLOB NOT NULL UNIQUE, created INT NOT NULL);
           CREATE TABLE IF NOT EXISTS quota (account TEXT NOT NULL, class TEXT NOT NULL, day INT NOT NULL, used INT NOT NULL,
             PRIMARY KEY (account, class, day));`,
      ),
    );
  }
  async createAccount(id: string, secretHash: Uint8Array, now: number): Promise<void> {
    await this.db.run('INSERT INTO accounts (id, secret_hash, created) VALUES (?, ?, ?)', [id, secretHash, now]);
  }
  async accountBySecret(secretHash: Uint8Array): Promise<string | null> {
    const rows = await this.db.all('SELECT id FROM accounts WHERE secret_hash = ?', [secretHash]);
    return rows[0] ? String(rows[0].id) : null;
  }
  async consumeQuota(account: string, cls: string, day: number, n: number, limit: number): Promise<boolean> {
    return this.db.tx(async (q) => {
      await q.run('INSERT INTO quota (account, class, day, used) VALUES (?, ?, ?, 0) ON CONFLICT DO NOTHING', [account, cls, day]);
      const changed = await q.run('UPDATE quota SET used = used + ? WHERE account = ? AND class = ? AND day = ? AND used + ? <= ?', [
        n,
        account,
        cls,
        day,
        n,
        limit,
      ]);
      return changed === 1;
    });
  }
  async quotaUsed(account: string, cls: string, day: number): Promise<number> {
    const rows = await this.db.all('SELECT used FROM quota WHERE account = ? AND class = ? AND day = ?', [account, cls, day]);
    return rows[0] ? num(rows[0].used) : 0;
  }
}

// =============================================================================================
// SSA

export interface QueueItem {
  sid: Uint8Array;
  rsa: string;
  /** The re-randomized recipient address, sealed under the SSA's storage key (never in clear). */
  sealedAddr: Uint8Array;
  payload: Uint8Array;
  created: number;
  expires: number;
  attempts: number;
}

export type SubmissionState = 'queued' | 'forwarded' | 'expired';

export interface NewBlob {
  id: Uint8Array;
  data: Uint8Array;
  expires: number;
}

export interface SsaStore {
  init(): Promise<void>;
  initMeta(k: string, v: Uint8Array): Promise<Uint8Array>;
  /** The sid already recorded for this idempotency key, if any. */
  sidForIdem(idem: Uint8Array): Promise<Uint8Array | null>;
  /** Records a spent token (a paid descriptor lookup); false if it was already spent. */
  spendToken(key: Uint8Array, expires: number): Promise<boolean>;
  /**
   * Records the spent token and enqueues the item in one transaction. 'double-spend' if the token
   * was already spent; {kind:'duplicate'} if the idempotency key raced in meanwhile.
   */
  enqueue(item: QueueItem, idem: Uint8Array, spentKey: Uint8Array, spentExpires: number, now: number):
    Promise<{ kind: 'ok' } | { kind: 'double-spend' } | { kind: 'duplicate'; sid: Uint8Array }>;
  /**
   * Leases up to `limit` due items for `leaseMs` (several SSA instances may share a database),
   * oldest first (by next_at), or newest first with `newestFirst`; none for the RSAs in `skipRsas`.
   */
  claimDue(now: number, limit: number, leaseMs: number, skipRsas?: readonly string[], newestFirst?: boolean): Promise<QueueItem[]>;
  /** next_at of the oldest due item not leased (none for the RSAs in `skipRsas`), or null. */
  oldestDue(now: number, skipRsas?: readonly string[]): Promise<number | null>;
  markForwarded(sids: Uint8Array[]): Promise<void>;
  reschedule(sid: Uint8Array, nextAt: number, attempts: number): Promise<void>;
  /**
   * Makes every queued item for `rsa` that is not yet due due since it was submitted (next_at =
   * created: the RSA answers again, and the items keep their age for the claim order); returns
   * how many moved.
   */
  retryNow(rsa: string, now: number): Promise<number>;
  markExpired(sid: Uint8Array): Promise<void>;
  state(sid: Uint8Array): Promise<SubmissionState | null>;
  nextDue(): Promise<number | null>;
  putBlob(blob: NewBlob, spentKey: Uint8Array, spentExpires: number): Promise<boolean>;
  getBlob(id: Uint8Array, now: number): Promise<Uint8Array | null>;
  sweep(now: number): Promise<void>;
  close(): Promise<void>;
}

/** The queue filter leaving out the RSAs in `skipRsas` (its placeholders; bind the URLs in order), or '' for none. */
function notInRsas(skipRsas: readonly string[]): string {
  return skipRsas.length > 0 ? `AND rsa NOT IN (${skipRsas.map(() => '?').join(', ')})` : '';
}

export class SqlSsaStore extends SqlStoreBase implements SsaStore {
  async init(): Promise<void> {
    await this.db.exec(
      ddl(
        this.db.dialect,
        COMMON_DDL +
          `CREATE TABLE IF NOT EXISTS queue (
             sid BLOB PRIMARY KEY, idem BLOB NOT NULL UNIQUE, rsa TEXT NOT NULL, sealed_addr BLOB NOT NULL, payload BLOB NOT NULL,
             created INT NOT NULL, expires INT NOT NULL, next_at INT NOT NULL, attempts INT NOT NULL, lease_until INT NOT NULL,
             state TEXT NOT NULL);
           CREATE INDEX IF NOT EXISTS queue_due ON queue (state, next_at);
           CREATE INDEX IF NOT EXISTS queue_expires ON queue (expires);
           CREATE TABLE IF NOT EXISTS blobs (id BLOB PRIMARY KEY, data BLOB NOT NULL, expires INT NOT NULL);`,
      ),
    );
  }
  async sidForIdem(idem: Uint8Array): Promise<Uint8Array | null> {
    const rows = await this.db.all('SELECT sid FROM queue WHERE idem = ?', [idem]);
    return rows[0] ? buf(rows[0].sid) : null;
  }
  async enqueue(item: QueueItem, idem: Uint8Array, spentKey: Uint8Array, spentExpires: number, now: number) {
    try {
      return await this.db.tx(async (q) => {
        // The insert is the idempotency check (idem is UNIQUE): one statement, not a SELECT
        // first. A retried submit inserts nothing and spends nothing; a double spend throws,
        // which rolls this transaction's insert back.
        const inserted = await q.run(
          `INSERT INTO queue (sid, idem, rsa, sealed_addr, payload, created, expires, next_at, attempts, lease_until, state)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 'queued') ON CONFLICT (idem) DO NOTHING`,
          [item.sid, idem, item.rsa, item.sealedAddr, item.payload, item.created, item.expires, now],
        );
        if (inserted === 0) {
          const existing = await q.all('SELECT sid FROM queue WHERE idem = ?', [idem]);
          if (existing[0]) return { kind: 'duplicate' as const, sid: buf(existing[0].sid) };
          throw new Error('queue insert conflicted on idem but no row holds it');
        }
        if (!(await spend(q, spentKey, spentExpires))) throw new DoubleSpend();
        return { kind: 'ok' as const };
      });
    } catch (e) {
      if (e instanceof DoubleSpend) return { kind: 'double-spend' as const };
      throw e;
    }
  }
  async claimDue(now: number, limit: number, leaseMs: number, skipRsas: readonly string[] = [], newestFirst = false): Promise<QueueItem[]> {
    const lock = this.db.dialect === 'pg' ? 'FOR UPDATE SKIP LOCKED' : '';
    const skip = notInRsas(skipRsas);
    const rows = await this.db.all(
      `UPDATE queue SET lease_until = ? WHERE sid IN (
         SELECT sid FROM queue WHERE state = 'queued' AND next_at <= ? AND lease_until <= ? ${skip} ORDER BY next_at ${newestFirst ? 'DESC' : ''} LIMIT ? ${lock})
       RETURNING sid, rsa, sealed_addr, payload, created, expires, attempts`,
      [now + leaseMs, now, now, ...skipRsas, limit],
    );
    return rows.map((r: Row) => ({
      sid: buf(r.sid),
      rsa: String(r.rsa),
      sealedAddr: buf(r.sealed_addr),
      payload: buf(r.payload),
      created: num(r.created),
      expires: num(r.expires),
      attempts: num(r.attempts),
    }));
  }
  async oldestDue(now: number, skipRsas: readonly string[] = []): Promise<number | null> {
    const skip = notInRsas(skipRsas);
    const rows = await this.db.all(
      `SELECT next_at FROM queue WHERE state = 'queued' AND next_at <= ? AND lease_until <= ? ${skip} ORDER BY next_at LIMIT 1`,
      [now, now, ...skipRsas],
    );
    return rows[0] ? num(rows[0].next_at) : null;
  }
  async markForwarded(sids: Uint8Array[]): Promise<void> {
    if (sids.length === 0) return;
    // Keep only a tombstone (for idempotency and status) without the address or the payload.
    await this.db.run(`UPDATE queue SET state = 'forwarded', sealed_addr = ?, payload = ? WHERE sid IN (${placeholders(sids.length)})`, [
      new Uint8Array(0),
      new Uint8Array(0),
      ...sids,
    ]);
  }
  async reschedule(sid: Uint8Array, nextAt: number, attempts: number): Promise<void> {
    await this.db.run('UPDATE queue SET next_at = ?, attempts = ?, lease_until = 0 WHERE sid = ?', [nextAt, attempts, sid]);
  }
  async retryNow(rsa: string, now: number): Promise<number> {
    // created <= now: the submit time (never later than now, whatever a clock did meanwhile).
    return this.db.run(`UPDATE queue SET next_at = CASE WHEN created < ? THEN created ELSE ? END WHERE state = 'queued' AND next_at > ? AND rsa = ?`, [
      now,
      now,
      now,
      rsa,
    ]);
  }
  async markExpired(sid: Uint8Array): Promise<void> {
    await this.db.run(`UPDATE queue SET state = 'expired', sealed_addr = ?, payload = ? WHERE sid = ?`, [new Uint8Array(0), new Uint8Array(0), sid]);
  }
  async state(sid: Uint8Array): Promise<SubmissionState | null> {
    const rows = await this.db.all('SELECT state FROM queue WHERE sid = ?', [sid]);
    return rows[0] ? (String(rows[0].state) as SubmissionState) : null;
  }
  async nextDue(): Promise<number | null> {
    const rows = await this.db.all(`SELECT MIN(next_at) AS n FROM queue WHERE state = 'queued'`);
    return rows[0] && rows[0].n !== null && rows[0].n !== undefined ? num(rows[0].n) : null;
  }
  async putBlob(blob: NewBlob, spentKey: Uint8Array, spentExpires: number): Promise<boolean> {
    try {
      await this.db.tx(async (q) => {
        if (!(await spend(q, spentKey, spentExpires))) throw new DoubleSpend();
        await q.run('INSERT INTO blobs (id, data, expires) VALUES (?, ?, ?)', [blob.id, blob.data, blob.expires]);
      });
      return true;
    } catch (e) {
      if (e instanceof DoubleSpend) return false;
      throw e;
    }
  }
  async getBlob(id: Uint8Array, now: number): Promise<Uint8Array | null> {
    const rows = await this.db.all('SELECT data FROM blobs WHERE id = ? AND expires > ?', [id, now]);
    return rows[0] ? buf(rows[0].data) : null;
  }
  async sweep(now: number): Promise<void> {
    await this.db.run(`UPDATE queue SET state = 'expired', sealed_addr = ?, payload = ? WHERE state = 'queued' AND expires <= ?`, [
      new Uint8Array(0),
      new Uint8Array(0),
      now,
    ]);
    // Tombstones stay a day past expiry so retried submits stay idempotent.
    await this.db.run('DELETE FROM queue WHERE expires <= ?', [now - 86_400_000]);
    await this.db.run('DELETE FROM blobs WHERE expires <= ?', [now]);
    await this.db.run('DELETE FROM spent WHERE expires <= ?', [now]);
  }
}

// =============================================================================================
// RSA

export interface Inbox {
  id: Uint8Array;
  authKey: Uint8Array;
  dhKey: Uint8Array;
  msgCount: number;
  msgBytes: number;
}

export type SeedState = 'active' | 'paused' | 'revoked';

export interface Seed {
  m: Uint8Array;
  seedId: Uint8Array;
  inbox: Uint8Array;
  notAfter: number;
  state: SeedState;
}

export interface AddressKeyRow {
  kid: number;
  cls: 'ephemeral' | 'long';
  x: Uint8Array;
  X: Uint8Array;
  created: number;
  deriveUntil: number;
  resolveUntil: number;
}

export interface StoredMessage {
  seq: number;
  mid: Uint8Array;
  seedId: Uint8Array;
  receivedAt: number;
  stored: Uint8Array;
}

export interface DeliveryLimits {
  perSeedPerMinute: number;
  perSeedPerDay: number;
  inboxMaxMessages: number;
  inboxMaxBytes: number;
  /** When a delivery is turned away because the inbox is full: retry after this many seconds. */
  overQuotaRetryS: number;
}

export interface NewMessage {
  mid: Uint8Array;
  seed: Seed;
  receivedAt: number;
  expires: number;
  stored: Uint8Array;
  dedupeKey: Uint8Array;
}

/**
 * What became of a resolved delivery. 'deferred': a per-seed rate or the inbox quota is reached;
 * nothing was stored (not even the dedupe key) and the sender's SSA should retry at `retryAt`.
 */
export type DeliverOutcome =
  | { kind: 'stored' | 'duplicate' | 'gone' }
  | { kind: 'deferred'; reason: 'rate-limited' | 'over-quota'; retryAt: number };

export const RSA_MESSAGE_CHANNEL = 'umbra_rsa_msg';

export interface RsaStore {
  init(): Promise<void>;
  initMeta(k: string, v: Uint8Array): Promise<Uint8Array>;
  createInbox(inbox: { id: Uint8Array; authKey: Uint8Array; dhKey: Uint8Array }, spentKeys: Uint8Array[], spentExpires: number, now: number): Promise<boolean>;
  getInbox(id: Uint8Array): Promise<Inbox | null>;
  /** Records a spent token (a paid delivery, before any resolve); false if it was already spent. */
  spendToken(key: Uint8Array, expires: number): Promise<boolean>;
  deleteInbox(id: Uint8Array): Promise<void>;
  addSeeds(inbox: Uint8Array, seeds: Seed[], spentKey: Uint8Array, spentExpires: number): Promise<boolean>;
  findSeed(m: Uint8Array): Promise<Seed | null>;
  /** The seed and its inbox's dh key in one read (a delivery needs both: one query, not two). */
  findSeedForDelivery(m: Uint8Array): Promise<{ seed: Seed; dhKey: Uint8Array } | null>;
  setSeedState(inbox: Uint8Array, seedId: Uint8Array, state: SeedState): Promise<boolean>;
  putAddressKey(k: AddressKeyRow): Promise<void>;
  listAddressKeys(): Promise<AddressKeyRow[]>;
  deleteAddressKey(kid: number): Promise<void>;
  /** Dedupe, per-seed rate, per-inbox quota and insert in one transaction; notifies on 'stored'. */
  deliver(msg: NewMessage, limits: DeliveryLimits, now: number): Promise<DeliverOutcome>;
  fetch(inbox: Uint8Array, after: number, limit: number, now: number): Promise<StoredMessage[]>;
  droppedByLimit(inbox: Uint8Array): Promise<{ seedId: Uint8Array; n: number }[]>;
  ack(inbox: Uint8Array, mids: Uint8Array[]): Promise<number>;
  /**
   * Calls back with the inbox id (base64url-free raw hex) of every stored message, across
   * instances. `onResync`: notifications may have been missed (a LISTEN connection was lost and is
   * back); every watched inbox must be read again from its cursor.
   */
  onMessage(cb: (inboxHex: string) => void, onResync?: () => void): Promise<() => Promise<void>>;
  sweep(now: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The per-seed rate windows and the inbox quota for one more message of `size` bytes, from the
 * locked seed row (state, win_*, day_*) and inbox row (msg_count, msg_bytes): either the deferral
 * or the seed's counters with this message counted. Shared by the single-database and the
 * sharded store (shards.ts).
 */
export function admitDelivery(
  s: Row,
  ib: Row,
  size: number,
  limits: DeliveryLimits,
  now: number,
): { deferred: DeliverOutcome } | { winStart: number; winCount: number; dayStart: number; dayCount: number } {
  let winStart = num(s.win_start);
  let winCount = num(s.win_count);
  let dayStart = num(s.day_start);
  let dayCount = num(s.day_count);
  if (now - winStart >= 60_000) [winStart, winCount] = [now, 0];
  if (now - dayStart >= 86_400_000) [dayStart, dayCount] = [now, 0];
  if (dayCount + 1 > limits.perSeedPerDay) return { deferred: { kind: 'deferred', reason: 'rate-limited', retryAt: dayStart + 86_400_000 } };
  if (winCount + 1 > limits.perSeedPerMinute) return { deferred: { kind: 'deferred', reason: 'rate-limited', retryAt: winStart + 60_000 } };
  if (num(ib.msg_count) + 1 > limits.inboxMaxMessages || num(ib.msg_bytes) + size > limits.inboxMaxBytes)
    return { deferred: { kind: 'deferred', reason: 'over-quota', retryAt: now + limits.overQuotaRetryS * 1000 } };
  return { winStart, winCount: winCount + 1, dayStart, dayCount: dayCount + 1 };
}

/** A seed row joined with its inbox's dh key (seeds and their inbox share a database, shards included). */
export const SEED_FOR_DELIVERY_SQL =
  'SELECT s.m, s.seed_id, s.inbox, s.not_after, s.state, i.dh_key FROM seeds s JOIN inboxes i ON i.id = s.inbox WHERE s.m = ?';

export function toSeed(r: Row): Seed {
  return { m: buf(r.m), seedId: buf(r.seed_id), inbox: buf(r.inbox), notAfter: num(r.not_after), state: String(r.state) as SeedState };
}

export class SqlRsaStore extends SqlStoreBase implements RsaStore {
  async init(): Promise<void> {
    await this.db.exec(
      ddl(
        this.db.dialect,
        COMMON_DDL +
          `CREATE TABLE IF NOT EXISTS inboxes (id BLOB PRIMARY KEY, auth_key BLOB NOT NULL, dh_key BLOB NOT NULL, created INT NOT NULL,
             msg_count INT NOT NULL, msg_bytes INT NOT NULL);
           CREATE TABLE IF NOT EXISTS seeds (m BLOB PRIMARY KEY, seed_id BLOB NOT NULL UNIQUE, inbox BLOB NOT NULL, not_after INT NOT NULL,
             state TEXT NOT NULL, win_start INT NOT NULL, win_count INT NOT NULL, day_start INT NOT NULL, day_count INT NOT NULL,
             dropped INT NOT NULL);
           CREATE INDEX IF NOT EXISTS seeds_inbox ON seeds (inbox);
           CREATE TABLE IF NOT EXISTS messages (seq SERIALPK, mid BLOB NOT NULL UNIQUE, inbox BLOB NOT NULL, seed_id BLOB NOT NULL,
             received_at INT NOT NULL, expires INT NOT NULL, stored BLOB NOT NULL, size INT NOT NULL);
           CREATE INDEX IF NOT EXISTS messages_inbox ON messages (inbox, seq);
           CREATE INDEX IF NOT EXISTS messages_expires ON messages (expires);
           CREATE TABLE IF NOT EXISTS dedupe (h BLOB PRIMARY KEY, expires INT NOT NULL);
           CREATE TABLE IF NOT EXISTS address_keys (kid INT PRIMARY KEY, class TEXT NOT NULL, x BLOB NOT NULL, pub BLOB NOT NULL,
             created INT NOT NULL, derive_until INT NOT NULL, resolve_until INT NOT NULL);`,
      ),
    );
  }

  async createInbox(inbox: { id: Uint8Array; authKey: Uint8Array; dhKey: Uint8Array }, spentKeys: Uint8Array[], spentExpires: number, now: number): Promise<boolean> {
    try {
      await this.db.tx(async (q) => {
        for (const k of spentKeys) if (!(await spend(q, k, spentExpires))) throw new DoubleSpend();
        await q.run('INSERT INTO inboxes (id, auth_key, dh_key, created, msg_count, msg_bytes) VALUES (?, ?, ?, ?, 0, 0)', [
          inbox.id,
          inbox.authKey,
          inbox.dhKey,
          now,
        ]);
      });
      return true;
    } catch (e) {
      if (e instanceof DoubleSpend) return false;
      throw e;
    }
  }

  async getInbox(id: Uint8Array): Promise<Inbox | null> {
    const rows = await this.db.all('SELECT id, auth_key, dh_key, msg_count, msg_bytes FROM inboxes WHERE id = ?', [id]);
    const r = rows[0];
    return r ? { id: buf(r.id), authKey: buf(r.auth_key), dhKey: buf(r.dh_key), msgCount: num(r.msg_count), msgBytes: num(r.msg_bytes) } : null;
  }

  async deleteInbox(id: Uint8Array): Promise<void> {
    await this.db.tx(async (q) => {
      await q.run('DELETE FROM messages WHERE inbox = ?', [id]);
      await q.run('DELETE FROM seeds WHERE inbox = ?', [id]);
      await q.run('DELETE FROM inboxes WHERE id = ?', [id]);
    });
  }

  async addSeeds(inbox: Uint8Array, seeds: Seed[], spentKey: Uint8Array, spentExpires: number): Promise<boolean> {
    try {
      await this.db.tx(async (q) => {
        if (!(await spend(q, spentKey, spentExpires))) throw new DoubleSpend();
        for (const s of seeds)
          await q.run(
            `INSERT INTO seeds (m, seed_id, inbox, not_after, state, win_start, win_count, day_start, day_count, dropped)
             VALUES (?, ?, ?, ?, ?, 0, 0, 0, 0, 0)`,
            [s.m, s.seedId, inbox, s.notAfter, s.state],
          );
      });
      return true;
    } catch (e) {
      if (e instanceof DoubleSpend) return false;
      throw e;
    }
  }

  async findSeed(m: Uint8Array): Promise<Seed | null> {
    const rows = await this.db.all('SELECT m, seed_id, inbox, not_after, state FROM seeds WHERE m = ?', [m]);
    return rows[0] ? toSeed(rows[0]) : null;
  }

  async findSeedForDelivery(m: Uint8Array): Promise<{ seed: Seed; dhKey: Uint8Array } | null> {
    const r = (await this.db.all(SEED_FOR_DELIVERY_SQL, [m]))[0];
    return r ? { seed: toSeed(r), dhKey: buf(r.dh_key) } : null;
  }

  async setSeedState(inbox: Uint8Array, seedId: Uint8Array, state: SeedState): Promise<boolean> {
    return (await this.db.run('UPDATE seeds SET state = ? WHERE inbox = ? AND seed_id = ?', [state, inbox, seedId])) === 1;
  }

  putAddressKey(k: AddressKeyRow): Promise<void> {
    return addressKeys.put(this.db, k);
  }

  listAddressKeys(): Promise<AddressKeyRow[]> {
    return addressKeys.list(this.db);
  }

  deleteAddressKey(kid: number): Promise<void> {
    return addressKeys.delete(this.db, kid);
  }

  async deliver(msg: NewMessage, limits: DeliveryLimits, now: number): Promise<DeliverOutcome> {
    const lock = this.db.dialect === 'pg' ? 'FOR UPDATE' : '';
    return this.db.tx(async (q): Promise<DeliverOutcome> => {
      // Lock the inbox row first: per-inbox inserts are serialized, so seq order = commit order.
      const ib = (await q.all(`SELECT msg_count, msg_bytes FROM inboxes WHERE id = ? ${lock}`, [msg.seed.inbox]))[0];
      if (!ib) return { kind: 'gone' };
      const s = (await q.all(`SELECT state, not_after, win_start, win_count, day_start, day_count FROM seeds WHERE m = ? ${lock}`, [msg.seed.m]))[0];
      if (!s || String(s.state) !== 'active' || num(s.not_after) < now) return { kind: 'gone' };
      // A retry of a message already stored is a duplicate whatever the limits say now.
      if ((await q.all('SELECT 1 AS x FROM dedupe WHERE h = ?', [msg.dedupeKey])).length > 0) return { kind: 'duplicate' };
      const admit = admitDelivery(s, ib, msg.stored.length, limits, now);
      if ('deferred' in admit) {
        // Counted for the owner (dropped_by_limit): turned away for now, the SSA retries.
        await q.run('UPDATE seeds SET dropped = dropped + 1 WHERE m = ?', [msg.seed.m]);
        return admit.deferred;
      }
      const { winStart, winCount, dayStart, dayCount } = admit;
      await q.run('INSERT INTO dedupe (h, expires) VALUES (?, ?)', [msg.dedupeKey, now + 86_400_000]);
      await q.run('UPDATE seeds SET win_start = ?, win_count = ?, day_start = ?, day_count = ? WHERE m = ?', [
        winStart,
        winCount,
        dayStart,
        dayCount,
        msg.seed.m,
      ]);
      await q.run('INSERT INTO messages (mid, inbox, seed_id, received_at, expires, stored, size) VALUES (?, ?, ?, ?, ?, ?, ?)', [
        msg.mid,
        msg.seed.inbox,
        msg.seed.seedId,
        msg.receivedAt,
        msg.expires,
        msg.stored,
        msg.stored.length,
      ]);
      await q.run('UPDATE inboxes SET msg_count = msg_count + 1, msg_bytes = msg_bytes + ? WHERE id = ?', [msg.stored.length, msg.seed.inbox]);
      await this.db.notify(q, RSA_MESSAGE_CHANNEL, Buffer.from(msg.seed.inbox).toString('hex'));
      return { kind: 'stored' };
    });
  }

  async fetch(inbox: Uint8Array, after: number, limit: number, now: number): Promise<StoredMessage[]> {
    const rows = await this.db.all(
      'SELECT seq, mid, seed_id, received_at, stored FROM messages WHERE inbox = ? AND seq > ? AND expires > ? ORDER BY seq LIMIT ?',
      [inbox, after, now, limit],
    );
    return rows.map((r) => ({ seq: num(r.seq), mid: buf(r.mid), seedId: buf(r.seed_id), receivedAt: num(r.received_at), stored: buf(r.stored) }));
  }

  async droppedByLimit(inbox: Uint8Array): Promise<{ seedId: Uint8Array; n: number }[]> {
    const rows = await this.db.all('SELECT seed_id, dropped FROM seeds WHERE inbox = ? AND dropped > 0', [inbox]);
    return rows.map((r) => ({ seedId: buf(r.seed_id), n: num(r.dropped) }));
  }

  async ack(inbox: Uint8Array, mids: Uint8Array[]): Promise<number> {
    if (mids.length === 0) return 0;
    return this.db.tx(async (q) => {
      const rows = await q.all(`DELETE FROM messages WHERE inbox = ? AND mid IN (${placeholders(mids.length)}) RETURNING size`, [inbox, ...mids]);
      const bytes = rows.reduce((a, r) => a + num(r.size), 0);
      if (rows.length > 0)
        await q.run('UPDATE inboxes SET msg_count = msg_count - ?, msg_bytes = msg_bytes - ? WHERE id = ?', [rows.length, bytes, inbox]);
      return rows.length;
    });
  }

  onMessage(cb: (inboxHex: string) => void, onResync?: () => void): Promise<() => Promise<void>> {
    return this.db.listen(RSA_MESSAGE_CHANNEL, cb, onResync);
  }

  async sweep(now: number): Promise<void> {
    await this.db.tx(async (q) => {
      const rows = await q.all('DELETE FROM messages WHERE expires <= ? RETURNING inbox, size', [now]);
      const per = new Map<string, { id: Uint8Array; n: number; bytes: number }>();
      for (const r of rows) {
        const id = buf(r.inbox);
        const key = Buffer.from(id).toString('hex');
        const e = per.get(key) ?? { id, n: 0, bytes: 0 };
        e.n++;
        e.bytes += num(r.size);
        per.set(key, e);
      }
      for (const e of per.values())
        await q.run('UPDATE inboxes SET msg_count = msg_count - ?, msg_bytes = msg_bytes - ? WHERE id = ?', [e.n, e.bytes, e.id]);
      await q.run('DELETE FROM dedupe WHERE expires <= ?', [now]);
      await q.run('DELETE FROM spent WHERE expires <= ?', [now]);
    });
  }
}
