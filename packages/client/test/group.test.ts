/** group/v1 in the client: 3–5 members over the memory network. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, MemoryNetwork, SqliteStore, type GroupMessageInfo } from '../src/node.ts';
import { FAST, KEY_A, connect, openMemoryClient, tempDir, waitFor } from './helpers.ts';

const T = 20_000;

function collect(c: Client): GroupMessageInfo[] {
  const got: GroupMessageInfo[] = [];
  c.on('group-message', (m) => got.push(m));
  return got;
}

/** Invite each peer through its conversation with `creator`, have it accept, wait until all are members and connected. */
async function makeGroup(creator: Client, peers: Client[], convs: Map<Client, string>, name = 'team'): Promise<string> {
  const g = await creator.groups.create(name, peers.map((p) => convs.get(p)!));
  for (const p of peers) {
    await waitFor(() => p.groups.list().some((x) => x.chatId === g.chatId && x.status === 'invited'), T, 'the invitation');
    await p.groups.accept(g.chatId);
  }
  await waitConnected([creator, ...peers], g.chatId, peers.length + 1);
  return g.chatId;
}

async function waitConnected(clients: Client[], chatId: string, count: number): Promise<void> {
  for (const c of clients) {
    await waitFor(
      () => {
        const g = c.groups.list().find((x) => x.chatId === chatId);
        return g !== undefined && g.status === 'member' && g.memberCount === count && g.pendingCount === 0;
      },
      T,
      `${c.profile.name} to be connected to ${count - 1} members`,
    );
  }
}

const textsOf = async (c: Client, chatId: string) => (await c.groups.history(chatId, { limit: 1000 })).messages.map((m) => m.text);

test('create, accept, message: same id for every member; rename; leave', async () => {
  const net = new MemoryNetwork();
  const [a, b, c] = (await Promise.all(['A', 'B', 'C'].map((n) => openMemoryClient(net.adapter(), n)))) as [Client, Client, Client];
  try {
    const convs = new Map<Client, string>();
    convs.set(b, (await connect(a, b)).id);
    convs.set(c, (await connect(a, c)).id);
    // Conversation ids are the same on both sides; A's view of them:
    const chatId = await makeGroup(a, [b, c], convs);
    assert.equal(a.groups.members(chatId).filter((m) => m.state === 'connected').length, 2);
    // B and C were introduced by A only, yet have a session of their own.
    assert.ok(b.groups.members(chatId).every((m) => m.state === 'self' || m.state === 'connected'));

    const gotB = collect(b);
    const gotC = collect(c);
    const gotA = collect(a);
    const sent = await b.groups.send(chatId, 'hello group');
    await waitFor(() => gotA.length === 1 && gotC.length === 1, T, 'the group message');
    assert.equal(gotA[0]!.id, sent.id);
    assert.equal(gotC[0]!.id, sent.id);
    assert.equal(gotC[0]!.author, b.groups.get(chatId).self);
    assert.equal(gotB.length, 0);
    // The group frames stay out of the 1:1 history.
    assert.equal((await a.history(convs.get(b)!)).messages.length, 0);

    await c.groups.rename(chatId, 'renamed');
    await waitFor(() => a.groups.get(chatId).name === 'renamed' && b.groups.get(chatId).name === 'renamed', T, 'the rename');

    await c.groups.leave(chatId);
    assert.equal(c.groups.get(chatId).status, 'left');
    await assert.rejects(c.groups.send(chatId, 'still here?'), /not a member/);
    await waitFor(() => a.groups.get(chatId).memberCount === 2 && b.groups.get(chatId).memberCount === 2, T, 'the leave');
    await a.groups.send(chatId, 'after C left');
    await waitFor(() => gotB.length === 1, T, 'B gets the message');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual((await textsOf(c, chatId)), ['hello group']);
  } finally {
    await Promise.all([a, b, c].map((x) => x.close()));
  }
});

test('add a member who knows only the adder: pending, sessions open, receives later messages; remove: nothing after', async () => {
  const net = new MemoryNetwork();
  const [a, b, c, d, e] = (await Promise.all(['A', 'B', 'C', 'D', 'E'].map((n) => openMemoryClient(net.adapter(), n)))) as [Client, Client, Client, Client, Client];
  const all = [a, b, c, d, e];
  try {
    const convs = new Map<Client, string>();
    for (const p of [b, c, d]) convs.set(p, (await connect(a, p)).id);
    const chatId = await makeGroup(a, [b, c, d], convs);
    // E knows only D.
    const de = (await connect(d, e)).id;
    await d.groups.add(chatId, de);
    await waitFor(() => e.groups.list().some((x) => x.chatId === chatId), T, 'E invited');
    assert.ok(d.groups.members(chatId).some((m) => m.state === 'invited' && m.conversationId === de));
    await e.groups.accept(chatId);
    await waitFor(() => a.groups.get(chatId).memberCount === 5, T, 'A sees E added');
    await waitConnected(all, chatId, 5);
    const eId = e.groups.get(chatId).self!;
    assert.ok(a.groups.members(chatId).some((m) => m.memberId === eId && m.state === 'connected'));

    const gotE = collect(e);
    const sent = await b.groups.send(chatId, 'welcome E');
    await waitFor(() => gotE.length === 1, T, 'E gets B');
    assert.equal(gotE[0]!.id, sent.id);
    assert.equal(gotE[0]!.author, b.groups.get(chatId).self);

    // A (admin) removes C; C gets nothing sent after.
    const cId = c.groups.get(chatId).self!;
    await a.groups.remove(chatId, cId);
    await waitFor(() => all.every((x) => x === c || x.groups.get(chatId).memberCount === 4), T, 'everyone sees the removal');
    await waitFor(() => c.groups.get(chatId).status === 'removed', T, 'C sees it was removed');
    const before = (await textsOf(c, chatId)).length;
    await e.groups.send(chatId, 'after C was removed');
    await waitFor(async () => (await textsOf(a, chatId)).includes('after C was removed') && (await textsOf(d, chatId)).includes('after C was removed'), T, 'the others get it');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await textsOf(c, chatId)).length, before);
    await assert.rejects(c.groups.send(chatId, 'x'), /not a member/);
    // Non-admins cannot remove.
    await assert.rejects(b.groups.remove(chatId, eId), /not allowed/);
  } finally {
    await Promise.all(all.map((x) => x.close()));
  }
});

test('concurrent changes from two admins converge', async () => {
  const net = new MemoryNetwork();
  const [a, b, c, d] = (await Promise.all(['A', 'B', 'C', 'D'].map((n) => openMemoryClient(net.adapter(), n)))) as [Client, Client, Client, Client];
  const all = [a, b, c, d];
  try {
    const convs = new Map<Client, string>();
    for (const p of [b, c, d]) convs.set(p, (await connect(a, p)).id);
    const chatId = await makeGroup(a, [b, c, d], convs);
    await a.groups.promote(chatId, b.groups.get(chatId).self!);
    await waitFor(() => all.every((x) => x.groups.members(chatId).filter((m) => m.admin).length === 2), T, 'B promoted everywhere');
    // Concurrent: A renames and sets a colour, B renames and promotes D.
    await Promise.all([a.groups.rename(chatId, 'from A'), b.groups.rename(chatId, 'from B'), a.groups.setColor(chatId, '#ff0000'), b.groups.promote(chatId, d.groups.get(chatId).self!)]);
    const view = (x: Client) => {
      const g = x.groups.get(chatId);
      return JSON.stringify([g.name, g.color, x.groups.members(chatId).map((m) => [m.memberId, m.admin])]);
    };
    await waitFor(() => all.every((x) => view(x) === view(a)) && a.groups.members(chatId).filter((m) => m.admin).length === 3, T, 'convergence');
    assert.ok(['from A', 'from B'].includes(a.groups.get(chatId).name));
    assert.equal(a.groups.get(chatId).color, '#ff0000');
  } finally {
    await Promise.all(all.map((x) => x.close()));
  }
});

test('restart mid-group (on-disk stores) keeps groups, keys, bindings and messages', async () => {
  const net = new MemoryNetwork();
  const dirs = ['A', 'B', 'C'].map(() => tempDir('umbra-group-'));
  const open = (i: number, name: string) => Client.open({ delivery: net.adapter(), dataDir: dirs[i]!.dir, key: KEY_A, profile: { name }, ...FAST });
  let [a, b, c] = await Promise.all([open(0, 'A'), open(1, 'B'), open(2, 'C')]);
  try {
    const convs = new Map<Client, string>();
    convs.set(b, (await connect(a, b)).id);
    convs.set(c, (await connect(a, c)).id);
    const chatId = await makeGroup(a, [b, c], convs, 'durable');
    await a.groups.send(chatId, 'one');
    await waitFor(async () => (await textsOf(b, chatId)).length === 1 && (await textsOf(c, chatId)).length === 1, T, 'one');
    const selfB = b.groups.get(chatId).self;
    const changesB = b.groups.changes(chatId);
    await b.close();
    // While B is down: a message and a rename.
    await c.groups.send(chatId, 'two');
    await a.groups.rename(chatId, 'durable 2');
    await Promise.all([a.close(), c.close()]);
    [a, b, c] = await Promise.all([open(0, 'A'), open(1, 'B'), open(2, 'C')]);
    assert.equal(b.groups.get(chatId).self, selfB);
    // The visible history (with when each change was first seen) survives the restart.
    assert.ok(changesB.length >= 4);
    assert.deepEqual(b.groups.changes(chatId).slice(0, changesB.length), changesB);
    await waitFor(async () => b.groups.get(chatId).name === 'durable 2' && (await textsOf(b, chatId)).length === 2, T, 'B catches up after restart');
    assert.deepEqual((await textsOf(b, chatId)), ['one', 'two']);
    assert.equal(a.groups.get(chatId).pendingCount, 0);
    await b.groups.send(chatId, 'three');
    await waitFor(async () => (await textsOf(a, chatId)).includes('three') && (await textsOf(c, chatId)).includes('three'), T, 'after restart');
    assert.equal((b.groups.members(chatId).filter((m) => m.state === 'connected')).length, 2);
  } finally {
    await Promise.all([a, b, c].map((x) => x.close()));
    for (const d of dirs) d.cleanup();
  }
});

test('bad input: unknown group, not invited, bad names', async () => {
  const net = new MemoryNetwork();
  const a = await openMemoryClient(net.adapter(), 'A');
  try {
    await assert.rejects(a.groups.accept('nope'), /no group/);
    await assert.rejects(a.groups.create('', []), /group name/);
    await assert.rejects(a.groups.create('x', ['00']), /conversation id/);
    const g = await a.groups.create('solo');
    await assert.rejects(a.groups.accept(g.chatId), /no pending invitation/);
    assert.equal(a.groups.members(g.chatId).length, 1);
    assert.ok(SqliteStore);
  } finally {
    await a.close();
  }
});
