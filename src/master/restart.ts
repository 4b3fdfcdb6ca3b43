// When a worker of the active generation dies: how soon to replace it, and
// whether its socket may wait for the replacement. Pure, so the policy can
// be read and tested on its own.
import type { RestartConfig } from '../config/index.js';

/** Consecutive early deaths after which a slot is reported as crash-looping. */
export const CRASH_LOOP_FAILURES = 3;

export interface DeadWorker {
  readonly startedAt: number;
  /** When it was counted as serving; undefined if it never got ready. */
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

export function decideRestart(
  dead: DeadWorker,
  previousFailures: number,
  restart: RestartConfig,
  migrationOn: boolean,
  now = Date.now(),
): RestartDecision {
  const servedLongEnough = dead.servedAt !== undefined && now - dead.startedAt >= restart.minUptimeMs;
  const failures = servedLongEnough ? 0 : previousFailures + 1;
  // One early death of a worker that did serve is an accident, not yet a
  // loop: replace it at once. A worker that never got ready, or a second
  // early death in a row, backs off.
  const accident = failures === 1 && dead.servedAt !== undefined;
  const delayMs = accident ? 0 : backoffDelay(failures, restart);
  return { failures, delayMs, keepSocket: delayMs === 0 && !migrationOn, crashLoop: failures >= CRASH_LOOP_FAILURES };
}
