/**
 * Checks of what callers hand the Client: ids, cursors, texts and open options. Every failure is
 * a ClientError('invalid-argument' or a more precise code) before any state is touched.
 */
import { fromHex, reliability as rel, toHex } from '@umbra/protocol';
import type { Delivery } from './delivery.ts';
import { ClientError } from './errors.ts';
import { MAX_PROFILE_NAME_CHARS, MAX_TEXT_BYTES, type ClientOptions } from './client-types.ts';
import type { Consent, HistoryPosition } from './store.ts';

const HEX_ID = /^[0-9a-f]{32}$/;
const utf8 = new TextEncoder();

export function parseMessageId(id: unknown, what = 'message id'): Uint8Array {
  if (typeof id !== 'string' || !HEX_ID.test(id)) throw new ClientError('invalid-argument', `${what} must be 32 lowercase hex characters`);
  return fromHex(id)!;
}

export function checkConversationId(id: unknown): string {
  if (typeof id !== 'string' || !HEX_ID.test(id)) throw new ClientError('invalid-argument', 'a conversation id is 32 lowercase hex characters');
  return id;
}

export function checkText(text: unknown): string {
  if (typeof text !== 'string') throw new ClientError('invalid-argument', 'text must be a string');
  // Most texts are far below the limit in any encoding: only count bytes when it could matter.
  if (text.length * 3 > MAX_TEXT_BYTES && utf8.encode(text).length > MAX_TEXT_BYTES) {
    throw new ClientError('message-too-large', `a message is at most ${MAX_TEXT_BYTES} bytes of UTF-8`);
  }
  return text;
}

export function checkOptionsObject(options: unknown): void {
  if (options === null || typeof options !== 'object') throw new ClientError('invalid-argument', 'options must be an object');
}

export function checkConsent(consent: unknown): Consent {
  if (consent !== 'allowed' && consent !== 'denied' && consent !== 'unknown') throw new ClientError('invalid-argument', 'consent must be allowed, unknown or denied');
  return consent;
}

/** history(): the page size and the position a previous page's cursor names. */
export function parseHistoryOptions(options: { limit?: number; before?: string }): { limit: number; before: HistoryPosition | null } {
  checkOptionsObject(options);
  const limit = options.limit ?? 50;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ClientError('invalid-argument', 'limit must be an integer from 1 to 1000');
  if (options.before === undefined) return { limit, before: null };
  const match = typeof options.before === 'string' ? /^(\d{1,16})\.([0-9a-f]{32})$/.exec(options.before) : null;
  if (match === null) throw new ClientError('invalid-argument', 'before must be a cursor returned by history()');
  return { limit, before: { lamport: Number(match[1]), messageId: fromHex(match[2]!)! } };
}

export function historyCursor(position: HistoryPosition): string {
  return `${position.lamport}.${toHex(position.messageId)}`;
}

/** Client.open's options, before any store is opened. */
export function checkOpenOptions(options: ClientOptions): void {
  if (options === null || typeof options !== 'object') throw new ClientError('invalid-argument', 'Client.open needs options');
  const d = options.delivery as Partial<Delivery> | undefined;
  if (d === undefined || d === null || typeof d.publish !== 'function' || typeof d.subscribe !== 'function' || typeof d.fetch !== 'function') {
    throw new ClientError('invalid-argument', 'options.delivery must implement publish, subscribe and fetch');
  }
  if ((options.store === undefined) === (options.dataDir === undefined)) throw new ClientError('invalid-argument', 'give exactly one of dataDir or store');
  if (options.dataDir !== undefined && (typeof options.dataDir !== 'string' || options.dataDir.length === 0)) throw new ClientError('invalid-argument', 'dataDir must be a non-empty path');
  if (options.profile !== undefined) {
    const name = (options.profile as { name?: unknown }).name;
    if (typeof name !== 'string' || name.length > MAX_PROFILE_NAME_CHARS) {
      throw new ClientError('invalid-argument', `profile.name must be a string of at most ${MAX_PROFILE_NAME_CHARS} characters`);
    }
  }
  if (options.restoreAccountKey !== undefined && (!(options.restoreAccountKey instanceof Uint8Array) || options.restoreAccountKey.length !== 32)) {
    throw new ClientError('invalid-argument', 'restoreAccountKey must be a 32-byte Ed25519 seed');
  }
  if (options.now !== undefined && typeof options.now !== 'function') throw new ClientError('invalid-argument', 'options.now must be a function');
  clientTimings(options);
}

function bounded(v: unknown, dflt: number, min: number, max: number, what: string): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new ClientError('invalid-argument', `${what} must be a number in [${min}, ${max}]`);
  return v;
}

/** The reliability machine's policy and the sync interval, from the options (defaults in ClientOptions' docs). */
export function clientTimings(options: ClientOptions): { policy: rel.ReliabilityPolicy; syncIntervalMs: number } {
  const retryInitialMs = bounded(options.retry?.initialMs, 2000, 1, 86_400_000, 'retry.initialMs');
  return {
    policy: {
      retryInitialMs,
      retryMaxMs: bounded(options.retry?.maxMs, 300_000, retryInitialMs, 86_400_000 * 7, 'retry.maxMs'),
      // Keep a few hint slots for acks and requests: a same-bytes retry needs its slot within HINT_WINDOW.
      maxInFlight: Math.floor(bounded(options.maxInFlight, 24, 1, rel.MAX_IN_FLIGHT, 'maxInFlight')),
      ackDelayMs: bounded(options.ackDelayMs, 20, 0, 60_000, 'ackDelayMs'),
      duplicateAckIntervalMs: bounded(options.duplicateAckIntervalMs, Math.min(1000, retryInitialMs / 2), 0, 3_600_000, 'duplicateAckIntervalMs'),
      missingGraceMs: bounded(options.missingGraceMs, 1000, 0, 86_400_000, 'missingGraceMs'),
      fastRetransmitMs: bounded(options.fastRetransmitMs, 200, 0, 86_400_000, 'fastRetransmitMs'),
    },
    syncIntervalMs: bounded(options.syncIntervalMs, 30_000, 0, 86_400_000, 'syncIntervalMs'),
  };
}

/** createInvitation's options, with their defaults (single use, 7 days). */
export function checkInvitationOptions(options: { reusable?: boolean; ttlSeconds?: number; arrivesAsRequest?: boolean }): { reusable: boolean; ttlSeconds: number; arrivesAsRequest: boolean } {
  checkOptionsObject(options);
  const { reusable = false, arrivesAsRequest = false, ttlSeconds = 7 * 24 * 3600 } = options;
  if (typeof reusable !== 'boolean') throw new ClientError('invalid-argument', 'reusable must be a boolean');
  if (typeof arrivesAsRequest !== 'boolean') throw new ClientError('invalid-argument', 'arrivesAsRequest must be a boolean');
  if (typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > 366 * 24 * 3600) {
    throw new ClientError('invalid-argument', 'ttlSeconds must be an integer from 1 to one year');
  }
  return { reusable, ttlSeconds, arrivesAsRequest };
}
