// The hand-off strategies that need no eBPF program: `migrate` (the sysctl
// moves a shut-down listener's queue; a classic BPF program keeps new
// handshakes off the old listeners for the cutover), `none` (whatever is
// queued is lost, unless the namespace's sysctl migrates it anyway) and
// `inherit` (the new generation is given the same sockets, which never
// close); and the master's one instance of each strategy, `bpf`
// (bpf-strategy.ts) and `drain` (drain-strategy.ts) included.
import type { Logger } from '../../log/logger.js';
import type { Listener } from '../../net/index.js';
import type { EffectiveStrategy, ListenerPlan } from '../../protocol/control.js';
import { monotonic, sleep } from '../clock.js';
import type { Generation } from '../generation.js';
import type { KernelState } from '../kernel-state.js';
import type { Groups } from '../spawn.js';
import { BpfStrategy } from './bpf-strategy.js';
import { steerGenerations, type ClassicSteering } from './classic-steering.js';
import { rollbackGeneration, shutdownCutover } from './cutover.js';
import { DrainStrategy } from './drain-strategy.js';
import type { CutoverFigures, HandoffContext, HandoffStrategy } from './strategy.js';

/** The sysctl applies to every strategy that closes listeners, whatever it is called. */
const sysctlMigrates = (kernel: KernelState): boolean => kernel.tcpMigrateReq === 1;

class ShutdownStrategy implements HandoffStrategy {
  constructor(readonly name: EffectiveStrategy) {}

  migrates(kernel: KernelState): boolean {
    return sysctlMigrates(kernel);
  }

  prepare(_old: Generation, _plans: readonly ListenerPlan[]): Map<string, readonly Listener[]> {
    return new Map();
  }

  start(): void {}

  afterBoot(_ctx: HandoffContext): void {}

  cutover(ctx: HandoffContext): Promise<CutoverFigures> {
    return shutdownCutover(ctx, this.migrates(ctx.kernel));
  }

  rollback(ctx: HandoffContext): Promise<void> {
    return rollbackGeneration(ctx, this.migrates(ctx.kernel));
  }

  release(): void {}
}

/**
 * The least time from the steering to the old listeners' shutdown: longer
 * than a handshake on a loopback or a LAN (measured on loopback: a 1 ms
 * lead took the resets from 30 in 12,000 shutdowns to none).
 */
export const STEER_LEAD_MS = 5;

/**
 * `migrate`. The sysctl moves what is queued on a shut-down listener, but a
 * handshake that completes on it while it is being shut down is reset, and
 * no counter says so (the kernel checks that the listener is in LISTEN, then
 * queues the new connection; a shutdown in between makes it forget the
 * connection: inet_child_forget -> RST. Measured: 1 to 1.5 connections in
 * 100,000 at a high rate of shutdowns, TcpExtTCPMigrateReqFailure at 0;
 * README, "Kernel"). So from the end of the settle to the end of the
 * cutover a classic BPF program (no privilege needed) sends every new SYN
 * to the new generation: by the time the old workers have acknowledged the
 * drain, no handshake is left on the old listeners (at least
 * STEER_LEAD_MS after the steering began: with the shutdown right after the
 * program the handshakes already under way still complete on the old
 * listener, and are reset as often as without it). Where the program
 * cannot be attached the reload goes on without it (a warning).
 */
class MigrateStrategy extends ShutdownStrategy {
  readonly #steered = new Map<Generation, { readonly steerings: readonly ClassicSteering[]; readonly at: number }>();

  constructor(
    private readonly groups: Groups,
    private readonly log: Logger,
  ) {
    super('migrate');
  }

  override afterBoot(ctx: HandoffContext): void {
    try {
      const steerings = steerGenerations(ctx.old, ctx.next, this.groups, this.log);
      this.#steered.set(ctx.next, { steerings, at: monotonic() });
      if (steerings.length > 0) ctx.log.info({ generation: ctx.next.id }, `migrate: new connections go to generation ${ctx.next.id} from now on; the old listeners are shut down once their workers stop accepting`);
    } catch (err) {
      ctx.log.warn({ err }, `migrate: new connections could not be steered to generation ${ctx.next.id} before the cutover (${err instanceof Error ? err.message : String(err)}); a handshake completing on an old listener as it is shut down may be reset`);
    }
  }

  override async cutover(ctx: HandoffContext): Promise<CutoverFigures> {
    try {
      const at = this.#steered.get(ctx.next)?.at;
      if (at !== undefined) await sleep(Math.max(0, at + STEER_LEAD_MS - monotonic()));
      return await super.cutover(ctx);
    } finally {
      this.#end(ctx.next);
    }
  }

  override rollback(ctx: HandoffContext): Promise<void> {
    this.#end(ctx.next);
    return super.rollback(ctx);
  }

  override release(): void {
    for (const next of [...this.#steered.keys()]) this.#end(next);
  }

  #end(next: Generation): void {
    for (const s of this.#steered.get(next)?.steerings ?? []) s.end();
    this.#steered.delete(next);
  }
}

/**
 * Every old socket of an unchanged address goes to the new generation,
 * surplus ones included (a worker may listen on several sockets of one
 * address): closing a surplus socket under load, without steering, resets
 * what hashed to it meanwhile. The `drain` strategy can retire them.
 */
class InheritStrategy extends ShutdownStrategy {
  constructor() {
    super('inherit');
  }

  override prepare(old: Generation, plans: readonly ListenerPlan[]): Map<string, readonly Listener[]> {
    const map = new Map<string, readonly Listener[]>();
    for (const plan of plans) {
      if (!plan.inherit) continue;
      map.set(plan.address, old.listenersOf(plan.address).filter((l) => !l.retiring));
    }
    return map;
  }
}

function make(name: EffectiveStrategy, groups: Groups, log: Logger): HandoffStrategy {
  switch (name) {
    case 'migrate':
      return new MigrateStrategy(groups, log);
    case 'none':
      return new ShutdownStrategy(name);
    case 'inherit':
      return new InheritStrategy();
    case 'bpf':
      return new BpfStrategy(groups, log);
    case 'drain':
      return new DrainStrategy(groups, log);
  }
}

/** One instance of each strategy for the master's life: `bpf` keeps its programs across reloads. */
export class Strategies {
  readonly #made = new Map<EffectiveStrategy, HandoffStrategy>();

  constructor(
    private readonly groups: Groups,
    private readonly log: Logger,
  ) {}

  get(name: EffectiveStrategy): HandoffStrategy {
    let strategy = this.#made.get(name);
    if (!strategy) {
      strategy = make(name, this.groups, this.log);
      this.#made.set(name, strategy);
    }
    return strategy;
  }

  /** Releases whatever every strategy holds (the master exits). */
  release(): void {
    for (const s of this.#made.values()) s.release();
  }
}
