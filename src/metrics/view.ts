// What the metrics read from the master, and the label values they accept.
// The master supplies a MasterView (master/metrics-view.ts builds it from its
// generations); metrics never import master/ or net/ (DESIGN.md "Layout"),
// so the view is described here by what it must answer.

// Why a worker process ended: the master's own classification (protocol/worker.ts), a bounded set usable as a label.
export { WORKER_EXIT_REASONS, type WorkerExitReason } from '../protocol/worker.js';

/**
 * Why connections were lost: a bounded set, usable as a label. The first
 * four are the reload report's own reasons (its `drops`, where the core has
 * them; a report with only `dropped` counts as closed_without_migration).
 */
export type DropReason =
  /** Queued on a listener that closed with no sibling to migrate to (strategy none with tcp_migrate_req=0, a stop). */
  | 'closed_without_migration'
  /** The kernel tried to migrate and failed (TCPMigrateReqFailure). */
  | 'migration_failed'
  /** Queued on an address the new configuration no longer has, left when it closed. */
  | 'removed_address'
  /** Queued on an address whose protocol changed (e.g. TLS switched on), left when it closed. */
  | 'protocol_changed'
  /** Dropped by the kernel on one of our listeners, mostly because its accept queue was full (SO_MEMINFO drops). */
  | 'listen_overflow'
  /** Open on an old worker when drain_timeout ran out, and cut. */
  | 'killed_at_deadline';

export const DROP_REASONS: readonly DropReason[] = [
  'closed_without_migration', 'migration_failed', 'removed_address', 'protocol_changed', 'listen_overflow', 'killed_at_deadline',
];

/** Worker states counted by handover_workers; `down` is a slot of the active generation with no live worker. */
export const WORKER_STATES = ['starting', 'ready', 'serving', 'draining', 'down'] as const;
export type WorkerStateLabel = (typeof WORKER_STATES)[number];

/** A listening socket as the master holds it (net/listener.ts Listener fits). */
export interface QueueSource {
  readonly closed: boolean;
  /** Accept-queue length and backlog (TCP_INFO), or null when not in LISTEN. */
  queue(): { readonly queued: number; readonly backlog: number } | null;
  /** Listen drops so far (SO_MEMINFO). */
  drops(): number;
}

export interface ListenerView {
  /** The address as labels show it: host:port with the port resolved. */
  readonly address: string;
  readonly socket: QueueSource;
}

export interface WorkerView {
  /** The slot index: the `worker` label (bounded by the worker count). */
  readonly slot: number;
  readonly pid: number;
  readonly state: string;
}

export interface GenerationView {
  readonly id: number;
  readonly state: string;
  /** Live workers only. */
  readonly workers: readonly WorkerView[];
  readonly listeners: readonly ListenerView[];
  /** Slots with no live worker (counted as `down` for the active generation). */
  readonly emptySlots: number;
}

export interface MasterView {
  /** Every generation that has processes or sockets: active, starting, draining. */
  generations(): readonly GenerationView[];
  /** The active generation's id, or null before the first one is active. */
  activeGeneration(): number | null;
  /** For /readyz: a generation is active and no stop has begun. */
  ready(): boolean;
  /** Certificate expiry per TLS address of the active generation. */
  certificates(): ReadonlyMap<string, Date>;
}
