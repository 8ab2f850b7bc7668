/**
 * Lamport clocks tied to wall time, as status-go (protocol/v1/clock.go and
 * protocol/message_validator.go). Clocks are uint64 milliseconds, so bigint.
 */

/** Receivers reject clocks more than this far ahead of their own time (maxWhisperFutureDriftMs). */
export const MAX_FUTURE_DRIFT_MS = 120_000n;
/** The sender's bump when its last clock is behind wall time: absorbs skew between members. */
export const CLOCK_BUMP_MS = 60_000n;

/** CalcMessageClock: next = last < now ? now + 60000 : last + 1. */
export function nextClock(last: bigint, nowMs: number): bigint {
  const now = BigInt(Math.floor(nowMs));
  return last < now ? now + CLOCK_BUMP_MS : last + 1n;
}

export type ClockCheck = 'ok' | 'clock-zero' | 'clock-too-far-ahead';

/** validateClockValue: reject 0 and anything more than 120 s ahead of now. */
export function checkClock(clock: bigint, nowMs: number): ClockCheck {
  if (clock === 0n) return 'clock-zero';
  if (clock > BigInt(Math.floor(nowMs)) + MAX_FUTURE_DRIFT_MS) return 'clock-too-far-ahead';
  return 'ok';
}
