// What scraping the master costs the service: keep-alive throughput of a
// real master's workers while /metrics is scraped 1,000 times in a row,
// against the same load with no scrape; and the master's RSS across the
// scrapes.
//
//   node --import tsx bench/scrape.ts [--runs 5] [--seconds 20] [--scrapes 1000] [--workers 2] [--json] [--check] [--v8-defaults] [--path /healthz]
//
// Targets (issue "drop metrics"): throughput while scraping ≥ 0.97 × without
// (median of the per-pair ratios of alternating runs), and the master's RSS
// up by at most 5 MB after all the scrapes. The 1,000 scrapes of a run are
// sequential (each waits for the previous answer) and spread over the run,
// i.e. 50 a second with the defaults: 750 times Prometheus's default rate,
// and not back to back, which would measure how fast one client can keep a
// core busy rather than what a scrape costs. The scraper is wrk with a Lua
// script (a node client cost 8% of a core by itself). Needs `npm run build`.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
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
      seconds: { type: 'string', default: '20' },
      scrapes: { type: 'string', default: '1000' },
      workers: { type: 'string', default: '2' },
      connections: { type: 'string', default: '16' },
      json: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      'v8-defaults': { type: 'boolean', default: false },
      path: { type: 'string', default: '/metrics' },
    },
  });
  const runs = Number(values.runs);
  const n = Number(values.scrapes);
  const load = { seconds: Number(values.seconds), connections: Number(values.connections), threads: 1, cpus: PINNING.load };
  const log = (line: string): void => void (values.json ? undefined : process.stderr.write(`${line}\n`));
  const dir = mkdtempSync(join(tmpdir(), 'handover-bench-scrape-'));
  const config = join(dir, 'handover.yaml');
  writeFileSync(config, `app: ${HELLO}\nworkers: ${values.workers}\nlisten:\n  - address: 127.0.0.1:0\nmetrics: { listen: 127.0.0.1:0 }\nreload: { watch: false }\ncontrol: { socket: ${join(dir, 'control.sock')} }\n`);
  let master: Master | undefined;
  try {
    master = await startMaster(config, values['v8-defaults']);
    const pid = master.child.pid!;
    const appUrl = `http://${master.app}/`;
    // --path /healthz scrapes an answer that costs the master nothing but the HTTP exchange itself.
    const metricsUrl = `http://${master.metrics}${values.path}`;
    log(`master pid ${pid}: app ${appUrl}, metrics ${metricsUrl}`);
    // Warm up under load, so that what exists only once workers report (their series, the render paths) exists before RSS is taken.
    const warmup = join(dir, 'warmup.lua');
    writeFileSync(warmup, pacedScript(WARMUP_SCRAPES, 2));
    await Promise.all([wrk({ ...load, url: appUrl, seconds: 5 }), wrk({ url: metricsUrl, seconds: 5, connections: 1, threads: 1, script: warmup, cpus: load.cpus })]);
    // The scraper is wrk too (one connection, paced by a Lua script): a C client costs the machine far less than a node one.
    const paced = join(dir, 'paced.lua');
    // wrk runs for its whole -d even after the script stopped its thread: pace the scrapes to end a little early.
    writeFileSync(paced, pacedScript(n, ((load.seconds * 1000) / n) * PACING));
    const rssBefore = rssBytes(pid);
    const pairs: { quiet: WrkRun; scraped: WrkRun; scrapes: WrkRun | undefined; masterCpuTicks: { quiet: number; scraped: number } }[] = [];
    for (let i = 0; i < runs; i++) {
      const run = async (scraped: boolean): Promise<{ wrk: WrkRun; scrapes: WrkRun | undefined; ticks: number }> => {
        const ticks = cpuTicks(pid);
        const scraping = scraped ? wrk({ url: metricsUrl, seconds: load.seconds, connections: 1, threads: 1, script: paced, cpus: load.cpus }) : Promise.resolve(undefined);
        const [w, scrapes] = await Promise.all([wrk({ ...load, url: appUrl }), scraping]);
        return { wrk: w, scrapes, ticks: cpuTicks(pid) - ticks };
      };
      // Alternate which goes first, so that a drifting machine favours neither.
      const first = await run(i % 2 === 1);
      const second = await run(i % 2 === 0);
      const [scraped, quiet] = i % 2 === 1 ? [first, second] : [second, first];
      pairs.push({ quiet: quiet.wrk, scraped: scraped.wrk, scrapes: scraped.scrapes, masterCpuTicks: { quiet: quiet.ticks, scraped: scraped.ticks } });
      log(`run ${i + 1}: quiet ${quiet.wrk.requestsPerSecond.toFixed(0)} req/s, scraped ${scraped.wrk.requestsPerSecond.toFixed(0)} req/s ` +
        `(${scraped.scrapes?.requests} scrapes, mean ${scraped.scrapes?.latencyMs.toFixed(2)} ms), ratio ${(scraped.wrk.requestsPerSecond / quiet.wrk.requestsPerSecond).toFixed(3)}; ` +
        `master CPU ${quiet.ticks} vs ${scraped.ticks} ticks; RSS ${(rssBytes(pid) / 1048576).toFixed(1)} MB`);
    }
    const rssAfter = rssBytes(pid);
    const ratio = median(pairs.map((p) => p.scraped.requestsPerSecond / p.quiet.requestsPerSecond));
    const rssGrowth = rssAfter - rssBefore;
    // CPU the scrapes added in the master, per scrape (clock ticks are 10 ms).
    const cpuPerScrapeMs = median(pairs.map((p) => ((p.masterCpuTicks.scraped - p.masterCpuTicks.quiet) * 10) / n));
    const errors = pairs.reduce((e, p) => e + p.quiet.errors + p.scraped.errors + (p.scrapes?.errors ?? 0), 0);
    const result = {
      date: new Date().toISOString().slice(0, 10), node: process.version, cpus: cpus().length, load: Number(loadavg()[0]!.toFixed(1)),
      runs, seconds: load.seconds, scrapes: n, workers: Number(values.workers),
      quietMedian: median(pairs.map((p) => p.quiet.requestsPerSecond)), scrapedMedian: median(pairs.map((p) => p.scraped.requestsPerSecond)),
      ratio, rssBefore, rssAfter, rssGrowth, cpuPerScrapeMs, scrapeLatencyMs: median(pairs.map((p) => p.scrapes?.latencyMs ?? NaN)), errors,
      allScrapes: pairs.every((p) => (p.scrapes?.requests ?? 0) >= n),
      met: ratio >= TARGET_RATIO && rssGrowth <= TARGET_RSS_BYTES && errors === 0 && pairs.every((p) => (p.scrapes?.requests ?? 0) >= n),
    };
    if (values.json) process.stdout.write(`${JSON.stringify({ ...result, pairs })}\n`);
    else {
      process.stdout.write(`scraped/quiet keep-alive throughput: median of ${runs} per-pair ratios ${ratio.toFixed(3)} (target >= ${TARGET_RATIO}); ` +
        `master RSS ${(rssGrowth / 1048576).toFixed(2)} MB after ${runs * n} scrapes (target <= 5); ~${cpuPerScrapeMs.toFixed(2)} ms master CPU per scrape: ${result.met ? 'met' : 'NOT met'}\n`);
      process.stdout.write(`| ${result.date} | ${result.node} | ${result.cpus} | ${result.load} | ${runs} x ${load.seconds} s, ${n} scrapes each | ${result.quietMedian.toFixed(0)} | ${result.scrapedMedian.toFixed(0)} | ${ratio.toFixed(3)} | ${(rssGrowth / 1048576).toFixed(2)} | ${cpuPerScrapeMs.toFixed(2)} | ${result.met ? 'yes' : 'no'} |\n`);
    }
    return values.check && !result.met ? 1 : 0;
  } finally {
    if (master && master.child.exitCode === null) {
      master.child.kill('SIGTERM');
      const killer = setTimeout(() => master?.child.kill('SIGKILL'), 10_000);
      await new Promise((r) => master!.child.once('exit', r));
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench/scrape: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
