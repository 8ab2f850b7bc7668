/**
 * `umbra chat`: an interactive session. Lines you type go to the current conversation or group;
 * lines starting with / are commands (/help lists them). Incoming messages, receipts, requests
 * and network trouble are printed above the prompt as they arrive, without disturbing what is
 * being typed. With an agent running, chat is one of its clients; otherwise chat opens the
 * store itself and serves the agent socket while it runs, so other commands keep working.
 */
import { createInterface } from 'node:readline';
import { AgentConnection, type ChatEvent } from './agent-client.ts';
import { CliError } from './errors.ts';
import { transportFromFlags } from './config.ts';
import { readPassphrase } from './passphrase.ts';
import type { GlobalOptions } from './session.ts';
import type { Result } from './commands.ts';
import type { ConversationJson, GroupJson } from './format.ts';

const HELP = `Type a message and press Enter to send it to the current conversation or group.
  /list                 conversations and groups (numbers and handles never change)
  /switch <ref>         change the current conversation (or group): number, handle or name
  /history [n]          the last n messages (default 20)
  /invite [reusable]    print a new invitation
  /accept <invitation>  start a conversation from an invitation
  /requests             first contacts waiting for your answer
  /allow [ref]  /block [ref]   answer a request (default: the current conversation)
  /rename <name>        your own name for the current conversation
  /verify [mark]        the safety number of the current conversation (mark: it matched)
  /group list | create <name> <ref…> | accept <g> | members | add <ref> | send <text> | leave
  /quit                 leave (Ctrl-D works too)`;

interface Api {
  call(command: string, params: Record<string, unknown>): Promise<Result>;
  subscribe(onEvent: (e: ChatEvent) => void): void;
  /** Resolves when the chat should end from outside ("umbra agent stop", the agent going away). */
  readonly ended: Promise<string>;
  close(): Promise<void>;
}

type Current = { kind: 'conversation'; id: string; handle: string; name: string } | { kind: 'group'; id: string; handle: string; name: string };

async function remoteApi(conn: AgentConnection, g: GlobalOptions): Promise<Api> {
  const transport = transportFromFlags(g);
  return {
    call: async (command, params) => (await conn.call(command, params, transport)) as Result,
    subscribe: (fn) => conn.subscribe(fn),
    ended: new Promise((resolve) => conn.onClose(() => resolve('the agent stopped'))),
    async close() {
      conn.close();
    },
  };
}

async function localApi(g: GlobalOptions): Promise<Api> {
  const passphrase = await readPassphrase({ confirm: false });
  const { openSession } = await import('./session.ts');
  const { runHandler, toCliError } = await import('./runner.ts');
  const { serveAgent, watchEvents } = await import('./agent.ts');
  let session;
  try {
    session = await openSession(g.data, transportFromFlags(g), { syncIntervalMs: 2000, passphrase });
  } catch (e) {
    throw toCliError(e);
  }
  const server = await serveAgent(session, 'chat').catch(async (e: unknown) => {
    await session.close();
    throw toCliError(e);
  });
  const s = session;
  const offs: (() => void)[] = [];
  return {
    call: (command, params) => runHandler({ session: s, agent: true }, command, params),
    subscribe: (fn) => offs.push(watchEvents(s, fn)),
    ended: server.stopRequested.then(() => 'stopped by "umbra agent stop"'),
    async close() {
      for (const off of offs) off();
      await server.close();
      await s.close();
    },
  };
}

export async function chat(g: GlobalOptions, opts: { with?: string }): Promise<void> {
  const conn = await AgentConnection.connect(g.data);
  const api = conn !== null ? await remoteApi(conn, g) : await localApi(g);
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
  let current: Current | null = null;
  const print = (text: string) => {
    // Above the prompt, keeping what is being typed.
    process.stdout.write(`\r\x1b[K${text}\n`);
    rl.prompt(true);
  };
  const setPrompt = () => rl.setPrompt(current === null ? '> ' : `${current.kind === 'group' ? '#' : ''}${current.handle}> `);

  const me = (await api.call('whoami', {})).json as { account: { name: string; transport: { kind: string; url?: string; path?: string } } };
  const via = conn !== null ? ' through the running agent' : '';
  console.log(`Umbra chat as ${me.account.name}${via}. /help for commands.`);

  const switchTo = async (ref: string, limit: number): Promise<void> => {
    try {
      const r = await api.call('read', { ref, limit, markRead: true });
      const c = (r.json as { conversation: ConversationJson }).conversation;
      current = { kind: 'conversation', id: c.id, handle: c.handle, name: c.name };
      console.log(`— ${c.name} (${c.handle})${c.state === 'waiting' ? ' [waiting for their answer]' : c.state === 'request' ? ' [request: /allow or /block]' : ''} —`);
      if (r.text !== '') console.log(r.text);
    } catch (e) {
      if (!(e instanceof CliError) || e.code !== 'not-found') throw e;
      const r = await api.call('group.read', { ref, limit });
      const gr = (r.json as { group: GroupJson }).group;
      current = { kind: 'group', id: gr.id, handle: gr.handle, name: gr.name };
      console.log(`— group ${gr.name} (${gr.handle}, ${gr.members} members) —`);
      if (r.text !== '') console.log(r.text);
    }
    setPrompt();
  };

  const first = ((await api.call('list', {})).json as { conversations: ConversationJson[] }).conversations;
  if (opts.with !== undefined) await switchTo(opts.with, 10);
  else if (first.length > 0) await switchTo([...first].sort((a, b) => b.lastActivityAt.localeCompare(a.lastActivityAt))[0]!.handle, 10);
  else console.log('No conversations yet: /invite to create an invitation, /accept <invitation> to use one.');
  setPrompt();
  rl.prompt();

  api.subscribe((e) => {
    if (e.kind === 'notice') print(`(${e.text})`);
    else if (current !== null && e.chatId === current.id) {
      print(e.text);
      // Shown in the open conversation: it has been read.
      if (e.kind === 'message' && current.kind === 'conversation') void api.call('mark-read', { ref: current.id }).catch(() => undefined);
    } else if (e.kind === 'receipt') return;
    else print(`(new message in ${e.handle}: ${e.text.replace(/^\[\d\d:\d\d\] /, '')} — /switch ${e.handle})`);
  });

  const handle = async (line: string): Promise<boolean> => {
    if (!line.startsWith('/')) {
      if (current === null) throw new CliError('usage', 'no current conversation: /list, then /switch <ref>');
      const r = current.kind === 'group' ? await api.call('group.send', { ref: current.id, text: line }) : await api.call('send', { ref: current.id, text: line, waitMs: 0 });
      console.log(r.text);
      return true;
    }
    const [cmd, ...args] = line.slice(1).split(/\s+/);
    const arg = args.join(' ');
    const show = async (command: string, params: Record<string, unknown>) => {
      const r = await api.call(command, params);
      if (r.text !== '') console.log(r.text);
      return r;
    };
    const needCurrent = (): Current => {
      if (current === null) throw new CliError('usage', 'no current conversation: /switch <ref> first');
      return current;
    };
    switch (cmd) {
      case 'quit':
      case 'exit':
        return false;
      case 'help':
        console.log(HELP);
        break;
      case 'list': {
        const convs = ((await api.call('list', {})).json as { conversations: ConversationJson[] }).conversations;
        const groups = ((await api.call('group.list', {})).json as { groups: GroupJson[] }).groups;
        const { conversationLine, groupLine } = await import('./format.ts');
        if (convs.length === 0 && groups.length === 0) console.log('No conversations.');
        for (const c of convs) console.log(conversationLine(c) + (c.id === current?.id ? '   ← current' : ''));
        if (groups.length > 0) console.log('Groups:');
        for (const x of groups) console.log(groupLine(x) + (x.id === current?.id ? '   ← current' : ''));
        break;
      }
      case 'switch':
        if (arg === '') throw new CliError('usage', '/switch <number, handle or name>');
        await switchTo(arg, 10);
        break;
      case 'history': {
        const c = needCurrent();
        const n = arg === '' ? 20 : Number(arg);
        if (!Number.isInteger(n) || n < 1 || n > 1000) throw new CliError('usage', '/history takes a number from 1 to 1000');
        await show(c.kind === 'group' ? 'group.read' : 'read', { ref: c.id, limit: n, markRead: true });
        break;
      }
      case 'invite':
        await show('invite', { reusable: arg === 'reusable', ttlSeconds: 7 * 86400 });
        break;
      case 'accept': {
        if (arg === '') throw new CliError('usage', '/accept <invitation>');
        const r = await show('accept', { invitation: arg, waitMs: 0 });
        const c = (r.json as { conversation: ConversationJson }).conversation;
        current = { kind: 'conversation', id: c.id, handle: c.handle, name: c.name };
        setPrompt();
        break;
      }
      case 'requests':
        await show('requests', {});
        break;
      case 'allow':
      case 'block':
        await show('consent', { ref: arg === '' ? needCurrent().id : arg, consent: cmd === 'allow' ? 'allowed' : 'denied' });
        break;
      case 'rename': {
        const c = needCurrent();
        if (c.kind === 'group') await show('group.rename', { ref: c.id, name: arg });
        else await show('rename', { ref: c.id, name: arg });
        break;
      }
      case 'verify':
        await show('verify', { ref: needCurrent().id, mark: arg === 'mark' });
        break;
      case 'group': {
        const [sub, ...rest] = args;
        const restText = rest.join(' ');
        const inGroup = () => {
          const c = needCurrent();
          if (c.kind !== 'group') throw new CliError('usage', 'switch to a group first (/switch <group>)');
          return c;
        };
        if (sub === 'list' || sub === undefined) await show('group.list', {});
        else if (sub === 'create') {
          const [name, ...refs] = rest;
          if (name === undefined) throw new CliError('usage', '/group create <name> <ref…>');
          const r = await show('group.create', { name, refs });
          const gr = (r.json as { group: GroupJson }).group;
          current = { kind: 'group', id: gr.id, handle: gr.handle, name: gr.name };
          setPrompt();
        } else if (sub === 'accept') await show('group.accept', { ref: restText === '' ? inGroup().id : restText });
        else if (sub === 'members') await show('group.members', { ref: restText === '' ? inGroup().id : restText });
        else if (sub === 'add') await show('group.add', { ref: inGroup().id, who: restText });
        else if (sub === 'remove') await show('group.remove', { ref: inGroup().id, who: restText });
        else if (sub === 'send') await show('group.send', { ref: inGroup().id, text: restText });
        else if (sub === 'leave') await show('group.leave', { ref: inGroup().id });
        else throw new CliError('usage', `unknown /group command "${sub}" (/help lists them)`);
        break;
      }
      default:
        throw new CliError('usage', `unknown command /${cmd} (/help lists them)`);
    }
    return true;
  };

  const ended = api.ended.then((why) => {
    print(`(${why})`);
    rl.close();
  });
  for await (const raw of rl) {
    const line = raw.trim();
    if (line === '') {
      rl.prompt();
      continue;
    }
    try {
      if (!(await handle(line))) break;
    } catch (e) {
      const err = e instanceof CliError ? e : new CliError('internal', e instanceof Error ? e.message : String(e));
      console.log(`! ${err.message}${err.hint !== null ? ` (${err.hint})` : ''}`);
    }
    rl.prompt();
  }
  rl.close();
  void ended;
  await api.close();
}
