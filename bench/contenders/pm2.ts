// PM2 in cluster mode (`pm2 start -i N`, `pm2 reload`), from the dev
// dependency, with a PM2_HOME of its own in the bench's temporary directory
// (never the user's ~/.pm2). Its daemon is started by the first CLI call
// inside the namespace and killed at the end: `pm2 kill`, then by the pid
// in PM2_HOME/pm2.pid if it is still there.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Box } from '../lib/box.js';
import { ProcessSet } from '../lib/procfs.js';
import {
  ROOT, SERVERS, STOP_GRACE_MS, probe, rememberTree, timedCommand,
  type Contender, type ContenderOptions, type ReloadTiming,
} from './contender.js';

export const PM2_BIN = join(ROOT, 'node_modules/pm2/bin/pm2');
const APP_NAME = 'bench-ok';

export class Pm2 implements Contender {
  readonly id = 'pm2';
  readonly label: string;
  readonly reloadHow = 'pm2 reload (CLI)';
  private readonly home: string;
  private daemon: number | undefined;

  constructor(
    private readonly box: Box,
    readonly options: ContenderOptions,
  ) {
    this.label = `PM2 ${pm2Version()} (cluster mode)`;
    this.home = join(box.dir, `pm2-${options.port}`);
    mkdirSync(this.home, { recursive: true });
  }

  private env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      PM2_HOME: this.home,
      PORT: String(this.options.port),
      ...(this.options.tls ? { BENCH_TLS_CERT: this.options.tls.cert, BENCH_TLS_KEY: this.options.tls.key } : {}),
    };
  }

  private pm2(args: readonly string[]): ReturnType<typeof timedCommand> {
    return timedCommand(this.box, process.execPath, [PM2_BIN, ...args], this.env());
  }

  async start(): Promise<void> {
    const r = await this.pm2(['start', join(SERVERS, 'pm2-app.cjs'), '-i', String(this.options.workers), '--name', APP_NAME]);
    this.daemon = Number(readFileSync(join(this.home, 'pm2.pid'), 'utf8').trim()) || undefined;
    if (r.code !== 0) throw new Error(`pm2 start exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    await probe(this.box, this.options.port, this.options.tls !== undefined);
  }

  async reload(): Promise<ReloadTiming> {
    const r = await this.pm2(['reload', APP_NAME]);
    return r.code === 0
      ? { ok: true, wallMs: r.wallMs, commandCpuMs: r.cpuMs }
      : { ok: false, wallMs: r.wallMs, commandCpuMs: r.cpuMs, error: `pm2 reload exited ${r.code}: ${r.stderr.trim().split('\n')[0]}` };
  }

  notes(): Promise<string[]> {
    return Promise.resolve([]);
  }

  masterPid(): number | undefined {
    return this.daemon;
  }

  roots(): number[] {
    return this.daemon ? [this.daemon] : [];
  }

  async stop(): Promise<void> {
    if (this.daemon === undefined) return;
    const tree = rememberTree([this.daemon]);
    try {
      await this.pm2(['kill']);
    } catch {
      /* killed below */
    }
    const deadline = Date.now() + STOP_GRACE_MS;
    while (tree.alive().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    tree.kill();
    const daemon = new ProcessSet();
    daemon.add([this.daemon]);
    daemon.kill();
    this.daemon = undefined;
  }
}

export function pm2Version(): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules/pm2/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}
