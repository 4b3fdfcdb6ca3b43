// The master: a single owner of configuration, listeners and generations.
// Every input (signal, control request, worker exit, timer, file change)
// enters through `dispatch()` and is handled one at a time; long operations
// (start, a reload, stop) run as one async operation of each kind at a time
// and learn of the events that concern them from here.
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { addressText, type ListenerSpec } from '../net/index.js';
import type { ControlResponse, EffectiveStrategy, MasterStatus, ParsedControlRequest, ReloadReport, Trigger } from '../protocol/control.js';
import { ExpiryMonitor, tlsWarnings } from '../tls/expiry.js';
import { loadTlsMaterial, type TlsMaterial } from '../tls/material.js';
import { monotonic, within } from './clock.js';
import { ControlServer, type Reply } from './control-server.js';
import { EventQueue } from './events.js';
import { specsOf, type Generation, type Slot } from './generation.js';
import { logDecision, pickStrategy } from './handoff/choice.js';
import { Strategies } from './handoff/strategies.js';
import type { HandoffStrategy } from './handoff/strategy.js';
import { resolveIdentity, type Identity } from './identity.js';
import { closeMetrics, masterView, openMetrics, type OpenMetrics } from './metrics-view.js';
import { NO_HOOKS, type LifecycleHooks } from './lifecycle.js';
import { probeKernel, refreshKernel, type KernelState } from './kernel-state.js';
import type { ReloadHost } from './reload-operation.js';
import type { ListenerPlan } from './reload-plan.js';
import { Reloader } from './reload.js';
import { Respawner, type RespawnHost } from './respawn.js';
import { createGeneration, spawnWorker, verifyListening, type Groups } from './spawn.js';
import { refuseForeignListeners, StartError } from './start-checks.js';
import { describeGeneration } from './status.js';
import { runStop, type StopHost, type StopMode } from './stop.js';
import { ConfigWatcher, WATCH_READY_TIMEOUT_MS } from './watch.js';
import { exitedOrKilled, HEARTBEAT_MS, type WorkerExit, type WorkerHandle } from './worker-handle.js';

export { FAST_STOP_GRACE_MS } from './stop.js';

export type MasterEvent =
  | { type: 'signal'; signal: NodeJS.Signals }
  | { type: 'control'; request: ParsedControlRequest; reply: Reply }
  | { type: 'worker-exit'; generation: Generation; slot: Slot; worker: WorkerHandle; exit: WorkerExit }
  | { type: 'respawn'; generation: Generation; slot: Slot }
  | { type: 'heartbeat-check' }
  | { type: 'reload'; trigger: Trigger; onReport?: (report: ReloadReport) => void; waitDrain?: boolean };

export class Supervisor implements ReloadHost, RespawnHost, StopHost {
  /** Monotonic ms. */
  readonly startedAt = monotonic();
  private current: Generation | undefined;
  /** The generation start() or a reload is building: its workers are not yet counted as serving. */
  private booting: Generation | undefined;
  private readonly drainingGenerations = new Set<Generation>();
  private nextGeneration = 1;
  readonly groups: Groups = new Map();
  private stopMode: StopMode | undefined;
  private readonly reloads = new Reloader(this);
  private readonly respawner = new Respawner(this);
  private watcher: ConfigWatcher | undefined;
  /** Repeats certificate expiry warnings daily for what the active generation serves. */
  private expiry: ExpiryMonitor | undefined;
  private readonly events = new EventQueue<MasterEvent>((e) => this.handle(e));
  private readonly control: ControlServer;
  private identity: Identity;
  private kernelState: KernelState | undefined;
  private readonly strategies: Strategies;
  private handoff: HandoffStrategy;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  /** The Prometheus registry and its endpoint, when `metrics.listen` is set. */
  private metricsEndpoint: OpenMetrics | undefined;
  private resolveExit!: (code: number) => void;
  /** Resolves with the process exit code once the master has stopped. */
  readonly done = new Promise<number>((resolve) => (this.resolveExit = resolve));

  constructor(
    private currentConfig: Config,
    readonly log: Logger,
    /** systemd's view of the master (lifecycle.ts): told when a stop begins, and by the reload. */
    readonly hooks: LifecycleHooks = NO_HOOKS,
  ) {
    this.identity = resolveIdentity(currentConfig.user, currentConfig.group);
    this.strategies = new Strategies(this.groups, log);
    this.handoff = this.strategies.get('none');
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

  get building(): Generation | undefined {
    return this.booting;
  }

  get stopping(): boolean {
    return this.stopMode !== undefined;
  }

  get mode(): StopMode | undefined {
    return this.stopMode;
  }

  get kernel(): KernelState {
    if (!this.kernelState) throw new Error('the kernel has not been probed yet');
    return this.kernelState;
  }

  get strategy(): HandoffStrategy {
    return this.handoff;
  }

  get metrics(): OpenMetrics['metrics'] | undefined {
    return this.metricsEndpoint?.metrics;
  }

  /** Workers count their responses only for an endpoint that shows them. */
  get countRequests(): boolean {
    return this.metricsEndpoint !== undefined;
  }

  get stopDelayMs(): number {
    return this.currentConfig.stopDelayMs;
  }

  dispatch(event: MasterEvent): void {
    this.events.push(event);
  }

  /** Refuses foreign listeners, opens the control socket, starts generation 1. Throws StartError. */
  async start(): Promise<void> {
    const config = this.currentConfig;
    const specs = specsOf(config);
    await this.control.listen();
    let generation: Generation | undefined;
    try {
      refuseForeignListeners(specs);
      // A strategy the host cannot do stops the start with what it lacks.
      const pick = await pickStrategy(config, await probeKernel(), true, this.log);
      this.kernelState = pick.kernel;
      if (!pick.decision.ok) throw pick.decision.error;
      this.handoff = this.strategies.get(pick.decision.strategy);
      const { tcpMigrateReq } = pick.kernel;
      this.log.info(
        { config: config.file, workers: config.workers, tcpMigrateReq, strategy: this.handoff.name, control: config.controlSocket },
        `master starting: ${config.workers} workers of ${config.app}, reload strategy ${this.handoff.name}, config ${config.file}, control socket ${config.controlSocket}`,
      );
      logDecision(this.log, pick);
      if (config.metrics) {
        const view = masterView({ generations: () => this.generations(), active: () => this.current, stopping: () => this.stopping });
        this.metricsEndpoint = await openMetrics(config.metrics.listen, view, this.log);
      }
      const tls = loadTlsMaterial(config);
      for (const w of tlsWarnings(tls, config.tls.warnBeforeMs)) this.log.warn(w);
      generation = createGeneration(this.nextGeneration++, config, this.identity, tls, new Map(), this.groups);
      this.booting = generation; // a stop during the boot covers its workers
      await this.boot(generation);
      if (this.stopMode) throw new Error('stopped during start-up');
      this.handoff.start(generation);
      this.activate(generation);
    } catch (err) {
      if (generation) await this.abortStart(generation);
      this.strategies.release();
      await this.control.close();
      await closeMetrics(this.metricsEndpoint);
      throw new StartError(err instanceof Error ? err.message : String(err));
    } finally {
      this.booting = undefined;
    }
    this.startHeartbeats();
    this.rewatch();
    this.expiry = new ExpiryMonitor(
      () => (this.current ? { materials: this.current.tls, warnBeforeMs: this.current.config.tls.warnBeforeMs } : undefined),
      (warning) => this.log.warn(warning),
    );
    if (this.watcher) {
      const watcher = this.watcher;
      await within(watcher.ready, WATCH_READY_TIMEOUT_MS, () => this.log.warn(`the config watcher was not ready within ${WATCH_READY_TIMEOUT_MS} ms; changes may be missed until it is`));
    }
    const listen = specs.map((s) => this.addressOf(s));
    this.log.info({ generation: generation.id, listen, pids: generation.workers().map((w) => w.pid) }, `serving ${listen.join(', ')} with ${generation.slots.length} workers`);
  }

  private addressOf(spec: ListenerSpec): string {
    return addressText(spec.address.host, this.groups.get(spec.address.text)?.port ?? spec.address.port, spec.address.family);
  }

  refreshKernel(): Promise<KernelState> {
    return refreshKernel(this.kernel);
  }

  strategyFor(name: EffectiveStrategy): HandoffStrategy {
    return this.strategies.get(name);
  }

  createGeneration(config: Config, identity: Identity, tls: ReadonlyMap<string, TlsMaterial>, strategy: HandoffStrategy, plans: readonly ListenerPlan[]): Generation {
    const old = this.current;
    const inherit = old ? strategy.prepare(old, plans) : new Map();
    return createGeneration(this.nextGeneration++, config, identity, tls, inherit, this.groups);
  }

  /** Spawns every slot and waits until all are ready and their sockets in LISTEN. */
  async boot(generation: Generation): Promise<void> {
    for (const slot of generation.slots) this.watchExit(generation, slot, spawnWorker(generation, slot, this));
    await Promise.all(generation.workers().map((w) => w.ready(generation.config.reload.readyTimeoutMs)));
    for (const slot of generation.slots) verifyListening(slot);
  }

  setBuilding(generation: Generation | undefined): void {
    this.booting = generation;
  }

  commit(next: Generation, old: Generation, config: Config, identity: Identity, kernel: KernelState, strategy: HandoffStrategy): void {
    this.currentConfig = config;
    this.identity = identity;
    this.kernelState = kernel;
    this.handoff = strategy;
    this.activate(next);
    old.transition(['active'], 'draining');
    old.cancelBackoffs();
    this.rewatch();
  }

  draining(generation: Generation, done: Promise<unknown>): void {
    this.drainingGenerations.add(generation);
    void done.finally(() => {
      generation.transition(['draining', 'aborted'], 'gone');
      this.drainingGenerations.delete(generation);
    });
  }

  private activate(generation: Generation): void {
    for (const w of generation.workers()) w.transition(['ready'], 'serving');
    generation.transition(['starting'], 'active');
    this.current = generation;
  }

  /** start() failed: nothing served yet, so its workers are killed and its sockets released. */
  private async abortStart(generation: Generation): Promise<void> {
    generation.transition(['starting'], 'aborted');
    generation.cancelBackoffs();
    generation.retireListeners(this.log);
    const workers = generation.liveWorkers();
    for (const w of workers) w.kill('SIGKILL');
    await exitedOrKilled(workers, 0, () => {});
  }

  watchExit(generation: Generation, slot: Slot, worker: WorkerHandle): void {
    worker.once('exit', (exit) => this.dispatch({ type: 'worker-exit', generation, slot, worker, exit }));
    worker.on('metrics', (message) => {
      if (worker.pid !== undefined) this.metrics?.recordRequests(worker.pid, generation.id, message);
    });
  }

  respawnLater(generation: Generation, slot: Slot, delayMs: number): NodeJS.Timeout {
    return setTimeout(() => this.dispatch({ type: 'respawn', generation, slot }), delayMs);
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
        return this.respawner.onRespawn(event.generation, event.slot);
      case 'heartbeat-check':
        return this.respawner.checkHeartbeats();
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
        reply({ ok: true, result: { pid: process.pid, deadlineMs: this.stopDeadlineMs(request.fast ? 'fast' : 'graceful') } }, { keepOpen: true });
        void this.stop(request.fast ? 'fast' : 'graceful');
        return;
      case 'reload':
        return this.reloads.request(
          'control',
          (report) => reply({ ok: report.result === 'ok', result: report, ...(report.result === 'ok' ? {} : { error: report.reason ?? report.result, code: report.result }) } as ControlResponse),
          request.waitDrain,
        );
    }
  }

  private onWorkerExit(generation: Generation, slot: Slot, worker: WorkerHandle, exit: WorkerExit): void {
    const expected = this.stopMode !== undefined || generation !== this.current || exit.reason === 'drained';
    this.log[exit.reason === 'drained' ? 'debug' : expected ? 'info' : 'warn'](
      { generation: generation.id, worker: slot.index, workerPid: worker.pid, code: exit.code, signal: exit.signal, reason: exit.reason },
      `worker ${slot.index} (${worker.who}) ${exit.detail}`,
    );
    this.metrics?.recordWorkerExit(exit.reason);
    if (slot.worker === worker) slot.worker = undefined;
    // A worker of the generation being built: its socket must not wait in
    // LISTEN for the rollback (its queue migrates to a live listener now),
    // and the reload rolls back.
    if (generation === this.booting) {
      slot.retireListeners(this.log, generation.inherited);
      this.reloads.onWorkerExit(generation, slot.index, exit, worker.pid);
      return;
    }
    if (generation !== this.current || generation.state !== 'active') return;
    // Stopping: nothing replaces it, but its socket must not sit in LISTEN
    // without an acceptor (during stop_delay clients would hang).
    if (this.stopMode) this.respawner.releaseSockets(slot);
    else this.respawner.replace(generation, slot, worker);
  }

  /** (Re)creates the watcher of the config file and its TLS files to match reload.watch. */
  private rewatch(): void {
    const want = this.currentConfig.reload.watch && !this.stopMode;
    if (want && this.watcher?.key === ConfigWatcher.keyOf(this.currentConfig)) {
      this.watcher.update(this.currentConfig);
      return;
    }
    void this.watcher?.close();
    this.watcher = undefined;
    if (!want) return;
    this.watcher = new ConfigWatcher(this.currentConfig, {
      reload: (trigger, done) => this.dispatch({ type: 'reload', trigger, onReport: done }),
      served: () => this.current?.tls,
      log: this.log,
    });
  }

  private startHeartbeats(): void {
    this.respawner.resetHeartbeats();
    this.heartbeatTimer = setInterval(() => this.dispatch({ type: 'heartbeat-check' }), HEARTBEAT_MS);
    this.heartbeatTimer.unref();
  }

  stopHeartbeats(): void {
    clearInterval(this.heartbeatTimer);
  }

  lostAtStop(count: number): void {
    if (count > 0) this.metrics?.recordDropped('closed_without_migration', count);
  }

  reloadSettled(): Promise<void> {
    return this.reloads.settled();
  }

  /** How long a stop in `mode` may take at most, for the CLI's own deadline. */
  private stopDeadlineMs(mode: StopMode): number {
    const drains = this.generations().map((g) => g.config.reload.drainTimeoutMs);
    return mode === 'fast' ? 10_000 : this.currentConfig.stopDelayMs + Math.max(0, ...drains) + 30_000;
  }

  async stop(mode: StopMode): Promise<void> {
    if (this.stopMode === 'fast' || this.stopMode === mode) return;
    if (this.stopMode === 'graceful') this.log.warn('fast stop requested during a graceful stop');
    this.stopMode = mode;
    this.hooks.stopping(mode);
    this.reloads.onStop();
    this.expiry?.close();
    void this.watcher?.close();
    this.watcher = undefined;
    if (!(await runStop(this, mode))) return; // a fast stop took over and finishes the job
    this.strategies.release();
    await this.control.close();
    await closeMetrics(this.metricsEndpoint);
    this.log.info('stopped');
    this.resolveExit(0);
  }

  status(): MasterStatus {
    return {
      pid: process.pid,
      config: this.currentConfig.file,
      uptimeMs: monotonic() - this.startedAt,
      state: this.stopMode ? 'stopping' : 'running',
      generation: this.current?.id ?? null,
      strategy: this.handoff.name,
      reloading: this.reloads.inProgress,
      listen: (this.current?.specs ?? []).map((s) => this.addressOf(s)),
      generations: this.generations().map((g) => describeGeneration(g)),
      reloads: this.reloads.reports,
    };
  }

  /** Every generation with processes: active, being built, draining. */
  generations(): Generation[] {
    return [...(this.current ? [this.current] : []), ...(this.booting ? [this.booting] : []), ...this.drainingGenerations];
  }
}
