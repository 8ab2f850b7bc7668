/**
 * The Store contract (src/store.ts) as one suite every implementation runs: SQLite, memory and
 * IndexedDB (store-contract.test.ts in Node, on fake-indexeddb; the web package runs it again
 * in Chromium). What is asserted is what the contract promises: every read and every batch
 * field, the insert-if-absent and replace rules, ordering and paging, counts, the new concepts,
 * atomicity (a batch that fails leaves nothing), close semantics, durability across a reopen
 * (where the implementation persists), copies not aliases, and typed errors for bad input.
 *
 * Portable on purpose: the only imports are `describe`/`it`/`before`/`after` from node:test and
 * `node:assert/strict` (a browser runner aliases both to its shims), and the suite uses only
 * assert.equal, notEqual, deepEqual, ok and rejects; no Buffer, no node:crypto.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConversationMeta, OutboxEntry, Store, StoreBatch, StoredConversation, StoredGroupMessage, StoredMessage } from '../src/store.ts';

export interface StoreUnderTest {
  readonly store: Store;
  /** Closes `store` if needed and opens the same data again (stores that persist). */
  readonly reopen?: () => Promise<Store>;
  /** Removes what the test made (files, databases). Called after the store is closed. */
  readonly cleanup: () => Promise<void>;
}

// ---- fixtures ------------------------------------------------------------------------------

const NOW = 1_780_000_000_000;

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  globalThis.crypto.getRandomValues(b);
  return b;
}

/** A 16-byte message id that sorts by `first` (then by `second`). */
function mid(first: number, second = 0): Uint8Array {
  const b = new Uint8Array(16);
  b[0] = first;
  b[1] = second;
  return b;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

function meta(id: string, over: Partial<ConversationMeta> = {}): ConversationMeta {
  return { id, consent: 'allowed', origin: 'accepted', lamport: 0, recentIds: [], createdAt: NOW, lastActivityAt: NOW, ...over };
}

function conversation(id: string, over: Partial<ConversationMeta> = {}, state = `state-of-${id}`): StoredConversation {
  return { meta: meta(id, over), state: text(state) };
}

function message(conversationId: string, messageId: Uint8Array, over: Partial<StoredMessage> = {}): StoredMessage {
  return {
    conversationId,
    messageId,
    outgoing: false,
    lamport: 1,
    sentAt: NOW,
    receivedAt: NOW + 1,
    body: text(`body-${hex(messageId).slice(0, 6)}`),
    status: 'received',
    read: false,
    ...over,
  };
}

function outbox(conversationId: string, messageId: Uint8Array, over: Partial<OutboxEntry> = {}): OutboxEntry {
  return {
    conversationId,
    messageId,
    kind: 'content',
    lamport: 1,
    envelope: text('envelope'),
    hintHour: 10,
    hintIndex: 2,
    attempts: 0,
    nextAttemptAt: NOW,
    createdAt: NOW,
    ...over,
  };
}

function groupMessage(chatId: string, messageId: string, over: Partial<StoredGroupMessage> = {}): StoredGroupMessage {
  return { chatId, messageId, author: '0x04ab', outgoing: false, clock: 1, sentAt: NOW, receivedAt: NOW, entity: text(`entity-${messageId}`), ...over };
}

const ids = (list: { messageId: Uint8Array }[]): string[] => list.map((m) => hex(m.messageId));

/** A batch that touches every concept once (for reopen and close tests). */
function everything(): StoreBatch {
  return {
    account: { publicKey: random(32), secretKey: random(32), profileName: 'Ada', createdAt: NOW },
    inboxes: [{ invitationId: mid(1), state: text('inbox-state'), isDefault: true, expiresAt: NOW + 1000, createdAt: NOW }],
    conversations: [conversation('c1', { lamport: 3, recentIds: [mid(3)] })],
    cursors: [{ route: 'r1', cursor: 'cur-1' }],
    messages: [message('c1', mid(3), { lamport: 3 }), message('c1', mid(4), { lamport: 4, outgoing: true, status: 'sent', read: true })],
    seenEnvelopes: [{ hash: new Uint8Array(32).fill(7), conversationId: 'c1', messageId: mid(3), seenAt: NOW }],
    outboxPut: [outbox('c1', mid(4), { lamport: 4 }), outbox('c1', mid(5), { lamport: 5, envelope: null })],
    groups: [{ chatId: 'g1', record: text('{"status":"member"}'), updatedAt: NOW }],
    groupEvents: [{ chatId: 'g1', wire: text('event-a') }],
    groupMessages: [groupMessage('g1', 'm-1')],
    serviceAccount: '{"v":1,"issuer":"x"}',
    directoryStates: [{ url: 'https://dir.example', state: '{"pinned":true}' }],
    settings: [{ key: 'transport', value: 'waku' }],
  };
}

/** Reads every concept into one comparable value. */
async function snapshot(store: Store): Promise<unknown> {
  return {
    account: await store.account.get(),
    inboxes: await store.account.inboxes(),
    conversations: await store.conversations.all(),
    cursor: await store.conversations.cursor('r1'),
    history: await store.messages.history('c1', 100, null),
    unread: await store.messages.unreadCount('c1'),
    seen: await store.messages.seenEnvelope(new Uint8Array(32).fill(7)),
    outbox: await store.outbox.forConversation('c1'),
    queued: await store.outbox.queued('c1', 10),
    groups: (await store.groups.all()).map((g) => ({ group: g.group, events: g.events.map(hex).sort() })),
    groupMessages: await store.groups.messages('g1', 10, null),
    serviceAccount: await store.serviceAccount.get(),
    directory: await store.directory.get('https://dir.example'),
    setting: await store.settings.get('transport'),
  };
}

// ---- the suite -----------------------------------------------------------------------------

export function storeContract(name: string, open: () => Promise<StoreUnderTest>): void {
  /** A fresh store for one test, closed and cleaned up whatever the test does. */
  async function withStore(body: (store: Store, opened: StoreUnderTest) => Promise<void>): Promise<void> {
    const opened = await open();
    let current = opened.store;
    const reopen = opened.reopen;
    const tracked: StoreUnderTest = {
      ...opened,
      ...(reopen !== undefined
        ? {
            reopen: async () => {
              current = await reopen();
              return current;
            },
          }
        : {}),
    };
    try {
      await body(opened.store, tracked);
    } finally {
      await current.close();
      await opened.cleanup();
    }
  }

  describe(`Store contract: ${name}`, () => {
    describe('a new store', () => {
      it('is empty in every concept', async () => {
        await withStore(async (s) => {
          assert.equal(await s.account.get(), null);
          assert.deepEqual(await s.account.inboxes(), []);
          assert.deepEqual(await s.conversations.all(), []);
          assert.equal(await s.conversations.cursor('r'), null);
          assert.deepEqual(await s.conversations.legacyMissing(), []);
          assert.equal(await s.messages.get('c', mid(1)), null);
          assert.equal(await s.messages.state('c', mid(1)), null);
          assert.deepEqual(await s.messages.history('c', 10, null), []);
          assert.equal(await s.messages.unreadCount('c'), 0);
          assert.equal(await s.messages.count('c'), 0);
          assert.deepEqual(await s.messages.incomingIds('c', 10), []);
          assert.equal(await s.messages.seenEnvelope(new Uint8Array(32)), null);
          assert.equal(await s.outbox.entry('c', mid(1)), null);
          assert.deepEqual(await s.outbox.forConversation('c'), []);
          assert.deepEqual(await s.outbox.queued('c', 10), []);
          assert.deepEqual(await s.outbox.conversationsWithQueued(), []);
          assert.equal(await s.outbox.pendingCount(), 0);
          assert.equal(await s.outbox.pendingCount('c'), 0);
          assert.deepEqual(await s.groups.all(), []);
          assert.equal(await s.groups.message('g', 'm'), null);
          assert.deepEqual(await s.groups.messages('g', 10, null), []);
          assert.equal(await s.serviceAccount.get(), null);
          assert.equal(await s.directory.get('https://x'), null);
          assert.equal(await s.settings.get('k'), null);
        });
      });

      it('an empty batch is a no-op', async () => {
        await withStore(async (s) => {
          await s.write({});
          assert.deepEqual(await s.conversations.all(), []);
        });
      });
    });

    describe('account and inboxes', () => {
      it('the account is stored and replaced', async () => {
        await withStore(async (s) => {
          const a = { publicKey: random(32), secretKey: random(32), profileName: 'Ada Lovelace ✓', createdAt: NOW };
          await s.write({ account: a });
          assert.deepEqual(await s.account.get(), a);
          const b = { ...a, profileName: '', secretKey: random(32), createdAt: NOW + 5 };
          await s.write({ account: b });
          assert.deepEqual(await s.account.get(), b);
        });
      });

      it('inboxes are inserted or replaced by invitation id, listed by (createdAt, invitation id)', async () => {
        await withStore(async (s) => {
          const inbox = (n: number, createdAt: number, state = `s${n}`) => ({ invitationId: mid(n), state: text(state), isDefault: n === 1, expiresAt: NOW + n, createdAt });
          await s.write({ inboxes: [inbox(3, 20), inbox(1, 30), inbox(2, 20)] });
          assert.deepEqual((await s.account.inboxes()).map((i) => i.invitationId[0]), [2, 3, 1]);
          await s.write({ inboxes: [inbox(3, 40, 'replaced')] });
          const all = await s.account.inboxes();
          assert.equal(all.length, 3);
          assert.deepEqual(all[2], inbox(3, 40, 'replaced'));
          assert.deepEqual(all[0], inbox(2, 20));
        });
      });
    });

    describe('conversations and cursors', () => {
      it('conversations are inserted or replaced whole (meta and state), listed by (createdAt, id)', async () => {
        await withStore(async (s) => {
          await s.write({ conversations: [conversation('b', { createdAt: 5 }), conversation('a', { createdAt: 5 }), conversation('z', { createdAt: 1 })] });
          assert.deepEqual((await s.conversations.all()).map((c) => c.meta.id), ['z', 'a', 'b']);
          const replaced = conversation('a', { consent: 'denied', origin: 'default-inbox', lamport: 9, recentIds: [mid(1), mid(2)], createdAt: 7, lastActivityAt: NOW + 9 }, 'new state');
          await s.write({ conversations: [replaced] });
          const all = await s.conversations.all();
          assert.deepEqual(all.map((c) => c.meta.id), ['z', 'b', 'a']);
          assert.deepEqual(all[2], replaced);
        });
      });

      it('conversationMeta updates only the bookkeeping (state, origin, createdAt untouched); unknown ids are ignored', async () => {
        await withStore(async (s) => {
          await s.write({ conversations: [conversation('c', { origin: 'invitation', createdAt: 3 }, 'kept state')] });
          const update = meta('c', { consent: 'denied', origin: 'default-inbox', lamport: 12, recentIds: [mid(9)], createdAt: 999, lastActivityAt: NOW + 50 });
          await s.write({ conversationMeta: [update, meta('unknown')] });
          const [c] = await s.conversations.all();
          assert.deepEqual(c, { meta: { ...update, origin: 'invitation', createdAt: 3 }, state: text('kept state') });
          assert.equal((await s.conversations.all()).length, 1, 'an unknown id creates nothing');
        });
      });

      it('cursors are set and replaced per route', async () => {
        await withStore(async (s) => {
          await s.write({ cursors: [{ route: 'r1', cursor: 'a' }, { route: 'r2', cursor: 'b' }] });
          await s.write({ cursors: [{ route: 'r1', cursor: 'c' }] });
          assert.equal(await s.conversations.cursor('r1'), 'c');
          assert.equal(await s.conversations.cursor('r2'), 'b');
          assert.equal(await s.conversations.cursor('r3'), null);
        });
      });

      it('missingDelete of rows that are not there is a no-op', async () => {
        await withStore(async (s) => {
          await s.write({ missingDelete: [{ conversationId: 'c', messageId: mid(1) }] });
          assert.deepEqual(await s.conversations.legacyMissing(), []);
        });
      });
    });

    describe('messages', () => {
      it('are inserted if absent: a second insert of the same key changes nothing', async () => {
        await withStore(async (s) => {
          await s.write({ conversations: [conversation('c')] });
          const m = message('c', mid(1), { lamport: 4, receivedAt: null, status: 'sent', outgoing: true, read: true });
          await s.write({ messages: [m] });
          await s.write({ messages: [{ ...m, body: text('other'), status: 'failed', lamport: 99 }] });
          assert.deepEqual(await s.messages.get('c', mid(1)), m);
          assert.deepEqual(await s.messages.state('c', mid(1)), { outgoing: true, status: 'sent', lamport: 4 });
          assert.equal(await s.messages.get('c', mid(2)), null);
          assert.equal(await s.messages.get('other', mid(1)), null);
        });
      });

      it('a message needs its conversation: otherwise invalid-argument and nothing of the batch is written', async () => {
        await withStore(async (s) => {
          await assert.rejects(s.write({ settings: [{ key: 'k', value: 'v' }], messages: [message('nowhere', mid(1))] }), { code: 'invalid-argument' });
          assert.equal(await s.settings.get('k'), null);
          assert.equal(await s.messages.get('nowhere', mid(1)), null);
        });
      });

      it('a conversation and its messages can come in one batch', async () => {
        await withStore(async (s) => {
          await s.write({ conversations: [conversation('c')], messages: [message('c', mid(1))] });
          assert.equal(await s.messages.count('c'), 1);
        });
      });

      it('messageStatus sets the status of existing messages; unknown keys are ignored', async () => {
        await withStore(async (s) => {
          await s.write({ conversations: [conversation('c')], messages: [message('c', mid(1), { outgoing: true, status: 'queued', read: true })] });
          await s.write({ messageStatus: [{ conversationId: 'c', messageId: mid(1), status: 'acked' }, { conversationId: 'c', messageId: mid(2), status: 'acked' }] });
          assert.equal((await s.messages.get('c', mid(1)))!.status, 'acked');
          assert.equal(await s.messages.get('c', mid(2)), null);
          assert.equal(await s.messages.count('c'), 1);
        });
      });

      it('history: newest first in (lamport, message id) order, paged strictly before a position, group frames left out', async () => {
        await withStore(async (s) => {
          await s.write({
            conversations: [conversation('c'), conversation('d')],
            messages: [
              message('c', mid(5), { lamport: 2 }),
              message('c', mid(1), { lamport: 3 }),
              message('c', mid(9), { lamport: 1 }),
              message('c', mid(2), { lamport: 2 }),
              message('c', mid(7), { lamport: 2, group: true, read: true }),
              message('c', mid(3), { lamport: 4, outgoing: true, status: 'sent', read: true }),
              message('d', mid(8), { lamport: 9 }),
            ],
          });
          const order = [mid(3), mid(1), mid(5), mid(2), mid(9)].map(hex);
          assert.deepEqual(ids(await s.messages.history('c', 100, null)), order);
          assert.deepEqual(ids(await s.messages.history('c', 2, null)), order.slice(0, 2));
          assert.deepEqual(ids(await s.messages.history('c', 2, { lamport: 3, messageId: mid(1) })), order.slice(2, 4), 'strictly before');
          assert.deepEqual(ids(await s.messages.history('c', 10, { lamport: 2, messageId: mid(5) })), order.slice(3), 'ties on lamport broken by id');
          assert.deepEqual(ids(await s.messages.history('c', 10, { lamport: 2, messageId: mid(4) })), order.slice(3), 'a position that is no message');
          assert.deepEqual(await s.messages.history('c', 10, { lamport: 1, messageId: mid(9) }), []);
          assert.deepEqual(await s.messages.history('c', 0, null), []);
          assert.deepEqual(ids(await s.messages.history('d', 10, null)), [hex(mid(8))]);
          // Page through the whole history two at a time.
          const paged: string[] = [];
          let before: { lamport: number; messageId: Uint8Array } | null = null;
          for (;;) {
            const page: StoredMessage[] = await s.messages.history('c', 2, before);
            if (page.length === 0) break;
            paged.push(...ids(page));
            const last = page[page.length - 1]!;
            before = { lamport: last.lamport, messageId: last.messageId };
          }
          assert.deepEqual(paged, order);
          const withGroup = await s.messages.get('c', mid(7));
          assert.equal(withGroup!.group, true, 'a group frame is still readable by key');
          assert.equal((await s.messages.get('c', mid(5)))!.group, undefined, 'a 1:1 message has no group flag');
        });
      });

      it('counts: count leaves group frames out, unreadCount counts every unread message', async () => {
        await withStore(async (s) => {
          await s.write({
            conversations: [conversation('c')],
            messages: [
              message('c', mid(1)),
              message('c', mid(2), { read: true }),
              message('c', mid(3), { group: true, read: true }),
              message('c', mid(4), { group: true, read: false }),
              message('c', mid(5), { outgoing: true, status: 'sent', read: true }),
            ],
          });
          assert.equal(await s.messages.count('c'), 3);
          assert.equal(await s.messages.unreadCount('c'), 2);
          assert.equal(await s.messages.count('d'), 0);
        });
      });

      it('markRead marks incoming messages read up to and including a position, in that conversation only', async () => {
        await withStore(async (s) => {
          await s.write({
            conversations: [conversation('c'), conversation('d')],
            messages: [
              message('c', mid(1), { lamport: 1 }),
              message('c', mid(2), { lamport: 2 }),
              message('c', mid(3), { lamport: 2 }),
              message('c', mid(4), { lamport: 3 }),
              message('d', mid(1), { lamport: 1 }),
            ],
          });
          await s.write({ markRead: [{ conversationId: 'c', upToLamport: 2, upToMessageId: mid(2) }] });
          assert.equal(await s.messages.unreadCount('c'), 2);
          assert.equal((await s.messages.get('c', mid(2)))!.read, true, 'inclusive');
          assert.equal((await s.messages.get('c', mid(3)))!.read, false, 'same lamport, larger id');
          assert.equal(await s.messages.unreadCount('d'), 1);
          await s.write({ markRead: [{ conversationId: 'c', upToLamport: 10, upToMessageId: mid(0) }, { conversationId: 'nobody', upToLamport: 10, upToMessageId: mid(0) }] });
          assert.equal(await s.messages.unreadCount('c'), 0);
        });
      });

      it('messages inserted and marked read in one batch', async () => {
        await withStore(async (s) => {
          await s.write({
            conversations: [conversation('c')],
            messages: [message('c', mid(1), { lamport: 1 }), message('c', mid(2), { lamport: 5 })],
            markRead: [{ conversationId: 'c', upToLamport: 1, upToMessageId: mid(1) }],
          });
          assert.equal(await s.messages.unreadCount('c'), 1);
        });
      });

      it('incomingIds: incoming messages (group frames included), newest first, limited', async () => {
        await withStore(async (s) => {
          await s.write({
            conversations: [conversation('c')],
            messages: [
              message('c', mid(1), { lamport: 1 }),
              message('c', mid(2), { lamport: 2, outgoing: true, status: 'sent', read: true }),
              message('c', mid(3), { lamport: 3, group: true, read: true }),
              message('c', mid(5), { lamport: 3 }),
              message('c', mid(4), { lamport: 4 }),
            ],
          });
          assert.deepEqual((await s.messages.incomingIds('c', 10)).map(hex), [mid(4), mid(5), mid(3), mid(1)].map(hex));
          assert.deepEqual((await s.messages.incomingIds('c', 2)).map(hex), [mid(4), mid(5)].map(hex));
          assert.deepEqual(await s.messages.incomingIds('c', 0), []);
        });
      });

      it('seen envelopes are inserted if absent and pruned strictly before a time, in batch order', async () => {
        await withStore(async (s) => {
          const h = (n: number) => new Uint8Array(32).fill(n);
          await s.write({
            seenEnvelopes: [
              { hash: h(1), conversationId: 'c', messageId: mid(1), seenAt: 100 },
              { hash: h(2), conversationId: null, messageId: null, seenAt: 200 },
            ],
          });
          await s.write({ seenEnvelopes: [{ hash: h(1), conversationId: 'other', messageId: null, seenAt: 999 }] });
          assert.deepEqual(await s.messages.seenEnvelope(h(1)), { hash: h(1), conversationId: 'c', messageId: mid(1), seenAt: 100 });
          assert.deepEqual(await s.messages.seenEnvelope(h(2)), { hash: h(2), conversationId: null, messageId: null, seenAt: 200 });
          await s.write({ pruneSeenBefore: 200 });
          assert.equal(await s.messages.seenEnvelope(h(1)), null);
          assert.notEqual(await s.messages.seenEnvelope(h(2)), null, 'seenAt equal to the bound stays');
          // Inserted and pruned in one batch: the prune comes after the insert.
          await s.write({ seenEnvelopes: [{ hash: h(3), conversationId: null, messageId: null, seenAt: 50 }, { hash: h(4), conversationId: null, messageId: null, seenAt: 500 }], pruneSeenBefore: 300 });
          assert.equal(await s.messages.seenEnvelope(h(3)), null);
          assert.equal(await s.messages.seenEnvelope(h(2)), null);
          assert.notEqual(await s.messages.seenEnvelope(h(4)), null);
        });
      });
    });

    describe('outbox', () => {
      it('entries are inserted or replaced, listed by (createdAt, message id), deleted by key', async () => {
        await withStore(async (s) => {
          const a = outbox('c', mid(2), { createdAt: 10 });
          const b = outbox('c', mid(1), { createdAt: 10, kind: 'handshake', lamport: 0, hintHour: -1, hintIndex: -1 });
          const c = outbox('c', mid(0), { createdAt: 20 });
          await s.write({ outboxPut: [a, b, c, outbox('d', mid(1))] });
          assert.deepEqual(await s.outbox.forConversation('c'), [b, a, c]);
          const replaced = { ...a, attempts: 3, nextAttemptAt: NOW + 100, envelope: text('re-encrypted') };
          await s.write({ outboxPut: [replaced], outboxDelete: [{ conversationId: 'c', messageId: mid(0) }, { conversationId: 'c', messageId: mid(9) }] });
          assert.deepEqual(await s.outbox.entry('c', mid(2)), replaced);
          assert.equal(await s.outbox.entry('c', mid(0)), null);
          assert.deepEqual(await s.outbox.forConversation('c'), [b, replaced]);
          assert.equal(await s.outbox.pendingCount('c'), 2);
          assert.equal(await s.outbox.pendingCount('d'), 1);
          assert.equal(await s.outbox.pendingCount(), 3);
        });
      });

      it('queued: entries without an envelope in (lamport, message id) order, limited; conversationsWithQueued lists each once', async () => {
        await withStore(async (s) => {
          await s.write({
            outboxPut: [
              outbox('c', mid(3), { lamport: 7, envelope: null }),
              outbox('c', mid(1), { lamport: 8, envelope: null }),
              outbox('c', mid(2), { lamport: 7, envelope: null }),
              outbox('c', mid(4), { lamport: 1 }),
              outbox('b', mid(1), { lamport: 1, envelope: null }),
              outbox('a', mid(1), { lamport: 1 }),
            ],
          });
          assert.deepEqual(ids(await s.outbox.queued('c', 10)), [mid(2), mid(3), mid(1)].map(hex));
          assert.deepEqual(ids(await s.outbox.queued('c', 2)), [mid(2), mid(3)].map(hex));
          assert.deepEqual(await s.outbox.queued('c', 0), []);
          assert.deepEqual((await s.outbox.conversationsWithQueued()).sort(), ['b', 'c']);
          // Encrypting the queued entries takes them out of the queue.
          await s.write({ outboxPut: [outbox('b', mid(1), { envelope: text('now sealed') })] });
          assert.deepEqual(await s.outbox.conversationsWithQueued(), ['c']);
        });
      });

      it('abandonOutbox drops a conversation\'s entries and fails their queued or sent messages, nothing else', async () => {
        await withStore(async (s) => {
          await s.write({
            conversations: [conversation('c'), conversation('d')],
            messages: [
              message('c', mid(1), { outgoing: true, status: 'queued', read: true }),
              message('c', mid(2), { outgoing: true, status: 'sent', read: true }),
              message('c', mid(3), { outgoing: true, status: 'acked', read: true }),
              message('c', mid(4)),
              message('d', mid(1), { outgoing: true, status: 'sent', read: true }),
            ],
            outboxPut: [outbox('c', mid(1), { envelope: null }), outbox('c', mid(2)), outbox('c', mid(9), { kind: 'handshake' }), outbox('d', mid(1))],
          });
          await s.write({ abandonOutbox: ['c', 'nobody'] });
          assert.deepEqual(await s.outbox.forConversation('c'), []);
          assert.equal((await s.messages.get('c', mid(1)))!.status, 'failed');
          assert.equal((await s.messages.get('c', mid(2)))!.status, 'failed');
          assert.equal((await s.messages.get('c', mid(3)))!.status, 'acked');
          assert.equal((await s.messages.get('c', mid(4)))!.status, 'received');
          assert.equal((await s.messages.get('d', mid(1)))!.status, 'sent');
          assert.equal(await s.outbox.pendingCount(), 1);
        });
      });

      it('outboxPut and abandonOutbox in one batch: the abandon comes after the put', async () => {
        await withStore(async (s) => {
          await s.write({ conversations: [conversation('c')], messages: [message('c', mid(1), { outgoing: true, status: 'queued', read: true })] });
          await s.write({ outboxPut: [outbox('c', mid(1), { envelope: null })], abandonOutbox: ['c'] });
          assert.equal(await s.outbox.pendingCount('c'), 0);
          assert.equal((await s.messages.get('c', mid(1)))!.status, 'failed');
        });
      });
    });

    describe('groups', () => {
      it('groups are inserted or replaced; events are kept once per (chat, bytes), verbatim', async () => {
        await withStore(async (s) => {
          await s.write({ groups: [{ chatId: 'g2', record: text('r2'), updatedAt: 2 }, { chatId: 'g1', record: text('r1'), updatedAt: 1 }] });
          await s.write({ groupEvents: [{ chatId: 'g1', wire: text('e1') }, { chatId: 'g1', wire: text('e2') }, { chatId: 'g1', wire: text('e1') }, { chatId: 'g2', wire: text('e1') }] });
          await s.write({ groups: [{ chatId: 'g1', record: text('r1 replaced'), updatedAt: 5 }], groupEvents: [{ chatId: 'g1', wire: text('e2') }] });
          const all = await s.groups.all();
          assert.deepEqual(all.map((g) => g.group), [{ chatId: 'g1', record: text('r1 replaced'), updatedAt: 5 }, { chatId: 'g2', record: text('r2'), updatedAt: 2 }]);
          assert.deepEqual(all[0]!.events.map(str).sort(), ['e1', 'e2']);
          assert.deepEqual(all[1]!.events.map(str), ['e1']);
        });
      });

      it('group messages are inserted if absent, seq strictly increasing across groups, paged newest first by seq', async () => {
        await withStore(async (s) => {
          await s.write({ groups: [{ chatId: 'g1', record: text('r'), updatedAt: 1 }, { chatId: 'g2', record: text('r'), updatedAt: 1 }] });
          await s.write({ groupMessages: [groupMessage('g1', 'a'), groupMessage('g2', 'x'), groupMessage('g1', 'b', { outgoing: true, receivedAt: null })] });
          await s.write({ groupMessages: [groupMessage('g1', 'c', { clock: 3 }), groupMessage('g1', 'a', { entity: text('changed'), clock: 99 })] });
          const all = await s.groups.messages('g1', 10, null);
          assert.deepEqual(all.map((m) => m.messageId), ['c', 'b', 'a']);
          const seqs = all.map((m) => m.seq!);
          assert.ok(seqs.every((q) => Number.isSafeInteger(q)), 'the store assigns seq');
          assert.ok(seqs[0]! > seqs[1]! && seqs[1]! > seqs[2]!, 'strictly increasing in insertion order');
          const x = await s.groups.message('g2', 'x');
          assert.ok(x!.seq! > seqs[2]! && x!.seq! < seqs[1]!, 'one sequence for the whole store');
          assert.deepEqual(all[2], { ...groupMessage('g1', 'a'), seq: seqs[2] }, 'the first insert stays');
          assert.deepEqual(await s.groups.message('g1', 'b'), { ...groupMessage('g1', 'b', { outgoing: true, receivedAt: null }), seq: seqs[1] });
          assert.deepEqual((await s.groups.messages('g1', 1, null)).map((m) => m.messageId), ['c']);
          assert.deepEqual((await s.groups.messages('g1', 10, seqs[0]!)).map((m) => m.messageId), ['b', 'a'], 'strictly before beforeSeq');
          assert.deepEqual((await s.groups.messages('g1', 1, seqs[1]!)).map((m) => m.messageId), ['a']);
          assert.deepEqual(await s.groups.messages('g1', 10, seqs[2]!), []);
          assert.deepEqual(await s.groups.messages('g1', 0, null), []);
          assert.equal(await s.groups.message('g1', 'x'), null);
        });
      });

      it('a group event or message needs its group: otherwise invalid-argument and nothing is written', async () => {
        await withStore(async (s) => {
          await assert.rejects(s.write({ groups: [{ chatId: 'g1', record: text('r'), updatedAt: 1 }], groupEvents: [{ chatId: 'g9', wire: text('e') }] }), { code: 'invalid-argument' });
          await assert.rejects(s.write({ groups: [{ chatId: 'g1', record: text('r'), updatedAt: 1 }], groupMessages: [groupMessage('g9', 'm')] }), { code: 'invalid-argument' });
          assert.deepEqual(await s.groups.all(), []);
        });
      });
    });

    describe('service account, directory states, settings', () => {
      it('the services account document is replaced whole and deleted by null', async () => {
        await withStore(async (s) => {
          await s.write({ serviceAccount: '{"v":1,"a":1}' });
          await s.write({ serviceAccount: '{"v":1,"a":2}' });
          assert.equal(await s.serviceAccount.get(), '{"v":1,"a":2}');
          await s.write({});
          assert.equal(await s.serviceAccount.get(), '{"v":1,"a":2}', 'an absent field leaves it');
          await s.write({ serviceAccount: null });
          assert.equal(await s.serviceAccount.get(), null);
        });
      });

      it('directory states are kept per URL; null deletes one', async () => {
        await withStore(async (s) => {
          await s.write({ directoryStates: [{ url: 'https://a.example', state: '{"a":1}' }, { url: 'https://b.example', state: '{"b":1}' }] });
          await s.write({ directoryStates: [{ url: 'https://a.example', state: null }, { url: 'https://b.example', state: '{"b":2}' }] });
          assert.equal(await s.directory.get('https://a.example'), null);
          assert.equal(await s.directory.get('https://b.example'), '{"b":2}');
        });
      });

      it('settings are key → value; null deletes a key; the empty string is a value', async () => {
        await withStore(async (s) => {
          await s.write({ settings: [{ key: 'transport', value: 'waku' }, { key: 'handle', value: '' }, { key: 'x', value: '1' }] });
          await s.write({ settings: [{ key: 'x', value: null }, { key: 'transport', value: 'services' }] });
          assert.equal(await s.settings.get('transport'), 'services');
          assert.equal(await s.settings.get('handle'), '');
          assert.equal(await s.settings.get('x'), null);
        });
      });
    });

    describe('atomicity', () => {
      it('a batch that fails half-way (a reference to nothing after valid changes) leaves nothing of it', async () => {
        await withStore(async (s) => {
          await s.write({ conversations: [conversation('c')], messages: [message('c', mid(1))] });
          const before = await snapshot(s);
          await assert.rejects(
            s.write({
              ...everything(),
              conversations: [conversation('c', { lamport: 50 }, 'changed'), conversation('c2')],
              messageStatus: [{ conversationId: 'c', messageId: mid(1), status: 'failed' }],
              markRead: [{ conversationId: 'c', upToLamport: 10, upToMessageId: mid(0) }],
              groupMessages: [groupMessage('g1', 'm-1'), groupMessage('no-such-group', 'm-2')],
            }),
            { code: 'invalid-argument' },
          );
          assert.deepEqual(await snapshot(s), before);
          assert.deepEqual((await s.conversations.all()).map((c) => c.meta.id), ['c']);
          assert.equal(await s.account.get(), null);
          assert.equal(await s.outbox.pendingCount(), 0);
          // The store still works after the failed batch.
          await s.write({ settings: [{ key: 'after', value: 'yes' }] });
          assert.equal(await s.settings.get('after'), 'yes');
        });
      });

      it('a batch with one malformed field is refused before anything is written', async () => {
        await withStore(async (s) => {
          await assert.rejects(s.write({ settings: [{ key: 'k', value: 'v' }], outboxPut: [outbox('c', new Uint8Array(3))] }), { code: 'invalid-argument' });
          assert.equal(await s.settings.get('k'), null);
          assert.equal(await s.outbox.pendingCount(), 0);
        });
      });

      it('concurrent writes are each applied whole', async () => {
        await withStore(async (s) => {
          await s.write({ conversations: [conversation('c')] });
          await Promise.all(
            Array.from({ length: 20 }, (_, i) =>
              s.write({ messages: [message('c', mid(i, 1), { lamport: i }), message('c', mid(i, 2), { lamport: i })], settings: [{ key: `k${i}`, value: String(i) }] }),
            ),
          );
          assert.equal(await s.messages.count('c'), 40);
          for (let i = 0; i < 20; i++) assert.equal(await s.settings.get(`k${i}`), String(i));
        });
      });
    });

    describe('copies, not aliases', () => {
      it('changing what was written, or what a read returned, changes nothing stored', async () => {
        await withStore(async (s) => {
          const batch = everything();
          await s.write(batch);
          const expected = await snapshot(s);
          // Mutate every input object and array.
          batch.account!.secretKey.fill(0);
          (batch.account as { profileName: string }).profileName = 'changed';
          batch.conversations![0]!.state.fill(0);
          (batch.conversations![0]!.meta.recentIds as Uint8Array[])[0]!.fill(0);
          (batch.conversations![0]!.meta.recentIds as Uint8Array[]).push(mid(9));
          batch.messages![0]!.body.fill(0);
          batch.messages![0]!.messageId.fill(0);
          batch.outboxPut![0]!.envelope!.fill(0);
          batch.groups![0]!.record.fill(0);
          batch.groupEvents![0]!.wire.fill(0);
          batch.groupMessages![0]!.entity.fill(0);
          batch.seenEnvelopes![0]!.hash.fill(1);
          batch.inboxes![0]!.state.fill(0);
          assert.deepEqual(await snapshot(s), expected);
          // Mutate every returned object.
          const account = await s.account.get();
          account!.secretKey.fill(0);
          const [conv] = await s.conversations.all();
          conv!.state.fill(0);
          (conv!.meta.recentIds as Uint8Array[]).length = 0;
          const [m] = await s.messages.history('c1', 1, null);
          m!.body.fill(0);
          m!.messageId.fill(0);
          (m as { status: string }).status = 'failed';
          const gotMessage = await s.messages.get('c1', mid(3));
          gotMessage!.body.fill(0);
          const [o] = await s.outbox.forConversation('c1');
          o!.envelope!.fill(0);
          const [g] = await s.groups.all();
          g!.group.record.fill(0);
          g!.events[0]!.fill(0);
          g!.events.length = 0;
          const [gm] = await s.groups.messages('g1', 1, null);
          gm!.entity.fill(0);
          const seen = await s.messages.seenEnvelope(new Uint8Array(32).fill(7));
          seen!.messageId!.fill(0);
          seen!.hash.fill(0);
          const [inbox] = await s.account.inboxes();
          inbox!.state.fill(0);
          assert.deepEqual(await snapshot(s), expected);
        });
      });
    });

    describe('close', () => {
      it('is idempotent, and every read and write after it rejects with client-closed', async () => {
        await withStore(async (s) => {
          await s.write(everything());
          await s.close();
          await s.close();
          const closed = { code: 'client-closed' };
          const calls: (() => Promise<unknown>)[] = [
            () => s.write({ settings: [{ key: 'k', value: 'v' }] }),
            () => s.write({}),
            () => s.account.get(),
            () => s.account.inboxes(),
            () => s.conversations.all(),
            () => s.conversations.cursor('r1'),
            () => s.conversations.legacyMissing(),
            () => s.messages.get('c1', mid(3)),
            () => s.messages.state('c1', mid(3)),
            () => s.messages.history('c1', 10, null),
            () => s.messages.unreadCount('c1'),
            () => s.messages.count('c1'),
            () => s.messages.incomingIds('c1', 10),
            () => s.messages.seenEnvelope(new Uint8Array(32)),
            () => s.outbox.entry('c1', mid(4)),
            () => s.outbox.forConversation('c1'),
            () => s.outbox.queued('c1', 10),
            () => s.outbox.conversationsWithQueued(),
            () => s.outbox.pendingCount(),
            () => s.groups.all(),
            () => s.groups.message('g1', 'm-1'),
            () => s.groups.messages('g1', 10, null),
            () => s.serviceAccount.get(),
            () => s.directory.get('https://dir.example'),
            () => s.settings.get('transport'),
          ];
          for (const call of calls) await assert.rejects(call(), closed);
        });
      });
    });

    describe('durability', () => {
      it('everything written is there after a reopen (stores that persist), and seq keeps increasing', async () => {
        await withStore(async (s, opened) => {
          if (opened.reopen === undefined) return; // nothing persists (the memory store)
          await s.write(everything());
          await s.write({ messageStatus: [{ conversationId: 'c1', messageId: mid(4), status: 'acked' }], markRead: [{ conversationId: 'c1', upToLamport: 3, upToMessageId: mid(3) }] });
          const before = await snapshot(s);
          const lastSeq = (await s.groups.messages('g1', 1, null))[0]!.seq!;
          const again = await opened.reopen();
          assert.deepEqual(await snapshot(again), before);
          await again.write({ groupMessages: [groupMessage('g1', 'm-2')] });
          assert.ok((await again.groups.message('g1', 'm-2'))!.seq! > lastSeq);
        });
      });
    });

    describe('bad input', () => {
      it('malformed batches are invalid-argument', async () => {
        await withStore(async (s) => {
          await s.write({ conversations: [conversation('c')], groups: [{ chatId: 'g', record: text('r'), updatedAt: 1 }] });
          const bad: unknown[] = [
            null,
            'batch',
            { messages: 'not an array' },
            { messages: [null] },
            { account: { publicKey: random(31), secretKey: random(32), profileName: 'x', createdAt: 1 } },
            { account: { publicKey: random(32), secretKey: Array.from(random(32)), profileName: 'x', createdAt: 1 } },
            { inboxes: [{ invitationId: 'abc', state: text('s'), isDefault: true, expiresAt: 1, createdAt: 1 }] },
            { conversations: [{ meta: meta('c', { consent: 'maybe' as never }), state: text('s') }] },
            { conversations: [{ meta: meta('c', { recentIds: [random(15)] }), state: text('s') }] },
            { conversations: [{ meta: meta(''), state: text('s') }] },
            { conversations: [{ meta: meta('c', { lamport: 1.5 }), state: text('s') }] },
            { conversations: [{ meta: meta('c'), state: 'state' }] },
            { messages: [message('c', random(15))] },
            { messages: [{ ...message('c', mid(1)), messageId: Array.from(mid(1)) }] },
            { messages: [message('c', mid(1), { status: 'lost' as never })] },
            { messages: [message('c', mid(1), { lamport: -1 })] },
            { messages: [message('c', mid(1), { body: 'hello' as never })] },
            { messageStatus: [{ conversationId: 'c', messageId: mid(1), status: 'gone' }] },
            { markRead: [{ conversationId: 'c', upToLamport: 1, upToMessageId: 'id' }] },
            { seenEnvelopes: [{ hash: random(31), conversationId: null, messageId: null, seenAt: 1 }] },
            { pruneSeenBefore: 'yesterday' },
            { outboxPut: [outbox('c', mid(1), { kind: 'other' as never })] },
            { outboxPut: [outbox('c', mid(1), { envelope: 'sealed' as never })] },
            { outboxDelete: [{ conversationId: 'c', messageId: new ArrayBuffer(16) }] },
            { abandonOutbox: [7] },
            { groups: [{ chatId: 'g', record: 'r', updatedAt: 1 }] },
            { groupEvents: [{ chatId: 'g', wire: null }] },
            { groupMessages: [{ ...groupMessage('g', 'm'), clock: Number.NaN }] },
            { serviceAccount: { v: 1 } },
            { directoryStates: [{ url: '', state: '{}' }] },
            { settings: [{ key: 'k', value: 5 }] },
          ];
          for (const batch of bad) await assert.rejects(s.write(batch as StoreBatch), { code: 'invalid-argument' }, JSON.stringify(batch)?.slice(0, 80));
          assert.equal(await s.messages.count('c'), 0);
          assert.deepEqual((await s.conversations.all()).map((c) => c.meta.id), ['c']);
        });
      });

      it('malformed read arguments are invalid-argument', async () => {
        await withStore(async (s) => {
          const invalid = { code: 'invalid-argument' };
          await assert.rejects(s.messages.get('c', 'id' as never), invalid);
          await assert.rejects(s.messages.get('c', random(15)), invalid);
          await assert.rejects(s.messages.state(7 as never, mid(1)), invalid);
          await assert.rejects(s.messages.history('c', -1, null), invalid);
          await assert.rejects(s.messages.history('c', 1.5, null), invalid);
          await assert.rejects(s.messages.history('c', 10, { lamport: 1, messageId: 'x' as never }), invalid);
          await assert.rejects(s.messages.incomingIds('c', Number.POSITIVE_INFINITY), invalid);
          await assert.rejects(s.messages.seenEnvelope(random(16)), invalid);
          await assert.rejects(s.messages.seenEnvelope('hash' as never), invalid);
          await assert.rejects(s.outbox.entry('c', Array.from(mid(1)) as never), invalid);
          await assert.rejects(s.outbox.queued('c', -5), invalid);
          await assert.rejects(s.outbox.pendingCount(5 as never), invalid);
          await assert.rejects(s.groups.messages('g', 10, -1), invalid);
          await assert.rejects(s.groups.message('g', 5 as never), invalid);
          await assert.rejects(s.conversations.cursor(null as never), invalid);
          await assert.rejects(s.directory.get(''), invalid);
          await assert.rejects(s.settings.get(undefined as never), invalid);
        });
      });
    });
  });
}
