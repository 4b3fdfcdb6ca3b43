// `bpf`: an eBPF select-or-migrate program per reuseport group
// (program-steering.ts) whose map holds the listeners that should get new
// SYNs. While a new generation boots and settles its listeners join the
// map beside the old ones (both serve); once it is ready the map holds it
// alone, and the cutover shuts the old listeners down: their queues and
// half-open requests migrate, by the program, to the new generation only
// (never twice, never onto an old listener about to close), whatever
// net.ipv4.tcp_migrate_req says. An address whose protocol changed (TLS
// switched on or off) is steered away from in drop mode: its old workers
// accept their queue and half-open requests (steered-drain.ts), and what
// still migrates at the deadline is refused and counted, never served by
// the other protocol.
import type { HalfOpenSnapshot, Listener } from '../../net/index.js';
import type { Logger } from '../../log/logger.js';
import { queuedOn, type ReuseportGroup } from '../../net/index.js';
import type { ListenerPlan } from '../../protocol/control.js';
import { retireAll, type Generation } from '../generation.js';
import type { Groups } from '../spawn.js';
import type { WorkerHandle } from '../worker-handle.js';
import { acceptThenClose, DRAIN_ACK_TIMEOUT_MS, rollbackGeneration, shutdownCutover } from './cutover.js';
import { ProgramSteering } from './program-steering.js';
import { captureHalfOpen, steeredDrainMs, stillHalfOpen, waitEmptied } from './steered-drain.js';
import type { CutoverFigures, HandoffContext, HandoffStrategy } from './strategy.js';
import { messageOf } from '../errors.js';

export class BpfStrategy implements HandoffStrategy {
  readonly name = 'bpf';
  readonly #programs = new Map<ReuseportGroup, ProgramSteering>();
  /** Per generation being handed to: half-open requests on the ports of addresses whose protocol changed, when it was steered to. */
  readonly #replaced = new Map<Generation, readonly HalfOpenSnapshot[]>();

  constructor(
    private readonly groups: Groups,
    private readonly log: Logger,
  ) {}

  /** The program moves a shut-down listener's queue to the map's listeners whatever the sysctl says. */
  migrates(): boolean {
    return true;
  }

  prepare(): Map<string, readonly Listener[]> {
    return new Map();
  }

  start(active: Generation): void {
    for (const spec of active.specs) this.#activate(spec.address.text, active.listenersOf(spec.address.text), 'select');
  }

  afterBoot(ctx: HandoffContext): void {
    const { old, next, plans } = ctx;
    for (const plan of plans) {
      if (plan.action === 'close') continue; // nobody to steer to: its old workers accept what is queued (acceptThenClose)
      this.#activate(plan.address, next.listenersOf(plan.address), plan.action === 'replace' ? 'drop' : 'select');
    }
    const replaced = plans.filter((p) => p.action === 'replace').flatMap((p) => old.listenersOf(p.address));
    this.#replaced.set(next, captureHalfOpen(replaced.filter((l) => !l.closed)));
  }

  async cutover(ctx: HandoffContext): Promise<CutoverFigures> {
    const snapshots = this.#replaced.get(ctx.next) ?? [];
    this.#replaced.delete(ctx.next);
    const before = this.#counters();
    const figures = await shutdownCutover(ctx, true, {
      refusesOtherProtocol: true,
      acceptKept: (plan, listeners, workers, log, warnings) =>
        plan.action === 'replace'
          ? this.#drainReplaced(ctx.old, plan, listeners, workers, snapshots, log)
          : acceptThenClose(plan, listeners, workers, log, warnings),
    });
    for (const plan of ctx.plans) {
      if (plan.action !== 'replace') continue;
      const group = this.groups.get(plan.address);
      if (group) this.#programs.get(group)?.select();
    }
    const after = this.#counters();
    this.log.info(
      { generation: ctx.next.id, migrated: after.migrated - before.migrated, dropped: after.dropped - before.dropped, fallback: after.fallback - before.fallback },
      'bpf: connections moved by the reuseport programs during the cutover',
    );
    return figures;
  }

  async rollback(ctx: HandoffContext): Promise<void> {
    // The old generation alone in the maps first, so that what queued on the new listeners moves straight back.
    for (const [group, steering] of this.#programs) {
      try {
        steering.activate(ctx.old.listenersOf(group.address.text).filter((l) => !l.retiring), 'select');
      } catch (err) {
        ctx.log.error({ err }, `rollback: bpf ${group.address.text}: ${messageOf(err)}`);
      }
    }
    await rollbackGeneration(ctx, true);
  }

  release(): void {
    for (const steering of this.#programs.values()) steering.release();
    this.#programs.clear();
    this.#replaced.clear();
  }

  #activate(address: string, listeners: readonly Listener[], mode: 'select' | 'drop'): void {
    const group = this.groups.get(address);
    if (!group) throw new Error(`bpf: no reuseport group for ${address}`);
    let steering = this.#programs.get(group);
    if (!steering) {
      steering = ProgramSteering.load(group, this.log, (gone) => {
        if (this.#programs.get(gone.group) === gone) this.#programs.delete(gone.group);
      });
      this.#programs.set(group, steering);
    }
    steering.activate(listeners, mode);
  }

  #counters(): { migrated: number; dropped: number; fallback: number } {
    const sum = { migrated: 0, dropped: 0, fallback: 0 };
    for (const s of this.#programs.values()) {
      const c = s.counters();
      sum.migrated += c.migrated;
      sum.dropped += c.dropped;
      sum.fallback += c.fallback;
    }
    return sum;
  }

  /**
   * An address whose protocol changed: new SYNs already go to the new
   * listeners only (drop mode); the old workers, still accepting on it,
   * take their queue and the requests half-open since, within the steered
   * drain's deadline; then they stop and the listeners are shut down (what
   * still migrates is refused by the program). Returns what was lost.
   */
  async #drainReplaced(
    old: Generation, plan: ListenerPlan, listeners: readonly Listener[], workers: readonly WorkerHandle[],
    snapshots: readonly HalfOpenSnapshot[], log: Logger,
  ): Promise<number> {
    if (listeners.length === 0) return 0;
    const ports = new Set(listeners.map((l) => l.port));
    const mine = snapshots.filter((s) => ports.has(s.port));
    log.info({ address: plan.address, queued: queuedOn(listeners) }, `old workers accept what is queued on ${plan.address} (protocol changed) before it closes; new connections go to the new listeners`);
    const wait = await waitEmptied(old, listeners, mine, steeredDrainMs(old), log);
    await Promise.all(workers.map((w) => w.close([plan.address], DRAIN_ACK_TIMEOUT_MS)));
    const lost = queuedOn(listeners) + (wait.emptied ? 0 : stillHalfOpen(mine)) + wait.lostToDeaths;
    retireAll(listeners, log);
    return lost;
  }
}
