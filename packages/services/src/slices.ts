/**
 * Cooperative time slicing for bulk work on one event loop (the RSA's delivery items).
 *
 * A batch's items would otherwise run back to back in one macrotask (each resolve + seal is
 * ~0.5-1 ms, a restarted RSA's backlog hundreds of them), and WebSocket handshakes, acks and new
 * connections would wait behind all of it. `turn()` lets work through while the current slice is
 * under its budget; after that, callers queue and are let through one per event-loop iteration,
 * so pending I/O is polled between any two of them. Order is first come, first served.
 */
export class Slicer {
  private readonly waiting: (() => void)[] = [];
  private sliceStart = -Infinity;
  private scheduled = false;

  constructor(private readonly budgetMs = 2) {}

  /** Resolves when the caller may run its next piece of work; undefined when it may run at once. */
  turn(): Promise<void> | undefined {
    if (this.waiting.length === 0 && !this.scheduled && performance.now() - this.sliceStart < this.budgetMs) return undefined;
    // Budget spent (or others already waiting): the next slice starts after an I/O poll.
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

  private readonly run = (): void => {
    this.scheduled = false;
    this.sliceStart = performance.now();
    this.waiting.shift()?.();
    if (this.waiting.length > 0) this.schedule();
  };
}
