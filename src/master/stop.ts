// Stopping the master. Graceful (SIGTERM, SIGINT, `handover stop`): keep
// serving for stop_delay so a load balancer can take the host out, let a
// reload in progress give way, tell every worker to stop accepting, shut
// the listeners down (nothing to migrate to: what is queued then is lost
// and logged), let each generation drain within its own drain_timeout,
// kill what is left. Fast (SIGQUIT, a second TERM): shut down and
// terminate at once.
import type { Logger } from '../log/logger.js';
import { queuedOn } from '../net/index.js';
import { sleep, within } from './clock.js';
import { retireAll, type Generation } from './generation.js';
import { DRAIN_ACK_TIMEOUT_MS, KILL_GRACE_MS } from './handoff/cutover.js';
import { exitedOrKilled } from './worker-handle.js';

export type StopMode = 'graceful' | 'fast';

/** How long a fast stop waits for workers after SIGTERM before SIGKILL. */
export const FAST_STOP_GRACE_MS = 1_000;
/** How long a stop waits for a reload in progress to give way (it aborts before its commit; a cutover is short). */
export const RELOAD_GIVE_WAY_MS = 5_000;

export interface StopHost {
  readonly log: Logger;
  readonly stopDelayMs: number;
  /** Every generation with processes: active, being built, draining. */
  generations(): Generation[];
  /** Resolves once no reload runs. */
  reloadSettled(): Promise<void>;
  /** Heartbeat checks end (a stop that drains expects silence). */
  stopHeartbeats(): void;
  /** The mode in force now: a fast stop may take over a graceful one. */
  readonly mode: StopMode | undefined;
  /** Connections queued when the listeners closed for good: nothing to migrate to. */
  lostAtStop(count: number): void;
}

/** Runs a stop to its end; resolves false when a fast stop took over (it finishes the job). */
export async function runStop(host: StopHost, mode: StopMode): Promise<boolean> {
  const { log } = host;
  log.info({ mode, stopDelayMs: host.stopDelayMs }, `stopping (${mode})`);
  for (const g of host.generations()) g.cancelBackoffs();
  if (mode === 'graceful') {
    // Serving goes on meanwhile: dead workers' sockets are still retired (supervisor).
    if (host.stopDelayMs > 0) await sleep(host.stopDelayMs);
    await within(host.reloadSettled(), RELOAD_GIVE_WAY_MS, () => log.warn('a reload did not give way in time; stopping anyway'));
    if (host.mode !== mode) return false;
  }
  host.stopHeartbeats();
  const generations = host.generations();
  const workers = generations.flatMap((g) => g.liveWorkers());
  if (mode === 'graceful') {
    await Promise.all(generations.flatMap((g) => g.liveWorkers().map((w) => w.drain(g.config.reload.drainTimeoutMs, DRAIN_ACK_TIMEOUT_MS))));
  }
  host.lostAtStop(retireEverything(generations, log));
  if (mode === 'fast') for (const w of workers) w.kill('SIGTERM');
  await Promise.all(
    generations.map((g) =>
      exitedOrKilled(
        g.liveWorkers(),
        mode === 'fast' ? FAST_STOP_GRACE_MS : g.config.reload.drainTimeoutMs + KILL_GRACE_MS,
        (w) => log.warn({ workerPid: w.pid }, `worker ${w.index} (${w.who}) did not exit in time; killing it`),
        (w) => log.error({ workerPid: w.pid }, `worker ${w.index} (${w.who}) did not exit after SIGKILL; giving up on it`),
      ),
    ),
  );
  return host.mode === mode;
}

/** Releases every listener; returns the connections still queued on them (lost). */
function retireEverything(generations: readonly Generation[], log: Logger): number {
  let lost = 0;
  try {
    lost = queuedOn(generations.flatMap((g) => g.listeners()));
  } catch {
    // counting is best effort; releasing is not
  }
  retireAll(generations.flatMap((g) => g.listeners()), log, 0);
  for (const g of generations) for (const s of g.slots) s.listeners = [];
  if (lost > 0) log.warn({ lost }, `${lost} queued connections had no listener left to migrate to`);
  return lost;
}
