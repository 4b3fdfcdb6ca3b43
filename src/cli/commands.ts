// The commands that talk to a running master: status, reload, stop. They
// need only where the master listens (cli/target.ts), never the validated
// configuration, so they load neither zod nor pino nor ffi-rs.
import type { MasterStatus, ReloadReport } from '../protocol/control.js';
import { request } from './client.js';
import { renderStatus } from './status-view.js';
import { wantColour } from './style.js';
import type { ControlTarget } from './target.js';

/** How long the CLI waits for the master to answer a request. */
const ANSWER_TIMEOUT_MS = 10_000;
/** Slack on top of the configured deadlines for the master's own work. */
const RELOAD_SLACK_MS = 30_000;

export type Output = (line: string) => void;

export async function status(target: ControlTarget, json: boolean, out: Output): Promise<number> {
  const { response } = await request(target.socket, { cmd: 'status' }, ANSWER_TIMEOUT_MS);
  if (!response.ok) throw new Error(`status: ${response.error}`);
  if (json) out(JSON.stringify(response.result, null, 2));
  else for (const line of renderStatus(response.result as MasterStatus, { colour: wantColour() })) out(line);
  return 0;
}

export async function reload(target: ControlTarget, json: boolean, waitDrain: boolean, out: Output): Promise<number> {
  const { readyTimeoutMs, settleMs, drainTimeoutMs } = target.deadlines;
  const timeout = readyTimeoutMs + settleMs + RELOAD_SLACK_MS + (waitDrain ? drainTimeoutMs : 0);
  const { response } = await request(target.socket, { cmd: 'reload', waitDrain }, timeout);
  const report = response.result as ReloadReport | undefined;
  if (!report) throw new Error(`reload: ${response.ok ? 'no report' : response.error}`);
  // invalid: the configuration (exit 2); rolled back or refused: at run time (exit 1).
  const code = report.result === 'ok' ? 0 : report.result === 'invalid' ? 2 : 1;
  if (json) {
    out(JSON.stringify(report, null, 2));
    return code;
  }
  if (report.result === 'ok') {
    out(`reloaded: generation ${report.previous} -> ${report.generation} (${report.strategy}) in ${report.durationMs.toFixed(0)} ms`);
    out(`  queued at cutover ${report.queuedAtCutover}, migrated ${report.migrated}, dropped ${report.dropped}`);
    out(`  listeners: ${report.listeners.map((l) => `${l.address} ${l.inherit ? 'inherited' : l.action}`).join(', ')}`);
    if (report.drain) out(`  drained ${report.drain.drained} connections in ${report.drain.durationMs.toFixed(0)} ms, killed ${report.drain.killed}`);
  } else {
    const what = report.result === 'invalid' ? 'refused (invalid configuration)' : report.result.replaceAll('_', ' ');
    out(`reload ${what}; generation ${report.previous} keeps serving`);
    out(`  ${(report.reason ?? '').split('\n').join('\n  ')}`);
  }
  for (const w of report.warnings) out(`  warning: ${w}`);
  return code;
}

export async function stop(target: ControlTarget, fast: boolean, out: Output): Promise<number> {
  const { response, closed } = await request(target.socket, { cmd: 'stop', fast }, ANSWER_TIMEOUT_MS);
  if (!response.ok) throw new Error(`stop: ${response.error}`);
  const pid = (response.result as { pid: number }).pid;
  out(`stopping handover master pid ${pid} (${fast ? 'fast' : 'graceful'})...`);
  await closed;
  out('stopped');
  return 0;
}
