// What `handover status` shows: plain data built from the live objects.
import { readProcessUsage } from '../metrics/index.js';
import type { GenerationStatus, WorkerStatus } from '../protocol/control.js';
import { monotonic } from './clock.js';
import type { Generation, Slot } from './generation.js';

export function describeGeneration(g: Generation, now = monotonic()): GenerationStatus {
  return {
    generation: g.id,
    state: g.state,
    workers: g.slots.map((s): WorkerStatus => {
      const live = s.worker?.alive ? s.worker : undefined;
      const usage = live?.pid !== undefined ? readProcessUsage(live.pid) : undefined;
      return {
        index: s.index,
        pid: live?.pid ?? null,
        state: slotState(g, s),
        uptimeMs: live ? now - live.startedAt : 0,
        restarts: s.restarts,
        ...(s.backoff ? { nextAttemptInMs: Math.max(0, s.backoff.until - now) } : {}),
        ...(usage ? { cpuSeconds: usage.cpuSeconds, rssBytes: usage.rssBytes } : {}),
      };
    }),
  };
}

/**
 * An old generation's worker that has finished draining is gone on purpose:
 * "down" would read like a crash. A slot of the active generation without a
 * worker is down (about to be replaced, or in backoff).
 */
function slotState(g: Generation, s: Slot): string {
  const w = s.worker;
  if (w?.alive) return w.state;
  if (s.backoff) return 'backoff';
  if (w?.exit) return `exited (${w.exit.reason})`; // "exited (drained)" when it drained
  // The supervisor lets go of a worker once it has exited; in an old generation, one that drained.
  if (g.state === 'draining' || g.state === 'gone') return 'exited (drained)';
  return 'down';
}
