/** The non-interactive commands (each opens the store, does one thing, closes it). */
import type { Client } from '@umbra/client/node';
import { CliError } from './errors.ts';
import { conversationLine, messageLine, parseDuration, printJson, qrForTerminal } from './format.ts';
import { findConversation, openSession, type GlobalOptions } from './session.ts';
import { transportFromFlags } from './config.ts';

async function withClient<T>(g: GlobalOptions, fn: (client: Client) => Promise<T>): Promise<T> {
  const session = await openSession(g.data, transportFromFlags(g));
  try {
    return await fn(session.client);
  } finally {
    await session.close();
  }
}

export async function init(g: GlobalOptions, opts: { name: string }): Promise<void> {
  if (opts.name.trim() === '') throw new CliError('--name cannot be empty');
  const session = await openSession(g.data, transportFromFlags(g), { create: { name: opts.name.trim() } });
  try {
    const c = session.client;
    if (g.json) printJson({ accountId: c.accountId, name: c.profile.name, dataDir: g.data, transport: session.transport });
    else {
      console.log(`Created ${c.profile.name}'s identity in ${g.data}`);
      console.log(`  account ${c.accountId}`);
      console.log(`  transport ${describeTransport(session.transport)}`);
      console.log('Next: "umbra invite" to invite someone, or "umbra accept <invitation>".');
    }
  } finally {
    await session.close();
  }
}

export function describeTransport(t: { kind: string; path?: string; url?: string; bootstrap?: readonly string[] }): string {
  if (t.kind === 'mailbox') return `local mailbox ${t.path}`;
  if (t.kind === 'hub') return `hub ${t.url}`;
  return `waku (bootstrap ${(t.bootstrap ?? []).join(', ') || 'none'})`;
}

export async function whoami(g: GlobalOptions): Promise<void> {
  await withClient(g, async (c) => {
    if (g.json) printJson({ accountId: c.accountId, name: c.profile.name });
    else console.log(`${c.profile.name}  account ${c.accountId}`);
  });
}

export async function invite(g: GlobalOptions, opts: { reusable?: boolean; ttl: string; qr: boolean }): Promise<void> {
  let ttlSeconds: number;
  try {
    ttlSeconds = parseDuration(opts.ttl);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  await withClient(g, async (c) => {
    const inv = await c.createInvitation({ reusable: opts.reusable ?? false, ttlSeconds });
    if (g.json) {
      printJson(inv);
      return;
    }
    if (opts.qr) console.log(await qrForTerminal(inv.text));
    console.log(inv.text);
    const expiry = inv.expiresAt === 0 ? 'never expires' : `expires ${new Date(inv.expiresAt * 1000).toLocaleString()}`;
    console.log(`\n${opts.reusable ? 'Reusable' : 'Single-use'} invitation, ${expiry}. Give it to one person you trust (scan, paste or read out).`);
  });
}

export async function accept(g: GlobalOptions, invitation: string): Promise<void> {
  await withClient(g, async (c) => {
    const conv = await c.accept(invitation);
    if (g.json) printJson(conv);
    else {
      console.log(`Started a conversation with ${conv.peerName || '(no name)'} (${conv.id.slice(0, 8)}).`);
      console.log(`Safety number (compare it with theirs): ${conv.safetyNumber}`);
    }
  });
}

export async function list(g: GlobalOptions): Promise<void> {
  await withClient(g, async (c) => {
    const all = c.conversations({ consent: 'all' });
    if (g.json) printJson(all);
    else if (all.length === 0) console.log('No conversations yet.');
    else all.forEach((conv, i) => console.log(conversationLine(conv, i + 1)));
  });
}

export async function requests(g: GlobalOptions): Promise<void> {
  await withClient(g, async (c) => {
    const reqs = c.requests();
    if (g.json) printJson(reqs);
    else if (reqs.length === 0) console.log('No requests.');
    else {
      for (const r of reqs) console.log(`${r.peerName || '(no name)'}  ${r.id}  (${r.unreadCount} messages)`);
      console.log('\n"umbra allow <id>" to accept, "umbra block <id>" to drop silently.');
    }
  });
}

export async function setConsent(g: GlobalOptions, ref: string, consent: 'allowed' | 'denied'): Promise<void> {
  await withClient(g, async (c) => {
    const conv = findConversation(c, ref);
    await c.setConsent(conv.id, consent);
    if (g.json) printJson({ id: conv.id, consent });
    else console.log(consent === 'allowed' ? `Accepted ${conv.peerName}.` : `Blocked ${conv.peerName}: nothing from them will be stored.`);
  });
}

export async function send(g: GlobalOptions, ref: string, words: string[], opts: { wait: string }): Promise<void> {
  const text = words.join(' ');
  if (text.length === 0) throw new CliError('nothing to send');
  await withClient(g, async (c) => {
    const conv = findConversation(c, ref);
    const msg = await c.send(conv.id, text);
    const waitMs = parseDuration(opts.wait) * 1000;
    const acked = await waitForAck(c, conv.id, msg.id, waitMs);
    if (g.json) printJson({ ...msg, acked });
    else console.log(acked ? 'Delivered ✓✓' : waitMs > 0 ? 'Sent; not acknowledged yet (it will be retried the next time you run umbra).' : 'Sent.');
  });
}

async function waitForAck(c: Client, conversationId: string, messageId: string, waitMs: number): Promise<boolean> {
  if (waitMs <= 0) return false;
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    const page = c.history(conversationId, { limit: 50 });
    if (page.messages.some((m) => m.id === messageId && m.status === 'acked')) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

export async function read(g: GlobalOptions, ref: string, opts: { limit: string; markRead: boolean }): Promise<void> {
  const limit = Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError('--limit must be 1..1000');
  await withClient(g, async (c) => {
    await c.sync();
    await c.settle();
    const conv = findConversation(c, ref);
    const page = c.history(conv.id, { limit });
    if (opts.markRead) await c.markRead(conv.id);
    if (g.json) printJson(page);
    else {
      if (page.messages.length === 0) console.log('No messages yet.');
      for (const m of page.messages) console.log(messageLine(m, conv.peerName));
    }
  });
}

export async function verify(g: GlobalOptions, ref: string, opts: { qr: boolean }): Promise<void> {
  await withClient(g, async (c) => {
    const conv = findConversation(c, ref);
    if (g.json) {
      printJson({ id: conv.id, peerName: conv.peerName, safetyNumber: conv.safetyNumber });
      return;
    }
    console.log(`Safety number with ${conv.peerName}:\n`);
    const groups = conv.safetyNumber.split(' ');
    for (let i = 0; i < groups.length; i += 4) console.log('  ' + groups.slice(i, i + 4).join('  '));
    if (opts.qr) console.log('\n' + (await qrForTerminal(`umbra_safety_1_${conv.safetyNumber.replace(/ /g, '')}`)));
    console.log('\nCompare these digits with the ones on their screen. If they match, nobody is in the middle.');
  });
}
