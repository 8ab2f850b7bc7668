/**
 * The one --json schema (docs/CLI.md) and the text lines built from the same values: every
 * command describes a conversation, group, message, change or request with these functions.
 */
import { refusalReasonText, type ConversationInfo, type GroupChangeInfo, type GroupInfo, type GroupMemberInfo, type GroupMessageInfo, type GroupRecipientInfo, type MessageInfo } from '@umbra/client/node';
import type { Session } from './session.ts';
import type { DeliveryState } from './delivery-watch.ts';
import { usage } from './errors.ts';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export type ConversationState = 'active' | 'request' | 'blocked' | 'waiting' | 'refused';

export interface ConversationJson {
  type: 'conversation';
  id: string;
  handle: string;
  number: number;
  name: string;
  peerName: string;
  alias: string | null;
  state: ConversationState;
  unread: number;
  pending: number;
  verified: 'yes' | 'no' | 'changed';
  safetyNumber: string;
  /** The inviter refused our first contact (state 'refused'); null otherwise. */
  refusal: { reason: 'invitation-used' | 'invitation-expired'; at: string } | null;
  createdAt: string;
  lastActivityAt: string;
}

export interface MessageJson {
  type: 'message';
  id: string;
  chat: { kind: 'conversation' | 'group'; id: string; handle: string };
  outgoing: boolean;
  author: { name: string; memberId: string | null };
  kind: string;
  text: string | null;
  replyTo: string | null;
  sentAt: string;
  receivedAt: string | null;
  state: DeliveryState;
  read: boolean;
  recipients?: RecipientJson[];
}

export interface RecipientJson {
  memberId: string;
  name: string | null;
  /** queued: on our session with them (retried until they acknowledge); waiting: no session yet; dropped: not sent. */
  state: GroupRecipientInfo['status'];
  conversationId: string | null;
}

export interface GroupJson {
  type: 'group';
  id: string;
  handle: string;
  number: number;
  name: string;
  status: GroupInfo['status'];
  admin: boolean;
  members: number;
  pending: number;
  lastError: string | null;
}

export interface ChangeJson {
  type: 'change';
  id: string;
  kind: GroupChangeInfo['kind'];
  author: { name: string; memberId: string };
  byMe: boolean;
  targets: { memberId: string; name: string | null; me: boolean }[];
  text: string;
  at: string;
}

export interface MemberJson {
  type: 'member';
  memberId: string | null;
  name: string | null;
  state: GroupMemberInfo['state'];
  admin: boolean;
  creator: boolean;
  conversationId: string | null;
}

export async function conversationJson(s: Session, c: ConversationInfo): Promise<ConversationJson> {
  s.names.assign([c], []);
  const n = s.names.conversation(c.id);
  let state: ConversationState = c.consent === 'denied' ? 'blocked' : c.consent === 'unknown' ? 'request' : 'active';
  if (c.refusal !== null) state = 'refused';
  else if (state === 'active' && (await s.store.outbox.forConversation(c.id)).some((o) => o.kind === 'handshake')) state = 'waiting';
  return {
    type: 'conversation',
    id: c.id,
    handle: n.handle,
    number: n.n,
    name: s.names.label(c),
    peerName: c.peerName,
    alias: n.alias ?? null,
    state,
    unread: c.unreadCount,
    pending: c.pendingCount,
    verified: s.names.verified(c.id, c.safetyNumber),
    safetyNumber: c.safetyNumber,
    refusal: c.refusal === null ? null : { reason: c.refusal.reason, at: iso(c.refusal.refusedAt)! },
    createdAt: iso(c.createdAt)!,
    lastActivityAt: iso(c.lastActivityAt)!,
  };
}

export async function messageJson(s: Session, m: MessageInfo, conv: ConversationJson): Promise<MessageJson> {
  return {
    type: 'message',
    id: m.id,
    chat: { kind: 'conversation', id: conv.id, handle: conv.handle },
    outgoing: m.outgoing,
    author: { name: m.outgoing ? 'me' : conv.name, memberId: null },
    kind: m.kind,
    text: m.text,
    replyTo: m.replyTo,
    sentAt: iso(m.sentAt)!,
    receivedAt: iso(m.receivedAt),
    state: s.watch.state(m),
    read: m.read,
  };
}

export function groupJson(s: Session, g: GroupInfo): GroupJson {
  s.names.assign([], [g]);
  const n = s.names.group(g.chatId);
  return { type: 'group', id: g.chatId, handle: n.handle, number: n.n, name: g.name, status: g.status, admin: g.admin, members: g.memberCount, pending: g.pendingCount, lastError: g.lastError };
}

const shortId = (memberId: string) => memberId.slice(0, 12) + '…';

export function groupMessageJson(g: GroupJson, m: GroupMessageInfo, recipients?: readonly GroupRecipientInfo[]): MessageJson {
  const out: MessageJson = {
    type: 'message',
    id: m.id,
    chat: { kind: 'group', id: g.id, handle: g.handle },
    outgoing: m.outgoing,
    author: { name: m.outgoing ? 'me' : (m.authorName ?? shortId(m.author)), memberId: m.author },
    kind: 'text',
    text: m.text,
    replyTo: m.replyTo,
    sentAt: iso(m.sentAt)!,
    receivedAt: iso(m.receivedAt),
    // A group message goes out on each member's pairwise session; per-member states are in recipients.
    state: m.outgoing ? 'sent' : 'received',
    read: true,
  };
  if (recipients !== undefined) out.recipients = recipients.map((r) => ({ memberId: r.memberId, name: r.name, state: r.status, conversationId: r.conversationId }));
  return out;
}

/** "Alice renamed the group to "x"": who did it by display name when we know it, else a short id. */
export function changeText(ch: GroupChangeInfo): string {
  const who = ch.byMe ? 'You' : (ch.authorName ?? shortId(ch.author));
  const names = (ts: GroupChangeInfo['targets']) => ts.map((t) => (t.me ? 'you' : (t.name ?? shortId(t.memberId)))).join(', ');
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

export function changeJson(ch: GroupChangeInfo): ChangeJson {
  return {
    type: 'change',
    id: ch.id,
    kind: ch.kind,
    author: { name: ch.byMe ? 'me' : (ch.authorName ?? shortId(ch.author)), memberId: ch.author },
    byMe: ch.byMe,
    targets: ch.targets.map((t) => ({ memberId: t.memberId, name: t.name, me: t.me })),
    text: changeText(ch),
    at: iso(ch.seenAt)!,
  };
}

export function memberJson(m: GroupMemberInfo): MemberJson {
  return { type: 'member', memberId: m.memberId, name: m.name, state: m.state, admin: m.admin, creator: m.creator, conversationId: m.conversationId };
}

// ---- text --------------------------------------------------------------------------------

const STATE_MARK: Record<DeliveryState, string> = { queued: ' … queued', sent: ' ✓ sent', delivered: ' ✓✓ delivered', failed: ' ✗ not delivered', received: '' };

export function conversationLine(c: ConversationJson): string {
  const flags = [
    c.state === 'request'
      ? '[request]'
      : c.state === 'blocked'
        ? '[blocked]'
        : c.state === 'waiting'
          ? '[waiting for their answer]'
          : c.state === 'refused'
            ? `[refused: ${refusalReasonText(c.refusal!.reason)}]`
            : '',
    c.verified === 'yes' ? 'verified' : c.verified === 'changed' ? 'SAFETY NUMBER CHANGED' : '',
    c.unread > 0 ? `${c.unread} unread` : '',
    c.pending > 0 ? `${c.pending} not yet delivered` : '',
  ].filter((f) => f !== '');
  const alias = c.alias !== null && c.peerName !== '' && c.alias !== c.peerName ? ` (${c.peerName})` : '';
  return `${String(c.number).padStart(3)}  ${c.handle.padEnd(12)} ${c.name}${alias}${flags.length > 0 ? '  ' + flags.join(', ') : ''}`;
}

export function groupLine(g: GroupJson): string {
  const flags = [g.status === 'member' ? '' : `[${g.status}]`, g.admin ? 'admin' : '', g.pending > 0 ? `${g.pending} pending` : ''].filter((f) => f !== '');
  return `${String(g.number).padStart(3)}  ${g.handle.padEnd(12)} ${g.name}  ${g.members} members${flags.length > 0 ? '  ' + flags.join(', ') : ''}`;
}

export function messageLine(m: MessageJson): string {
  const when = m.sentAt.slice(11, 16);
  const reply = m.replyTo !== null ? ` (reply to ${m.replyTo.slice(0, 8)})` : '';
  const mark = m.chat.kind === 'conversation' && m.outgoing ? STATE_MARK[m.state] : '';
  return `[${when}] ${m.author.name}: ${m.text ?? `[${m.kind}]`}${reply}${mark}`;
}

export function changeLine(ch: ChangeJson): string {
  return `[${ch.at.slice(11, 16)}] * ${ch.text}`;
}

export function memberLine(m: MemberJson, i: number): string {
  const who = m.state === 'self' ? 'me' : (m.name ?? (m.memberId !== null ? shortId(m.memberId) : '?'));
  const flags = [m.creator ? 'creator' : '', m.admin ? 'admin' : '', m.state === 'self' || m.state === 'connected' ? '' : m.state].filter((f) => f !== '').join(', ');
  return `${String(i + 1).padStart(3)}. ${who}${flags !== '' ? `  (${flags})` : ''}`;
}

export function safetyBlock(safetyNumber: string): string {
  const groups = safetyNumber.split(' ');
  const rows: string[] = [];
  for (let i = 0; i < groups.length; i += 4) rows.push('  ' + groups.slice(i, i + 4).join('  '));
  return rows.join('\n');
}

/** "in 3 s", "in 2 min": when the next retry is. */
export function inTime(atMs: number, nowMs = Date.now()): string {
  const s = Math.max(0, Math.round((atMs - nowMs) / 1000));
  if (s < 1) return 'now';
  if (s < 90) return `in ${s} s`;
  return `in ${Math.round(s / 60)} min`;
}

/** A duration on the command line: 30s, 30m, 12h, 7d, 1w (a bare number is seconds). */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d{1,9})\s*([smhdw]?)$/.exec(text.trim());
  if (m === null) throw usage(`${option}: "${text}" is not a duration`, 'examples: 0, 30s, 30m, 12h, 7d');
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as '' | 's' | 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * unit;
}

export function parseLimit(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isInteger(n) || n < 1 || n > 1000) throw usage(`--limit: "${text}" is not a number from 1 to 1000`);
  return n;
}
