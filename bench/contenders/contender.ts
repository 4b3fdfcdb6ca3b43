// What every contender offers the scenarios: start serving the bench app on
// a port with N workers, reload (if it can), name the processes whose CPU
// and memory count, and stop. Reload figures are what the caller sees.
import { fileURLToPath } from 'node:url';
import type { Box } from '../lib/box.js';
import { CLK_TCK, descendants, ProcessSet } from '../lib/procfs.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SERVERS = fileURLToPath(new URL('../servers/', import.meta.url));

/** Deadlines of the contenders' own processes. */
export const START_TIMEOUT_MS = 30_000;
export const RELOAD_TIMEOUT_MS = 60_000;
export const STOP_GRACE_MS = 5_000;

export interface ReloadTiming {
  readonly ok: boolean;
  /** From the request (command started, signal sent) to done as the caller sees it. */
  readonly wallMs: number;
  /** CPU of the reload command itself (a CLI process), when there is one. */
  readonly commandCpuMs?: number;
  /** handover's report: request to old listeners shut down. */
  readonly durationMs?: number;
  /** handover's report, once it has the field. */
  readonly settleMs?: number;
  readonly error?: string;
}

export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
}

export interface ContenderOptions {
  readonly port: number;
  readonly workers: number;
  readonly tls?: TlsFiles;
  /** handover only: `reload.settle` (omitted: the default). */
  readonly settle?: string;
  /** handover only: let the master watch the certificate files (TLS rotation by file change). */
  readonly watchTls?: boolean;
  /** handover only: a metrics endpoint (`metrics.listen` on a port of the kernel's choice), so its workers count responses. */
  readonly metrics?: boolean;
}

export interface Contender {
  readonly id: string;
  readonly label: string;
  readonly options: ContenderOptions;
  /** How a reload is asked for, for the tables; null when the contender cannot reload. */
  readonly reloadHow: string | null;
  start(): Promise<void>;
  reload(): Promise<ReloadTiming>;
  /** The supervising process (S6), if there is one. */
  masterPid(): number | undefined;
  /** Roots of the server-side process trees (CPU accounting). */
  roots(): number[];
  /** What the contender itself reported as wrong since the last call (warnings in its log, restarted workers). */
  notes(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * Runs a command (a CLI) to its end through `sh`, which prints its own
 * /proc stat afterwards: the shell's cutime + cstime are then exactly the
 * command's CPU, children included, with no tool beyond sh and cat.
 */
export async function timedCommand(
  box: Box,
  cmd: string,
  args: readonly string[],
  env?: NodeJS.ProcessEnv,
): Promise<{ stdout: string; stderr: string; code: number | null; wallMs: number; cpuMs: number }> {
  const script = '"$@"; s=$?; echo; echo "BENCH-STAT $(cat /proc/$$/stat)"; exit $s';
  const r = await box.run('servers', 'sh', ['-c', script, 'sh', cmd, ...args], RELOAD_TIMEOUT_MS, env);
  const at = r.stdout.lastIndexOf('BENCH-STAT ');
  let cpuMs = Number.NaN;
  if (at >= 0) {
    const stat = r.stdout.slice(at + 'BENCH-STAT '.length).trim();
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    cpuMs = ((Number(rest[16 - 3]) + Number(rest[17 - 3])) * 1000) / CLK_TCK;
  }
  return { stdout: at >= 0 ? r.stdout.slice(0, at) : r.stdout, stderr: r.stderr, code: r.code, wallMs: r.wallMs, cpuMs };
}

/** Waits until the port answers one request with 200 (a probe inside the namespace). */
export async function probe(box: Box, port: number, tls: boolean, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const args = [fileURLToPath(new URL('../lib/probe.mjs', import.meta.url)), String(port), tls ? 'tls' : 'plain', String(timeoutMs)];
  const r = await box.run('load', process.execPath, args, timeoutMs + 5_000);
  if (r.code !== 0) throw new Error(`port ${port} did not answer 200 within ${timeoutMs} ms: ${r.stderr.trim()}`);
}

/** Remembers a tree's processes now, so that stop() can kill what survives its master. */
export function rememberTree(roots: readonly number[]): ProcessSet {
  const set = new ProcessSet();
  for (const root of roots) set.add([root, ...descendants(root)]);
  return set;
}
