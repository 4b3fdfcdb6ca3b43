// Control socket protocol: newline-delimited JSON over a Unix stream socket.
// One request per connection; the master answers with one line. For `stop`
// the master keeps the connection open until it exits, so the client can
// wait for the close.
//
// The request types are written out here and checked against their zod
// schema in control-request.ts, so that this file (and the package's
// declarations, which re-export the report and status types) needs no zod.
import type { ServedCertificate } from './tls.js';

export type ControlRequest =
  | { cmd: 'status' }
  | { cmd: 'stop'; fast?: boolean | undefined }
  | { cmd: 'reload'; waitDrain?: boolean | undefined };
/** A request as the master sees it once validated: defaults filled in. */
export type ParsedControlRequest =
  | { cmd: 'status' }
  | { cmd: 'stop'; fast: boolean }
  | { cmd: 'reload'; waitDrain: boolean };

export type ControlResponse =
  | { ok: true; result: unknown }
  | { ok: false; error: string; code?: string; result?: unknown };

export const MAX_CONTROL_LINE = 64 * 1024;

// What the master answers: reload reports and status. Plain data, the same
// in the log, over the socket and in `--json` output.

/** `watch`: the configuration file changed; `tls`: only certificate, key or CA files did. */
export type Trigger = 'signal' | 'control' | 'watch' | 'tls';
/** A strategy as carried out (`auto` resolved). */
export type EffectiveStrategy = 'bpf' | 'migrate' | 'drain' | 'inherit' | 'none';
/**
 * `ok`: the new generation serves; `invalid`: the configuration or TLS files
 * were refused, nothing changed; `rolled_back`: the new generation failed
 * before the commit and the old one serves on; `refused`: the master could
 * not take a reload at all (see `refusal`).
 */
export type ReloadResult = 'ok' | 'invalid' | 'rolled_back' | 'refused';
/**
 * `unsupported`: the configured reload.strategy is one this host cannot do
 * (the reason says what it lacks); `resources`: the master ran out of
 * descriptors or memory reading the configuration or its files, which may be
 * fine (the reason names the file and the errno).
 */
export type RefusalReason = 'stopping' | 'not_serving' | 'unsupported' | 'resources';

/**
 * Why connections counted in `dropped` were lost: reset because the kernel
 * had no migration for them, migration that found no listener, an address
 * the new configuration removed, or a listener whose protocol changed.
 */
export type DropReason = 'closed_without_migration' | 'migration_failed' | 'removed_address' | 'protocol_changed';

/**
 * Per address: `handoff` (same spec: the strategy moves the queue), `open`
 * (new address), `close` (address removed), `replace` (protocol changed, e.g.
 * TLS switched on: not migrated into the incompatible listener on purpose).
 */
export type ListenerAction = 'handoff' | 'open' | 'close' | 'replace';

export interface ListenerPlan {
  readonly address: string;
  readonly action: ListenerAction;
  /** For `handoff` under `inherit`: the new generation takes the old sockets. */
  readonly inherit: boolean;
}

export interface DrainFigures {
  /** Connections the old workers had open when they stopped accepting. */
  readonly drained: number;
  /** Connections cut at drain_timeout, plus workers the master had to kill. */
  readonly killed: number;
  readonly durationMs: number;
}

export interface ReloadReport {
  readonly id: number;
  readonly trigger: Trigger;
  readonly result: ReloadResult;
  readonly reason?: string;
  /** For `refused`: why, as a bounded value. */
  readonly refusal?: RefusalReason;
  readonly generation: number | null;
  readonly previous: number | null;
  readonly strategy: EffectiveStrategy | null;
  readonly startedAt: string;
  /** From the request to the old listeners shut down (steps 1-5), without the settle. */
  readonly durationMs: number;
  /** How long both generations served while the new one settled (reload.settle). */
  readonly settleMs: number;
  /** Connections in the old listeners' accept queues just before the cutover. */
  readonly queuedAtCutover: number;
  readonly migrated: number;
  readonly dropped: number;
  /** `dropped`, by reason (only reasons that occurred). */
  readonly drops: Readonly<Partial<Record<DropReason, number>>>;
  /**
   * Half-open requests (SYN_RECV) on the port when old listeners closed
   * without migration: an upper bound, since /proc does not say which
   * listener a request belongs to. Included in `dropped`.
   */
  readonly halfOpenAtCutover?: { readonly count: number; readonly upperBound: true };
  /** TcpExt counter deltas across the cutover (TCPMigrateReqSuccess, ...). */
  readonly counters?: Readonly<Record<string, number>>;
  readonly listeners: readonly ListenerPlan[];
  readonly warnings: readonly string[];
  /** When the configuration has TLS addresses: how certificates were applied, and what is served now. */
  readonly tls?: ReloadTls;
  drain?: DrainFigures;
}

export interface ReloadTls {
  /** `new-generation` (a reload like any other) or `in-place` (setSecureContext in the running workers). */
  readonly rotate: 'new-generation' | 'in-place';
  readonly certificates: readonly ServedCertificate[];
}

export interface WorkerStatus {
  readonly index: number;
  readonly pid: number | null;
  readonly state: string;
  readonly uptimeMs: number;
  readonly restarts: number;
  readonly nextAttemptInMs?: number;
  /** CPU time (user + system) of the live worker process, seconds (/proc/<pid>/stat). */
  readonly cpuSeconds?: number;
  /** Resident memory of the live worker process, bytes (/proc/<pid>/statm). */
  readonly rssBytes?: number;
}

export interface GenerationStatus {
  readonly generation: number;
  readonly state: string;
  readonly workers: readonly WorkerStatus[];
}

export interface MasterStatus {
  readonly pid: number;
  readonly config: string;
  readonly uptimeMs: number;
  readonly state: 'running' | 'stopping';
  readonly generation: number | null;
  readonly strategy: string;
  readonly reloading: boolean;
  readonly listen: readonly string[];
  readonly generations: readonly GenerationStatus[];
  readonly reloads: readonly ReloadReport[];
}

