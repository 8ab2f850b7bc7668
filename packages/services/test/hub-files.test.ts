/**
 * Secrets at rest on the hub: its data directory is 0700 and every file in it (databases, their
 * -wal/-shm, the SSA seal key) 0600, whatever the umask; an existing looser directory is
 * tightened; one that belongs to another user, or is not a directory, is refused untouched.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { startHub, type Hub } from '../src/hub.ts';
import { ensurePrivateDir, PrivateDirError } from '../src/private-files.ts';

const root = mkdtempSync(join(tmpdir(), 'umbra-hub-files-'));
const hubs: Hub[] = [];
const savedUmask = process.umask();

after(async () => {
  process.umask(savedUmask);
  for (const h of hubs) await h.close();
  rmSync(root, { recursive: true, force: true });
});

/** Every directory and file under `dir` (itself included) with its permission bits. */
function modes(dir: string): Map<string, number> {
  const out = new Map<string, number>([[dir, statSync(dir).mode & 0o777]]);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) for (const [k, v] of modes(p)) out.set(k, v);
    else out.set(p, statSync(p).mode & 0o777);
  }
  return out;
}

function assertPrivate(dir: string): void {
  for (const [path, mode] of modes(dir)) {
    const want = statSync(path).isDirectory() ? 0o700 : 0o600;
    assert.equal(mode.toString(8), want.toString(8), `${path} has mode ${mode.toString(8)}`);
  }
}

describe('hub data directory modes', () => {
  test('a fresh hub (RSAs in child processes, umask 0): a 0700 directory, every file in it 0600', async () => {
    process.umask(0); // the most permissive umask: nothing may rely on it
    const dataDir = join(root, 'fresh', 'data');
    const hub = await startHub({ dataDir, port: 0, rsaMode: 'child' });
    hubs.push(hub);
    // Write to every database so that SQLite has made its -wal and -shm files.
    const res = await fetch(`${hub.issuer}/.well-known/private-token-issuer-directory`);
    assert.equal(res.status, 200);
    await hub.rsaHandles[0].stop();
    await hub.rsaHandles[0].restart(); // reopened by a new process: still 0600
    const names = readdirSync(dataDir).sort();
    for (const f of ['issuer.db', 'ssa.db', 'rsa1.db', 'rsa2.db', 'directory.db', 'ssa-seal.key', 'issuer.db-wal', 'issuer.db-shm', 'rsa2.db-wal', 'rsa2.db-shm'])
      assert.ok(names.includes(f), `${f} missing from ${names.join(' ')}`);
    assertPrivate(dataDir);
    process.umask(savedUmask);
  });

  test('an existing 0755 directory with 0644 files (an earlier version) is tightened, subdirectories too', async () => {
    const dataDir = join(root, 'old');
    mkdirSync(join(dataDir, 'profiles'), { recursive: true, mode: 0o755 });
    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, 'profiles'), 0o755);
    for (const f of ['ssa-seal.key', 'profiles/notes.txt']) {
      writeFileSync(join(dataDir, f), f === 'ssa-seal.key' ? new Uint8Array(32).fill(7) : 'x');
      chmodSync(join(dataDir, f), 0o644);
    }
    const hub = await startHub({ dataDir, port: 0 });
    hubs.push(hub);
    assertPrivate(dataDir);
    assert.equal(modes(dataDir).get(join(dataDir, 'profiles', 'notes.txt')), 0o600);
  });

  test('a directory owned by another user, a file or a symbolic link is refused, and left as it was', () => {
    const dir = join(root, 'theirs');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'x.db'), '');
    chmodSync(join(dir, 'x.db'), 0o644);
    const before = modes(dir);
    const otherUid = (process.getuid?.() ?? 0) + 1;
    assert.throws(() => ensurePrivateDir(dir, otherUid), (e: unknown) => e instanceof PrivateDirError && /belongs to uid/.test(e.message));
    assert.deepEqual(modes(dir), before);

    const file = join(root, 'a-file');
    writeFileSync(file, '');
    assert.throws(() => ensurePrivateDir(file), PrivateDirError);
    const link = join(root, 'a-link');
    symlinkSync(dir, link);
    assert.throws(() => ensurePrivateDir(link), PrivateDirError);
    assert.deepEqual(modes(dir), before);
  });
});
