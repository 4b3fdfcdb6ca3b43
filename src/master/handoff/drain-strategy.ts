// `drain`: the seed's user-space workaround done right, for kernels before
// 5.14, or where the sysctl is refused and there is no CAP_BPF (a pod).
// Once the new generation is ready, a classic BPF program (no privilege)
// sends every new SYN of each address to the new generation's listeners;
// the old workers keep accepting, untold, until their accept queues are
// empty and the requests half-open when the steering began are gone
// (bounded: STEERED_DRAIN_MAX_MS and reload.drain_timeout); only then are
// they told to stop accepting and their listeners shut down, through the
// reuseport group, which keeps the program right at each leave
// (classic-steering.ts). Every old listener goes, the surplus ones an
// `inherit` reload gave a worker included. A rollback steers back to the
// old generation while the new one's queues empty.
import type { HalfOpenSnapshot, Listener } from '../../net/index.js';
import type { Logger } from '../../log/logger.js';
import { counterDelta, snapshotCounters, type CounterSnapshot } from '../../metrics/kernel.js';
import { queuedOn } from '../../net/index.js';
import type { DropReason, ListenerPlan } from '../../protocol/control.js';
import { retireAll, type Generation } from '../generation.js';
import type { KernelState } from '../kernel-state.js';
import { countCutover } from '../reload-plan.js';
import type { Groups } from '../spawn.js';
import { steerGenerations, type ClassicSteering } from './classic-steering.js';
import { DRAIN_ACK_TIMEOUT_MS, rollbackGeneration } from './cutover.js';
import { captureHalfOpen, steeredDrainMs, stillHalfOpen, waitEmptied } from './steered-drain.js';
import type { CutoverFigures, HandoffContext, HandoffStrategy } from './strategy.js';
import { messageOf } from '../errors.js';

interface Steered {
  readonly steerings: readonly ClassicSteering[];
  /** Half-open requests on the ports of the listeners steered away from, when the steering began. */
  readonly snapshots: readonly HalfOpenSnapshot[];
}

function add(drops: Partial<Record<DropReason, number>>, reason: DropReason, n: number): void {
  if (n > 0) drops[reason] = (drops[reason] ?? 0) + n;
}

const LOST_BECAUSE: Readonly<Record<ListenerPlan['action'], DropReason>> = {
  handoff: 'closed_without_migration',
  open: 'closed_without_migration',
  replace: 'protocol_changed',
  close: 'removed_address',
};

export class DrainStrategy implements HandoffStrategy {
  readonly name = 'drain';
  /** Per generation steered to: what its afterBoot (or a rollback) set up. */
  readonly #steered = new Map<Generation, Steered>();

  constructor(
    private readonly groups: Groups,
    private readonly log: Logger,
  ) {}

  migrates(kernel: KernelState): boolean {
    return kernel.tcpMigrateReq === 1;
  }

  prepare(): Map<string, readonly Listener[]> {
    return new Map();
  }

  start(): void {}

  afterBoot(ctx: HandoffContext): void {
    this.#steered.set(ctx.next, this.#steer(ctx.old, ctx.next));
  }

  async cutover(ctx: HandoffContext): Promise<CutoverFigures> {
    const { old, next, plans, log } = ctx;
    const steered = this.#take(next);
    const warnings: string[] = [];
    const read = <T>(what: string, fallback: T, fn: () => T): T => {
      try {
        return fn();
      } catch (err) {
        warnings.push(`${what}: ${messageOf(err)}`);
        return fallback;
      }
    };
    const before = read<CounterSnapshot | undefined>('reading TcpExt counters', undefined, snapshotCounters);
    const leaving = old.listeners().filter((l) => !next.inherited.has(l));
    const queued = read('reading accept queues', 0, () => queuedOn(leaving));
    // A removed address has nobody to steer its new SYNs to: its queue never
    // empties under load, so it is not waited for (it is accepted meanwhile,
    // like the others, and closes with them).
    const removed = new Set(plans.filter((p) => p.action === 'close').map((p) => p.address));
    const steeredAway = leaving.filter((l) => !removed.has(l.spec.address.text));
    const ports = new Set(steeredAway.map((l) => l.port));
    const snapshots = steered.snapshots.filter((h) => ports.has(h.port));
    const deadlineMs = steeredDrainMs(old);
    log.info({ generation: old.id, queued, halfOpen: snapshots.reduce((n, h) => n + h.size, 0), deadlineMs }, `old workers of generation ${old.id} accept what is queued on their listeners (new connections go to generation ${next.id}) before they close`);
    const wait = await waitEmptied(old, steeredAway, snapshots, deadlineMs, log);
    // Nothing new reaches the old listeners: stop accepting, then shut them down.
    await Promise.all(old.liveWorkers().map((w) => w.drain(old.config.reload.drainTimeoutMs, DRAIN_ACK_TIMEOUT_MS)));
    const drops: Partial<Record<DropReason, number>> = {};
    let lostHandoff = 0;
    for (const plan of plans) {
      const lost = read(`reading the accept queue of ${plan.address}`, 0, () => queuedOn(old.listenersOf(plan.address).filter((l) => !next.inherited.has(l))));
      if (plan.action === 'handoff') lostHandoff += lost;
      else add(drops, LOST_BECAUSE[plan.action], lost);
    }
    const halfOpen = wait.emptied ? 0 : read('counting half-open requests', 0, () => stillHalfOpen(snapshots));
    const failed = retireAll(leaving, log);
    if (failed > 0) warnings.push(`${failed} old listeners could not be shut down (see the log)`);
    for (const s of steered.steerings) s.end();
    const counters = before && read('reading TcpExt counters', undefined, () => counterDelta(before, snapshotCounters()));
    const migrates = this.migrates(ctx.kernel);
    const counted = countCutover(lostHandoff, migrates, counters?.TCPMigrateReqFailure ?? 0);
    add(drops, migrates ? 'migration_failed' : 'closed_without_migration', counted.dropped + wait.lostToDeaths + (migrates ? 0 : halfOpen));
    if (!wait.emptied) {
      warnings.push(`drain: after ${Math.round(wait.waitedMs)} ms the old listeners still held ${lostHandoff} queued connections and up to ${halfOpen} half-open requests; they were closed${migrates ? ' (the sysctl migrates what is queued)' : ''}`);
    }
    const windows = steered.steerings.reduce((n, s) => n + s.windows, 0);
    if (windows > 0) log.debug({ windows }, `steering: ${windows} leaves with a single target left (a SYN could hash anywhere for two system calls)`);
    log.info({ generation: old.id, waitedMs: Math.round(wait.waitedMs), emptied: wait.emptied }, `old listeners of generation ${old.id} ${wait.emptied ? 'emptied' : 'reached the deadline'} after ${Math.round(wait.waitedMs)} ms and are shut down`);
    const dropped = Object.values(drops).reduce((n, v) => n + v, 0);
    return { queued, migrated: counted.migrated, dropped, drops, halfOpen, counters, warnings };
  }

  async rollback(ctx: HandoffContext): Promise<void> {
    const { old, next, log } = ctx;
    let back: Steered = { steerings: [], snapshots: [] };
    try {
      back = this.#steer(next, old);
    } catch (err) {
      log.warn({ err }, `rollback: could not steer new connections back to generation ${old.id}: ${messageOf(err)}`);
    }
    try {
      await rollbackGeneration(ctx, this.migrates(ctx.kernel));
    } finally {
      for (const s of back.steerings) s.end();
    }
  }

  release(): void {
    for (const steered of this.#steered.values()) for (const s of steered.steerings) s.end();
    this.#steered.clear();
  }

  #take(next: Generation): Steered {
    const steered = this.#steered.get(next) ?? { steerings: [], snapshots: [] };
    this.#steered.delete(next);
    return steered;
  }

  /**
   * Steers every address `to` serves and `from` listens on to `to`'s
   * listeners, and notes the half-open requests on `from`'s ports. Throws
   * (with nothing left attached) when a program cannot be attached.
   */
  #steer(from: Generation, to: Generation): Steered {
    const steerings = steerGenerations(from, to, this.groups, this.log);
    const shared = new Set(to.listeners());
    return { steerings, snapshots: captureHalfOpen(from.listeners().filter((l) => !shared.has(l) && !l.closed)) };
  }
}
