// Time for deadlines and durations: the monotonic clock only. Date.now()
// follows the wall clock, which NTP, an operator or a VM resume can step by
// seconds or hours; a heartbeat measured with it once SIGKILLed every
// serving worker after a step of more than 5 s. Wall time is for
// timestamps people read (`startedAt`), never for arithmetic.

/** Milliseconds on the monotonic clock (CLOCK_MONOTONIC); only differences mean anything. */
export function monotonic(): number {
  return performance.now();
}

/** A point on the monotonic clock `ms` from now. */
export interface Deadline {
  readonly at: number;
  /** Milliseconds left, never negative. */
  remaining(): number;
  expired(): boolean;
}

export function deadline(ms: number): Deadline {
  const at = monotonic() + ms;
  return {
    at,
    remaining: () => Math.max(0, at - monotonic()),
    expired: () => monotonic() >= at,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Waits for `promise` at most `ms`; resolves with its value, or with
 * `onTimeout()`'s after the deadline (the promise is left to settle alone).
 */
export function within<T, U>(promise: Promise<T>, ms: number, onTimeout: () => U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<U>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `done` every `everyMs` until it returns true or `ms` has passed; resolves with the last answer. */
export async function pollUntil(done: () => boolean, ms: number, everyMs: number): Promise<boolean> {
  const end = deadline(ms);
  for (;;) {
    if (done()) return true;
    if (end.expired()) return false;
    await sleep(Math.min(everyMs, end.remaining()));
  }
}
