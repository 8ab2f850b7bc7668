/**
 * `umbra invite` with a hub: a short link (≤ 100 characters) beside the full text, accepted by
 * `umbra accept <link>`; `--full` gives the long form only; a link that leads nowhere is a
 * one-line error. Child processes against a hub on fixed loopback ports (one --hub URL, so the
 * CLI finds the hub's directory at its port + 4). Output to a pipe: no QR code is drawn.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHub, type Hub } from '@umbra/services';
import { killChildren } from '../../client/test/fixtures/children.ts';
import { BIN, runUmbra, type UmbraRun } from './run-umbra.ts';
import { freeBasePort } from '../../client/test/fixtures/ports.ts';
import { loadCliSchema, validateAs } from './json-schema.ts';

const SCHEMA = loadCliSchema();

const TMUX = `umbra-link-test-${process.pid}`;
let tmuxStarted = false;
const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', TMUX, ...args], { encoding: 'utf8' });
let hub: Hub;
let root: string;
let hubUrl: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'umbra-cli-link-'));
  const base = await freeBasePort(5);
  hub = await startHub({ dataDir: join(root, 'hub'), port: base, ssaRetry: { baseMs: 50, maxMs: 500 } });
  hubUrl = `http://127.0.0.1:${base}`;
});

after(async () => {
  try {
    if (tmuxStarted) {
      try {
        tmux('kill-server');
      } catch {
        // already gone
      }
    }
    await killChildren();
    await hub?.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

function umbra(args: string[]): Promise<UmbraRun> {
  return runUmbra(args, 'cli test passphrase');
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

  test('on an 80×24 terminal: the whole QR code of the link and the text fit on one screen', async () => {
    const dan = join(root, 'dan');
    await ok(['--data', dan, '--hub', hubUrl, 'init', '--name', 'Dan']);
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} --data ${JSON.stringify(dan)} invite; sleep 60`;
    tmux('new-session', '-d', '-s', 'small', '-x', '80', '-y', '24', '-e', 'UMBRA_PASSPHRASE=cli test passphrase', 'sh', '-c', cmd);
    tmuxStarted = true;
    const deadline = Date.now() + 30_000;
    let screen = '';
    while (!/umbra invite --full/.test(screen)) {
      if (Date.now() > deadline) assert.fail(`no invitation on the terminal:\n${screen}`);
      await new Promise((r) => setTimeout(r, 150));
      screen = tmux('capture-pane', '-p', '-t', 'small'); // the visible 24 rows only
    }
    const rows = screen.split('\n');
    const qrRows = rows.filter((l) => /[▀▄█]/.test(l));
    // The QR code's first row is the screen's first: nothing scrolled away.
    assert.match(rows[0]!, /[▀▄█]/, `the top of the QR code is on screen:\n${screen}`);
    assert.ok(qrRows.length >= 17 && qrRows.length <= 18, `${qrRows.length} QR rows:\n${screen}`);
    assert.ok(Math.max(...qrRows.map((l) => [...l.trimEnd()].length)) <= 80);
    assert.doesNotMatch(screen, /columns wide/);
    assert.ok(rows.some((l) => /^http:\/\/127\.0\.0\.1:\d+\/i#[A-Za-z0-9_-]{43}$/.test(l.trimEnd())), `the link on screen:\n${screen}`);
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
