/**
 * Migration of a store made before issue 14: a clear SQLite file whose secret columns were
 * sealed row by row (ChaCha20-Poly1305 under Argon2id t = 1, 19 MiB, or under the app key).
 * The rows are opened with the old key and copied, unsealed, into a new whole-file encrypted
 * database beside the old one (`<store>.migrating`), which is fsynced and renamed over the old
 * file. A crash at any point leaves either the old store (migrated again at the next open) or
 * the new one: nothing is lost. A wrong passphrase changes nothing.
 */
import Database from 'better-sqlite3-multiple-ciphers';
import { closeSync, existsSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { concat, fromUtf8, utf8, type CryptoProvider } from '@umbra/protocol';
import { ClientError } from './errors.ts';
import { checkArgon2idParams, deriveStoreKey, fsyncDirectory, fsyncFile, keySqliteDatabase, makePrivateFiles, type Argon2idParams, type SqlitePageCipher } from './at-rest.ts';

type Db = Database.Database;

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const AAD_PREFIX = utf8('umbra/v1/store/');
const KEY_CHECK_PLAINTEXT = utf8('umbra/v1/store/key-check');
/** meta rows that described the old per-row key; the new store keeps its key header beside it. */
const LEGACY_KEY_META = new Set(['kdf', 'kdf_salt', 'kdf_params', 'key_check']);

/** True when the file is a clear SQLite database (a store made before whole-file encryption). */
export function isClearSqliteFile(path: string): boolean {
  if (!existsSync(path)) return false;
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(SQLITE_MAGIC.length);
    return readSync(fd, head, 0, head.length, 0) === head.length && head.equals(SQLITE_MAGIC);
  } finally {
    closeSync(fd);
  }
}

/** Opens what the old SecretBox sealed: nonce ‖ ChaCha20-Poly1305(key, nonce, value, aad). */
class LegacyRowSealing {
  constructor(
    private readonly crypto: CryptoProvider,
    private readonly key: Uint8Array,
  ) {}

  open(what: string, rowKey: Uint8Array | string, sealed: Uint8Array): Uint8Array {
    const aad = concat(AAD_PREFIX, utf8(what), new Uint8Array([0]), typeof rowKey === 'string' ? utf8(rowKey) : rowKey);
    const opened = sealed.length < NONCE_BYTES + TAG_BYTES ? null : this.crypto.aeadOpen(this.key, sealed.subarray(0, NONCE_BYTES), sealed.subarray(NONCE_BYTES), aad);
    if (opened === null) throw new ClientError('store-corrupt', `a stored ${what} record does not decrypt`);
    return opened;
  }

  verifyKeyCheck(sealed: Uint8Array): boolean {
    try {
      const opened = this.open('key-check', '', sealed);
      return opened.length === KEY_CHECK_PLAINTEXT.length && opened.every((b, i) => b === KEY_CHECK_PLAINTEXT[i]);
    } catch {
      return false;
    }
  }
}

const u8 = (b: Buffer | Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();

type Row = Record<string, unknown>;
type Unseal = (box: LegacyRowSealing, row: Row) => void;

/** Which columns were sealed, and under which row key (as the old store's applyBatch did). */
const SEALED: Record<string, Unseal> = {
  account: (box, r) => {
    r.secret = box.open('account', 'secret', u8(r.secret as Buffer));
    r.profile = box.open('account', 'profile', u8(r.profile as Buffer));
  },
  inboxes: (box, r) => {
    r.state = box.open('inbox', u8(r.invitation_id as Buffer), u8(r.state as Buffer));
  },
  conversations: (box, r) => {
    r.state = box.open('conversation', r.id as string, u8(r.state as Buffer));
  },
  messages: (box, r) => {
    r.body = box.open('message', concat(utf8(r.conversation_id as string), u8(r.message_id as Buffer)), u8(r.body as Buffer));
  },
  groups: (box, r) => {
    r.record = box.open('group', r.chat_id as string, u8(r.record as Buffer));
  },
  group_events: (box, r) => {
    r.wire = box.open('group-event', concat(utf8(r.chat_id as string), u8(r.digest as Buffer)), u8(r.wire as Buffer));
  },
  group_messages: (box, r) => {
    r.entity = box.open('group-message', utf8(`${r.chat_id as string}/${r.message_id as string}`), u8(r.entity as Buffer));
  },
};

export interface LegacySecrets {
  readonly passphrase?: string | undefined;
  readonly key?: Uint8Array | undefined;
}

export interface LegacyMigrationTarget {
  /** Called once the old key is verified: returns the new store's raw SQLite key and page cipher (and writes its key header). */
  readonly newStoreKey: () => Promise<{ rawKey: Uint8Array; cipher: SqlitePageCipher }>;
  /** Creates the schema of `version` in the new database (the shipped migrations, 0 → version). */
  readonly createSchema: (db: Db, version: number) => void;
  readonly schemaVersion: number;
}

async function legacyKey(db: Db, secrets: LegacySecrets, crypto: CryptoProvider): Promise<LegacyRowSealing> {
  const get = (key: string): Uint8Array | null => {
    const row = db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: Buffer } | undefined;
    return row === undefined ? null : u8(row.value);
  };
  const kdf = get('kdf');
  const check = get('key_check');
  if (kdf === null || check === null) throw new ClientError('store-corrupt', 'the old store lacks its key check');
  let key: Uint8Array;
  const mode = fromUtf8(kdf);
  if (mode === 'argon2id') {
    if (secrets.passphrase === undefined) throw new ClientError('wrong-passphrase', 'this store is protected by a passphrase');
    const salt = get('kdf_salt');
    const paramsBytes = get('kdf_params');
    if (salt === null || paramsBytes === null) throw new ClientError('store-corrupt', 'the old store lacks its key-derivation parameters');
    let params: Argon2idParams;
    try {
      const parsed = JSON.parse(fromUtf8(paramsBytes) ?? '') as Argon2idParams;
      params = checkArgon2idParams({ m: Number(parsed.m), t: Number(parsed.t), p: Number(parsed.p) });
    } catch (e) {
      if (e instanceof ClientError) throw e;
      throw new ClientError('store-corrupt', 'the old store key-derivation parameters do not parse');
    }
    key = await deriveStoreKey(secrets.passphrase, salt, params);
  } else if (mode === 'app-key') {
    if (secrets.key === undefined) throw new ClientError('wrong-passphrase', 'this store is protected by an app-supplied key, not a passphrase');
    key = secrets.key;
  } else {
    throw new ClientError('store-corrupt', 'unknown key-derivation mode in the old store');
  }
  const box = new LegacyRowSealing(crypto, key);
  if (!box.verifyKeyCheck(check)) throw new ClientError('wrong-passphrase', 'wrong passphrase or key for this store');
  return box;
}

/**
 * Migrates the clear store at `path` in place (see the module comment). Throws ClientError:
 * wrong-passphrase (nothing written), store-locked, store-unsupported-version, store-corrupt.
 */
export async function migrateLegacyStore(path: string, secrets: LegacySecrets, crypto: CryptoProvider, target: LegacyMigrationTarget): Promise<void> {
  const tmp = `${path}.migrating`;
  const old = new Database(path, { timeout: 250 });
  try {
    old.pragma('locking_mode = EXCLUSIVE');
    old.exec('BEGIN IMMEDIATE; COMMIT;'); // an old client still running has it: store-locked
    const version = old.pragma('user_version', { simple: true }) as number;
    if (version > target.schemaVersion) {
      throw new ClientError('store-unsupported-version', `the store has schema version ${version}; this client knows up to ${target.schemaVersion}`);
    }
    const box = await legacyKey(old, secrets, crypto);
    const { rawKey, cipher } = await target.newStoreKey();
    for (const f of [tmp, `${tmp}-journal`, `${tmp}-wal`]) rmSync(f, { force: true }); // a crashed earlier attempt
    const fresh = new Database(tmp);
    try {
      keySqliteDatabase(fresh, rawKey, cipher);
      rawKey.fill(0);
      fresh.pragma('synchronous = FULL');
      target.createSchema(fresh, version);
      const tables = (old.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).all() as { name: string }[]).map((t) => t.name);
      fresh.transaction(() => {
        for (const table of tables) {
          const unseal = SEALED[table];
          let insert: Database.Statement | null = null;
          let columns: string[] = [];
          for (const row of old.prepare(`SELECT * FROM "${table}"`).iterate() as IterableIterator<Row>) {
            if (table === 'meta' && LEGACY_KEY_META.has(row.key as string)) continue;
            unseal?.(box, row);
            if (insert === null) {
              columns = Object.keys(row);
              insert = fresh.prepare(`INSERT INTO "${table}" (${columns.map((c) => `"${c}"`).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
            }
            insert.run(...columns.map((c) => row[c]));
          }
        }
      })();
    } finally {
      fresh.close();
    }
    makePrivateFiles(tmp);
    fsyncFile(tmp);
    // Fold the old WAL into the old file and drop it: a WAL left beside the new file would be replayed onto it.
    old.pragma('journal_mode = DELETE');
  } catch (e) {
    old.close();
    rmSync(tmp, { force: true });
    throw e;
  }
  old.close();
  if (existsSync(`${path}-wal`)) {
    rmSync(tmp, { force: true });
    throw new ClientError('store-corrupt', 'the old store kept its write-ahead log; it was not migrated');
  }
  renameSync(tmp, path);
  rmSync(`${path}-shm`, { force: true });
  fsyncDirectory(dirname(path));
}
