// What `handover status` shows: plain data built from the live objects.
import { readProcessUsage } from '../metrics/index.js';
import type { GenerationStatus, WorkerStatus } from '../protocol/control.js';
import { monotonic } from './clock.js';
import type { Generation } from './generation.js';

export function describeGeneration(g: Generation, now = monotonic()): GenerationStatus {
  return {
    generation: g.id,
    state: g.state,
    workers: g.slots.map((s): WorkerStatus => {
      const usage = s.worker?.alive && s.worker.pid !== undefined ? readProcessUsage(s.worker.pid) : undefined;
      return {
        index: s.index,
        pid: s.worker?.pid ?? null,
        state: s.worker?.state ?? (s.backoff ? 'backoff' : 'down'),
        uptimeMs: s.worker ? now - s.worker.startedAt : 0,
        restarts: s.restarts,
        ...(s.backoff ? { nextAttemptInMs: Math.max(0, s.backoff.until - now) } : {}),
        ...(usage ? { cpuSeconds: usage.cpuSeconds, rssBytes: usage.rssBytes } : {}),
      };
    }),
  };
}
