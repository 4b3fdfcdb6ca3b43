// How a reload hands the old listeners' connections to the new generation
// (DESIGN.md "Connection hand-off strategies"). The reload operation calls
// these at fixed points; the strategy, not the reload, decides when old
// workers stop accepting and when their listeners close (`drain` keeps them
// accepting until their queues are empty; `inherit` never closes them).
// One instance per strategy lives as long as the master (`bpf` keeps a
// program per reuseport group across reloads). A listener that leaves
// outside a reload (a dead worker's) needs no call here: its reuseport group
// tells whatever steers it (net/reuseport-group.ts, GroupSteering).
import type { Logger } from '../../log/logger.js';
import type { CounterSnapshot } from '../../metrics/kernel.js';
import type { Listener } from '../../net/index.js';
import type { DropReason, EffectiveStrategy, ListenerPlan } from '../../protocol/control.js';
import type { Generation } from '../generation.js';
import type { KernelState } from '../kernel-state.js';

export interface HandoffContext {
  readonly log: Logger;
  /** The generation serving until the commit. */
  readonly old: Generation;
  /** The generation being built (or rolled back). */
  readonly next: Generation;
  readonly plans: readonly ListenerPlan[];
  readonly kernel: KernelState;
}

/** What a cutover did, counted from the queue snapshots (FACTS.md: not from TcpExt). */
export interface CutoverFigures {
  /** Accept-queue lengths of the old listeners that were shut down, just before. */
  readonly queued: number;
  readonly migrated: number;
  readonly dropped: number;
  readonly drops: Readonly<Partial<Record<DropReason, number>>>;
  /** SYN_RECV rows on the ports of listeners closed without migration (an upper bound). */
  readonly halfOpen: number;
  /** TcpExt deltas across the cutover, a cross-check (namespace-wide). */
  readonly counters: CounterSnapshot | undefined;
  /** Anything that went wrong after the commit point: reported, never thrown. */
  readonly warnings: readonly string[];
}

export interface HandoffStrategy {
  readonly name: EffectiveStrategy;
  /**
   * Whether the kernel moves a shut-down listener's queue to its siblings
   * under this strategy (a dead worker's socket may then be retired at once).
   */
  migrates(kernel: KernelState): boolean;
  /**
   * Step 2: per address, the old listeners the new generation takes over
   * (`inherit`), spread over its slots; an address not in the map gets
   * fresh sockets.
   */
  prepare(old: Generation, plans: readonly ListenerPlan[]): Map<string, readonly Listener[]>;
  /**
   * Start-up, once the first generation listens: the strategy takes charge
   * of its reuseport groups (`bpf` attaches its programs). Also called to
   * take them back after a reload that would have switched strategies
   * failed. Throws when it cannot (the start fails).
   */
  start(active: Generation): void;
  /**
   * Step 4: every new listener is verified in LISTEN, the settle is over;
   * the old generation still serves. A throw rolls the reload back.
   */
  afterBoot(ctx: HandoffContext): void;
  /** Step 5: the old workers stop accepting and the old listeners are released. Never throws. */
  cutover(ctx: HandoffContext): Promise<CutoverFigures>;
  /**
   * A new generation that may already have served is rolled back: what
   * queued on its listeners goes back to the old generation (or is accepted
   * by the new workers first), then they drain like an old generation.
   * Resolves once its listeners are released; the drain goes on after.
   */
  rollback(ctx: HandoffContext): Promise<void>;
  /**
   * The strategy stops being the one in force (a reload switches to another,
   * just before the other's afterBoot, or the master stops): it takes its
   * programs off the groups and releases them. Never throws.
   */
  release(): void;
}
