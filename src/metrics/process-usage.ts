// CPU time and resident memory of a process, from /proc/<pid>/stat and
// /proc/<pid>/statm: what `handover status` shows per worker and the
// per-slot metrics sample. Two small reads, no parsing of the command name
// beyond finding where it ends.
import { readFileSync } from 'node:fs';
import { clockTicksPerSecond, pageSize } from '../sys/index.js';

export interface ProcessUsage {
  /** User plus system CPU time, seconds. */
  readonly cpuSeconds: number;
  readonly rssBytes: number;
}

// /proc/<pid>/stat after "pid (comm) ": state is field 3, utime 14, stime 15.
const UTIME = 14 - 3;
const STIME = 15 - 3;

/** The process's usage, or undefined when it is gone (or not readable). */
export function readProcessUsage(pid: number): ProcessUsage | undefined {
  let stat: string;
  let statm: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    statm = readFileSync(`/proc/${pid}/statm`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name may contain spaces and parentheses: the last ')' ends it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[UTIME]) + Number(fields[STIME]);
  const pages = Number(statm.split(' ')[1]);
  if (!Number.isFinite(ticks) || !Number.isFinite(pages)) return undefined;
  return { cpuSeconds: ticks / clockTicksPerSecond(), rssBytes: pages * pageSize() };
}
