// Keeping the active generation's slots filled: a dead worker is replaced
// (at once, or after a backoff), and a listener never sits in LISTEN
// without an acceptor (DESIGN.md "Processes"): with migration it is shut
// down at once, its queue moving to the siblings, and the replacement gets
// a fresh socket; without migration it is kept only for a replacement that
// starts at once, never across a backoff. Also the heartbeat check.
import { monotonic } from './clock.js';
import type { Generation, Slot } from './generation.js';
import type { HandoffStrategy } from './handoff/strategy.js';
import type { KernelState } from './kernel-state.js';
import { backoffDelay, decideRestart } from './restart.js';
import { spawnWorker, verifyListening, type SpawnHost } from './spawn.js';
import { HEARTBEAT_MS, HEARTBEAT_TIMEOUT_MS, type WorkerHandle } from './worker-handle.js';

export interface RespawnHost extends SpawnHost {
  readonly active: Generation | undefined;
  /** A generation being built may share a dead worker's socket (`inherit`): it has an acceptor there. */
  readonly building: Generation | undefined;
  readonly stopping: boolean;
  readonly kernel: KernelState;
  readonly strategy: HandoffStrategy;
  /** Registers a new worker's exit with the master's event queue. */
  watchExit(generation: Generation, slot: Slot, worker: WorkerHandle): void;
  /** Queues a respawn event for `slot` after `delayMs`. */
  respawnLater(generation: Generation, slot: Slot, delayMs: number): NodeJS.Timeout;
}

/** A loop tick this much later than planned means the master itself was stalled. */
const STALL_MS = HEARTBEAT_MS * 3;

export class Respawner {
  private lastCheck = monotonic();

  constructor(private readonly host: RespawnHost) {}

  /** Heartbeat checks begin (or resume) now. */
  resetHeartbeats(): void {
    this.lastCheck = monotonic();
  }

  /** A worker of the active generation died. */
  replace(generation: Generation, slot: Slot, dead: WorkerHandle): void {
    const { host } = this;
    const othersServing = generation.slots.some((s) => s !== slot && s.worker?.alive === true);
    const decision = decideRestart(dead, slot.failures, generation.config.restart, host.strategy.migrates(host.kernel), othersServing);
    slot.restarts++;
    slot.failures = decision.failures;
    if (!decision.keepSocket) this.releaseSockets(slot);
    if (decision.delayMs === 0) {
      this.respawn(generation, slot);
      return;
    }
    host.log[decision.crashLoop ? 'error' : 'warn'](
      { generation: generation.id, worker: slot.index, failures: slot.failures, backoffMs: decision.delayMs },
      decision.crashLoop
        ? `worker ${slot.index} is crash-looping (${slot.failures} early deaths in a row); next attempt in ${decision.delayMs} ms`
        : `worker ${slot.index} died early; restarting in ${decision.delayMs} ms`,
    );
    if (!othersServing) host.log.error({ generation: generation.id }, `no worker of generation ${generation.id} is running: nothing serves until worker ${slot.index} restarts`);
    this.schedule(generation, slot, decision.delayMs);
  }

  /**
   * The slot's sockets go: shut down (queue migrates when it can) unless a
   * generation being built shares them. Their reuseport groups tell the
   * strategy's steering (a program's map, a classic program) as they
   * leave, and again when the replacement's sockets are verified listening.
   */
  releaseSockets(slot: Slot): void {
    slot.retireListeners(this.host.log, this.host.building?.inherited);
  }

  /** A scheduled respawn is due. */
  onRespawn(generation: Generation, slot: Slot): void {
    slot.backoff = undefined;
    if (this.host.stopping || generation !== this.host.active || slot.worker?.alive) return;
    this.respawn(generation, slot);
  }

  private schedule(generation: Generation, slot: Slot, delayMs: number): void {
    slot.backoff = { until: monotonic() + delayMs, timer: this.host.respawnLater(generation, slot, delayMs) };
  }

  private respawn(generation: Generation, slot: Slot): void {
    const { host } = this;
    let worker: WorkerHandle;
    try {
      worker = spawnWorker(generation, slot, host);
    } catch (err) {
      slot.failures++;
      const delayMs = backoffDelay(slot.failures, generation.config.restart);
      host.log.error({ err, worker: slot.index, backoffMs: delayMs }, `could not start a replacement for worker ${slot.index}: ${err instanceof Error ? err.message : String(err)}; next attempt in ${delayMs} ms`);
      this.schedule(generation, slot, delayMs);
      return;
    }
    host.watchExit(generation, slot, worker);
    worker.ready(generation.config.reload.readyTimeoutMs).then(
      () => {
        if (!worker.alive || worker.state !== 'ready') return; // told to drain meanwhile (a reload committed)
        try {
          verifyListening(slot);
        } catch (err) {
          host.log.error({ err, worker: slot.index }, `replacement worker ${slot.index} (${worker.who}): ${err instanceof Error ? err.message : String(err)}; killing it`);
          worker.kill('SIGKILL');
          return;
        }
        if (worker.transition(['ready'], 'serving')) {
          host.log.info({ generation: generation.id, worker: slot.index, workerPid: worker.pid }, `worker ${slot.index} replaced`);
        }
      },
      (err: unknown) => {
        // A replacement told to drain before it was ready (the generation is
        // being retired) never listens and exits by itself.
        if (worker.state === 'draining' || !worker.alive) return;
        host.log.error({ err, worker: slot.index }, `replacement worker ${slot.index} did not start: ${err instanceof Error ? err.message : String(err)}`);
        worker.kill('SIGKILL');
      },
    );
  }

  /**
   * Kills serving workers that have been silent too long (a blocked event
   * loop still gets its share of new connections). A stall of the master's
   * own loop is never counted against them: their heartbeats may be
   * sitting unread in the IPC pipes.
   */
  checkHeartbeats(): void {
    const now = monotonic();
    const late = now - this.lastCheck;
    this.lastCheck = now;
    const workers = this.host.active?.workers() ?? [];
    if (late > STALL_MS) {
      this.host.log.warn({ stalledMs: Math.round(late) }, `the master's event loop was stalled for ${Math.round(late)} ms; heartbeat deadlines restart`);
      for (const w of workers) w.lastHeard = Math.max(w.lastHeard, now);
      return;
    }
    for (const worker of workers) {
      const silent = now - worker.lastHeard;
      if (worker.state !== 'serving' || !worker.alive || silent <= HEARTBEAT_TIMEOUT_MS) continue;
      this.host.log.error(
        { generation: worker.generation, worker: worker.index, workerPid: worker.pid, silentMs: Math.round(silent) },
        `worker ${worker.index} (${worker.who}) missed its heartbeat for ${Math.round(silent)} ms; killing it`,
      );
      worker.kill('SIGKILL', 'heartbeat');
    }
  }
}
