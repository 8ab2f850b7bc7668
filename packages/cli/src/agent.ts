/**
 * The agent: one process that owns an identity's store and keeps the client running (receiving,
 * retrying the outbox, answering handshakes), so nothing waits for "the next command". Other
 * `umbra` commands reach it over <data>/agent.sock (agent-client.ts has the protocol) and run
 * the same handlers there; `umbra chat` serves the socket too when no agent runs.
 *
 * The socket is created with umask 0177 (mode 0600) inside the 0700 data directory: only the
 * user who owns the identity can connect, as with ssh-agent. The passphrase is read once, by
 * `umbra agent start`, and handed to the detached process on a pipe (never in its environment or
 * arguments); nothing is logged but notices (agent.log, 0600).
 */
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { refusalReasonText, type ClientError, type GroupMessageInfo, type MessageInfo, type ConversationInfo, type GroupInfo } from '@umbra/client/node';
import { AgentConnection, socketPath, type AgentStatus, type ChatEvent } from './agent-client.ts';
import { CliError } from './errors.ts';
import { conversationJson, groupJson, groupMessageJson, inTime, messageJson, messageLine } from './format.ts';
import { openSession, type GlobalOptions, type Session } from './session.ts';
import { transportFromFlags } from './config.ts';
import { checkTransport, runHandler, toCliError } from './runner.ts';
import { readPassphrase } from './passphrase.ts';

export interface AgentServer {
  readonly status: AgentStatus;
  /** Resolves when a client asked the agent to stop. */
  readonly stopRequested: Promise<void>;
  close(): Promise<void>;
}

/**
 * What a chat shows as it happens: incoming messages, receipts, requests, group activity and
 * network trouble (said once when it starts and once when it ends, never once per retry).
 */
export function watchEvents(s: Session, emit: (e: ChatEvent) => void): () => void {
  const c = s.client;
  const recent = new Map<string, number>();
  const notice = (text: string) => emit({ kind: 'notice', text });
  const onMessage = (m: MessageInfo) => {
    if (m.outgoing) return;
    void (async () => {
      s.names.assign([await c.conversation(m.conversationId)], []);
      await s.names.save();
      const cj = await conversationJson(s, await c.conversation(m.conversationId));
      emit({ kind: 'message', chatId: cj.id, handle: cj.handle, text: messageLine(await messageJson(s, m, cj)) });
    })().catch(() => undefined);
  };
  const onAcked = (a: { conversationId: string; messageId: string }) => {
    void (async () => {
      // Only the text messages you wrote there: a group's frames ride on the same session and are acknowledged too.
      const recent = await c.history(a.conversationId, { limit: 50 });
      const m = recent.messages.find((x) => x.id === a.messageId);
      if (m === undefined || !m.outgoing || m.kind !== 'text') return;
      const cj = await conversationJson(s, await c.conversation(a.conversationId));
      emit({ kind: 'receipt', chatId: cj.id, handle: cj.handle, text: `  ✓✓ delivered to ${cj.name}` });
    })().catch(() => undefined);
  };
  const onRequest = (info: ConversationInfo) => {
    void (async () => {
      const cj = await conversationJson(s, info);
      await s.names.save();
      notice(`request from ${cj.name} (${cj.handle}): /allow ${cj.handle} or /block ${cj.handle}`);
    })().catch(() => undefined);
  };
  const onStarted = (info: ConversationInfo) => {
    void (async () => {
      const cj = await conversationJson(s, info);
      await s.names.save();
      notice(`${cj.name} and you are connected (${cj.handle}): /switch ${cj.handle}`);
    })().catch(() => undefined);
  };
  const onRefused = (info: ConversationInfo) => {
    void (async () => {
      const cj = await conversationJson(s, info);
      notice(`${cj.name} (${cj.handle}) refused your first contact: ${refusalReasonText(cj.refusal!.reason)}; ask them for a new invitation`);
    })().catch(() => undefined);
  };
  const onFirstContactRefused = (r: { invitationId: string; reason: 'invitation-used' | 'invitation-expired' }) => {
    notice(
      `someone answered your invitation ${r.invitationId.slice(0, 8)}, which ${r.reason === 'invitation-used' ? 'was already used' : 'has expired'}; their client was told (make a new one with "umbra invite")`,
    );
  };
  const onGroupMessage = (m: GroupMessageInfo) => {
    if (m.outgoing) return;
    void (async () => {
      const g = groupJson(s, await c.groups.get(m.chatId));
      await s.names.save();
      emit({ kind: 'message', chatId: g.id, handle: g.handle, text: messageLine(groupMessageJson(g, m)) });
    })().catch(() => undefined);
  };
  const onGroupInvited = (info: GroupInfo) => {
    const g = groupJson(s, info);
    void s.names.save().catch(() => undefined);
    notice(`invited to the group ${g.name} (${g.handle}): /group accept ${g.handle}`);
  };
  const onError = (e: ClientError) => {
    if (e.code === 'delivery-failed') return; // said once by the watch below
    const last = recent.get(e.message);
    if (last !== undefined && Date.now() - last < 60_000) return;
    recent.set(e.message, Date.now());
    notice(`problem: ${toCliError(e).message}`);
  };
  const offWatch = s.watch.on((w) => {
    if (w.kind === 'reachable') notice('the network is reachable again; queued messages are going out');
    else
      void s.watch
        .nextRetryAt(c)
        .then((at) => notice(`cannot reach the network (${w.message}); messages wait and are retried automatically${at !== null ? `, next try ${inTime(at)}` : ''}`))
        .catch(() => undefined);
  });
  c.on('message', onMessage);
  c.on('acked', onAcked);
  c.on('request', onRequest);
  c.on('conversation-started', onStarted);
  c.on('conversation-refused', onRefused);
  c.on('first-contact-refused', onFirstContactRefused);
  c.on('group-message', onGroupMessage);
  c.on('group-invited', onGroupInvited);
  c.on('error', onError);
  return () => {
    offWatch();
    c.off('message', onMessage);
    c.off('acked', onAcked);
    c.off('request', onRequest);
    c.off('conversation-started', onStarted);
    c.off('conversation-refused', onRefused);
    c.off('first-contact-refused', onFirstContactRefused);
    c.off('group-message', onGroupMessage);
    c.off('group-invited', onGroupInvited);
    c.off('error', onError);
  };
}

/** Remove a socket file no process listens on; refuse if an agent answers there. */
async function claimSocket(dataDir: string): Promise<void> {
  const path = socketPath(dataDir);
  if (!existsSync(path)) return;
  const other = await AgentConnection.connect(dataDir);
  if (other !== null) {
    const st = await other.status().catch(() => null);
    other.close();
    throw new CliError('agent', `an umbra ${st?.mode ?? 'agent'} already runs for ${dataDir}${st !== null ? ` (pid ${st.pid})` : ''}`, { hint: '"umbra agent stop" stops it' });
  }
  rmSync(path, { force: true });
}

export async function serveAgent(s: Session, mode: 'agent' | 'chat'): Promise<AgentServer> {
  await claimSocket(s.dataDir);
  if ((statSync(s.dataDir).mode & 0o077) !== 0) chmodSync(s.dataDir, 0o700);
  const status: AgentStatus = { pid: process.pid, name: s.client.profile.name, accountId: s.client.accountId, dataDir: s.dataDir, transport: s.transport, startedAt: new Date().toISOString(), mode };
  let requestStop: () => void = () => undefined;
  const stopRequested = new Promise<void>((resolve) => (requestStop = resolve));
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.setEncoding('utf8');
    const unsubscribes: (() => void)[] = [];
    const send = (v: unknown) => {
      if (!socket.destroyed) socket.write(JSON.stringify(v) + '\n');
    };
    socket.on('close', () => {
      sockets.delete(socket);
      for (const u of unsubscribes) u();
    });
    socket.on('error', () => undefined);
    createInterface({ input: socket }).on('line', (line) => {
      let req: { id?: unknown; method?: unknown; command?: unknown; params?: unknown; transport?: unknown };
      try {
        req = JSON.parse(line) as typeof req;
      } catch {
        return;
      }
      const id = typeof req.id === 'number' ? req.id : 0;
      const fail = (e: unknown) => send({ id, ok: false, error: toCliError(e).toJson().error });
      if (req.method === 'status') send({ id, ok: true, result: status });
      else if (req.method === 'stop') {
        send({ id, ok: true, result: { stopping: true } });
        requestStop();
      } else if (req.method === 'subscribe') unsubscribes.push(watchEvents(s, (event) => send({ id, event })));
      else if (req.method === 'call' && typeof req.command === 'string') {
        void (async () => {
          checkTransport(s, (req.transport as never) ?? null);
          return runHandler({ session: s, agent: true }, req.command as string, req.params ?? {});
        })().then((result) => send({ id, ok: true, result }), fail);
      } else fail(new CliError('usage', 'unknown agent request'));
    });
  });
  const path = socketPath(s.dataDir);
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
  } catch (e) {
    throw new CliError('agent', `cannot open the agent socket ${path}: ${(e as Error).message}`);
  } finally {
    process.umask(umask);
  }
  chmodSync(path, 0o600);
  return {
    status,
    stopRequested,
    async close() {
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(path, { force: true });
    },
  };
}

/** `umbra agent run`: the agent in the foreground (what `agent start` runs detached; also for a service manager). */
export async function runAgent(g: GlobalOptions, opts: { passphraseStdin?: boolean }): Promise<void> {
  const passphrase = opts.passphraseStdin === true ? await firstLine(process.stdin) : undefined;
  const say = (v: unknown) => process.stdout.write(JSON.stringify(v) + '\n');
  let session: Session;
  let server: AgentServer;
  try {
    session = await openSession(g.data, transportFromFlags(g), { syncIntervalMs: 2000, ...(passphrase !== undefined ? { passphrase } : {}) });
  } catch (e) {
    say({ ok: false, error: toCliError(e).toJson().error });
    throw toCliError(e);
  }
  try {
    server = await serveAgent(session, 'agent');
  } catch (e) {
    await session.close();
    say({ ok: false, error: toCliError(e).toJson().error });
    throw toCliError(e);
  }
  const log = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`);
  const off = watchEvents(session, (e) => {
    if (e.kind === 'notice') log(e.text);
  });
  say({ ok: true, result: server.status });
  log(`agent started (pid ${process.pid})`);
  await new Promise<void>((resolve) => {
    void server.stopRequested.then(resolve);
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  off();
  await server.close();
  await session.close();
  log('agent stopped');
}

function firstLine(input: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input });
    // Resolve before close(): closing emits 'close' at once, which would answer first.
    rl.once('line', (line) => {
      resolve(line);
      rl.close();
    });
    rl.once('close', () => reject(new CliError('usage', 'no passphrase on standard input')));
  });
}

/** `umbra agent start`: ask for the passphrase here, run the agent detached, wait until it serves. */
export async function startAgent(g: GlobalOptions, transportArgs: string[]): Promise<AgentStatus> {
  const running = await AgentConnection.connect(g.data);
  if (running !== null) {
    const st = await running.status();
    running.close();
    throw new CliError('agent', `an umbra ${st.mode} already runs for ${g.data} (pid ${st.pid})`, { hint: '"umbra agent stop" stops it' });
  }
  if (!existsSync(join(g.data, 'umbra.db'))) throw new CliError('no-identity', `no Umbra identity in ${g.data}`, { hint: 'run "umbra init --name <your name>" first' });
  const passphrase = await readPassphrase({ confirm: false });
  mkdirSync(g.data, { recursive: true, mode: 0o700 });
  const logFd = openSync(join(g.data, 'agent.log'), 'a', 0o600);
  const env = { ...process.env };
  delete env.UMBRA_PASSPHRASE;
  const child = spawn(process.execPath, [process.argv[1]!, '--data', g.data, ...transportArgs, 'agent', 'run', '--passphrase-stdin'], { detached: true, stdio: ['pipe', 'pipe', logFd], env });
  closeSync(logFd);
  child.stdin!.end(passphrase + '\n');
  const first = await new Promise<string>((resolve) => {
    const rl = createInterface({ input: child.stdout! });
    // Resolve before close(): closing emits 'close' at once, which would answer first.
    rl.once('line', (line) => {
      resolve(line);
      rl.close();
    });
    rl.once('close', () => resolve(''));
  });
  child.stdout!.destroy();
  child.unref();
  let answer: { ok?: boolean; result?: AgentStatus; error?: unknown };
  try {
    answer = JSON.parse(first) as typeof answer;
  } catch {
    throw new CliError('agent', 'the agent did not start', { hint: `see ${join(g.data, 'agent.log')}` });
  }
  if (answer.ok !== true || answer.result === undefined) throw CliError.fromJson({ error: answer.error });
  return answer.result;
}
