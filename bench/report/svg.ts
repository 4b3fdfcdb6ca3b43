// The plot of scenario 3, drawn from the results by hand (no plotting
// dependency): one panel per contender, from its first repeat. Above, wrk's
// completed requests per second during the keep-alive series; below, the own
// client's failed requests per bucket, stacked by kind, from its series.
// Each reload is marked where it was requested, and shaded until the
// caller's wait ended.
import type { ReloadMark, Results, SeriesRun } from '../lib/results.js';
import { BUCKET_MS } from '../lib/wrk.js';

const W = 960;
const LEFT = 76;
const RIGHT = 20;
const PLOT_W = W - LEFT - RIGHT;
const TITLE_H = 22;
const RPS_H = 90;
const GAP = 8;
const FAIL_H = 44;
const PANEL_H = TITLE_H + RPS_H + GAP + FAIL_H + 26;
const LEGEND_H = 30;
export const KIND_COLORS: Record<string, string> = {
  reset: '#d62728', refused: '#ff7f0e', eof: '#9467bd', timeout: '#8c564b', non2xx: '#1f77b4', other: '#7f7f7f',
};

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const f1 = (v: number): string => v.toFixed(1);

interface Panel {
  readonly label: string;
  readonly run: SeriesRun;
}

function marks(out: string[], list: readonly ReloadMark[], t0: number, seconds: number, y: number, h: number): void {
  const x = (t: number): number => LEFT + (Math.min(Math.max((t - t0) / 1000, 0), seconds) / seconds) * PLOT_W;
  for (const m of list) {
    const a = x(m.at);
    const b = Math.max(x(m.end), a + 1);
    out.push(`<rect x="${f1(a)}" y="${y}" width="${f1(b - a)}" height="${h}" fill="#f5b041" opacity="0.22"/>`);
    out.push(`<line x1="${f1(a)}" x2="${f1(a)}" y1="${y}" y2="${y + h}" stroke="${m.ok ? '#b9770e' : '#d62728'}" stroke-width="1"/>`);
  }
}

function failureBuckets(run: SeriesRun): { t0: number; kinds: readonly string[]; rows: Map<number, number[]> } | undefined {
  const k = run.kinds;
  if (!k) return undefined;
  const rows = new Map<number, number[]>();
  for (const mode of Object.values(k.modes)) {
    for (const [b, , ...failed] of mode.timeline) {
      const row = rows.get(b!) ?? new Array<number>(k.kinds.length).fill(0);
      failed.forEach((n, i) => (row[i] = (row[i] ?? 0) + (n ?? 0)));
      rows.set(b!, row);
    }
  }
  return { t0: k.startedAt, kinds: k.kinds, rows };
}

export function seriesSvg(r: Results): string {
  const panels: Panel[] = Object.keys(r.meta.labels)
    .filter((id) => r.reloadSeries[id]?.[0])
    .map((id) => ({ label: r.meta.labels[id]!, run: r.reloadSeries[id]![0]! }));
  const seconds = r.meta.durations['seriesS'] ?? 30;
  const bucketS = BUCKET_MS / 1000;
  const maxRps = Math.max(1, ...panels.flatMap((p) => p.run.timeline.map(([, n]) => n / bucketS)));
  const maxFail = Math.max(1, ...panels.flatMap((p) => [...(failureBuckets(p.run)?.rows.values() ?? [])].map((row) => row.reduce((a, b) => a + b, 0))));
  const H = LEGEND_H + panels.length * PANEL_H + 10;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${LEFT}" y="16" font-size="13" font-weight="bold">Reload every second under load: requests per second (wrk, keep-alive) and failed requests (own client)</text>`,
  ];
  let lx = LEFT;
  out.push(`<rect x="${lx}" y="21" width="10" height="8" fill="#f5b041" opacity="0.5"/><text x="${lx + 14}" y="29">reload (requested → caller's wait ended)</text>`);
  lx += 240;
  for (const [kind, color] of Object.entries(KIND_COLORS)) {
    out.push(`<rect x="${lx}" y="21" width="10" height="8" fill="${color}"/><text x="${lx + 14}" y="29">${kind}</text>`);
    lx += 70;
  }
  panels.forEach((p, i) => {
    const top = LEGEND_H + i * PANEL_H;
    const rpsY = top + TITLE_H;
    const failY = rpsY + RPS_H + GAP;
    const run = p.run;
    const failedTotal = run.kinds ? Object.values(run.kinds.modes).reduce((n, m) => n + Object.values(m.failed).reduce((a, b) => a + b, 0), 0) : 0;
    out.push(`<text x="${LEFT}" y="${top + 15}" font-weight="bold">${esc(p.label)}</text>`);
    out.push(`<text x="${W - RIGHT}" y="${top + 15}" text-anchor="end">${run.reloads} reloads; ${Math.round(run.rps).toLocaleString('en-US')} req/s (${Math.round(run.calmRps).toLocaleString('en-US')} without reloads); own client: ${failedTotal} failed</text>`);
    out.push(`<rect x="${LEFT}" y="${rpsY}" width="${PLOT_W}" height="${RPS_H}" fill="#fafafa" stroke="#cccccc"/>`);
    out.push(`<rect x="${LEFT}" y="${failY}" width="${PLOT_W}" height="${FAIL_H}" fill="#fafafa" stroke="#cccccc"/>`);
    out.push(`<clipPath id="p${i}"><rect x="${LEFT}" y="${rpsY}" width="${PLOT_W}" height="${failY + FAIL_H - rpsY}"/></clipPath>`, `<g clip-path="url(#p${i})">`);
    const t0 = run.timeline[0]?.[0] ?? run.marks[0]?.at ?? 0;
    marks(out, run.marks, t0, seconds, rpsY, RPS_H);
    const x = (t: number, from: number): number => LEFT + ((t - from) / 1000 / seconds) * PLOT_W;
    // The first and last buckets are partial (wrk started and stopped within them).
    const pts = run.timeline
      .slice(1, -1)
      .map(([b, n]) => `${f1(x(b + BUCKET_MS / 2, t0))},${f1(rpsY + RPS_H - (n / bucketS / maxRps) * RPS_H)}`);
    if (pts.length > 1) out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="#2c3e50" stroke-width="1.3"/>`);
    const fb = failureBuckets(run);
    if (fb && run.kinds) {
      marks(out, run.kinds.marks, fb.t0, seconds, failY, FAIL_H);
      const bw = Math.max(1, (run.kinds.bucketMs / 1000 / seconds) * PLOT_W - 0.5);
      for (const [b, row] of fb.rows) {
        if ((b - fb.t0) / 1000 > seconds) continue;
        let y = failY + FAIL_H;
        row.forEach((n, k) => {
          if (n <= 0) return;
          const h = (n / maxFail) * FAIL_H;
          y -= h;
          out.push(`<rect x="${f1(x(b, fb.t0))}" y="${f1(y)}" width="${f1(bw)}" height="${f1(h)}" fill="${KIND_COLORS[fb.kinds[k]!] ?? '#7f7f7f'}"/>`);
        });
      }
    }
    out.push('</g>');
    out.push(`<text x="${LEFT - 6}" y="${rpsY + 9}" text-anchor="end">${Math.round(maxRps / 1000)}k/s</text><text x="${LEFT - 6}" y="${rpsY + RPS_H}" text-anchor="end">0</text>`);
    out.push(`<text x="${LEFT - 6}" y="${failY + 9}" text-anchor="end">${maxFail}</text><text x="${LEFT - 6}" y="${failY + FAIL_H}" text-anchor="end">0</text>`);
    out.push(`<text x="${LEFT - 6}" y="${failY + FAIL_H / 2 + 4}" text-anchor="end" fill="#666666">failed</text>`);
    out.push(`<text x="${LEFT - 6}" y="${failY + FAIL_H / 2 + 15}" text-anchor="end" fill="#666666">/ ${run.kinds?.bucketMs ?? BUCKET_MS} ms</text>`);
    for (let s = 0; s <= seconds; s += seconds > 10 ? 5 : 1) {
      const tx = LEFT + (s / seconds) * PLOT_W;
      out.push(`<text x="${f1(tx)}" y="${failY + FAIL_H + 13}" text-anchor="middle" fill="#666666">${s}s</text>`);
    }
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
