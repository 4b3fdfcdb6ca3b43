// The master: a single owner of configuration, listeners and generations.
// Every input (signal, control request, worker exit, timer, file change)
// enters through `dispatch()` and is handled one at a time; long operations
// (start, reload, stop) run as one async operation of each kind at a time.
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { readTcpMigrateReq, writeTcpMigrateReq } from '../metrics/kernel.js';
import {
  addressText,
  chooseStrategy,
  findForeignListeners,
  openListener,
  openListeners,
  queuedOn,
  SYSCTL_HINT,
  type Listener,
  type ListenerSpec,
} from '../net/index.js';
import type { ControlResponse, MasterStatus, ParsedControlRequest, ReloadReport, Trigger } from '../protocol/control.js';
import { loadTlsMaterial, type TlsMaterial } from '../tls/material.js';
import { ControlServer, type Reply } from './control-server.js';
import { EventQueue } from './events.js';
import { Generation, specsOf, type Slot } from './generation.js';
import { resolveIdentity, type Identity } from './identity.js';
import { DRAIN_ACK_TIMEOUT_MS, KILL_GRACE_MS, Reloader, type ReloadHost } from './reload.js';
import { backoffDelay, decideRestart } from './restart.js';
import { closeMetrics, exitReasonOf, markHeartbeatKill, masterView, openMetrics, type OpenMetrics } from './metrics-view.js';
import { describeGeneration } from './status.js';
import { ConfigWatcher } from './watch.js';
import { exitedOrKilled, HEARTBEAT_MS, HEARTBEAT_TIMEOUT_MS, WorkerHandle, type WorkerExit } from './worker-handle.js';

/** How long a fast stop waits for workers after SIGTERM before SIGKILL. */
export const FAST_STOP_GRACE_MS = 1_000;

export type MasterEvent =
  | { type: 'signal'; signal: NodeJS.Signals }
  | { type: 'control'; request: ParsedControlRequest; reply: Reply }
  | { type: 'worker-exit'; generation: Generation; slot: Slot; worker: WorkerHandle; exit: WorkerExit }
  | { type: 'respawn'; generation: Generation; slot: Slot }
  | { type: 'heartbeat-check' }
  | { type: 'reload'; trigger: Trigger; onReport?: (report: ReloadReport) => void; waitDrain?: boolean };

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

export class Supervisor implements ReloadHost {
  readonly startedAt = Date.now();
  private current: Generation | undefined;
  private readonly draining = new Set<Generation>();
  private nextGeneration = 1;
  /** Resolved port per address text: port 0 resolves once, every later socket binds the same. */
  private readonly ports = new Map<string, number>();
  /** A generation being built by a reload, not yet committed. */
  private starting: Generation | undefined;
  private stopMode: 'graceful' | 'fast' | undefined;
  private readonly reloads = new Reloader(this);
  private watcher: ConfigWatcher | undefined;
  private readonly events = new EventQueue<MasterEvent>((e) => this.handle(e));
  private readonly control: ControlServer;
  private identity: Identity;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** The Prometheus registry and its endpoint, when `metrics.listen` is set. */
  private metricsEndpoint: OpenMetrics | undefined;
  private resolveExit!: (code: number) => void;
  /** Resolves with the process exit code once the master has stopped. */
  readonly done = new Promise<number>((resolve) => (this.resolveExit = resolve));

  constructor(
    private currentConfig: Config,
    readonly log: Logger,
  ) {
    this.identity = resolveIdentity(currentConfig.user, currentConfig.group);
    this.control = new ControlServer(currentConfig.controlSocket, log, (request, reply) =>
      this.dispatch({ type: 'control', request, reply }),
    );
  }

  get config(): Config {
    return this.currentConfig;
  }

  get active(): Generation | undefined {
    return this.current;
  }

  get stopping(): boolean {
    return this.stopMode !== undefined;
  }

  get metrics(): OpenMetrics['metrics'] | undefined {
    return this.metricsEndpoint?.metrics;
  }

  dispatch(event: MasterEvent): void {
    this.events.push(event);
  }

  /** Refuses foreign listeners, opens the control socket, starts generation 1. Throws StartError. */
  async start(): Promise<void> {
    const specs = specsOf(this.currentConfig);
    await this.control.listen();
    try {
      refuseForeignListeners(specs);
      if (this.currentConfig.metrics) {
        const view = masterView({ generations: () => this.generations(), active: () => this.current, stopping: () => this.stopping });
        this.metricsEndpoint = await openMetrics(this.currentConfig.metrics.listen, view, this.log);
      }
    } catch (err) {
      await this.control.close();
      throw new StartError(err instanceof Error ? err.message : String(err));
    }
    const tcpMigrateReq = this.ensureTcpMigrateReq(this.currentConfig);
    const choice = chooseStrategy(this.currentConfig.reload.strategy, tcpMigrateReq);
    this.log.info(
      { config: this.currentConfig.file, workers: this.currentConfig.workers, tcpMigrateReq, strategy: choice.strategy, control: this.currentConfig.controlSocket },
      'master starting',
    );
    if (choice.warning) this.log.warn(choice.warning);
    else if (tcpMigrateReq !== 1) {
      this.log.info(`net.ipv4.tcp_migrate_req is ${tcpMigrateReq ?? 'absent'}: reloads use ${choice.strategy}; for kernel migration ${SYSCTL_HINT}`);
    }
    let generation: Generation | undefined;
    try {
      generation = this.createGeneration(this.currentConfig, this.identity, loadTlsMaterial(this.currentConfig));
      this.starting = generation; // a stop during the boot covers its workers
      await this.boot(generation);
      if (this.stopMode) throw new Error('stopped during start-up');
      this.activate(generation);
    } catch (err) {
      if (generation) await this.abort(generation);
      await this.control.close();
      await closeMetrics(this.metricsEndpoint);
      throw new StartError(err instanceof Error ? err.message : String(err));
    } finally {
      this.starting = undefined;
    }
    this.heartbeatTimer = setInterval(() => this.dispatch({ type: 'heartbeat-check' }), HEARTBEAT_MS);
    this.heartbeatTimer.unref();
    this.rewatch();
    await this.watcher?.ready;
    this.log.info(
      { generation: generation.id, listen: specs.map((s) => this.addressOf(s)), pids: generation.workers().map((w) => w.pid) },
      `serving ${specs.map((s) => this.addressOf(s)).join(', ')} with ${generation.slots.length} workers`,
    );
  }

  private addressOf(spec: ListenerSpec): string {
    return addressText(spec.address.host, this.ports.get(spec.address.text) ?? spec.address.port, spec.address.family);
  }

  /**
   * A generation with its sockets bound, not listening. `inherit` maps an
   * address to the previous generation's listeners that this one shares
   * (slot i takes the i-th); every other socket is fresh.
   */
  createGeneration(
    config: Config,
    identity: Identity,
    tls: ReadonlyMap<string, TlsMaterial>,
    inherit = new Map<string, readonly Listener[]>(),
  ): Generation {
    const generation = new Generation(this.nextGeneration++, config, identity, tls);
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
  async boot(generation: Generation): Promise<void> {
    for (const slot of generation.slots) this.spawn(generation, slot);
    await Promise.all(generation.workers().map((w) => w.ready(generation.config.reload.readyTimeoutMs)));
    this.verifyListening(generation);
  }

  verifyListening(generation: Generation): void {
    for (const listener of generation.listeners()) {
      if (!listener.isListening()) {
        throw new Error(`listener ${listener.address.text} (fd ${listener.fd}) is not in LISTEN after its worker said ready`);
      }
    }
  }

  setStarting(generation: Generation | undefined): void {
    this.starting = generation;
  }

  commit(next: Generation, old: Generation, config: Config, identity: Identity): void {
    this.currentConfig = config;
    this.identity = identity;
    this.activate(next);
    old.transition(['active'], 'draining');
    this.draining.add(old);
    for (const slot of old.slots) slot.cancelBackoff();
    this.rewatch();
  }

  retired(old: Generation): void {
    old.transition(['draining'], 'gone');
    this.draining.delete(old);
  }

  private activate(generation: Generation): void {
    for (const w of generation.workers()) w.transition(['ready'], 'serving');
    generation.transition(['starting'], 'active');
    this.current = generation;
  }

  /** Kills a generation that never became active and releases its own sockets. */
  async abort(generation: Generation): Promise<void> {
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
      listeners: slot.listeners.map((l) => {
        const tls = generation.tls.get(l.spec.address.text);
        return { fd: l.fd, address: l.spec.address.text, backlog: l.spec.backlog, ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}) };
      }),
      env: config.env,
      drainTimeoutMs: config.reload.drainTimeoutMs,
      ...generation.identity,
      log: this.log,
    });
    slot.worker = worker;
    worker.once('exit', (exit) => this.dispatch({ type: 'worker-exit', generation, slot, worker, exit }));
    worker.on('metrics', (message) => this.metrics?.recordRequests(worker.pid, generation.id, message));
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
        return this.reloads.request(event.trigger, event.onReport, event.waitDrain ?? false);
    }
  }

  private onSignal(signal: NodeJS.Signals): void {
    this.log.info({ signal }, `received ${signal}`);
    if (signal === 'SIGHUP') this.reloads.request('signal');
    else if (signal === 'SIGQUIT') void this.stop('fast');
    else if (signal === 'SIGTERM' || signal === 'SIGINT') void this.stop(this.stopMode ? 'fast' : 'graceful');
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
        return this.reloads.request('control', (report) => reply({ ok: report.result === 'ok', result: report, ...(report.result === 'ok' ? {} : { error: report.reason ?? report.result, code: report.result }) } as ControlResponse), request.waitDrain);
    }
  }

  private onWorkerExit(generation: Generation, slot: Slot, worker: WorkerHandle, exit: WorkerExit): void {
    this.log[this.stopMode || generation !== this.current ? 'info' : 'warn'](
      { generation: generation.id, worker: slot.index, workerPid: worker.pid, code: exit.code, signal: exit.signal },
      `worker ${slot.index} (pid ${worker.pid}) ${exit.reason}`,
    );
    this.metrics?.recordWorkerExit(exitReasonOf(worker, exit, generation.state === 'draining' || this.stopping));
    if (slot.worker === worker) slot.worker = undefined;
    // A new worker that died before the commit: its socket must not wait in
    // LISTEN for the rollback (its queue migrates to a live listener now).
    if (generation === this.starting) slot.retireListeners(generation.inherited);
    if (this.stopMode || generation !== this.current || generation.state !== 'active') return;
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
    const decision = decideRestart(dead, slot.failures, generation.config.restart, readTcpMigrateReq() === 1);
    slot.restarts++;
    slot.failures = decision.failures;
    // A socket the generation being built inherits has an acceptor there.
    if (!decision.keepSocket) slot.retireListeners(this.starting?.inherited);
    if (decision.delayMs === 0) {
      this.respawn(generation, slot);
      return;
    }
    this.log[decision.crashLoop ? 'error' : 'warn'](
      { generation: generation.id, worker: slot.index, failures: slot.failures, backoffMs: decision.delayMs },
      decision.crashLoop
        ? `worker ${slot.index} is crash-looping (${slot.failures} early deaths in a row); next attempt in ${decision.delayMs} ms`
        : `worker ${slot.index} died early; restarting in ${decision.delayMs} ms`,
    );
    this.scheduleRespawn(generation, slot, decision.delayMs);
  }

  private scheduleRespawn(generation: Generation, slot: Slot, delayMs: number): void {
    slot.backoff = {
      until: Date.now() + delayMs,
      timer: setTimeout(() => this.dispatch({ type: 'respawn', generation, slot }), delayMs),
    };
  }

  private onRespawn(generation: Generation, slot: Slot): void {
    slot.backoff = undefined;
    if (this.stopMode || generation !== this.current || slot.worker) return;
    this.respawn(generation, slot);
  }

  private respawn(generation: Generation, slot: Slot): void {
    let worker: WorkerHandle;
    try {
      worker = this.spawn(generation, slot);
    } catch (err) {
      this.log.error({ err, worker: slot.index }, `could not start a replacement for worker ${slot.index}`);
      slot.failures++;
      this.scheduleRespawn(generation, slot, backoffDelay(slot.failures, generation.config.restart));
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
    for (const worker of this.current?.workers() ?? []) {
      if (worker.state === 'serving' && worker.alive && now - worker.lastHeard > HEARTBEAT_TIMEOUT_MS) {
        this.log.error(
          { generation: worker.generation, worker: worker.index, workerPid: worker.pid, silentMs: now - worker.lastHeard },
          `worker ${worker.index} (pid ${worker.pid}) missed its heartbeat for ${now - worker.lastHeard} ms; killing it`,
        );
        markHeartbeatKill(worker);
        worker.kill('SIGKILL');
      }
    }
  }

  /**
   * The namespace's tcp_migrate_req. Set to 1 only when the configuration
   * allows it: it is namespace-wide and changes every other SO_REUSEPORT
   * user there. Never reset on exit.
   */
  ensureTcpMigrateReq(config: Config): 0 | 1 | null {
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
    const want = this.currentConfig.reload.watch;
    if (want && this.watcher?.file === this.currentConfig.file) return;
    void this.watcher?.close();
    this.watcher = undefined;
    if (!want) return;
    this.watcher = new ConfigWatcher(
      this.currentConfig.file,
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
    if (this.stopMode === 'fast' || this.stopMode === mode) return;
    const escalating = this.stopMode === 'graceful';
    this.stopMode = mode;
    clearInterval(this.heartbeatTimer);
    void this.watcher?.close();
    this.watcher = undefined;
    const generations = this.generations();
    for (const g of generations) for (const s of g.slots) s.cancelBackoff();
    if (escalating) this.log.warn('fast stop requested during a graceful stop');
    this.log.info({ mode, stopDelayMs: this.currentConfig.stopDelayMs }, `stopping (${mode})`);
    const workers = generations.flatMap((g) => g.liveWorkers());
    if (mode === 'graceful') {
      if (this.currentConfig.stopDelayMs > 0) await new Promise((r) => setTimeout(r, this.currentConfig.stopDelayMs));
      await Promise.all(workers.map((w) => w.drain(this.currentConfig.reload.drainTimeoutMs, DRAIN_ACK_TIMEOUT_MS)));
    }
    this.retireAll(generations);
    if (mode === 'fast') for (const w of workers) w.kill('SIGTERM');
    const grace = mode === 'fast' ? FAST_STOP_GRACE_MS : this.currentConfig.reload.drainTimeoutMs + KILL_GRACE_MS;
    await exitedOrKilled(workers, grace, (w) =>
      this.log.warn({ workerPid: w.pid }, `worker ${w.index} (pid ${w.pid}) did not exit in time; killing it`),
    );
    if (this.stopMode !== mode) return; // a fast stop took over and finishes the job
    await this.control.close();
    await closeMetrics(this.metricsEndpoint);
    this.log.info('stopped');
    this.resolveExit(0);
  }

  private retireAll(generations: readonly Generation[]): void {
    const lost = queuedOn(generations.flatMap((g) => g.listeners()));
    for (const g of generations) g.retireListeners();
    if (lost > 0) this.log.warn({ lost }, `${lost} queued connections had no listener left to migrate to`);
    this.metrics?.recordDropped('closed_without_migration', lost);
  }

  status(): MasterStatus {
    return {
      pid: process.pid,
      config: this.currentConfig.file,
      uptimeMs: Date.now() - this.startedAt,
      state: this.stopMode ? 'stopping' : 'running',
      generation: this.current?.id ?? null,
      strategy: chooseStrategy(this.currentConfig.reload.strategy, readTcpMigrateReq()).strategy,
      reloading: this.reloads.inProgress,
      listen: (this.current?.specs ?? []).map((s) => this.addressOf(s)),
      generations: this.generations().map((g) => describeGeneration(g)),
      reloads: this.reloads.reports,
    };
  }

  /** Every generation with processes: active, being built, draining. */
  private generations(): Generation[] {
    return [...(this.current ? [this.current] : []), ...(this.starting ? [this.starting] : []), ...this.draining];
  }

}
