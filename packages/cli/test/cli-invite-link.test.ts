/**
 * `umbra invite` with a hub: a short link (≤ 100 characters) beside the full text, accepted by
 * `umbra accept <link>`; `--full` gives the long form only; a link that leads nowhere is a
 * one-line error. Child processes against a hub on fixed loopback ports (one --hub URL, so the
 * CLI finds the hub's directory at its port + 4). Output to a pipe: no QR code is drawn.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHub, type Hub } from '@umbra/services';
import { killChildren, runFile } from '../../client/test/fixtures/children.ts';
import { loadCliSchema, validateAs } from './json-schema.ts';

const SCHEMA = loadCliSchema();

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/umbra.js');
let hub: Hub;
let root: string;
let hubUrl: string;

async function portFree(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = createServer();
    s.once('error', () => r(false));
    s.listen(port, '127.0.0.1', () => s.close(() => r(true)));
  });
}

/** A base port with the hub's five consecutive ports free. */
async function freeBasePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    let free = true;
    for (let i = 0; i < 5 && free; i++) free = await portFree(base + i);
    if (free) return base;
  }
  throw new Error('no five free consecutive ports');
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'umbra-cli-link-'));
  const base = await freeBasePort();
  hub = await startHub({ dataDir: join(root, 'hub'), port: base, ssaRetry: { baseMs: 50, maxMs: 500 } });
  hubUrl = `http://127.0.0.1:${base}`;
});

after(async () => {
  try {
    await killChildren();
    await hub?.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

async function umbra(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await runFile(process.execPath, [BIN, ...args], { env: { ...process.env, UMBRA_PASSPHRASE: 'cli test passphrase' }, timeoutMs: 60_000 });
    return { code: r.code ?? 1, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    return { code: 1, stdout: '', stderr: String(e) };
  }
}

async function ok(args: string[]): Promise<string> {
  const r = await umbra(args);
  assert.equal(r.code, 0, `umbra ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

describe('umbra invite: short links through the hub', () => {
  test('invite --json has the link and the full text; accept <link> starts the conversation; --full has no link', async () => {
    const alice = join(root, 'alice');
    const bob = join(root, 'bob');
    await Promise.all([ok(['--data', alice, '--hub', hubUrl, 'init', '--name', 'Alice']), ok(['--data', bob, '--hub', hubUrl, 'init', '--name', 'Bob'])]);
    const out = JSON.parse(await ok(['--data', alice, '--json', 'invite'])) as { invitation: { text: string; link?: string; linkExpiresAt?: string } };
    assert.deepEqual(validateAs(SCHEMA, 'InviteOutput', out), []);
    const link = out.invitation.link!;
    assert.ok(link.startsWith(`${hub.directory}/i#`), link);
    assert.ok(link.length <= 100, `${link.length} chars`);
    assert.match(out.invitation.text, /^umbra_chatintro_1_/);
    const accepted = JSON.parse(await ok(['--data', bob, '--json', 'accept', link, '--wait', '0'])) as { conversation: { peerName: string } };
    assert.equal(accepted.conversation.peerName, 'Alice');

    const full = JSON.parse(await ok(['--data', alice, '--json', 'invite', '--full'])) as { invitation: { text: string; link?: string } };
    assert.deepEqual(validateAs(SCHEMA, 'InviteOutput', full), []);
    assert.equal(full.invitation.link, undefined);

    // Text mode into a pipe: the link first, no QR code (half blocks) anywhere.
    const text = await ok(['--data', alice, 'invite']);
    assert.match(text.split('\n')[0]!, /^http:\/\/127\.0\.0\.1:\d+\/i#[A-Za-z0-9_-]{43}$/);
    assert.ok(!/[▀▄█]/.test(text), 'no QR code into a pipe');
    assert.match(text, /umbra invite --full/);
  });

  test('a link with a wrong key or to nowhere: one line, exit code 1, nothing started', async () => {
    const carol = join(root, 'carol');
    await ok(['--data', carol, '--hub', hubUrl, 'init', '--name', 'Carol']);
    const wrong = await umbra(['--data', carol, 'accept', `${hub.directory}/i#${'A'.repeat(43)}`]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^umbra: .*invitation link/);
    assert.ok(!wrong.stderr.includes('    at '), 'no stack trace');
    const nowhere = await umbra(['--data', carol, '--json', 'accept', `http://127.0.0.1:9/i#${'A'.repeat(43)}`]);
    assert.notEqual(nowhere.code, 0);
    assert.equal((JSON.parse(nowhere.stdout) as { error: { code: string } }).error.code, 'unreachable');
    const list = JSON.parse(await ok(['--data', carol, '--json', 'list'])) as { conversations: unknown[] };
    assert.equal(list.conversations.length, 0);
  });
});
