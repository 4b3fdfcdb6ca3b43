// What scraping the master costs the service: keep-alive throughput of a
// real master's workers while /metrics is scraped 1,000 times in a row,
// against the same load with no scrape; and the master's RSS across the
// scrapes.
//
//   node --import tsx bench/scrape.ts [--runs 5] [--scrapes 1000] [--rate 50] [--slice 2] [--workers 2] [--json] [--check] [--v8-defaults] [--path /healthz] [--control servers-cpu|load-cpu]
//
// Targets (issue "drop metrics"): throughput while scraping ≥ 0.97 × without
// (median of the runs' ratios), and the master's RSS up by at most 5 MB
// after all the scrapes. A run is its 1,000 scrapes cut into short slices
// (2 s, 100 scrapes each), each beside a quiet slice of the same length,
// which goes first alternating: the machine drifts too much over 20 s for a
// pair of long runs to see a few per cent. The scrapes are sequential (each
// waits for the previous answer) and paced, 50 a second by default: 750
// times Prometheus's default rate, and not back to back, which would
// measure how fast one client can keep a core busy rather than what a
// scrape costs. The scraper is wrk with a Lua script (a node client cost 8%
// of a core by itself). Needs `npm run build`.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Watched } from './contenders/watched.js';
import { choosePinning, pinned } from './lib/pinning.js';
import { median, pacedScript, wrk, type WrkRun } from './wrk.js';

/** The master and its workers on one CPU, both wrks on the others (when there are two or more). */
const PINNING = choosePinning(cpus().length);

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'dist/main.js');
const HELLO = join(ROOT, 'examples/hello/app.js');
const TARGET_RATIO = 0.97;
const TARGET_RSS_BYTES = 5 * 1024 * 1024;
const START_TIMEOUT_MS = 20_000;
/** Scrapes (under load) before the RSS baseline is taken. */
const WARMUP_SCRAPES = 1_000;
/** The pause between scrapes, as a share of the run divided by the scrapes (the rest is each scrape's own time). */
const PACING = 0.85;

interface Pair {
  readonly quiet: WrkRun;
  readonly scraped: WrkRun;
  readonly scrapes: WrkRun | undefined;
  readonly masterCpuTicks: { quiet: number; scraped: number };
}

interface RunResult {
  /** Requests a second over the run's quiet slices, and over its scraped ones. */
  readonly quiet: number;
  readonly scraped: number;
  /** Requests served in the scraped slices over those in the quiet ones (they last as long). */
  readonly ratio: number;
  readonly pairRatios: readonly number[];
  readonly scrapes: number;
  readonly scrapeLatencyMs: number;
  readonly ticks: { quiet: number; scraped: number };
  readonly rssMedian: number;
}

interface Master {
  readonly child: ChildProcess;
  readonly app: string;
  readonly metrics: string;
}

/**
 * V8 grows its young generation (up to 2 x 16 MB) with the allocation rate,
 * and collects the old one lazily, so a busy master's RSS moves by 10-30 MB
 * with no memory retained (FACTS.md "Toolchain"). Pinned, as the reload leak
 * test pins it, RSS shows what the scrapes retain; --v8-defaults leaves it.
 */
const RETENTION_FLAGS = '--max-semi-space-size=1';

function startMaster(config: string, v8Defaults: boolean): Promise<Master> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, HANDOVER_LOG_PRETTY: '0', ...(v8Defaults ? {} : { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} ${RETENTION_FLAGS}`.trim() }) };
    const [command, ...argv] = pinned(PINNING.servers, [process.execPath, MAIN, 'start', '-c', config]);
    const child = spawn(command!, argv, { stdio: ['ignore', 'pipe', 'inherit'], env });
    const timer = setTimeout(() => reject(new Error(`the master did not serve within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    let metrics: string | undefined;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let log: { msg?: string; metrics?: string; listen?: string[] };
      try {
        log = JSON.parse(line) as typeof log;
      } catch {
        return;
      }
      if (log.metrics) metrics = log.metrics;
      if (log.msg?.startsWith('serving ') && log.listen?.[0] && metrics) {
        clearTimeout(timer);
        resolve({ child, app: log.listen[0], metrics });
      }
    });
    child.once('exit', (code) => reject(new Error(`the master exited ${code} before serving`)));
  });
}

function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      slice: { type: 'string', default: '2' },
      rate: { type: 'string', default: '50' },
      scrapes: { type: 'string', default: '1000' },
      workers: { type: 'string', default: '2' },
      connections: { type: 'string', default: '16' },
      json: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      'v8-defaults': { type: 'boolean', default: false },
      path: { type: 'string', default: '/metrics' },
      control: { type: 'string' },
    },
  });
  const runs = Number(values.runs);
  const n = Number(values.scrapes);
  const slice = Number(values.slice);
  const rate = Number(values.rate);
  if (![runs, n, slice, rate].every((v) => Number.isInteger(v) && v > 0)) throw new Error('--runs, --scrapes, --slice and --rate take whole numbers above 0');
  const control = values.control;
  if (control !== undefined && control !== 'servers-cpu' && control !== 'load-cpu') throw new Error('--control takes servers-cpu or load-cpu');
  const load = { seconds: slice, connections: Number(values.connections), threads: 1, cpus: PINNING.load };
  const log = (line: string): void => void (values.json ? undefined : process.stderr.write(`${line}\n`));
  const dir = mkdtempSync(join(tmpdir(), 'handover-bench-scrape-'));
  const config = join(dir, 'handover.yaml');
  writeFileSync(config, `app: ${HELLO}\nworkers: ${values.workers}\nlisten:\n  - address: 127.0.0.1:0\nmetrics: { listen: 127.0.0.1:0 }\nreload: { watch: false }\ncontrol: { socket: ${join(dir, 'control.sock')} }\n`);
  let master: Master | undefined;
  let responder: { watched: Watched; address: string } | undefined;
  try {
    master = await startMaster(config, values['v8-defaults']);
    const pid = master.child.pid!;
    const appUrl = `http://${master.app}/`;
    // --path /healthz scrapes an answer that costs the master nothing but the HTTP exchange itself.
    // --control scrapes a minimal responder instead (node:net, one prebuilt answer as long as a scrape's), pinned
    // to the servers' CPU or to the load's: what answering 50 requests a second costs at the least, and what the
    // scraping client costs by itself.
    if (control) responder = await startResponder(control === 'servers-cpu' ? PINNING.servers : PINNING.load);
    const metricsUrl = responder ? `http://${responder.address}${values.path}` : `http://${master.metrics}${values.path}`;
    log(`master pid ${pid}: app ${appUrl}, metrics ${metricsUrl}`);
    // Warm up under load, so that what exists only once workers report (their series, the render paths) exists before RSS is taken.
    const warmup = join(dir, 'warmup.lua');
    writeFileSync(warmup, pacedScript(WARMUP_SCRAPES, 2));
    await Promise.all([wrk({ ...load, url: appUrl, seconds: 5 }), wrk({ url: metricsUrl, seconds: 5, connections: 1, threads: 1, script: warmup, cpus: load.cpus })]);
    // The scraper is wrk too (one connection, paced by a Lua script): a C client costs the machine far less than a node one.
    // A run is `slices` pairs of short slices, quiet and scraped in turn (which goes first alternates): this
    // machine's throughput drifts by a quarter over tens of seconds, so a pair of 20 s runs mostly measured
    // the drift (7 pairs of 20 s: 0.75-1.06), while two 2 s slices side by side see the same machine.
    const perSlice = rate * slice;
    const slices = Math.ceil(n / perSlice);
    const paced = join(dir, 'paced.lua');
    // wrk runs for its whole -d even after the script stopped its thread: pace the scrapes to end a little early.
    writeFileSync(paced, pacedScript(perSlice, (1000 / rate) * PACING));
    const rssSamples: number[][] = [];
    const sampleRss = (into: number[]): NodeJS.Timeout => setInterval(() => into.push(rssBytes(pid)), 200);
    const pairs: Pair[] = [];
    const runsOut: RunResult[] = [];
    for (let i = 0; i < runs; i++) {
      const samples: number[] = [];
      rssSamples.push(samples);
      const sampler = sampleRss(samples);
      const slice1 = async (scraped: boolean): Promise<{ wrk: WrkRun; scrapes: WrkRun | undefined; ticks: number }> => {
        const ticks = cpuTicks(pid);
        const scraping = scraped ? wrk({ url: metricsUrl, seconds: slice, connections: 1, threads: 1, script: paced, cpus: load.cpus }) : Promise.resolve(undefined);
        const [w, scrapes] = await Promise.all([wrk({ ...load, url: appUrl }), scraping]);
        return { wrk: w, scrapes, ticks: cpuTicks(pid) - ticks };
      };
      const mine: Pair[] = [];
      for (let j = 0; j < slices; j++) {
        const scrapedFirst = (i + j) % 2 === 1;
        const first = await slice1(scrapedFirst);
        const second = await slice1(!scrapedFirst);
        const [scraped, quiet] = scrapedFirst ? [first, second] : [second, first];
        mine.push({ quiet: quiet.wrk, scraped: scraped.wrk, scrapes: scraped.scrapes, masterCpuTicks: { quiet: quiet.ticks, scraped: scraped.ticks } });
      }
      clearInterval(sampler);
      pairs.push(...mine);
      const sum = (f: (p: Pair) => number): number => mine.reduce((t, p) => t + f(p), 0);
      const r: RunResult = {
        quiet: sum((p) => p.quiet.requests) / (slices * slice), scraped: sum((p) => p.scraped.requests) / (slices * slice),
        ratio: sum((p) => p.scraped.requests) / sum((p) => p.quiet.requests), scrapes: sum((p) => p.scrapes?.requests ?? 0),
        scrapeLatencyMs: median(mine.map((p) => p.scrapes?.latencyMs ?? NaN)),
        ticks: { quiet: sum((p) => p.masterCpuTicks.quiet), scraped: sum((p) => p.masterCpuTicks.scraped) }, rssMedian: median(samples),
        pairRatios: mine.map((p) => p.scraped.requests / p.quiet.requests),
      };
      runsOut.push(r);
      log(`run ${i + 1}: ${slices} pairs of ${slice} s slices: quiet ${r.quiet.toFixed(0)} req/s, scraped ${r.scraped.toFixed(0)} req/s ` +
        `(${r.scrapes} scrapes, median latency ${r.scrapeLatencyMs.toFixed(2)} ms), ratio ${r.ratio.toFixed(3)} (pairs ${Math.min(...r.pairRatios).toFixed(2)}-${Math.max(...r.pairRatios).toFixed(2)}); ` +
        `master CPU ${r.ticks.quiet} vs ${r.ticks.scraped} ticks; RSS median ${(r.rssMedian / 1048576).toFixed(1)} MB`);
    }
    // RSS moves by a few MB between one GC and the next: the median of a run's samples (every 200 ms) against the first run's.
    const rssBefore = runsOut[0]!.rssMedian;
    const rssAfter = runsOut.at(-1)!.rssMedian;
    const ratio = median(runsOut.map((r) => r.ratio));
    const rssGrowth = rssAfter - rssBefore;
    // CPU the scrapes added in the master, per scrape (clock ticks are 10 ms).
    const cpuPerScrapeMs = median(runsOut.map((r) => ((r.ticks.scraped - r.ticks.quiet) * 10) / r.scrapes));
    const errors = pairs.reduce((e, p) => e + p.quiet.errors + p.scraped.errors + (p.scrapes?.errors ?? 0), 0);
    const result = {
      date: new Date().toISOString().slice(0, 10), node: process.version, cpus: cpus().length, load: Number(loadavg()[0]!.toFixed(1)),
      runs, slices, slice, rate, scrapes: n, workers: Number(values.workers),
      quietMedian: median(runsOut.map((r) => r.quiet)), scrapedMedian: median(runsOut.map((r) => r.scraped)),
      ratio, runRatios: runsOut.map((r) => r.ratio), rssBefore, rssAfter, rssGrowth, cpuPerScrapeMs,
      scrapeLatencyMs: median(runsOut.map((r) => r.scrapeLatencyMs)), errors,
      allScrapes: runsOut.every((r) => r.scrapes >= n),
      met: ratio >= TARGET_RATIO && rssGrowth <= TARGET_RSS_BYTES && errors === 0 && runsOut.every((r) => r.scrapes >= n),
    };
    if (values.json) process.stdout.write(`${JSON.stringify({ ...result, runsOut })}\n`);
    else {
      process.stdout.write(`scraped/quiet keep-alive throughput: median of ${runs} runs' ratios ${ratio.toFixed(3)} (${result.runRatios.map((r) => r.toFixed(3)).join(', ')}; target >= ${TARGET_RATIO}); ` +
        `master RSS ${(rssGrowth / 1048576).toFixed(2)} MB after ${runs * n} scrapes (target <= 5); ~${cpuPerScrapeMs.toFixed(2)} ms master CPU per scrape: ${result.met ? 'met' : 'NOT met'}\n`);
      process.stdout.write(`| ${result.date} | ${result.node} | ${result.cpus} | ${result.load} | ${runs} x ${slices} pairs of ${slice} s, ${n} scrapes each | ${result.quietMedian.toFixed(0)} | ${result.scrapedMedian.toFixed(0)} | ${ratio.toFixed(3)} | ${(rssGrowth / 1048576).toFixed(2)} | ${cpuPerScrapeMs.toFixed(2)} | ${result.met ? 'yes' : 'no'} |\n`);
    }
    return values.check && !result.met ? 1 : 0;
  } finally {
    if (master && master.child.exitCode === null) {
      master.child.kill('SIGTERM');
      const killer = setTimeout(() => master?.child.kill('SIGKILL'), 10_000);
      await new Promise((r) => master!.child.once('exit', r));
      clearTimeout(killer);
    }
    await responder?.watched.stop(10_000);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The same answer as a scrape's (15 KB), from node:net with no parsing: a floor for any answer from a Node process. */
const RESPONDER = `const net = require('node:net');
const body = Buffer.alloc(15000, 'a');
const answer = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: ' + body.length + '\\r\\n\\r\\n'), body]);
const server = net.createServer((s) => s.on('data', () => s.write(answer)).on('error', () => {}));
server.listen(0, '127.0.0.1', () => console.log('127.0.0.1:' + server.address().port));
process.on('SIGTERM', () => process.exit(0));`;

async function startResponder(cpus: string | null): Promise<{ watched: Watched; address: string }> {
  const [command, ...argv] = pinned(cpus, [process.execPath, '-e', RESPONDER]);
  const watched = new Watched('responder', spawn(command!, argv, { stdio: ['ignore', 'pipe', 'inherit'] }));
  try {
    return { watched, address: await watched.waitFor('its address', START_TIMEOUT_MS, (line) => (/^127\.0\.0\.1:\d+$/.test(line) ? line : undefined)) };
  } catch (err) {
    await watched.stop(1_000, 'SIGKILL');
    throw err;
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench/scrape: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
