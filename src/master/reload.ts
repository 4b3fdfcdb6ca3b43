// The reload flow (DESIGN.md "Reload, step by step"), one at a time. The
// supervisor stays the only owner of generations; this module orchestrates
// them through ReloadHost and owns only the reload queue and the reports.
import { loadConfigAsync, type Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { counterDelta, snapshotCounters } from '../metrics/kernel.js';
import { queuedOn, type Listener } from '../net/index.js';
import { HALF_OPEN_GRACE_MS, specsOf, type Generation } from './generation.js';
import { loadTlsMaterial, type TlsMaterial } from '../tls/material.js';
import { resolveIdentity, type Identity } from './identity.js';
import { chooseStrategy } from '../net/index.js';
import {
  countCutover,
  planListeners,
  type ListenerPlan,
  type ReloadReport,
  type Trigger,
} from './reload-plan.js';
import { exitedOrKilled, type WorkerHandle } from './worker-handle.js';

/** How long old workers get to acknowledge "stop accepting" before the master shuts their listeners anyway. */
export const DRAIN_ACK_TIMEOUT_MS = 1_000;
/** Grace after a drain deadline before a worker that did not exit is killed. */
export const KILL_GRACE_MS = 2_000;
/** How long the old workers of a removed address get to accept its queue before it closes. */
export const REMOVED_QUEUE_WAIT_MS = 1_000;
const QUEUE_POLL_MS = 10;
/** Reload reports kept for `handover status`. */
export const REPORTS_KEPT = 20;

export interface ReloadHost {
  readonly log: Logger;
  readonly config: Config;
  readonly active: Generation | undefined;
  readonly stopping: boolean;
  /** A generation with its sockets bound (inherited ones shared), not listening. */
  createGeneration(
    config: Config,
    identity: Identity,
    tls: ReadonlyMap<string, TlsMaterial>,
    inherit: Map<string, readonly Listener[]>,
  ): Generation;
  /** Spawns every slot and waits until all are ready and in LISTEN. */
  boot(generation: Generation): Promise<void>;
  verifyListening(generation: Generation): void;
  /** Kills a generation that never became active and releases its own sockets. */
  abort(generation: Generation): Promise<void>;
  setStarting(generation: Generation | undefined): void;
  /** Makes `next` the active generation under `config`, and `old` a draining one. */
  commit(next: Generation, old: Generation, config: Config, identity: Identity): void;
  /** `old` has no live worker left. */
  retired(old: Generation): void;
  ensureTcpMigrateReq(config: Config): 0 | 1 | null;
}

type Waiter = { readonly onReport: (report: ReloadReport) => void; readonly waitDrain: boolean };

interface PendingReload {
  readonly trigger: Trigger;
  readonly requestedAt: number;
  readonly waiters: Waiter[];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class Reloader {
  private running = false;
  private pending: PendingReload | undefined;
  private seq = 0;
  private readonly kept: ReloadReport[] = [];
  private readonly drains = new Map<number, Promise<void>>();

  constructor(private readonly host: ReloadHost) {}

  get inProgress(): boolean {
    return this.running;
  }

  get reports(): readonly ReloadReport[] {
    return this.kept;
  }

  /**
   * Queues a reload. Requests that arrive while one runs coalesce into a
   * single follow-up reload; each caller gets the report of the reload that
   * served its request (tableflip answers "in progress"; we answer later).
   */
  request(trigger: Trigger, onReport?: (report: ReloadReport) => void, waitDrain = false): void {
    if (this.host.stopping || !this.host.active) {
      onReport?.(this.refused(trigger, this.host.stopping ? 'the master is stopping' : 'the master is not serving yet'));
      return;
    }
    this.pending ??= { trigger, requestedAt: Date.now(), waiters: [] };
    if (onReport) this.pending.waiters.push({ onReport, waitDrain });
    if (!this.running) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      for (let batch = this.pending; batch; batch = this.pending) {
        this.pending = undefined;
        const report = this.host.stopping
          ? this.refused(batch.trigger, 'the master is stopping')
          : await this.reload(batch.trigger, batch.requestedAt).catch((err: unknown) =>
              this.refused(batch.trigger, `reload failed: ${messageOf(err)}`, 'rolled_back'),
            );
        this.record(report);
        for (const waiter of batch.waiters) {
          const drained = waiter.waitDrain ? this.drains.get(report.id) : undefined;
          if (drained) void drained.then(() => waiter.onReport(report));
          else waiter.onReport(report);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private refused(trigger: Trigger, reason: string, result: 'invalid' | 'rolled_back' = 'invalid'): ReloadReport {
    return {
      id: ++this.seq, trigger, result, reason, generation: null, previous: this.host.active?.id ?? null, strategy: null,
      startedAt: new Date().toISOString(), durationMs: 0, queuedAtCutover: 0, migrated: 0, dropped: 0, listeners: [], warnings: [],
    };
  }

  private record(report: ReloadReport): void {
    this.kept.push(report);
    if (this.kept.length > REPORTS_KEPT) this.kept.shift();
    const level = report.result === 'ok' ? 'info' : 'error';
    const what =
      report.result === 'ok'
        ? `generation ${report.previous} -> ${report.generation} (${report.strategy}) in ${report.durationMs.toFixed(0)} ms: ${report.queuedAtCutover} queued at cutover, ${report.migrated} migrated, ${report.dropped} dropped`
        : `${report.result.replace('_', ' ')}: ${report.reason}`;
    this.host.log[level]({ reload: report }, `reload ${report.id} (${report.trigger}) ${what}`);
  }

  /** Steps 1-5; step 6 runs in drain(), step 7 is the report. */
  private async reload(trigger: Trigger, requestedAt: number): Promise<ReloadReport> {
    const { host } = this;
    const old = host.active;
    if (!old) throw new Error('no active generation');
    const id = ++this.seq;
    const base = { id, trigger, previous: old.id, startedAt: new Date(requestedAt).toISOString() };
    const refuse = (result: 'invalid' | 'rolled_back', reason: string, extra: Partial<ReloadReport> = {}): ReloadReport => ({
      ...base, result, reason, generation: null, strategy: null, durationMs: Date.now() - requestedAt,
      queuedAtCutover: 0, migrated: 0, dropped: 0, listeners: [], warnings: [], ...extra,
    });

    // 1. Read and validate; never bind or join the port here.
    let config: Config;
    let identity: Identity;
    let tls: ReadonlyMap<string, TlsMaterial>;
    try {
      config = await loadConfigAsync(host.config.file); // large files parse off the event loop
      identity = resolveIdentity(config.user, config.group);
      tls = loadTlsMaterial(config);
    } catch (err) {
      return refuse('invalid', messageOf(err));
    }
    const tcpMigrateReq = host.ensureTcpMigrateReq(config);
    const choice = chooseStrategy(config.reload.strategy, tcpMigrateReq);
    const plans = planListeners(old.specs, specsOf(config), choice.strategy);
    const warnings = this.warnings(host.config, config, choice.warning, plans);
    for (const w of warnings) host.log.warn({ reload: id }, w);
    const planned = { strategy: choice.strategy, listeners: plans, warnings };

    // 2-3. New sockets (bound, not listening) and new workers, all ready in time.
    let next: Generation;
    try {
      next = host.createGeneration(config, identity, tls, inheritance(old, plans));
    } catch (err) {
      return refuse('rolled_back', `could not open the new listeners: ${messageOf(err)}`, planned);
    }
    host.setStarting(next);
    try {
      await host.boot(next);
      const workers = next.workers();
      // Settle, but stop watching at the first death: no point serving on.
      if (config.reload.settleMs > 0) {
        await Promise.race([sleep(config.reload.settleMs), ...workers.map((w) => w.exited)]);
      }
      const dead = workers.find((w) => !w.alive || w.state !== 'ready');
      if (dead) throw new Error(`worker ${dead.index} (pid ${dead.pid}) ${dead.exit?.reason ?? dead.state} during reload.settle`);
      if (host.stopping) throw new Error('stop requested during the reload');
      // 4. Every new listener in LISTEN; snapshot before the cutover.
      host.verifyListening(next);
    } catch (err) {
      await host.abort(next);
      return refuse('rolled_back', messageOf(err), { generation: next.id, ...planned });
    } finally {
      host.setStarting(undefined);
    }
    const before = snapshotCounters();

    // 5. Commit: the new generation serves; old workers stop accepting, then
    // the master shuts every old listener down, whatever their workers do.
    host.commit(next, old, config, identity);
    const oldWorkers = old.liveWorkers();
    const removed = plans.filter((p) => p.action === 'close').map((p) => p.address);
    await Promise.all(oldWorkers.map((w) => w.drain(config.reload.drainTimeoutMs, DRAIN_ACK_TIMEOUT_MS, removed)));
    const retiring = old.listeners().filter((l) => !next.inherited.has(l));
    const handing = retiring.filter((l) => !removed.includes(l.spec.address.text));
    const queued = queuedOn(handing);
    for (const l of handing) l.retire(HALF_OPEN_GRACE_MS);
    // The sysctl decides what happens to the retired queues, whatever the
    // strategy (under inherit only surplus or replaced sockets retire here).
    const cutover = countCutover(queued, tcpMigrateReq === 1, counterDelta(before, snapshotCounters()));
    const lost = await this.closeRemoved(retiring.filter((l) => removed.includes(l.spec.address.text)), oldWorkers, removed);
    for (const slot of old.slots) slot.listeners = [];
    next.inherited.clear();
    const report: ReloadReport = {
      ...base, result: 'ok', generation: next.id, durationMs: Date.now() - requestedAt,
      queuedAtCutover: queued + lost, migrated: cutover.migrated, dropped: cutover.dropped + lost,
      counters: counterDelta(before, snapshotCounters()), ...planned,
    };
    // 6. The old generation drains in the background.
    this.drains.set(id, this.drain(old, oldWorkers, report));
    return report;
  }

  /**
   * An address the new generation no longer serves has no listener to hand
   * its queue to: its old workers go on accepting until the queue is empty
   * (bounded by REMOVED_QUEUE_WAIT_MS), then stop, and the master closes it.
   * Returns the connections still queued at that point (lost).
   */
  private async closeRemoved(listeners: readonly Listener[], workers: readonly WorkerHandle[], addresses: readonly string[]): Promise<number> {
    if (listeners.length === 0) return 0;
    const deadline = Date.now() + REMOVED_QUEUE_WAIT_MS;
    this.host.log.info(
      { addresses, queued: queuedOn(listeners) },
      `old workers accept what is queued on ${addresses.join(', ')} (removed) before it closes`,
    );
    while (queuedOn(listeners) > 0 && Date.now() < deadline) await sleep(QUEUE_POLL_MS);
    await Promise.all(workers.map((w) => w.close(addresses, DRAIN_ACK_TIMEOUT_MS)));
    const lost = queuedOn(listeners);
    for (const l of listeners) l.retire();
    return lost;
  }

  private warnings(current: Config, config: Config, strategyWarning: string | undefined, plans: readonly ListenerPlan[]): string[] {
    const warnings: string[] = [...config.warnings];
    if (config.controlSocket !== current.controlSocket) warnings.push('control.socket changes take effect at the next start');
    if (strategyWarning) warnings.push(strategyWarning);
    for (const p of plans) {
      if (p.action === 'replace') warnings.push(`${p.address}: listener settings changed; its queue is not handed over (the old listener is shut down)`);
      if (p.action === 'close') warnings.push(`${p.address}: removed; its old workers accept what is queued on it, then it closes`);
    }
    return warnings;
  }

  /** Waits for the old workers to finish (killing them after drain_timeout) and adds the drain's figures to the report. */
  private async drain(old: Generation, workers: readonly WorkerHandle[], report: ReloadReport): Promise<void> {
    const started = Date.now();
    const killedByMaster = await exitedOrKilled(workers, old.config.reload.drainTimeoutMs + KILL_GRACE_MS, (w) =>
      this.host.log.warn({ generation: old.id, workerPid: w.pid }, `old worker ${w.index} (pid ${w.pid}) still running after drain_timeout; killing it`),
    );
    this.host.retired(old);
    report.drain = {
      drained: workers.reduce((n, w) => n + (w.drainResult?.connections ?? 0), 0),
      killed: workers.reduce((n, w) => n + (w.drainResult?.killed ?? 0), 0) + killedByMaster,
      durationMs: Date.now() - started,
    };
    this.drains.delete(report.id);
    this.host.log.info({ reload: report.id, generation: old.id, drain: report.drain }, `generation ${old.id} drained`);
  }
}

/** For `inherit`: the old listeners each unchanged address hands to the new generation. */
function inheritance(old: Generation, plans: readonly ListenerPlan[]): Map<string, readonly Listener[]> {
  const map = new Map<string, readonly Listener[]>();
  old.specs.forEach((spec, k) => {
    if (!plans.some((p) => p.address === spec.address.text && p.inherit)) return;
    map.set(spec.address.text, old.slots.flatMap((s) => { const l = s.listeners[k]; return l && !l.closed ? [l] : []; }));
  });
  return map;
}
