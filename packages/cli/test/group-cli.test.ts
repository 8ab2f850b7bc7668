/**
 * `umbra group read`, `add` and `send` as the person at the terminal sees them: the membership
 * changes (with who did them) interleaved with the messages, in text and --json; "Invited"
 * only when an invitation went out; "nothing sent" when nobody is left. First in-process
 * clients over the memory network feed the functions the commands print from; then the real
 * command, as child processes against a hub on loopback (port 0, temp data).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, MemoryNetwork, SqliteStore, type ConversationInfo } from '@umbra/client/node';
import { startHub, type Hub } from '@umbra/services';
import { killChildren, killPids } from '../../client/test/fixtures/children.ts';
import { runUmbra, type UmbraRun } from './run-umbra.ts';
import { groupReadItems } from '../src/group.ts';
import { changeText } from '../src/format.ts';

const FAST = { retry: { initialMs: 100, maxMs: 400 }, ackDelayMs: 2, missingGraceMs: 20, fastRetransmitMs: 20, syncIntervalMs: 0 } as const;
const T = 20_000;

async function waitFor(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const start = Date.now();
  while (!(await cond())) {
    if (Date.now() - start > T) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function open(net: MemoryNetwork, name: string): Promise<Client> {
  return Client.open({ delivery: net.adapter(), store: await SqliteStore.open({ path: ':memory:', key: new Uint8Array(32).fill(7) }), profile: { name }, ...FAST });
}

async function connect(alice: Client, bob: Client): Promise<ConversationInfo> {
  const inv = await bob.createInvitation();
  const conv = await alice.accept(inv.text);
  await waitFor(async () => (await bob.conversations()).some((c) => c.id === conv.id) && (await alice.pendingCount(conv.id)) === 0, 'the conversation');
  return conv;
}

test('group read: changes with their authors between the messages; re-add says "re-invited"', async () => {
  const net = new MemoryNetwork();
  const [alice, bob, carol] = (await Promise.all(['Alice', 'Bob', 'Carol'].map((n) => open(net, n)))) as [Client, Client, Client];
  try {
    const toBob = (await connect(alice, bob)).id;
    const toCarol = (await connect(alice, carol)).id;
    const { chatId } = await alice.groups.create('crew', [toBob, toCarol]);
    for (const x of [bob, carol]) {
      await waitFor(() => x.groups.list().some((g) => g.chatId === chatId && g.status === 'invited'), 'the invitation');
      await x.groups.accept(chatId);
    }
    await waitFor(() => [alice, bob, carol].every((x) => x.groups.list().some((g) => g.chatId === chatId && g.memberCount === 3 && g.pendingCount === 0)), 'the group');
    await alice.groups.send(chatId, 'hi all');
    await waitFor(async () => (await bob.groups.history(chatId)).messages.length === 1, 'the message');
    await alice.groups.rename(chatId, 'crew 2');
    await alice.groups.remove(chatId, carol.groups.get(chatId).self!);
    await waitFor(() => bob.groups.get(chatId).memberCount === 2 && bob.groups.get(chatId).name === 'crew 2', 'the rename and removal');

    const { items } = await groupReadItems(bob, chatId, { limit: 100 });
    const lines = items.map((i) => (i.type === 'message' ? `msg ${i.text}` : `chg ${i.text}`));
    // Alice is known to Bob by her display name; Bob sees himself as "you".
    for (const want of ['chg Alice created the group "crew"', 'chg Alice added you', 'chg Alice renamed the group to "crew 2"', 'msg hi all']) {
      assert.ok(lines.includes(want), `missing "${want}" in:\n${lines.join('\n')}`);
    }
    // Carol is a member Bob reached through her card: her name comes from that session.
    assert.ok(lines.includes('chg Alice removed Carol'), lines.join('\n'));
    assert.ok(lines.indexOf('msg hi all') < lines.indexOf('chg Alice renamed the group to "crew 2"'), 'in the order Bob learned of them');
    // --json: every item says what it is; changes carry the author's id and name.
    const json = JSON.parse(JSON.stringify(items)) as { type: string; kind?: string; author: string; authorName: string | null }[];
    const rename = json.find((i) => i.type === 'change' && i.kind === 'renamed')!;
    assert.equal(rename.author, alice.groups.get(chatId).self);
    assert.equal(rename.authorName, 'Alice');
    assert.ok(json.some((i) => i.type === 'message'));
    // -n keeps the latest items.
    const latest = await groupReadItems(bob, chatId, { limit: 2 });
    assert.deepEqual(latest.items, items.slice(-2));
    // … and its cursor pages back to the rest, each item once, in the same order.
    const older: typeof items = [];
    for (let cursor = latest.cursor; cursor !== null; ) {
      const page = await groupReadItems(bob, chatId, { limit: 2, before: cursor });
      older.unshift(...page.items);
      cursor = page.cursor;
    }
    assert.deepEqual([...older, ...latest.items], items);
    // Unknown names fall back to a short id.
    assert.match(changeText({ ...bob.groups.changes(chatId)[0]!, authorName: null }), /^0x04[0-9a-f]{8}… created/);

    const again = await alice.groups.add(chatId, toCarol);
    assert.equal(again.outcome, 're-invited');
    assert.equal((await alice.groups.add(chatId, toCarol)).outcome, 'already-invited');
  } finally {
    await Promise.all([alice, bob, carol].map((x) => x.close()));
  }
});

// ---- the command itself ----------------------------------------------------------------------

let hub: Hub | undefined;
let root: string;
/** Detached agents (their own process groups): killed by pid in after(). */
const agentPids: number[] = [];

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'umbra-group-cli-'));
  hub = await startHub({ dataDir: join(root, 'hub'), port: 0, ssaRetry: { baseMs: 50, maxMs: 500 } });
});

after(async () => {
  try {
    killPids(agentPids);
    await killChildren(); // any umbra run a failed or timed-out test left behind
    await hub?.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

function umbra(args: string[]): Promise<UmbraRun> {
  return runUmbra(args, 'group cli test passphrase');
}

async function ok(args: string[]): Promise<string> {
  const r = await umbra(args);
  assert.equal(r.code, 0, `umbra ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Run `args` (as JSON) until `done` holds; each run also syncs. Every CLI run pays Argon2id and start-up. */
async function until<V>(args: string[], done: (v: V) => boolean, what: string, also?: string[]): Promise<V> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const v = JSON.parse(await ok(args)) as V;
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    if (also !== undefined) await ok(also);
  }
}

test('umbra group: create, accept, remove, add again ("Invited again", then "already has a pending invitation"), read shows who did what, send alone is refused', async () => {
  const hubArg = [hub!.issuer, hub!.ssa, ...hub!.rsas].join(',');
  const alice = ['--data', join(root, 'alice')];
  const bob = ['--data', join(root, 'bob')];
  await ok([...alice, '--hub', hubArg, 'init', '--name', 'Alice']);
  await ok([...bob, '--hub', hubArg, 'init', '--name', 'Bob']);
  // Bob keeps an agent (his side answers at once); Alice runs each command in its own process.
  agentPids.push((JSON.parse(await ok([...bob, '--json', 'agent', 'start'])) as { agent: { pid: number } }).agent.pid);
  const inv = JSON.parse(await ok([...alice, '--json', 'invite'])) as { invitation: { text: string } };
  await ok([...bob, 'accept', inv.invitation.text, '--wait', '0']);
  await until<{ conversations: { peerName: string }[] }>([...alice, '--json', 'list'], (l) => l.conversations.some((c) => c.peerName === 'Bob'), 'Alice to see Bob', [...bob, 'list']);

  assert.match(await ok([...alice, 'group', 'create', 'crew', 'Bob']), /^Created: crew/);
  await until<{ groups: { status: string }[] }>([...bob, '--json', 'group', 'list'], (l) => l.groups.some((x) => x.status === 'invited'), 'the invitation', [...alice, 'group', 'list']);
  assert.match(await ok([...bob, 'group', 'accept', 'crew']), /^Joining: crew/);
  await until<{ groups: { members: number }[] }>([...alice, '--json', 'group', 'list'], (l) => l.groups[0]?.members === 2, 'Bob to be added', [...bob, 'group', 'list']);
  await until<{ groups: { status: string }[] }>([...bob, '--json', 'group', 'list'], (l) => l.groups[0]?.status === 'member', 'Bob to be a member', [...alice, 'group', 'list']);
  // Bob's MEMBER_JOINED rides in his hello to Alice.
  await until<{ items: { kind?: string }[] }>([...alice, '--json', 'group', 'read', 'crew'], (l) => l.items.some((i) => i.kind === 'joined'), "Bob's joined", [...bob, 'group', 'list']);

  assert.match(await ok([...alice, 'group', 'remove', 'crew', 'Bob']), /^Removed: crew \(crew; 1 member\)/);
  const again = await ok([...alice, 'group', 'add', 'crew', 'Bob']);
  assert.match(again, /^Invited again \(they were a member before\): Bob to crew\./);
  assert.match(await ok([...alice, 'group', 'add', 'crew', 'Bob']), /^Bob already has a pending invitation to crew; nothing sent\./);

  const sendAlone = await umbra([...alice, 'group', 'send', 'crew', 'anyone?']);
  assert.equal(sendAlone.code, 1);
  assert.match(sendAlone.stderr, /nobody else is in this group: nothing sent/);

  const text = await ok([...alice, 'group', 'read', 'crew']);
  for (const line of ['* You created the group "crew"', '* You added Bob', '* Bob joined', '* You removed Bob']) assert.ok(text.includes(line), `"${line}" in:\n${text}`);
  const { items } = JSON.parse(await ok([...alice, '--json', 'group', 'read', 'crew'])) as { items: { type: string; kind: string; byMe: boolean; text: string }[] };
  assert.deepEqual(
    items.filter((i) => i.type === 'change').map((i) => `${i.kind}:${i.byMe ? 'me' : 'other'}`),
    ['created:me', 'added:me', 'joined:other', 'removed:me'],
  );
});
