// The "what it must show", each as measured in this run: value,
// target, met (null when the run has not the figures, or the row only
// informs).
import type { Check, Results, SeriesRun, ThroughputRun } from '../lib/results.js';
import { ratio, spread, summarize, type Spread } from '../lib/stats.js';
import { wrkErrorTotal } from '../lib/wrk.js';
import { NODE_FLOOR } from '../scenarios/cli-cost.js';
import { clientFailures } from '../scenarios/series.js';
import { modeName, times } from './format.js';

const STRATEGIES = ['handover-migrate', 'handover-inherit'] as const;
const SAME_PATH = 0.97;
const AHEAD = 1.1;
const CLI_FACTOR = 1.5;
const CLI_SLACK_MS = 100;
const REPORT_FACTOR = 1.5;

export function rps(runs: readonly (ThroughputRun | SeriesRun)[] | undefined): number[] {
  return (runs ?? []).map((r) => r.rps);
}

function ratioCheck(what: string, a: number[], b: number[], target: number): Check {
  if (a.length === 0 || b.length === 0) return { what, value: 'not measured', target: `≥ ${target}×`, met: null };
  return spreadCheck(what, ratio(a, b), target);
}

/** A ratio's median against its target, with the range of the ratios it came from. */
function spreadCheck(what: string, r: Spread, target: number): Check {
  const range = r.values.length > 1 ? ` [${times(r.min)}–${times(r.max)}]` : '';
  return { what, value: `${times(r.median)}${range}`, target: `≥ ${target}×`, met: r.median >= target };
}

/**
 * a ÷ b round by round (throughput: the two runs of a round are seconds
 * apart), matched by round; a round one side lacks is left out.
 */
export function perRound(a: readonly ThroughputRun[] | undefined, b: readonly ThroughputRun[] | undefined): number[] {
  const other = new Map((b ?? []).map((run) => [run.repeat, run.rps]));
  return (a ?? []).flatMap((run) => (other.has(run.repeat) ? [run.rps / other.get(run.repeat)!] : []));
}

/** The median of the per-round ratios, with their range. */
function roundsCheck(what: string, a: readonly ThroughputRun[] | undefined, b: readonly ThroughputRun[] | undefined, target: number): Check {
  const per = spread(perRound(a, b));
  if (per.values.length === 0) return { what, value: 'not measured', target: `≥ ${target}×`, met: null };
  return spreadCheck(what, per, target);
}

/** Failed requests of a series run: wrk's errors plus the own client's failures. */
export function seriesFailures(run: SeriesRun): number {
  return wrkErrorTotal(run.errors) + (run.kinds ? clientFailures(run.kinds) : 0);
}

export function checks(r: Results): Check[] {
  const out: Check[] = [];
  const label = (id: string): string => r.meta.labels[id] ?? id;
  const rivals = [['reuseport', SAME_PATH], ['cluster-none', SAME_PATH], ['cluster-rr', AHEAD], ['pm2', AHEAD]] as const;
  for (const mode of ['keepalive', 'newconn'] as const) {
    const modeText = modeName(mode);
    const modePairs = (r.pairs ?? []).filter((x) => x.mode === mode);
    // Head to head, where the run has it: the targets are held there.
    for (const p of modePairs) {
      const target = rivals.find(([rival]) => rival === p.b)?.[1];
      const what = `throughput ${modeText}: ${label(p.a)} ÷ ${label(p.b)}, head to head (per round)`;
      if (p.a === p.b) out.push({ ...spreadCheck(what, p.ratio, 1), target: 'A/A: 1×, the method\'s own reading', met: null });
      else if (target !== undefined) out.push(spreadCheck(what, p.ratio, target));
    }
    const paired = new Set(modePairs.map((x) => `${x.a} ${x.b}`));
    const t = r.throughput[mode];
    for (const h of STRATEGIES) {
      for (const [rival, target] of rivals) {
        if (!t[h] && !t[rival]) continue;
        const c = roundsCheck(`throughput ${modeText}: ${label(h)} ÷ ${label(rival)}, run after run (per round)`, t[h], t[rival], target);
        // Runs seconds apart read the machine's drift too: with a head-to-head figure for the pair, this one only informs.
        out.push(paired.has(`${h} ${rival}`) ? { ...c, target: `${c.target} (held head to head)`, met: null } : c);
      }
    }
  }
  const s = r.reloadSeries;
  for (const h of STRATEGIES) {
    if (!s[h]) continue;
    const failed = s[h].map(seriesFailures);
    out.push({ what: `reload every second under load: ${label(h)} failed requests (wrk + own client, per repeat)`, value: failed.join(', '), target: '0', met: failed.every((n) => n === 0) });
  }
  for (const rival of ['cluster-none', 'cluster-rr', 'pm2']) {
    if (!s[rival]) continue;
    out.push({ what: `reload every second under load: ${label(rival)} failed requests (for comparison)`, value: s[rival].map(seriesFailures).join(', '), target: 'counted', met: null });
  }
  const reloads = (runs: readonly SeriesRun[] | undefined): string => (runs ?? []).map((x) => x.reloads).join('/');
  for (const h of STRATEGIES) {
    for (const rival of ['cluster-none', 'cluster-rr', 'pm2']) {
      if (!s[h] && !s[rival]) continue;
      const c = ratioCheck(`keep-alive req/s during the reload series: ${label(h)} ÷ ${label(rival)} (or the breakdown)`, rps(s[h]), rps(s[rival]), AHEAD);
      out.push({ ...c, value: `${c.value} (reloads ${reloads(s[h])} vs ${reloads(s[rival])})` });
    }
  }
  const d = r.duration;
  if (d) {
    const bare = summarize(d.bareWorkerMs).p50;
    for (const [key, x] of Object.entries(d.configs)) {
      if (x.durationMs.length === 0) continue;
      const per = x.wallMs.map((w, i) => w / ((x.durationMs[i] ?? Number.NaN) + (x.settleMs[i] ?? 0) + CLI_SLACK_MS));
      const ps = summarize(per);
      out.push({
        what: `${key}: CLI wall ÷ (durationMs + settleMs + ${CLI_SLACK_MS} ms), p50 / p95 of ${per.length}`,
        value: `${times(ps.p50)} / ${times(ps.p95)}`,
        target: `≤ ${CLI_FACTOR}×`,
        met: ps.p95 <= CLI_FACTOR,
      });
      // settleMs is reported beside durationMs (the CLI target adds them), so durationMs is the reload's own work.
      const rp = summarize(x.durationMs).p50 / bare;
      out.push({
        what: `${key}: report durationMs p50 ÷ a bare worker's spawn-to-ready p50`,
        value: times(rp),
        target: `≤ ${REPORT_FACTOR}×`,
        met: Number.isFinite(rp) ? rp <= REPORT_FACTOR : null,
      });
      // The breakdown: a reload spawns a whole generation, whose workers share the server CPUs as they start.
      if (d.generationMs?.length) {
        const gp = summarize(x.durationMs).p50 / summarize(d.generationMs).p50;
        out.push({
          what: `${key}: report durationMs p50 ÷ ${d.generationWorkers} bare workers spawned at once, p50 (the breakdown)`,
          value: times(gp),
          target: 'breakdown',
          met: null,
        });
      }
    }
  }
  const c = r.cli;
  if (c) {
    const floor = spread(c.wallMs[NODE_FLOOR] ?? []).median;
    for (const cmd of ['handover --version', 'handover status', 'handover check']) {
      const v = spread(c.wallMs[cmd] ?? []).median / floor;
      out.push({ what: `CLI: ${cmd} wall ÷ ${NODE_FLOOR} (medians)`, value: times(v), target: `≤ ${CLI_FACTOR}×`, met: Number.isFinite(v) ? v <= CLI_FACTOR : null });
    }
  }
  return out;
}
