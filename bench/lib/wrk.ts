// wrk, the load generator for throughput: C, epoll, one thread per client
// CPU, not the bottleneck against Node servers (measured: under 65% of its
// CPU at 60k req/s on loopback). Its Lua done() hook prints one JSON line
// that this module parses; with a timeline the response() hook also counts
// completed responses per time bucket (LuaJIT's ffi reads the clock).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Width of a timeline bucket, ms. */
export const BUCKET_MS = 250;
const MARK = 'BENCH-JSON ';

export interface WrkErrors {
  /** connect(2) failed: refused or reset while connecting. */
  readonly connect: number;
  /** read failed or the connection closed before a complete response: resets and EOFs. */
  readonly read: number;
  readonly write: number;
  /** HTTP status > 399. */
  readonly status: number;
  /** Requests older than the timeout at one of wrk's periodic checks (counted per check, not per request). */
  readonly timeout: number;
}

export interface WrkResult {
  readonly requests: number;
  readonly durationMs: number;
  readonly rps: number;
  readonly errors: WrkErrors;
  /** Latency of completed requests, ms. */
  readonly latency: { readonly mean: number; readonly p50: number; readonly p90: number; readonly p99: number; readonly p999: number; readonly max: number };
  /** Completed responses per bucket: [bucket start (epoch ms), responses, non-2xx]. */
  readonly timeline: readonly (readonly [number, number, number])[];
}

const DONE = `
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local e = summary.errors
  local parts = {}
  for _, t in ipairs(threads) do
    local b = t:get("buckets")
    local bad = t:get("bad")
    if b then for k, v in pairs(b) do table.insert(parts, string.format("[%d,%d,%d]", k, v, (bad and bad[k]) or 0)) end end
  end
  io.write(string.format(
    '${MARK}{"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},"timeline":[%s]}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    table.concat(parts, ",")))
end
`;

const TIMELINE = `
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
buckets = {}
bad = {}
function response(status, headers, body)
  ffi.C.clock_gettime(0, ts)
  local b = math.floor((tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6) / ${BUCKET_MS})
  buckets[b] = (buckets[b] or 0) + 1
  if status < 200 or status > 299 then bad[b] = (bad[b] or 0) + 1 end
end
`;

/** Writes the two scripts into `dir`; returns their paths. */
export function writeWrkScripts(dir: string): { plain: string; timeline: string } {
  const plain = join(dir, 'report.lua');
  const timeline = join(dir, 'timeline.lua');
  writeFileSync(plain, DONE);
  writeFileSync(timeline, TIMELINE + DONE);
  return { plain, timeline };
}

export interface WrkArgs {
  readonly url: string;
  readonly threads: number;
  readonly connections: number;
  readonly seconds: number;
  readonly newConnection: boolean;
  readonly script: string;
  readonly timeoutSeconds: number;
}

export function wrkArgv(a: WrkArgs): string[] {
  return [
    `-t${a.threads}`, `-c${a.connections}`, `-d${a.seconds}s`, `--timeout`, `${a.timeoutSeconds}s`,
    ...(a.newConnection ? ['-H', 'Connection: close'] : []),
    '-s', a.script, a.url,
  ];
}

interface RawResult {
  requests: number;
  duration_us: number;
  errors: WrkErrors;
  latency_us: { mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
  timeline: [number, number, number][];
}

/** Parses wrk's stdout (the line our done() hook printed). */
export function parseWrk(stdout: string): WrkResult {
  const line = stdout.split('\n').find((l) => l.startsWith(MARK));
  if (!line) throw new Error(`wrk printed no result line (is the Lua hook loaded?):\n${stdout.slice(-600)}`);
  const raw = JSON.parse(line.slice(MARK.length)) as RawResult;
  const ms = (us: number): number => us / 1000;
  const buckets = new Map<number, [number, number]>();
  for (const [b, n, bad] of raw.timeline) {
    const cur = buckets.get(b) ?? [0, 0];
    buckets.set(b, [cur[0] + n, cur[1] + bad]);
  }
  const timeline = [...buckets].sort((x, y) => x[0] - y[0]).map(([b, [n, bad]]) => [b * BUCKET_MS, n, bad] as const);
  return {
    requests: raw.requests,
    durationMs: ms(raw.duration_us),
    rps: raw.requests / (raw.duration_us / 1e6),
    errors: raw.errors,
    latency: {
      mean: ms(raw.latency_us.mean), p50: ms(raw.latency_us.p50), p90: ms(raw.latency_us.p90),
      p99: ms(raw.latency_us.p99), p999: ms(raw.latency_us.p999), max: ms(raw.latency_us.max),
    },
    timeline,
  };
}

export function wrkErrorTotal(e: WrkErrors): number {
  return e.connect + e.read + e.write + e.status + e.timeout;
}

/** Runs wrk to its end (its own -d bounds it) and parses the result. */
export async function runWrk(
  run: (cmd: string, args: readonly string[], timeoutMs: number) => Promise<{ stdout: string; stderr: string; code: number | null }>,
  a: WrkArgs,
): Promise<WrkResult> {
  const r = await run('wrk', wrkArgv(a), (a.seconds + a.timeoutSeconds + 30) * 1000);
  if (r.code !== 0) throw new Error(`wrk exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return parseWrk(r.stdout);
}
