// The one-line summary `systemctl status` shows (sd_notify STATUS=):
// generation, workers, and the last reload's figures or why it failed.
import type { MasterStatus, ReloadReport } from '../protocol/control.js';

/** systemd shows STATUS= on one line; longer reasons are cut here rather than there. */
export const MAX_STATUS_CHARS = 400;

export function reloadSummary(r: ReloadReport): string {
  const head = `last reload ${r.id} (${r.trigger})`;
  if (r.result === 'ok') {
    return `${head} ok in ${Math.round(r.durationMs)} ms (${r.strategy}): ${r.queuedAtCutover} queued, ${r.migrated} migrated, ${r.dropped} dropped`;
  }
  const what = r.result === 'rolled_back' ? 'rolled back' : r.result === 'invalid' ? 'refused, invalid configuration' : 'refused';
  return `${head} ${what}: ${r.reason ?? 'no reason given'}`;
}

export function masterStatusLine(status: MasterStatus): string {
  const parts: string[] = [];
  const active = status.generations.find((g) => g.generation === status.generation);
  if (active) {
    const serving = active.workers.filter((w) => w.state === 'serving').length;
    parts.push(`generation ${active.generation}: ${serving}/${active.workers.length} workers serving`);
  } else {
    parts.push('no generation serving');
  }
  const draining = status.generations.filter((g) => g.state === 'draining').length;
  if (draining > 0) parts.push(`${draining} draining`);
  const last = status.reloads[status.reloads.length - 1];
  const line = `${parts.join(', ')}${last ? `; ${reloadSummary(last)}` : ''}`;
  return line.length > MAX_STATUS_CHARS ? `${line.slice(0, MAX_STATUS_CHARS - 1)}…` : line;
}
