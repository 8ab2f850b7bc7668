/**
 * Cooperative time slicing for bulk work on one event loop (the RSA's delivery items).
 *
 * A batch's items would otherwise run back to back in one macrotask (each resolve + seal is
 * ~0.5-1 ms, a restarted RSA's backlog hundreds of them), and WebSocket handshakes, acks and new
 * connections would wait behind all of it. `turn()` lets work through while the current slice is
 * under its budget; after that, callers queue. A slice starts after an I/O poll (setImmediate)
 * and lets queued callers through one after another, each once the one before has done its
 * synchronous part (including the microtasks it chains), until the budget is spent; then pending
 * I/O is polled before the next slice. Order is first come, first served.
 * Items of one slice run in the same event-loop turn, so their database transactions still
 * share one group commit.
 */
export class Slicer {
  private readonly waiting: (() => void)[] = [];
  private sliceStart = -Infinity;
  private scheduled = false;

  private readonly budget: () => number;

  /**
   * `budgetMs` is a slice's length, or a function read whenever a slice's room is checked (the
   * RSA's is shorter while WebSocket handshakes are under way). `now` is the clock slices are
   * measured on (milliseconds); tests pass one they advance.
   */
  constructor(
    budgetMs: number | (() => number) = 2,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.budget = typeof budgetMs === 'number' ? () => budgetMs : budgetMs;
  }

  /** Resolves when the caller may run its next piece of work; undefined when it may run at once. */
  turn(): Promise<void> | undefined {
    if (this.waiting.length === 0 && !this.scheduled && this.now() - this.sliceStart < this.budget()) return undefined;
    // Budget spent (or others already waiting): the caller waits for a slice with room.
    return new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      this.schedule();
    });
  }

  /** Callers waiting for a turn (for tests and diagnostics). */
  get queued(): number {
    return this.waiting.length;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  /** A new slice, after an I/O poll: its first caller goes at once. */
  private readonly run = (): void => {
    this.sliceStart = this.now();
    this.next();
  };

  /** Lets the next caller through, then (after its synchronous work) another while the slice has room. */
  private readonly next = (): void => {
    this.waiting.shift()?.();
    if (this.waiting.length === 0) {
      this.scheduled = false;
      return;
    }
    // The released caller continues in microtasks (and chains more of them); a tick queued from
    // a microtask runs only once the microtask queue is drained, i.e. after its synchronous work.
    queueMicrotask(() => process.nextTick(this.afterWork));
  };

  private readonly afterWork = (): void => {
    if (this.now() - this.sliceStart < this.budget()) this.next();
    else setImmediate(this.run);
  };
}
