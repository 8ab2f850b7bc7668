/**
 * A small synchronous event emitter with the node:events semantics the SDK relies on (listeners
 * run in registration order, `once` removes itself before it runs, a listener removed during an
 * emit still runs for that emit), without node:events, so the core runs in browsers too.
 */
type Listener = (data: never) => void;

export class EventEmitter {
  private readonly listeners = new Map<string, { fn: Listener; once: boolean }[]>();

  on(event: string, fn: (data: never) => void): this {
    this.add(event, fn, false);
    return this;
  }

  once(event: string, fn: (data: never) => void): this {
    this.add(event, fn, true);
    return this;
  }

  off(event: string, fn: (data: never) => void): this {
    const list = this.listeners.get(event);
    if (list === undefined) return this;
    // node:events removes the most recently added registration of the same function.
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i]!.fn === fn) {
        this.listeners.set(event, [...list.slice(0, i), ...list.slice(i + 1)]);
        break;
      }
    }
    return this;
  }

  listenerCount(event: string): number {
    return this.listeners.get(event)?.length ?? 0;
  }

  /** Calls every listener with `data`; a listener's exception propagates (as with node:events). */
  emit(event: string, data: unknown): boolean {
    const list = this.listeners.get(event);
    if (list === undefined || list.length === 0) return false;
    for (const entry of list) {
      if (entry.once) this.off(event, entry.fn);
      (entry.fn as (data: unknown) => void)(data);
    }
    return true;
  }

  private add(event: string, fn: Listener, once: boolean): void {
    // Copy on write: an emit in progress keeps iterating the list it started with.
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), { fn, once }]);
  }
}
