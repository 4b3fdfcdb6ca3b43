// Keep-alive throughput with wrk, for the benchmarks that compare a variant
// against a baseline in the same run (bench/http-metrics.ts, bench/scrape.ts,
// bench/tracking.ts).
import { spawn } from 'node:child_process';
import { pinned } from './lib/pinning.js';

export interface WrkRun {
  readonly requestsPerSecond: number;
  readonly requests: number;
  /** Socket errors and non-2xx/3xx responses wrk reported. */
  readonly errors: number;
  /** Mean latency, milliseconds. */
  readonly latencyMs: number;
}

export interface WrkOptions {
  readonly url: string;
  readonly seconds: number;
  readonly connections: number;
  readonly threads: number;
  /** A wrk Lua script (its path). */
  readonly script?: string;
  /** CPUs for wrk (a taskset list), away from the servers'; all when absent or null. */
  readonly cpus?: string | null;
  /** A new connection per request (wrk sends `Connection: close`). */
  readonly newConnection?: boolean;
}

/** Runs wrk once; rejects when wrk is missing or prints no figure. */
export function wrk(o: WrkOptions): Promise<WrkRun> {
  return new Promise((resolve, reject) => {
    const args = [`-t${o.threads}`, `-c${o.connections}`, `-d${o.seconds}s`, '--timeout', '5s', ...(o.newConnection ? ['-H', 'Connection: close'] : []), ...(o.script ? ['-s', o.script] : []), o.url];
    const [command, ...argv] = pinned(o.cpus ?? null, ['wrk', ...args]);
    const child = spawn(command!, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), (o.seconds + 15) * 1000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`wrk: ${err.message} (install it: apt-get install wrk)`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
      const total = /(\d+) requests in/.exec(out)?.[1];
      if (code !== 0 || rps === undefined || total === undefined) return reject(new Error(`wrk ${args.join(' ')} exited ${code}: ${out.trim()}`));
      const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((n, v) => n + Number(v), 0) : 0);
      const latency = /Latency\s+([\d.]+)(us|ms|s)/.exec(out);
      const latencyMs = latency ? Number(latency[1]) * (latency[2] === 'us' ? 0.001 : latency[2] === 's' ? 1000 : 1) : NaN;
      resolve({ requestsPerSecond: Number(rps), requests: Number(total), errors, latencyMs });
    });
  });
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * A wrk Lua script that sends `count` requests on its connection, one after
 * another, waiting `spacingMs` after each answer, then stops wrk.
 */
export function pacedScript(count: number, spacingMs: number): string {
  return `local n = 0
function delay() return ${Math.max(0, Math.round(spacingMs))} end
function response(status, headers, body)
  n = n + 1
  if n >= ${count} then wrk.thread:stop() end
end
`;
}
