/**
 * What the client holds in memory about its conversations: the engine, each conversation's meta
 * (consent, origin, activity) and reliability state, and when each machine is next due. Changed
 * only inside client operations, and only after the store has the change (persist, then adopt).
 */
import { Engine, PackedBytes, reliability as rel, type CryptoProvider, type PrivateConversation } from '@umbra/protocol';
import { ClientError } from './errors.ts';
import { conversationRecord, loadConversations, type HeldReliability, type LoadedConversations } from './conversation-records.ts';
import type { ConversationMeta, Store, StoredConversation } from './store.ts';

export interface AccountKey {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/**
 * A macrotask that does not keep the process alive (an unref'd immediate where the platform has
 * one): a short-lived process that opened many conversations and closed exits without waiting
 * for the background indexing. A classify that needs the table yields with the engine's own.
 */
function backgroundYield(): Promise<void> {
  const immediate = (globalThis as { setImmediate?: (callback: () => void) => { unref?: () => void } }).setImmediate;
  return new Promise((resolve) => {
    if (immediate === undefined) setTimeout(resolve, 0);
    else immediate(resolve).unref?.();
  });
}

export class ConversationState {
  engine: Engine;
  private readonly metas = new Map<string, ConversationMeta>();
  /**
   * Each conversation's reliability state. Written in the transaction of every operation that
   * writes the conversation; its soft parts (pending acks, retry and request times) may run
   * ahead of the disk between writes: a crash then costs a re-acknowledgement on the peer's
   * retry, and everything in flight is retried at open anyway.
   */
  private reliability = new Map<string, HeldReliability>();
  /** Where the states still encoded since open are (HeldReliability). */
  private idleReliability = new PackedBytes([]);
  /** When each conversation's machine is next due (only conversations with pending work). */
  private readonly dueAt = new Map<string, number>();

  constructor(
    private readonly crypto: CryptoProvider,
    private readonly account: AccountKey,
    loaded: LoadedConversations,
    now: number,
    /** Called with every new due time (the wake timer). */
    private readonly onDue: (at: number) => void,
  ) {
    this.engine = this.adoptLoaded(loaded, now);
  }

  /** Rebuild everything from the store: after a write failed under an engine call that had already changed the engine. */
  async reload(store: Store, now: number): Promise<void> {
    const loaded = await loadConversations(store);
    this.engine.stopHintWork(); // the replaced engine's table is garbage: stop building it
    this.engine = this.adoptLoaded(loaded, now);
    for (const [id, state] of loaded.states) if (typeof state !== 'number') this.setReliability(id, state);
  }

  private adoptLoaded(loaded: LoadedConversations, now: number): Engine {
    // The engine opens without its hint table and builds it in slices (a few ms each, between
    // which the event loop runs): started here and at every hour change, so the table is ready
    // soon after open, and a classify that needs it before then waits inside the engine.
    const engine: Engine = new Engine(this.crypto, { account: this.account, inboxes: loaded.inboxes, conversations: loaded.conversations, storedConversations: loaded.storedConversations }, now, {
      onHintWork: () => void engine.indexHints({ yieldToEventLoop: backgroundYield }),
    });
    void engine.indexHints({ yieldToEventLoop: backgroundYield });
    this.metas.clear();
    this.dueAt.clear();
    for (const meta of loaded.metas) this.metas.set(meta.id, meta);
    // The loaded map itself (100,000 entries at a large open): loadConversations made it for this.
    this.reliability = loaded.states;
    this.idleReliability = loaded.idleReliability;
    return engine;
  }

  meta(id: string): ConversationMeta | undefined {
    return this.metas.get(id);
  }

  /** The meta of a conversation the engine holds, or ClientError('unknown-conversation'). */
  requireMeta(id: string): ConversationMeta {
    const meta = this.metas.get(id);
    if (meta === undefined || this.engine.conversation(id) === undefined) throw new ClientError('unknown-conversation', `no conversation ${id}`);
    return meta;
  }

  /** The engine's conversation (for ids requireMeta or meta has vouched for). */
  conversation(id: string): PrivateConversation {
    const c = this.engine.conversation(id);
    if (c === undefined) throw new ClientError('unknown-conversation', `no conversation ${id}`);
    return c;
  }

  allMetas(): ConversationMeta[] {
    return [...this.metas.values()];
  }

  setMeta(meta: ConversationMeta): void {
    this.metas.set(meta.id, meta);
  }

  rstate(id: string): rel.ReliabilityState {
    const held = this.reliability.get(id);
    if (held === undefined) return rel.EMPTY_RELIABILITY;
    if (typeof held !== 'number') return held;
    const state = rel.deserializeReliability(this.idleReliability.at(held));
    this.reliability.set(id, state);
    return state;
  }

  /**
   * Every conversation whose reliability state is decoded. The others are still as they were at
   * open, idle: nothing due, no acks pending, nothing in flight to retry.
   */
  decodedReliabilityEntries(): [string, rel.ReliabilityState][] {
    const out: [string, rel.ReliabilityState][] = [];
    for (const [id, held] of this.reliability) if (typeof held !== 'number') out.push([id, held]);
    return out;
  }

  /** Adopt a conversation's new reliability state and keep the wake timer in step with it. */
  setReliability(id: string, state: rel.ReliabilityState): void {
    this.reliability.set(id, state);
    const at = rel.nextDueAt(state);
    if (at === null) {
      this.dueAt.delete(id);
      return;
    }
    this.dueAt.set(id, at);
    this.onDue(at);
  }

  /** Set a state without touching the due times (a send that may still be rolled back). */
  setReliabilityTentatively(id: string, state: rel.ReliabilityState): void {
    this.reliability.set(id, state);
  }

  /** After a write: adopt the stored meta and the reliability state written with it. */
  adopt(stored: StoredConversation, state: rel.ReliabilityState): void {
    this.metas.set(stored.meta.id, stored.meta);
    this.setReliability(stored.meta.id, state);
  }

  record(meta: ConversationMeta, conversation: PrivateConversation, state: rel.ReliabilityState): StoredConversation {
    return conversationRecord(meta, conversation, state);
  }

  /** The conversation's record with its current meta, engine state and reliability state. */
  currentRecord(id: string, conversation = this.conversation(id)): StoredConversation {
    return conversationRecord(this.metas.get(id)!, conversation, this.rstate(id));
  }

  /** Conversations whose machine is due by `t`; ids the engine no longer holds are dropped. */
  dueBy(t: number): string[] {
    const due: string[] = [];
    for (const [id, at] of this.dueAt) {
      if (at > t) continue;
      if (this.metas.has(id) && this.engine.conversation(id) !== undefined) due.push(id);
      else this.dueAt.delete(id);
    }
    return due;
  }

  /** Arm the wake timer for the earliest due time of any conversation (after it fired). */
  rearm(): void {
    let at = Infinity;
    for (const t of this.dueAt.values()) if (t < at) at = t;
    if (at !== Infinity) this.onDue(at);
  }
}
