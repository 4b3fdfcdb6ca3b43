// The steps the strategies share: tell old workers to stop accepting, shut
// the handed-off listeners down (the kernel migrates their queues, or not),
// let old workers accept what is queued on listeners that have nobody to
// hand to (an address removed, or its protocol changed), and roll a new
// generation back without cutting what it already accepted.
import type { Logger } from '../../log/logger.js';
import { counterDelta, snapshotCounters, type CounterSnapshot } from '../../metrics/kernel.js';
import { countSynRecv, queuedOn, type Listener } from '../../net/index.js';
import type { DropReason, ListenerPlan } from '../../protocol/control.js';
import { pollUntil } from '../clock.js';
import { retireAll, type Generation } from '../generation.js';
import { countCutover } from '../reload-plan.js';
import { exitedOrKilled, type WorkerHandle } from '../worker-handle.js';
import type { CutoverFigures, HandoffContext } from './strategy.js';
import { messageOf } from '../errors.js';

/** How long workers get to acknowledge "stop accepting" before the master shuts their listeners anyway. */
export const DRAIN_ACK_TIMEOUT_MS = 1_000;
/** Grace after a drain deadline before a worker that did not exit is killed. */
export const KILL_GRACE_MS = 2_000;
/** How long workers get to accept what is queued on a listener nobody takes over, before it closes. */
export const ACCEPT_QUEUE_WAIT_MS = 1_000;
const QUEUE_POLL_MS = 10;

/** Runs `fn`; on a throw, records a warning and returns `fallback` (after the commit nothing may throw). */
function attempt<T>(warnings: string[], log: Logger, what: string, fallback: T, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    warnings.push(`${what}: ${messageOf(err)}`);
    log.error({ err }, `${what} failed: ${messageOf(err)}`);
    return fallback;
  }
}

/** Addresses whose old listeners nobody takes over: removed, or their protocol changed. */
function acceptedFirst(plans: readonly ListenerPlan[]): ListenerPlan[] {
  return plans.filter((p) => p.action === 'close' || p.action === 'replace');
}

function add(drops: Partial<Record<DropReason, number>>, reason: DropReason, n: number): void {
  if (n > 0) drops[reason] = (drops[reason] ?? 0) + n;
}

/**
 * How old workers take what is queued on the listeners of an address nobody
 * takes over (removed, or its protocol changed) before they close; resolves
 * with how many connections were still queued (or half-open) at the close.
 */
export type KeptHandler = (
  plan: ListenerPlan,
  listeners: readonly Listener[],
  workers: readonly WorkerHandle[],
  log: Logger,
  warnings: string[],
) => Promise<number>;

export interface CutoverOptions {
  /** Default: acceptThenClose (the accept queue, within ACCEPT_QUEUE_WAIT_MS). */
  readonly acceptKept?: KeptHandler;
  /** What still migrates off a listener whose protocol changed is refused by the strategy, never served by the other protocol. */
  readonly refusesOtherProtocol?: boolean;
}

/**
 * Step 5 for strategies that retire old listeners with shutdown(2)
 * (`migrate`, `none`, `bpf`; `inherit`, whose handed-off listeners the new
 * generation shares and which therefore retires none of them).
 */
export async function shutdownCutover(ctx: HandoffContext, migrates: boolean, options: CutoverOptions = {}): Promise<CutoverFigures> {
  const { old, next, plans, log } = ctx;
  const warnings: string[] = [];
  const keep = acceptedFirst(plans);
  const kept = new Set(keep.map((p) => p.address));
  const workers = old.liveWorkers();
  const before = attempt<CounterSnapshot | undefined>(warnings, log, 'reading TcpExt counters', undefined, snapshotCounters);
  await Promise.all(workers.map((w) => w.drain(old.config.reload.drainTimeoutMs, DRAIN_ACK_TIMEOUT_MS, [...kept])));

  const handing = old.listeners().filter((l) => !next.inherited.has(l) && !kept.has(l.spec.address.text));
  const queued = attempt(warnings, log, 'reading accept queues', 0, () => queuedOn(handing));
  // Without migration, half-open requests die with their listener too; /proc
  // cannot tell whose they are, so this is an upper bound (DESIGN.md).
  const halfOpen =
    migrates || handing.length === 0
      ? 0
      : attempt(warnings, log, 'counting half-open requests', 0, () => [...new Set(handing.map((l) => l.port))].reduce((n, port) => n + countSynRecv(port), 0));
  const failed = retireAll(handing, log);
  if (failed > 0) warnings.push(`${failed} old listeners could not be shut down (see the log)`);
  const counters = before && attempt(warnings, log, 'reading TcpExt counters', undefined, () => counterDelta(before, snapshotCounters()));
  const counted = countCutover(queued, migrates, counters?.TCPMigrateReqFailure ?? 0);
  const drops: Partial<Record<DropReason, number>> = {};
  add(drops, migrates ? 'migration_failed' : 'closed_without_migration', counted.dropped + halfOpen);

  const acceptKept = options.acceptKept ?? acceptThenClose;
  for (const plan of keep) {
    const lost = await acceptKept(plan, old.listenersOf(plan.address), workers, log, warnings);
    add(drops, plan.action === 'close' ? 'removed_address' : 'protocol_changed', lost);
    if (plan.action === 'replace' && lost > 0 && migrates && options.refusesOtherProtocol !== true) {
      warnings.push(`${plan.address}: ${lost} connections still queued on the old listener were migrated into the new listener of another protocol and will fail`);
    }
  }
  const dropped = Object.values(drops).reduce((n, v) => n + v, 0);
  return { queued, migrated: counted.migrated, dropped, drops, halfOpen, counters, warnings };
}

/**
 * An old listener nobody takes over: its workers (still accepting on it)
 * take what is queued, within ACCEPT_QUEUE_WAIT_MS; then they stop and it
 * closes. Returns how many connections were still queued at that point.
 */
export async function acceptThenClose(
  plan: ListenerPlan,
  listeners: readonly Listener[],
  workers: readonly WorkerHandle[],
  log: Logger,
  warnings: string[],
): Promise<number> {
  if (listeners.length === 0) return 0;
  const address = plan.address;
  const why = plan.action === 'close' ? 'removed' : 'protocol changed';
  const queued = (): number => attempt(warnings, log, `reading the accept queue of ${address}`, 0, () => queuedOn(listeners));
  log.info({ address, queued: queued() }, `old workers accept what is queued on ${address} (${why}) before it closes`);
  await pollUntil(() => queued() === 0, ACCEPT_QUEUE_WAIT_MS, QUEUE_POLL_MS);
  await Promise.all(workers.map((w) => w.close([address], DRAIN_ACK_TIMEOUT_MS)));
  const lost = queued();
  retireAll(listeners, log);
  return lost;
}

/**
 * Rolls `ctx.next` back. Workers that never reported ready have accepted
 * nothing: they are killed. Ready ones have served since their listeners
 * entered LISTEN: with migration their listeners are shut down (the queues
 * move back to the old generation); without it they accept their queues
 * first. They then drain like an old generation (the caller waits for that).
 */
export async function rollbackGeneration(ctx: HandoffContext, migrates: boolean): Promise<void> {
  const { next, log } = ctx;
  next.cancelBackoffs();
  const live = next.liveWorkers();
  // A starting worker holds copies of the new listeners: they stay in the
  // reuseport group (taking SYNs) until the process is gone, so wait for it.
  const starting = live.filter((w) => w.state === 'starting');
  const gone = exitedOrKilled(starting, 0, () => {}, (w) => log.warn(`worker ${w.index} (${w.who}) did not exit on SIGKILL: its copies of the new listeners stay open until it does`));
  const served = live.filter((w) => w.state !== 'starting');
  const own = next.listeners().filter((l) => !next.inherited.has(l));
  const drainMs = next.config.reload.drainTimeoutMs;
  if (!migrates && own.length > 0 && served.length > 0) {
    const addresses = [...new Set(own.map((l) => l.spec.address.text))];
    await Promise.all(served.map((w) => w.drain(drainMs, DRAIN_ACK_TIMEOUT_MS, addresses)));
    await pollUntil(() => queuedOn(own) === 0, ACCEPT_QUEUE_WAIT_MS, QUEUE_POLL_MS);
    await Promise.all(served.map((w) => w.close(addresses, DRAIN_ACK_TIMEOUT_MS)));
  } else {
    await Promise.all(served.map((w) => w.drain(drainMs, DRAIN_ACK_TIMEOUT_MS)));
  }
  await gone;
  retireAll(own, log);
  for (const slot of next.slots) slot.listeners = [];
}
