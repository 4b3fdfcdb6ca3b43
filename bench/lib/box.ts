// Where the bench runs: a network namespace of its own (lo up,
// net.ipv4.tcp_migrate_req=1 there, so the machine's setting is never
// touched), CPUs split between the servers and the load generator, and a
// temporary directory. Every process is started through `spawn()` and is
// stopped, with the namespace and the directory, by `close()`, also when the
// bench fails or is interrupted (the namespace harness's exit hooks).
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Netns } from '../../test/harness/netns.js';
import { CpuGroup } from './cpu-group.js';
import { choosePinning, pinned, type Pinning } from './pinning.js';

export { choosePinning, type Pinning } from './pinning.js';

export type Side = 'servers' | 'load';

export class Box {
  readonly dir: string;
  readonly pinning: Pinning;
  private readonly children = new Set<ChildProcess>();
  private readonly groups: Record<Side, CpuGroup | undefined>;

  private constructor(
    readonly ns: Netns,
    readonly migrateReq: string,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'handover-bench-'));
    const pinning = choosePinning(cpus().length);
    this.groups = { servers: CpuGroup.create(`${ns.name}-servers`), load: CpuGroup.create(`${ns.name}-load`) };
    const grouped = this.groups.servers && this.groups.load;
    this.pinning = { ...pinning, note: `${pinning.note}; ${grouped ? 'each side in a CPU cgroup of its own (no autogroup bias)' : 'no CPU cgroups (autogroup may favour processes in sessions of their own)'}` };
  }

  static async open(): Promise<Box> {
    const ns = await Netns.create('bench');
    try {
      const value = await ns.sysctl('net.ipv4.tcp_migrate_req', 1);
      return new Box(ns, value);
    } catch (err) {
      await ns.destroy();
      throw err;
    }
  }

  /** While set (idleServers), the servers are not pinned: nothing else runs. */
  private serversUnpinned = false;

  /**
   * Runs `body` with the servers free to use every CPU: for a scenario that
   * runs no load generator (scenario 5, reloads at idle), where pinning the
   * servers to their half would only make a generation's workers start one
   * after another on one CPU. Processes started meanwhile keep that.
   */
  async idleServers<T>(body: () => Promise<T>): Promise<T> {
    this.serversUnpinned = true;
    try {
      return await body();
    } finally {
      this.serversUnpinned = false;
    }
  }

  /** What the servers are pinned to now (null: every CPU). */
  get serversCpus(): string | null {
    return this.serversUnpinned ? null : this.pinning.servers;
  }

  /** `cmd args` inside the namespace, pinned to the side's CPUs. child.pid is the command's own pid. */
  spawn(side: Side, cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const cpuList = side === 'servers' ? this.serversCpus : this.pinning.load;
    // Into the group first: `ip netns exec` mounts a sysfs of the namespace's own, without the cgroup tree.
    const inNs = ['ip', 'netns', 'exec', this.ns.name, ...pinned(cpuList, [cmd, ...args])];
    const group = this.groups[side];
    const argv = group ? group.wrap(inNs) : inNs;
    const child = spawnChild(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    child.once('error', () => this.children.delete(child));
    return child;
  }

  /** A CPU group of its own below the servers' group, or undefined where the box has no groups. */
  serverGroup(name: string): CpuGroup | undefined {
    return this.groups.servers?.child(name);
  }

  /** Runs a command to its end: stdout, stderr, exit code and wall time. */
  run(side: Side, cmd: string, args: readonly string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<Finished> {
    const started = performance.now();
    const child = this.spawn(side, cmd, args, env);
    return new Promise((resolve, reject) => {
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8000)));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`\`${cmd} ${args.join(' ')}\` did not finish within ${timeoutMs} ms\n${stderr}`));
      }, timeoutMs);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ stdout, stderr, code, wallMs: performance.now() - started });
      });
    });
  }

  /** Stops every process we started (SIGKILL: the figures are taken), then whatever is left in the namespace. */
  async close(): Promise<void> {
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await this.ns.destroy(500);
    this.groups.servers?.remove();
    this.groups.load?.remove();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface Finished {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
  readonly wallMs: number;
}
