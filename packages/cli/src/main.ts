/**
 * `umbra`: private, consensual, durable conversations from the terminal.
 * Every command takes --data DIR (default ~/.umbra or $UMBRA_DATA) and --json for scripts.
 * The store passphrase comes from $UMBRA_PASSPHRASE or is asked for.
 */
import { Command, Option } from 'commander';
import { ClientError } from '@umbra/client/node';
import { CliError } from './errors.ts';
import { defaultDataDir } from './config.ts';
import * as commands from './commands.ts';
import { chat } from './chat.ts';
import { hub } from './hub.ts';
import * as directory from './directory.ts';
import { registerGroupCommands } from './group.ts';
import { registerServeCommand } from './serve.ts';
import type { GlobalOptions } from './session.ts';

// `umbra read 1 | head` closes the pipe early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const program = new Command();
program
  .name('umbra')
  .description('Private, consensual, durable conversations.')
  .option('-d, --data <dir>', 'data directory (your encrypted store)', defaultDataDir())
  .option('--json', 'machine-readable output')
  .option('--hub <url>', 'reach people through an Umbra hub (saved for next time)')
  .option('--mailbox <file>', 'reach people on this machine through a shared mailbox file (saved)')
  .addOption(new Option('--transport <kind>', 'transport to use (saved)').choices(['mailbox', 'hub', 'waku']))
  .option('--bootstrap <multiaddrs>', 'Waku peers to dial first, comma-separated (with --transport waku; saved)')
  .showHelpAfterError('(umbra --help lists the commands)')
  .addHelpText(
    'after',
    `
Getting started (two terminals on one machine):
  A$ umbra --data /tmp/alice init --name Alice
  B$ umbra --data /tmp/bob init --name Bob
  A$ umbra --data /tmp/alice invite          # prints an invitation and its QR code
  B$ umbra --data /tmp/bob accept <invitation>
  A$ umbra --data /tmp/alice chat            # and B in the other terminal

Scripts: UMBRA_PASSPHRASE=... umbra --json send 1 "hello" ; umbra --json read 1`,
  );

const g = (): GlobalOptions => program.opts<GlobalOptions>();

program.command('init').description('create your identity and encrypted store').requiredOption('-n, --name <name>', 'the name people see').action((o) => commands.init(g(), o));
program.command('whoami').description('show your name and account id').action(() => commands.whoami(g()));
program
  .command('invite')
  .description('create an invitation (a string and a QR code) for one person')
  .option('-r, --reusable', 'many people may use it (default: single use)')
  .option('--ttl <duration>', 'how long it is valid (30m, 12h, 7d)', '7d')
  .option('--no-qr', 'do not draw the QR code')
  .action((o) => commands.invite(g(), o));
program.command('accept').description('start a conversation from an invitation').argument('<invitation>', 'umbra_chatintro_1_…').action((inv) => commands.accept(g(), inv));
program.command('list').alias('ls').description('your conversations').action(() => commands.list(g()));
program.command('requests').description('first contacts waiting for your answer (and approval requests for your directory names)').action(() => directory.requests(g()));
program.command('allow').description('accept a request').argument('<conversation>').action((ref) => commands.setConsent(g(), ref, 'allowed'));
program.command('block').description('block a conversation (nothing from it is stored)').argument('<conversation>').action((ref) => commands.setConsent(g(), ref, 'denied'));
program
  .command('send')
  .description('send a message')
  .argument('<conversation>', 'number from "umbra list", name or id')
  .argument('<text...>')
  .option('--wait <duration>', 'wait this long for the delivery receipt (0 = do not wait)', '3s')
  .action((ref, words, o) => commands.send(g(), ref, words, o));
program
  .command('read')
  .description('show the latest messages of a conversation')
  .argument('<conversation>')
  .option('-n, --limit <n>', 'how many', '20')
  .option('--no-mark-read', 'leave them unread')
  .action((ref, o) => commands.read(g(), ref, o));
program.command('verify').description('show the safety number to compare out of band, and the directory log status').argument('<conversation>').option('--no-qr', 'no QR code').action((ref, o) => directory.verify(g(), ref, o));
program
  .command('register')
  .description('register a name at a directory so people can contact you by name')
  .argument('<name>', 'a-z 0-9 . _ -')
  .option('--directory <url>', "directory URL (default: the last one used, or the hub's)")
  .option('--policy <policy>', 'who may start a conversation: open, members, approval, closed')
  .option('--packages <n>', 'first-contact packages to upload', '20')
  .action((name, o) => directory.register(g(), name, o));
program
  .command('contact')
  .description('start a conversation with someone by name through their directory')
  .argument('<address>', 'name@host:port')
  .option('--note <text>', 'a short note for names that approve contacts')
  .option('--request <id>', 'pick up an approval request made earlier')
  .action((address, o) => directory.contact(g(), address, o));
program
  .command('approve')
  .description('approve (or --deny) a request to contact one of your names')
  .argument('<name>')
  .argument('<request-id>')
  .option('--deny', 'deny instead')
  .option('--directory <url>', 'directory URL')
  .action((name, id, o) => directory.approve(g(), name, id, o));
program.command('monitor').description('check the directory logs for keys you did not register').action(() => directory.monitor(g()));
program.command('chat').description('interactive chat').option('-w, --with <conversation>', 'start in this conversation').action((o) => chat(g(), o));
program
  .command('hub')
  .description('run an issuer, a sending service and two receiving services on this machine')
  .option('--services-data <dir>', 'where the services keep their data', 'data')
  .option('--port <n>', 'first port (issuer; then SSA, RSA, RSA)', '7700')
  .option('--waku', 'instead: run a Waku relay + store node that clients bootstrap from')
  .option('--waku-listen <multiaddr>', 'where the Waku node listens', '/ip4/127.0.0.1/tcp/60000')
  .action((o) => hub({ data: o.servicesData, port: o.port, waku: o.waku, wakuListen: o.wakuListen }));
registerGroupCommands(program, g);
registerServeCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CliError || e instanceof ClientError) {
    console.error(`umbra: ${e.message}`);
    process.exitCode = 1;
  } else throw e;
}
