// A generation: N worker slots sharing one set of listener specs. Each slot
// owns its Listeners (the master's copies of the sockets its worker listens
// on: one per address, or more under `inherit` when the worker count
// shrank) and at most one live WorkerHandle at a time.
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { listenerSpec, type Listener, type ListenerSpec } from '../net/index.js';
import type { TlsMaterial } from '../tls/material.js';
import { newTicketKey } from '../tls/ticket-key.js';
import { monotonic } from './clock.js';
import type { Identity } from './identity.js';
import type { WorkerHandle } from './worker-handle.js';

export type GenerationState = 'starting' | 'active' | 'draining' | 'gone' | 'aborted';

const LEGAL: Record<GenerationState, readonly GenerationState[]> = {
  starting: ['active', 'aborted'],
  active: ['draining'],
  draining: ['gone'],
  gone: [],
  aborted: ['gone'],
};

/** The listener specs a configuration asks for, in its order. */
export function specsOf(config: Config): ListenerSpec[] {
  return config.listen.map((l) => listenerSpec({ address: l.address, backlog: l.backlog, v6only: l.v6only, tls: l.tls !== undefined }));
}

/**
 * How long a shut-down listener is kept open so that its half-open requests
 * can still migrate on their final ACK (see Listener.retire): a handshake
 * round trip, and a first SYN-ACK retransmission (1 s), fit.
 */
export const HALF_OPEN_GRACE_MS = 3_000;

/**
 * Releases `listeners` (Listener.retire), each on its own: one that fails is
 * logged and the rest are still released. Returns how many failed.
 */
export function retireAll(listeners: Iterable<Listener>, log: Logger, graceMs = HALF_OPEN_GRACE_MS): number {
  let failed = 0;
  for (const l of listeners) {
    try {
      l.retire(graceMs);
    } catch (err) {
      failed++;
      log.error({ err, address: l.address.text }, `could not release listener ${l.address.text}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return failed;
}

export class Slot {
  worker: WorkerHandle | undefined;
  /** The sockets this slot's worker listens on; empty while retired. */
  listeners: Listener[] = [];
  restarts = 0;
  /** Consecutive early deaths; reset by a worker that served long enough. */
  failures = 0;
  /** A pending restart: `until` is on the monotonic clock. */
  backoff: { timer: NodeJS.Timeout; until: number } | undefined;

  constructor(readonly index: number) {}

  /** Releases this slot's sockets, except those in `keep` (shared with another generation). */
  retireListeners(log: Logger, keep?: ReadonlySet<Listener>): void {
    const mine = this.listeners.filter((l) => !keep?.has(l));
    this.listeners = [];
    retireAll(mine, log);
  }

  cancelBackoff(): void {
    if (this.backoff) clearTimeout(this.backoff.timer);
    this.backoff = undefined;
  }
}

export class Generation {
  state: GenerationState = 'starting';
  readonly slots: Slot[];
  readonly createdAt = monotonic();
  /**
   * Listeners this generation shares with the one before it (`inherit`):
   * until the commit they still belong to the old generation, so an abort
   * must leave them alone.
   */
  readonly inherited = new Set<Listener>();

  readonly specs: readonly ListenerSpec[];
  /**
   * The session ticket key all workers of this generation share, so a client
   * resumes on any of them; in memory only. Replaced, with `tls`, by an
   * in-place certificate rotation (tls.rotate: in-place).
   */
  ticketKey: Buffer = newTicketKey();

  /** `config` (and its TLS material) is what this generation's workers run with, replacements included. */
  constructor(
    readonly id: number,
    readonly config: Config,
    readonly identity: Identity,
    public tls: ReadonlyMap<string, TlsMaterial>,
  ) {
    this.specs = specsOf(config);
    this.slots = Array.from({ length: config.workers }, (_, i) => new Slot(i));
  }

  transition(from: readonly GenerationState[], to: GenerationState): boolean {
    if (!from.includes(this.state) || !LEGAL[this.state].includes(to)) return false;
    this.state = to;
    return true;
  }

  workers(): WorkerHandle[] {
    return this.slots.flatMap((s) => (s.worker ? [s.worker] : []));
  }

  liveWorkers(): WorkerHandle[] {
    return this.workers().filter((w) => w.alive);
  }

  listeners(): Listener[] {
    return this.slots.flatMap((s) => s.listeners);
  }

  /** This generation's listeners of one address. */
  listenersOf(address: string): Listener[] {
    return this.listeners().filter((l) => l.spec.address.text === address);
  }

  /** Releases every socket this generation owns (not those it inherited: cleared at the commit). */
  retireListeners(log: Logger): void {
    for (const slot of this.slots) slot.retireListeners(log, this.inherited);
  }

  cancelBackoffs(): void {
    for (const slot of this.slots) slot.cancelBackoff();
  }
}
