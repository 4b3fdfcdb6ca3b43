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
/** How long `stop` waits for the master to exit when it did not say (an older master). */
const STOP_WAIT_FALLBACK_MS = 120_000;
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
  if (report.tls?.rotate === 'in-place') {
    out(`certificates replaced in place: generation ${report.generation} in ${report.durationMs.toFixed(0)} ms`);
  } else if (report.result === 'ok') {
    out(`reloaded: generation ${report.previous} -> ${report.generation} (${report.strategy}) in ${report.durationMs.toFixed(0)} ms`);
    out(`  queued at cutover ${report.queuedAtCutover}, migrated ${report.migrated}, dropped ${report.dropped}`);
    out(`  listeners: ${report.listeners.map((l) => `${l.address} ${l.inherit ? 'inherited' : l.action}`).join(', ')}`);
    if (report.drain) out(`  drained ${report.drain.drained} connections in ${report.drain.durationMs.toFixed(0)} ms, killed ${report.drain.killed}`);
  } else {
    const what = { invalid: 'refused (invalid configuration)', refused: 'refused', rolled_back: 'rolled back' }[report.result];
    out(`reload ${what}; generation ${report.previous ?? '-'} keeps serving`);
    out(`  ${(report.reason ?? '').split('\n').join('\n  ')}`);
  }
  for (const c of report.result === 'ok' ? (report.tls?.certificates ?? []) : []) out(`  tls ${c.address} ${c.name}: ${c.subject}, serial ${c.serial}, expires ${c.notAfter}`);
  for (const w of report.warnings) out(`  warning: ${w}`);
  return code;
}

export async function stop(target: ControlTarget, fast: boolean, out: Output): Promise<number> {
  const { response, closed } = await request(target.socket, { cmd: 'stop', fast }, ANSWER_TIMEOUT_MS);
  if (!response.ok) throw new Error(`stop: ${response.error}`);
  const { pid, deadlineMs } = response.result as { pid: number; deadlineMs?: number };
  out(`stopping handover master pid ${pid} (${fast ? 'fast' : 'graceful'})...`);
  // The master says how long its stop may take (stop_delay + drain_timeout + grace); wait that long, not forever.
  const limit = deadlineMs ?? STOP_WAIT_FALLBACK_MS;
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), limit)))]);
  clearTimeout(timer);
  if (!ended) throw new Error(`master pid ${pid} has not stopped within ${limit} ms; it may still be draining (handover status)`);
  out('stopped');
  return 0;
}
