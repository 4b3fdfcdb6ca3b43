// handover itself: `dist/main.js start` with a config of the bench's, the
// bench app, a strategy (migrate or inherit), reloads through the CLI as a
// user or `systemctl reload` (ExecReload=handover reload) would ask.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from '../../src/cli/client.js';
import type { Box } from '../lib/box.js';
import {
  ROOT, SERVERS, START_TIMEOUT_MS, STOP_GRACE_MS, rememberTree, timedCommand,
  type Contender, type ContenderOptions, type ReloadTiming,
} from './contender.js';
import { jsonLine, Watched } from './watched.js';

const STATUS_TIMEOUT_MS = 10_000;

export const MAIN = join(ROOT, 'dist/main.js');

export type Strategy = 'migrate' | 'inherit';

export function handoverConfig(o: ContenderOptions, strategy: Strategy, socket: string): string {
  const lines = [
    `app: ${JSON.stringify(join(SERVERS, 'ok.mjs'))}`,
    `workers: ${o.workers}`,
    'listen:',
    `  - address: 127.0.0.1:${o.port}`,
    ...(o.tls ? [`    tls: { cert: ${JSON.stringify(o.tls.cert)}, key: ${JSON.stringify(o.tls.key)} }`] : []),
    'reload:',
    `  strategy: ${strategy}`,
    `  watch: ${o.watchTls === true}`,
    ...(o.settle !== undefined ? [`  settle: ${o.settle}`] : []),
    ...(o.metrics === true ? ['metrics: { listen: 127.0.0.1:0 }'] : []),
    `control: { socket: ${JSON.stringify(socket)} }`,
    'log: { level: info }',
    '',
  ];
  return lines.join('\n');
}

/** The fields of a reload report the bench reads. */
export interface ReportFigures {
  readonly result: string;
  readonly durationMs: number;
  readonly settleMs?: number;
  readonly trigger?: string;
  readonly reason?: string;
}

export function parseReport(text: string): ReportFigures {
  const start = text.indexOf('{');
  const report = JSON.parse(text.slice(start)) as ReportFigures;
  if (typeof report.result !== 'string' || typeof report.durationMs !== 'number') throw new Error(`not a reload report: ${text.slice(0, 200)}`);
  return report;
}

export class Handover implements Contender {
  readonly id: string;
  readonly label: string;
  readonly reloadHow = 'handover reload (CLI)';
  readonly config: string;
  /** The master's control socket. */
  readonly socket: string;
  private master: Watched | undefined;
  private restartsSeen = 0;

  constructor(
    private readonly box: Box,
    readonly strategy: Strategy,
    readonly options: ContenderOptions,
    suffix = '',
  ) {
    this.id = `handover-${strategy}${suffix}`;
    this.label = `handover (${strategy}${suffix ? `, ${suffix.slice(1)}` : ''})`;
    this.config = join(box.dir, `${this.id}-${options.port}.yaml`);
    this.socket = join(box.dir, `${this.id}-${options.port}.sock`);
    writeFileSync(this.config, handoverConfig(options, strategy, this.socket));
  }

  async start(): Promise<void> {
    const env = { ...process.env, HANDOVER_LOG_PRETTY: '0' };
    this.master = new Watched(this.id, this.box.spawn('servers', process.execPath, [MAIN, 'start', '-c', this.config], env));
    await this.master.waitFor('"serving" log line', START_TIMEOUT_MS, (line) => {
      const msg = jsonLine(line)?.['msg'];
      return typeof msg === 'string' && msg.startsWith('serving ') ? true : undefined;
    });
  }

  async reload(): Promise<ReloadTiming> {
    const r = await timedCommand(this.box, process.execPath, [MAIN, 'reload', '-c', this.config, '--json'], { ...process.env, HANDOVER_LOG_PRETTY: '0' });
    try {
      const report = parseReport(r.stdout);
      return {
        ok: report.result === 'ok',
        wallMs: r.wallMs,
        commandCpuMs: r.cpuMs,
        durationMs: report.durationMs,
        ...(typeof report.settleMs === 'number' ? { settleMs: report.settleMs } : {}),
        ...(report.result === 'ok' ? {} : { error: `${report.result}: ${report.reason ?? ''}`.split('\n')[0]! }),
      };
    } catch (err) {
      return { ok: false, wallMs: r.wallMs, commandCpuMs: r.cpuMs, error: `exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n')[0]} (${String(err)})` };
    }
  }

  /** Waits for the next reload the master reports in its log (a watch-triggered one). */
  nextLoggedReload(timeoutMs: number): Promise<Record<string, unknown>> {
    if (!this.master) throw new Error(`${this.id}: not started`);
    return this.master.waitFor('reload report in the log', timeoutMs, (line) => {
      const record = jsonLine(line);
      const report = record?.['reload'];
      return report !== null && typeof report === 'object' ? (report as Record<string, unknown>) : undefined;
    });
  }

  async notes(): Promise<string[]> {
    const out = (this.master?.warnings.splice(0) ?? []).map((line) => `log: ${line}`);
    try {
      const { response } = await request(this.socket, { cmd: 'status' }, STATUS_TIMEOUT_MS);
      const generations = (response.result as { generations?: { workers?: { restarts?: number }[] }[] } | undefined)?.generations ?? [];
      const restarts = generations.flatMap((g) => g.workers ?? []).reduce((n, w) => n + (w.restarts ?? 0), 0);
      if (restarts > this.restartsSeen) out.push(`status: ${restarts - this.restartsSeen} worker restart(s)`);
      this.restartsSeen = restarts;
    } catch (err) {
      out.push(`status: ${String(err)}`);
    }
    return out;
  }

  masterPid(): number | undefined {
    return this.master?.pid;
  }

  roots(): number[] {
    return this.master ? [this.master.pid] : [];
  }

  async stop(): Promise<void> {
    if (!this.master) return;
    const tree = rememberTree([this.master.pid]);
    await this.master.stop(STOP_GRACE_MS);
    tree.kill();
  }
}
