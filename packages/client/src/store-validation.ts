/**
 * What every Store implementation checks before it applies a batch or answers a read, so bad
 * input is the same typed error (ClientError('invalid-argument')) from SQLite, memory and
 * IndexedDB, and nothing is written when any part of a batch is malformed. Platform-neutral.
 */
import { ClientError } from './errors.ts';
import type { ConversationMeta, HistoryPosition, MessageKey, StoreBatch } from './store.ts';

export const MESSAGE_ID_BYTES = 16;
export const INVITATION_ID_BYTES = 16;
export const ENVELOPE_HASH_BYTES = 32;
export const ACCOUNT_KEY_BYTES = 32;
/** ConversationMeta.recentIds holds at most this many ids. */
export const MAX_RECENT_IDS = 8;

const CONSENTS = new Set(['allowed', 'unknown', 'denied']);
const ORIGINS = new Set(['accepted', 'invitation', 'default-inbox']);
const STATUSES = new Set(['queued', 'sent', 'acked', 'failed', 'received']);
const KINDS = new Set(['content', 'handshake']);

function bad(what: string): never {
  throw new ClientError('invalid-argument', `store: ${what}`);
}

export function checkBytes(value: unknown, what: string, length?: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) bad(`${what} must be a Uint8Array`);
  if (length !== undefined && value.length !== length) bad(`${what} must be ${length} bytes`);
}

export function checkString(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) bad(`${what} must be a non-empty string`);
}

function checkDocument(value: unknown, what: string): void {
  if (value !== null && typeof value !== 'string') bad(`${what} must be a string or null`);
}

/** Times, clocks and counters: safe integers (≥ 0 unless `signed`). */
function checkInt(value: unknown, what: string, signed = false): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || (!signed && value < 0)) bad(`${what} must be ${signed ? 'an' : 'a non-negative'} integer`);
}

function checkNullableInt(value: unknown, what: string): void {
  if (value !== null) checkInt(value, what);
}

function checkBool(value: unknown, what: string): void {
  if (typeof value !== 'boolean') bad(`${what} must be a boolean`);
}

function checkEnum(value: unknown, allowed: Set<string>, what: string): void {
  if (typeof value !== 'string' || !allowed.has(value)) bad(`${what} is not one of ${[...allowed].join(', ')}`);
}

function list<T>(value: T[] | undefined, what: string): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) bad(`${what} must be an array`);
  for (const item of value) if (item === null || typeof item !== 'object') bad(`${what} holds a non-object`);
  return value;
}

export function checkMessageKey(k: MessageKey, what: string): void {
  checkString(k.conversationId, `${what}.conversationId`);
  checkBytes(k.messageId, `${what}.messageId`, MESSAGE_ID_BYTES);
}

/** Throws ClientError('invalid-argument') for anything that is not a well-formed StoreBatch. */
export function validateBatch(b: StoreBatch): void {
  if (b === null || typeof b !== 'object') bad('a batch must be an object');
  if (b.account !== undefined) {
    const a = b.account;
    if (a === null || typeof a !== 'object') bad('account must be an object');
    checkBytes(a.publicKey, 'account.publicKey', ACCOUNT_KEY_BYTES);
    checkBytes(a.secretKey, 'account.secretKey', ACCOUNT_KEY_BYTES);
    if (typeof a.profileName !== 'string') bad('account.profileName must be a string');
    checkInt(a.createdAt, 'account.createdAt');
  }
  for (const i of list(b.inboxes, 'inboxes')) {
    checkBytes(i.invitationId, 'inbox.invitationId', INVITATION_ID_BYTES);
    checkBytes(i.state, 'inbox.state');
    checkBool(i.isDefault, 'inbox.isDefault');
    checkInt(i.expiresAt, 'inbox.expiresAt');
    checkInt(i.createdAt, 'inbox.createdAt');
  }
  for (const c of list(b.conversations, 'conversations')) {
    if (c.meta === null || typeof c.meta !== 'object') bad('conversation.meta must be an object');
    checkMeta(c.meta, true);
    checkBytes(c.state, 'conversation.state');
  }
  for (const m of list(b.conversationMeta, 'conversationMeta')) checkMeta(m, false);
  for (const c of list(b.cursors, 'cursors')) {
    checkString(c.route, 'cursor.route');
    if (typeof c.cursor !== 'string') bad('cursor.cursor must be a string');
  }
  for (const k of list(b.missingDelete, 'missingDelete')) checkMessageKey(k, 'missingDelete');
  for (const m of list(b.messages, 'messages')) {
    checkMessageKey(m, 'message');
    checkBool(m.outgoing, 'message.outgoing');
    checkInt(m.lamport, 'message.lamport');
    checkInt(m.sentAt, 'message.sentAt');
    checkNullableInt(m.receivedAt, 'message.receivedAt');
    checkBytes(m.body, 'message.body');
    checkEnum(m.status, STATUSES, 'message.status');
    checkBool(m.read, 'message.read');
    if (m.group !== undefined) checkBool(m.group, 'message.group');
  }
  for (const m of list(b.messageStatus, 'messageStatus')) {
    checkMessageKey(m, 'messageStatus');
    checkEnum(m.status, STATUSES, 'messageStatus.status');
  }
  for (const r of list(b.markRead, 'markRead')) {
    checkString(r.conversationId, 'markRead.conversationId');
    checkInt(r.upToLamport, 'markRead.upToLamport');
    checkBytes(r.upToMessageId, 'markRead.upToMessageId', MESSAGE_ID_BYTES);
  }
  for (const e of list(b.seenEnvelopes, 'seenEnvelopes')) {
    checkBytes(e.hash, 'seenEnvelope.hash', ENVELOPE_HASH_BYTES);
    if (e.conversationId !== null) checkString(e.conversationId, 'seenEnvelope.conversationId');
    if (e.messageId !== null) checkBytes(e.messageId, 'seenEnvelope.messageId', MESSAGE_ID_BYTES);
    checkInt(e.seenAt, 'seenEnvelope.seenAt');
  }
  if (b.pruneSeenBefore !== undefined) checkInt(b.pruneSeenBefore, 'pruneSeenBefore', true);
  for (const o of list(b.outboxPut, 'outboxPut')) {
    checkMessageKey(o, 'outbox');
    checkEnum(o.kind, KINDS, 'outbox.kind');
    checkInt(o.lamport, 'outbox.lamport');
    if (o.envelope !== null) checkBytes(o.envelope, 'outbox.envelope');
    checkInt(o.hintHour, 'outbox.hintHour', true);
    checkInt(o.hintIndex, 'outbox.hintIndex', true);
    checkInt(o.attempts, 'outbox.attempts');
    checkInt(o.nextAttemptAt, 'outbox.nextAttemptAt');
    checkInt(o.createdAt, 'outbox.createdAt');
  }
  for (const k of list(b.outboxDelete, 'outboxDelete')) checkMessageKey(k, 'outboxDelete');
  if (b.abandonOutbox !== undefined) {
    if (!Array.isArray(b.abandonOutbox)) bad('abandonOutbox must be an array');
    for (const id of b.abandonOutbox) checkString(id, 'abandonOutbox[]');
  }
  for (const g of list(b.groups, 'groups')) {
    checkString(g.chatId, 'group.chatId');
    checkBytes(g.record, 'group.record');
    checkInt(g.updatedAt, 'group.updatedAt');
  }
  for (const e of list(b.groupEvents, 'groupEvents')) {
    checkString(e.chatId, 'groupEvent.chatId');
    checkBytes(e.wire, 'groupEvent.wire');
  }
  for (const m of list(b.groupMessages, 'groupMessages')) {
    checkString(m.chatId, 'groupMessage.chatId');
    checkString(m.messageId, 'groupMessage.messageId');
    checkString(m.author, 'groupMessage.author');
    checkBool(m.outgoing, 'groupMessage.outgoing');
    checkInt(m.clock, 'groupMessage.clock');
    checkInt(m.sentAt, 'groupMessage.sentAt');
    checkNullableInt(m.receivedAt, 'groupMessage.receivedAt');
    checkBytes(m.entity, 'groupMessage.entity');
  }
  if (b.serviceAccount !== undefined) checkDocument(b.serviceAccount, 'serviceAccount');
  for (const d of list(b.directoryStates, 'directoryStates')) {
    checkString(d.url, 'directoryState.url');
    checkDocument(d.state, 'directoryState.state');
  }
  for (const s of list(b.settings, 'settings')) {
    checkString(s.key, 'setting.key');
    checkDocument(s.value, 'setting.value');
  }
}

function checkMeta(m: ConversationMeta, full: boolean): void {
  checkString(m.id, 'conversation.id');
  checkEnum(m.consent, CONSENTS, 'conversation.consent');
  if (full) checkEnum(m.origin, ORIGINS, 'conversation.origin');
  checkInt(m.lamport, 'conversation.lamport');
  if (!Array.isArray(m.recentIds) || m.recentIds.length > MAX_RECENT_IDS) bad(`conversation.recentIds must be an array of at most ${MAX_RECENT_IDS} ids`);
  for (const id of m.recentIds) checkBytes(id, 'conversation.recentIds[]', MESSAGE_ID_BYTES);
  if (full) checkInt(m.createdAt, 'conversation.createdAt');
  checkInt(m.lastActivityAt, 'conversation.lastActivityAt');
}

/** A page size: a non-negative integer. */
export function checkLimit(limit: unknown): asserts limit is number {
  checkInt(limit, 'limit');
}

export function checkPosition(before: HistoryPosition | null): void {
  if (before === null) return;
  if (typeof before !== 'object') bad('before must be a position or null');
  checkInt(before.lamport, 'before.lamport');
  checkBytes(before.messageId, 'before.messageId', MESSAGE_ID_BYTES);
}

export function checkSeq(beforeSeq: unknown): void {
  if (beforeSeq !== null) checkInt(beforeSeq, 'beforeSeq');
}

/** Byte order as SQLite's BLOB comparison and IndexedDB's binary keys have it: memcmp, then the shorter first. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** (lamport, message id) order. */
export function comparePosition(a: { lamport: number; messageId: Uint8Array }, b: { lamport: number; messageId: Uint8Array }): number {
  return a.lamport !== b.lamport ? a.lamport - b.lamport : compareBytes(a.messageId, b.messageId);
}

/** Code-unit order, as IndexedDB string keys have it; SQLite's BINARY collation (UTF-8 bytes) agrees on the ASCII ids and URLs stored here. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
