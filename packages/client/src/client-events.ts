/**
 * The Client's events: listeners (on/once/off) and async iterators over every event. Emitting
 * never throws into the operation that emits: a throwing listener is counted, an 'error' without
 * a listener goes only to iterators.
 */
import { EVENT_QUEUE_LIMIT, type ClientEvent, type ClientEventMap } from './client-types.ts';
import { ClientError, toClientError } from './errors.ts';
import { EventEmitter } from './event-emitter.ts';

interface Sink {
  push(e: ClientEvent): void;
  end(): void;
}

export class ClientEvents {
  private readonly emitter = new EventEmitter();
  private readonly sinks = new Set<Sink>();
  private ended = false;

  constructor(private readonly onListenerError: () => void) {}

  on<K extends keyof ClientEventMap>(event: K, listener: (data: ClientEventMap[K]) => void): void {
    this.emitter.on(event, listener);
  }

  once<K extends keyof ClientEventMap>(event: K, listener: (data: ClientEventMap[K]) => void): void {
    this.emitter.once(event, listener);
  }

  off<K extends keyof ClientEventMap>(event: K, listener: (data: ClientEventMap[K]) => void): void {
    this.emitter.off(event, listener);
  }

  emit(event: ClientEvent): void {
    for (const sink of this.sinks) sink.push(event);
    if (event.type === 'error' && this.emitter.listenerCount('error') === 0) return; // never throw from a background error
    try {
      this.emitter.emit(event.type, event.data);
    } catch {
      this.onListenerError();
    }
  }

  error(error: ClientError): void {
    this.emit({ type: 'error', data: error });
  }

  /** A failure of work nobody awaits (timers, subscriptions): reported unless the client is closing. */
  background(e: unknown): void {
    const err = toClientError(e);
    if (err.code === 'client-closed' || this.ended) return;
    this.error(err);
  }

  /** Ends every iterator (the client closed). */
  end(): void {
    this.ended = true;
    for (const sink of this.sinks) sink.end();
    this.sinks.clear();
  }

  /** Every event as an async iterator (ends when the client closes; keeps the last 10,000 unread events). */
  iterator(): AsyncIterableIterator<ClientEvent> {
    const queue: ClientEvent[] = [];
    let waiting: ((r: IteratorResult<ClientEvent>) => void) | null = null;
    let done = false;
    const wake = (r: IteratorResult<ClientEvent>) => {
      const w = waiting;
      waiting = null;
      w?.(r);
    };
    const sink: Sink = {
      push: (e) => {
        if (waiting !== null) return wake({ value: e, done: false });
        queue.push(e);
        if (queue.length > EVENT_QUEUE_LIMIT) queue.shift();
      },
      end: () => {
        done = true;
        wake({ value: undefined, done: true });
      },
    };
    if (this.ended) sink.end();
    else this.sinks.add(sink);
    const iterator: AsyncIterableIterator<ClientEvent> = {
      next: () => {
        if (queue.length > 0) return Promise.resolve({ value: queue.shift()!, done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (waiting = resolve));
      },
      return: () => {
        this.sinks.delete(sink);
        sink.end();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }
}
