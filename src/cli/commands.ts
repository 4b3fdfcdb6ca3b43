// The commands that talk to a running master, and `check`.
import type { Config } from '../config/index.js';
import { readTcpMigrateReq } from '../metrics/kernel.js';
import { chooseStrategy, SYSCTL_HINT } from '../net/index.js';
import type { MasterStatus, ReloadReport } from '../protocol/control.js';
import { checkTls, describeTls } from '../tls/check.js';
import { request } from './client.js';
import { release } from 'node:os';

/** How long the CLI waits for the master to answer a request. */
const ANSWER_TIMEOUT_MS = 10_000;

export type Output = (line: string) => void;

export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

export async function status(config: Config, json: boolean, out: Output): Promise<number> {
  const { response } = await request(config.controlSocket, { cmd: 'status' }, ANSWER_TIMEOUT_MS);
  if (!response.ok) throw new Error(`status: ${response.error}`);
  if (json) {
    out(JSON.stringify(response.result, null, 2));
    return 0;
  }
  const s = response.result as MasterStatus;
  out(`handover master pid ${s.pid}, ${s.state}, up ${formatDuration(s.uptimeMs)}`);
  out(`config:     ${s.config}`);
  out(`listening:  ${s.listen.join(', ') || '-'}`);
  out(`generation: ${s.generation ?? '-'}${s.reloading ? ' (reloading)' : ''}, reload strategy ${s.strategy}`);
  const last = s.reloads.at(-1);
  if (last) {
    const figures = last.result === 'ok' ? `, ${last.migrated} migrated, ${last.dropped} dropped` : `: ${last.reason ?? ''}`.split('\n')[0];
    out(`last reload: #${last.id} ${last.result} (${last.trigger}, ${last.startedAt})${figures}`);
  }
  for (const g of s.generations) {
    out('');
    out(`generation ${g.generation} (${g.state})`);
    out(`  ${'worker'.padEnd(7)}${'pid'.padEnd(9)}${'state'.padEnd(10)}${'uptime'.padEnd(9)}restarts`);
    for (const w of g.workers) {
      const state = w.nextAttemptInMs === undefined ? w.state : `${w.state} (${formatDuration(w.nextAttemptInMs)})`;
      out(`  ${String(w.index).padEnd(7)}${String(w.pid ?? '-').padEnd(9)}${state.padEnd(10)}${formatDuration(w.uptimeMs).padEnd(9)}${w.restarts}`);
    }
  }
  return 0;
}

/** How long `stop` waits for the master to exit when it did not say (an older master). */
const STOP_WAIT_FALLBACK_MS = 120_000;

/** Slack on top of the configured deadlines for the master's own work. */
const RELOAD_SLACK_MS = 30_000;

/** The schema's defaults, for a reload whose configuration file does not load. */
export const DEFAULT_DEADLINES = { readyTimeoutMs: 10_000, settleMs: 1_000, drainTimeoutMs: 30_000 } as const;

export async function reload(config: Pick<Config, 'controlSocket'> & { reload: typeof DEFAULT_DEADLINES | Config['reload'] }, json: boolean, waitDrain: boolean, out: Output): Promise<number> {
  const { readyTimeoutMs, settleMs, drainTimeoutMs } = config.reload;
  const timeout = readyTimeoutMs + settleMs + RELOAD_SLACK_MS + (waitDrain ? drainTimeoutMs : 0);
  const { response } = await request(config.controlSocket, { cmd: 'reload', waitDrain }, timeout);
  const report = response.result as ReloadReport | undefined;
  if (!report) throw new Error(`reload: ${response.ok ? 'no report' : response.error}`);
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

export async function stop(config: Config, fast: boolean, out: Output): Promise<number> {
  const { response, closed } = await request(config.controlSocket, { cmd: 'stop', fast }, ANSWER_TIMEOUT_MS);
  if (!response.ok) throw new Error(`stop: ${response.error}`);
  const { pid, deadlineMs } = response.result as { pid: number; deadlineMs?: number };
  out(`stopping handover master pid ${pid} (${fast ? 'fast' : 'graceful'})...`);
  // The master says how long its stop may take (stop_delay + drain_timeout + grace); wait that long, not forever.
  const limit = deadlineMs ?? STOP_WAIT_FALLBACK_MS;
  let timer: NodeJS.Timeout | undefined;
  const ended = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), limit)))]);
  clearTimeout(timer);
  if (!ended) throw new Error(`master pid ${pid} has not stopped within ${limit} ms; it may still be draining (handover status)`);
  out(`stopped`);
  return 0;
}

export function check(config: Config, kernel: boolean, out: Output): number {
  const tls = checkTls(config); // the validation start and reload run; throws ConfigError
  const listen = config.listen.map((l) => l.address.text + (l.tls ? ' (tls)' : '')).join(', ');
  out(`configuration ok: ${config.file}`);
  out(`  app:     ${config.app}`);
  out(`  workers: ${config.workers}`);
  out(`  listen:  ${listen}`);
  out(`  control: ${config.controlSocket}`);
  for (const line of describeTls(tls, config.tls.warnBeforeMs)) out(line);
  for (const w of config.warnings) out(`warning: ${w}`);
  if (kernel) {
    const migrate = readTcpMigrateReq();
    const choice = chooseStrategy(config.reload.strategy, migrate);
    out(`kernel: Linux ${release()}`);
    out(
      migrate === null
        ? '  net.ipv4.tcp_migrate_req: absent (Linux < 5.14): no kernel migration'
        : `  net.ipv4.tcp_migrate_req = ${migrate} (in this network namespace)`,
    );
    out(`  reload.strategy: ${config.reload.strategy} -> ${choice.strategy}`);
    if (choice.warning) out(`  warning: ${choice.warning}`);
    if (migrate !== 1 && !choice.warning) {
      out(`  kernel migration is off: reloads hand listeners over by ${choice.strategy}; for migration ${SYSCTL_HINT}`);
      if (config.reload.setTcpMigrateReq) out('  reload.set_tcp_migrate_req is true: a root master will set it at start');
    }
  }
  return 0;
}
