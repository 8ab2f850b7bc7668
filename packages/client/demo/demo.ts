/**
 * `npm run demo`: two clients with on-disk stores exchange an invitation and messages over an
 * in-memory network; Bob restarts (closes and reopens his store); history survives and the
 * conversation continues.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, MemoryNetwork, type MessageInfo } from '../src/node.ts';

const dir = mkdtempSync(join(tmpdir(), 'umbra-demo-'));
const net = new MemoryNetwork({ seed: 1, delayMs: [1, 5] });
const say = (line: string) => console.log(line);
const show = (who: string, m: MessageInfo) => say(`  ${who} ← "${m.text}"`);
const settle = (ms = 150) => new Promise((r) => setTimeout(r, ms));

async function openBob(): Promise<Client> {
  const bob = await Client.open({ delivery: net.adapter(), dataDir: join(dir, 'bob'), passphrase: 'bob’s passphrase', profile: { name: 'Bob' } });
  bob.on('message', (m) => show('Bob', m));
  return bob;
}

say(`Umbra client demo — stores in ${dir}\n`);
const alice = await Client.open({ delivery: net.adapter(), dataDir: join(dir, 'alice'), passphrase: 'alice’s passphrase', profile: { name: 'Alice' } });
alice.on('message', (m) => show('Alice', m));
alice.on('acked', () => undefined);
let bob = await openBob();
say(`Alice's account ${alice.accountId.slice(0, 16)}…, Bob's ${bob.accountId.slice(0, 16)}… (stores encrypted with Argon2id passphrases)`);

const invitation = await bob.createInvitation();
say(`\n1. Bob creates an invitation (${invitation.text.length} characters): ${invitation.text.slice(0, 48)}…`);
const conversation = await alice.accept(invitation.text);
say(`2. Alice accepts it: conversation ${conversation.id} with "${conversation.peerName}"`);
await settle();
say(`   Bob sees: ${(await bob.conversations()).map((c) => `"${c.peerName}" (${c.consent})`).join(', ')}`);
say(`   safety number: ${conversation.safetyNumber}`);

say('\n3. They talk:');
await alice.send(conversation.id, 'Hi Bob! This is end-to-end encrypted.');
await settle();
await bob.send(conversation.id, 'Hi Alice. Double Ratchet with header encryption, PQXDH to start.');
await settle();
await alice.send(conversation.id, 'Going to restart your client now?');
await settle();

say('\n4. Bob closes his client (his store is on disk)…');
await bob.close();
await alice.send(conversation.id, 'This one is sent while Bob is offline.');
await settle();
say('   …and reopens it (the passphrase derives the store key again):');
bob = await openBob();
await settle(300);

say('\n5. Bob’s history after the restart:');
for (const m of (await bob.history(conversation.id)).messages) say(`  ${m.outgoing ? 'Bob  →' : 'Alice→'} ${m.text}  [${m.status}]`);
await bob.send(conversation.id, 'Back, and nothing was lost.');
await settle();
say(`\n6. Unacknowledged messages: Alice ${await alice.pendingCount()}, Bob ${await bob.pendingCount()}; unread at Bob: ${(await bob.conversation(conversation.id)).unreadCount}`);
await bob.markRead(conversation.id);
say(`   Bob marks the conversation read: unread ${(await bob.conversation(conversation.id)).unreadCount}`);

await alice.close();
await bob.close();
rmSync(dir, { recursive: true, force: true });
say('\nDone.');
