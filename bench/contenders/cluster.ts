// Node's cluster module, round robin or SCHED_NONE, with the usual SIGHUP
// reload (bench/servers/cluster.mjs). The caller's wait is signal sent to the
// primary's "reloaded" line: new workers listening, old ones disconnected.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Box } from '../lib/box.js';
import {
  RELOAD_TIMEOUT_MS, SERVERS, START_TIMEOUT_MS, STOP_GRACE_MS, rememberTree,
  type Contender, type ContenderOptions, type ReloadTiming,
} from './contender.js';
import { jsonLine, Watched } from './watched.js';

export type Scheduling = 'rr' | 'none';

export class Cluster implements Contender {
  readonly id: string;
  readonly label: string;
  readonly reloadHow = 'SIGHUP to the primary';
  private primary: Watched | undefined;

  constructor(
    private readonly box: Box,
    readonly scheduling: Scheduling,
    readonly options: ContenderOptions,
  ) {
    this.id = `cluster-${scheduling}`;
    this.label = scheduling === 'rr' ? 'Node cluster (round robin)' : 'Node cluster (SCHED_NONE)';
  }

  async start(): Promise<void> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_CLUSTER_SCHED_POLICY: this.scheduling,
      PORT: String(this.options.port),
      BENCH_WORKERS: String(this.options.workers),
      ...(this.options.tls ? { BENCH_TLS_CERT: this.options.tls.cert, BENCH_TLS_KEY: this.options.tls.key } : {}),
    };
    this.primary = new Watched(this.id, this.box.spawn('servers', process.execPath, [join(SERVERS, 'cluster.mjs')], env));
    await this.primary.waitFor('"ready" event', START_TIMEOUT_MS, (line) => (jsonLine(line)?.['event'] === 'ready' ? true : undefined));
  }

  async reload(): Promise<ReloadTiming> {
    const primary = this.primary;
    if (!primary) throw new Error(`${this.id}: not started`);
    const started = performance.now();
    const done = primary.waitFor('"reloaded" event', RELOAD_TIMEOUT_MS, (line) => (jsonLine(line)?.['event'] === 'reloaded' ? true : undefined));
    primary.child.kill('SIGHUP');
    try {
      await done;
      return { ok: true, wallMs: performance.now() - started };
    } catch (err) {
      return { ok: false, wallMs: performance.now() - started, error: String(err).split('\n')[0]! };
    }
  }

  notes(): Promise<string[]> {
    return Promise.resolve([]);
  }

  masterPid(): number | undefined {
    return this.primary?.pid;
  }

  roots(): number[] {
    return this.primary ? [this.primary.pid] : [];
  }

  async stop(): Promise<void> {
    if (!this.primary) return;
    const tree = rememberTree([this.primary.pid]);
    await this.primary.stop(STOP_GRACE_MS);
    tree.kill();
  }
}
