// What counting requests costs a worker: keep-alive throughput of the hello
// app with the worker's request counters (dist/worker/http-metrics.js, as
// worker/main.ts installs them) against the same app without them.
//
//   node --import tsx bench/http-metrics.ts [--couples 6] [--rounds 4] [--seconds 3] [--connections 16]
//                                           [--counters FILE] [--baseline bare|FILE] [--json] [--check] [--counting-only]
//
// Target (issue "drop metrics"): counted ≥ 0.97 × bare. Both servers are
// single processes started the same way (forked with an IPC channel, as a
// worker is, so the counters' once-a-second message is sent and paid for),
// pinned to the same CPU and loaded at the same time, each by a wrk of its
// own: a round's ratio compares the same seconds of the same machine. A
// couple of fresh processes per few rounds, and the verdict is the median
// of the couples' medians (see measureCouple). --counters tries another
// module exporting countRequests(server); --baseline FILE counts the
// baseline with one too (the same file: an A/A run, what the method itself
// reads). Needs `npm run build` first.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openEnvelope } from '../src/protocol/worker.js';
import { int } from './lib/options.js';
import { choosePinning, pinned } from './lib/pinning.js';
import { spread } from './lib/stats.js';
import { median, wrk, type WrkRun } from './wrk.js';

/** Servers on one CPU, wrk on the others (when there are two or more). */
const PINNING = choosePinning(cpus().length);

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const COUNTERS = join(ROOT, 'dist/worker/http-metrics.js');
const HELLO = join(ROOT, 'examples/hello/app.js');
const TARGET = 0.97;
const START_TIMEOUT_MS = 10_000;

/** The server: the hello app on 127.0.0.1:0, with the counters of the module given (none for ''); says its port over IPC. */
const SERVER = `
const [counters, hello] = process.argv.slice(1);
const { createServer } = await import('node:http');
const server = createServer((await import(hello)).default);
if (counters) (await import(counters)).countRequests(server);
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

/** A server counting with the module at `counters` (an absolute path), or a bare one. */
function startServer(counters: string | undefined): Promise<Server> {
  const variant = counters ? `counted (${counters})` : 'bare';
  return new Promise((resolve, reject) => {
    const [command, ...argv] = pinned(PINNING.servers, [process.execPath, '--input-type=module', '-e', SERVER, counters ?? '', HELLO]);
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
 * The counters' own cost per response: constructing, ending and closing a
 * response of a server with countRequests() against one of a server
 * without, in a plain node process (as a worker is), without a socket. CPU
 * time, which a busy machine moves much less than it moves throughput.
 * Prints nanoseconds.
 */
const COUNTING_COST = `
const { createServer, IncomingMessage } = await import('node:http');
const { Socket } = await import('node:net');
const { countRequests } = await import(process.argv[1]);
const req = new IncomingMessage(new Socket());
const N = 200_000;
const responseClass = (server) => server[Object.getOwnPropertySymbols(server).find((s) => s.description === 'ServerResponse')];
const perResponse = (server) => {
  const Response = responseClass(server);
  const start = process.cpuUsage();
  for (let i = 0; i < N; i++) { const res = new Response(req); server.emit('request', req, res); res.end(); res.emit('close'); }
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

function countingCostNs(counters: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', COUNTING_COST, counters], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('close', (code) => (code === 0 && Number.isFinite(Number(out)) ? resolve(Number(out)) : reject(new Error(`the counting-cost measurement exited ${code}: ${out}`))));
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      // Their defaults are int()'s fallbacks below.
      couples: { type: 'string' },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      connections: { type: 'string' },
      counters: { type: 'string', default: COUNTERS },
      baseline: { type: 'string', default: 'bare' },
      json: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      'counting-only': { type: 'boolean', default: false },
    },
  });
  const countersPath = resolve(values.counters);
  for (const path of [countersPath, ...(values.baseline === 'bare' ? [] : [resolve(values.baseline)])]) {
    if (!existsSync(path)) throw new Error(`${path} is missing${path === COUNTERS ? ': run npm run build first' : ''}`);
  }
  if (values['counting-only']) {
    process.stdout.write(`counting alone: ${(await countingCostNs(countersPath)).toFixed(0)} ns of CPU per response\n`);
    return 0;
  }
  const couples = int('couples', values.couples, 6, 1);
  const rounds = int('rounds', values.rounds, 4, 1);
  const load = { seconds: int('seconds', values.seconds, 3, 1), connections: int('connections', values.connections, 16, 1), threads: 1, cpus: PINNING.load };
  const log = (line: string): void => void (values.json ? undefined : process.stderr.write(`${line}\n`));
  const baseline = values.baseline === 'bare' ? undefined : resolve(values.baseline);
  const all: Pair[] = [];
  const perCouple: number[] = [];
  let reported = 0;
  let served = 0;
  for (let couple = 0; couple < couples; couple++) {
    const measured = await measureCouple(couple, baseline, countersPath, rounds, load, log);
    all.push(...measured.pairs);
    perCouple.push(median(measured.pairs.map((p) => p.counted.requestsPerSecond / p.bare.requestsPerSecond)));
    reported += measured.reported;
    served += measured.served;
    log(`couple ${couple + 1}: median ratio ${perCouple.at(-1)!.toFixed(3)}`);
  }
  const couplesSpread = spread(perCouple);
  const ratio = couplesSpread.median;
  // The same from CPU time per request: what throughput would be on a machine of our own.
  const cpuRatio = median(all.map((p) => p.bare.cpuPerRequestUs / p.counted.cpuPerRequestUs));
  const cpuShare = median(all.map((p) => (p.counted.cpuPerRequestUs * p.counted.requests) / (p.bare.cpuPerRequestUs * p.bare.requests)));
  const bareCpuUs = median(all.map((p) => p.bare.cpuPerRequestUs));
  const costNs = await countingCostNs(countersPath);
  log(`counting alone: ${costNs.toFixed(0)} ns of CPU per response, ${((costNs / 1000 / bareCpuUs) * 100).toFixed(2)}% of the baseline's ${bareCpuUs.toFixed(1)} µs per request`);
  const errors = all.reduce((n, p) => n + p.bare.errors + p.counted.errors, 0);
  const result = {
    date: new Date().toISOString().slice(0, 10), node: process.version, cpus: cpus().length, load: Number(loadavg()[0]!.toFixed(1)),
    couples, rounds, seconds: load.seconds, connections: load.connections, baseline: values.baseline,
    bareMedian: median(all.map((p) => p.bare.requestsPerSecond)), countedMedian: median(all.map((p) => p.counted.requestsPerSecond)),
    ratio, ratioMin: couplesSpread.min, ratioMax: couplesSpread.max, perCouple, cpuRatio, cpuShare, countingCostNs: costNs, bareCpuPerRequestUs: bareCpuUs,
    errors, reported, served, met: ratio >= TARGET && errors === 0, pairs: all,
  };
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    const range = `${couplesSpread.min.toFixed(3)}–${couplesSpread.max.toFixed(3)}`;
    process.stdout.write(`counted ÷ ${baseline ? 'baseline' : 'bare'} keep-alive throughput, both loaded at once: median of ${couples} couples' medians ${ratio.toFixed(3)} ` +
      `(couples ${range}; target >= ${TARGET}): ${result.met ? 'met' : 'NOT met'}; from server CPU per request: ${cpuRatio.toFixed(3)}; CPU split ${cpuShare.toFixed(2)}\n`);
    process.stdout.write(`| ${result.date} | ${result.node} | ${result.cpus} | ${result.load} | ${couples} x ${rounds} x ${load.seconds} s | ${result.bareMedian.toFixed(0)} | ${result.countedMedian.toFixed(0)} | ${ratio.toFixed(3)} [${range}] | ${cpuRatio.toFixed(3)} | ${result.met ? 'yes' : 'no'} |\n`);
  }
  return values.check && !result.met ? 1 : 0;
}

interface Pair {
  readonly bare: Measured;
  readonly counted: Measured;
}

/**
 * One couple of fresh servers, the baseline and the counted one, both under
 * load at once, each with a wrk of its own: the two share the server CPU
 * over the same seconds (one session, so the scheduler gives them equal
 * shares), and a round's ratio is not moved by what the machine did between
 * two runs. Fresh processes for each couple: one process pair reads the
 * same ratio round after round, but the next pair may read 2-3% apart
 * (where the JIT and the allocator happened to put things), so the verdict
 * is the median over couples, not over rounds.
 */
async function measureCouple(
  couple: number,
  baseline: string | undefined,
  counters: string,
  rounds: number,
  load: { seconds: number; connections: number; threads: number; cpus: string | null },
  log: (line: string) => void,
): Promise<{ pairs: Pair[]; reported: number; served: number }> {
  const servers: Server[] = [];
  try {
    // Started in turns, so that being first favours neither.
    for (const which of couple % 2 === 0 ? ['bare', 'counted'] : ['counted', 'bare']) servers.push(await startServer(which === 'bare' ? baseline : counters));
    const [bare, counted] = couple % 2 === 0 ? [servers[0]!, servers[1]!] : [servers[1]!, servers[0]!];
    const both = (seconds: number): Promise<Measured[]> => Promise.all([bare, counted].map((s) => measure(s, { ...load, seconds })));
    const [, warm] = await both(2); // JIT, sockets
    const pairs: Pair[] = [];
    for (let i = 0; i < rounds; i++) {
      const [b, c] = await both(load.seconds);
      pairs.push({ bare: b!, counted: c! });
      log(`  round ${i + 1}: baseline ${b!.requestsPerSecond.toFixed(0)} req/s, counted ${c!.requestsPerSecond.toFixed(0)} req/s, ratio ${(c!.requestsPerSecond / b!.requestsPerSecond).toFixed(3)}; ` +
        `server CPU per request ${b!.cpuPerRequestUs.toFixed(1)} vs ${c!.cpuPerRequestUs.toFixed(1)} µs`);
    }
    // The counters must have counted what wrk received (give them their send interval).
    await new Promise((r) => setTimeout(r, 1_200));
    const served = warm!.requests + pairs.reduce((n, p) => n + p.counted.requests, 0);
    if (counted.reported < served) throw new Error(`the counters reported ${counted.reported} responses, fewer than the ${served} wrk received`);
    return { pairs, reported: counted.reported, served };
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
