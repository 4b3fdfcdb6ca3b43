// `handover status` for a person: the master, one table of generations and
// their workers, and the last reloads. Pure: status in, lines out.
import type { MasterStatus, ReloadReport, WorkerStatus } from '../protocol/control.js';
import { formatBytes, formatCpu, formatDuration, palette, table, type Cell, type Palette, type Row } from './style.js';

/** Reloads shown; the master keeps a few more for `status --json`. */
export const RELOADS_SHOWN = 10;

export interface ViewOptions {
  readonly colour: boolean;
  /** For "ago"; the master's clock and ours are the same machine's. */
  readonly now?: number;
}

export function renderStatus(s: MasterStatus, options: ViewOptions): string[] {
  const p = palette(options.colour);
  const now = options.now ?? Date.now();
  const lines = [
    `${p.bold(`handover master pid ${s.pid}`)}, ${s.state === 'running' ? p.green(s.state) : p.yellow(s.state)}, up ${formatDuration(s.uptimeMs)}`,
    `config:      ${s.config}`,
    `listening:   ${s.listen.join(', ') || '-'}`,
    `generation:  ${s.generation ?? '-'}${s.reloading ? p.yellow(' (reloading)') : ''}, reload strategy ${s.strategy}`,
    '',
    ...workerTable(s, p),
  ];
  const reloads = s.reloads.slice(-RELOADS_SHOWN);
  if (reloads.length > 0) lines.push('', ...reloadTable(reloads, p, now));
  return lines;
}

function workerTable(s: MasterStatus, p: Palette): string[] {
  if (s.generations.length === 0) return ['no generation is running'];
  const workers = s.generations.flatMap((g) => g.workers);
  // Only when the master measures them (older masters do not).
  const cpu = workers.some((w) => w.cpuSeconds !== undefined);
  const rss = workers.some((w) => w.rssBytes !== undefined);
  const header: Row = ['GENERATION', 'WORKER', 'PID', 'STATE', 'UPTIME', 'RESTARTS', ...(cpu ? ['CPU'] : []), ...(rss ? ['RSS'] : [])];
  const rows: Row[] = [header.map((h) => ({ text: String(h), paint: p.bold }))];
  for (const g of s.generations) {
    g.workers.forEach((w, i) => {
      const generation: Cell = i === 0 ? { text: `${g.generation} ${g.state}`, paint: generationPaint(g.state, p) } : { text: '' };
      rows.push([
        generation,
        String(w.index),
        w.pid === null ? '-' : String(w.pid),
        stateCell(w, p),
        w.pid === null ? '-' : formatDuration(w.uptimeMs),
        w.restarts > 0 ? { text: String(w.restarts), paint: p.yellow } : '0',
        ...(cpu ? [w.cpuSeconds === undefined ? '-' : formatCpu(w.cpuSeconds)] : []),
        ...(rss ? [w.rssBytes === undefined ? '-' : formatBytes(w.rssBytes)] : []),
      ]);
    });
    if (g.workers.length === 0) rows.push([{ text: `${g.generation} ${g.state}`, paint: generationPaint(g.state, p) }, '-']);
  }
  return table(rows);
}

function generationPaint(state: string, p: Palette): (s: string) => string {
  if (state === 'active') return p.green;
  if (state === 'starting' || state === 'draining') return p.yellow;
  return p.dim;
}

function stateCell(w: WorkerStatus, p: Palette): Cell {
  const text = w.nextAttemptInMs === undefined ? w.state : `${w.state} (next try in ${formatDuration(w.nextAttemptInMs)})`;
  if (w.state === 'serving') return { text, paint: p.green };
  if (w.state === 'starting' || w.state === 'ready') return { text, paint: p.cyan };
  if (w.state === 'draining') return { text, paint: p.yellow };
  if (w.state.startsWith('exited (drained)')) return { text, paint: p.dim };
  return { text, paint: p.red }; // down, failed, backoff, exited otherwise
}

function reloadTable(reports: readonly ReloadReport[], p: Palette, now: number): string[] {
  const header = ['RELOAD', 'WHEN', 'TRIGGER', 'RESULT', 'GENERATION', 'STRATEGY', 'TOOK', 'QUEUED', 'MIGRATED', 'DROPPED', 'DRAINED', 'NOTE'];
  const rows: Row[] = [header.map((h) => ({ text: h, paint: p.bold }))];
  for (const r of reports) {
    const ok = r.result === 'ok';
    const result: Cell = { text: r.result.replaceAll('_', ' '), paint: ok ? p.green : r.result === 'rolled_back' ? p.red : p.yellow };
    const started = Date.parse(r.startedAt);
    rows.push([
      `#${r.id}`,
      Number.isNaN(started) ? '-' : `${formatDuration(Math.max(0, now - started))} ago`,
      r.trigger,
      result,
      ok ? `${r.previous ?? '-'} -> ${r.generation ?? '-'}` : String(r.previous ?? '-'),
      r.strategy ?? '-',
      `${r.durationMs.toFixed(0)} ms`,
      ok ? String(r.queuedAtCutover) : '-',
      ok ? String(r.migrated) : '-',
      ok ? { text: String(r.dropped), ...(r.dropped > 0 ? { paint: p.red } : {}) } : '-',
      ok ? (r.drain ? drained(r.drain.drained, r.drain.killed) : 'draining') : '-',
      note(r),
    ]);
  }
  return table(rows);
}

function drained(count: number, killed: number): string {
  return killed > 0 ? `${count} (${killed} killed)` : String(count);
}

function note(r: ReloadReport): string {
  const first = (r.reason ?? r.warnings[0] ?? '').split('\n')[0] ?? '';
  const more = r.reason === undefined && r.warnings.length > 1 ? ` (+${r.warnings.length - 1} more)` : '';
  return first + more;
}
