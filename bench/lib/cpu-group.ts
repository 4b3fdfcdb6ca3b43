// A CPU cgroup for each side (servers, load generator), so that contenders
// get the same share of a busy machine. Without it the kernel's autogroup
// scheduling (sched_autogroup_enabled, on by default) gives each session an
// equal share: handover's workers start in sessions of their own (detached),
// the cluster's and the bare workers share their parent's, so on a machine
// busy with other work handover measured up to 2.5× the bare workers only
// because it got more CPU. Autogroup applies only to tasks in the root
// cgroup, so one group per side (equal weights) removes the bias, and costs
// nothing on a quiet machine. cgroup v1's cpu controller, or v2 with cpu
// enabled at the root; otherwise none, and the report says so.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const V1 = '/sys/fs/cgroup/cpu';
const V2 = '/sys/fs/cgroup';

export class CpuGroup {
  private readonly children: CpuGroup[] = [];

  private constructor(
    readonly path: string,
    private readonly root: string,
  ) {}

  /** Creates the group, or returns undefined when this machine offers no cpu cgroup to us. */
  static create(name: string): CpuGroup | undefined {
    const root = existsSync(join(V1, 'cpu.shares'))
      ? V1
      : existsSync(join(V2, 'cgroup.subtree_control')) && readFileSync(join(V2, 'cgroup.subtree_control'), 'utf8').includes('cpu')
        ? V2
        : undefined;
    if (!root) return undefined;
    const path = join(root, name);
    try {
      mkdirSync(path);
      return new CpuGroup(path, root);
    } catch {
      return undefined;
    }
  }

  /** A group below this one (bench/head-to-head.ts: one per contender, equal weights); undefined if it cannot be made. */
  child(name: string): CpuGroup | undefined {
    const path = join(this.path, name);
    try {
      if (this.root === V2) writeFileSync(join(this.path, 'cgroup.subtree_control'), '+cpu'); // v2: the controller for our children
      mkdirSync(path);
    } catch {
      return undefined;
    }
    if (!existsSync(join(path, this.root === V1 ? 'cpu.shares' : 'cpu.weight'))) {
      rmdirSync(path);
      return undefined;
    }
    const group = new CpuGroup(path, this.root);
    this.children.push(group);
    return group;
  }

  /** Moves running processes into the group (each with all its threads); their later children start in it too. */
  adopt(pids: readonly number[]): void {
    moveInto(this.path, pids);
  }

  /** A shell prefix that moves the shell into the group, then execs the command: every descendant stays in. */
  wrap(argv: readonly string[]): string[] {
    return ['sh', '-c', `echo $$ > ${join(this.path, 'cgroup.procs')} && exec "$@"`, 'sh', ...argv];
  }

  /** Moves whatever is left to the root group, then removes the group (its children first). */
  remove(): void {
    for (const child of this.children.splice(0)) child.remove();
    try {
      moveInto(this.root, readFileSync(join(this.path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean));
      rmdirSync(this.path);
    } catch {
      /* already gone */
    }
  }
}

/** Writes each pid into the group at `dir` (a process with all its threads); one that exited meanwhile is skipped. */
function moveInto(dir: string, pids: readonly (number | string)[]): void {
  for (const pid of pids) {
    try {
      writeFileSync(join(dir, 'cgroup.procs'), String(pid));
    } catch {
      /* exited meanwhile */
    }
  }
}
