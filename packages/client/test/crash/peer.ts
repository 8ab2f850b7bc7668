/**
 * One side of the crash-safety harness, run in a child process (killed with SIGKILL at random
 * points by harness.ts). Usage: peer.ts <alice|bob> <dir> <store key hex>.
 * Bob creates the invitation (written to <dir>/invitation.txt once persisted), Alice accepts it;
 * then both send numbered messages `<role>-<n>` (n continues from the store after a restart)
 * until the parent says "quiesce". The parent asks for status over IPC.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, MailboxDelivery, SqliteStore, fromHexKey } from './shared.ts';

// The harness gone (killed, or timed out and exited): stop too, as after a crash.
process.on('disconnect', () => process.exit(1));

const [role, dir, keyHex] = process.argv.slice(2) as [string, string, string];
const invitationFile = join(dir, 'invitation.txt');
const mailbox = new MailboxDelivery(join(dir, 'net.db'), 5);
const store = await SqliteStore.open({ path: join(dir, `${role}.db`), key: fromHexKey(keyHex) });
const db = store.rawForTests();
const client = await Client.open({
  delivery: mailbox,
  store,
  profile: { name: role },
  retry: { initialMs: 100, maxMs: 400 },
  ackDelayMs: 2,
  missingGraceMs: 20,
  fastRetransmitMs: 20,
  syncIntervalMs: 250,
});

const count = (outgoing: number) => (db.prepare('SELECT COUNT(*) AS n FROM messages WHERE outgoing = ?').get(outgoing) as { n: number }).n;
let sending = true;
let extra = 0;

process.on('message', async (msg: { cmd: string; count?: number }) => {
  if (msg.cmd === 'status') {
    const stats = client.stats();
    process.send!({ type: 'status', sent: count(1), received: count(0), pending: await client.pendingCount(), badlyFormed: stats.badlyFormed, conversations: (await client.conversations()).length });
  } else if (msg.cmd === 'quiesce') {
    sending = false;
  } else if (msg.cmd === 'send') {
    extra += msg.count ?? 0;
  } else if (msg.cmd === 'exit') {
    sending = false;
    await client.close();
    await store.close();
    mailbox.close();
    process.exit(0);
  }
});
process.send!({ type: 'ready' });

async function conversationId(): Promise<string | null> {
  const c = (await client.conversations())[0];
  if (c !== undefined) return c.id;
  if (role === 'bob') {
    if (!existsSync(invitationFile)) {
      const inv = await client.createInvitation({ reusable: false, ttlSeconds: 3600 });
      writeFileSync(`${invitationFile}.tmp`, inv.text);
      renameSync(`${invitationFile}.tmp`, invitationFile);
    }
    return null;
  }
  if (!existsSync(invitationFile)) return null;
  return (await client.accept(readFileSync(invitationFile, 'utf8'))).id;
}

for (;;) {
  await new Promise((r) => setTimeout(r, 3 + Math.random() * 6));
  const id = await conversationId();
  if (id === null) continue;
  if (sending || extra > 0) {
    if (!sending) extra--;
    await client.send(id, `${role}-${count(1) + 1}`);
  }
}
