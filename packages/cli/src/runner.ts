/**
 * Running a command where the store is: the table of commands (the same in a one-shot process
 * and in the agent), and the mapping of every SDK error to a CliError with a stable code.
 * Loaded only when a command runs here (it pulls in the SDK); main.ts stays light so that a
 * command answered by the agent starts fast.
 */
import { ClientError, GroupError } from '@umbra/client/node';
import { CliError } from './errors.ts';
import * as commands from './commands.ts';
import * as group from './group.ts';
import * as directory from './directory.ts';
import { openSession, type GlobalOptions, type Session } from './session.ts';
import { transportFromFlags, sameTransport, describeTransport, type TransportConfig } from './config.ts';
import type { Context, Result } from './commands.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- parameters are checked by main.ts before they get here */
type Handler = (ctx: Context, params: any) => Promise<Result>;

export const HANDLERS: Record<string, Handler> = {
  whoami: commands.whoami,
  invite: commands.invite,
  accept: commands.accept,
  list: commands.list,
  consent: commands.setConsent,
  rename: commands.rename,
  send: commands.send,
  read: commands.read,
  'mark-read': commands.markRead,
  verify: directory.verify,
  requests: directory.requests,
  register: directory.register,
  contact: directory.contact,
  approve: directory.approve,
  monitor: directory.monitor,
  'group.create': group.create,
  'group.list': group.list,
  'group.accept': group.acceptGroup,
  'group.members': group.members,
  'group.add': group.add,
  'group.remove': group.remove,
  'group.promote': group.promote,
  'group.rename': group.renameGroup,
  'group.leave': group.leave,
  'group.send': group.sendGroup,
  'group.read': group.read,
};
/* eslint-enable @typescript-eslint/no-explicit-any */

/** Commands that only read what is stored: a one-shot run fetches first so they show what arrived meanwhile. */
const FETCH_FIRST = new Set(['list', 'read', 'requests', 'group.list', 'group.read', 'group.members', 'group.accept', 'verify', 'accept', 'send', 'group.send', 'consent']);

/** Any error below a command as the person at the terminal should see it. */
export function toCliError(e: unknown): CliError {
  if (e instanceof CliError) return e;
  if (e instanceof GroupError) return new CliError(e.groupCode === 'no-recipients' ? 'nobody-to-receive' : e.groupCode === 'already-member' ? 'already-member' : 'not-allowed', e.message, { cause: e });
  if (e instanceof ClientError) {
    const c = { cause: e };
    switch (e.code) {
      case 'invalid-argument':
        return new CliError('usage', e.message, c);
      case 'invitation-malformed':
      case 'invitation-bad-signature':
      case 'invitation-unsupported-version':
        return new CliError('invitation-invalid', `this is not a usable invitation: ${e.message}`, { ...c, hint: 'copy the whole umbra_chatintro_1_… text' });
      case 'invitation-expired':
        return new CliError('invitation-expired', 'this invitation has expired', { ...c, hint: 'ask for a new one' });
      case 'invitation-own':
        return new CliError('invitation-own', 'this is one of your own invitations', { ...c, hint: 'give it to the other person; they run "umbra accept"' });
      case 'unknown-conversation':
        return new CliError('not-found', 'no such conversation', { ...c, hint: '"umbra list" shows them' });
      case 'conversation-denied':
        return new CliError('blocked', 'this conversation is blocked: nothing is sent', { ...c, hint: '"umbra allow <handle>" unblocks it' });
      case 'conversation-refused':
        return new CliError('invitation-refused', `they refused this first contact: ${e.message}`, { ...c, hint: 'ask them for a new invitation' });
      case 'conversation-cannot-send':
        return new CliError('cannot-send', 'this conversation cannot send yet (the other side has not answered)', c);
      case 'message-too-large':
        return new CliError('message-too-large', e.message, c);
      case 'wrong-passphrase':
        return new CliError('wrong-passphrase', 'wrong passphrase for this store', { ...c, hint: 'check UMBRA_PASSPHRASE' });
      case 'store-locked':
        return new CliError('store-locked', 'the store is in use by another umbra process', { ...c, hint: 'wait for it, or stop it' });
      case 'delivery-failed':
        return new CliError('unreachable', e.message, { ...c, hint: 'is the hub running? "umbra hub" starts one' });
      case 'store-corrupt':
      case 'store-unsupported-version':
        return new CliError('internal', `the store cannot be read: ${e.message}`, { ...c, hint: 'a newer umbra may have written it' });
      default:
        return new CliError('internal', e.message, c);
    }
  }
  const message = e instanceof Error ? e.message : String(e);
  return new CliError('internal', message, { cause: e });
}

/** The transport a command asks for (flags) must be the one the running session uses. */
export function checkTransport(session: Session, wanted: TransportConfig | null): void {
  if (wanted !== null && !sameTransport(wanted, session.transport)) {
    throw new CliError('transport-mismatch', `the agent runs this identity on ${describeTransport(session.transport)}`, { hint: 'leave out the transport flags, or "umbra agent stop" first to change it' });
  }
}

export async function runHandler(ctx: Context, command: string, params: unknown): Promise<Result> {
  const h = HANDLERS[command];
  if (h === undefined) throw new CliError('usage', `unknown command ${command}`);
  try {
    return await h(ctx, params);
  } catch (e) {
    throw toCliError(e);
  }
}

/** Open the store here, run one command, close it (the agent is not running). */
export async function runLocal(g: GlobalOptions, command: string, params: unknown, passphrase: string): Promise<Result> {
  let session: Session;
  try {
    session = await openSession(g.data, transportFromFlags(g), { syncIntervalMs: 0, passphrase });
  } catch (e) {
    throw toCliError(e);
  }
  const warnings: string[] = [];
  try {
    if (FETCH_FIRST.has(command)) {
      await session.client.sync();
      await session.client.settle();
      if (session.watch.failure !== null) warnings.push(`could not reach the network (${session.watch.failure}); showing what is stored here`);
    }
    const r = await runHandler({ session, agent: false }, command, params);
    return warnings.length === 0 ? r : { ...r, warnings: [...warnings, ...(r.warnings ?? [])] };
  } finally {
    await session.close().catch(() => undefined);
  }
}

/** `umbra init`: a new identity (never through the agent: there is none yet). */
export async function init(g: GlobalOptions, name: string, passphrase: string): Promise<Result> {
  let session: Session;
  try {
    session = await openSession(g.data, transportFromFlags(g), { create: { name }, syncIntervalMs: 0, passphrase });
  } catch (e) {
    throw toCliError(e);
  }
  try {
    const c = session.client;
    const account = { id: c.accountId, name: c.profile.name, dataDir: g.data, transport: session.transport, agent: false };
    const hubHint = session.transport.kind === 'mailbox' ? '\nThis identity uses a local mailbox (this machine only); to reach people elsewhere, create it with --hub <url>.' : '';
    return {
      json: { account },
      text: `Created ${account.name}'s identity in ${g.data}\n  account ${account.id}\n  ${describeTransport(session.transport)}${hubHint}\nNext: "umbra invite" to invite someone, or "umbra accept <invitation>".`,
    };
  } finally {
    await session.close().catch(() => undefined);
  }
}
