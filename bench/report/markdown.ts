// The Markdown report: the machine, the checks, then one table per
// scenario. Figures are medians over the repeats, [min–max] of the repeats.
import type { ClientRun, Results, SeriesRun, ThroughputRun } from '../lib/results.js';
import { spread, summarize } from '../lib/stats.js';
import { wrkErrorTotal } from '../lib/wrk.js';
import { MODULES, NODE_FLOOR } from '../scenarios/cli-cost.js';
import { PAIR_CONNECTIONS } from '../scenarios/pairs.js';
import { checks, perRound, rps, seriesFailures } from './checks.js';
import { compact, modeName, ms, num, p50p95, pct, table, times, withSpread } from './format.js';

const KINDS = ['reset', 'refused', 'eof', 'timeout', 'non2xx', 'other'] as const;

/** How the throughput runs were taken (results from before the rounds have no such field). */
function roundsText(m: Results['meta']): string {
  const rounds = m.durations['throughputRounds'];
  if (rounds === undefined) return '';
  return (
    `Throughput (scenarios 1, 2): every contender started first, then ${rounds} rounds, each running every contender once for ${m.durations['throughputS']} s ` +
    `in an order rotated per round; ratios are the median of the per-round ratios (runs seconds apart). Other scenarios: `
  );
}

export function header(r: Results): string {
  const m = r.meta;
  const rounds = m.durations['throughputRounds'];
  return [
    `Measured ${m.date} on ${m.machine} (${m.cpus} CPUs), Linux ${m.kernel}, Node ${m.node}, ${m.wrk}, PM2 ${m.pm2}; ` +
      `every contender serves \`res.end('ok')\` with ${m.workers} workers in the bench's own network namespace ` +
      `(loopback, \`tcp_migrate_req=${m.tcpMigrateReq}\`); ${m.pinning}; wrk ${m.connections} connections. ` +
      `${roundsText(m)}${m.repeats} alternating repeat${m.repeats > 1 ? 's' : ''}: figures are medians, [min–max] over the ${rounds === undefined ? '' : 'rounds or '}repeats. ` +
      `One-minute load average ${m.loadAverage.start.toFixed(2)} at the start, ${m.loadAverage.end?.toFixed(2) ?? '?'} at the end; ` +
      `the run took ${Math.round((m.elapsedS ?? 0) / 60)} min${m.quick ? ' (--quick: a few seconds per measurement, not for comparison)' : ''}.`,
  ].join('\n');
}

export function checksTable(r: Results): string {
  return table(['what the issue asks', 'measured', 'target', 'met'], checks(r).map((c) => [c.what, c.value, c.target, c.met === null ? '–' : c.met ? 'yes' : '**no**']));
}

function ids(r: Results, by: Record<string, unknown>): string[] {
  return Object.keys(r.meta.labels).filter((id) => id in by);
}

export function throughputTable(r: Results): string {
  const ka = r.throughput.keepalive;
  const nc = r.throughput.newconn;
  const base = 'handover-migrate';
  const cols = (runs: ThroughputRun[] | undefined, mine: ThroughputRun[] | undefined): string[] => {
    if (!runs) return ['–', '–', '–'];
    const lat = (k: 'p50' | 'p99'): number => spread(runs.map((x) => x.latency[k])).median;
    const errors = runs.reduce((n, x) => n + wrkErrorTotal(x.errors), 0);
    const ratio = mine ? spread(perRound(mine, runs)).median : Number.NaN;
    return [`${withSpread(rps(runs))}${errors ? ` (${errors} errors)` : ''}`, `${ms(lat('p50'))} / ${ms(lat('p99'))}`, times(ratio)];
  };
  const rows = [...new Set([...ids(r, ka), ...ids(r, nc)])].map((id) => [r.meta.labels[id]!, ...cols(ka[id], ka[base]), ...cols(nc[id], nc[base])]);
  return table(['contender', 'keep-alive req/s', 'p50 / p99 ms', 'handover (migrate) ÷', 'new connection req/s', 'p50 / p99 ms', 'handover (migrate) ÷'], rows);
}

/** Head to head: each pair's per-round ratios, keep-alive then new connection. */
export function pairsTable(r: Results): string {
  if (!r.pairs?.length) return '';
  const label = (id: string): string => r.meta.labels[id] ?? id;
  const rounds = r.meta.durations['pairRounds'];
  const rows = r.pairs.map((p) => [
    `${label(p.a)} ÷ ${label(p.b)}${p.a === p.b ? ' (A/A)' : ''}`,
    modeName(p.mode),
    `${times(p.ratio.median)} [${times(p.ratio.min)}–${times(p.ratio.max)}]`,
    `${compact(spread([...p.rps.a]).median)} / ${compact(spread([...p.rps.b]).median)}`,
    num(p.cpuShare.median, 2),
    String(p.errors),
  ]);
  return (
    `Both contenders of a pair loaded at once${rounds === undefined ? '' : ` for ${rounds} rounds of ${r.meta.durations['pairS']} s`}, each by a wrk of its own (one thread, ${PAIR_CONNECTIONS} connections), ` +
    `on the servers' CPU split by two CPU cgroups of equal weight: a round's ratio is taken over the same seconds. The A/A row is the method reading itself.\n\n` +
    table(['a ÷ b', 'mode', 'per-round ratio, median [min–max]', 'a / b req/s (median round)', 'CPU a ÷ b', 'errors'], rows)
  );
}

function kindsText(run: ClientRun | undefined, mode: 'keepalive' | 'newconn'): string {
  if (!run) return '–';
  const f = run.modes[mode].failed;
  const parts = KINDS.filter((k) => (f[k] ?? 0) > 0).map((k) => `${num(f[k] ?? 0)} ${k}`);
  return parts.length === 0 ? '0' : parts.join(', ');
}

/** Sums the client's failures by kind over the repeats, as one run. */
function pooledKinds(runs: readonly SeriesRun[]): ClientRun | undefined {
  const all = runs.map((x) => x.kinds).filter((k): k is ClientRun => k !== undefined);
  if (all.length === 0) return undefined;
  const pool = (mode: 'keepalive' | 'newconn'): ClientRun['modes']['keepalive'] => {
    const failed: Record<string, number> = {};
    for (const k of all) for (const [kind, n] of Object.entries(k.modes[mode].failed)) failed[kind] = (failed[kind] ?? 0) + n;
    return { ok: all.reduce((n, k) => n + k.modes[mode].ok, 0), failed, timeline: [] };
  };
  return { ...all[0]!, modes: { keepalive: pool('keepalive'), newconn: pool('newconn') } };
}

/** All failed requests over all reloads of both series, all repeats. */
function failedPerReload(runs: readonly SeriesRun[]): number {
  const failed = runs.reduce((n, x) => n + seriesFailures(x), 0);
  const reloads = runs.reduce((n, x) => n + x.reloads + (x.kinds?.reloads ?? 0), 0);
  return reloads === 0 ? Number.NaN : failed / reloads;
}

export function seriesTable(r: Results): string {
  const s = r.reloadSeries;
  const base = s['handover-migrate'];
  const rows = ids(r, s).map((id) => {
    const runs = s[id]!;
    const e = runs.map((x) => x.errors);
    const wrkErr = (k: 'connect' | 'read' | 'write' | 'timeout' | 'status'): number => e.reduce((n, x) => n + x[k], 0);
    const kinds = pooledKinds(runs);
    return [
      r.meta.labels[id]!,
      r.meta.reloadHow[id] ?? '–',
      withSpread(runs.map((x) => x.reloads), num),
      withSpread(rps(runs)),
      withSpread(runs.map((x) => x.calmRps)),
      withSpread(runs.map((x) => (x.rps / x.calmRps) * 100), pct),
      `${wrkErr('connect')} / ${wrkErr('read')} / ${wrkErr('write')} / ${wrkErr('timeout')} / ${wrkErr('status')}`,
      kindsText(kinds, 'keepalive'),
      kindsText(kinds, 'newconn'),
      `${num(failedPerReload(runs), 1)}`,
      base ? times(spread(rps(base)).median / spread(rps(runs)).median) : '–',
    ];
  });
  return table(
    ['contender', 'reload by', 'reloads', 'keep-alive req/s while reloading', 'without reloads', 'during ÷ without', 'wrk errors connect / read / write / timeout / status (all repeats)',
      'own client, keep-alive: failed by kind', 'own client, new connection: failed by kind', 'failed per reload (wrk + own client)', 'handover (migrate) ÷'],
    rows,
  );
}

export function breakdownTable(r: Results): string {
  const s = r.reloadSeries;
  const rows = ids(r, s).map((id) => {
    const runs = s[id]!;
    const perS = (f: (x: SeriesRun) => number): string => withSpread(runs.map((x) => f(x) / 1000 / x.seconds), (v) => num(v, 2));
    const serving = (x: SeriesRun): number => x.requests * x.cpu.calmCpuPerRequestMs;
    const rest = (x: SeriesRun): number => x.cpu.totalMs + x.cpu.commandMs - serving(x) - x.cpu.masterMs - x.cpu.startupMs;
    return [
      r.meta.labels[id]!,
      perS((x) => x.cpu.totalMs + x.cpu.commandMs),
      perS(serving),
      perS((x) => x.cpu.masterMs),
      perS((x) => x.cpu.commandMs),
      perS((x) => x.cpu.startupMs),
      perS(rest),
      withSpread(runs.map((x) => x.cpu.workersStarted), num),
      withSpread(runs.map((x) => x.cpu.startupMs / Math.max(1, x.cpu.workersStarted)), (v) => num(v)),
      withSpread(runs.map((x) => (x.cpu.startupMs + rest(x)) / x.cpu.calmCpuPerRequestMs / x.seconds)),
    ];
  });
  return table(
    ['contender', 'CPU used', 'serving, at the calm CPU per request', 'master', 'reload commands', 'new workers up to ready', 'the rest: warm-up, drains, contention',
      'workers started', 'CPU ms per new worker up to ready', 'req/s that start-up + the rest would have served at the calm cost'],
    rows,
  );
}

export function tlsTable(r: Results): string {
  const t = r.tls;
  if (!t) return '';
  const rows = ids(r, t.runs).map((id) => {
    const runs = t.runs[id]!;
    const pooled = pooledKinds(runs.map((x) => ({ kinds: x.kinds }) as SeriesRun));
    return [r.meta.labels[id]!, runs[0]!.how, withSpread(runs.map((x) => x.rotations), num), kindsText(pooled, 'keepalive'), kindsText(pooled, 'newconn'), runs.every((x) => x.servesLast) ? 'yes' : '**no**'];
  });
  return `${t.note}.\n\n${table(['contender', 'rotation', 'rotations', 'HTTPS keep-alive: failed by kind', 'new TLS connection: failed by kind', 'serves the last certificate'], rows)}`;
}

export function durationTable(r: Results): string {
  const d = r.duration;
  if (!d) return '';
  const bare = summarize(d.bareWorkerMs).p50;
  const rows = Object.entries(d.configs).map(([key, x]) => [
    key.replace('settle default', `settle default (${d.settleDefault})`),
    `${p50p95(x.wallMs)}${x.repeatP50.length > 1 ? ` [p50s ${x.repeatP50.map(ms).join(', ')}]` : ''}`,
    p50p95(x.durationMs),
    x.settleMs.length > 0 ? p50p95(x.settleMs) : '–',
    x.commandCpuMs.length > 0 ? ms(summarize(x.commandCpuMs).p50) : '–',
    x.durationMs.length > 0 ? times(summarize(x.durationMs).p50 / bare) : '–',
    String(x.failed),
  ]);
  rows.push(['baseline: one handover worker alone, spawn → ready', p50p95(d.bareWorkerMs), '–', '–', `${ms(summarize(d.bareWorkerCpuMs).p50)} (the worker's)`, '1.00×', '0']);
  if (d.generationMs?.length) {
    rows.push([`baseline: ${d.generationWorkers} handover workers spawned at once, spawn → the last ready`, p50p95(d.generationMs), '–', '–', '–', times(summarize(d.generationMs).p50 / bare), '0']);
  }
  rows.push(['baseline: one bare SO_REUSEPORT process, spawn → listening', p50p95(d.reuseportMs), '–', '–', '–', times(summarize(d.reuseportMs).p50 / bare), '0']);
  const where = d.unpinned ? 'No load generator runs here: the servers, the CLI and the baselines may use every CPU.' : 'The servers, the CLI and the baselines pinned to the servers\' CPUs, as above.';
  return `${where}\n\n${table(['reload (idle)', 'as the caller waits p50 / p95 ms', 'report durationMs p50 / p95', 'settleMs p50 / p95', 'command CPU ms p50', 'report p50 ÷ bare worker p50', 'failed'], rows)}`;
}

export function masterTable(r: Results): string {
  const ka = r.throughput.keepalive;
  const nc = r.throughput.newconn;
  const rows = ids(r, ka)
    .filter((id) => ka[id]!.some((x) => x.master))
    .map((id) => {
      const m = (runs: ThroughputRun[] | undefined, f: (x: NonNullable<ThroughputRun['master']>) => number, fmt: (v: number) => string): string =>
        withSpread((runs ?? []).flatMap((x) => (x.master ? [f(x.master)] : [])), fmt);
      const one = (v: number): string => num(v, 1);
      return [r.meta.labels[id]!, m(ka[id], (x) => x.idleCpuPct, one), m(ka[id], (x) => x.idleRssMiB, one), m(ka[id], (x) => x.loadCpuPct, one), m(nc[id], (x) => x.loadCpuPct, one), m(ka[id], (x) => x.loadRssMiB, one), m(ka[id], (x) => x.treeRssMiB, one)];
    });
  return table(['contender', 'master CPU % idle', 'master RSS MiB idle', 'master CPU % keep-alive load', 'master CPU % new-connection load', 'master RSS MiB under load', 'all its processes RSS MiB'], rows);
}

export function cliTable(r: Results): string {
  const c = r.cli;
  if (!c) return '';
  const floor = spread(c.wallMs[NODE_FLOOR] ?? []).median;
  const rows = Object.keys(c.wallMs).map((cmd) => {
    const wall = spread(c.wallMs[cmd]!);
    return [`\`${cmd}\``, `${ms(wall.median)} [${ms(wall.min)}–${ms(wall.max)}]`, ms(spread(c.cpuMs[cmd] ?? []).median), times(wall.median / floor)];
  });
  const imports = MODULES.filter((m) => c.imports[m]).map((m) => [`\`${m}\``, ms(spread(c.imports[m]!.wallMs).median), ms(spread(c.imports[m]!.cpuMs).median)]);
  return `${table(['command', 'wall ms', 'CPU ms', `÷ \`${NODE_FLOOR}\` (wall)`], rows)}\n\nWhat one import costs a fresh process (medians; a package's cost includes what it imports):\n\n${table(['module', 'wall ms', 'CPU ms'], imports)}`;
}

export function markdown(r: Results, svgName: string): string {
  const parts = [
    '# handover benchmarks',
    header(r),
    '## What the issue asks, measured',
    checksTable(r),
    '## Throughput and latency (scenarios 1 and 2)',
    throughputTable(r),
    '## Throughput head to head (two contenders loaded at once)',
    pairsTable(r) || 'not run',
    '## Reload every second under load (scenario 3)',
    seriesTable(r),
    `![requests per second and failed requests while reloading every second](${svgName})`,
    `Where the servers' CPU went during the keep-alive series, in CPU-seconds per second (${r.meta.pinning}; on a shared machine the rest of the servers' CPUs went to other processes). "The rest" is what is left after serving every request at the cost it had without reloads: cold code in new workers, new connections, old workers draining, and any slowdown from contention.`,
    breakdownTable(r),
    '## TLS certificate rotation under load (scenario 4)',
    tlsTable(r) || 'not run',
    '## Reload duration at idle (scenario 5)',
    durationTable(r) || 'not run',
    '## The master at idle and under load (scenario 6)',
    masterTable(r),
    '## What a CLI command costs',
    cliTable(r) || 'not run',
    ...(r.errors.length > 0 ? ['## Failed measurements', r.errors.map((e) => `- ${e.split('\n')[0]}`).join('\n')] : []),
    ...((r.notes ?? []).length > 0 ? ['## What the contenders reported as wrong', r.notes.map((n) => `- ${n.replace(/\n/g, ' ')}`).join('\n')] : []),
  ];
  return `${parts.join('\n\n')}\n`;
}
