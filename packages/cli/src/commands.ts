/**
 * What each command does, given an open session: the same functions run in a one-shot process
 * and inside the agent (agent.ts), so a command says the same thing wherever it runs. Each takes
 * parameters already checked by main.ts (nothing here parses the command line) and returns the
 * --json document and the text to print; the caller prints.
 */
import { ClientError, fetchInvitationFromLink, nodeProvider, refusalReasonText, type ConversationInfo, type InvitationInfo } from '@umbra/client/node';
import { looksLikeInvitationLink, parseInvitation, toHex } from '@umbra/protocol';
import { CliError } from './errors.ts';
import { describeTransport } from './config.ts';
import { hubDirectory } from './transport.ts';
import { conversationJson, conversationLine, inTime, messageJson, messageLine, safetyBlock, type ConversationJson, type MessageJson } from './format.ts';
import type { Session } from './session.ts';

/** What a command produced: the --json document, the text lines, and a QR payload to draw on a terminal. */
export interface Result {
  readonly json: Record<string, unknown>;
  readonly text: string;
  readonly qr?: string;
  /** Printed on stderr in text mode, carried as `warnings` in --json. */
  readonly warnings?: string[];
}

export interface Context {
  readonly session: Session;
  /** True inside the agent (or a chat acting as it): the client is running and keeps delivering. */
  readonly agent: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every conversation, each with its stable handle (new ones get theirs now). */
export async function allConversations(s: Session): Promise<ConversationInfo[]> {
  const all = await s.client.conversations({ consent: 'all' });
  s.names.assign(all, []);
  await s.names.save();
  return all;
}

export async function findConversation(s: Session, ref: string): Promise<ConversationInfo> {
  return s.names.findConversation(ref, await allConversations(s));
}

/** The sentence about retries, once: when the next try is and who makes it. */
async function retryNote(ctx: Context): Promise<string> {
  const at = await ctx.session.watch.nextRetryAt(ctx.session.client);
  const when = at === null ? '' : ` (next try ${inTime(at)})`;
  return ctx.agent ? `The agent retries it${when}.` : `It is retried the next time umbra runs; "umbra agent start" keeps retrying in the background.`;
}

export async function whoami(ctx: Context): Promise<Result> {
  const s = ctx.session;
  const account = { id: s.client.accountId, name: s.client.profile.name, dataDir: s.dataDir, transport: s.transport, agent: ctx.agent };
  return { json: { account }, text: `${account.name}  account ${account.id}\n  ${describeTransport(s.transport)}${ctx.agent ? '  (agent running)' : ''}` };
}

const utc = (s: number) => `${new Date(s * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;

/**
 * With a hub, a short link (the invitation sealed at the hub's directory) besides the full text,
 * and the QR code of the link (it fits a terminal; the full text's does not). `full`: the full
 * text only, as without a hub (it needs no service: the offline form).
 */
export async function invite(ctx: Context, p: { reusable: boolean; ttlSeconds: number; full?: boolean }): Promise<Result> {
  const s = ctx.session;
  const inv: InvitationInfo = await s.client.createInvitation({ reusable: p.reusable, ttlSeconds: p.ttlSeconds });
  const directory = s.transport.kind === 'hub' && p.full !== true ? hubDirectory(s.transport.url) : null;
  const warnings: string[] = [];
  let link: { link: string; expiresAt: number } | null = null;
  if (directory !== null) {
    try {
      link = await s.client.shortLink(inv, { service: directory });
    } catch (e) {
      // The full invitation is made and works without the directory: hand that out instead.
      warnings.push(`no short link (${(e as Error).message}); here is the full invitation`);
    }
  }
  const expiry = inv.expiresAt === 0 ? 'never expires' : `expires ${utc(inv.expiresAt)}`;
  const whom = p.reusable ? 'the people' : 'the one person';
  const text =
    link === null
      ? `${inv.text}\n\n${p.reusable ? 'Reusable' : 'Single-use'} invitation, ${expiry}. Give it to ${whom} you want to talk to: they paste it into "umbra accept" (or scan the code). Anyone who has it can start a conversation with you.`
      : // Short lines: with the QR code above (18 rows) it all fits an 80×24 terminal.
        [
          link.link,
          `${p.reusable ? 'Reusable' : 'Single-use'} invitation, ${expiry}.`,
          ...(link.expiresAt === inv.expiresAt ? [] : [`The link works until ${utc(link.expiresAt)} (links last at most 7 days).`]),
          `Give it to ${whom} you want to talk to: they run "umbra accept <link>"`,
          'or scan the code. Anyone who has it can start a conversation with you.',
          'The long form, which needs no service: umbra invite --full',
        ].join('\n');
  const json = {
    text: inv.text,
    id: inv.invitationId,
    expiresAt: inv.expiresAt === 0 ? null : new Date(inv.expiresAt * 1000).toISOString(),
    reusable: p.reusable,
    ...(link === null ? {} : { link: link.link, linkExpiresAt: new Date(link.expiresAt * 1000).toISOString() }),
  };
  return { json: { invitation: json }, text, qr: link?.link ?? inv.text, ...(warnings.length > 0 ? { warnings } : {}) };
}

/** A short link → the invitation behind it (fetched from its directory and opened); anything else as it is. */
async function resolveInvitation(invitation: string): Promise<string> {
  if (!looksLikeInvitationLink(invitation)) return invitation;
  try {
    return await fetchInvitationFromLink(nodeProvider, invitation);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'invitation-expired') throw new CliError('invitation-expired', 'this invitation link has expired', { hint: 'ask for a new one' });
    if (code === 'delivery-failed') throw new CliError('unreachable', `cannot fetch the invitation behind this link: ${(e as Error).message}`, { hint: 'the service in the link must be reachable; or ask for the full umbra_chatintro_1_… text', cause: e });
    throw new CliError('invitation-invalid', `this is not a usable invitation link: ${(e as Error).message}`, { hint: 'copy the whole link, or ask for the full umbra_chatintro_1_… text' });
  }
}

/** Which endpoint kinds this identity's transport can send to. */
function reachable(s: Session): 'receivingService' | 'route' {
  return s.transport.kind === 'hub' ? 'receivingService' : 'route';
}

export async function accept(ctx: Context, p: { invitation: string; waitMs: number }): Promise<Result> {
  const s = ctx.session;
  const invitation = await resolveInvitation(p.invitation);
  let parsed;
  try {
    parsed = parseInvitation(nodeProvider, invitation, Date.now());
  } catch (e) {
    throw e instanceof Error && (e as { code?: string }).code === 'invitation-expired'
      ? new CliError('invitation-expired', 'this invitation has expired', { hint: 'ask for a new one' })
      : new CliError('invitation-invalid', `this is not a usable invitation: ${(e as Error).message}`, { hint: 'copy the whole umbra_chatintro_1_… text' });
  }
  // A dead end the CLI can see before anything is sent: an invitation reachable only through a transport we do not use.
  const kinds = new Set(parsed.endpoints.map((e) => e.endpoint.case));
  const mine = reachable(s);
  if (!kinds.has(mine)) {
    const theirs = kinds.has('receivingService') ? 'an Umbra hub (--hub)' : 'Waku or a local mailbox';
    throw new CliError('transport-mismatch', `this invitation can only be answered through ${theirs}; this identity uses ${describeTransport(s.transport)}`, {
      hint: 'ask for an invitation made on the same network, or use an identity on theirs (--data DIR init)',
    });
  }
  const invitationId = toHex(parsed.invitationId);
  for (const c of await allConversations(s)) {
    let rel: { invitationId: string } | null;
    try {
      rel = s.client.relationship(c.id);
    } catch {
      rel = null; // a conversation without a relationship record (legacy)
    }
    if (rel !== null && rel.invitationId === invitationId && c.origin === 'accepted') {
      const j = await conversationJson(s, c);
      throw new CliError('invitation-already-used', `you already accepted this invitation: conversation ${j.handle} with ${j.name}`, { hint: `"umbra read ${j.handle}"` });
    }
  }
  const conv = await s.client.accept(invitation);
  let j = await conversationJson(s, conv);
  await s.names.save();
  const deadline = Date.now() + p.waitMs;
  while (j.state === 'waiting' && Date.now() < deadline) {
    await sleep(200);
    j = await conversationJson(s, await s.client.conversation(conv.id));
  }
  const who = j.name;
  if (j.state === 'refused') {
    throw new CliError('invitation-refused', `${who} refused this first contact: ${refusalReasonText(j.refusal!.reason)}`, { hint: `ask ${who} for a new invitation` });
  }
  if (j.state === 'waiting') {
    const unreachable = s.watch.failure;
    const text = [
      `Sent a first contact to ${who} (${j.handle}); ${unreachable !== null ? `it is not out yet: ${unreachable}` : 'no answer from their client yet'}.`,
      unreachable !== null ? await retryNote(ctx) : `Their client answers when it is online; "umbra list" shows [waiting for their answer] until then.`,
      `If the invitation was already used or has expired, their client says so and "umbra list" shows [refused]: then ask ${who} for a new one.`,
      `Safety number (compare it with theirs): ${j.safetyNumber}`,
    ].join('\n');
    return { json: { conversation: j, state: 'waiting' }, text };
  }
  return { json: { conversation: j, state: 'started' }, text: `Started a conversation with ${who} (${j.handle}).\nSafety number (compare it with theirs): ${j.safetyNumber}` };
}

export async function list(ctx: Context): Promise<Result> {
  const s = ctx.session;
  const out: ConversationJson[] = [];
  for (const c of await allConversations(s)) out.push(await conversationJson(s, c));
  out.sort((a, b) => a.number - b.number);
  return { json: { conversations: out }, text: out.length === 0 ? 'No conversations yet: "umbra invite" or "umbra accept <invitation>".' : out.map(conversationLine).join('\n') };
}

export async function setConsent(ctx: Context, p: { ref: string; consent: 'allowed' | 'denied' }): Promise<Result> {
  const s = ctx.session;
  const conv = await findConversation(s, p.ref);
  await s.client.setConsent(conv.id, p.consent);
  const j = await conversationJson(s, await s.client.conversation(conv.id));
  return { json: { conversation: j }, text: p.consent === 'allowed' ? `Accepted ${j.name} (${j.handle}).` : `Blocked ${j.name} (${j.handle}): nothing from them will be stored.` };
}

export async function rename(ctx: Context, p: { ref: string; name: string }): Promise<Result> {
  const s = ctx.session;
  const conv = await findConversation(s, p.ref);
  s.names.rename(conv.id, p.name);
  await s.names.save();
  const j = await conversationJson(s, conv);
  return { json: { conversation: j }, text: `${j.handle} is now called "${j.name}" (only on this device; ${conv.peerName || 'they'} keep${conv.peerName ? 's' : ''} their own name).` };
}

async function waitForState(s: Session, conversationId: string, messageId: string, waitMs: number): Promise<MessageJson | null> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const page = await s.client.history(conversationId, { limit: 50 });
    const m = page.messages.find((x) => x.id === messageId);
    if (m === undefined) return null;
    const j = await messageJson(s, m, await conversationJson(s, await s.client.conversation(conversationId)));
    if (j.state === 'delivered' || j.state === 'failed' || Date.now() >= deadline) return j;
    await sleep(100);
  }
}

export async function send(ctx: Context, p: { ref: string; text: string; waitMs: number }): Promise<Result> {
  const s = ctx.session;
  const conv = await findConversation(s, p.ref);
  const cj = await conversationJson(s, conv);
  if (cj.state === 'blocked') throw new CliError('blocked', `${cj.name} is blocked: nothing is sent`, { hint: `"umbra allow ${cj.handle}" unblocks` });
  const sent = await s.client.send(conv.id, p.text);
  // Wait for the network's answer to this publish (not only for the message to be on disk).
  await s.client.settle();
  const m = (await waitForState(s, conv.id, sent.id, p.waitMs)) ?? (await messageJson(s, sent, cj));
  const lines: string[] = [];
  if (m.state === 'delivered') lines.push(`Delivered ✓✓ to ${cj.name}.`);
  else if (m.state === 'sent') lines.push(`Sent ✓ (the network has it; ${cj.name}'s client has not confirmed it yet).`);
  else if (m.state === 'failed') lines.push(`Not delivered ✗: ${cj.name}'s client never confirmed it and it is no longer retried.`);
  else {
    const why = s.watch.failure;
    lines.push(cj.state === 'waiting' ? `Queued: ${cj.name} has not answered your first contact yet; it goes out when they do.` : `Queued: not sent yet${why !== null ? ` (${why})` : ''}.`);
    if (cj.state !== 'waiting') lines.push(await retryNote(ctx));
  }
  return { json: { message: m }, text: lines.join('\n') };
}

export async function read(ctx: Context, p: { ref: string; limit: number; before?: string; markRead: boolean }): Promise<Result> {
  const s = ctx.session;
  const conv = await findConversation(s, p.ref);
  let page;
  try {
    page = await s.client.history(conv.id, { limit: p.limit, ...(p.before !== undefined ? { before: p.before } : {}) });
  } catch (e) {
    if (e instanceof ClientError && e.code === 'invalid-argument' && p.before !== undefined) throw new CliError('usage', `--before: "${p.before}" is not a cursor of this conversation`, { hint: 'pass the "cursor" of an earlier read --json' });
    throw e;
  }
  if (p.markRead && p.before === undefined) await s.client.markRead(conv.id);
  const cj = await conversationJson(s, await s.client.conversation(conv.id));
  const messages: MessageJson[] = [];
  for (const m of page.messages) messages.push(await messageJson(s, m, cj));
  const more = page.cursor !== null ? `\n(older messages: umbra read ${cj.handle} --before ${page.cursor})` : '';
  return { json: { conversation: cj, messages, cursor: page.cursor }, text: (messages.length === 0 ? 'No messages yet.' : messages.map(messageLine).join('\n')) + more };
}

/** The chat marks a conversation read when it shows a message as it arrives (not a command of its own). */
export async function markRead(ctx: Context, p: { ref: string }): Promise<Result> {
  const conv = await findConversation(ctx.session, p.ref);
  await ctx.session.client.markRead(conv.id);
  return { json: {}, text: '' };
}

export async function verifyText(cj: ConversationJson, marked: boolean): Promise<string> {
  const state =
    cj.verified === 'yes'
      ? marked
        ? 'Marked verified: "umbra list" shows it, and says so if this number ever changes.'
        : 'You marked this number verified.'
      : cj.verified === 'changed'
        ? 'THIS NUMBER CHANGED since you marked it verified: compare it again before trusting the conversation.'
        : 'Compare these digits with the ones on their screen. If they match, nobody is in the middle: "umbra verify --mark" records that.';
  return `Safety number with ${cj.name} (${cj.handle}):\n\n${safetyBlock(cj.safetyNumber)}\n\n${state}`;
}
