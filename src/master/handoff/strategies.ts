// The hand-off strategies that need no program in the kernel: `migrate`
// (the sysctl moves a shut-down listener's queue), `none` (whatever is
// queued is lost, unless the namespace's sysctl migrates it anyway) and
// `inherit` (the new generation is given the same sockets, which never
// close). `bpf` and `drain` implement the same interface.
import type { Listener } from '../../net/index.js';
import type { EffectiveStrategy, ListenerPlan } from '../../protocol/control.js';
import type { Generation } from '../generation.js';
import type { KernelState } from '../kernel-state.js';
import { rollbackGeneration, shutdownCutover } from './cutover.js';
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

  afterBoot(): void {}

  cutover(ctx: HandoffContext): Promise<CutoverFigures> {
    return shutdownCutover(ctx, this.migrates(ctx.kernel));
  }

  rollback(ctx: HandoffContext): Promise<void> {
    return rollbackGeneration(ctx, this.migrates(ctx.kernel));
  }

  onListenerGone(): void {}
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

export function strategyFor(name: EffectiveStrategy): HandoffStrategy {
  switch (name) {
    case 'migrate':
    case 'none':
      return new ShutdownStrategy(name);
    case 'inherit':
      return new InheritStrategy();
    case 'bpf':
    case 'drain':
      throw new Error(`strategy ${name} is not available in this version`);
  }
}
