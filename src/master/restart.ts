// When a worker of the active generation dies: how soon to replace it, and
// whether its socket may wait for the replacement. Pure, so the policy can
// be read and tested on its own.
import type { RestartConfig } from '../config/index.js';
import { monotonic } from './clock.js';

/** Consecutive early deaths after which a slot is reported as crash-looping. */
export const CRASH_LOOP_FAILURES = 3;

export interface DeadWorker {
  /** Monotonic ms. */
  readonly startedAt: number;
  /** When it was counted as serving (monotonic ms); undefined if it never got ready. */
  readonly servedAt: number | undefined;
}

export interface RestartDecision {
  /** Consecutive early deaths of this slot, this one included (0: it had served long enough). */
  readonly failures: number;
  readonly delayMs: number;
  /**
   * Keep the dead worker's socket for the replacement (it accepts the queue).
   * Only without migration and only for an immediate replacement: a socket
   * must never sit in LISTEN without an acceptor across a backoff.
   */
  readonly keepSocket: boolean;
  readonly crashLoop: boolean;
}

export function backoffDelay(failures: number, restart: RestartConfig): number {
  return failures === 0 ? 0 : Math.min(restart.backoffMs * 2 ** (failures - 1), restart.backoffMaxMs);
}

/**
 * `othersServing`: whether another slot of the generation still has a live
 * worker. Backoff is per slot while one does; when this slot is the last
 * light, it restarts after `restart.backoff` without doubling: never in a
 * tight loop, and never with every slot dark for the backoff's maximum.
 */
export function decideRestart(
  dead: DeadWorker,
  previousFailures: number,
  restart: RestartConfig,
  migrationOn: boolean,
  othersServing = true,
  now = monotonic(),
): RestartDecision {
  const servedLongEnough = dead.servedAt !== undefined && now - dead.startedAt >= restart.minUptimeMs;
  const failures = servedLongEnough ? 0 : previousFailures + 1;
  // One early death of a worker that did serve is an accident, not yet a
  // loop: replace it at once. A worker that never got ready, or a second
  // early death in a row, backs off.
  const accident = failures === 1 && dead.servedAt !== undefined;
  const backoff = backoffDelay(failures, restart);
  const delayMs = accident ? 0 : othersServing ? backoff : Math.min(backoff, restart.backoffMs);
  return { failures, delayMs, keepSocket: delayMs === 0 && !migrationOn, crashLoop: failures >= CRASH_LOOP_FAILURES };
}
