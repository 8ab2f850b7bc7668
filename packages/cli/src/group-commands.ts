/** `umbra group …` on the command line: arguments checked here, the work done by group.ts where the store is. */
import type { Command } from 'commander';
import { usage } from './errors.ts';
import { parseLimit } from './format.ts';
import type { Execute } from './main.ts';

export function registerGroupCommands(program: Command, execute: Execute): void {
  const group = program.command('group').description('private groups: every member talks to every other member pairwise');
  group
    .command('create')
    .description('create a group and invite people you have a conversation with')
    .argument('<name>')
    .argument('[member...]', 'conversations (number, handle or name from "umbra list")')
    .action((name: string, refs: string[]) => {
      if (name.trim() === '') throw usage('a group needs a name');
      return execute('group.create', { name, refs }, { label: 'Creating the group' });
    });
  group.command('list').alias('ls').description('your groups and invitations').action(() => execute('group.list', {}, { label: 'Fetching' }));
  group.command('accept').description('join a group you were invited to').argument('<group>').action((ref: string) => execute('group.accept', { ref }, { label: 'Joining' }));
  group.command('members').description('members, admins, and who cannot be reached yet (pending)').argument('<group>').action((ref: string) => execute('group.members', { ref }, { label: 'Fetching' }));
  group
    .command('add')
    .description('invite someone you have a conversation with')
    .argument('<group>')
    .argument('<member>', 'conversation (number, handle or name from "umbra list")')
    .action((ref: string, who: string) => execute('group.add', { ref, who }, { label: 'Inviting' }));
  group.command('remove').description('remove a member (admins)').argument('<group>').argument('<member>').action((ref: string, who: string) => execute('group.remove', { ref, who }, { label: 'Removing' }));
  group.command('promote').description('make a member an admin (admins)').argument('<group>').argument('<member>').action((ref: string, who: string) => execute('group.promote', { ref, who }, { label: 'Promoting' }));
  group
    .command('rename')
    .description('rename a group (for everyone in it)')
    .argument('<group>')
    .argument('<name>')
    .action((ref: string, name: string) => {
      if (name.trim() === '') throw usage('a group needs a name');
      return execute('group.rename', { ref, name }, { label: 'Renaming' });
    });
  group.command('leave').description('leave a group (the others are told; you stop receiving)').argument('<group>').action((ref: string) => execute('group.leave', { ref }, { label: 'Leaving' }));
  group
    .command('send')
    .description('send a message to every member')
    .argument('<group>')
    .argument('<text...>')
    .action((ref: string, words: string[]) => {
      const text = words.join(' ');
      if (text.trim() === '') throw usage('nothing to send');
      return execute('group.send', { ref, text }, { label: 'Sending' });
    });
  group
    .command('read')
    .description('the latest messages and membership changes of a group')
    .argument('<group>')
    .option('-n, --limit <n>', 'how many messages', '20')
    .option('--before <cursor>', 'the page before this cursor (from an earlier read)')
    .action((ref: string, o: { limit: string; before?: string }) => execute('group.read', { ref, limit: parseLimit(o.limit), ...(o.before !== undefined ? { before: o.before } : {}) }, { label: 'Fetching' }));
}
