// Control socket protocol: newline-delimited JSON over a Unix stream socket.
// One request per connection; the master answers with one line. For `stop`
// the master keeps the connection open until it exits, so the client can
// wait for the close.
import { z } from 'zod';

export const ControlRequest = z.discriminatedUnion('cmd', [
  z.object({ cmd: z.literal('status') }),
  z.object({ cmd: z.literal('stop'), fast: z.boolean().default(false) }),
  z.object({ cmd: z.literal('reload'), waitDrain: z.boolean().default(false) }),
]);
export type ControlRequest = z.input<typeof ControlRequest>;
export type ParsedControlRequest = z.output<typeof ControlRequest>;

export type ControlResponse =
  | { ok: true; result: unknown }
  | { ok: false; error: string; code?: string; result?: unknown };

export const MAX_CONTROL_LINE = 64 * 1024;

// What the master answers: reload reports and status. Plain data, the same
// in the log, over the socket and in `--json` output.

export type Trigger = 'signal' | 'control' | 'watch';
/** The strategies this build can carry out; `bpf` and `drain` arrive later. */
export type EffectiveStrategy = 'migrate' | 'inherit' | 'none';
export type ReloadResult = 'ok' | 'invalid' | 'rolled_back';

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
  readonly generation: number | null;
  readonly previous: number | null;
  readonly strategy: EffectiveStrategy | null;
  readonly startedAt: string;
  /** From the request to the old listeners shut down (steps 1-5). */
  readonly durationMs: number;
  readonly queuedAtCutover: number;
  readonly migrated: number;
  readonly dropped: number;
  /** TcpExt counter deltas across the cutover (TCPMigrateReqSuccess, ...). */
  readonly counters?: Readonly<Record<string, number>>;
  readonly listeners: readonly ListenerPlan[];
  readonly warnings: readonly string[];
  drain?: DrainFigures;
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

