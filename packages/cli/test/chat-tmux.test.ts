/**
 * `umbra chat` in a real terminal (tmux, 100×30), as a person uses it, against a hub on loopback
 * (port 0, temp data). Alice chats; Bob uses one-line commands through his agent. Typed lines are
 * sent; a message arriving while Alice types is printed above the prompt and what she typed
 * stays; /list, /switch, /group create, /group members and group messages; while the chat runs,
 * Alice's other commands are served by it (no passphrase, the store stays with the chat); /quit
 * ends it and removes the socket. Then `umbra invite` in terminals of two widths: the QR code
 * where it fits, a sentence where it does not, and never into a pipe. Last, a long wait shows a
 * spinner on a terminal, erased when it ends, and nothing of it on a pipe.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHub, type Hub } from '@umbra/services';
import { killChildren, killPids, runFile } from '../../client/test/fixtures/children.ts';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/umbra.js');
const PASS = 'chat test passphrase';
const SOCKET = `umbra-chat-test-${process.pid}`;
let hub: Hub;
let root: string;
let hubArg: string;
const agentPids: number[] = [];
let tmuxStarted = false;

const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
/** Everything the terminal showed (its scrollback too), trailing blank lines dropped. */
const screen = (): string => tmux('capture-pane', '-p', '-S', '-', '-t', 'chat').replace(/\s+$/, '');

async function waitForScreen(want: RegExp, what: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = screen();
    if (want.test(s)) return s;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; the screen:\n${s}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function umbra(who: string, args: string[], withPassphrase = false): Promise<string> {
  const env = { ...process.env };
  delete env.UMBRA_PASSPHRASE;
  if (withPassphrase) env.UMBRA_PASSPHRASE = PASS;
  const r = await runFile(process.execPath, [BIN, '--data', join(root, who), '--json', ...args], { env, timeoutMs: 60_000 });
  assert.equal(r.code, 0, `umbra ${args.join(' ')} failed: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function until<T>(who: string, args: string[], done: (v: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = JSON.parse(await umbra(who, args)) as T;
    if (done(v)) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(v).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'umbra-chat-'));
  hub = await startHub({ dataDir: join(root, 'hub'), port: 0, ssaRetry: { baseMs: 50, maxMs: 500 } });
  hubArg = [hub.issuer, hub.ssa, ...hub.rsas].join(',');
});

after(async () => {
  try {
    if (tmuxStarted) {
      try {
        tmux('kill-server'); // and with it the chat it runs
      } catch {
        // already gone
      }
    }
    killPids(agentPids);
    await killChildren();
    await hub?.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('umbra chat in tmux: type, receive while typing, /list, /switch, groups, other commands served by the chat, /quit', async () => {
  await Promise.all([umbra('alice', ['--hub', hubArg, 'init', '--name', 'Alice'], true), umbra('bob', ['--hub', hubArg, 'init', '--name', 'Bob'], true)]);
  agentPids.push((JSON.parse(await umbra('bob', ['agent', 'start'], true)) as { agent: { pid: number } }).agent.pid);
  const inv = (JSON.parse(await umbra('alice', ['invite', '--no-qr'], true)) as { invitation: { text: string } }).invitation.text;

  tmux('new-session', '-d', '-s', 'chat', '-x', '100', '-y', '30', '-e', `UMBRA_PASSPHRASE=${PASS}`, process.execPath, BIN, '--data', join(root, 'alice'), 'chat');
  tmuxStarted = true;
  await waitForScreen(/Umbra chat as Alice\. \/help for commands\./, 'the chat to start');
  await waitForScreen(/No conversations yet/, 'the empty start');

  // The chat answers Bob's first contact (it acts as Alice's agent) and says so.
  const accepted = JSON.parse(await umbra('bob', ['accept', inv, '--wait', '20s'])) as { state: string };
  assert.equal(accepted.state, 'started');
  await waitForScreen(/\(Bob and you are connected \(bob\): \/switch bob\)/, 'the connection notice');
  // While the chat runs, Alice's other commands go to it: no passphrase needed, the store is the chat's.
  const who = JSON.parse(await umbra('alice', ['whoami'])) as { account: { agent: boolean } };
  assert.equal(who.account.agent, true);
  assert.equal((JSON.parse(await umbra('alice', ['agent', 'status'])) as { agent: { mode: string } }).agent.mode, 'chat');

  tmux('send-keys', '-t', 'chat', '/switch bob', 'Enter');
  await waitForScreen(/— Bob \(bob\) —/, 'the switch');
  await waitForScreen(/^bob>$/m, 'the prompt');
  tmux('send-keys', '-t', 'chat', 'hello bob', 'Enter');
  await until<{ messages: { text: string; outgoing: boolean }[] }>('bob', ['read', 'alice'], (v) => v.messages.some((m) => !m.outgoing && m.text === 'hello bob'), 'Bob to receive it');

  // Receive while typing: Bob's message lands above the prompt; the half-typed line stays.
  tmux('send-keys', '-t', 'chat', '-l', 'half typed');
  await waitForScreen(/^bob> half typed$/m, 'the typing');
  await umbra('bob', ['send', 'alice', 'incoming', 'while', 'you', 'type', '--wait', '0']);
  const s1 = await waitForScreen(/\] Bob: incoming while you type\n/, 'the incoming message');
  assert.match(s1, /Bob: incoming while you type\n(.*\n)*bob> half typed/, `the prompt keeps the typing:\n${s1}`);
  tmux('send-keys', '-t', 'chat', ' and sent', 'Enter');
  await until<{ messages: { text: string; outgoing: boolean }[] }>('bob', ['read', 'alice'], (v) => v.messages.some((m) => !m.outgoing && m.text === 'half typed and sent'), 'the finished line at Bob');

  tmux('send-keys', '-t', 'chat', '/list', 'Enter');
  const listed = await waitForScreen(/^ {2}1 {2}bob {10}Bob.*← current$/m, 'the list');
  // What the open conversation showed as it arrived counts as read.
  assert.match(listed, /^ {2}1 {2}bob {10}Bob {3}← current$/m, listed);

  // Groups from the chat: create (the prompt becomes the group), Bob joins, members, a group message.
  tmux('send-keys', '-t', 'chat', '/group create crew bob', 'Enter');
  await waitForScreen(/^#crew>$/m, 'the group prompt');
  await until<{ groups: { status: string }[] }>('bob', ['group', 'list'], (v) => v.groups[0]?.status === 'invited', 'the invitation at Bob');
  await umbra('bob', ['group', 'accept', 'crew']);
  await until<{ groups: { members: number; pending: number }[] }>('alice', ['group', 'list'], (v) => v.groups[0]?.members === 2 && v.groups[0]?.pending === 0, 'Bob in the group');
  tmux('send-keys', '-t', 'chat', '/group members', 'Enter');
  await waitForScreen(/^ {2}1\. me {2}\(creator, admin\)\n {2}2\. Bob$/m, 'the members');
  tmux('send-keys', '-t', 'chat', 'hi crew', 'Enter');
  await waitForScreen(/Sent ✓ to Bob/, 'the group send result');
  await until<{ items: { type: string; text: string }[] }>('bob', ['group', 'read', 'crew'], (v) => v.items.some((i) => i.type === 'message' && i.text === 'hi crew'), 'the group message at Bob');
  await umbra('bob', ['group', 'send', 'crew', 'crew reply']);
  await waitForScreen(/\] Bob: crew reply\n/, "Bob's group message in the group view");

  // A message in another conversation while in the group: a notice with where it is.
  await umbra('bob', ['send', 'alice', 'psst', '--wait', '0']);
  await waitForScreen(/\(new message in bob: Bob: psst — \/switch bob\)/, 'the notice from elsewhere');
  tmux('send-keys', '-t', 'chat', '/switch 1', 'Enter');
  const back = await waitForScreen(/— Bob \(bob\) —[\s\S]*— Bob \(bob\) —[\s\S]*\nbob>$/, 'back in the conversation, its prompt last');
  assert.match(back, /psst\n(.*\n)*bob>$/, 'the conversation shown again, with the new message');

  // Receipts show where the message was sent, never as news from elsewhere (a group's frames are acknowledged on the same session).
  assert.doesNotMatch(screen(), /new message in bob: +✓/);

  tmux('send-keys', '-t', 'chat', '/nonsense', 'Enter');
  await waitForScreen(/^! unknown command \/nonsense \(\/help lists them\)$/m, 'the error line');

  tmux('send-keys', '-t', 'chat', '/quit', 'Enter');
  const deadline = Date.now() + 20_000;
  while (existsSync(join(root, 'alice', 'agent.sock')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(existsSync(join(root, 'alice', 'agent.sock')), false, 'the chat closed its socket');
  // The store is free again: a command opens it itself.
  assert.equal((JSON.parse(await umbra('alice', ['whoami'], true)) as { account: { agent: boolean } }).account.agent, false);
});

test('umbra invite: the QR code on a terminal wide enough, a sentence on a narrow one, none into a pipe', async () => {
  const shown = async (session: string, columns: number): Promise<string> => {
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} --data ${JSON.stringify(join(root, 'alice'))} invite; sleep 60`;
    tmux('new-session', '-d', '-s', session, '-x', String(columns), '-y', '80', '-e', `UMBRA_PASSPHRASE=${PASS}`, 'sh', '-c', cmd);
    tmuxStarted = true;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const s = tmux('capture-pane', '-p', '-t', session);
      if (/Single-use invitation/.test(s)) return s;
      if (Date.now() > deadline) assert.fail(`no invitation on the ${columns}-column terminal:\n${s}`);
      await new Promise((r) => setTimeout(r, 150));
    }
  };
  const wide = await shown('wide', 200);
  assert.match(wide, /[▀▄█]{20}/, 'the QR code is drawn');
  assert.doesNotMatch(wide, /columns wide/);
  const narrow = await shown('narrow', 100);
  assert.doesNotMatch(narrow, /[▀▄█]{20}/);
  assert.match(narrow, /\(The QR code is \d+ columns wide; widen the terminal to \d+ columns to see it, or copy the text\.\)/);
  const piped = JSON.parse(await umbra('alice', ['invite'], true)) as { invitation: { text: string } };
  assert.match(piped.invitation.text, /^umbra_chatintro_1_/);
  const r = await runFile(process.execPath, [BIN, '--data', join(root, 'alice'), 'invite'], { env: { ...process.env, UMBRA_PASSPHRASE: PASS }, timeoutMs: 60_000 });
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^umbra_chatintro_1_\S+\n\nSingle-use invitation/);
  assert.doesNotMatch(r.stdout, /[▀▄█]|columns wide/, 'nothing but the text into a pipe');
});

test('a command that takes a while shows a spinner on a terminal, erased at the end; none on a pipe', async () => {
  // Bob offline (no agent): Alice's accept waits the whole --wait for his answer.
  await umbra('bob', ['agent', 'stop']);
  const inv = (JSON.parse(await umbra('bob', ['invite', '--no-qr'], true)) as { invitation: { text: string } }).invitation.text;
  const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} --data ${JSON.stringify(join(root, 'alice'))} accept ${inv} --wait 8s; echo EXIT=$?; sleep 60`;
  tmux('new-session', '-d', '-s', 'spin', '-x', '100', '-y', '40', '-e', `UMBRA_PASSPHRASE=${PASS}`, 'sh', '-c', cmd);
  tmuxStarted = true;
  const pane = () => tmux('capture-pane', '-p', '-t', 'spin');
  const deadline = Date.now() + 30_000;
  while (!/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] Contacting them…/.test(pane())) {
    if (Date.now() > deadline) assert.fail(`no spinner:\n${pane()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  while (!/EXIT=0/.test(pane())) {
    if (Date.now() > deadline) assert.fail(`the accept did not end:\n${pane()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const done = pane();
  assert.doesNotMatch(done, /Contacting them…/, `the spinner is erased:\n${done}`);
  assert.match(done, /Sent a first contact to Bob/);
  const piped = await runFile(process.execPath, [BIN, '--data', join(root, 'alice'), 'list'], { env: { ...process.env, UMBRA_PASSPHRASE: PASS }, timeoutMs: 60_000 });
  assert.doesNotMatch(piped.stderr, /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
});
