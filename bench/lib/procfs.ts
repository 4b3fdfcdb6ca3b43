// CPU time and memory of a process tree, from /proc: what a master costs at
// idle and under load, and how much CPU a whole contender used during a
// window (live processes, plus the children they have reaped: cutime and
// cstime in /proc/<pid>/stat cover workers that exited during a reload).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of the times in /proc/<pid>/stat. */
export const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcessCpu {
  /** utime + stime, ms. */
  readonly selfMs: number;
  /** cutime + cstime: reaped children, ms. */
  readonly childrenMs: number;
  readonly ppid: number;
}

/** Parses the text of /proc/<pid>/stat (the command may contain spaces and parentheses). */
export function parseStat(text: string): ProcessCpu {
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): utime is field 14, so rest[11].
  const field = (n: number): number => Number(rest[n - 3]);
  const tick = 1000 / CLK_TCK;
  return { selfMs: (field(14) + field(15)) * tick, childrenMs: (field(16) + field(17)) * tick, ppid: field(4) };
}

export function processCpu(pid: number): ProcessCpu | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** VmRSS in MiB, or undefined when the process is gone. */
export function rssMiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Every live descendant of `root` (not `root` itself), by scanning /proc once. */
export function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cpu = processCpu(Number(name));
    if (cpu) parent.set(Number(name), cpu.ppid);
  }
  const out: number[] = [];
  const frontier = [root];
  while (frontier.length > 0) {
    const pid = frontier.pop()!;
    for (const [child, ppid] of parent) {
      if (ppid === pid) {
        out.push(child);
        frontier.push(child);
      }
    }
  }
  return out;
}

/**
 * CPU ms used so far by `root`'s tree: its own time and its reaped
 * children's, plus each live descendant's own and reaped children's. A
 * descendant that exits between two readings moves from "live" into its
 * parent's reaped time, so differences of this figure stay right.
 */
export function treeCpuMs(root: number): number {
  let total = 0;
  for (const pid of [root, ...descendants(root)]) {
    const cpu = processCpu(pid);
    if (cpu) total += cpu.selfMs + cpu.childrenMs;
  }
  return total;
}

/** Sum of the live descendants' RSS (MiB). */
export function treeRssMiB(root: number): number {
  return descendants(root).reduce((sum, pid) => sum + (rssMiB(pid) ?? 0), 0);
}

/** Start time of a process (clock ticks since boot), to tell it from a later process with a recycled pid. */
export function startTime(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[22 - 3]);
  } catch {
    return undefined;
  }
}

/** A set of processes remembered by pid and start time, so that they can be killed later without hitting a recycled pid. */
export class ProcessSet {
  private readonly known = new Map<number, number>();

  add(pids: readonly number[]): void {
    for (const pid of pids) {
      const start = startTime(pid);
      if (start !== undefined) this.known.set(pid, start);
    }
  }

  alive(): number[] {
    return [...this.known].filter(([pid, start]) => startTime(pid) === start).map(([pid]) => pid);
  }

  /** SIGKILL to every one still alive; returns how many were. */
  kill(): number {
    const alive = this.alive();
    for (const pid of alive) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
    return alive.length;
  }
}
