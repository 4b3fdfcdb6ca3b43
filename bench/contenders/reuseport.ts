// The throughput ceiling: N independent node processes, each on its own
// SO_REUSEPORT socket (bench/servers/reuseport.mjs), no supervisor, so no
// reload. Its spawn-to-listening time is also a baseline for reloads.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Box } from '../lib/box.js';
import { SERVERS, START_TIMEOUT_MS, STOP_GRACE_MS, type Contender, type ContenderOptions, type ReloadTiming } from './contender.js';
import { Watched } from './watched.js';

export class Reuseport implements Contender {
  readonly id = 'reuseport';
  readonly label = 'bare SO_REUSEPORT workers';
  readonly reloadHow = null;
  private workers: Watched[] = [];

  constructor(
    private readonly box: Box,
    readonly options: ContenderOptions,
  ) {}

  /** Starts one more worker; resolves with its spawn-to-listening time (ms). */
  async spawnOne(): Promise<number> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(this.options.port),
      ...(this.options.tls ? { BENCH_TLS_CERT: this.options.tls.cert, BENCH_TLS_KEY: this.options.tls.key } : {}),
    };
    const started = performance.now();
    const worker = new Watched(`reuseport worker ${this.workers.length}`, this.box.spawn('servers', process.execPath, [join(SERVERS, 'reuseport.mjs')], env));
    this.workers.push(worker);
    await worker.waitFor('"listening"', START_TIMEOUT_MS, (line) => (line === 'listening' ? true : undefined));
    return performance.now() - started;
  }

  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.options.workers }, () => this.spawnOne()));
  }

  reload(): Promise<ReloadTiming> {
    return Promise.reject(new Error('bare SO_REUSEPORT workers have no supervisor to reload them'));
  }

  notes(): Promise<string[]> {
    return Promise.resolve([]);
  }

  masterPid(): number | undefined {
    return undefined;
  }

  roots(): number[] {
    return this.workers.filter((w) => w.alive).map((w) => w.pid);
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop(STOP_GRACE_MS, 'SIGKILL')));
    this.workers = [];
  }
}
