// What counting requests costs a worker: keep-alive throughput of the hello
// app with the worker's request counters (dist/worker/http-metrics.js, as
// worker/main.ts installs them) against the same app without them.
//
//   node --import tsx bench/http-metrics.ts [--runs 5] [--seconds 5] [--connections 16] [--json] [--check] [--counting-only]
//
// Target (issue "drop metrics"): counted ≥ 0.97 × bare, median of the
// per-pair ratios of alternating runs. Both servers are single processes
// started the same way (forked with an IPC channel, as a worker is, so the
// counters' once-a-second message is sent and paid for); only one is under
// load at a time. Needs `npm run build` first.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openEnvelope } from '../src/protocol/worker.js';
import { choosePinning, pinned } from './lib/pinning.js';
import { median, wrk, type WrkRun } from './wrk.js';

/** Servers on one CPU, wrk on the others (when there are two or more). */
const PINNING = choosePinning(cpus().length);

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const COUNTERS = join(ROOT, 'dist/worker/http-metrics.js');
const HELLO = join(ROOT, 'examples/hello/app.js');
const TARGET = 0.97;
const START_TIMEOUT_MS = 10_000;

/** The server: the hello app on 127.0.0.1:0, with or without the counters; says its port over IPC. */
const SERVER = `
const [counted, counters, hello] = process.argv.slice(1);
const { createServer } = await import('node:http');
const server = createServer((await import(hello)).default);
if (counted === 'counted') (await import(counters)).countRequests(server);
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('disconnect', () => process.exit(0));
`;

/** CPU time (user + system) of a process, in clock ticks (10 ms). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

interface Measured extends WrkRun {
  /** The server's CPU time per response, microseconds: less moved by a busy machine than throughput. */
  readonly cpuPerRequestUs: number;
}

async function measure(server: Server, load: { seconds: number; connections: number; threads: number }): Promise<Measured> {
  const before = cpuTicks(server.child.pid!);
  const run = await wrk({ ...load, url: server.url });
  return { ...run, cpuPerRequestUs: ((cpuTicks(server.child.pid!) - before) * 10_000) / run.requests };
}

interface Server {
  readonly child: ChildProcess;
  readonly url: string;
  /** Responses the counters reported over IPC (the counted server only). */
  reported: number;
}

function startServer(variant: 'counted' | 'bare'): Promise<Server> {
  return new Promise((resolve, reject) => {
    const [command, ...argv] = pinned(PINNING.servers, [process.execPath, '--input-type=module', '-e', SERVER, variant, COUNTERS, HELLO]);
    const child = spawn(command!, argv, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const timer = setTimeout(() => reject(new Error(`${variant} server did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    child.once('message', (m: { port?: number }) => {
      clearTimeout(timer);
      const server: Server = { child, url: `http://127.0.0.1:${m.port}/`, reported: 0 };
      // The counters' messages come in the worker protocol's envelope, as the master receives them.
      child.on('message', (raw: unknown) => {
        const c = openEnvelope(raw) as { type?: string; requests?: number[] } | undefined;
        if (c?.type === 'metrics') server.reported += (c.requests ?? []).reduce((a, b) => a + b, 0);
      });
      resolve(server);
    });
    child.once('exit', (code) => reject(new Error(`${variant} server exited ${code}`)));
  });
}

/**
 * The counters' own cost per response: a server's 'request' event and the
 * response's 'close', with and without countRequests(), on responses the
 * counters take for completed (the path that searches the buckets). CPU
 * time in a plain node process (as a worker is), which a busy machine moves
 * much less than it moves throughput. Prints nanoseconds.
 */
const COUNTING_COST = `
const { createServer, IncomingMessage, ServerResponse } = await import('node:http');
const { Socket } = await import('node:net');
const { countRequests } = await import(process.argv[1]);
class CompletedResponse extends ServerResponse { get writableFinished() { return true; } }
const req = new IncomingMessage(new Socket());
const N = 1_000_000;
const perResponse = (server) => {
  const start = process.cpuUsage();
  for (let i = 0; i < N; i++) { const res = new CompletedResponse(req); server.emit('request', req, res); res.emit('close'); }
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / N;
};
const bare = createServer(() => {});
const counted = createServer(() => {});
countRequests(counted);
perResponse(bare); perResponse(counted);
const b = [], c = [];
for (let i = 0; i < 5; i++) { b.push(perResponse(bare)); c.push(perResponse(counted)); }
const median = (v) => v.sort((x, y) => x - y)[2];
process.stdout.write(String(median(c) - median(b)));
process.exit(0);
`;

function countingCostNs(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', COUNTING_COST, COUNTERS], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('close', (code) => (code === 0 && Number.isFinite(Number(out)) ? resolve(Number(out)) : reject(new Error(`the counting-cost measurement exited ${code}: ${out}`))));
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      seconds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '16' },
      json: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      'counting-only': { type: 'boolean', default: false },
    },
  });
  if (!existsSync(COUNTERS)) throw new Error(`${COUNTERS} is missing: run npm run build first`);
  if (values['counting-only']) {
    process.stdout.write(`counting alone: ${(await countingCostNs()).toFixed(0)} ns of CPU per response\n`);
    return 0;
  }
  const runs = Number(values.runs);
  const load = { seconds: Number(values.seconds), connections: Number(values.connections), threads: 1, cpus: PINNING.load };
  const log = (line: string): void => void (values.json ? undefined : process.stderr.write(`${line}\n`));
  const servers: Server[] = [];
  try {
    const bare = await startServer('bare');
    servers.push(bare);
    const counted = await startServer('counted');
    servers.push(counted);
    // Warm both up (JIT, sockets) before measuring.
    await wrk({ ...load, url: bare.url, seconds: 2 });
    const warm = await wrk({ ...load, url: counted.url, seconds: 2 });
    const pairs: { bare: Measured; counted: Measured }[] = [];
    for (let i = 0; i < runs; i++) {
      // Alternate which goes first, so that a drifting machine favours neither.
      const first = i % 2 === 0 ? bare : counted;
      const second = first === bare ? counted : bare;
      const a = await measure(first, load);
      const b = await measure(second, load);
      const pair = first === bare ? { bare: a, counted: b } : { bare: b, counted: a };
      pairs.push(pair);
      log(`run ${i + 1}: bare ${pair.bare.requestsPerSecond.toFixed(0)} req/s, counted ${pair.counted.requestsPerSecond.toFixed(0)} req/s, ratio ${(pair.counted.requestsPerSecond / pair.bare.requestsPerSecond).toFixed(3)}; ` +
        `server CPU per request ${pair.bare.cpuPerRequestUs.toFixed(1)} vs ${pair.counted.cpuPerRequestUs.toFixed(1)} µs`);
    }
    const ratio = median(pairs.map((p) => p.counted.requestsPerSecond / p.bare.requestsPerSecond));
    // The same from CPU time per request: what throughput would be on a machine of our own.
    const cpuRatio = median(pairs.map((p) => p.bare.cpuPerRequestUs / p.counted.cpuPerRequestUs));
    const bareCpuUs = median(pairs.map((p) => p.bare.cpuPerRequestUs));
    const costNs = await countingCostNs();
    log(`counting alone: ${costNs.toFixed(0)} ns of CPU per response, ${((costNs / 1000 / bareCpuUs) * 100).toFixed(2)}% of the bare server's ${bareCpuUs.toFixed(1)} µs per request`);
    // The counters must have counted what wrk received (give them their send interval).
    await new Promise((r) => setTimeout(r, 1_200));
    const served = warm.requests + pairs.reduce((n, p) => n + p.counted.requests, 0);
    log(`the counted server reported ${counted.reported} responses over IPC; wrk received ${served}`);
    if (counted.reported < served) throw new Error(`the counters reported ${counted.reported} responses, fewer than the ${served} wrk received`);
    const errors = pairs.reduce((n, p) => n + p.bare.errors + p.counted.errors, 0);
    const result = {
      date: new Date().toISOString().slice(0, 10), node: process.version, cpus: cpus().length, load: Number(loadavg()[0]!.toFixed(1)),
      runs, seconds: load.seconds, connections: load.connections,
      bareMedian: median(pairs.map((p) => p.bare.requestsPerSecond)), countedMedian: median(pairs.map((p) => p.counted.requestsPerSecond)),
      ratio, cpuRatio, countingCostNs: costNs, bareCpuPerRequestUs: bareCpuUs, errors, reported: counted.reported, served, met: ratio >= TARGET && errors === 0, pairs,
    };
    if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      process.stdout.write(`counted/bare keep-alive throughput: median of ${runs} per-pair ratios ${ratio.toFixed(3)} (target >= ${TARGET}): ${result.met ? 'met' : 'NOT met'}; ` +
        `from server CPU per request: ${cpuRatio.toFixed(3)}\n`);
      process.stdout.write(`| ${result.date} | ${result.node} | ${result.cpus} | ${result.load} | ${runs} x ${load.seconds} s | ${result.bareMedian.toFixed(0)} | ${result.countedMedian.toFixed(0)} | ${ratio.toFixed(3)} | ${cpuRatio.toFixed(3)} | ${result.met ? 'yes' : 'no'} |\n`);
    }
    return values.check && !result.met ? 1 : 0;
  } finally {
    for (const s of servers) s.child.kill('SIGKILL');
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench/http-metrics: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
