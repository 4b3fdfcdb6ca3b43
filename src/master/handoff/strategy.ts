// How a reload hands the old listeners' connections to the new generation
// (DESIGN.md "Connection hand-off strategies"). The reload operation calls
// these at fixed points; the strategy, not the reload, decides when old
// workers stop accepting and when their listeners close (`drain` keeps them
// accepting until their queues are empty; `inherit` never closes them).
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
  /** Step 4: every new listener is verified in LISTEN; the old generation still serves. */
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
  /** A listener of the active generation is being released outside a reload (its worker died). */
  onListenerGone(listener: Listener): void;
}
