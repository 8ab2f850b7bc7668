/**
 * group/v1 integrity end to end (issue 13): a removed member loses the group, one member cannot
 * fork it, a session is bound once, re-adding works, and the history shows every change with
 * its author. Three to four members over the memory network.
 *
 * The attacks are played by a real client whose internals the test reaches into (its group key,
 * its sessions, its frame sender): that is exactly what a modified client could do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromBinary } from '@bufbuild/protobuf';
import { fromHex, group as G, type CryptoProvider } from '@umbra/protocol';
import { Client, GroupError, MemoryNetwork, SqliteStore, type GroupChangeInfo, type GroupRejectedInfo } from '../src/node.ts';
import { decodeGroupFrameBody, encodeGroupFrameBody } from '../src/group/groups.ts';
import type { StoreBatch } from '../src/store.ts';
import { FAST, KEY_A, connect, waitFor } from './helpers.ts';

const T = 20_000;

// ---- reaching into a client, as a modified client would ------------------------------------

interface GroupsInternals {
  readonly host: {
    readonly crypto: CryptoProvider;
    serial<R>(fn: () => R): Promise<R>;
    sendFramesLocked(frames: readonly { conversationId: string; frame: Uint8Array }[], extra: StoreBatch): void;
    readonly sessions: { bind(session: { conversationId: string }, chatId: string, groupKey: G.GroupKeyPair): G.GroupBinding | undefined };
  };
  readonly groups: Map<string, { rec: { key: string | null; bindings: Record<string, string> }; events: readonly G.GroupEvent[]; state: G.GroupState }>;
}

const internals = (c: Client) => c.groups as unknown as GroupsInternals;
const groupOf = (c: Client, chatId: string) => internals(c).groups.get(chatId)!;
const ownKey = (c: Client, chatId: string) => G.groupKeyFromSecret(fromHex(groupOf(c, chatId).rec.key!)!);

/** Send raw group frames over this client's own sessions. */
async function sendRaw(c: Client, frames: { conversationId: string; frame: Uint8Array }[]): Promise<void> {
  const host = internals(c).host;
  await host.serial(() => host.sendFramesLocked(frames, {}));
  await waitFor(async () => {
    for (const f of frames) if ((await c.pendingCount(f.conversationId)) !== 0) return false;
    return true;
  }, T, 'the raw frames to be acknowledged');
}

// ---- a wire tap: every group message a client's store is asked to keep --------------------

interface Tapped {
  readonly texts: string[];
}

async function tappedStore(): Promise<{ store: SqliteStore; tap: Tapped }> {
  const store = await SqliteStore.open({ path: ':memory:', key: KEY_A });
  const tap: Tapped = { texts: [] };
  const write = store.write.bind(store);
  store.write = async (batch: StoreBatch) => {
    for (const m of batch.messages ?? []) {
      if (m.group !== true || m.outgoing) continue;
      const body = decodeGroupFrameBody(m.body);
      if (body?.case !== 'group' || body.value.kind.case !== 'membershipUpdate') continue;
      const update = fromBinary(G.MembershipUpdateMessageSchema, body.value.kind.value);
      if (update.chatEntity.case !== 'message') continue;
      const msg = G.decodeGroupChatMessage(update.chatEntity.value);
      if (msg.ok) tap.texts.push(msg.value.text);
    }
    await write(batch);
  };
  return { store, tap };
}

async function open(net: MemoryNetwork, name: string, store?: SqliteStore): Promise<Client> {
  return Client.open({ delivery: net.adapter(), store: store ?? await SqliteStore.open({ path: ':memory:', key: KEY_A }), profile: { name }, ...FAST });
}

// ---- group helpers -------------------------------------------------------------------------

async function waitConnected(clients: readonly Client[], chatId: string, count: number): Promise<void> {
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

/** `creator` invites each peer through their conversation; each accepts; all end connected. */
async function makeGroup(creator: Client, peers: readonly Client[], name = 'team'): Promise<{ chatId: string; convs: Map<Client, string> }> {
  const convs = new Map<Client, string>();
  for (const p of peers) convs.set(p, (await connect(creator, p)).id);
  const g = await creator.groups.create(name, peers.map((p) => convs.get(p)!));
  for (const p of peers) {
    await waitFor(() => p.groups.list().some((x) => x.chatId === g.chatId && x.status === 'invited'), T, 'the invitation');
    await p.groups.accept(g.chatId);
  }
  await waitConnected([creator, ...peers], g.chatId, peers.length + 1);
  return { chatId: g.chatId, convs };
}

/** What must be equal at every honest member. */
function view(c: Client, chatId: string): string {
  const g = c.groups.get(chatId);
  const members = c.groups.members(chatId).filter((m) => m.memberId !== null);
  return JSON.stringify([g.name, g.color, members.map((m) => m.memberId).sort(), members.filter((m) => m.admin).map((m) => m.memberId).sort()]);
}

const textsOf = async (c: Client, chatId: string) => (await c.groups.history(chatId, { limit: 1000 })).messages.map((m) => m.text);

function collectRejected(c: Client): GroupRejectedInfo[] {
  const got: GroupRejectedInfo[] = [];
  c.on('group-rejected', (r) => got.push(r));
  return got;
}

/** Remove `victim` (as admin `admin`) and wait until every other client and the victim know. */
async function removeAndWait(admin: Client, victim: Client, others: readonly Client[], chatId: string): Promise<void> {
  await admin.groups.remove(chatId, victim.groups.get(chatId).self!);
  const count = admin.groups.get(chatId).memberCount;
  await waitFor(() => others.every((x) => x.groups.get(chatId).memberCount === count), T, 'everyone to see the removal');
  await waitFor(() => victim.groups.get(chatId).status === 'removed', T, 'the victim to see its removal');
}

// ---- (a) backdated re-entry ----------------------------------------------------------------

test('backdated re-entry: a removed member re-adding a fresh key of hers at the removal clock is rejected by everyone, and she receives nothing after the removal', async () => {
  const net = new MemoryNetwork();
  const tapped = await tappedStore();
  const [a, b, c] = await Promise.all(['A', 'B', 'C'].map((n) => open(net, n)));
  const m = await open(net, 'M', tapped.store);
  const honest = [a!, b!, c!];
  try {
    const { chatId } = await makeGroup(a!, [b!, c!, m]);
    const rejectedAt = honest.map(collectRejected);
    await removeAndWait(a!, m, [b!, c!], chatId);
    const tappedBefore = tapped.tap.texts.length;

    // M forges: MEMBERS_ADDED of a fresh key, signed with her old key at the removal's clock,
    // ground until it sorts before the removal, and built on her history without the removal.
    const mi = internals(m);
    const mg = groupOf(m, chatId);
    const oldKey = ownKey(m, chatId);
    const removal = mg.events.find((e) => e.type === G.EventType.MEMBER_REMOVED && e.members[0] === oldKey.id)!;
    const beforeRemoval = mg.events.filter((e) => e !== removal);
    let fresh = G.generateGroupKey(mi.host.crypto);
    let forged = forge(chatId, oldKey, beforeRemoval, { type: G.EventType.MEMBERS_ADDED, clock: removal.clock, members: [fresh.id] });
    while (G.compareBytes(forged.signature, removal.signature) >= 0) {
      fresh = G.generateGroupKey(mi.host.crypto);
      forged = forge(chatId, oldKey, beforeRemoval, { type: G.EventType.MEMBERS_ADDED, clock: removal.clock, members: [fresh.id] });
    }
    const frames: { conversationId: string; frame: Uint8Array }[] = [];
    for (const conversationId of Object.keys(mg.rec.bindings)) {
      const binding = mi.host.sessions.bind({ conversationId }, chatId, fresh)!;
      frames.push({ conversationId, frame: encodeGroupFrameBody('membershipUpdate', G.encodeMembershipUpdate(chatId, [...mg.events, forged])) });
      frames.push({ conversationId, frame: encodeGroupFrameBody('binding', G.encodeGroupBinding(binding)) });
      frames.push({ conversationId, frame: encodeGroupFrameBody('invite', G.encodeGroupInvite(chatId, [...mg.events, forged], [{ binding }])) });
    }
    assert.equal(frames.length, 9, 'M had a session with each of the three others');
    await sendRaw(m, frames);

    for (const x of honest) {
      assert.ok(!x.groups.members(chatId).some((mm) => mm.memberId === fresh.id), `${x.profile.name} must not have the forged member`);
      assert.equal(x.groups.get(chatId).memberCount, 3);
    }
    for (const r of rejectedAt) assert.ok(r.some((d) => d.chatId === chatId), 'the forged event is reported as rejected');
    assert.ok(honest.every((x) => view(x, chatId) === view(a!, chatId)), 'every honest member is in the same state');

    await a!.groups.send(chatId, 'after the removal (A)');
    await b!.groups.send(chatId, 'after the removal (B)');
    await waitFor(async () => (await textsOf(c!, chatId)).includes('after the removal (A)') && (await textsOf(c!, chatId)).includes('after the removal (B)'), T, 'C to get both');
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(tapped.tap.texts.slice(tappedBefore), [], 'M receives nothing sent after her removal');
  } finally {
    await Promise.all([...honest, m].map((x) => x.close()));
  }
});

/**
 * Sign an event as `key` on top of `seen` (the events its author claims to have seen). When
 * the protocol gives events causal parents, the forged event names the heads of `seen`.
 */
function forge(chatId: string, key: G.GroupKeyPair, seen: readonly G.GroupEvent[], fields: G.EventFields): G.GroupEvent {
  const folded = G.foldGroup(chatId, seen, Date.now() + 120_000) as { ok: boolean; heads?: readonly Uint8Array[] };
  const parents = folded.ok && folded.heads !== undefined ? folded.heads : [];
  return G.signEvent(chatId, key, { ...fields, ...(parents.length > 0 ? { parents } : {}) });
}

// ---- (b) poisoned log ----------------------------------------------------------------------

test('poisoned log: a future-clocked no-op sent to one member does not stop the later removal there; every honest member ends in the same state', async () => {
  const net = new MemoryNetwork();
  const tapped = await tappedStore();
  const [a, b, c] = await Promise.all(['A', 'B', 'C'].map((n) => open(net, n)));
  const m = await open(net, 'M', tapped.store);
  const honest = [a!, b!, c!];
  try {
    const { chatId } = await makeGroup(a!, [b!, c!, m]);
    const mg = groupOf(m, chatId);
    const key = ownKey(m, chatId);
    const poison = forge(chatId, key, mg.events, { type: G.EventType.MEMBER_JOINED, clock: BigInt(Date.now() + 110_000) });
    const toB = b!.groups.members(chatId).find((x) => x.memberId === key.id)!.conversationId!;
    await sendRaw(m, [{ conversationId: toB, frame: encodeGroupFrameBody('membershipUpdate', G.encodeMembershipUpdate(chatId, [...mg.events, poison])) }]);
    await waitFor(() => groupOf(b!, chatId).events.some((e) => G.compareBytes(e.signature, poison.signature) === 0), T, 'B to store the poison while M is a member');

    await a!.groups.remove(chatId, key.id);
    await waitFor(() => c!.groups.get(chatId).memberCount === 3, T, 'C to see the removal');
    // B must apply the removal too, despite the poison that now sorts after it.
    await waitFor(() => b!.groups.get(chatId).memberCount === 3, 5_000, 'B to see the removal');
    assert.ok(honest.every((x) => view(x, chatId) === view(a!, chatId)), 'every honest member is in the same state');
    const tappedBefore = tapped.tap.texts.length;
    await b!.groups.send(chatId, 'after the removal (B)');
    await waitFor(async () => (await textsOf(a!, chatId)).includes('after the removal (B)') && (await textsOf(c!, chatId)).includes('after the removal (B)'), T, 'A and C to get it');
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(tapped.tap.texts.slice(tappedBefore), [], 'M receives nothing sent after her removal');
    // B keeps working with the others.
    await a!.groups.rename(chatId, 'still one group');
    await waitFor(() => honest.every((x) => x.groups.get(chatId).name === 'still one group'), T, 'a later rename everywhere');
  } finally {
    await Promise.all([...honest, m].map((x) => x.close()));
  }
});

// ---- (c) binding redirect ------------------------------------------------------------------

test('binding redirect: a binding frame (or introduction) for another key on an existing session changes nothing', async () => {
  const net = new MemoryNetwork();
  const [a, b, c] = (await Promise.all(['A', 'B', 'C'].map((n) => open(net, n)))) as [Client, Client, Client];
  try {
    const { chatId } = await makeGroup(a, [b, c]);
    const rejectedAtB = collectRejected(b);
    const cId = c.groups.get(chatId).self!;
    const bc = b.groups.members(chatId).find((x) => x.memberId === cId)!.conversationId!;
    const ci = internals(c);
    const other = G.generateGroupKey(ci.host.crypto);
    const binding = ci.host.sessions.bind({ conversationId: bc }, chatId, other)!;
    const events = groupOf(c, chatId).events;
    await sendRaw(c, [
      { conversationId: bc, frame: encodeGroupFrameBody('binding', G.encodeGroupBinding(binding)) },
      { conversationId: bc, frame: encodeGroupFrameBody('invite', G.encodeGroupInvite(chatId, events, [{ binding }])) },
    ]);
    assert.equal(groupOf(b, chatId).rec.bindings[bc], cId, "B's session with C stays bound to C");
    assert.ok(b.groups.members(chatId).some((x) => x.memberId === cId && x.state === 'connected' && x.conversationId === bc));
    assert.ok(rejectedAtB.some((r) => r.chatId === chatId), 'the redirect is reported');
    // Messages still flow both ways, under C's own id.
    const got: string[] = [];
    b.on('group-message', (msg) => {
      if (msg.author === cId) got.push(msg.text);
    });
    await c.groups.send(chatId, 'still me');
    await waitFor(() => got.includes('still me'), T, 'B to get C under her own id');
    await b.groups.send(chatId, 'to C');
    await waitFor(async () => (await textsOf(c, chatId)).includes('to C'), T, 'C to get B');
  } finally {
    await Promise.all([a, b, c].map((x) => x.close()));
  }
});

// ---- (d) re-adding a removed member --------------------------------------------------------

test('re-adding a removed member: a new invitation, a new key, connected to everyone again', async () => {
  const net = new MemoryNetwork();
  const [a, b, c, m] = (await Promise.all(['A', 'B', 'C', 'M'].map((n) => open(net, n)))) as [Client, Client, Client, Client];
  const all = [a, b, c, m];
  try {
    const diagnostics = all.map(collectRejected);
    const { chatId, convs } = await makeGroup(a, [b, c, m]);
    const oldId = m.groups.get(chatId).self!;
    await removeAndWait(a, m, [b, c], chatId);
    const invitedAgain: string[] = [];
    m.on('group-invited', (g) => invitedAgain.push(g.chatId));

    const readded = await a.groups.add(chatId, convs.get(m)!);
    await waitFor(() => m.groups.get(chatId).status === 'invited', T, 'M to have a new pending invitation');
    assert.equal(readded.outcome, 're-invited');
    assert.ok(a.groups.members(chatId).some((x) => x.state === 'invited' && x.conversationId === convs.get(m)));
    assert.deepEqual(invitedAgain, [chatId]);
    // Inviting the same conversation twice is reported as such, not as a new invitation.
    assert.equal((await a.groups.add(chatId, convs.get(m)!)).outcome, 'already-invited');

    await m.groups.accept(chatId);
    await waitConnected(all, chatId, 4);
    const newId = m.groups.get(chatId).self!;
    assert.notEqual(newId, oldId, 'a fresh group key');
    assert.ok(all.every((x) => view(x, chatId) === view(a, chatId)));
    // A current member cannot be "invited" again: a typed error, not a false "Invited".
    await assert.rejects(a.groups.add(chatId, convs.get(b)!), (e: unknown) => e instanceof GroupError && e.groupCode === 'already-member');

    await b.groups.send(chatId, 'welcome back');
    await waitFor(async () => (await textsOf(m, chatId)).includes('welcome back'), T, 'M to get B');
    const got: { text: string; author: string }[] = [];
    for (const x of [a, b, c]) x.on('group-message', (msg) => got.push({ text: msg.text, author: msg.author }));
    await m.groups.send(chatId, 'I am back');
    await waitFor(() => got.filter((g) => g.text === 'I am back').length === 3, T, 'everyone to get M');
    assert.ok(got.every((g) => g.author === newId));
    // Moving M's old sessions to her new key was a folded change, not a refused redirect.
    assert.deepEqual(diagnostics.flat(), []);
  } finally {
    await Promise.all(all.map((x) => x.close()));
  }
});

// ---- (e) visible history -------------------------------------------------------------------

test('history: every membership change appears at every member, in fold order, with its author', async () => {
  const net = new MemoryNetwork();
  const [a, b, c, d] = (await Promise.all(['A', 'B', 'C', 'D'].map((n) => open(net, n)))) as [Client, Client, Client, Client];
  const all = [a, b, c, d];
  try {
    const live: GroupChangeInfo[] = [];
    b.on('group-change', (ch) => live.push(ch));
    const diagnostics = all.map(collectRejected);
    const { chatId } = await makeGroup(a, [b, c, d], 'before');
    const ids = new Map(all.map((x) => [x, x.groups.get(chatId).self!]));
    // Each added member says MEMBER_JOINED (in its hellos): wait until everyone has all three.
    await waitFor(() => all.every((x) => x.groups.changes(chatId).filter((ch) => ch.kind === 'joined').length === 3), T, 'the joined events');
    await a.groups.rename(chatId, 'after');
    await waitFor(() => all.every((x) => x.groups.get(chatId).name === 'after'), T, 'the rename');
    await a.groups.setColor(chatId, '#00ff00');
    await a.groups.setImage(chatId, new Uint8Array([1, 2, 3]));
    await a.groups.promote(chatId, ids.get(b)!);
    await waitFor(() => all.every((x) => x.groups.members(chatId).filter((mm) => mm.admin).length === 2), T, 'the promotion');
    await b.groups.remove(chatId, ids.get(c)!);
    await waitFor(() => [a, b, d].every((x) => x.groups.get(chatId).memberCount === 3), T, 'the removal');
    await d.groups.leave(chatId);
    await waitFor(() => [a, b].every((x) => x.groups.get(chatId).memberCount === 2), T, 'the leave');

    const summary = (x: Client) =>
      x.groups.changes(chatId).map((ch) => `${ch.kind}:${ch.author === ids.get(a) ? 'A' : ch.author === ids.get(b) ? 'B' : ch.author === ids.get(d) ? 'D' : '?'}`);
    const expected = ['created:A', 'added:A', 'added:A', 'added:A', 'renamed:A', 'color:A', 'image:A', 'promoted:A', 'removed:B', 'left:D'];
    for (const x of [a, b]) {
      const s = summary(x).filter((k) => !k.startsWith('joined:'));
      assert.deepEqual(s, expected, `${x.profile.name}'s history`);
    }
    // Each added member joins: the joined entries are authored by the joiner.
    const joinedAtA = a.groups.changes(chatId).filter((ch) => ch.kind === 'joined').map((ch) => ch.author);
    assert.deepEqual([...joinedAtA].sort(), [ids.get(b)!, ids.get(c)!, ids.get(d)!].sort());
    // Targets and names: at B, A is known by its display name.
    const atB = b.groups.changes(chatId);
    const removed = atB.find((ch) => ch.kind === 'removed')!;
    assert.deepEqual(removed.targets.map((t) => t.memberId), [ids.get(c)]);
    assert.equal(removed.byMe, true);
    const renamed = atB.find((ch) => ch.kind === 'renamed')!;
    assert.equal(renamed.authorName, 'A');
    assert.equal(renamed.name, 'after');
    assert.equal(atB.find((ch) => ch.kind === 'promoted')!.targets[0]!.me, true);
    // C (removed) sees the history up to and including its own removal.
    const atC = c.groups.changes(chatId).map((ch) => ch.kind);
    assert.equal(atC.at(-1), 'removed');
    // The same changes came as SDK events at B, once each.
    for (const k of ['renamed', 'color', 'image', 'promoted', 'removed', 'left'] as const) {
      assert.equal(live.filter((ch) => ch.kind === k).length, 1, `one ${k} event at B`);
    }
    // An honest run produces no diagnostics.
    assert.deepEqual(diagnostics.flat(), []);
  } finally {
    await Promise.all(all.map((x) => x.close()));
  }
});

// ---- re-add after leaving; send status -----------------------------------------------------

test('a member who left can be invited again; send reports each recipient, and refuses when nobody is left', async () => {
  const net = new MemoryNetwork();
  const [a, b, c] = (await Promise.all(['A', 'B', 'C'].map((n) => open(net, n)))) as [Client, Client, Client];
  try {
    const { chatId, convs } = await makeGroup(a, [b, c]);
    const sent = await a.groups.send(chatId, 'to both');
    assert.deepEqual(sent.recipients.map((r) => [r.memberId, r.status, r.name]).sort(), [
      [b.groups.get(chatId).self, 'queued', 'B'],
      [c.groups.get(chatId).self, 'queued', 'C'],
    ].sort());

    await c.groups.leave(chatId);
    await waitFor(() => a.groups.get(chatId).memberCount === 2 && b.groups.get(chatId).memberCount === 2, T, 'the leave');
    // Sent while C is out: it never reaches C, not even after C is back.
    await b.groups.send(chatId, 'after C left');
    await waitFor(async () => (await a.groups.history(chatId)).messages.some((msg) => msg.text === 'after C left'), T, 'A gets it');
    assert.equal((await a.groups.add(chatId, convs.get(c)!)).outcome, 're-invited');
    await waitFor(() => c.groups.get(chatId).status === 'invited', T, 'C invited again');
    await c.groups.accept(chatId);
    await waitConnected([a, b, c], chatId, 3);
    assert.ok(!(await textsOf(c, chatId)).includes('after C left'));
    // C's history marks both its old and its new key as "me".
    const mine = c.groups.changes(chatId).filter((ch) => ch.byMe).map((ch) => ch.kind);
    assert.ok(mine.includes('left') && mine.filter((k) => k === 'joined').length === 2, `C's own changes: ${mine.join(',')}`);

    // Alone in a group: nothing to send to.
    await b.groups.leave(chatId);
    await c.groups.leave(chatId);
    await waitFor(() => a.groups.get(chatId).memberCount === 1, T, 'both left');
    const before = (await a.groups.history(chatId, { limit: 1000 })).messages.length;
    await assert.rejects(a.groups.send(chatId, 'anyone?'), (e: unknown) => e instanceof GroupError && e.groupCode === 'no-recipients');
    assert.equal((await a.groups.history(chatId, { limit: 1000 })).messages.length, before, 'nothing stored');
  } finally {
    await Promise.all([a, b, c].map((x) => x.close()));
  }
});

// ---- invitations to a group we are out of ----------------------------------------------------

test('out of a group, only a real re-invitation reopens it: not a stale hello, not one from a removed member', async () => {
  const net = new MemoryNetwork();
  const [a, b, x, m] = (await Promise.all(['A', 'B', 'X', 'M'].map((n) => open(net, n)))) as [Client, Client, Client, Client];
  try {
    const { chatId, convs } = await makeGroup(a, [b, x, m]);
    const xId = x.groups.get(chatId).self!;
    const mId = m.groups.get(chatId).self!;
    await removeAndWait(a, m, [b, x], chatId);
    await a.groups.remove(chatId, xId);
    await waitFor(() => b.groups.get(chatId).memberCount === 2 && x.groups.get(chatId).status === 'removed', T, 'X removed');
    const invited: string[] = [];
    m.on('group-invited', (g) => invited.push(g.chatId));
    const isRemovalOf = (id: string) => (e: G.GroupEvent) => e.type === G.EventType.MEMBER_REMOVED && e.members[0] === id;
    /** A frame from `c` to M over their session: an invite (these events, c's binding for it) or an update. */
    const frameToM = (c: Client, events: readonly G.GroupEvent[], kind: 'invite' | 'membershipUpdate' = 'invite') => {
      const ci = internals(c);
      const conversationId = Object.entries(groupOf(c, chatId).rec.bindings).find(([, v]) => v === mId)![0];
      const binding = ci.host.sessions.bind({ conversationId }, chatId, ownKey(c, chatId))!;
      const bytes = kind === 'invite' ? G.encodeGroupInvite(chatId, events, [{ binding }]) : G.encodeMembershipUpdate(chatId, events);
      return { conversationId, frame: encodeGroupFrameBody(kind, bytes) };
    };
    const full = groupOf(b, chatId).events;
    // A hello B built before M's removal, arriving late.
    await sendRaw(b, [frameToM(b, full.filter((e) => !isRemovalOf(mId)(e) && !isRemovalOf(xId)(e)))]);
    // M learns of X's removal (updates still merge while removed).
    await sendRaw(b, [frameToM(b, full, 'membershipUpdate')]);
    assert.ok(groupOf(m, chatId).events.some(isRemovalOf(xId)));
    // X, removed, "invites" M: with the full history, and with one that hides X's own removal.
    await sendRaw(x, [frameToM(x, full), frameToM(x, full.filter((e) => !isRemovalOf(xId)(e)))]);
    assert.equal(m.groups.get(chatId).status, 'removed');
    assert.deepEqual(invited, []);
    // The real thing.
    assert.equal((await a.groups.add(chatId, convs.get(m)!)).outcome, 're-invited');
    await waitFor(() => m.groups.get(chatId).status === 'invited', T, 'the re-invitation');
    assert.equal(m.groups.get(chatId).invitedBy, convs.get(m));
    assert.deepEqual(invited, [chatId]);
  } finally {
    await Promise.all([a, b, x, m].map((c) => c.close()));
  }
});
