/**
 * `umbra group …`: private groups (group/v1). A group is named by its number in
 * `umbra group list`, a prefix of its name, or a prefix of its id; members by their number in
 * `umbra group members`, their name, a conversation reference, or a member-id prefix.
 */
import type { Command } from 'commander';
import type { Client, GroupInfo, GroupMemberInfo, GroupMessageInfo } from '@umbra/client';
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

function messageLine(m: GroupMessageInfo): string {
  const when = new Date(m.sentAt).toISOString().slice(11, 16);
  return `[${when}] ${m.outgoing ? 'me' : (m.authorName ?? m.author.slice(0, 12) + '…')}: ${m.text}`;
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
    .action((ref: string, who: string) => withClient(g(), async (c) => show(g(), c, await c.groups.add(findGroup(c, ref).chatId, findConversation(c, who).id), 'Invited')));
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
        const msg = await c.groups.send(findGroup(c, ref).chatId, text);
        if (g().json) printJson(msg);
        else console.log('Sent.');
      }),
    );
  group
    .command('read')
    .description('the latest messages of a group')
    .argument('<group>')
    .option('-n, --limit <n>', 'how many', '20')
    .action((ref: string, o: { limit: string }) =>
      withClient(g(), async (c) => {
        const limit = Number(o.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError('--limit must be 1..1000');
        const page = c.groups.history(findGroup(c, ref).chatId, { limit });
        if (g().json) printJson(page.messages);
        else if (page.messages.length === 0) console.log('No messages yet.');
        else for (const m of page.messages) console.log(messageLine(m));
      }),
    );
}
