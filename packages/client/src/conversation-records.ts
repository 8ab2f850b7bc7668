/**
 * Conversations as stored: one ConversationRecord (engine state + reliability state) beside its
 * meta, and inboxes. Reading them back includes the migration of stores written before
 * reliability moved into the protocol package (Lamport clock and recent ids in the meta, missing
 * ids in their own table, in-flight and handshake entries in the outbox).
 */
import {
  deserializeConversation,
  deserializeInbox,
  reliability as rel,
  serializeConversation,
  serializeInbox,
  PackedBytes,
  type Inbox,
  type PrivateConversation,
} from '@umbra/protocol';
import type { ConversationMeta, MissingEntry, Store, StoreBatch, StoredConversation, StoredInbox } from './store.ts';

/** Cursor key marking an invitation whose first contact arrives as a request (kept with the route cursors, as stores already hold it). */
export const requestInboxKey = (invitationIdHex: string): string => `umbra:arrives-as-request:${invitationIdHex}`;

/** A conversation as stored: its meta (Lamport clock and recent ids mirror the machine's) and one record of engine and reliability state. */
export function conversationRecord(meta: ConversationMeta, conversation: PrivateConversation, state: rel.ReliabilityState): StoredConversation {
  return {
    meta: { ...meta, lamport: state.lamport, recentIds: state.recentIds },
    state: rel.encodeConversationRecord(serializeConversation(conversation), state),
  };
}

export function storedInbox(inbox: Inbox, now: number): StoredInbox {
  return { invitationId: inbox.invitationId, state: serializeInbox(inbox), isDefault: inbox.isDefaultInbox, expiresAt: inbox.expiresAt, createdAt: now };
}

/**
 * A conversation's reliability state as the client holds it: decoded, or the index of its
 * encoded bytes in `idleReliability` while it is as it was at open, idle (nothing due, no acks
 * pending, nothing in flight; rel.splitConversationRecord). Decoding 100,000 of them was a
 * tenth of opening a client; most stay idle.
 */
export type HeldReliability = rel.ReliabilityState | number;

export interface LoadedConversations {
  readonly inboxes: Inbox[];
  /** Conversations decoded at load (the migrated legacy ones). */
  readonly conversations: PrivateConversation[];
  /** The others, as their records hold them (serialized engine state): the engine decodes them when used. */
  readonly storedConversations: Uint8Array[];
  readonly metas: ConversationMeta[];
  readonly states: Map<string, HeldReliability>;
  /** The reliability states left encoded because they were idle (`states` holds their index here). */
  readonly idleReliability: PackedBytes;
  /** The migrated records (and legacy rows to drop), to write in one transaction; null when nothing was migrated. */
  readonly migration: StoreBatch | null;
}

/** Every inbox and conversation of the store; legacy conversations decoded and migrated in memory, the others left encoded for the engine. */
export async function loadConversations(store: Store): Promise<LoadedConversations> {
  const [storedInboxes, stored] = await Promise.all([store.account.inboxes(), store.conversations.all()]);
  const conversations: PrivateConversation[] = [];
  const storedConversations: Uint8Array[] = [];
  const states = new Map<string, HeldReliability>();
  const idle: Uint8Array[] = [];
  const migrated: StoredConversation[] = [];
  const missingDelete: MissingEntry[] = [];
  let legacyMissing: Map<string, MissingEntry[]> | null = null;
  for (const c of stored) {
    const parts = rel.splitConversationRecord(c.state);
    if (parts !== null) {
      storedConversations.push(parts.conversationState);
      if (parts.idle) states.set(c.meta.id, idle.push(parts.reliability) - 1);
      else states.set(c.meta.id, rel.deserializeReliability(parts.reliability));
      continue;
    }
    const decoded = rel.decodeConversationRecord(c.state);
    if (decoded.reliability !== null) {
      storedConversations.push(decoded.conversationState);
      states.set(c.meta.id, decoded.reliability);
      continue;
    }
    const conversation = deserializeConversation(decoded.conversationState);
    conversations.push(conversation);
    legacyMissing ??= byConversation(await store.conversations.legacyMissing());
    const missing = legacyMissing.get(c.meta.id) ?? [];
    const state = await migrateReliability(store, c.meta, missing);
    states.set(c.meta.id, state);
    migrated.push(conversationRecord(c.meta, conversation, state));
    missingDelete.push(...missing);
  }
  return {
    inboxes: storedInboxes.map((i) => deserializeInbox(i.state)),
    conversations,
    storedConversations,
    metas: stored.map((c) => c.meta),
    states,
    idleReliability: new PackedBytes(idle),
    migration: migrated.length === 0 ? null : { conversations: migrated, missingDelete },
  };
}

function byConversation(rows: readonly MissingEntry[]): Map<string, MissingEntry[]> {
  const map = new Map<string, MissingEntry[]>();
  for (const m of rows) {
    const list = map.get(m.conversationId) ?? [];
    list.push(m);
    map.set(m.conversationId, list);
  }
  return map;
}

/** The reliability state of a pre-reliability conversation, from what the client stored then. */
async function migrateReliability(store: Store, meta: ConversationMeta, missing: readonly MissingEntry[]): Promise<rel.ReliabilityState> {
  const outbox = await store.outbox.forConversation(meta.id);
  const hs = outbox.find((o) => o.kind === 'handshake');
  return rel.migrateReliability({
    lamport: meta.lamport,
    recentIds: meta.recentIds,
    missing,
    inFlight: outbox
      .filter((o) => o.kind === 'content' && o.envelope !== null)
      .map((o) => ({ messageId: o.messageId, lamport: o.lamport, hintHour: o.hintHour, hintIndex: o.hintIndex, attempts: o.attempts, lastSentAt: 0, nextAttemptAt: o.nextAttemptAt })),
    handshake: hs === undefined ? null : { messageId: hs.messageId, attempts: hs.attempts, nextAttemptAt: hs.nextAttemptAt },
  });
}
