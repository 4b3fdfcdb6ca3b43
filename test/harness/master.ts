// Starting a real handover master (the built dist/main.js) for a test,
// inside a network namespace of the test's own or, for tests that need no
// root, in the current one. Logs are parsed from its JSON stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Netns } from './netns.js';
import { ended, waitInList } from './wait.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MAIN = join(ROOT, 'dist/main.js');
export const APPS = join(ROOT, 'test/fixtures/apps');
export const HELLO = join(ROOT, 'examples/hello/app.js');

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface MasterOptions {
  /** YAML text of the configuration; `app` paths may be absolute. */
  readonly yaml: string;
  readonly ns?: Netns;
  readonly env?: Record<string, string>;
  /** Run the master as this user (the test must be root); its directory is handed to it. */
  readonly uid?: number;
  readonly gid?: number;
  /** A command the master runs under, e.g. ['setpriv', '--reuid=65534', ...]: it is followed by node and its arguments. */
  readonly wrapper?: readonly string[];
  /** Owner of the test directory and the configuration file, for a master that is not root. */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /** Where the yaml's own `control: { socket }` puts the socket (default: control.sock in the test's directory). */
  readonly controlSocket?: string;
}

export class MasterProcess {
  readonly logs: LogLine[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = '';
  private waiters = new Set<() => void>();
  private ended = false;

  private constructor(
    readonly dir: string,
    readonly configFile: string,
    private readonly ns: Netns | undefined,
    env: Record<string, string>,
    private readonly account: { uid?: number; gid?: number } = {},
    private readonly wrapper: readonly string[] = [],
    private readonly socketPath = join(dir, 'control.sock'),
  ) {
    const node = [process.execPath, MAIN, 'start', '-c', configFile];
    const [command, ...args] = [...wrapper, ...node] as [string, ...string[]];
    const opts = { stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'], env: { ...process.env, HANDOVER_LOG_PRETTY: '0', ...env }, ...account };
    this.child = ns ? ns.spawn(command, args, opts) : spawn(command, args, opts);
    let buffered = '';
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ msg: line, raw: true });
        }
        for (const w of this.waiters) w();
      }
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    // Once its output is read to the end: lines written just before the exit are in.
    this.exited = ended(this.child, () => {
      this.ended = true;
      for (const w of this.waiters) w();
    });
  }

  static start(options: MasterOptions): MasterProcess {
    const dir = mkdtempSync(join(tmpdir(), 'handover-test-'));
    const configFile = join(dir, 'handover.yaml');
    const control = `control: { socket: ${join(dir, 'control.sock')} }\n`;
    writeFileSync(configFile, options.yaml.includes('control:') ? options.yaml : options.yaml + control);
    const account: { uid?: number; gid?: number } = options.uid === undefined ? {} : { uid: options.uid, gid: options.gid ?? options.uid };
    const owner = options.owner ?? (account.uid === undefined ? undefined : { uid: account.uid, gid: account.gid ?? account.uid });
    if (owner) {
      chownSync(dir, owner.uid, owner.gid);
      chownSync(configFile, owner.uid, owner.gid);
    }
    return new MasterProcess(dir, configFile, options.ns, options.env ?? {}, account, options.wrapper, options.controlSocket);
  }

  /**
   * A new master on the same configuration file and directory (e.g. after
   * this one was killed). Dispose only the last one: dispose() removes the
   * directory they share.
   */
  again(env: Record<string, string> = {}): MasterProcess {
    return new MasterProcess(this.dir, this.configFile, this.ns, env, this.account, this.wrapper, this.socketPath);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('master has no pid');
    return this.child.pid;
  }

  /** Waits for a log line matching `match`, at most `timeoutMs`. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs = 15_000, from = 0): Promise<LogLine> {
    return waitInList({
      items: this.logs,
      from,
      match,
      done: () => this.ended,
      waiters: this.waiters,
      timeoutMs,
      exited: () => `master exited before the expected log line; stderr: ${this.stderr.trim()}`,
      late: () => `no matching log line within ${timeoutMs} ms; last lines:\n${this.logs.slice(-10).map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${this.stderr}`,
    });
  }

  /** Resolves once the master logs that it serves, with the worker pids. */
  async serving(timeoutMs = 15_000): Promise<number[]> {
    const line = await this.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('serving '), timeoutMs);
    return line['pids'] as number[];
  }

  /** Runs the CLI against this master's configuration. */
  cli(args: readonly string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runCli([...args, '-c', this.configFile], timeoutMs);
  }

  get controlSocket(): string {
    return this.socketPath;
  }

  /** One request over the control socket, straight from the test process (no CLI start-up: ~250 ms cheaper). */
  control(request: Record<string, unknown>, timeoutMs = 60_000): Promise<ControlAnswer> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.controlSocket);
      let buffer = '';
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`control ${JSON.stringify(request)}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.setEncoding('utf8');
      socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
      socket.on('data', (d: string) => {
        buffer += d;
        const nl = buffer.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        socket.destroy();
        try {
          resolve(JSON.parse(buffer.slice(0, nl)) as ControlAnswer);
        } catch (e) {
          reject(e as Error);
        }
      });
      socket.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.on('end', () => {
        clearTimeout(timer);
        if (!buffer.includes('\n')) reject(new Error(`control ${JSON.stringify(request)}: closed without an answer`));
      });
    });
  }

  async status(): Promise<Status> {
    const r = await this.control({ cmd: 'status' });
    if (!r.ok) throw new Error(`status failed: ${r.error}`);
    return r.result as Status;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
  }

  /** Stops the master (SIGTERM, then SIGKILL after `timeoutMs`) and removes its files. */
  async dispose(timeoutMs = 10_000): Promise<void> {
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface ControlAnswer {
  ok: boolean;
  result?: unknown;
  error?: string;
  code?: string;
}

export interface Status {
  pid: number;
  generation: number | null;
  listen: string[];
  generations: { generation: number; state: string; workers: { index: number; pid: number | null; state: string; restarts: number }[] }[];
}

export interface CliOptions {
  readonly cwd?: string;
  /** Added to the environment; undefined removes a variable. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export function runCli(args: readonly string[], timeoutMs = 30_000, options: CliOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, HANDOVER_LOG_PRETTY: '0', ...options.env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env, ...(options.cwd ? { cwd: options.cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`handover ${args.join(' ')} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Pids from a list whose process still runs. A zombie has exited: it only
 * waits for its (new) parent to reap it, which in a sandbox's PID 1 may
 * never happen, so it does not count.
 */
export function alivePids(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state !== 'Z' && state !== 'X';
    } catch {
      return false;
    }
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` until it returns a value that is not undefined, or throws after `timeoutMs`. */
export async function until<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export type { ReloadReport, MasterStatus } from '../../src/protocol/control.js';

export interface WithMasterOptions {
  /** net.ipv4.tcp_migrate_req inside the namespace; the kernel's default (0) when absent. */
  readonly migrateReq?: 0 | 1;
  readonly env?: Record<string, string>;
  /** How long dispose() waits after SIGTERM before SIGKILL. */
  readonly disposeMs?: number;
}

/**
 * The one way tests run a master that needs the real kernel: skips without
 * root (fails with CI set), creates a namespace of its own, starts the
 * master there, waits until it serves, runs `body`, and always cleans up.
 */
export async function withMaster(
  t: Pick<import('node:test').TestContext, 'skip'>,
  prefix: string,
  yaml: string,
  body: (ns: import('./netns.js').Netns, master: MasterProcess, pids: number[]) => Promise<void>,
  options: WithMasterOptions = {},
): Promise<void> {
  const { needsRoot, Netns } = await import('./netns.js');
  if (!needsRoot(t)) return;
  const ns = await Netns.create(prefix);
  let master: MasterProcess | undefined;
  try {
    if (options.migrateReq !== undefined) await ns.sysctl('net.ipv4.tcp_migrate_req', options.migrateReq);
    master = MasterProcess.start({ yaml, ns, env: options.env ?? {} });
    const pids = await master.serving();
    await body(ns, master, pids);
  } finally {
    await master?.dispose(options.disposeMs ?? 15_000);
    await ns.destroy();
  }
}
