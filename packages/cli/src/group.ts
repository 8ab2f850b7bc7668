/**
 * `umbra group …`: private groups (group/v1). A group is named by its number in
 * `umbra group list`, a prefix of its name, or a prefix of its id; members by their number in
 * `umbra group members`, their name, a conversation reference, or a member-id prefix.
 */
import type { Command } from 'commander';
import { GroupError, type Client, type GroupChangeInfo, type GroupInfo, type GroupMemberInfo, type GroupMemberRef, type GroupMessageInfo } from '@umbra/client/node';
import { CliError } from './errors.ts';
import { printJson } from './format.ts';
import { findConversation, openSession, type GlobalOptions } from './session.ts';
import { transportFromFlags } from './config.ts';

async function withClient<T>(g: GlobalOptions, fn: (client: Client) => Promise<T>): Promise<T> {
  const session = await openSession(g.data, transportFromFlags(g));
  try {
    await session.client.sync();
    await session.client.settle();
    return await fn(session.client);
  } finally {
    await session.client.settle();
    await session.close();
  }
}

export function findGroup(c: Client, ref: string): GroupInfo {
  const groups = c.groups.list();
  const n = Number(ref);
  if (/^\d+$/.test(ref) && n >= 1 && n <= groups.length) return groups[n - 1]!;
  const matches = groups.filter((x) => x.chatId.startsWith(ref) || x.name.toLowerCase().startsWith(ref.toLowerCase()));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) throw new CliError(`no group "${ref}" (see "umbra group list")`);
  throw new CliError(`"${ref}" matches ${matches.length} groups; use its number or more of its id`);
}

function findMember(c: Client, group: GroupInfo, ref: string): string {
  const members = c.groups.members(group.chatId).filter((m) => m.memberId !== null);
  const n = Number(ref);
  if (/^\d+$/.test(ref) && n >= 1 && n <= members.length) return members[n - 1]!.memberId!;
  const byName = members.filter((m) => (m.name ?? '').toLowerCase() === ref.toLowerCase() || (ref.startsWith('0x') && m.memberId!.startsWith(ref)));
  if (byName.length === 1) return byName[0]!.memberId!;
  try {
    const conv = findConversation(c, ref);
    const m = members.find((x) => x.conversationId === conv.id);
    if (m !== undefined) return m.memberId!;
  } catch {
    // not a conversation reference
  }
  throw new CliError(`no member "${ref}" in ${group.name} (see "umbra group members")`);
}

function groupLine(x: GroupInfo, i: number): string {
  const status = x.status === 'member' ? '' : `  [${x.status}]`;
  const pending = x.pendingCount > 0 ? `  ${x.pendingCount} pending` : '';
  return `${String(i + 1).padStart(3)}. ${x.name}  ${x.memberCount} members  ${x.chatId.slice(0, 8)}${x.admin ? '  admin' : ''}${status}${pending}`;
}

function memberLine(m: GroupMemberInfo, i: number): string {
  const who = m.state === 'self' ? 'me' : (m.name ?? (m.memberId !== null ? m.memberId.slice(0, 12) + '…' : '?'));
  const flags = [m.creator ? 'creator' : '', m.admin ? 'admin' : '', m.state === 'self' ? '' : m.state].filter((f) => f !== '').join(', ');
  return `${String(i + 1).padStart(3)}. ${who}${flags !== '' ? `  (${flags})` : ''}`;
}

const shortId = (memberId: string) => memberId.slice(0, 12) + '…';

function messageLine(m: GroupMessageInfo): string {
  const when = new Date(m.sentAt).toISOString().slice(11, 16);
  return `[${when}] ${m.outgoing ? 'me' : (m.authorName ?? shortId(m.author))}: ${m.text}`;
}

/** "Alice renamed the group to "x"": who did it by display name when we know it, else a short id. */
export function changeText(ch: GroupChangeInfo): string {
  const who = ch.byMe ? 'You' : (ch.authorName ?? shortId(ch.author));
  const names = (ts: readonly GroupMemberRef[]) => ts.map((t) => (t.me ? 'you' : (t.name ?? shortId(t.memberId)))).join(', ');
  switch (ch.kind) {
    case 'created':
      return `${who} created the group "${ch.name ?? ''}"`;
    case 'renamed':
      return `${who} renamed the group to "${ch.name ?? ''}"`;
    case 'color':
      return `${who} set the colour to ${ch.color ?? ''}`;
    case 'image':
      return `${who} changed the image`;
    case 'added':
      return `${who} added ${names(ch.targets)}`;
    case 'joined':
      return `${who} joined`;
    case 'removed':
      return `${who} removed ${names(ch.targets)}`;
    case 'left':
      return `${who} left`;
    case 'promoted':
      return `${who} made ${names(ch.targets)} admin`;
    case 'demoted':
      return `${who} stopped being an admin`;
  }
}

function changeLine(ch: GroupChangeInfo): string {
  return `[${new Date(ch.seenAt).toISOString().slice(11, 16)}] * ${changeText(ch)}`;
}

/** One item of `umbra group read`: a message or a membership change, in the order we learned of them. */
export type GroupReadItem = ({ readonly type: 'message' } & GroupMessageInfo) | ({ readonly type: 'change'; readonly text: string } & GroupChangeInfo);

/**
 * The last `limit` items of a group's history: its latest messages and its membership changes,
 * merged by when this client learned of each (a message's receipt or send time, a change's
 * seenAt). Changes keep the fold's order among themselves.
 */
export function groupReadItems(c: Client, chatId: string, limit: number): GroupReadItem[] {
  const messages = c.groups.history(chatId, { limit }).messages;
  const changes = c.groups.changes(chatId);
  // Merge the two lists: each keeps its own order (messages by arrival, changes by fold).
  const items: GroupReadItem[] = [];
  let i = 0;
  let j = 0;
  while (i < messages.length || j < changes.length) {
    const m = messages[i];
    const ch = changes[j];
    if (ch === undefined || (m !== undefined && (m.receivedAt ?? m.sentAt) < ch.seenAt)) {
      items.push({ type: 'message', ...m! });
      i++;
    } else {
      items.push({ type: 'change', ...ch, text: changeText(ch) });
      j++;
    }
  }
  return items.slice(-limit);
}

async function show(g: GlobalOptions, c: Client, info: GroupInfo, what: string): Promise<void> {
  if (g.json) printJson(info);
  else console.log(`${what}: ${info.name} (${info.memberCount} members${info.pendingCount > 0 ? `, ${info.pendingCount} pending` : ''})`);
  void c;
}

/** Register `umbra group …` on the program. */
export function registerGroupCommands(program: Command, g: () => GlobalOptions): void {
  const group = program.command('group').description('private groups: every member talks to every other member pairwise');
  group
    .command('create')
    .description('create a group and invite people you have a conversation with')
    .argument('<name>')
    .argument('[member...]', 'conversations (number from "umbra list", name or id)')
    .action((name: string, refs: string[]) =>
      withClient(g(), async (c) => {
        const ids = refs.map((r) => findConversation(c, r).id);
        await show(g(), c, await c.groups.create(name, ids), 'Created');
        if (!g().json && ids.length > 0) console.log('They join with "umbra group accept"; they become members when you next run umbra after that.');
      }),
    );
  group
    .command('list')
    .alias('ls')
    .description('your groups and invitations')
    .action(() =>
      withClient(g(), async (c) => {
        const list = c.groups.list();
        if (g().json) printJson(list);
        else if (list.length === 0) console.log('No groups yet. "umbra group create <name> <member...>" starts one.');
        else list.forEach((x, i) => console.log(groupLine(x, i)));
      }),
    );
  group
    .command('accept')
    .description('join a group you were invited to')
    .argument('<group>')
    .action((ref: string) => withClient(g(), async (c) => show(g(), c, await c.groups.accept(findGroup(c, ref).chatId), 'Joining')));
  group
    .command('members')
    .description('members, admins, and who cannot be reached yet (pending)')
    .argument('<group>')
    .action((ref: string) =>
      withClient(g(), async (c) => {
        const members = c.groups.members(findGroup(c, ref).chatId);
        if (g().json) printJson(members);
        else members.forEach((m, i) => console.log(memberLine(m, i)));
      }),
    );
  group
    .command('add')
    .description('invite someone you have a conversation with')
    .argument('<group>')
    .argument('<member>', 'conversation (number from "umbra list", name or id)')
    .action((ref: string, who: string) =>
      withClient(g(), async (c) => {
        const info = findGroup(c, ref);
        const conv = findConversation(c, who);
        let r;
        try {
          r = await c.groups.add(info.chatId, conv.id);
        } catch (e) {
          if (e instanceof GroupError && e.groupCode === 'already-member') throw new CliError(`${conv.peerName} is already a member of ${info.name}`);
          throw e;
        }
        if (g().json) return printJson(r);
        if (r.outcome === 'already-invited') console.log(`${conv.peerName} already has a pending invitation to ${info.name}; nothing sent.`);
        else console.log(`${r.outcome === 're-invited' ? 'Invited again (they were a member before)' : 'Invited'}: ${conv.peerName} to ${info.name}. They join with "umbra group accept"; they become members when you next run umbra after that.`);
      }),
    );
  group
    .command('remove')
    .description('remove a member (admins)')
    .argument('<group>')
    .argument('<member>')
    .action((ref: string, who: string) =>
      withClient(g(), async (c) => {
        const info = findGroup(c, ref);
        await show(g(), c, await c.groups.remove(info.chatId, findMember(c, info, who)), 'Removed');
      }),
    );
  group
    .command('promote')
    .description('make a member an admin (admins)')
    .argument('<group>')
    .argument('<member>')
    .action((ref: string, who: string) =>
      withClient(g(), async (c) => {
        const info = findGroup(c, ref);
        await show(g(), c, await c.groups.promote(info.chatId, findMember(c, info, who)), 'Promoted');
      }),
    );
  group
    .command('rename')
    .description('rename a group')
    .argument('<group>')
    .argument('<name>')
    .action((ref: string, name: string) => withClient(g(), async (c) => show(g(), c, await c.groups.rename(findGroup(c, ref).chatId, name), 'Renamed')));
  group
    .command('leave')
    .description('leave a group (the others are told; you stop receiving)')
    .argument('<group>')
    .action((ref: string) => withClient(g(), async (c) => show(g(), c, await c.groups.leave(findGroup(c, ref).chatId), 'Left')));
  group
    .command('send')
    .description('send a message to every member')
    .argument('<group>')
    .argument('<text...>')
    .action((ref: string, words: string[]) =>
      withClient(g(), async (c) => {
        const text = words.join(' ');
        if (text.length === 0) throw new CliError('nothing to send');
        let msg;
        try {
          msg = await c.groups.send(findGroup(c, ref).chatId, text);
        } catch (e) {
          if (e instanceof GroupError && e.groupCode === 'no-recipients') throw new CliError('nobody else is in this group: nothing sent');
          throw e;
        }
        if (g().json) return printJson(msg);
        const by = (s: string) => msg.recipients.filter((r) => r.status === s).map((r) => r.name ?? shortId(r.memberId));
        const queued = by('queued');
        console.log(`Sent to ${queued.length} of ${msg.recipients.length} member${msg.recipients.length === 1 ? '' : 's'}${queued.length > 0 ? ` (${queued.join(', ')}; retried until each acknowledges)` : ''}.`);
        const waiting = by('waiting');
        if (waiting.length > 0) console.log(`Waiting for a session with: ${waiting.join(', ')} (sent once it opens).`);
        const dropped = by('dropped');
        if (dropped.length > 0) console.log(`Not sent to: ${dropped.join(', ')} (no session, and too many messages already wait for them).`);
      }),
    );
  group
    .command('read')
    .description('the latest messages and membership changes of a group')
    .argument('<group>')
    .option('-n, --limit <n>', 'how many', '20')
    .action((ref: string, o: { limit: string }) =>
      withClient(g(), async (c) => {
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError('--limit must be 1..1000');
        const items = groupReadItems(c, findGroup(c, ref).chatId, limit);
        if (g().json) printJson(items);
        else if (items.length === 0) console.log('No messages yet.');
        else for (const item of items) console.log(item.type === 'message' ? messageLine(item) : changeLine(item));
      }),
    );
}
