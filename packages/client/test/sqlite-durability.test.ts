/**
 * SqliteStore durability (docs/STORE.md, "Durability"): a write resolves only after an fsync of
 * the -wal file that began after its COMMIT; writes committed during one fsync share the next
 * (group commit); a read that sees a commit answers only once that commit is on disk; a failed
 * fsync fails that write and every later one until the store is reopened. fs.fsync is replaced
 * by a gate the test opens by hand.
 */
import { after, afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { SqliteStore, type StoreBatch } from '../src/node.ts';
import { KEY_A, tempDir } from './helpers.ts';

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups) c();
});

const realFsync = fs.fsync;
/** fsync calls not yet let through, in call order. */
let held: { fd: number; release: (error?: Error) => void }[] = [];
let calls = 0;
function holdFsync(): void {
  held = [];
  calls = 0;
  (fs as { fsync: unknown }).fsync = (fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
    calls++;
    held.push({ fd, release: (error) => (error ? cb(error) : realFsync(fd, cb)) });
  };
  syncBuiltinESMExports();
}
afterEach(() => {
  (fs as { fsync: unknown }).fsync = realFsync;
  syncBuiltinESMExports();
  for (const h of held) h.release();
  held = [];
});

async function openStore(): Promise<{ store: SqliteStore; path: string }> {
  const t = tempDir('umbra-durability-');
  cleanups.push(t.cleanup);
  const path = join(t.dir, 's.db');
  return { store: await SqliteStore.open({ path, key: KEY_A }), path };
}

const setting = (key: string, value: string): StoreBatch => ({ settings: [{ key, value }] });
/** Lets queued callbacks and immediates run (a held fsync never completes meanwhile). */
const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
/** Waits (up to 5 s) for a real fsync let through to complete. */
async function until(done: () => boolean): Promise<void> {
  for (let t = Date.now(); !done(); ) {
    if (Date.now() - t > 5000) assert.fail('timed out');
    await new Promise((r) => setTimeout(r, 1));
  }
}
function track(p: Promise<unknown>): { settled: () => boolean; error: () => unknown } {
  let settled = false;
  let error: unknown = null;
  p.then(
    () => (settled = true),
    (e) => ((settled = true), (error = e)),
  );
  return { settled: () => settled, error: () => error };
}

test('a write resolves only after an fsync of the WAL that began after its commit', async () => {
  const { store } = await openStore();
  holdFsync();
  const w = track(store.write(setting('a', '1')));
  await turns();
  // Committed (visible to SQLite) but not yet durable: the caller has no answer.
  assert.equal((store.rawForTests().prepare(`SELECT value FROM settings WHERE key = 'a'`).get() as { value: string }).value, '1');
  assert.equal(w.settled(), false);
  assert.equal(held.length, 1);
  held.shift()!.release();
  await until(w.settled);
  assert.equal(w.error(), null);
  await store.close();
});

test('writes that commit while an fsync runs share the next one (group commit)', async () => {
  const { store } = await openStore();
  holdFsync();
  const first = track(store.write(setting('a', '1')));
  await turns();
  assert.equal(held.length, 1);
  // These commit after the first fsync began: it does not cover them.
  const rest = [track(store.write(setting('b', '2'))), track(store.write(setting('c', '3'))), track(store.write(setting('d', '4')))];
  held.shift()!.release();
  await until(first.settled);
  await turns();
  assert.ok(rest.every((w) => !w.settled()), 'the later writes wait for an fsync that began after their commit');
  assert.equal(held.length, 1, 'one fsync for the three of them');
  held.shift()!.release();
  await until(() => rest.every((w) => w.settled()));
  assert.ok(rest.every((w) => w.error() === null));
  assert.equal(calls, 2);
  await store.close();
});

test('a read that sees a commit still being flushed answers only once it is on disk', async () => {
  const { store } = await openStore();
  holdFsync();
  const w = track(store.write(setting('a', '1')));
  const r = store.settings.get('a');
  const read = track(r);
  await turns();
  assert.equal(read.settled(), false);
  held.shift()!.release();
  assert.equal(await r, '1');
  assert.equal(w.settled(), true);
  // Nothing in flight: a read answers without an fsync.
  assert.equal(await store.settings.get('a'), '1');
  assert.equal(calls, 1);
  await store.close();
});

test('a failed fsync fails its write, the reads that saw it and every later write, until the store is reopened', async () => {
  const { store, path } = await openStore();
  await store.write(setting('before', 'x'));
  holdFsync();
  const w = store.write({ settings: [{ key: 'lost?', value: 'y' }], cursors: [{ route: 'r', cursor: randomBytes(4).toString('hex') }] });
  const r = store.settings.get('lost?');
  await turns();
  held.shift()!.release(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
  await assert.rejects(w, { name: 'ClientError', code: 'store-corrupt' });
  await assert.rejects(r, { name: 'ClientError', code: 'store-corrupt' });
  await assert.rejects(store.write(setting('after', 'z')), { name: 'ClientError', code: 'store-corrupt' });
  await store.close();
  (fs as { fsync: unknown }).fsync = realFsync;
  syncBuiltinESMExports();
  const reopened = await SqliteStore.open({ path, key: KEY_A });
  assert.equal(await reopened.settings.get('before'), 'x');
  await reopened.write(setting('after', 'z'));
  assert.equal(await reopened.settings.get('after'), 'z');
  await reopened.close();
});

test('close waits for the fsync of writes already committed', async () => {
  const { store } = await openStore();
  holdFsync();
  const w = track(store.write(setting('a', '1')));
  const closed = track(store.close());
  await turns();
  assert.equal(closed.settled(), false);
  held.shift()!.release();
  await until(closed.settled);
  assert.equal(w.settled(), true);
  assert.equal(w.error(), null);
});

test('an in-memory store has nothing at rest: no fsync', async () => {
  const store = await SqliteStore.open({ path: ':memory:', key: KEY_A });
  holdFsync();
  await store.write(setting('a', '1'));
  assert.equal(await store.settings.get('a'), '1');
  assert.equal(calls, 0);
  await store.close();
});
