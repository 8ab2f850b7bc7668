/**
 * `umbra`: private, consensual, durable conversations from the terminal.
 * Every command takes --data DIR (default ~/.umbra or $UMBRA_DATA), --json for scripts and
 * --debug for stack traces. The store passphrase comes from $UMBRA_PASSPHRASE or is asked for.
 *
 * This module stays light: it checks the arguments (before anything is sent), then hands the
 * command to the agent when one runs for the data directory (agent-client.ts: no SDK loaded),
 * or loads the SDK and runs it here (runner.ts). docs/CLI.md describes commands, JSON and exit codes.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { CliError, usage } from './errors.ts';
import { defaultDataDir, storeExists, transportFromFlags } from './config.ts';
import { parseDuration, parseLimit } from './format.ts';
import { printError, printResult, withSpinner, type Printable } from './output.ts';
import { AgentConnection } from './agent-client.ts';
import { readPassphrase } from './passphrase.ts';
import { registerGroupCommands } from './group-commands.ts';
import type { GlobalOptions } from './session.ts';

// `umbra read 1 | head` closes the pipe early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const VERSION = (JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json'), 'utf8')) as { version: string }).version;

const program = new Command();
program
  .name('umbra')
  .description('Private, consensual, durable conversations.')
  .version(VERSION, '-V, --version', 'print the version')
  .option('-d, --data <dir>', 'data directory (your encrypted store)', defaultDataDir())
  .option('--json', 'machine-readable output (docs/CLI.md has the schema)')
  .option('--debug', 'show the stack trace of an error')
  .option('--hub <url>', 'reach people through an Umbra hub (saved for next time)')
  .option('--mailbox <file>', 'reach people on this machine through a shared mailbox file (saved)')
  .addOption(new Option('--transport <kind>', 'transport to use (saved)').choices(['mailbox', 'hub', 'waku']))
  .option('--bootstrap <multiaddrs>', 'Waku peers to dial first, comma-separated (with --transport waku; saved)')
  .addHelpText(
    'beforeAll',
    `Getting started (three terminals on one machine; use the hub's address from other machines):
  H$ umbra hub                                  # the services; prints its URL (http://127.0.0.1:7700)
  A$ umbra --data ~/.umbra-alice --hub http://127.0.0.1:7700 init --name Alice
  B$ umbra --data ~/.umbra-bob   --hub http://127.0.0.1:7700 init --name Bob
  A$ umbra --data ~/.umbra-alice invite         # prints an invitation (and its QR code on a terminal)
  B$ umbra --data ~/.umbra-bob accept <invitation>
  A$ umbra --data ~/.umbra-alice chat           # and B in the other terminal
"umbra agent start" keeps an identity online in the background; other commands then use it.
`,
  )
  .addHelpText('after', `\nScripts: UMBRA_PASSPHRASE=... umbra --json send bob "hello" ; umbra --json read bob\nMore: docs/CLI.md`);

const g = (): GlobalOptions => program.opts<GlobalOptions>();

/** The transport flags as given, to hand to a detached agent. */
function transportArgs(o: GlobalOptions): string[] {
  const out: string[] = [];
  if (o.hub !== undefined) out.push('--hub', o.hub);
  if (o.mailbox !== undefined) out.push('--mailbox', o.mailbox);
  if (o.transport !== undefined) out.push('--transport', o.transport);
  if (o.bootstrap !== undefined) out.push('--bootstrap', o.bootstrap);
  return out;
}

/** Run a command at the agent when one runs for this data directory, else here. */
export type Execute = (command: string, params: Record<string, unknown>, options: { label: string; qr?: boolean }) => Promise<void>;

const execute: Execute = async (command, params, options) => {
  const o = g();
  const wanted = transportFromFlags(o);
  const agent = await AgentConnection.connect(o.data);
  let result: Printable;
  if (agent !== null) {
    try {
      result = (await withSpinner(options.label, o.json !== true, () => agent.call(command, params, wanted))) as Printable;
    } finally {
      agent.close();
    }
  } else {
    if (!storeExists(o.data)) throw new CliError('no-identity', `no Umbra identity in ${o.data}`, { hint: 'run "umbra --hub <url> init --name <your name>" first, or pass --data DIR' });
    const passphrase = await readPassphrase({ confirm: false });
    const { runLocal } = await import('./runner.ts');
    result = await withSpinner(options.label, o.json !== true, () => runLocal(o, command, params, passphrase));
  }
  await printResult(o.json === true, result, options.qr !== undefined ? { qr: options.qr } : {});
};

const wait = (text: string) => parseDuration(text, '--wait') * 1000;

program
  .command('init')
  .description('create your identity and encrypted store')
  .requiredOption('-n, --name <name>', 'the name people see')
  .action(async (opts: { name: string }) => {
    const name = opts.name.trim();
    if (name === '') throw usage('--name cannot be empty');
    const { init } = await import('./runner.ts');
    const o = g();
    const passphrase = storeExists(o.data) ? '' : await readPassphrase({ confirm: process.env.UMBRA_PASSPHRASE === undefined });
    await printResult(o.json === true, await withSpinner('Creating your identity', o.json !== true, () => init(o, name, passphrase)));
  });
program.command('whoami').description('show your name, account id and transport').action(() => execute('whoami', {}, { label: 'Opening' }));
program
  .command('invite')
  .description('create an invitation for one person (a text to send, and a QR code on a terminal)')
  .option('-r, --reusable', 'many people may use it (default: single use)')
  .option('--ttl <duration>', 'how long it is valid (30m, 12h, 7d)', '7d')
  .option('--no-qr', 'do not draw the QR code')
  .option('--full', 'print the long invitation text, which needs no service (with a hub the default is a short link)')
  .action((opts: { reusable?: boolean; ttl: string; qr: boolean; full?: boolean }) => execute('invite', { reusable: opts.reusable === true, ttlSeconds: parseDuration(opts.ttl, '--ttl'), full: opts.full === true }, { label: 'Creating the invitation', qr: opts.qr }));
program
  .command('accept')
  .description('start a conversation from an invitation')
  .argument('<invitation>', 'a link (http…/i#…) or umbra_chatintro_1_…')
  .option('--wait <duration>', "how long to wait for their client's answer (0 = do not wait)", '5s')
  .action((invitation: string, opts: { wait: string }) => execute('accept', { invitation: invitation.trim(), waitMs: wait(opts.wait) }, { label: 'Contacting them' }));
program.command('list').alias('ls').description('your conversations, with their numbers and handles (these never change)').action(() => execute('list', {}, { label: 'Fetching' }));
program.command('requests').description('first contacts waiting for your answer (and approval requests for your directory names)').action(() => execute('requests', {}, { label: 'Fetching' }));
program.command('allow').description('accept a request').argument('<conversation>', 'number, handle or name').action((ref: string) => execute('consent', { ref, consent: 'allowed' }, { label: 'Answering' }));
program.command('block').description('block a conversation (nothing from it is stored)').argument('<conversation>').action((ref: string) => execute('consent', { ref, consent: 'denied' }, { label: 'Blocking' }));
program
  .command('rename')
  .description('give a conversation your own name for it (only on this device)')
  .argument('<conversation>', 'number, handle or name')
  .argument('<name>')
  .action((ref: string, name: string) => {
    if (name.trim() === '') throw usage('the new name cannot be empty');
    return execute('rename', { ref, name }, { label: 'Renaming' });
  });
program
  .command('send')
  .description('send a message')
  .argument('<conversation>', 'number, handle or name from "umbra list"')
  .argument('<text...>')
  .option('--wait <duration>', 'wait this long for the delivery receipt (0 = do not wait)', '3s')
  .action((ref: string, words: string[], opts: { wait: string }) => {
    const waitMs = wait(opts.wait);
    const text = words.join(' ');
    if (text.trim() === '') throw usage('nothing to send');
    return execute('send', { ref, text, waitMs }, { label: 'Sending' });
  });
program
  .command('read')
  .description('show the latest messages of a conversation')
  .argument('<conversation>')
  .option('-n, --limit <n>', 'how many', '20')
  .option('--before <cursor>', 'the page before this cursor (from an earlier read)')
  .option('--no-mark-read', 'leave them unread')
  .action((ref: string, opts: { limit: string; before?: string; markRead: boolean }) =>
    execute('read', { ref, limit: parseLimit(opts.limit), markRead: opts.markRead, ...(opts.before !== undefined ? { before: opts.before } : {}) }, { label: 'Fetching' }),
  );
program
  .command('verify')
  .description('show the safety number to compare out of band (--mark records that it matched)')
  .argument('<conversation>')
  .option('--mark', 'record that you compared it and it matched')
  .option('--no-qr', 'no QR code')
  .action((ref: string, opts: { mark?: boolean; qr: boolean }) => execute('verify', { ref, mark: opts.mark === true }, { label: 'Checking the directory logs', qr: opts.qr }));

const POLICIES = ['open', 'members', 'approval', 'closed'];
const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
program
  .command('register')
  .description('register a name at a directory so people can contact you by name')
  .argument('<name>', 'a-z 0-9 . _ -')
  .option('--directory <url>', "directory URL (default: the last one used, or the hub's)")
  .option('--policy <policy>', 'who may start a conversation: open, members, approval, closed')
  .option('--packages <n>', 'first-contact packages to upload', '20')
  .action((name: string, opts: { directory?: string; policy?: string; packages: string }) => {
    if (!NAME_RE.test(name)) throw usage(`"${name}" is not a directory name`, '1 to 64 of a-z 0-9 . _ -, starting with a letter or digit');
    const packages = Number(opts.packages);
    if (!/^\d+$/.test(opts.packages) || packages > 100) throw usage('--packages must be 0..100');
    if (opts.policy !== undefined && !POLICIES.includes(opts.policy)) throw usage('--policy must be open, members, approval or closed');
    return execute('register', { name, packages, ...(opts.policy !== undefined ? { policy: opts.policy } : {}), ...(opts.directory !== undefined ? { directory: opts.directory } : {}) }, { label: 'Registering' });
  });
program
  .command('contact')
  .description('start a conversation with someone by name through their directory')
  .argument('<address>', 'name@host:port')
  .option('--note <text>', 'a short note for names that approve contacts')
  .option('--request <id>', 'pick up an approval request made earlier')
  .action((address: string, opts: { note?: string; request?: string }) => {
    const m = /^([^@\s]+)@([^@\s/]+)$/.exec(address.replace(/^https?:\/\//, '').trim());
    if (m === null || !NAME_RE.test(m[1]!)) throw usage(`"${address}" is not a name@directory address`, 'for example alice@127.0.0.1:7704 ("umbra register" prints yours)');
    return execute('contact', { name: m[1]!, url: `http://${m[2]!}`, ...(opts.note !== undefined ? { note: opts.note } : {}), ...(opts.request !== undefined ? { request: opts.request } : {}) }, { label: 'Contacting' });
  });
program
  .command('approve')
  .description('approve (or --deny) a request to contact one of your names')
  .argument('<name>')
  .argument('<request-id>')
  .option('--deny', 'deny instead')
  .option('--directory <url>', 'directory URL')
  .action((name: string, id: string, opts: { deny?: boolean; directory?: string }) => execute('approve', { name, id, deny: opts.deny === true, ...(opts.directory !== undefined ? { directory: opts.directory } : {}) }, { label: 'Answering' }));
program.command('monitor').description('check the directory logs for keys you did not register').action(() => execute('monitor', {}, { label: 'Checking the logs' }));
program
  .command('chat')
  .description('interactive chat (serves other umbra commands while it runs)')
  .option('-w, --with <conversation>', 'start in this conversation')
  .action(async (opts: { with?: string }) => {
    const { chat } = await import('./chat.ts');
    await chat(g(), opts);
  });

const agent = program.command('agent').description('keep this identity online in the background: receive, retry, and answer other commands');
agent
  .command('start')
  .description('start the agent (asks for the passphrase once)')
  .action(async () => {
    const o = g();
    const { startAgent } = await import('./agent.ts');
    const st = await startAgent(o, transportArgs(o));
    await printResult(o.json === true, { json: { agent: { running: true, ...st } }, text: `Agent started for ${st.name} (pid ${st.pid}); other umbra commands now use it. "umbra agent stop" stops it.` });
  });
agent
  .command('stop')
  .description('stop the agent')
  .action(async () => {
    const o = g();
    const conn = await AgentConnection.connect(o.data);
    if (conn === null) {
      await printResult(o.json === true, { json: { agent: { running: false } }, text: 'No agent runs for this identity.' });
      return;
    }
    const st = await conn.status();
    await conn.stop();
    await new Promise<void>((resolve) => conn.onClose(resolve));
    await printResult(o.json === true, { json: { agent: { running: false, pid: st.pid } }, text: `Stopped the ${st.mode} (pid ${st.pid}).` });
  });
agent
  .command('status')
  .description('is an agent running for this identity?')
  .action(async () => {
    const o = g();
    const conn = await AgentConnection.connect(o.data);
    if (conn === null) {
      await printResult(o.json === true, { json: { agent: { running: false } }, text: 'No agent runs for this identity ("umbra agent start" starts one).' });
      return;
    }
    try {
      const st = await conn.status();
      await printResult(o.json === true, { json: { agent: { running: true, ...st } }, text: `${st.mode === 'chat' ? 'An umbra chat' : 'The agent'} runs for ${st.name} (pid ${st.pid}, since ${st.startedAt}).` });
    } finally {
      conn.close();
    }
  });
agent
  .command('run')
  .description('run the agent in the foreground (for a service manager)')
  .addOption(new Option('--passphrase-stdin').hideHelp())
  .action(async (opts: { passphraseStdin?: boolean }) => {
    const { runAgent } = await import('./agent.ts');
    await runAgent(g(), opts);
  });

program
  .command('hub')
  .description('run an issuer, a sending service, two receiving services and a directory on this machine')
  .option('--services-data <dir>', 'where the services keep their data', 'data')
  .option('--port <n>', 'first port (issuer; then SSA, RSA, RSA, directory)', '7700')
  .option('--waku', 'instead: run a Waku relay + store node that clients bootstrap from')
  .option('--waku-listen <multiaddr>', 'where the Waku node listens', '/ip4/127.0.0.1/tcp/60000')
  .option('--web-origin <origin...>', "more web origins allowed to call the services (CORS; the hub's own web app is always allowed)")
  .option('--no-web', 'do not serve the web app (port+5)')
  .action(async (o: { servicesData: string; port: string; waku?: boolean; wakuListen: string; web: boolean; webOrigin?: string[] }) => {
    const { hub } = await import('./hub.ts');
    await hub({ data: o.servicesData, port: o.port, ...(o.waku !== undefined ? { waku: o.waku } : {}), wakuListen: o.wakuListen, web: o.web, ...(o.webOrigin ? { webOrigin: o.webOrigin } : {}) });
  });

registerGroupCommands(program, execute);
// The operator command loads the services (slow to import): only when it is asked for, or for help.
const argv = process.argv.slice(2);
if (argv.includes('serve') || argv.includes('help') || argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
  const { registerServeCommand } = await import('./serve.ts');
  registerServeCommand(program);
}

// Usage errors are printed below (one line, a hint, JSON in --json mode), not by commander.
const quiet = (c: Command): void => {
  c.exitOverride().configureOutput({ outputError: () => undefined });
  c.commands.forEach(quiet);
};
quiet(program);

const jsonMode = argv.includes('--json');
const debugMode = argv.includes('--debug');
try {
  if (argv.length === 0) program.help();
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exitCode = 0;
    else {
      const err = usage(e.message.replace(/^error: /, ''), 'umbra --help lists the commands; umbra <command> --help its options');
      printError(jsonMode, debugMode, err, e);
      process.exitCode = err.exitCode;
    }
  } else {
    const err = e instanceof CliError ? e : new CliError('internal', e instanceof Error ? e.message : String(e), { hint: 'run again with --debug to see where it failed' });
    printError(jsonMode, debugMode, err, e);
    process.exitCode = err.exitCode;
  }
}
