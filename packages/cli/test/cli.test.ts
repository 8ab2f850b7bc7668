/**
 * The `umbra` command as a user runs it: child processes against a hub on loopback (port 0, temp
 * data): init, invite, accept, send, read --json through SSA → RSA; --help; a bad invitation gives
 * a clear error and exit code 1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHub, type Hub } from '@umbra/services';
import { killChildren, runFile } from '../../client/test/fixtures/children.ts';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/umbra.js');
let hub: Hub;
let root: string;
let hubArg: string;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'umbra-cli-'));
  hub = await startHub({ dataDir: join(root, 'hub'), port: 0, ssaRetry: { baseMs: 50, maxMs: 500 } });
  hubArg = [hub.issuer, hub.ssa, ...hub.rsas].join(',');
});

after(async () => {
  try {
    await killChildren(); // any umbra run a failed or timed-out test left behind
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
    return { code: 1, stdout: '', stderr: String(e) }; // could not start it at all
  }
}

async function ok(args: string[]): Promise<string> {
  const r = await umbra(args);
  assert.equal(r.code, 0, `umbra ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

describe('umbra CLI through a hub', () => {
  test('init, invite, accept, send, read --json: the message arrives', async () => {
    const alice = join(root, 'alice');
    const bob = join(root, 'bob');
    const a = JSON.parse(await ok(['--data', alice, '--hub', hubArg, '--json', 'init', '--name', 'Alice'])) as { account: { transport: { kind: string } } };
    assert.equal(a.account.transport.kind, 'hub');
    await ok(['--data', bob, '--hub', hubArg, 'init', '--name', 'Bob']);
    const inv = JSON.parse(await ok(['--data', alice, '--json', 'invite'])) as { invitation: { text: string } };
    assert.match(inv.invitation.text, /^umbra_chatintro_1_/);
    const accepted = JSON.parse(await ok(['--data', bob, '--json', 'accept', inv.invitation.text])) as { conversation: { id: string; peerName: string } };
    assert.equal(accepted.conversation.peerName, 'Alice');
    const sent = JSON.parse(await ok(['--data', bob, '--json', 'send', 'Alice', 'hello', 'from', 'Bob', '--wait', '0'])) as { message: { text: string } };
    assert.equal(sent.message.text, 'hello from Bob');
    // Alice reads: the hub's SSA delivers asynchronously, and each CLI run pays Argon2id and
    // start-up (seconds on a loaded machine), so poll until a deadline rather than a count.
    const deadline = Date.now() + 60_000;
    let texts: string[] = [];
    // As with two people using the CLI, Bob runs it again meanwhile: a first publish that did not
    // get through (seen once in CI, cause not yet found) is retried from his outbox at each run.
    while (Date.now() < deadline && !texts.includes('hello from Bob')) {
      const page = JSON.parse(await ok(['--data', alice, '--json', 'read', '1'])) as { messages: { text: string; outgoing: boolean }[] };
      texts = page.messages.filter((m) => !m.outgoing).map((m) => m.text);
      if (!texts.includes('hello from Bob')) await ok(['--data', bob, '--json', 'list']);
    }
    assert.deepEqual(texts, ['hello from Bob']);
    // Alice's reading acknowledged it: Bob sees the receipt the next time he looks.
    let status = '';
    while (Date.now() < deadline + 30_000 && status !== 'delivered') {
      const page = JSON.parse(await ok(['--data', bob, '--json', 'read', '1'])) as { messages: { text: string; state: string }[] };
      status = page.messages.find((m) => m.text === 'hello from Bob')?.state ?? '';
      if (status !== 'delivered') await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal(status, 'delivered');
  });

  test('--help lists the commands and --hub', async () => {
    const out = await ok(['--help']);
    for (const word of ['init', 'invite', 'accept', 'send', 'read', 'chat', 'hub', '--hub']) assert.ok(out.includes(word), `--help mentions ${word}`);
  });

  test('a bad invitation gives a clear error and exit code 1', async () => {
    const carol = join(root, 'carol');
    await ok(['--data', carol, '--hub', hubArg, 'init', '--name', 'Carol']);
    const r = await umbra(['--data', carol, 'accept', 'umbra_chatintro_1_not-really-an-invitation']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^umbra: .*invitation/i);
    assert.ok(!r.stderr.includes('    at '), 'no stack trace');
  });
});
