// The master: a single owner of configuration, listeners and generations.
// Every input (signal, control request, worker exit, timer, file change)
// enters through `dispatch()` and is handled one at a time; long operations
// (start, stop, later reload) run as one async operation at a time.
import { loadConfig, type Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { counterDelta, readTcpMigrateReq, snapshotCounters, writeTcpMigrateReq } from '../metrics/kernel.js';
import { findForeignListeners, openListener, openListeners, type Listener, type ListenerSpec } from '../net/index.js';
import { ControlServer, type Reply } from './control-server.js';
import { EventQueue } from './events.js';
import { Generation, specsOf, type Slot } from './generation.js';
import { resolveIdentity, type Identity } from './identity.js';
import { HEARTBEAT_MS, HEARTBEAT_TIMEOUT_MS, WorkerHandle, type WorkerExit } from './worker-handle.js';
import type { ControlResponse, ParsedControlRequest } from '../protocol/control.js';
import {
  chooseStrategy,
  countCutover,
  planListeners,
  SYSCTL_HINT,
  type ListenerPlan,
  type ReloadReport,
  type Trigger,
} from './reload-plan.js';
import { ConfigWatcher } from './watch.js';

/** How long old workers get to acknowledge "stop accepting" before the master shuts their listeners anyway. */
export const DRAIN_ACK_TIMEOUT_MS = 1_000;
/** Grace after a drain deadline before a worker that did not exit is killed. */
export const KILL_GRACE_MS = 2_000;
export const FAST_STOP_GRACE_MS = 1_000;
/** Consecutive early deaths after which a slot is reported as crash-looping. */
export const CRASH_LOOP_FAILURES = 3;
/** Reload reports kept for `handover status`. */
export const REPORTS_KEPT = 20;

export type MasterEvent =
  | { type: 'signal'; signal: NodeJS.Signals }
  | { type: 'control'; request: ParsedControlRequest; reply: Reply }
  | { type: 'worker-exit'; generation: Generation; slot: Slot; worker: WorkerHandle; exit: WorkerExit }
  | { type: 'respawn'; generation: Generation; slot: Slot }
  | { type: 'heartbeat-check' }
  | { type: 'reload'; trigger: Trigger; onReport?: (report: ReloadReport) => void; waitDrain?: boolean };

interface PendingReload {
  readonly trigger: Trigger;
  readonly requestedAt: number;
  readonly waiters: { onReport: (report: ReloadReport) => void; waitDrain: boolean }[];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class StartError extends Error {
  override name = 'StartError';
}

/**
 * A listening socket that is not ours on one of our ports: a stale master, or
 * a second instance with the same uid, would silently take a share of the
 * connections (the kernel lets the same uid join a reuseport group).
 */
function refuseForeignListeners(specs: readonly ListenerSpec[]): void {
  for (const spec of specs) {
    if (spec.address.port === 0) continue;
    const foreign = findForeignListeners(spec.address);
    if (foreign.length === 0) continue;
    const who = foreign.map((f) => (f.pid ? `pid ${f.pid} (${f.command ?? '?'})` : `${f.local}, owner unknown`));
    throw new StartError(`${spec.address.text} is already in use by ${[...new Set(who)].join(', ')}: stop it first`);
  }
}

export class Supervisor {
  readonly startedAt = Date.now();
  private active: Generation | undefined;
  private readonly draining = new Set<Generation>();
  private nextGeneration = 1;
  /** Resolved port per address text: port 0 resolves once, every later socket binds the same. */
  private readonly ports = new Map<string, number>();
  /** A generation being built by a reload, not yet committed. */
  private starting: Generation | undefined;
  private stopping: 'graceful' | 'fast' | undefined;
  private reloading = false;
  private pending: PendingReload | undefined;
  private reloadSeq = 0;
  private readonly reports: ReloadReport[] = [];
  private readonly drains = new Map<number, Promise<void>>();
  private watcher: ConfigWatcher | undefined;
  private readonly events = new EventQueue<MasterEvent>((e) => this.handle(e));
  private readonly control: ControlServer;
  private identity: Identity;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private resolveExit!: (code: number) => void;
  /** Resolves with the process exit code once the master has stopped. */
  readonly done = new Promise<number>((resolve) => (this.resolveExit = resolve));

  constructor(
    private config: Config,
    private readonly log: Logger,
  ) {
    this.identity = resolveIdentity(config.user, config.group);
    this.control = new ControlServer(config.controlSocket, log, (request, reply) =>
      this.dispatch({ type: 'control', request, reply }),
    );
  }

  dispatch(event: MasterEvent): void {
    this.events.push(event);
  }

  /** Refuses foreign listeners, opens the control socket, starts generation 1. Throws StartError. */
  async start(): Promise<void> {
    const specs = specsOf(this.config);
    await this.control.listen();
    try {
      refuseForeignListeners(specs);
    } catch (err) {
      await this.control.close();
      throw err;
    }
    const tcpMigrateReq = this.ensureTcpMigrateReq(this.config);
    const choice = chooseStrategy(this.config.reload.strategy, tcpMigrateReq);
    this.log.info(
      { config: this.config.file, workers: this.config.workers, tcpMigrateReq, strategy: choice.strategy, control: this.config.controlSocket },
      'master starting',
    );
    if (choice.warning) this.log.warn(choice.warning);
    else if (tcpMigrateReq !== 1) {
      this.log.info(`net.ipv4.tcp_migrate_req is ${tcpMigrateReq ?? 'absent'}: reloads use ${choice.strategy}; for kernel migration ${SYSCTL_HINT}`);
    }
    const generation = this.createGeneration(this.config, this.identity);
    try {
      await this.boot(generation);
      this.activate(generation);
    } catch (err) {
      await this.abort(generation);
      await this.control.close();
      throw new StartError(err instanceof Error ? err.message : String(err));
    }
    this.heartbeatTimer = setInterval(() => this.dispatch({ type: 'heartbeat-check' }), HEARTBEAT_MS);
    this.heartbeatTimer.unref();
    this.rewatch();
    this.log.info(
      { generation: generation.id, listen: specs.map((s) => this.addressOf(s)), pids: generation.workers().map((w) => w.pid) },
      `serving ${specs.map((s) => this.addressOf(s)).join(', ')} with ${generation.slots.length} workers`,
    );
  }

  private addressOf(spec: ListenerSpec): string {
    const port = this.ports.get(spec.address.text) ?? spec.address.port;
    return spec.address.family === 6 ? `[${spec.address.host}]:${port}` : `${spec.address.host}:${port}`;
  }

  /**
   * A generation with its sockets bound, not listening. `inherit` maps an
   * address to the previous generation's listeners that this one shares
   * (slot i takes the i-th); every other socket is fresh.
   */
  private createGeneration(config: Config, identity: Identity, inherit = new Map<string, readonly Listener[]>()): Generation {
    const generation = new Generation(this.nextGeneration++, config, identity);
    try {
      for (const spec of generation.specs) {
        const shared = inherit.get(spec.address.text) ?? [];
        const fresh = Math.max(0, config.workers - shared.length);
        const opened = fresh > 0 ? openListeners(spec, fresh, this.ports.get(spec.address.text)) : [];
        const first = opened[0];
        if (first && !this.ports.has(spec.address.text)) this.ports.set(spec.address.text, first.port);
        generation.slots.forEach((slot, i) => {
          const old = shared[i];
          if (old) generation.inherited.add(old);
          const listener = old ?? opened[i - shared.length];
          if (listener) slot.listeners.push(listener);
        });
      }
    } catch (err) {
      generation.retireListeners();
      throw err;
    }
    return generation;
  }

  /** Spawns every slot and waits until all are ready and their sockets in LISTEN. */
  private async boot(generation: Generation): Promise<void> {
    for (const slot of generation.slots) this.spawn(generation, slot);
    await Promise.all(generation.workers().map((w) => w.ready(generation.config.reload.readyTimeoutMs)));
    this.verifyListening(generation);
  }

  private verifyListening(generation: Generation): void {
    for (const listener of generation.listeners()) {
      if (!listener.isListening()) {
        throw new Error(`listener ${listener.address.text} (fd ${listener.fd}) is not in LISTEN after its worker said ready`);
      }
    }
  }

  private activate(generation: Generation): void {
    for (const w of generation.workers()) w.transition(['ready'], 'serving');
    generation.transition(['starting'], 'active');
    this.active = generation;
  }

  /** Kills a generation that never became active and releases its own sockets. */
  private async abort(generation: Generation): Promise<void> {
    generation.transition(['starting'], 'aborted');
    for (const slot of generation.slots) slot.cancelBackoff();
    // Shut the listeners first so whatever queued on them migrates to a live sibling.
    generation.retireListeners();
    const workers = generation.liveWorkers();
    for (const w of workers) w.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
  }

  private spawn(generation: Generation, slot: Slot): WorkerHandle {
    const { config } = generation;
    if (slot.listeners.length === 0) {
      slot.listeners = generation.specs.map((spec) => openListener(spec, this.ports.get(spec.address.text) ?? spec.address.port));
    }
    const worker = new WorkerHandle({
      generation: generation.id,
      index: slot.index,
      app: config.app,
      listeners: slot.listeners.map((l) => ({ fd: l.fd, address: l.spec.address.text, backlog: l.spec.backlog })),
      env: config.env,
      drainTimeoutMs: config.reload.drainTimeoutMs,
      ...generation.identity,
      log: this.log,
    });
    slot.worker = worker;
    worker.once('exit', (exit) => this.dispatch({ type: 'worker-exit', generation, slot, worker, exit }));
    return worker;
  }

  private handle(event: MasterEvent): void {
    switch (event.type) {
      case 'signal':
        return this.onSignal(event.signal);
      case 'control':
        return this.onControl(event.request, event.reply);
      case 'worker-exit':
        return this.onWorkerExit(event.generation, event.slot, event.worker, event.exit);
      case 'respawn':
        return this.onRespawn(event.generation, event.slot);
      case 'heartbeat-check':
        return this.onHeartbeatCheck();
      case 'reload':
        return this.requestReload(event.trigger, event.onReport, event.waitDrain ?? false);
    }
  }

  private onSignal(signal: NodeJS.Signals): void {
    this.log.info({ signal }, `received ${signal}`);
    if (signal === 'SIGHUP') this.requestReload('signal');
    else if (signal === 'SIGQUIT') void this.stop('fast');
    else if (signal === 'SIGTERM' || signal === 'SIGINT') void this.stop(this.stopping ? 'fast' : 'graceful');
  }

  private onControl(request: ParsedControlRequest, reply: Reply): void {
    switch (request.cmd) {
      case 'status':
        return reply({ ok: true, result: this.status() });
      case 'stop':
        reply({ ok: true, result: { pid: process.pid } }, { keepOpen: true });
        void this.stop(request.fast ? 'fast' : 'graceful');
        return;
      case 'reload':
        return this.requestReload('control', (report) => reply({ ok: report.result === 'ok', result: report, ...(report.result === 'ok' ? {} : { error: report.reason ?? report.result, code: report.result }) } as ControlResponse), request.waitDrain);
    }
  }

  private onWorkerExit(generation: Generation, slot: Slot, worker: WorkerHandle, exit: WorkerExit): void {
    this.log[this.stopping || generation !== this.active ? 'info' : 'warn'](
      { generation: generation.id, worker: slot.index, workerPid: worker.pid, code: exit.code, signal: exit.signal },
      `worker ${slot.index} (pid ${worker.pid}) ${exit.reason}`,
    );
    if (slot.worker === worker) slot.worker = undefined;
    if (this.stopping || generation !== this.active || generation.state !== 'active') return;
    this.replace(generation, slot, worker);
  }

  /**
   * A worker of the active generation died: replace it. Its listener must not
   * sit in LISTEN without an acceptor. With migration on, shut it down now
   * (its queue moves to the siblings) and give the replacement a fresh
   * socket; without it, keep the socket for a replacement that starts at once
   * (it will accept the queue), but never across a backoff.
   */
  private replace(generation: Generation, slot: Slot, dead: WorkerHandle): void {
    const uptime = Date.now() - dead.startedAt;
    const servedLongEnough = dead.servedAt !== undefined && uptime >= generation.config.restart.minUptimeMs;
    slot.restarts++;
    slot.failures = servedLongEnough ? 0 : slot.failures + 1;
    const delay = this.backoffDelay(generation, slot);
    if (delay > 0 || readTcpMigrateReq() === 1) slot.retireListeners();
    if (delay === 0) {
      this.respawn(generation, slot);
      return;
    }
    const level = slot.failures >= CRASH_LOOP_FAILURES ? 'error' : 'warn';
    this.log[level](
      { generation: generation.id, worker: slot.index, failures: slot.failures, backoffMs: delay },
      slot.failures >= CRASH_LOOP_FAILURES
        ? `worker ${slot.index} is crash-looping (${slot.failures} early deaths in a row); next attempt in ${delay} ms`
        : `worker ${slot.index} died early; restarting in ${delay} ms`,
    );
    slot.backoff = {
      until: Date.now() + delay,
      timer: setTimeout(() => this.dispatch({ type: 'respawn', generation, slot }), delay),
    };
  }

  private backoffDelay(generation: Generation, slot: Slot): number {
    const { backoffMs, backoffMaxMs } = generation.config.restart;
    return slot.failures === 0 ? 0 : Math.min(backoffMs * 2 ** (slot.failures - 1), backoffMaxMs);
  }

  private onRespawn(generation: Generation, slot: Slot): void {
    slot.backoff = undefined;
    if (this.stopping || generation !== this.active || slot.worker) return;
    this.respawn(generation, slot);
  }

  private respawn(generation: Generation, slot: Slot): void {
    let worker: WorkerHandle;
    try {
      worker = this.spawn(generation, slot);
    } catch (err) {
      this.log.error({ err, worker: slot.index }, `could not start a replacement for worker ${slot.index}`);
      slot.failures++;
      const delay = this.backoffDelay(generation, slot);
      slot.backoff = { until: Date.now() + delay, timer: setTimeout(() => this.dispatch({ type: 'respawn', generation, slot }), delay) };
      return;
    }
    worker.ready(generation.config.reload.readyTimeoutMs).then(
      () => {
        if (worker.transition(['ready'], 'serving')) {
          this.log.info({ generation: generation.id, worker: slot.index, workerPid: worker.pid }, `worker ${slot.index} replaced`);
        }
      },
      (err: unknown) => {
        this.log.error({ err, worker: slot.index }, `replacement worker ${slot.index} did not start`);
        worker.kill('SIGKILL');
      },
    );
  }

  private onHeartbeatCheck(): void {
    const now = Date.now();
    for (const worker of this.active?.workers() ?? []) {
      if (worker.state === 'serving' && worker.alive && now - worker.lastHeard > HEARTBEAT_TIMEOUT_MS) {
        this.log.error(
          { generation: worker.generation, worker: worker.index, workerPid: worker.pid, silentMs: now - worker.lastHeard },
          `worker ${worker.index} (pid ${worker.pid}) missed its heartbeat for ${now - worker.lastHeard} ms; killing it`,
        );
        worker.kill('SIGKILL');
      }
    }
  }

  /**
   * Queues a reload. Requests that arrive while one runs coalesce into a
   * single follow-up reload; each caller gets the report of the reload that
   * served its request (tableflip answers "in progress"; we answer later).
   */
  requestReload(trigger: Trigger, onReport?: (report: ReloadReport) => void, waitDrain = false): void {
    if (this.stopping || !this.active) {
      onReport?.(this.refusedReport(trigger, this.stopping ? 'the master is stopping' : 'the master is not serving yet'));
      return;
    }
    this.pending ??= { trigger, requestedAt: Date.now(), waiters: [] };
    if (onReport) this.pending.waiters.push({ onReport, waitDrain });
    if (!this.reloading) void this.runReloads();
  }

  private async runReloads(): Promise<void> {
    this.reloading = true;
    try {
      for (let batch = this.pending; batch; batch = this.pending) {
        this.pending = undefined;
        const report = this.stopping
          ? this.refusedReport(batch.trigger, 'the master is stopping')
          : await this.reload(batch.trigger, batch.requestedAt).catch((err: unknown) =>
              this.refusedReport(batch.trigger, `reload failed: ${err instanceof Error ? err.message : String(err)}`, 'rolled_back'),
            );
        this.record(report);
        for (const waiter of batch.waiters) {
          const drained = waiter.waitDrain ? this.drains.get(report.id) : undefined;
          if (drained) void drained.then(() => waiter.onReport(report));
          else waiter.onReport(report);
        }
      }
    } finally {
      this.reloading = false;
    }
  }

  private refusedReport(trigger: Trigger, reason: string, result: 'invalid' | 'rolled_back' = 'invalid'): ReloadReport {
    return {
      id: ++this.reloadSeq, trigger, result, reason, generation: null, previous: this.active?.id ?? null, strategy: null,
      startedAt: new Date().toISOString(), durationMs: 0, queuedAtCutover: 0, migrated: 0, dropped: 0, listeners: [], warnings: [],
    };
  }

  private record(report: ReloadReport): void {
    this.reports.push(report);
    if (this.reports.length > REPORTS_KEPT) this.reports.shift();
    const level = report.result === 'ok' ? 'info' : 'error';
    const what = report.result === 'ok'
      ? `generation ${report.previous} -> ${report.generation} (${report.strategy}) in ${report.durationMs.toFixed(0)} ms: ${report.queuedAtCutover} queued at cutover, ${report.migrated} migrated, ${report.dropped} dropped`
      : `${report.result.replace('_', ' ')}: ${report.reason}`;
    this.log[level]({ reload: report }, `reload ${report.id} (${report.trigger}) ${what}`);
  }

  /** DESIGN.md "Reload, step by step": steps 1-5 here, 6-7 in drainGeneration(). */
  private async reload(trigger: Trigger, requestedAt: number): Promise<ReloadReport> {
    const old = this.active;
    if (!old) throw new Error('no active generation');
    const id = ++this.reloadSeq;
    const base = { id, trigger, previous: old.id, startedAt: new Date(requestedAt).toISOString() };
    const refuse = (result: 'invalid' | 'rolled_back', reason: string, extra: Partial<ReloadReport> = {}): ReloadReport => ({
      ...base, result, reason, generation: null, strategy: null, durationMs: Date.now() - requestedAt,
      queuedAtCutover: 0, migrated: 0, dropped: 0, listeners: [], warnings: [], ...extra,
    });

    // 1. Read and validate; never bind or join the port here.
    let config: Config;
    let identity: Identity;
    try {
      config = loadConfig(this.config.file);
      identity = resolveIdentity(config.user, config.group);
    } catch (err) {
      return refuse('invalid', err instanceof Error ? err.message : String(err));
    }
    const warnings: string[] = [];
    if (config.controlSocket !== this.config.controlSocket) warnings.push('control.socket changes take effect at the next start');
    const tcpMigrateReq = this.ensureTcpMigrateReq(config);
    const choice = chooseStrategy(config.reload.strategy, tcpMigrateReq);
    if (choice.warning) warnings.push(choice.warning);
    const plans = planListeners(old.specs, specsOf(config), choice.strategy);
    for (const p of plans) {
      if (p.action === 'replace') warnings.push(`${p.address}: listener settings changed; its queue is not handed over (the old listener is shut down)`);
      if (p.action === 'close') warnings.push(`${p.address}: removed; connections queued on it at the cutover are dropped`);
    }
    for (const w of warnings) this.log.warn({ reload: id }, w);

    // 2-3. New sockets (bound, not listening) and new workers, all ready in time.
    let next: Generation;
    try {
      next = this.createGeneration(config, identity, this.inheritance(old, plans));
    } catch (err) {
      return refuse('rolled_back', `could not open the new listeners: ${err instanceof Error ? err.message : String(err)}`, { strategy: choice.strategy, listeners: plans, warnings });
    }
    this.starting = next;
    try {
      await this.boot(next);
      if (config.reload.settleMs > 0) await sleep(config.reload.settleMs);
      const dead = next.slots.find((s) => !s.worker?.alive || s.worker.state !== 'ready');
      if (dead) throw new Error(`worker ${dead.index} ${dead.worker?.exit?.reason ?? dead.worker?.state ?? 'missing'} during reload.settle`);
      if (this.stopping) throw new Error('stop requested during the reload');
      // 4. Every new listener in LISTEN; snapshot before the cutover.
      this.verifyListening(next);
    } catch (err) {
      await this.abort(next);
      return refuse('rolled_back', err instanceof Error ? err.message : String(err), { generation: next.id, strategy: choice.strategy, listeners: plans, warnings });
    } finally {
      this.starting = undefined;
    }
    const before = snapshotCounters();

    // 5. Commit: the new generation serves; old workers stop accepting, then
    // the master shuts every old listener down, whatever their workers do.
    this.config = config;
    this.identity = identity;
    this.activate(next);
    old.transition(['active'], 'draining');
    this.draining.add(old);
    for (const slot of old.slots) slot.cancelBackoff();
    const oldWorkers = old.liveWorkers();
    await Promise.all(oldWorkers.map((w) => w.drain(config.reload.drainTimeoutMs, DRAIN_ACK_TIMEOUT_MS)));
    const retiring = old.listeners().filter((l) => !next.inherited.has(l));
    const queued = retiring.reduce((n, l) => n + (l.closed ? 0 : (l.queue()?.queued ?? 0)), 0);
    for (const l of retiring) l.retire();
    for (const slot of old.slots) slot.listeners = [];
    next.inherited.clear();
    const durationMs = Date.now() - requestedAt;
    const counters = counterDelta(before, snapshotCounters());
    const { migrated, dropped } = countCutover(queued, tcpMigrateReq === 1 && choice.strategy !== 'inherit', counters);
    const report: ReloadReport = {
      ...base, result: 'ok', generation: next.id, strategy: choice.strategy, durationMs,
      queuedAtCutover: queued, migrated, dropped, counters, listeners: plans, warnings,
    };
    // 6. The old generation drains in the background.
    this.drains.set(id, this.drainGeneration(old, oldWorkers, report));
    this.rewatch();
    return report;
  }

  /** For `inherit`: the old listeners each unchanged address hands to the new generation. */
  private inheritance(old: Generation, plans: readonly ListenerPlan[]): Map<string, readonly Listener[]> {
    const map = new Map<string, readonly Listener[]>();
    old.specs.forEach((spec, k) => {
      if (!plans.some((p) => p.address === spec.address.text && p.inherit)) return;
      map.set(spec.address.text, old.slots.flatMap((s) => (s.listeners[k] && !s.listeners[k].closed ? [s.listeners[k]] : [])));
    });
    return map;
  }

  /** Waits for the old workers to finish (killing them at drain_timeout) and adds the drain's figures to the report. */
  private async drainGeneration(old: Generation, workers: readonly WorkerHandle[], report: ReloadReport): Promise<void> {
    const started = Date.now();
    let killedByMaster = 0;
    const timer = setTimeout(() => {
      for (const w of workers) {
        if (!w.alive) continue;
        killedByMaster++;
        this.log.warn({ generation: old.id, workerPid: w.pid }, `old worker ${w.index} (pid ${w.pid}) still running after drain_timeout; killing it`);
        w.kill('SIGKILL');
      }
    }, old.config.reload.drainTimeoutMs + KILL_GRACE_MS);
    await Promise.all(workers.map((w) => w.exited));
    clearTimeout(timer);
    old.transition(['draining'], 'gone');
    this.draining.delete(old);
    report.drain = {
      drained: workers.reduce((n, w) => n + (w.drainResult?.connections ?? 0), 0),
      killed: workers.reduce((n, w) => n + (w.drainResult?.killed ?? 0), 0) + killedByMaster,
      durationMs: Date.now() - started,
    };
    this.drains.delete(report.id);
    this.log.info({ reload: report.id, generation: old.id, drain: report.drain }, `generation ${old.id} drained`);
  }

  /**
   * The namespace's tcp_migrate_req. Set to 1 only when the configuration
   * allows it: it is namespace-wide and changes every other SO_REUSEPORT
   * user there. Never reset on exit.
   */
  private ensureTcpMigrateReq(config: Config): 0 | 1 | null {
    const value = readTcpMigrateReq();
    if (value !== 0 || !config.reload.setTcpMigrateReq) return value;
    try {
      writeTcpMigrateReq(1);
      this.log.warn('set net.ipv4.tcp_migrate_req=1 in this network namespace (reload.set_tcp_migrate_req); it applies to every SO_REUSEPORT user here');
      return 1;
    } catch (err) {
      this.log.error({ err }, `could not set net.ipv4.tcp_migrate_req: ${err instanceof Error ? err.message : String(err)}`);
      return value;
    }
  }

  /** (Re)creates the config watcher to match reload.watch. */
  private rewatch(): void {
    const want = this.config.reload.watch;
    if (want && this.watcher?.file === this.config.file) return;
    void this.watcher?.close();
    this.watcher = undefined;
    if (!want) return;
    this.watcher = new ConfigWatcher(
      this.config.file,
      () => this.dispatch({ type: 'reload', trigger: 'watch' }),
      (err) => this.log.warn({ err }, 'config watcher error'),
    );
  }

  /**
   * Graceful: keep serving for stop_delay (so a load balancer can take the
   * host out), tell every worker to stop accepting, shut the listeners down
   * (nothing to migrate to: what is queued then is lost and logged), let the
   * workers drain within drain_timeout, kill what is left. Fast: shut down
   * and terminate at once.
   */
  async stop(mode: 'graceful' | 'fast'): Promise<void> {
    if (this.stopping === 'fast' || this.stopping === mode) return;
    const escalating = this.stopping === 'graceful';
    this.stopping = mode;
    clearInterval(this.heartbeatTimer);
    void this.watcher?.close();
    this.watcher = undefined;
    const generations = [...(this.active ? [this.active] : []), ...(this.starting ? [this.starting] : []), ...this.draining];
    for (const g of generations) for (const s of g.slots) s.cancelBackoff();
    if (escalating) this.log.warn('fast stop requested during a graceful stop');
    this.log.info({ mode, stopDelayMs: this.config.stopDelayMs }, `stopping (${mode})`);
    const workers = generations.flatMap((g) => g.liveWorkers());
    if (mode === 'graceful') {
      if (this.config.stopDelayMs > 0) await new Promise((r) => setTimeout(r, this.config.stopDelayMs));
      await Promise.all(workers.map((w) => w.drain(this.config.reload.drainTimeoutMs, DRAIN_ACK_TIMEOUT_MS)));
    }
    this.retireAll(generations);
    if (mode === 'fast') for (const w of workers) w.kill('SIGTERM');
    const grace = mode === 'fast' ? FAST_STOP_GRACE_MS : this.config.reload.drainTimeoutMs + KILL_GRACE_MS;
    const timer = setTimeout(() => {
      for (const w of workers) {
        if (!w.alive) continue;
        this.log.warn({ workerPid: w.pid }, `worker ${w.index} (pid ${w.pid}) did not exit in time; killing it`);
        w.kill('SIGKILL');
      }
    }, grace);
    await Promise.all(workers.map((w) => w.exited));
    clearTimeout(timer);
    if (this.stopping !== mode) return; // a fast stop took over and finishes the job
    await this.control.close();
    this.log.info('stopped');
    this.resolveExit(0);
  }

  private retireAll(generations: readonly Generation[]): void {
    let lost = 0;
    for (const listener of generations.flatMap((g) => g.listeners())) lost += listener.queue()?.queued ?? 0;
    for (const g of generations) g.retireListeners();
    if (lost > 0) this.log.warn({ lost }, `${lost} queued connections had no listener left to migrate to`);
  }

  status(): unknown {
    const now = Date.now();
    const describe = (g: Generation) => ({
      generation: g.id,
      state: g.state,
      workers: g.slots.map((s) => ({
        index: s.index,
        pid: s.worker?.pid ?? null,
        state: s.worker?.state ?? (s.backoff ? 'backoff' : 'down'),
        uptimeMs: s.worker ? now - s.worker.startedAt : 0,
        restarts: s.restarts,
        ...(s.backoff ? { nextAttemptInMs: Math.max(0, s.backoff.until - now) } : {}),
      })),
    });
    return {
      pid: process.pid,
      config: this.config.file,
      uptimeMs: now - this.startedAt,
      state: this.stopping ? 'stopping' : 'running',
      generation: this.active?.id ?? null,
      strategy: chooseStrategy(this.config.reload.strategy, readTcpMigrateReq()).strategy,
      reloading: this.reloading,
      listen: (this.active?.specs ?? []).map((s) => this.addressOf(s)),
      generations: [...(this.active ? [this.active] : []), ...(this.starting ? [this.starting] : []), ...this.draining].map(describe),
      reloads: this.reports,
    };
  }
}
