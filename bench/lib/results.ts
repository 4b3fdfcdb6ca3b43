// What a run records: plain data, written as bench/results/latest.json and
// rendered into the Markdown tables and the SVG from there.
import type { Spread } from './stats.js';
import type { WrkErrors, WrkResult } from './wrk.js';

export type ByContender<T> = Record<string, T[]>;

export interface Meta {
  readonly date: string;
  readonly machine: string;
  readonly kernel: string;
  readonly node: string;
  readonly cpus: number;
  readonly pinning: string;
  readonly wrk: string;
  readonly pm2: string;
  readonly tcpMigrateReq: string;
  readonly quick: boolean;
  readonly repeats: number;
  readonly workers: number;
  readonly connections: number;
  readonly durations: Record<string, number>;
  readonly loadAverage: { start: number; end?: number };
  elapsedS?: number;
  readonly labels: Record<string, string>;
  readonly reloadHow: Record<string, string>;
}

/** The master at idle and under load (scenario 6). */
export interface MasterCost {
  readonly idleCpuPct: number;
  readonly idleRssMiB: number;
  readonly loadCpuPct: number;
  readonly loadRssMiB: number;
  /** All the contender's processes' RSS under load, MiB. */
  readonly treeRssMiB: number;
}

export interface ThroughputRun {
  readonly repeat: number;
  readonly rps: number;
  readonly latency: WrkResult['latency'];
  readonly errors: WrkErrors;
  /** CPU the contender's processes used per second of the run (1000 = one CPU). */
  readonly serverCpuMsPerS: number;
  readonly master?: MasterCost;
}

export interface ReloadMark {
  /** Epoch ms at the request, and when the caller's wait ended. */
  readonly at: number;
  readonly end: number;
  readonly ok: boolean;
  readonly error?: string;
}

/** CPU of a contender during a reload series, ms, by who spent it. */
export interface SeriesCpu {
  /** Every process of the contender's trees (master, old and new workers, reaped ones included). */
  readonly totalMs: number;
  /** The master's own share of totalMs. */
  readonly masterMs: number;
  /** Reload commands (CLI processes), on the servers' CPUs but outside their trees. */
  readonly commandMs: number;
  /** New workers' own CPU when the reload that started them ended: their start-up (up to ready; with a settle, also what they served meanwhile). */
  readonly startupMs: number;
  /** Worker processes that appeared during the series. */
  readonly workersStarted: number;
  /** The workers' CPU per request without reloads (the calm run right before): what serving costs when warm. */
  readonly calmCpuPerRequestMs: number;
}

export interface SeriesRun {
  readonly repeat: number;
  readonly calmRps: number;
  readonly calmCpuMs: number;
  readonly calmSeconds: number;
  readonly rps: number;
  readonly seconds: number;
  readonly requests: number;
  readonly errors: WrkErrors;
  readonly reloads: number;
  readonly reloadsFailed: number;
  readonly cpu: SeriesCpu;
  readonly marks: readonly ReloadMark[];
  readonly timeline: WrkResult['timeline'];
  /** The own client's pass: every failure by kind, per mode. */
  readonly kinds?: ClientRun;
}

export interface ClientMode {
  readonly ok: number;
  readonly failed: Record<string, number>;
  /** [bucket start epoch ms, ok, reset, refused, eof, timeout, non2xx, other] */
  readonly timeline: readonly number[][];
}

export interface ClientRun {
  readonly startedAt: number;
  readonly elapsedMs: number;
  readonly bucketMs: number;
  readonly kinds: readonly string[];
  readonly modes: Record<'keepalive' | 'newconn', ClientMode>;
  readonly marks: readonly ReloadMark[];
  readonly reloads: number;
}

export interface TlsRun {
  readonly repeat: number;
  readonly rotations: number;
  readonly rotationsFailed: number;
  readonly how: string;
  /** Whether the certificate served after the series is the last one written. */
  readonly servesLast: boolean;
  readonly kinds: ClientRun;
}

export interface TlsResults {
  readonly mode: 'skipped' | 'manual' | 'watch';
  readonly note: string;
  readonly runs: ByContender<TlsRun>;
}

export interface DurationSamples {
  /** handover: per reload; others: wallMs only. */
  readonly wallMs: number[];
  readonly durationMs: number[];
  readonly settleMs: number[];
  readonly commandCpuMs: number[];
  failed: number;
  /** Per repeat: p50 of wallMs, for the spread. */
  readonly repeatP50: number[];
}

export interface DurationResults {
  /** Key: a configuration, e.g. "handover-migrate settle 0s". */
  readonly configs: Record<string, DurationSamples>;
  /** A handover worker alone (dist/worker/main.js, confined as the master starts it): spawn to `ready`. */
  readonly bareWorkerMs: number[];
  /** Its CPU from spawn to `ready`. */
  readonly bareWorkerCpuMs: number[];
  /** `generationWorkers` handover workers spawned at once, as a reload spawns them: spawn to the last `ready`. Absent in older results. */
  readonly generationMs?: number[];
  readonly generationWorkers?: number;
  /** A bare SO_REUSEPORT process: spawn to listening. */
  readonly reuseportMs: number[];
  /** The effective `reload.settle` default of the build. */
  readonly settleDefault: string;
  /** The servers could use every CPU (no load generator runs in this scenario); absent in older results, which pinned them. */
  readonly unpinned?: boolean;
}

export interface CliResults {
  /** Command label -> samples. */
  readonly wallMs: Record<string, number[]>;
  readonly cpuMs: Record<string, number[]>;
  /** Module -> in-process import cost samples (fresh process each). */
  readonly imports: Record<string, { wallMs: number[]; cpuMs: number[] }>;
}

export interface Check {
  readonly what: string;
  readonly value: string;
  readonly target: string;
  readonly met: boolean | null;
}

/** Two contenders loaded at once (bench/scenarios/pairs.ts). */
export interface PairResult {
  readonly a: string;
  readonly b: string;
  readonly mode: 'keepalive' | 'newconn';
  /** Per round: a's rate ÷ b's, measured over the same seconds. */
  readonly ratio: Spread;
  readonly rps: { readonly a: readonly number[]; readonly b: readonly number[] };
  /** Per round: a's server CPU ÷ b's (1 when the groups split the CPU evenly). */
  readonly cpuShare: Spread;
  readonly errors: number;
}

export interface Results {
  readonly meta: Meta;
  throughput: { keepalive: ByContender<ThroughputRun>; newconn: ByContender<ThroughputRun> };
  /** Head to head; absent in results from before it was part of the run. */
  pairs?: PairResult[];
  reloadSeries: ByContender<SeriesRun>;
  tls?: TlsResults;
  duration?: DurationResults;
  cli?: CliResults;
  checks: Check[];
  errors: string[];
  /** What contenders reported as wrong during a measurement (log warnings, restarted workers). */
  notes: string[];
}

export function push<T>(by: ByContender<T>, id: string, value: T): void {
  (by[id] ??= []).push(value);
}
