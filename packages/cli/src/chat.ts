/**
 * `umbra chat`: an interactive session. Lines you type go to the current conversation; lines
 * starting with / are commands (/help lists them). Incoming messages, receipts and requests
 * are printed as they arrive.
 */
import { createInterface } from 'node:readline';
import type { Client, ConversationInfo } from '@umbra/client/node';
import { CliError } from './errors.ts';
import { conversationLine, messageLine } from './format.ts';
import { findConversation, openSession, type GlobalOptions } from './session.ts';
import { transportFromFlags } from './config.ts';
import { describeTransport } from './commands.ts';

const HELP = `Type a message and press Enter to send it to the current conversation.
  /list                 conversations (numbered)
  /switch <n|name|id>   change the current conversation
  /history [n]          the last n messages (default 20)
  /invite [reusable]    print a new invitation
  /accept <invitation>  start a conversation from an invitation
  /requests             first contacts waiting for your answer
  /allow [n]  /block [n] answer a request (default: the current conversation)
  /verify               the safety number of the current conversation
  /quit                 leave (Ctrl-D works too)`;

export async function chat(g: GlobalOptions, opts: { with?: string }): Promise<void> {
  const session = await openSession(g.data, transportFromFlags(g));
  const c = session.client;
  let current: ConversationInfo | null = null;
  const out = (line: string) => {
    // Print above the prompt without mangling what is being typed.
    process.stdout.write(`\r\x1b[K${line}\n`);
    rl.prompt(true);
  };
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
  const setPrompt = () => rl.setPrompt(current === null ? '> ' : `${current.peerName || current.id.slice(0, 8)}> `);

  console.log(`Umbra chat as ${c.profile.name} (${describeTransport(session.transport)}). /help for commands.`);
  const all = c.conversations({ consent: 'all' });
  if (opts.with !== undefined) current = findConversation(c, opts.with);
  else if (all.length > 0) current = all[0]!;
  if (current !== null) {
    console.log(`Talking with ${current.peerName} — /list to see the others.`);
    showHistory(c, current, 10, console.log);
  } else console.log('No conversations yet: /invite to create an invitation, /accept <invitation> to use one.');
  setPrompt();
  rl.prompt();

  const events = c.events();
  const pump = (async () => {
    for await (const event of events) {
      if (event.type === 'message' && !event.data.outgoing) {
        const conv = c.conversation(event.data.conversationId);
        if (current !== null && conv.id === current.id) {
          out(messageLine(event.data, conv.peerName));
          void c.markRead(conv.id).catch(() => undefined);
        } else out(`(new message from ${conv.peerName || conv.id.slice(0, 8)}: /switch ${conv.peerName || conv.id.slice(0, 8)})`);
      } else if (event.type === 'acked' && current !== null && event.data.conversationId === current.id) {
        out(`  ✓✓ delivered`);
      } else if (event.type === 'request') {
        out(`(request from ${event.data.peerName || '(no name)'} — /allow or /block after /switch ${event.data.id.slice(0, 8)})`);
      } else if (event.type === 'conversation-started') {
        out(`(${event.data.peerName || 'someone'} accepted your invitation: /switch ${event.data.peerName || event.data.id.slice(0, 8)})`);
        if (current === null) {
          current = event.data;
          setPrompt();
        }
      } else if (event.type === 'missing') {
        out(`(waiting for ${event.data.messageIds.length} missing message(s) from ${c.conversation(event.data.conversationId).peerName}; asked again)`);
      } else if (event.type === 'error') {
        out(`(error: ${event.data.message})`);
      }
    }
  })();

  for await (const raw of rl) {
    const line = raw.trim();
    if (line === '') {
      rl.prompt();
      continue;
    }
    try {
      if (!line.startsWith('/')) {
        if (current === null) throw new CliError('no current conversation: /list, then /switch <n>');
        await c.send(current.id, line);
      } else {
        const [cmd, ...args] = line.slice(1).split(/\s+/);
        const arg = args.join(' ');
        if (cmd === 'quit' || cmd === 'exit') break;
        else if (cmd === 'help') console.log(HELP);
        else if (cmd === 'list') {
          const convs = c.conversations({ consent: 'all' });
          if (convs.length === 0) console.log('No conversations.');
          convs.forEach((conv, i) => console.log(conversationLine(conv, i + 1) + (conv.id === current?.id ? '   ← current' : '')));
        } else if (cmd === 'switch') {
          current = findConversation(c, arg);
          setPrompt();
          showHistory(c, current, 10, console.log);
          await c.markRead(current.id);
        } else if (cmd === 'history') {
          if (current === null) throw new CliError('no current conversation');
          showHistory(c, current, arg === '' ? 20 : Number(arg), console.log);
        } else if (cmd === 'invite') {
          const inv = await c.createInvitation({ reusable: arg === 'reusable', ttlSeconds: 7 * 86400 });
          console.log(inv.text);
        } else if (cmd === 'accept') {
          current = await c.accept(arg);
          setPrompt();
          console.log(`Started a conversation with ${current.peerName}. Safety number: ${current.safetyNumber}`);
        } else if (cmd === 'requests') {
          const reqs = c.requests();
          if (reqs.length === 0) console.log('No requests.');
          for (const r of reqs) console.log(`${r.peerName || '(no name)'}  ${r.id.slice(0, 8)}  (${r.unreadCount} messages)`);
        } else if (cmd === 'allow' || cmd === 'block') {
          const target = arg === '' ? current : findConversation(c, arg);
          if (target === null) throw new CliError('which conversation?');
          await c.setConsent(target.id, cmd === 'allow' ? 'allowed' : 'denied');
          console.log(cmd === 'allow' ? `Accepted ${target.peerName}.` : `Blocked ${target.peerName}.`);
        } else if (cmd === 'verify') {
          if (current === null) throw new CliError('no current conversation');
          console.log(`Safety number with ${current.peerName}: ${c.conversation(current.id).safetyNumber}`);
        } else throw new CliError(`unknown command /${cmd} (/help lists them)`);
      }
    } catch (e) {
      console.log(`! ${e instanceof Error ? e.message : String(e)}`);
    }
    rl.prompt();
  }
  rl.close();
  await events.return?.();
  await pump.catch(() => undefined);
  await session.close();
}

function showHistory(c: Client, conv: ConversationInfo, n: number, print: (s: string) => void): void {
  const limit = Number.isInteger(n) && n > 0 ? Math.min(n, 500) : 20;
  for (const m of c.history(conv.id, { limit }).messages) print(messageLine(m, conv.peerName));
}
