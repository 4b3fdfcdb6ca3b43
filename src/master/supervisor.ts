// The master: a single owner of configuration, listeners and generations.
// Every input (signal, control request, worker exit, timer, file change)
// enters through `dispatch()` and is handled one at a time; long operations
// (start, stop, later reload) run as one async operation at a time.
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { readTcpMigrateReq } from '../metrics/kernel.js';
import { findForeignListeners, openListener, openListeners, type ListenerSpec } from '../net/index.js';
import { ControlServer, type Reply } from './control-server.js';
import { EventQueue } from './events.js';
import { Generation, specsOf, type Slot } from './generation.js';
import { resolveIdentity, type Identity } from './identity.js';
import { HEARTBEAT_MS, HEARTBEAT_TIMEOUT_MS, WorkerHandle, type WorkerExit } from './worker-handle.js';
import type { ParsedControlRequest } from '../protocol/control.js';

/** How long old workers get to acknowledge "stop accepting" before the master shuts their listeners anyway. */
export const DRAIN_ACK_TIMEOUT_MS = 1_000;
/** Grace after a drain deadline before a worker that did not exit is killed. */
export const KILL_GRACE_MS = 2_000;
export const FAST_STOP_GRACE_MS = 1_000;
/** Consecutive early deaths after which a slot is reported as crash-looping. */
export const CRASH_LOOP_FAILURES = 3;

export type MasterEvent =
  | { type: 'signal'; signal: NodeJS.Signals }
  | { type: 'control'; request: ParsedControlRequest; reply: Reply }
  | { type: 'worker-exit'; generation: Generation; slot: Slot; worker: WorkerHandle; exit: WorkerExit }
  | { type: 'respawn'; generation: Generation; slot: Slot }
  | { type: 'heartbeat-check' };

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
  private stopping: 'graceful' | 'fast' | undefined;
  private readonly events = new EventQueue<MasterEvent>((e) => this.handle(e));
  private readonly control: ControlServer;
  private readonly identity: Identity;
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
    const migrate = readTcpMigrateReq();
    this.log.info(
      { config: this.config.file, workers: this.config.workers, tcpMigrateReq: migrate, control: this.config.controlSocket },
      'master starting',
    );
    const generation = this.createGeneration(this.config);
    try {
      await this.boot(generation);
    } catch (err) {
      await this.abort(generation);
      await this.control.close();
      throw new StartError(err instanceof Error ? err.message : String(err));
    }
    this.heartbeatTimer = setInterval(() => this.dispatch({ type: 'heartbeat-check' }), HEARTBEAT_MS);
    this.heartbeatTimer.unref();
    this.log.info(
      { generation: generation.id, listen: specs.map((s) => this.addressOf(s)), pids: generation.workers().map((w) => w.pid) },
      `serving ${specs.map((s) => this.addressOf(s)).join(', ')} with ${generation.slots.length} workers`,
    );
  }

  private addressOf(spec: ListenerSpec): string {
    const port = this.ports.get(spec.address.text) ?? spec.address.port;
    return spec.address.family === 6 ? `[${spec.address.host}]:${port}` : `${spec.address.host}:${port}`;
  }

  private createGeneration(config: Config): Generation {
    const specs = specsOf(config);
    const generation = new Generation(this.nextGeneration++, specs, config.workers);
    try {
      for (const spec of specs) {
        const sockets = openListeners(spec, config.workers, this.ports.get(spec.address.text));
        const first = sockets[0];
        if (first) this.ports.set(spec.address.text, first.port);
        sockets.forEach((listener, i) => generation.slots[i]?.listeners.push(listener));
      }
    } catch (err) {
      generation.retireListeners();
      throw err;
    }
    return generation;
  }

  /** Spawns every slot, waits for all to be ready and listening, then makes the generation active. */
  private async boot(generation: Generation): Promise<void> {
    for (const slot of generation.slots) this.spawn(generation, slot);
    await Promise.all(generation.workers().map((w) => w.ready(this.config.reload.readyTimeoutMs)));
    for (const listener of generation.listeners()) {
      if (!listener.isListening()) throw new Error(`listener ${listener.spec.address.text} (fd ${listener.fd}) is not in LISTEN after its worker said ready`);
    }
    for (const w of generation.workers()) w.transition(['ready'], 'serving');
    generation.transition(['starting'], 'active');
    this.active = generation;
  }

  /** Kills a generation that never became active and releases its sockets. */
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
    if (slot.listeners.length === 0) {
      slot.listeners = generation.specs.map((spec) => openListener(spec, this.ports.get(spec.address.text) ?? spec.address.port));
    }
    const worker = new WorkerHandle({
      generation: generation.id,
      index: slot.index,
      app: this.config.app,
      listeners: slot.listeners.map((l) => ({ fd: l.fd, address: l.spec.address.text, backlog: l.spec.backlog })),
      env: this.config.env,
      drainTimeoutMs: this.config.reload.drainTimeoutMs,
      ...this.identity,
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
    }
  }

  private onSignal(signal: NodeJS.Signals): void {
    this.log.info({ signal }, `received ${signal}`);
    if (signal === 'SIGQUIT') void this.stop('fast');
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
        return reply({ ok: false, error: 'reload is not implemented yet', code: 'ENOTSUP' });
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
    const servedLongEnough = dead.servedAt !== undefined && uptime >= this.config.restart.minUptimeMs;
    slot.restarts++;
    slot.failures = servedLongEnough ? 0 : slot.failures + 1;
    const delay = this.backoffDelay(slot);
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

  private backoffDelay(slot: Slot): number {
    const { backoffMs, backoffMaxMs } = this.config.restart;
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
      const delay = this.backoffDelay(slot);
      slot.backoff = { until: Date.now() + delay, timer: setTimeout(() => this.dispatch({ type: 'respawn', generation, slot }), delay) };
      return;
    }
    worker.ready(this.config.reload.readyTimeoutMs).then(
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
    const generations = [...(this.active ? [this.active] : []), ...this.draining];
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
      listen: (this.active?.specs ?? []).map((s) => this.addressOf(s)),
      generations: [...(this.active ? [this.active] : []), ...this.draining].map(describe),
    };
  }
}
