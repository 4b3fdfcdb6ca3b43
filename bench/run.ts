// npm run bench: every scenario against every contender, in a network
// namespace of its own, three alternating repeats; writes the results as
// JSON, Markdown and an SVG plot, and a full run rewrites README.md's bench
// section. See bench/README.md.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from './contenders/contender.js';
import { MAIN } from './contenders/handover.js';
import { CONTENDERS, makeContender } from './contenders/index.js';
import { pm2Version } from './contenders/pm2.js';
import { Box } from './lib/box.js';
import { parseOptions, usage, type Options, type ScenarioId } from './lib/options.js';
import type { Results } from './lib/results.js';
import { writeWrkScripts } from './lib/wrk.js';
import { checks } from './report/checks.js';
import { markdown } from './report/markdown.js';
import { readmeSection, updateReadme } from './report/readme.js';
import { seriesSvg } from './report/svg.js';
import { cliCost } from './scenarios/cli-cost.js';
import { pairs } from './scenarios/pairs.js';
import { Ctx } from './scenarios/context.js';
import { reloadDuration } from './scenarios/reload-duration.js';
import { reloadSeries } from './scenarios/reload-series.js';
import { throughput } from './scenarios/throughput.js';
import { tlsRotation } from './scenarios/tls.js';

const RESULTS = fileURLToPath(new URL('./results', import.meta.url));
const SVG = 'reload-series.svg';

const SCENARIO_RUNNERS: Record<ScenarioId, { title: string; run: (ctx: Ctx) => Promise<void> }> = {
  throughput: { title: 'scenarios 1, 2, 6: throughput, latency, master CPU and RSS', run: throughput },
  pairs: { title: 'head to head: throughput of two contenders loaded at once', run: pairs },
  reload: { title: 'scenario 3: a reload every second under load', run: reloadSeries },
  tls: { title: 'scenario 4: TLS certificate rotation under load', run: tlsRotation },
  duration: { title: 'scenario 5: reload duration at idle', run: reloadDuration },
  cli: { title: 'CLI cost', run: cliCost },
};

function preflight(): void {
  if (process.geteuid?.() !== 0) throw new Error('needs root: the bench runs in a network namespace of its own (ip netns add)');
  for (const tool of ['ip', 'wrk', 'taskset', 'openssl']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} not found: apt-get install iproute2 wrk util-linux openssl`);
  }
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: npm run build`);
}

function machine(): string {
  const model = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  return model;
}

function newResults(o: Options, box: Box): Results {
  const wrk = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  const labels: Record<string, string> = {};
  const reloadHow: Record<string, string> = {};
  for (const id of CONTENDERS) {
    const c = makeContender(id, box, { port: 1, workers: o.workers });
    labels[id] = c.label;
    if (c.reloadHow) reloadHow[id] = c.reloadHow;
  }
  return {
    meta: {
      date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
      machine: machine(),
      kernel: release(),
      node: process.version,
      cpus: cpus().length,
      pinning: box.pinning.note,
      wrk: ((wrk.stdout || wrk.stderr).split('\n')[0] ?? 'wrk').replace(/ \[.*$/, '').replace(/ Copyright.*$/, ''),
      pm2: pm2Version(),
      tcpMigrateReq: box.migrateReq,
      quick: o.quick,
      repeats: o.repeats,
      workers: o.workers,
      connections: o.connections,
      durations: { ...o.d },
      loadAverage: { start: loadavg()[0]! },
      labels,
      reloadHow,
    },
    throughput: { keepalive: {}, newconn: {} },
    reloadSeries: {},
    checks: [],
    errors: [],
    notes: [],
  };
}

function write(o: Options, r: Results, json = true): void {
  mkdirSync(o.out, { recursive: true });
  r.checks = checks(r);
  // Compact: the timelines make an indented file four times larger.
  if (json) writeFileSync(join(o.out, 'latest.json'), `${JSON.stringify(r)}\n`);
  writeFileSync(join(o.out, SVG), seriesSvg(r));
  const md = markdown(r, SVG);
  writeFileSync(join(o.out, 'latest.md'), md);
  if (o.readme && !r.meta.quick) updateReadme(join(ROOT, 'README.md'), readmeSection(r, `bench/results/${SVG}`, 'bench/results/latest.md'));
  process.stdout.write(md);
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2), RESULTS);
  if (o === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (o.render) {
    write(o, JSON.parse(readFileSync(join(o.out, 'latest.json'), 'utf8')) as Results, false);
    return 0;
  }
  preflight();
  const started = Date.now();
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const box = await Box.open();
  const abort = setTimeout(() => {
    log(`bench: aborted after ${o.maxMinutes} min`);
    void box.close().finally(() => process.exit(2));
  }, o.maxMinutes * 60_000);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void box.close().finally(() => process.exit(130)));
  const results = newResults(o, box);
  try {
    log(`bench: namespace ${box.ns.name}, ${box.pinning.note}, ${o.repeats} repeat(s)${o.quick ? ', quick' : ''}`);
    const ctx = new Ctx(box, o, writeWrkScripts(box.dir), results, log);
    for (const id of o.scenarios) {
      log(`== ${SCENARIO_RUNNERS[id].title}`);
      await SCENARIO_RUNNERS[id].run(ctx);
    }
  } finally {
    clearTimeout(abort);
    await box.close();
  }
  results.meta.loadAverage.end = loadavg()[0]!;
  results.meta.elapsedS = (Date.now() - started) / 1000;
  write(o, results);
  log(`bench: ${Math.round(results.meta.elapsedS)} s; results in ${o.out}`);
  return results.errors.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

