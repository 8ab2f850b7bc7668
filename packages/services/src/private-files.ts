/**
 * Secrets at rest for the services: the hub's data directory (token-signing keys, RSA epoch
 * secrets, the directory's log key, the SSA's seal key) is mode 0700 and every file in it 0600.
 *
 * An existing data directory with looser modes (earlier versions made it 0755 with 0644 files)
 * is tightened in place, files and subdirectories included; one that belongs to another user,
 * or that is not a directory, is refused with a PrivateDirError: the hub would not own its keys.
 * SQLite gives a database's -wal, -shm and -journal files the database file's own mode, so a
 * database file created 0600 before SQLite opens it keeps its companions 0600 too.
 */
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** A data directory the services refuse to keep secrets in. */
export class PrivateDirError extends Error {
  override readonly name = 'PrivateDirError';
}

function currentUid(): number | null {
  return typeof process.getuid === 'function' ? process.getuid() : null;
}

/**
 * Creates `dir` with mode 0700 or tightens an existing one (and everything under it) to
 * 0700/0600. Refuses a path that is not a directory or belongs to a user other than `uid`.
 */
export function ensurePrivateDir(dir: string, uid: number | null = currentUid()): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new PrivateDirError(`${dir} is not a directory (a symbolic link or a file): the services keep their keys only in a directory`);
  if (uid !== null && st.uid !== uid) throw new PrivateDirError(`${dir} belongs to uid ${st.uid}, not to this process (uid ${uid}): the services keep their keys only in a directory they own`);
  tightenTree(dir);
}

/** Directories to 0700 and regular files to 0600 under `dir` (itself included); symbolic links are not followed. */
function tightenTree(dir: string): void {
  if ((statSync(dir).mode & 0o777) !== PRIVATE_DIR_MODE) chmodSync(dir, PRIVATE_DIR_MODE);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) tightenTree(path);
    else if (entry.isFile() && (lstatSync(path).mode & 0o777) !== PRIVATE_FILE_MODE) chmodSync(path, PRIVATE_FILE_MODE);
  }
}

/** True when `location` names a SQLite database file (not :memory:, a URI or a PostgreSQL URL). */
export function isSqliteFile(location: string): boolean {
  return location !== '' && location !== ':memory:' && !location.startsWith('file:') && !/^postgres(ql)?:\/\//.test(location);
}

/**
 * Makes a SQLite database file (and any -wal, -shm, -journal beside it) mode 0600 before SQLite
 * opens it: a missing file is created empty with 0600 (SQLite then copies that mode to the files
 * it creates), an existing one is tightened. The directory is left to the caller (the hub makes
 * its data directory private; a database placed elsewhere lives in the operator's directory).
 */
export function preparePrivateDatabase(location: string): void {
  // A missing directory is left for SQLite to report as it always has.
  if (!isSqliteFile(location) || !existsSync(dirname(location))) return;
  for (const path of [location, `${location}-wal`, `${location}-shm`, `${location}-journal`]) {
    if (existsSync(path)) {
      if ((statSync(path).mode & 0o777) !== PRIVATE_FILE_MODE) chmodSync(path, PRIVATE_FILE_MODE);
    } else if (path === location) {
      closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
      chmodSync(path, PRIVATE_FILE_MODE); // openSync's mode is filtered by the umask; make it exact
    }
  }
}
