/**
 * Network-namespace harness for tests that need the real kernel.
 *
 * Each test that touches per-namespace kernel state (tcp_migrate_req, the
 * TcpExt counters, reuseport groups on fixed ports) runs inside a namespace
 * of its own, created with `ip netns add`, so the machine is never touched.
 *
 * Cleanup guarantees:
 *  - `destroy()` stops every process started through `spawn()`/`run()` (by
 *    PID: SIGTERM, then SIGKILL), then any process still living in the
 *    namespace (all of them were started by us: the namespace is private to
 *    this test process), then deletes the namespace. It is idempotent.
 *  - A process 'exit' hook (and SIGINT/SIGTERM/SIGHUP hooks) does the same
 *    synchronously for every namespace still alive, so a crashed test or an
 *    interrupted run leaves nothing behind.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';

// ---------------------------------------------------------------------------
// root check

export interface RootCheckEnv {
  /** effective uid; defaults to process.geteuid() */
  uid?: number;
  /** whether we run in CI; defaults to Boolean(process.env.CI) */
  ci?: boolean;
}

/** The subset of TestContext that needsRoot uses (lets tests pass a fake). */
export type SkippableContext = Pick<TestContext, 'skip'>;

/**
 * Returns true if we are root. Otherwise skips the test with a reason and
 * returns false — except when process.env.CI is set: then it throws, so the
 * test fails instead of silently skipping.
 *
 *   it('migrates', async (t) => { if (!needsRoot(t)) return; ... })
 */
export function needsRoot(t: SkippableContext): boolean {
  return checkRoot(t, {});
}

/** needsRoot with the uid and CI flag injectable (for the harness self-test). */
export function checkRoot(t: SkippableContext, env: RootCheckEnv): boolean {
  const uid = env.uid ?? (typeof process.geteuid === 'function' ? process.geteuid() : -1);
  const ci = env.ci ?? Boolean(process.env.CI);
  if (uid === 0) return true;
  const reason = 'needs root: network namespaces';
  if (ci) {
    throw new Error(
      `${reason} (uid ${uid}); CI is set, so this test fails instead of skipping. ` +
        'Run the suite as root (or with CAP_SYS_ADMIN + CAP_NET_ADMIN).',
    );
  }
  t.skip(reason);
  return false;
}

// ---------------------------------------------------------------------------
// helpers

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** kill the command (SIGKILL) and reject after this long; default 10 s */
  timeoutMs?: number;
  /** data written to the command's stdin (then closed) */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ListenerInfo {
  /** local address, e.g. "127.0.0.1:8080" or "[::1]:8080" or "*:8080" */
  local: string;
  /** for a LISTEN socket: current accept-queue length */
  recvQ: number;
  /** for a LISTEN socket: the backlog */
  sendQ: number;
  /** first process holding the socket, when ss could tell */
  pid?: number;
  /** every process holding the socket (a shared listener has several) */
  pids: number[];
  /** the raw ss line */
  raw: string;
}

/** Parse the text of /proc/<pid>/net/netstat (or /proc/net/snmp) into sections. */
export function parseNetstat(text: string): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const head = lines[i]!.trim().split(/\s+/);
    const vals = lines[i + 1]!.trim().split(/\s+/);
    const section = head[0]!.replace(/:$/, '');
    if (vals[0]!.replace(/:$/, '') !== section) {
      throw new Error(`netstat: header/value mismatch at line ${i + 1}: ${head[0]} vs ${vals[0]}`);
    }
    const rec: Record<string, number> = (out[section] ??= {});
    for (let k = 1; k < head.length; k++) {
      const v = Number(vals[k]);
      if (!Number.isFinite(v)) throw new Error(`netstat: bad value for ${section}.${head[k]}: ${vals[k]}`);
      rec[head[k]!] = v;
    }
  }
  return out;
}

/** Parse `ss -ltnpH` output. */
export function parseSsListeners(text: string): ListenerInfo[] {
  const out: ListenerInfo[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const cols = line.split(/\s+/);
    // With -l, ss may or may not print the State column: drop it when present.
    if (cols.length && !/^\d+$/.test(cols[0]!)) cols.shift();
    const recvQ = Number(cols[0]);
    const sendQ = Number(cols[1]);
    const local = cols[2] ?? '';
    if (!Number.isFinite(recvQ) || !Number.isFinite(sendQ) || !local) continue;
    const pids = [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
    const uniq = [...new Set(pids)];
    const info: ListenerInfo = { local, recvQ, sendQ, pids: uniq, raw: line };
    if (uniq.length) info.pid = uniq[0]!;
    out.push(info);
  }
  return out;
}

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    if (!dir) continue;
    const p = path.join(dir, cmd);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function childRunning(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

function waitExit(c: ChildProcess, ms: number): Promise<boolean> {
  if (!childRunning(c)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      c.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    c.once('exit', onExit);
  });
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** PIDs of every process whose network namespace is NAME (sync). */
function nsPidsSync(name: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) return [];
  return r.stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0 && n !== process.pid);
}

// ---------------------------------------------------------------------------
// registry + crash cleanup

const live = new Map<string, Netns>();
let hooksInstalled = false;

function emergencyCleanupSync(): void {
  for (const ns of [...live.values()]) {
    try {
      ns.destroySync();
    } catch {
      /* best effort */
    }
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', emergencyCleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      emergencyCleanupSync();
      process.off(sig, handler);
      // Only we were listening: restore the default behaviour (die of it).
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

// ---------------------------------------------------------------------------

export class Netns {
  readonly name: string;
  private readonly children = new Set<ChildProcess>();
  private destroying: Promise<void> | null = null;
  private gone = false;

  private constructor(name: string) {
    this.name = name;
  }

  /** All namespaces created by this process and not yet destroyed. */
  static alive(): string[] {
    return [...live.keys()];
  }

  /**
   * Create a namespace named `ho-<prefix>-<pid>-<rand>` and bring lo up.
   */
  static async create(prefix = 't'): Promise<Netns> {
    if (!which('ip')) throw new Error('Netns: `ip` (iproute2) not found in PATH');
    const clean = prefix.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 16) || 't';
    const name = `ho-${clean}-${process.pid}-${randomBytes(3).toString('hex')}`;
    installHooks();
    const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8', timeout: 10_000 });
    if (add.status !== 0) {
      throw new Error(`ip netns add ${name} failed (${add.status}): ${add.stderr.trim()}`);
    }
    const ns = new Netns(name);
    live.set(name, ns);
    try {
      const up = await ns.run('ip', ['link', 'set', 'lo', 'up']);
      if (up.code !== 0) throw new Error(`ip link set lo up failed: ${up.stderr.trim()}`);
    } catch (e) {
      await ns.destroy();
      throw e;
    }
    return ns;
  }

  /** Delete stale `ho-*-<pid>-*` namespaces whose creating process is gone. Returns the names deleted. */
  static reapStale(): string[] {
    const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5000 });
    const deleted: string[] = [];
    for (const line of (r.stdout ?? '').split('\n')) {
      const name = line.trim().split(/\s+/)[0];
      const m = name && /^ho-.*-(\d+)-[0-9a-f]{6}$/.exec(name);
      if (!m || !name) continue;
      const owner = Number(m[1]);
      if (owner === process.pid || alive(owner)) continue;
      for (const pid of nsPidsSync(name)) signal(pid, 'SIGKILL');
      if (spawnSync('ip', ['netns', 'del', name], { timeout: 5000 }).status === 0) deleted.push(name);
    }
    return deleted;
  }

  private assertAlive(): void {
    if (this.gone || this.destroying) throw new Error(`netns ${this.name} is destroyed`);
  }

  /**
   * Spawn `ip netns exec NAME cmd ...args`. `ip netns exec` execs in place,
   * so child.pid is the pid of `cmd` itself. The child is tracked and is
   * killed by destroy() if still running.
   */
  spawn(cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): ChildProcess {
    this.assertAlive();
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...opts,
    });
    this.children.add(child);
    const forget = (): void => {
      this.children.delete(child);
    };
    child.once('exit', forget);
    child.once('error', forget);
    return child;
  }

  /** Run a command inside the namespace and collect its output. Rejects on timeout. */
  run(cmd: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<RunResult> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const spawnOpts: SpawnOptions = { stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'] };
    if (opts.env) spawnOpts.env = opts.env;
    if (opts.cwd) spawnOpts.cwd = opts.cwd;
    const child = this.spawn(cmd, args, spawnOpts);
    return new Promise<RunResult>((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      const timer = setTimeout(() => {
        if (child.pid) signal(child.pid, 'SIGKILL');
        reject(new Error(`netns ${this.name}: \`${cmd} ${args.join(' ')}\` timed out after ${timeoutMs} ms\n${stderr}`));
      }, timeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('close', (code, sig) => {
        clearTimeout(timer);
        resolve({ code, signal: sig, stdout, stderr });
      });
    });
  }

  /** Like run() but throws unless the command exits 0; returns stdout. */
  async exec(cmd: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<string> {
    const r = await this.run(cmd, args, opts);
    if (r.code !== 0) {
      throw new Error(`netns ${this.name}: \`${cmd} ${args.join(' ')}\` exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
    }
    return r.stdout;
  }

  /**
   * Get (value omitted) or set a sysctl inside the namespace, e.g.
   * `await ns.sysctl('net.ipv4.tcp_migrate_req', 1)`. Returns the value read
   * back after setting. Uses /proc/sys directly (no procps needed).
   */
  async sysctl(key: string, value?: string | number): Promise<string> {
    if (!/^[A-Za-z0-9_./-]+$/.test(key) || key.includes('..')) throw new Error(`bad sysctl key: ${key}`);
    const file = '/proc/sys/' + (key.includes('/') ? key.replace(/^\/+/, '') : key.replace(/\./g, '/'));
    if (value !== undefined) {
      await this.exec('sh', ['-c', 'printf "%s\\n" "$1" > "$2"', 'sh', String(value), file]);
    }
    return (await this.exec('cat', [file])).trim();
  }

  /**
   * TcpExt counters of the namespace, e.g. { ListenOverflows: 0,
   * TCPMigrateReqSuccess: 3, ... }. With a pid, reads /proc/<pid>/net/netstat
   * (the counters of that process's namespace); otherwise runs
   * `cat /proc/self/net/netstat` inside the namespace.
   */
  async tcpExt(pid?: number): Promise<Record<string, number>> {
    const text = pid !== undefined ? await readFile(`/proc/${pid}/net/netstat`, 'utf8') : await this.exec('cat', ['/proc/self/net/netstat']);
    const tcpExt = parseNetstat(text).TcpExt;
    if (!tcpExt) throw new Error('no TcpExt section in netstat');
    return tcpExt;
  }

  /** LISTEN sockets on `port` inside the namespace (`ss -ltnpH`). */
  async listeners(port: number): Promise<ListenerInfo[]> {
    const out = await this.exec('ss', ['-ltnpH', `sport = :${port}`]);
    return parseSsListeners(out).filter((l) => l.local.endsWith(`:${port}`));
  }

  /** PIDs of every process currently in the namespace. */
  pids(): number[] {
    return nsPidsSync(this.name);
  }

  /**
   * Kill tracked processes (SIGTERM + SIGCONT, then SIGKILL after graceMs),
   * then any process left in the namespace, then `ip netns del`. Idempotent.
   */
  destroy(graceMs = 2000): Promise<void> {
    if (this.gone) return Promise.resolve();
    this.destroying ??= this.doDestroy(graceMs);
    return this.destroying;
  }

  private async doDestroy(graceMs: number): Promise<void> {
    const kids = [...this.children].filter(childRunning);
    for (const c of kids) {
      if (!c.pid) continue;
      signal(c.pid, 'SIGTERM');
      signal(c.pid, 'SIGCONT'); // a stopped process would not act on SIGTERM
    }
    const exited = await Promise.all(kids.map((c) => waitExit(c, graceMs)));
    kids.forEach((c, i) => {
      if (!exited[i] && c.pid) signal(c.pid, 'SIGKILL');
    });
    await Promise.all(kids.map((c) => waitExit(c, 2000)));
    // Anything else still inside (grandchildren): all started by us.
    for (let round = 0; round < 20; round++) {
      const rest = this.pids();
      if (!rest.length) break;
      for (const pid of rest) signal(pid, 'SIGKILL');
      await sleep(50);
    }
    const r = spawnSync('ip', ['netns', 'del', this.name], { encoding: 'utf8', timeout: 10_000 });
    this.gone = true;
    live.delete(this.name);
    if (r.status !== 0 && !/No such file/.test(r.stderr)) {
      throw new Error(`ip netns del ${this.name} failed: ${r.stderr.trim()}`);
    }
  }

  /** Synchronous last-resort cleanup (used by the exit hook). */
  destroySync(): void {
    if (this.gone) return;
    for (const c of this.children) if (c.pid && childRunning(c)) signal(c.pid, 'SIGKILL');
    for (const pid of this.pids()) signal(pid, 'SIGKILL');
    spawnSync('ip', ['netns', 'del', this.name], { timeout: 5000 });
    this.gone = true;
    live.delete(this.name);
  }
}
