// Reload duration against its own floor: one bare worker, spawn to ready.
//
//   node --import tsx bench/reload.ts [--reloads 30] [--workers 2] [--json]
//
// A reload cannot be faster than starting one worker (spawn, load, listen,
// `ready`), so that is the baseline, measured in the same run and
// interleaved with the reloads (baseline, reload, baseline, reload, ...) so
// that a noisy, shared machine slows both alike. The reload figure is the
// master's own `durationMs` (DESIGN.md step 7: request to old listeners shut
// down); the client's round trip on the control socket is printed too.
// Needs `npm run build` first: the master and the workers run from dist/.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { listenerSpec, openListeners, socketAddress, type Listener } from '../src/net/index.js';
import { envelope, FIRST_LISTENER_FD, openEnvelope, type MasterMessage } from '../src/protocol/worker.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The build under test: dist/ unless --dist names another (to compare two builds). */
let DIST = join(ROOT, 'dist');
const MAIN = (): string => join(DIST, 'main.js');
const WORKER_ENTRY = (): string => join(DIST, 'worker/main.js');
const HELLO = join(ROOT, 'examples/hello/app.js');

const TARGET_RATIO = 1.5;
const WARMUP = 3;
const READY_TIMEOUT_MS = 10_000;
const MASTER_START_TIMEOUT_MS = 20_000;
const CONTROL_TIMEOUT_MS = 20_000;
const DRAIN_WAIT_MS = 5_000;
const STOP_GRACE_MS = 10_000;
/** Pause between measurements so exiting processes do not overlap the next one. */
const SETTLE_MS = 50;
const LOG_TAIL = 20;

/** The minimal IPC child: Node's own start-up plus the IPC channel, nothing of handover. */
const FLOOR_SCRIPT = `process.once('message', () => process.send(${JSON.stringify(envelope({ type: 'ready' }))}))`;

interface Options {
  readonly reloads: number;
  readonly workers: number;
  readonly json: boolean;
  readonly floor: boolean;
  readonly check: boolean;
  readonly phases: boolean;
  readonly strategy: string;
  readonly app: string;
  readonly maxSeconds: number;
  readonly dist: string;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      reloads: { type: 'string', default: '30' },
      workers: { type: 'string', default: '2' },
      json: { type: 'boolean', default: false },
      floor: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      phases: { type: 'boolean', default: false },
      strategy: { type: 'string', default: 'auto' },
      app: { type: 'string', default: HELLO },
      'max-seconds': { type: 'string', default: '300' },
      dist: { type: 'string', default: join(ROOT, 'dist') },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      'usage: node --import tsx bench/reload.ts [--reloads N] [--workers N] [--json] [--floor] [--phases]\n' +
        '       [--strategy auto|migrate|inherit|none] [--app FILE] [--dist DIR] [--max-seconds S] [--check]\n' +
        '  --floor   also time a bare `node` child with IPC (no handover code), interleaved\n' +
        '  --phases  run the master at log level debug and split each reload by its log lines\n' +
        '  --check   exit 1 when the target is not met\n' +
        '  --dist D  run the master and workers from build directory D instead of dist/\n',
    );
    process.exit(0);
  }
  const int = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min} (got ${text})`);
    return n;
  };
  return {
    reloads: int('reloads', values.reloads, 1),
    workers: int('workers', values.workers, 1),
    json: values.json,
    floor: values.floor,
    check: values.check,
    phases: values.phases,
    strategy: values.strategy,
    app: resolve(values.app),
    maxSeconds: int('max-seconds', values['max-seconds'], 1),
    dist: resolve(values.dist),
  };
}

// ---- statistics -----------------------------------------------------------

interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p95: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
}

/** Percentile by linear interpolation between closest ranks (numpy's default). */
function percentile(sorted: readonly number[], p: number): number {
  const at = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo);
}

function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
  };
}

// ---- the baseline: one bare worker ---------------------------------------

const bareChildren = new Set<ChildProcess>();
/** Set once cleanup begins (deadline, signal): no new child after that. */
let aborting = false;

/**
 * Spawns one child as WorkerHandle does (same entry, IPC in slot 3, listener
 * in slot 4, detached, same environment; only its stdout is discarded rather
 * than shared) and times spawn() to its `ready` message.
 * The socket is a fresh bound, not-listening SO_REUSEPORT one, as a
 * generation's are; the worker's listen() puts it in LISTEN.
 */
async function bareWorker(app: string, env: NodeJS.ProcessEnv, floor = false): Promise<number> {
  if (aborting) throw new Error('aborted');
  const [listener] = openListeners(listenerSpec({ address: socketAddress('127.0.0.1', 0, 4), backlog: 511 }), 1) as [Listener];
  let child: ChildProcess | undefined;
  try {
    const started = performance.now();
    child = spawn(process.execPath, floor ? ['-e', FLOOR_SCRIPT] : [WORKER_ENTRY()], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc', listener.fd],
      detached: true,
      env,
    });
    bareChildren.add(child);
    const exited = new Promise<void>((resolve) => {
      child!.once('exit', () => resolve());
      child!.once('error', () => resolve()); // spawn failed: there will be no exit
    });
    const ready = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bare worker not ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      child!.on('message', (raw: unknown) => {
        const msg = (openEnvelope(raw) ?? {}) as { type?: string; error?: { message?: string } };
        if (msg.type === 'ready') {
          clearTimeout(timer);
          resolve(performance.now() - started);
        } else if (msg.type === 'failed') {
          clearTimeout(timer);
          reject(new Error(`bare worker failed: ${msg.error?.message ?? 'unknown'}`));
        }
      });
      child!.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`bare worker exited (${signal ?? code}) before ready`));
      });
      child!.once('error', reject);
    });
    const start: MasterMessage = {
      type: 'start',
      generation: 1,
      index: 0,
      app,
      listeners: [{ fd: FIRST_LISTENER_FD, address: listener.address.text, backlog: 511 }],
      drainTimeoutMs: 1000,
      heartbeatMs: 1000,
      countRequests: false, // as from a master without metrics.listen
    };
    child.send(envelope(start));
    try {
      return await ready;
    } finally {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      await exited;
      bareChildren.delete(child);
    }
  } finally {
    listener.retire();
  }
}

// ---- the master -----------------------------------------------------------

type LogLine = Record<string, unknown> & { msg?: string };

interface ReloadReport {
  readonly result: string;
  readonly generation: number | null;
  readonly strategy: string | null;
  readonly durationMs: number;
  readonly startedAt: string;
  readonly reason?: string;
}

interface Phases {
  readonly prepare: number;
  readonly boot: number;
  readonly spread: number;
  readonly commit: number;
}
const PHASES = ['prepare', 'boot', 'spread', 'commit'] as const;
const PHASE_LABELS: Record<(typeof PHASES)[number], string> = {
  prepare: 'prepare: request→first spawn',
  boot: 'boot: first spawn→last ready',
  spread: '  of which first→last ready',
  commit: 'commit: last ready→old shut',
};

class Master {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  private readonly tail: string[] = [];
  private stderr = '';
  private onLine: ((line: LogLine) => void) | undefined;
  /** The workers' "spawned" and "ready" debug lines (log level debug only), until taken. */
  private workerEvents: LogLine[] = [];
  private workerPids = new Set<number>();

  constructor(
    readonly config: string,
    readonly socket: string,
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(process.execPath, [MAIN(), 'start', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    let buffered = '';
    // Always read: the master and its workers log synchronously to this pipe.
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.tail.push(text);
        if (this.tail.length > LOG_TAIL) this.tail.shift();
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          continue;
        }
        if (line.msg === 'worker spawned' || (line.msg === 'worker state' && line['to'] === 'ready')) this.workerEvents.push(line);
        this.onLine?.(line);
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-4000)));
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  diagnostics(): string {
    return `master log tail:\n${this.tail.join('\n')}\nmaster stderr:\n${this.stderr.trim()}`;
  }

  /** Resolves with the address once the master logs "serving ...". */
  serving(): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`master not serving within ${MASTER_START_TIMEOUT_MS} ms\n${this.diagnostics()}`)), MASTER_START_TIMEOUT_MS);
      void this.exited.then(() => reject(new Error(`master exited before serving\n${this.diagnostics()}`)));
      this.onLine = (line) => {
        if (typeof line.msg !== 'string' || !line.msg.startsWith('serving ')) return;
        clearTimeout(timer);
        this.onLine = undefined;
        const listen = line['listen'];
        resolve(Array.isArray(listen) ? String(listen[0]) : line.msg);
      };
    });
  }

  /** One request line, one answer line, and the time from connect() to the answer. */
  request(body: object): Promise<{ response: { ok: boolean; result?: unknown; error?: string }; roundTripMs: number }> {
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const socket = connect(this.socket);
      let buffer = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no answer to ${JSON.stringify(body)} within ${CONTROL_TIMEOUT_MS} ms\n${this.diagnostics()}`));
      }, CONTROL_TIMEOUT_MS);
      socket.setEncoding('utf8');
      socket.once('connect', () => socket.write(`${JSON.stringify(body)}\n`));
      socket.on('data', (chunk: string) => {
        buffer += chunk;
        const nl = buffer.indexOf('\n');
        if (nl < 0) return;
        const roundTripMs = performance.now() - started;
        clearTimeout(timer);
        socket.destroy();
        try {
          resolve({ response: JSON.parse(buffer.slice(0, nl)), roundTripMs });
        } catch (err) {
          reject(err);
        }
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`control socket ${this.socket}: ${err.message}\n${this.diagnostics()}`));
      });
    });
  }

  async reload(): Promise<{ report: ReloadReport; roundTripMs: number }> {
    const { response, roundTripMs } = await this.request({ cmd: 'reload' });
    const report = response.result as ReloadReport | undefined;
    if (!response.ok || !report || report.result !== 'ok') {
      throw new Error(`reload failed: ${response.error ?? report?.reason ?? JSON.stringify(response)}\n${this.diagnostics()}`);
    }
    return { report, roundTripMs };
  }

  /**
   * Splits a reload by the master's debug lines (millisecond timestamps):
   * prepare = request to first worker spawned (read config, open sockets),
   * boot = first spawned to last ready, spread = first ready to last ready,
   * commit = last ready to old listeners shut down (verify, drain acks).
   */
  phases(report: ReloadReport, workers: number): Phases | undefined {
    const events = this.workerEvents.filter((l) => l['generation'] === report.generation);
    this.workerEvents = this.workerEvents.filter((l) => typeof l['generation'] === 'number' && l['generation'] > (report.generation ?? 0));
    const at = (msg: string) => events.filter((l) => l.msg === msg).map((l) => Date.parse(String(l['time'])));
    const spawned = at('worker spawned');
    const ready = at('worker state');
    if (spawned.length !== workers || ready.length !== workers) return undefined;
    const requested = Date.parse(report.startedAt);
    return {
      prepare: Math.min(...spawned) - requested,
      boot: Math.max(...ready) - Math.min(...spawned),
      spread: Math.max(...ready) - Math.min(...ready),
      commit: requested + report.durationMs - Math.max(...ready),
    };
  }

  /** Waits until only the active generation is left (the previous one has drained and exited). */
  async drained(): Promise<boolean> {
    const deadline = Date.now() + DRAIN_WAIT_MS;
    while (Date.now() < deadline) {
      const { response } = await this.request({ cmd: 'status' });
      const status = response.result as { generations?: { workers?: { pid?: number | null }[] }[] } | undefined;
      const generations = status?.generations ?? [];
      for (const g of generations) for (const w of g.workers ?? []) if (typeof w.pid === 'number') this.workerPids.add(w.pid);
      if (generations.length <= 1) return true;
      await sleep(10);
    }
    return false;
  }

  /** SIGTERM, SIGKILL after STOP_GRACE_MS; then any worker of ours the master left behind. */
  async stop(): Promise<void> {
    if (this.alive) {
      this.child.kill('SIGTERM');
      const killed = await Promise.race([this.exited.then(() => false), sleep(STOP_GRACE_MS).then(() => true)]);
      if (killed && this.alive) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    // Workers exit on their own when the master's IPC channel closes; check.
    const leftovers = () => [...this.workerPids].filter((pid) => isOurWorker(pid));
    for (let i = 0; i < 20 && leftovers().length > 0; i++) await sleep(100);
    for (const pid of leftovers()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
  }
}

/** Still running dist/worker/main.js (guards against a recycled pid). */
function isOurWorker(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(WORKER_ENTRY());
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function configYaml(o: Options, socket: string): string {
  return [
    `app: ${JSON.stringify(o.app)}`,
    `workers: ${o.workers}`,
    'listen:',
    '  - address: 127.0.0.1:0',
    'reload:',
    `  strategy: ${o.strategy}`,
    '  watch: false',
    '  drain_timeout: 2s',
    `control: { socket: ${JSON.stringify(socket)} }`,
    `log: { level: ${o.phases ? 'debug' : 'info'} }`,
    '',
  ].join('\n');
}

// ---- the run --------------------------------------------------------------

interface Samples {
  baseline: number[];
  reload: number[];
  roundTrip: number[];
  floor: number[];
  phases: Phases[];
  strategy: string | null;
  undrained: number;
  /** One-minute load average before and after: how noisy the machine was. */
  load: [number, number];
}

async function measure(o: Options, master: Master, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<Samples> {
  const s: Samples = { baseline: [], reload: [], roundTrip: [], floor: [], phases: [], strategy: null, undrained: 0, load: [loadavg()[0]!, 0] };
  for (let i = -WARMUP; i < o.reloads; i++) {
    const keep = i >= 0;
    if (o.floor) {
      const floor = await bareWorker(o.app, env, true);
      if (keep) s.floor.push(floor);
      await sleep(SETTLE_MS);
    }
    const baseline = await bareWorker(o.app, env);
    await sleep(SETTLE_MS);
    const { report, roundTripMs } = await master.reload();
    if (!(await master.drained())) s.undrained++;
    await sleep(SETTLE_MS);
    s.strategy = report.strategy;
    const phases = o.phases ? master.phases(report, o.workers) : undefined;
    if (keep && phases) s.phases.push(phases);
    if (keep) {
      s.baseline.push(baseline);
      s.reload.push(report.durationMs);
      s.roundTrip.push(roundTripMs);
    }
    log(`${keep ? `${i + 1}/${o.reloads}` : 'warm-up'}: bare worker ${baseline.toFixed(1)} ms, reload ${report.durationMs} ms (round trip ${roundTripMs.toFixed(1)} ms)`);
  }
  s.load[1] = loadavg()[0]!;
  return s;
}

function report(o: Options, s: Samples): Record<string, unknown> {
  const baseline = summarize(s.baseline);
  const reload = summarize(s.reload);
  const roundTrip = summarize(s.roundTrip);
  const paired = summarize(s.reload.map((r, i) => r / s.baseline[i]!));
  const ratio = { p50: reload.p50 / baseline.p50, p95: reload.p95 / baseline.p95, pairedP50: paired.p50 };
  const met = ratio.p50 <= TARGET_RATIO && ratio.p95 <= TARGET_RATIO;
  const f = (n: number) => n.toFixed(1);
  const markdown =
    `| ${new Date().toISOString().slice(0, 10)} | ${process.version} | ${cpus().length} | ${s.load[0].toFixed(1)} | ${o.workers} | ${s.strategy ?? '?'} | ${o.reloads} ` +
    `| ${f(baseline.p50)} / ${f(baseline.p95)} | ${f(reload.p50)} / ${f(reload.p95)} | ${f(roundTrip.p50)} / ${f(roundTrip.p95)} ` +
    `| ${ratio.p50.toFixed(2)}× / ${ratio.p95.toFixed(2)}× | ${met ? 'yes' : 'no'} |`;
  return {
    node: process.version,
    cpus: cpus().length,
    workers: o.workers,
    reloads: o.reloads,
    warmup: WARMUP,
    strategy: s.strategy,
    app: o.app,
    dist: o.dist,
    unit: 'ms',
    baseline,
    reload,
    roundTrip,
    ...(o.floor ? { floor: summarize(s.floor) } : {}),
    ...(s.phases.length > 0 ? { phases: Object.fromEntries(PHASES.map((k) => [k, summarize(s.phases.map((p) => p[k]))])) } : {}),
    ratio,
    target: TARGET_RATIO,
    met,
    undrained: s.undrained,
    loadAverage: { start: s.load[0], end: s.load[1] },
    markdown,
    samples: { baseline: s.baseline, reload: s.reload, roundTrip: s.roundTrip, ...(o.floor ? { floor: s.floor } : {}) },
  };
}

function printText(r: Record<string, unknown>): void {
  const row = (name: string, x: Summary) =>
    `${name.padEnd(36)}${[x.p50, x.p95, x.min, x.max, x.mean].map((v) => v.toFixed(1).padStart(9)).join('')}`;
  const ratio = r['ratio'] as { p50: number; p95: number; pairedP50: number };
  const load = r['loadAverage'] as { start: number; end: number };
  const lines = [
    '',
    `handover reload benchmark: ${r['node']}, ${r['cpus']} CPUs, ${r['workers']} workers, strategy ${r['strategy']}, ` +
      `${r['reloads']} reloads (+${r['warmup']} warm-up), interleaved with the baseline`,
    `load average (1 min): ${load.start.toFixed(2)} at start, ${load.end.toFixed(2)} at end`,
    '',
    `${'(ms)'.padEnd(36)}${['p50', 'p95', 'min', 'max', 'mean'].map((h) => h.padStart(9)).join('')}`,
    row('baseline: bare worker spawn→ready', r['baseline'] as Summary),
    row('reload: master durationMs', r['reload'] as Summary),
    row('reload: client round trip', r['roundTrip'] as Summary),
    ...(r['floor'] ? [row('floor: node + IPC, no handover', r['floor'] as Summary)] : []),
    ...(r['phases']
      ? ['', 'reload phases (master debug log, ms resolution):',
          ...PHASES.map((k) => row(`  ${PHASE_LABELS[k]}`, (r['phases'] as Record<string, Summary>)[k]!))]
      : []),
    '',
    `ratio reload/baseline: p50 ${ratio.p50.toFixed(2)}×, p95 ${ratio.p95.toFixed(2)}× (per-pair median ${ratio.pairedP50.toFixed(2)}×)`,
    `target ≤ ${TARGET_RATIO}× at p50 and p95: ${r['met'] ? 'met' : 'NOT met'}`,
    ...((r['undrained'] as number) > 0 ? [`warning: ${r['undrained']} old generations had not drained within ${DRAIN_WAIT_MS} ms`] : []),
    '',
    'README row (columns in bench/README.md):',
    r['markdown'] as string,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<number> {
  const o = options();
  DIST = o.dist;
  for (const file of [MAIN(), WORKER_ENTRY()]) if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
  if (!existsSync(o.app)) throw new Error(`app ${o.app} not found`);
  const log = (line: string): void => void process.stderr.write(o.json ? '' : `${line}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'handover-bench-'));
  const socket = join(dir, 'control.sock');
  const config = join(dir, 'handover.yaml');
  writeFileSync(config, configYaml(o, socket));
  // The same environment for the bare worker and the master's workers.
  const env = { ...process.env, HANDOVER_LOG_PRETTY: '0' };
  let master: Master | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      aborting = true;
      for (const child of bareChildren) if (child.pid !== undefined && child.exitCode === null) child.kill('SIGKILL');
      await master?.stop();
      rmSync(dir, { recursive: true, force: true });
    })());
  const deadline = setTimeout(() => {
    process.stderr.write(`bench/reload: aborted after ${o.maxSeconds} s\n${master?.diagnostics() ?? ''}\n`);
    void cleanup().finally(() => process.exit(2));
  }, o.maxSeconds * 1000);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  }
  try {
    master = new Master(config, socket, env);
    const address = await master.serving();
    log(`master pid ${master.child.pid} serving ${address} with ${o.workers} workers`);
    const samples = await measure(o, master, env, log);
    const result = report(o, samples);
    if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else printText(result);
    return o.check && !result['met'] ? 1 : 0;
  } finally {
    clearTimeout(deadline);
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench/reload: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
