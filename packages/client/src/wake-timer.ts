/**
 * The client's timers, platform-neutral (Node, browsers, workers): one wake timer armed for the
 * earliest due time of any conversation's reliability machine, and repeating timers (tick,
 * sync). The repeating ones are unref'd on Node so an idle client never keeps a process alive
 * (other runtimes have no such notion); the wake timer is not: pending retries and acks keep it
 * alive until close().
 */
type Timer = ReturnType<typeof setTimeout>;

/** setTimeout's largest delay (a longer one fires at once). */
const MAX_DELAY_MS = 2 ** 31 - 1;

function unref(timer: Timer): void {
  const t = timer as { unref?: () => void };
  if (typeof t.unref === 'function') t.unref();
}

export class WakeTimer {
  private timer: Timer | null = null;
  private at = Infinity;
  private stopped = false;

  /** @param fire runs when the timer goes off, with the due time it was armed for. */
  constructor(
    private readonly clock: () => number,
    private readonly fire: (armedFor: number) => void,
  ) {}

  /** Fire at `at` (unix ms) unless already armed for an earlier time. */
  arm(at: number): void {
    if (this.stopped || (this.timer !== null && at >= this.at)) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.at = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.at = Infinity;
      this.fire(at);
    }, Math.max(0, Math.min(at - this.clock(), MAX_DELAY_MS)));
  }

  /** For good: later arm() calls do nothing. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** Runs fn every intervalMs until the returned function is called. */
export function every(intervalMs: number, fn: () => void): () => void {
  const timer = setInterval(fn, intervalMs);
  unref(timer as Timer);
  return () => clearInterval(timer);
}
