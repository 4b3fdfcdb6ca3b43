// Draining listeners that new SYNs no longer reach (steered away by a
// classic program under `drain`, by the eBPF map for an address whose
// protocol changed under `bpf`): their workers keep accepting until every
// accept queue is empty and every request that was half-open when the
// steering began has finished its handshake (into the queue, to be
// accepted) or expired; only then may they be shut down without loss, even
// with tcp_migrate_req=0. SYN_RECV rows in /proc carry no listener, so the
// half-open requests are followed by their 4-tuples (net/half-open.ts).
import type { Logger } from '../../log/logger.js';
import { HALF_OPEN_POLL_MS, HalfOpenSnapshot, queuedOn, type Listener } from '../../net/index.js';
import { sleep, monotonic } from '../clock.js';
import { retireAll, type Generation } from '../generation.js';

/**
 * The longest a steered drain waits for the old queues and half-open
 * requests, bounded further by the old generation's reload.drain_timeout: a
 * handshake takes a round trip, a lost final ACK the first SYN-ACK
 * retransmit (1 s) or the client's next data segment; what is still
 * half-open after this is most likely a client that went away.
 */
export const STEERED_DRAIN_MAX_MS = 10_000;

export interface EmptyWait {
  /** True when every queue and every captured half-open request was gone before the deadline. */
  readonly emptied: boolean;
  readonly waitedMs: number;
  /** Connections queued on listeners whose worker died during the wait (retired at once, nobody to accept them). */
  readonly lostToDeaths: number;
}

/** The deadline of a steered drain of `generation`'s listeners. */
export function steeredDrainMs(generation: Generation): number {
  return Math.min(generation.config.reload.drainTimeoutMs, STEERED_DRAIN_MAX_MS);
}

/** Notes the half-open requests on the ports of `listeners` now (when the steering began). */
export function captureHalfOpen(listeners: readonly Listener[]): HalfOpenSnapshot[] {
  return [...new Set(listeners.map((l) => l.port))].map((port) => HalfOpenSnapshot.capture(port));
}

/** Captured requests still half-open (an upper bound of those the listeners will lose: /proc names no listener). */
export function stillHalfOpen(snapshots: readonly HalfOpenSnapshot[]): number {
  return snapshots.reduce((n, s) => n + s.remaining().length, 0);
}

/**
 * Waits until the accept queues of `listeners` (of `generation`, whose
 * workers keep accepting) are empty and none of the requests in
 * `snapshots` is half-open any more, at most `deadlineMs`. A listener whose
 * worker dies meanwhile has nobody to accept from it: it is retired at once
 * (through its group, so the steering stays right) and what it held is
 * counted as lost.
 */
export async function waitEmptied(
  generation: Generation,
  listeners: readonly Listener[],
  snapshots: readonly HalfOpenSnapshot[],
  deadlineMs: number,
  log: Logger,
): Promise<EmptyWait> {
  const started = monotonic();
  const watched = new Set(listeners);
  let pending = [...snapshots];
  let lostToDeaths = 0;
  for (;;) {
    lostToDeaths += retireOrphans(generation, watched, log);
    pending = pending.filter((s) => s.remaining().length > 0);
    const waitedMs = monotonic() - started;
    if (pending.length === 0 && queuedOn([...watched]) === 0) return { emptied: true, waitedMs, lostToDeaths };
    if (waitedMs >= deadlineMs) return { emptied: false, waitedMs, lostToDeaths };
    await sleep(Math.min(HALF_OPEN_POLL_MS, deadlineMs - waitedMs));
  }
}

/** Retires the watched listeners of slots whose worker is gone; returns what was queued on them. */
function retireOrphans(generation: Generation, watched: Set<Listener>, log: Logger): number {
  let lost = 0;
  for (const slot of generation.slots) {
    if (slot.worker?.alive === true) continue;
    const orphans = slot.listeners.filter((l) => watched.has(l));
    if (orphans.length === 0) continue;
    let queued = 0;
    try {
      queued = queuedOn(orphans);
    } catch {
      // counting is best effort; releasing is not
    }
    log.warn({ generation: generation.id, worker: slot.index, queued }, `worker ${slot.index} of generation ${generation.id} died while its listeners drained; ${queued} queued connections had nobody to accept them`);
    retireAll(orphans, log);
    for (const l of orphans) watched.delete(l);
    lost += queued;
  }
  return lost;
}
