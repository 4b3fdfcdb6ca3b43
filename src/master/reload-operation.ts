// One reload, as one operation (DESIGN.md "Reload, step by step"), in the
// manner of tableflip's doUpgrade: it builds the new generation completely,
// with deadlines, before the old one is touched; any failure up to the
// commit leaves the old generation serving (rollback); from the commit on
// nothing throws: the cutover returns figures. It owns the generation it
// builds and is told of the events that concern it (a worker of that
// generation exits, a stop is requested), so the supervisor needs no
// "is this the generation being built?" checks of its own.
import { loadConfigAsync, ResourceShortage, type Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { findForeignListeners } from '../net/index.js';
import type { EffectiveStrategy, ReloadReport, Trigger } from '../protocol/control.js';
import { tlsWarnings } from '../tls/expiry.js';
import { loadTlsMaterial, type TlsMaterial } from '../tls/material.js';
import { rotatesInPlace } from '../tls/payload.js';
import { monotonic, sleep } from './clock.js';
import { specsOf, type Generation } from './generation.js';
import { pickStrategy, specsUnchanged } from './handoff/choice.js';
import { KILL_GRACE_MS } from './handoff/cutover.js';
import type { CutoverFigures, HandoffContext, HandoffStrategy } from './handoff/strategy.js';
import { resolveIdentity, type Identity } from './identity.js';
import type { KernelState } from './kernel-state.js';
import type { LifecycleHooks } from './lifecycle.js';
import type { MasterMetrics } from '../metrics/index.js';
import { planListeners, type ListenerPlan } from './reload-plan.js';
import { reloadTls, rotateInPlace } from './tls-rotation.js';
import { exitedOrKilled, type WorkerExit } from './worker-handle.js';
import { messageOf } from './errors.js';

/** What a reload needs from the master that owns the generations. */
export interface ReloadHost {
  readonly log: Logger;
  readonly config: Config;
  readonly active: Generation | undefined;
  readonly stopping: boolean;
  /** Told when each reload starts, has read its configuration, and ends (sd_notify RELOADING/READY, the watchdog's deadline). */
  readonly hooks: LifecycleHooks;
  /** Where reload reports and drain figures are counted, when metrics are on. */
  readonly metrics: MasterMetrics | undefined;
  /** The strategy in force (the one the active generation was handed over by, or started with). */
  readonly strategy: HandoffStrategy;
  /** The kernel state probed at start, with what may have changed since read again. */
  refreshKernel(): Promise<KernelState>;
  /** The master's one instance of a strategy (it may need the master's reuseport groups). */
  strategyFor(name: EffectiveStrategy): HandoffStrategy;
  /** A generation with its sockets bound (inherited ones shared), not listening. Throws when a socket cannot be opened. */
  createGeneration(config: Config, identity: Identity, tls: ReadonlyMap<string, TlsMaterial>, strategy: HandoffStrategy, plans: readonly ListenerPlan[]): Generation;
  /** Spawns every slot; resolves once all are ready and verified in LISTEN. */
  boot(generation: Generation): Promise<void>;
  /** `generation` is being built (it receives its workers' exits through this operation) or no longer is. */
  setBuilding(generation: Generation | undefined): void;
  /** Makes `next` the active generation under `config`, and `old` a draining one. */
  commit(next: Generation, old: Generation, config: Config, identity: Identity, kernel: KernelState, strategy: HandoffStrategy): void;
  /** `generation` (old, or rolled back) drains in the background until its last worker is gone. */
  draining(generation: Generation, done: Promise<unknown>): void;
}

export class RollbackError extends Error {
  override name = 'RollbackError';
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

export class ReloadOperation {
  private next: Generation | undefined;
  private committed = false;
  private phase: 'boot' | 'settle' = 'boot';
  /** The strategy that rolls back, when not the one chosen (it failed to take over: handOver). */
  private rollbackWith: HandoffStrategy | undefined;
  private abort: ((err: Error) => void) | undefined;
  private readonly aborted: Promise<never>;
  /** Resolves once the old generation (or the rolled-back one) has drained. */
  drained: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: ReloadHost,
    readonly id: number,
    readonly trigger: Trigger,
    private readonly requestedAt: { readonly wall: Date; readonly mono: number },
  ) {
    this.aborted = new Promise<never>((_, reject) => (this.abort = reject));
    this.aborted.catch(() => {});
  }

  /** Whether `generation` is the one this operation is building. */
  builds(generation: Generation): boolean {
    return generation === this.next && !this.committed;
  }

  /** A worker of the generation being built died before the commit: roll back. */
  onWorkerExit(generation: Generation, index: number, exit: WorkerExit, pid: number | undefined): void {
    if (!this.builds(generation)) return;
    const when = this.phase === 'settle' ? 'during reload.settle' : 'before its generation was ready';
    this.abort?.(new RollbackError(`worker ${index} (${pid === undefined ? 'no process' : `pid ${pid}`}) ${exit.detail} ${when}`));
  }

  /** A stop was requested: a reload that has not committed gives way. */
  onStop(): void {
    if (!this.committed) this.abort?.(new RollbackError('stop requested during the reload'));
  }

  /** Steps 1-7; never throws. */
  async run(): Promise<ReloadReport> {
    const { host } = this;
    const old = host.active;
    const base = { id: this.id, trigger: this.trigger, previous: old?.id ?? null, startedAt: this.requestedAt.wall.toISOString() };
    const empty = { generation: null, strategy: null, durationMs: 0, settleMs: 0, queuedAtCutover: 0, migrated: 0, dropped: 0, drops: {}, listeners: [], warnings: [] };
    if (!old) return { ...base, ...empty, result: 'refused', refusal: 'not_serving', reason: 'the master is not serving yet' };
    // Out of descriptors or memory while reading: the files may be fine, so not `invalid`.
    const short = (err: ResourceShortage): ReloadReport => {
      host.log.error({ reload: this.id, file: err.file, code: err.code }, `reload refused: ${err.message}; nothing changed`);
      return { ...base, ...empty, result: 'refused', refusal: 'resources', reason: err.message, durationMs: this.elapsed() };
    };

    // 1. Read and validate; never bind or join the port here.
    let config: Config;
    let identity: Identity;
    let tls: ReadonlyMap<string, TlsMaterial>;
    try {
      config = await loadConfigAsync(host.config.file); // large files parse off the event loop
      identity = resolveIdentity(config.user, config.group);
      tls = loadTlsMaterial(config);
    } catch (err) {
      if (err instanceof ResourceShortage) return short(err);
      return { ...base, ...empty, result: 'invalid', reason: messageOf(err), durationMs: this.elapsed() };
    }
    await host.hooks.reloadConfigured(config);
    const tlsWarned = tlsWarnings(tls, config.tls.warnBeforeMs);
    if (rotatesInPlace(host.config, config, old.tls, tls)) {
      for (const w of tlsWarned) host.log.warn({ reload: this.id }, w);
      return rotateInPlace(host.log, old, tls, base, this.requestedAt.mono, tlsWarned);
    }
    // The strategy, from the probe refreshed now; one this host cannot do refuses the reload.
    const unchanged = specsUnchanged(planListeners(old.specs, specsOf(config), 'none'));
    let fresh: KernelState;
    try {
      fresh = await host.refreshKernel();
    } catch (err) {
      if (err instanceof ResourceShortage) return short(err);
      throw err;
    }
    const { decision, kernel } = await pickStrategy(config, fresh, unchanged, host.log);
    if (!decision.ok) {
      host.log.error({ reload: this.id }, `reload refused: ${decision.error.message}`);
      return { ...base, ...empty, result: 'refused', refusal: 'unsupported', reason: decision.error.message, durationMs: this.elapsed() };
    }
    const strategy = host.strategyFor(decision.strategy);
    if (strategy !== host.strategy) {
      host.log.info({ reload: this.id, from: host.strategy.name, to: strategy.name, passedOver: decision.rejected }, `reload strategy changes from ${host.strategy.name} to ${strategy.name}`);
    }
    const plans = planListeners(old.specs, specsOf(config), decision.strategy);
    const warnings = [...this.warnings(host.config, config, decision.notes, plans), ...tlsWarned];
    for (const w of warnings) host.log.warn({ reload: this.id }, w);
    const planned = { strategy: decision.strategy, listeners: plans, warnings };

    // 2-4. The new generation, complete, or a rollback.
    let settleMs = 0;
    try {
      settleMs = await this.build(config, identity, tls, strategy, plans, kernel, old);
    } catch (err) {
      const next = this.next;
      if (next) await this.rollback(this.rollbackWith ?? strategy, { log: host.log, old, next, plans, kernel });
      host.setBuilding(undefined);
      return { ...base, ...empty, ...planned, result: 'rolled_back', reason: messageOf(err), generation: next?.id ?? null, durationMs: this.elapsed() };
    }
    const next = this.next as Generation;

    // 5. Commit: from here on nothing throws.
    this.committed = true;
    host.setBuilding(undefined);
    host.commit(next, old, config, identity, kernel, strategy);
    const drainStarted = monotonic(); // the old workers are told to stop accepting now
    const drained = deferred();
    host.draining(old, drained.promise); // from now on a stop covers the old generation too
    this.drained = drained.promise;
    const figures = await this.cutover(strategy, { log: host.log, old, next, plans, kernel });
    for (const slot of old.slots) slot.listeners = [];
    next.inherited.clear();
    const report: ReloadReport = {
      ...base, ...planned, result: 'ok', generation: next.id,
      durationMs: Math.max(0, this.elapsed() - settleMs), settleMs,
      queuedAtCutover: figures.queued, migrated: figures.migrated, dropped: figures.dropped, drops: figures.drops,
      ...(figures.halfOpen > 0 ? { halfOpenAtCutover: { count: figures.halfOpen, upperBound: true } } : {}),
      ...(figures.counters ? { counters: figures.counters } : {}),
      warnings: [...warnings, ...figures.warnings],
      ...reloadTls('new-generation', tls),
    };
    // 6. The old generation drains in the background; 7. the caller gets the report now.
    void this.drain(old, report, drainStarted).finally(drained.resolve);
    return report;
  }

  /** Steps 2-4. Returns how long the settle took; throws (RollbackError or a socket error) to roll back. */
  private async build(
    config: Config, identity: Identity, tls: ReadonlyMap<string, TlsMaterial>,
    strategy: HandoffStrategy, plans: readonly ListenerPlan[], kernel: KernelState, old: Generation,
  ): Promise<number> {
    const { host } = this;
    refuseForeign(plans, config);
    let next: Generation;
    try {
      next = host.createGeneration(config, identity, tls, strategy, plans);
    } catch (err) {
      throw new RollbackError(`could not open the new listeners: ${messageOf(err)}`);
    }
    this.next = next;
    host.setBuilding(next);
    const booting = host.boot(next);
    booting.catch(() => {}); // an abort may win the race; the boot's own failure is then moot
    await Promise.race([booting, this.aborted]);
    const settleStarted = monotonic();
    this.phase = 'settle';
    // Both generations serve meanwhile; a new worker's death aborts (onWorkerExit).
    // A certificate rotation (trigger tls: the config file and so the app are
    // unchanged, the new material already validated) has nothing to prove and
    // must put the new certificate alone in service at once.
    const settle = this.trigger === 'tls' ? 0 : config.reload.settleMs;
    if (settle > 0) await Promise.race([sleep(settle), this.aborted]);
    const settleMs = monotonic() - settleStarted;
    if (host.stopping) throw new RollbackError('stop requested during the reload');
    const dead = next.workers().find((w) => !w.alive);
    if (dead) throw new RollbackError(`worker ${dead.index} (${dead.who}) ${dead.exit?.detail ?? 'exited'} during reload.settle`);
    this.handOver(strategy, { log: host.log, old, next, plans, kernel });
    return settleMs;
  }

  /**
   * Step 4's end: the strategy takes over. When it is not the one in force,
   * the previous one first takes its programs off the groups (a program
   * attached now would be replaced by, or detach, the other's); if the new
   * one then fails, it lets go of what it did and the previous takes the
   * groups back and rolls the reload back.
   */
  private handOver(strategy: HandoffStrategy, ctx: HandoffContext): void {
    const previous = this.host.strategy;
    if (previous === strategy) return strategy.afterBoot(ctx);
    previous.release();
    try {
      strategy.afterBoot(ctx);
    } catch (err) {
      strategy.release();
      this.rollbackWith = previous;
      try {
        previous.start(ctx.old);
      } catch (again) {
        ctx.log.error({ err: again }, `strategy ${previous.name} could not take the listeners back: ${messageOf(again)}`);
      }
      throw new RollbackError(`strategy ${strategy.name}: ${messageOf(err)}`);
    }
  }

  /** Step 5, shielded: a strategy that throws after the commit still yields a report. */
  private async cutover(strategy: HandoffStrategy, ctx: HandoffContext): Promise<CutoverFigures> {
    try {
      return await strategy.cutover(ctx);
    } catch (err) {
      ctx.log.error({ err }, `cutover failed after the commit: ${messageOf(err)}`);
      return { queued: 0, migrated: 0, dropped: 0, drops: {}, halfOpen: 0, counters: undefined, warnings: [`cutover failed after the commit: ${messageOf(err)}`] };
    }
  }

  /**
   * Rolls the new generation back: resolves once its listeners are released
   * (what queued on them handed back); what it served drains in the background.
   */
  private async rollback(strategy: HandoffStrategy, ctx: HandoffContext): Promise<void> {
    const { next } = ctx;
    next.transition(['starting'], 'aborted');
    const done = deferred();
    this.host.draining(next, done.promise);
    this.drained = done.promise;
    try {
      await strategy.rollback(ctx);
    } catch (err) {
      ctx.log.error({ err }, `rollback of generation ${next.id} failed: ${messageOf(err)}`);
      next.retireListeners(ctx.log);
    }
    void this.waitOut(next, 'rolled-back').finally(done.resolve);
  }

  /** Waits for the old workers to finish (killing them after their own drain_timeout) and adds the drain's figures. */
  private async drain(old: Generation, report: ReloadReport, started: number): Promise<void> {
    const workers = old.workers();
    const killedByMaster = await this.waitOut(old, 'old');
    report.drain = {
      drained: workers.reduce((n, w) => n + (w.drainResult?.connections ?? 0), 0),
      killed: workers.reduce((n, w) => n + (w.drainResult?.killed ?? 0), 0) + killedByMaster,
      durationMs: monotonic() - started,
    };
    this.host.metrics?.recordDrain(report.drain);
    const { drained, killed, durationMs } = report.drain;
    this.host.log.info(
      { reload: report.id, generation: old.id, drain: report.drain },
      `generation ${old.id} drained in ${Math.round(durationMs)} ms: ${drained} connections finished, ${killed} cut at drain_timeout`,
    );
  }

  /** One generation, one deadline: its own drain_timeout (plus grace), whatever the new configuration says. */
  private waitOut(generation: Generation, what: string): Promise<number> {
    const { log } = this.host;
    return exitedOrKilled(
      generation.liveWorkers(),
      generation.config.reload.drainTimeoutMs + KILL_GRACE_MS,
      (w) => log.warn({ generation: generation.id, workerPid: w.pid }, `${what} worker ${w.index} (${w.who}) still running after drain_timeout; killing it`),
      (w) => log.error({ generation: generation.id, workerPid: w.pid }, `${what} worker ${w.index} (${w.who}) did not exit after SIGKILL; giving up on it`),
    );
  }

  private elapsed(): number {
    return monotonic() - this.requestedAt.mono;
  }

  private warnings(current: Config, config: Config, notes: readonly string[], plans: readonly ListenerPlan[]): string[] {
    const warnings: string[] = [...config.warnings];
    if (config.controlSocket !== current.controlSocket) warnings.push('control.socket changes take effect at the next start');
    if (config.metrics?.listen.text !== current.metrics?.listen.text) warnings.push('metrics.listen changes take effect at the next start');
    warnings.push(...notes);
    for (const p of plans) {
      if (p.action === 'replace') warnings.push(`${p.address}: listener settings changed; its old workers accept what is queued on it, then it closes (not handed over)`);
      if (p.action === 'close') warnings.push(`${p.address}: removed; its old workers accept what is queued on it, then it closes`);
    }
    return warnings;
  }
}

/**
 * A listening socket that is not ours on a port this reload adds: the kernel
 * lets the same uid join our group silently and take a share of it (start
 * refuses the same; FACTS.md).
 */
function refuseForeign(plans: readonly ListenerPlan[], config: Config): void {
  for (const plan of plans) {
    if (plan.action !== 'open') continue;
    const spec = config.listen.find((l) => l.address.text === plan.address);
    if (!spec || spec.address.port === 0) continue;
    const foreign = findForeignListeners(spec.address);
    if (foreign.length === 0) continue;
    const who = [...new Set(foreign.map((f) => (f.pid ? `pid ${f.pid} (${f.command ?? '?'})` : `${f.local}, owner unknown`)))];
    throw new RollbackError(`${plan.address} is already in use by ${who.join(', ')}: stop it first`);
  }
}
