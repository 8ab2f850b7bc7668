/**
 * Every `umbra` command's --json output against the one schema in docs/CLI.md, as a script runs
 * the CLI (child processes against a hub on loopback, port 0, temp data): three identities,
 * each with a background agent after `init`. Also: errors are one line with a stable code and
 * the documented exit code; argument errors come before anything is sent; with an agent
 * running, commands go to it (they run without a passphrase, the store is never opened) and
 * messages arrive and are acknowledged without any other command running; the socket is 0600.
 * A command `umbra --help` lists that this file never validated fails the last test.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHub, type Hub } from '@umbra/services';
import { killChildren, killPids, runFile } from '../../client/test/fixtures/children.ts';
import { loadCliSchema, validateAs, type Schema } from './json-schema.ts';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../bin/umbra.js');
const PASS = 'json test passphrase';
let hub: Hub;
let root: string;
let hubArg: string;
let schema: Schema;
const agentPids: number[] = [];
/** Commands whose output was validated ("send", "group send", …). */
const validated = new Set<string>();

const dataOf = (who: string) => join(root, who);

/** The environment of a run: with the passphrase only where the store must be opened here. */
function env(withPassphrase: boolean): NodeJS.ProcessEnv {
  const e = { ...process.env };
  delete e.UMBRA_PASSPHRASE;
  return withPassphrase ? { ...e, UMBRA_PASSPHRASE: PASS } : e;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function umbra(who: string, args: string[], withPassphrase = false): Promise<Run> {
  const r = await runFile(process.execPath, [BIN, '--data', dataOf(who), '--json', ...args], { env: env(withPassphrase), timeoutMs: 60_000 });
  return { code: r.code ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** The command's name as the schema table in docs/CLI.md lists it: "send", "group send", "agent status". */
function commandName(args: string[]): string {
  const words = args.filter((a, i) => !a.startsWith('-') && !['--hub', '--data', '--mailbox', '--transport', '--bootstrap'].includes(args[i - 1]!));
  return ['group', 'agent'].includes(words[0]!) ? `${words[0]} ${words[1]}` : words[0]!;
}

/** Run, expect success, parse the one JSON document on stdout and validate it as `definition`. */
async function json<T>(definition: string, who: string, args: string[], withPassphrase = false): Promise<T> {
  const r = await umbra(who, args, withPassphrase);
  assert.equal(r.code, 0, `umbra ${args.join(' ')} failed (${r.code}): ${r.stdout}${r.stderr}`);
  let value: unknown;
  try {
    value = JSON.parse(r.stdout);
  } catch {
    assert.fail(`umbra ${args.join(' ')}: stdout is not one JSON document:\n${r.stdout}`);
  }
  const errors = validateAs(schema, definition, value);
  assert.deepEqual(errors, [], `umbra --json ${args.join(' ')} against ${definition}:\n${errors.join('\n')}\n${r.stdout}`);
  validated.add(commandName(args));
  return value as T;
}

/** Run, expect this failure: exit code, one line of JSON on stdout with this code, nothing on stderr. */
async function fails(who: string, args: string[], code: string, exit: number, withPassphrase = false): Promise<{ code: string; message: string; hint: string | null }> {
  const r = await umbra(who, args, withPassphrase);
  assert.equal(r.code, exit, `umbra ${args.join(' ')}: exit ${r.code}, wanted ${exit}: ${r.stdout}${r.stderr}`);
  assert.equal(r.stdout.split('\n').filter((l) => l !== '').length, 1, `one line: ${r.stdout}`);
  assert.equal(r.stderr, '', 'nothing on stderr in --json mode');
  const doc = JSON.parse(r.stdout) as { error: { code: string; message: string; hint: string | null } };
  assert.deepEqual(validateAs(schema, 'ErrorOutput', doc), []);
  assert.equal(doc.error.code, code, r.stdout);
  return doc.error;
}

/** Poll a --json command until `done` holds (an agent receives in the background: nothing else runs). */
async function until<T>(definition: string, who: string, args: string[], done: (v: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await json<T>(definition, who, args);
    if (done(v)) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(v).slice(0, 400)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

type Conversation = { handle: string; name: string; peerName: string; state: string; verified: string; alias: string | null };
type Message = { text: string | null; outgoing: boolean; state: string; recipients?: { state: string; name: string | null }[] };

before(async () => {
  schema = loadCliSchema();
  root = mkdtempSync(join(tmpdir(), 'umbra-cli-json-'));
  hub = await startHub({ dataDir: join(root, 'hub'), port: 0, ssaRetry: { baseMs: 50, maxMs: 500 } });
  hubArg = [hub.issuer, hub.ssa, ...hub.rsas].join(',');
});

after(async () => {
  try {
    // The agents are detached (their own process groups): stop them, then make sure.
    for (const who of ['alice', 'bob', 'carol']) if (existsSync(join(dataOf(who), 'agent.sock'))) await umbra(who, ['agent', 'stop']).catch(() => undefined);
    killPids(agentPids);
    await killChildren();
    await hub?.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

describe('umbra --json against docs/CLI.md', () => {
  test('init, whoami and the agent: commands go to it (no passphrase needed), its socket is 0600', async () => {
    const accounts = await Promise.all(
      (['alice', 'bob', 'carol'] as const).map((who) => json<{ account: { name: string; agent: boolean; transport: { kind: string } } }>('AccountOutput', who, ['--hub', hubArg, 'init', '--name', who[0]!.toUpperCase() + who.slice(1)], true)),
    );
    assert.deepEqual(accounts.map((a) => [a.account.name, a.account.transport.kind]), [['Alice', 'hub'], ['Bob', 'hub'], ['Carol', 'hub']]);
    const local = await json<{ account: { agent: boolean } }>('AccountOutput', 'alice', ['whoami'], true);
    assert.equal(local.account.agent, false);
    await fails('alice', ['whoami'], 'usage', 2); // no agent, no passphrase: it cannot open the store
    assert.equal((await json<{ agent: { running: boolean } }>('AgentOutput', 'alice', ['agent', 'status'])).agent.running, false);

    const started = await Promise.all(['alice', 'bob', 'carol'].map((who) => json<{ agent: { running: boolean; pid: number; mode: string } }>('AgentOutput', who, ['agent', 'start'], true)));
    for (const s of started) {
      agentPids.push(s.agent.pid);
      assert.equal(s.agent.running, true);
      assert.equal(s.agent.mode, 'agent');
    }
    assert.equal(statSync(join(dataOf('alice'), 'agent.sock')).mode & 0o777, 0o600);
    assert.equal(statSync(dataOf('alice')).mode & 0o077, 0, 'the data directory is private');
    // Without a passphrase: only the agent can have answered.
    const viaAgent = await json<{ account: { agent: boolean } }>('AccountOutput', 'alice', ['whoami']);
    assert.equal(viaAgent.account.agent, true);
    const status = await json<{ agent: { running: boolean; pid: number } }>('AgentOutput', 'alice', ['agent', 'status']);
    assert.equal(status.agent.pid, started[0]!.agent.pid);
    await fails('alice', ['agent', 'start'], 'agent', 4, true); // one agent per identity
  });

  let invitation = '';
  test('invite, accept, send, read (paging), rename, verify --mark, block and allow, list', async () => {
    invitation = (await json<{ invitation: { text: string; reusable: boolean } }>('InviteOutput', 'alice', ['invite', '--no-qr'])).invitation.text;
    // Alice's agent answers the first contact while nothing else runs for her.
    const accepted = await json<{ conversation: Conversation; state: string }>('AcceptOutput', 'bob', ['accept', invitation, '--wait', '20s']);
    assert.equal(accepted.state, 'started');
    assert.equal(accepted.conversation.handle, 'alice');
    assert.equal(accepted.conversation.state, 'active');
    await fails('bob', ['accept', invitation], 'invitation-already-used', 1);
    // Someone else answers the used invitation: Alice's agent answers with a signed refusal, and
    // Carol is told so (not "started", not a wait for an answer that never comes).
    await fails('carol', ['accept', invitation, '--wait', '20s'], 'invitation-refused', 1);
    const carols = await json<{ conversations: (Conversation & { refusal: { reason: string } | null })[] }>('ListOutput', 'carol', ['list']);
    assert.deepEqual(carols.conversations.map((c) => [c.handle, c.state, c.refusal?.reason]), [['alice', 'refused', 'invitation-used']]);
    await fails('carol', ['send', 'alice', 'hello?'], 'invitation-refused', 1);

    const one = await json<{ message: Message }>('SendOutput', 'bob', ['send', 'alice', 'one', '--wait', '20s']);
    assert.equal(one.message.state, 'delivered', 'acknowledged by the agent on the other side');
    const two = await json<{ message: Message }>('SendOutput', 'bob', ['send', '1', 'two', '--wait', '20s']);
    assert.equal(two.message.state, 'delivered');

    const latest = await json<{ messages: Message[]; cursor: string | null }>('ReadOutput', 'alice', ['read', 'bob', '-n', '1']);
    assert.deepEqual(latest.messages.map((m) => m.text), ['two']);
    assert.notEqual(latest.cursor, null);
    const older = await json<{ messages: Message[]; cursor: string | null }>('ReadOutput', 'alice', ['read', 'bob', '-n', '1', '--before', latest.cursor!]);
    assert.deepEqual(older.messages.map((m) => m.text), ['one']);
    await fails('alice', ['read', 'bob', '--before', 'not-a-cursor'], 'usage', 2);

    const renamed = await json<{ conversation: Conversation }>('ConversationOutput', 'alice', ['rename', 'bob', 'Robert']);
    assert.deepEqual([renamed.conversation.handle, renamed.conversation.name, renamed.conversation.alias, renamed.conversation.peerName], ['bob', 'Robert', 'Robert', 'Bob']);
    const verified = await json<{ conversation: Conversation }>('VerifyOutput', 'alice', ['verify', 'robert', '--mark', '--no-qr']);
    assert.equal(verified.conversation.verified, 'yes');

    const blocked = await json<{ conversation: Conversation }>('ConversationOutput', 'alice', ['block', 'robert']);
    assert.equal(blocked.conversation.state, 'blocked');
    await fails('alice', ['send', 'robert', 'into the void'], 'blocked', 1);
    assert.equal((await json<{ conversation: Conversation }>('ConversationOutput', 'alice', ['allow', 'bob'])).conversation.state, 'active');

    const list = await json<{ conversations: Conversation[] }>('ListOutput', 'alice', ['list']);
    assert.deepEqual(list.conversations.map((c) => [c.handle, c.name, c.verified]), [['bob', 'Robert', 'yes']]);
  });

  test('errors: one line, a stable code, the documented exit code; argument errors before anything is sent', async () => {
    await fails('bob', ['send', 'alice', 'twice?', '--wait', 'forever'], 'usage', 2);
    await fails('bob', ['send', 'alice', 'hi', '--bogus'], 'usage', 2);
    await fails('bob', ['frobnicate'], 'usage', 2);
    await fails('bob', ['contact', 'someone'], 'usage', 2);
    await fails('bob', ['read', '1', '-n', 'many'], 'usage', 2);
    await fails('bob', ['invite', '--ttl', 'soon'], 'usage', 2);
    await fails('bob', ['register', 'Not A Name'], 'usage', 2);
    await fails('bob', ['read', 'nobody'], 'not-found', 3);
    await fails('bob', ['group', 'read', 'nothing'], 'not-found', 3);
    await fails('bob', ['accept', 'umbra_chatintro_1_garbage'], 'invitation-invalid', 1);
    await fails('bob', ['accept', invitation.slice(0, -10)], 'invitation-invalid', 1);
    await fails('nobody', ['list'], 'no-identity', 3, true);
    // A dead end seen before anything is sent: an invitation only a local mailbox can answer.
    await json('AccountOutput', 'mallory', ['--mailbox', join(root, 'mailbox.db'), 'init', '--name', 'Mallory'], true);
    const local = await json<{ invitation: { text: string } }>('InviteOutput', 'mallory', ['invite', '--no-qr'], true);
    const wrong = await runFile(process.execPath, [BIN, '--data', dataOf('mallory'), '--json', 'whoami'], { env: { ...env(false), UMBRA_PASSPHRASE: 'not the passphrase' }, timeoutMs: 60_000 });
    assert.equal(wrong.code, 5);
    assert.equal((JSON.parse(wrong.stdout) as { error: { code: string } }).error.code, 'wrong-passphrase');
    const before = (await json<{ conversations: Conversation[] }>('ListOutput', 'bob', ['list'])).conversations.length;
    const mismatch = await fails('bob', ['accept', local.invitation.text], 'transport-mismatch', 1);
    assert.match(mismatch.message, /can only be answered through Waku or a local mailbox; this identity uses hub /);
    assert.equal((await json<{ conversations: Conversation[] }>('ListOutput', 'bob', ['list'])).conversations.length, before, 'no conversation was started');
    // Nothing of the refused sends left Bob.
    const bobRead = await json<{ messages: Message[] }>('ReadOutput', 'bob', ['read', 'alice']);
    assert.deepEqual(bobRead.messages.map((m) => m.text), ['one', 'two']);
    // Text mode: one line on stderr, with the hint; no stack trace.
    const r = await runFile(process.execPath, [BIN, '--data', dataOf('bob'), 'send', 'alice', 'x', '--wait', 'forever'], { env: env(false), timeoutMs: 60_000 });
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^umbra: --wait: "forever" is not a duration \(examples: .*\)\n$/);
    // --debug: the same line, then where it failed.
    const debug = await runFile(process.execPath, [BIN, '--data', dataOf('bob'), '--debug', 'read', 'nobody'], { env: env(false), timeoutMs: 60_000 });
    assert.equal(debug.code, 3);
    assert.match(debug.stderr, /^umbra: no conversation "nobody" \(.*\)\nCliError: no conversation "nobody"\n\s+at /);
  });

  test('directory: register, contact with approval (pending, approve, started), requests, allow, monitor', async () => {
    const dir = ['--directory', hub.directory];
    const host = new URL(hub.directory).host;
    const reg = await json<{ registration: { address: string } }>('RegisterOutput', 'carol', ['register', 'carol', '--policy', 'approval', '--packages', '3', ...dir]);
    assert.equal(reg.registration.address, `carol@${host}`);
    const asked = await json<{ contact: { state: string; requestId: string | null } }>('ContactOutput', 'alice', ['contact', `carol@${host}`, '--note', 'Alice here']);
    assert.equal(asked.contact.state, 'pending');
    const pending = await json<{ approvals: { name: string; requestId: string; note: string }[] }>('RequestsOutput', 'carol', ['requests']);
    assert.deepEqual(pending.approvals.map((a) => [a.name, a.requestId, a.note]), [['carol', asked.contact.requestId, 'Alice here']]);
    await json('ApproveOutput', 'carol', ['approve', 'carol', asked.contact.requestId!, ...dir]);
    const contact = await json<{ contact: { state: string; conversation: Conversation } }>('ContactOutput', 'alice', ['contact', `carol@${host}`, '--request', asked.contact.requestId!]);
    assert.equal(contact.contact.state, 'started');
    const req = await until<{ requests: Conversation[] }>('RequestsOutput', 'carol', ['requests'], (v) => v.requests.length === 1, "Alice's first contact at Carol");
    assert.equal(req.requests[0]!.state, 'request');
    assert.equal((await json<{ conversation: Conversation }>('ConversationOutput', 'carol', ['allow', req.requests[0]!.handle])).conversation.state, 'active');
    // Numbers and handles do not move when someone else writes: Carol writes last, Bob stays 1.
    await json('SendOutput', 'carol', ['send', req.requests[0]!.handle, 'hello Alice', '--wait', '20s']);
    const numbered = await until<{ conversations: (Conversation & { number: number; unread: number })[] }>('ListOutput', 'alice', ['list'], (v) => v.conversations.some((c) => c.handle === 'carol' && c.unread === 1), "Carol's message at Alice");
    assert.deepEqual(numbered.conversations.map((c) => [c.number, c.handle]), [[1, 'bob'], [2, 'carol']]);
    const toOne = await json<{ message: { chat: { handle: string } } }>('SendOutput', 'alice', ['send', '1', 'still you, Bob', '--wait', '0']);
    assert.equal(toOne.message.chat.handle, 'bob');
    const mon = await json<{ directories: { url: string; newAlerts: string[] }[] }>('MonitorOutput', 'carol', ['monitor']);
    assert.deepEqual(mon.directories.map((d) => d.newAlerts), [[]]);
  });

  test('groups: create, list, accept, members, send (per-member states), read, rename, promote, remove, add again, leave', async () => {
    const created = await json<{ group: { handle: string; members: number } }>('GroupOutput', 'alice', ['group', 'create', 'crew', 'robert']);
    assert.equal(created.group.handle, 'crew');
    await until<{ groups: { status: string }[] }>('GroupListOutput', 'bob', ['group', 'list'], (v) => v.groups[0]?.status === 'invited', 'the invitation at Bob');
    await json('GroupOutput', 'bob', ['group', 'accept', 'crew']);
    await until<{ groups: { members: number; pending: number }[] }>('GroupListOutput', 'alice', ['group', 'list'], (v) => v.groups[0]?.members === 2 && v.groups[0]?.pending === 0, 'Bob in the group');
    const members = await json<{ members: { state: string; name: string | null }[] }>('MembersOutput', 'alice', ['group', 'members', 'crew']);
    assert.deepEqual(members.members.map((m) => m.state).sort(), ['connected', 'self']);
    const sent = await json<{ message: Message }>('SendOutput', 'alice', ['group', 'send', 'crew', 'hi', 'all']);
    assert.deepEqual(sent.message.recipients?.map((r) => [r.name, r.state]), [['Bob', 'queued']]);
    assert.equal(sent.message.state, 'sent');
    await until<{ items: { type: string; text: string }[] }>('GroupReadOutput', 'bob', ['group', 'read', 'crew'], (v) => v.items.some((i) => i.type === 'message' && i.text === 'hi all'), 'the group message at Bob');
    await json('GroupOutput', 'alice', ['group', 'rename', 'crew', 'crew two']);
    const removed = await json<{ group: { members: number } }>('GroupOutput', 'alice', ['group', 'remove', 'crew', 'robert']);
    assert.equal(removed.group.members, 1);
    await fails('alice', ['group', 'send', 'crew', 'anyone?'], 'nobody-to-receive', 1);
    const again = await json<{ outcome: string; conversation: Conversation }>('GroupAddOutput', 'alice', ['group', 'add', 'crew', 'robert']);
    assert.equal(again.outcome, 're-invited');
    assert.equal(again.conversation.handle, 'bob');
    await until<{ groups: { status: string }[] }>('GroupListOutput', 'bob', ['group', 'list'], (v) => v.groups[0]?.status === 'invited', 'the second invitation at Bob');
    await json('GroupOutput', 'bob', ['group', 'accept', 'crew']);
    await until<{ groups: { members: number; pending: number }[] }>('GroupListOutput', 'alice', ['group', 'list'], (v) => v.groups[0]?.members === 2 && v.groups[0]?.pending === 0, 'Bob back in the group');
    const promoted = await json<{ group: { members: number } }>('GroupOutput', 'alice', ['group', 'promote', 'crew', 'robert']);
    assert.equal(promoted.group.members, 2);
    const refused = await fails('alice', ['group', 'remove', 'crew', 'robert'], 'not-allowed', 1);
    assert.equal(refused.message, 'Robert is an admin of crew two, and admins cannot be removed');
    const read = await json<{ items: { type: string; kind?: string }[]; cursor: string | null }>('GroupReadOutput', 'alice', ['group', 'read', 'crew', '-n', '3']);
    assert.equal(read.items.length, 3);
    assert.notEqual(read.cursor, null);
    const earlier = await json<{ items: { type: string; kind?: string }[] }>('GroupReadOutput', 'alice', ['group', 'read', 'crew', '-n', '100', '--before', read.cursor!]);
    assert.equal(earlier.items[0]!.kind, 'created');
    const left = await json<{ group: { status: string } }>('GroupOutput', 'alice', ['group', 'leave', 'crew']);
    assert.equal(left.group.status, 'left');
  });

  test('agent stop, or a killed agent: commands open the store themselves again; a new agent takes a stale socket', async () => {
    const stopped = await json<{ agent: { running: boolean } }>('AgentOutput', 'alice', ['agent', 'stop']);
    assert.equal(stopped.agent.running, false);
    assert.equal(existsSync(join(dataOf('alice'), 'agent.sock')), false);
    assert.equal((await json<{ agent: { running: boolean } }>('AgentOutput', 'alice', ['agent', 'status'])).agent.running, false);
    assert.equal((await json<{ account: { agent: boolean } }>('AccountOutput', 'alice', ['whoami'], true)).account.agent, false);
    // An agent killed outright leaves its socket file: commands open the store themselves, and a new agent takes the socket over.
    const bobPid = (await json<{ agent: { pid: number } }>('AgentOutput', 'bob', ['agent', 'status'])).agent.pid;
    process.kill(bobPid, 'SIGKILL');
    const gone = Date.now() + 10_000;
    while (Date.now() < gone && (await json<{ agent: { running: boolean } }>('AgentOutput', 'bob', ['agent', 'status'])).agent.running) await new Promise((r) => setTimeout(r, 100));
    assert.equal(existsSync(join(dataOf('bob'), 'agent.sock')), true, 'the stale socket is still there');
    assert.equal((await json<{ account: { agent: boolean } }>('AccountOutput', 'bob', ['whoami'], true)).account.agent, false);
    const restarted = await json<{ agent: { pid: number; running: boolean } }>('AgentOutput', 'bob', ['agent', 'start'], true);
    agentPids.push(restarted.agent.pid);
    assert.equal((await json<{ account: { agent: boolean } }>('AccountOutput', 'bob', ['whoami'])).account.agent, true);
  });

  test('every command `umbra --help` lists was validated', async () => {
    const help = async (args: string[]) => (await runFile(process.execPath, [BIN, ...args, '--help'], { env: env(false), timeoutMs: 60_000 })).stdout;
    const commandsOf = (text: string) => [...text.split('Commands:')[1]!.matchAll(/^ {2}([a-z]+)[|\s]/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    const all = [
      ...commandsOf(await help([])).filter((c) => !['group', 'agent'].includes(c)),
      ...commandsOf(await help(['group'])).map((c) => `group ${c}`),
      ...commandsOf(await help(['agent'])).map((c) => `agent ${c}`),
    ];
    // Not scripted commands: the operator's servers, the interactive chat, the agent's foreground run.
    const interactive = new Set(['hub', 'serve', 'chat', 'agent run']);
    const missing = all.filter((c) => !interactive.has(c) && !validated.has(c));
    assert.deepEqual(missing, [], `commands whose --json output no test validated: ${missing.join(', ')}`);
    assert.ok(all.length > 30, `found the commands in --help (${all.join(', ')})`);
  });
});
