/**
 * `umbra group …`: private groups (group/v1). A group is named by its number or handle from
 * `umbra group list`, its name (or a unique prefix of it) or an id prefix; members by their
 * number in `umbra group members`, their name, a conversation reference, or a member-id prefix.
 */
import { GroupError, type Client, type GroupChangeInfo, type GroupInfo, type GroupMessageInfo } from '@umbra/client/node';
import { CliError } from './errors.ts';
import { changeJson, changeLine, changeText, conversationJson, groupJson, groupLine, groupMessageJson, memberJson, memberLine, messageLine, type ChangeJson, type MessageJson } from './format.ts';
import { allConversations, findConversation, type Context, type Result } from './commands.ts';
import type { Session } from './session.ts';

async function allGroups(s: Session): Promise<GroupInfo[]> {
  const groups = await s.client.groups.list();
  s.names.assign([], groups);
  await s.names.save();
  return groups;
}

export async function findGroup(s: Session, ref: string): Promise<GroupInfo> {
  return s.names.findGroup(ref, await allGroups(s));
}

async function findMember(s: Session, group: GroupInfo, ref: string): Promise<string> {
  const members = (await s.client.groups.members(group.chatId)).filter((m) => m.memberId !== null && m.state !== 'self');
  const all = await s.client.groups.members(group.chatId);
  const n = Number(ref);
  if (/^\d+$/.test(ref) && n >= 1 && n <= all.length && all[n - 1]!.memberId !== null) return all[n - 1]!.memberId!;
  const byName = members.filter((m) => (m.name ?? '').toLowerCase() === ref.toLowerCase() || (ref.startsWith('0x') && ref.length >= 6 && m.memberId!.startsWith(ref)));
  if (byName.length === 1) return byName[0]!.memberId!;
  try {
    const conv = await findConversation(s, ref);
    const m = members.find((x) => x.conversationId === conv.id);
    if (m !== undefined) return m.memberId!;
  } catch {
    // not a conversation reference either
  }
  throw new CliError('not-found', `no member "${ref}" in ${group.name}`, { hint: `"umbra group members ${s.names.group(group.chatId).handle}" lists them` });
}

function groupError(e: unknown, what: string): never {
  if (e instanceof GroupError) {
    switch (e.groupCode) {
      case 'no-recipients':
        throw new CliError('nobody-to-receive', 'nobody else is in this group: nothing sent', { hint: '"umbra group add" invites someone' });
      case 'already-member':
        throw new CliError('already-member', e.message);
      case 'unknown-group':
        throw new CliError('not-found', e.message);
      case 'not-a-member':
      case 'not-invited':
      case 'not-allowed':
        throw new CliError('not-allowed', `cannot ${what}: ${e.message}`);
      case 'rejected':
        throw new CliError('not-allowed', `cannot ${what}: ${e.message}`);
    }
  }
  throw e;
}

const shown = (s: Session, info: GroupInfo, what: string): Result => {
  const g = groupJson(s, info);
  return { json: { group: g }, text: `${what}: ${g.name} (${g.handle}; ${g.members} member${g.members === 1 ? '' : 's'}${g.pending > 0 ? `, ${g.pending} not reachable yet` : ''})` };
};

export async function create(ctx: Context, p: { name: string; refs: string[] }): Promise<Result> {
  const s = ctx.session;
  const all = await allConversations(s);
  const ids = p.refs.map((r) => s.names.findConversation(r, all).id);
  const info = await s.client.groups.create(p.name, ids).catch((e: unknown) => groupError(e, 'create the group'));
  await s.names.save();
  const r = shown(s, info, 'Created');
  return ids.length === 0 ? r : { ...r, text: `${r.text}\nInvitations sent; each person joins with "umbra group accept".` };
}

export async function list(ctx: Context): Promise<Result> {
  const s = ctx.session;
  const groups = (await allGroups(s)).map((g) => groupJson(s, g)).sort((a, b) => a.number - b.number);
  return { json: { groups }, text: groups.length === 0 ? 'No groups yet. "umbra group create <name> <member...>" starts one.' : groups.map(groupLine).join('\n') };
}

export async function acceptGroup(ctx: Context, p: { ref: string }): Promise<Result> {
  const s = ctx.session;
  const g = await findGroup(s, p.ref);
  return shown(s, await s.client.groups.accept(g.chatId).catch((e: unknown) => groupError(e, 'join')), 'Joining');
}

export async function members(ctx: Context, p: { ref: string }): Promise<Result> {
  const s = ctx.session;
  const g = await findGroup(s, p.ref);
  const list = (await s.client.groups.members(g.chatId)).map(memberJson);
  return { json: { group: groupJson(s, g), members: list }, text: list.map(memberLine).join('\n') };
}

export async function add(ctx: Context, p: { ref: string; who: string }): Promise<Result> {
  const s = ctx.session;
  const info = await findGroup(s, p.ref);
  const conv = await findConversation(s, p.who);
  const r = await s.client.groups.add(info.chatId, conv.id).catch((e: unknown) => {
    if (e instanceof GroupError && e.groupCode === 'already-member') throw new CliError('already-member', `${s.names.label(conv)} is already a member of ${info.name}`);
    return groupError(e, 'add them');
  });
  const g = groupJson(s, r.group);
  const cj = await conversationJson(s, conv);
  const who = cj.name;
  const text =
    r.outcome === 'already-invited'
      ? `${who} already has a pending invitation to ${g.name}; nothing sent.`
      : `${r.outcome === 're-invited' ? 'Invited again (they were a member before)' : 'Invited'}: ${who} to ${g.name}. They join with "umbra group accept".`;
  return { json: { group: g, conversation: cj, outcome: r.outcome }, text };
}

export async function remove(ctx: Context, p: { ref: string; who: string }): Promise<Result> {
  const s = ctx.session;
  const info = await findGroup(s, p.ref);
  const memberId = await findMember(s, info, p.who);
  const member = s.client.groups.members(info.chatId).find((m) => m.memberId === memberId);
  // The group's rules (docs/GROUPS.md): an admin removes members who are not admins; said here in plain words, before anything is signed.
  if (member !== undefined && member.state !== 'self' && member.admin) {
    const conv = member.conversationId !== null ? (await allConversations(s)).find((c) => c.id === member.conversationId) : undefined;
    const who = conv !== undefined ? s.names.label(conv) : (member.name ?? 'that member');
    throw new CliError('not-allowed', `${who} is an admin of ${info.name}, and admins cannot be removed`, { hint: 'an admin can leave the group themselves' });
  }
  return shown(s, await s.client.groups.remove(info.chatId, memberId).catch((e: unknown) => groupError(e, 'remove them')), 'Removed');
}

export async function promote(ctx: Context, p: { ref: string; who: string }): Promise<Result> {
  const s = ctx.session;
  const info = await findGroup(s, p.ref);
  return shown(s, await s.client.groups.promote(info.chatId, await findMember(s, info, p.who)).catch((e: unknown) => groupError(e, 'promote them')), 'Promoted');
}

export async function renameGroup(ctx: Context, p: { ref: string; name: string }): Promise<Result> {
  const s = ctx.session;
  const info = await findGroup(s, p.ref);
  return shown(s, await s.client.groups.rename(info.chatId, p.name).catch((e: unknown) => groupError(e, 'rename it')), 'Renamed');
}

export async function leave(ctx: Context, p: { ref: string }): Promise<Result> {
  const s = ctx.session;
  const info = await findGroup(s, p.ref);
  return shown(s, await s.client.groups.leave(info.chatId).catch((e: unknown) => groupError(e, 'leave')), 'Left');
}

export async function sendGroup(ctx: Context, p: { ref: string; text: string }): Promise<Result> {
  const s = ctx.session;
  const info = await findGroup(s, p.ref);
  s.watch.count();
  const msg = await s.client.groups.send(info.chatId, p.text).catch((e: unknown) => groupError(e, 'send'));
  await s.client.settle();
  const answered = s.watch.count();
  const g = groupJson(s, info);
  const j = groupMessageJson(g, msg, msg.recipients);
  const onSession = j.recipients!.filter((r) => r.state === 'queued');
  // "sent" only when the network took as many envelopes as members are on a session (one each) and refused none; otherwise it is still queued.
  const taken = onSession.length > 0 && answered.failed === 0 && answered.accepted >= onSession.length;
  const name = (r: { name: string | null; memberId: string }) => r.name ?? r.memberId.slice(0, 12) + '…';
  const lines: string[] = [];
  if (onSession.length > 0) lines.push(taken ? `Sent ✓ to ${onSession.map(name).join(', ')} (the network has it; each member's client confirms it).` : `Queued for ${onSession.map(name).join(', ')}: not sent yet${s.watch.failure !== null ? ` (${s.watch.failure})` : ''}. ${ctx.agent ? 'The agent retries it.' : 'It is retried the next time umbra runs; "umbra agent start" keeps retrying.'}`);
  const waiting = j.recipients!.filter((r) => r.state === 'waiting');
  if (waiting.length > 0) lines.push(`Waiting for a session with ${waiting.map(name).join(', ')}: sent once it opens.`);
  const dropped = j.recipients!.filter((r) => r.state === 'dropped');
  if (dropped.length > 0) lines.push(`Not sent to ${dropped.map(name).join(', ')}: no session, and too many messages already wait for them.`);
  if (onSession.length === 0) lines.unshift('Nobody could be sent it yet.');
  j.state = taken ? 'sent' : 'queued';
  return { json: { message: j }, text: lines.join('\n') };
}

/** One item of `umbra group read`: a message or a membership change, in the order this client learned of them. */
export type GroupReadItem = ({ readonly type: 'message' } & GroupMessageInfo) | ({ readonly type: 'change'; readonly text: string } & GroupChangeInfo);

/** A group cursor: the SDK's message cursor ('' = from the newest, 'end' = no older messages) and how many changes are older than the page. */
const GROUP_CURSOR = /^(\d{1,15}|end|)~(\d{1,9})$/;

const arrival = (m: { receivedAt: number | null; sentAt: number }) => m.receivedAt ?? m.sentAt;

/**
 * A page of a group's history: the latest `limit` items of its messages and membership
 * changes, merged by when this client learned of each (a message's receipt or send time, a
 * change's seenAt; changes keep the fold's order among themselves). The cursor says where the
 * page began in both lists, so the older page continues exactly there.
 */
export async function groupReadItems(c: Client, chatId: string, p: { limit: number; before?: string }): Promise<{ items: GroupReadItem[]; cursor: string | null }> {
  const allChanges = c.groups.changes(chatId);
  let messageBefore: string | undefined;
  let noOlderMessages = false;
  let changeEnd = allChanges.length;
  if (p.before !== undefined) {
    const m = GROUP_CURSOR.exec(p.before);
    if (m === null || Number(m[2]) > allChanges.length) throw new CliError('usage', `--before: "${p.before}" is not a cursor of this group`, { hint: 'pass the "cursor" of an earlier group read --json' });
    if (m[1] === 'end') noOlderMessages = true;
    else if (m[1] !== '') messageBefore = m[1];
    changeEnd = Number(m[2]);
  }
  const history = async (limit: number) => {
    try {
      return await c.groups.history(chatId, { limit, ...(messageBefore !== undefined ? { before: messageBefore } : {}) });
    } catch (e) {
      if (p.before !== undefined) throw new CliError('usage', `--before: "${p.before}" is not a cursor of this group`, { hint: 'pass the "cursor" of an earlier group read --json' });
      throw e;
    }
  };
  const page = noOlderMessages ? { messages: [] as GroupMessageInfo[], cursor: null } : await history(p.limit);
  // The changes since the oldest message of the page (all that are left when no older message exists).
  const lower = page.cursor === null || page.messages.length === 0 ? -Infinity : arrival(page.messages[0]!);
  let changeStart = changeEnd;
  while (changeStart > 0 && allChanges[changeStart - 1]!.seenAt >= lower) changeStart--;
  const merge = (messages: readonly GroupMessageInfo[], changes: readonly GroupChangeInfo[]): GroupReadItem[] => {
    const items: GroupReadItem[] = [];
    let i = 0;
    let k = 0;
    while (i < messages.length || k < changes.length) {
      const m = messages[i];
      const ch = changes[k];
      if (ch === undefined || (m !== undefined && arrival(m) < ch.seenAt)) {
        items.push({ type: 'message', ...m! });
        i++;
      } else {
        items.push({ type: 'change', ...ch, text: changeText(ch) });
        k++;
      }
    }
    return items;
  };
  let items = merge(page.messages, allChanges.slice(changeStart, changeEnd));
  let messagesLeftOlder = page.cursor !== null;
  let messageCursor = page.cursor ?? '';
  if (items.length > p.limit) {
    // Keep the latest `limit` items; the dropped (oldest) ones come on the older page.
    const dropped = items.slice(0, items.length - p.limit);
    const droppedMessages = dropped.filter((x) => x.type === 'message').length;
    changeStart += dropped.length - droppedMessages;
    items = items.slice(-p.limit);
    if (droppedMessages > 0) {
      messagesLeftOlder = true;
      const kept = page.messages.length - droppedMessages;
      // The SDK's cursor of the oldest kept message: the same page, shorter.
      messageCursor = kept > 0 ? ((await history(kept)).cursor ?? '') : (messageBefore ?? '');
    }
  }
  const cursor = !messagesLeftOlder && changeStart === 0 ? null : `${messagesLeftOlder ? (messageCursor ?? '') : 'end'}~${changeStart}`;
  return { items, cursor };
}

export async function read(ctx: Context, p: { ref: string; limit: number; before?: string }): Promise<Result> {
  const s = ctx.session;
  const info = await findGroup(s, p.ref);
  const g = groupJson(s, info);
  const page = await groupReadItems(s.client, info.chatId, p);
  const items: (MessageJson | ChangeJson)[] = page.items.map((x) => (x.type === 'message' ? groupMessageJson(g, x) : changeJson(x)));
  const more = page.cursor !== null ? `\n(older: umbra group read ${g.handle} --before ${page.cursor})` : '';
  return {
    json: { group: g, items, cursor: page.cursor },
    text: (items.length === 0 ? 'No messages yet.' : items.map((x) => (x.type === 'message' ? messageLine(x) : changeLine(x))).join('\n')) + more,
  };
}
