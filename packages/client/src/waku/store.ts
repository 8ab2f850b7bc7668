/**
 * A store-like service for Umbra on Waku: the Waku Store v3 query protocol
 * (`/vac/waku/store-query/3.0.0`, WAKU2-STORE: length-prefixed StoreQueryRequest →
 * StoreQueryResponse) served by a js-waku relay node that keeps the recent traffic of the
 * Umbra bucket topics in memory. js-waku has only the client side of Store, so the server half
 * is ours; it speaks the standard wire format, so js-waku's own StoreCore can query it too.
 *
 * Ordering is by arrival at the store (not by the sender-set timestamp, which a sender may
 * get wrong), so a forward-paging reader never misses a late-arriving message. Cursors are
 * message hashes (14/WAKU2-MESSAGE); an unknown (e.g. pruned) cursor is answered with 400.
 */
import Database from 'better-sqlite3';
import { proto_message as messageProto, proto_store as storeProto } from '@waku/proto';
import { toHex, wakuMessageHash } from './hash.ts';
import type { DuplexStream, RelayNode } from './node.ts';

export const STORE_CODEC = '/vac/waku/store-query/3.0.0';
export const STORE_DEFAULT_PAGE = 20;
export const STORE_MAX_PAGE = 100;
/** Largest store request or response frame we read. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export type WakuMessageProto = messageProto.WakuMessage;
export type StoreQueryRequest = storeProto.StoreQueryRequest;
export type StoreQueryResponse = storeProto.StoreQueryResponse;

// ---- framing (unsigned-varint length prefix, as it-length-prefixed) ------------------------

export function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  const prefix: number[] = [];
  let n = bytes.length;
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    prefix.push(b);
  } while (n > 0);
  const out = new Uint8Array(prefix.length + bytes.length);
  out.set(prefix, 0);
  out.set(bytes, prefix.length);
  return out;
}

/** Reads one length-prefixed frame from a libp2p stream source. */
export async function readLengthPrefixed(source: DuplexStream['source'], maxBytes = MAX_FRAME_BYTES): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let have = 0;
  let length = -1;
  let headerBytes = 0;
  for await (const chunk of source) {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
    chunks.push(bytes);
    have += bytes.length;
    if (length < 0) {
      const all = concat(chunks, have);
      let value = 0;
      let i = 0;
      for (; i < all.length && i < 5; i++) {
        const byte = all[i]!;
        value += (byte & 0x7f) * 2 ** (7 * i);
        if ((byte & 0x80) === 0) break;
      }
      if (i === 5) throw new Error('bad length prefix');
      if (i < all.length) {
        length = value;
        headerBytes = i + 1;
        if (length > maxBytes) throw new Error(`frame of ${length} bytes exceeds ${maxBytes}`);
      }
    }
    if (length >= 0 && have >= headerBytes + length) return concat(chunks, have).slice(headerBytes, headerBytes + length);
  }
  throw new Error('stream ended before a complete frame');
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  chunks.length = 0;
  chunks.push(out);
  return out;
}

// ---- the message log ----------------------------------------------------------------------

export interface MessageLogOptions {
  /** Keep messages this long after arrival (default 24 h). */
  readonly retentionMs?: number;
  /** At most this many messages (default 100,000; oldest dropped first). */
  readonly maxMessages?: number;
  /** At most this many payload bytes (default 256 MiB; oldest dropped first). */
  readonly maxBytes?: number;
  /** Clock in ms (tests). */
  readonly now?: () => number;
  /**
   * A SQLite file that keeps the log across restarts (write-through; the in-memory index serves
   * the queries and is rebuilt from the file on open). Default: memory only.
   */
  readonly path?: string;
}

interface Entry {
  readonly seq: number;
  readonly hash: Uint8Array;
  readonly hashHex: string;
  readonly pubsubTopic: string;
  readonly message: WakuMessageProto;
  readonly arrivedMs: number;
  readonly size: number;
  pruned: boolean;
}

export interface MessageLogStats {
  messages: number;
  bytes: number;
  added: number;
  duplicates: number;
  pruned: number;
  queries: number;
}

export class MessageLog {
  private readonly all: Entry[] = [];
  private head = 0;
  private readonly byTopic = new Map<string, Entry[]>();
  private readonly byHash = new Map<string, Entry>();
  private seq = 0;
  private readonly retentionMs: number;
  private readonly maxMessages: number;
  private readonly maxBytes: number;
  private readonly now: () => number;
  readonly stats: MessageLogStats = { messages: 0, bytes: 0, added: 0, duplicates: 0, pruned: 0, queries: 0 };
  private readonly db: Database.Database | null = null;
  private readonly insertRow: Database.Statement | null = null;
  private readonly deleteUpTo: Database.Statement | null = null;

  constructor(options: MessageLogOptions = {}) {
    this.retentionMs = options.retentionMs ?? 24 * 3600 * 1000;
    this.maxMessages = options.maxMessages ?? 100_000;
    this.maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
    this.now = options.now ?? Date.now;
    if (options.path !== undefined) {
      const db = new Database(options.path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(
        'CREATE TABLE IF NOT EXISTS waku_messages (seq INTEGER PRIMARY KEY, pubsub_topic TEXT NOT NULL, message BLOB NOT NULL, arrived_ms INTEGER NOT NULL)',
      );
      const rows = db.prepare('SELECT seq, pubsub_topic, message, arrived_ms FROM waku_messages ORDER BY seq').all() as {
        seq: number;
        pubsub_topic: string;
        message: Buffer;
        arrived_ms: number;
      }[];
      for (const r of rows) this.insert(r.pubsub_topic, messageProto.WakuMessage.decode(new Uint8Array(r.message)), r.seq, r.arrived_ms);
      this.db = db;
      this.insertRow = db.prepare('INSERT INTO waku_messages (seq, pubsub_topic, message, arrived_ms) VALUES (?, ?, ?, ?)');
      this.deleteUpTo = db.prepare('DELETE FROM waku_messages WHERE seq <= ?');
      this.prune();
    }
  }

  /** Closes the SQLite file, if any. */
  close(): void {
    this.db?.close();
  }

  private insert(pubsubTopic: string, message: WakuMessageProto, seq: number, arrivedMs: number): Entry | null {
    const hash = wakuMessageHash(pubsubTopic, message);
    const hashHex = toHex(hash);
    if (this.byHash.has(hashHex)) return null;
    const size = message.payload.length + (message.meta?.length ?? 0) + message.contentTopic.length;
    const entry: Entry = { seq, hash, hashHex, pubsubTopic, message, arrivedMs, size, pruned: false };
    this.seq = Math.max(this.seq, seq);
    this.all.push(entry);
    this.byHash.set(hashHex, entry);
    let list = this.byTopic.get(message.contentTopic);
    if (list === undefined) this.byTopic.set(message.contentTopic, (list = []));
    list.push(entry);
    this.stats.messages++;
    this.stats.bytes += size;
    return entry;
  }

  /** Stores a message; returns false for a duplicate (same message hash). */
  add(pubsubTopic: string, message: WakuMessageProto): boolean {
    const entry = this.insert(pubsubTopic, message, this.seq + 1, this.now());
    if (entry === null) {
      this.stats.duplicates++;
      return false;
    }
    this.insertRow?.run(entry.seq, pubsubTopic, messageProto.WakuMessage.encode(message), entry.arrivedMs);
    this.stats.added++;
    this.prune();
    return true;
  }

  prune(): void {
    const cutoff = this.now() - this.retentionMs;
    let prunedUpTo = 0;
    while (this.head < this.all.length) {
      const e = this.all[this.head]!;
      if (e.arrivedMs >= cutoff && this.stats.messages <= this.maxMessages && this.stats.bytes <= this.maxBytes) break;
      e.pruned = true;
      this.byHash.delete(e.hashHex);
      this.stats.messages--;
      this.stats.bytes -= e.size;
      this.stats.pruned++;
      this.head++;
      prunedUpTo = e.seq;
    }
    if (prunedUpTo > 0) this.deleteUpTo?.run(prunedUpTo);
    if (this.head > 1024 && this.head * 2 > this.all.length) {
      this.all.splice(0, this.head);
      this.head = 0;
      for (const [topic, list] of this.byTopic) {
        let k = 0;
        while (k < list.length && list[k]!.pruned) k++;
        if (k === list.length) this.byTopic.delete(topic);
        else if (k > 0) list.splice(0, k);
      }
    }
  }

  /** Answers a Store v3 query. */
  query(req: StoreQueryRequest): StoreQueryResponse {
    this.stats.queries++;
    this.prune();
    const requestId = req.requestId ?? '';
    const bad = (statusDesc: string): StoreQueryResponse => ({ requestId, statusCode: 400, statusDesc, messages: [] });
    const limitIn = req.paginationLimit === undefined ? STORE_DEFAULT_PAGE : Number(req.paginationLimit);
    const limit = Math.max(1, Math.min(STORE_MAX_PAGE, Number.isFinite(limitIn) && limitIn > 0 ? limitIn : STORE_DEFAULT_PAGE));
    const kv = (e: Entry) => ({ messageHash: e.hash, pubsubTopic: e.pubsubTopic, message: req.includeData ? e.message : undefined });

    if (req.messageHashes.length > 0) {
      if (req.contentTopics.length > 0 || req.pubsubTopic !== undefined || req.timeStart !== undefined || req.timeEnd !== undefined) {
        return bad('BAD_REQUEST: a hash lookup cannot carry content filters');
      }
      const found = req.messageHashes
        .map((h) => this.byHash.get(toHex(h)))
        .filter((e): e is Entry => e !== undefined)
        .sort((a, b) => a.seq - b.seq)
        .slice(0, limit);
      return { requestId, statusCode: 200, statusDesc: 'OK', messages: found.map(kv) };
    }
    if (req.contentTopics.length > 0 && req.pubsubTopic === undefined) return bad('BAD_REQUEST: content topics need a pubsub topic');

    let candidates: Entry[];
    if (req.contentTopics.length === 1) candidates = this.byTopic.get(req.contentTopics[0]!) ?? [];
    else if (req.contentTopics.length > 1) {
      candidates = [...new Set(req.contentTopics)].flatMap((t) => this.byTopic.get(t) ?? []).sort((a, b) => a.seq - b.seq);
    } else candidates = this.all.slice(this.head);

    const matches = (e: Entry): boolean => {
      if (e.pruned) return false;
      if (req.pubsubTopic !== undefined && e.pubsubTopic !== req.pubsubTopic) return false;
      const ts = e.message.timestamp ?? BigInt(e.arrivedMs) * 1_000_000n;
      if (req.timeStart !== undefined && ts < req.timeStart) return false;
      if (req.timeEnd !== undefined && ts >= req.timeEnd) return false; // time_end is exclusive (WAKU2-STORE)
      return true;
    };

    let cursorSeq: number | null = null;
    if (req.paginationCursor !== undefined && req.paginationCursor.length > 0) {
      const c = this.byHash.get(toHex(req.paginationCursor));
      if (c === undefined) return bad('BAD_REQUEST: unknown pagination cursor');
      cursorSeq = c.seq;
    }

    const page: Entry[] = [];
    let more = false;
    if (req.paginationForward) {
      let i = cursorSeq === null ? 0 : upperBound(candidates, cursorSeq);
      for (; i < candidates.length; i++) {
        const e = candidates[i]!;
        if (!matches(e)) continue;
        if (page.length === limit) {
          more = true;
          break;
        }
        page.push(e);
      }
    } else {
      let i = (cursorSeq === null ? candidates.length : lowerBound(candidates, cursorSeq)) - 1;
      for (; i >= 0; i--) {
        const e = candidates[i]!;
        if (!matches(e)) continue;
        if (page.length === limit) {
          more = true;
          break;
        }
        page.push(e);
      }
      page.reverse();
    }
    const last = req.paginationForward ? page[page.length - 1] : page[0];
    return {
      requestId,
      statusCode: 200,
      statusDesc: 'OK',
      messages: page.map(kv),
      paginationCursor: more && last !== undefined ? last.hash : undefined,
    };
  }
}

/** First index whose seq is > seq. */
function upperBound(list: Entry[], seq: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.seq <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose seq is >= seq. */
function lowerBound(list: Entry[], seq: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---- server and client ----------------------------------------------------------------------

/** Serves Store v3 queries from `log` on `node`. */
export async function serveStore(node: RelayNode, log: MessageLog): Promise<void> {
  await node.handle(STORE_CODEC, async (stream) => {
    let response: StoreQueryResponse;
    try {
      const request = storeProto.StoreQueryRequest.decode(await readLengthPrefixed(stream.source, 64 * 1024));
      response = log.query(request);
    } catch (e) {
      response = { requestId: '', statusCode: 400, statusDesc: `BAD_REQUEST: ${(e as Error)?.message ?? e}`, messages: [] };
    }
    await stream.sink([lengthPrefixed(storeProto.StoreQueryResponse.encode(response))]);
  });
}

/** Sends one Store v3 query to `peer` (a multiaddr or `/p2p/<id>` of a connected peer). */
export async function queryStore(node: RelayNode, peer: string, request: Partial<StoreQueryRequest>, timeoutMs = 10_000): Promise<StoreQueryResponse> {
  const stream = await node.dialProtocol(peer, STORE_CODEC, timeoutMs);
  const timer = setTimeout(() => stream.abort(new Error(`store query timed out after ${timeoutMs} ms`)), timeoutMs);
  try {
    const req: StoreQueryRequest = {
      requestId: request.requestId ?? crypto.randomUUID(),
      includeData: request.includeData ?? true,
      pubsubTopic: request.pubsubTopic,
      contentTopics: request.contentTopics ?? [],
      timeStart: request.timeStart,
      timeEnd: request.timeEnd,
      messageHashes: request.messageHashes ?? [],
      paginationCursor: request.paginationCursor,
      paginationForward: request.paginationForward ?? true,
      paginationLimit: request.paginationLimit,
    };
    await stream.sink([lengthPrefixed(storeProto.StoreQueryRequest.encode(req))]);
    return storeProto.StoreQueryResponse.decode(await readLengthPrefixed(stream.source));
  } finally {
    clearTimeout(timer);
    void stream.close().catch(() => undefined);
  }
}
