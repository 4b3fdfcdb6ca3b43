// Process-level calls the worker runtime needs and Node does not offer.

import { constants } from 'node:os';
import { PR_GET_PDEATHSIG, PR_SET_PDEATHSIG, SC_CLK_TCK, SC_PAGESIZE } from './constants.js';
import { call, check, DataType, libc } from './libc.js';

function signalNumber(signal: number | NodeJS.Signals): number {
  if (typeof signal === 'number') return signal;
  const n = constants.signals[signal];
  if (n === undefined) throw new TypeError(`unknown signal ${signal}`);
  return n;
}

/**
 * PR_SET_PDEATHSIG: the kernel sends `signal` to this process when its
 * parent thread exits (0 clears it). Cleared when the uid/gid changes, so
 * set it after dropping privileges, then check getppid(): the parent may
 * already be gone.
 */
export function prctlSetPdeathsig(signal: number | NodeJS.Signals): void {
  check(call('prctl', [DataType.I32, DataType.I64], [PR_SET_PDEATHSIG, signalNumber(signal)]), 'prctl', 'PR_SET_PDEATHSIG');
}

/** The current parent-death signal (0 when none). */
export function prctlGetPdeathsig(): number {
  const out = Buffer.alloc(4);
  check(call('prctl', [DataType.I32, DataType.U8Array], [PR_GET_PDEATHSIG, out]), 'prctl', 'PR_GET_PDEATHSIG');
  return out.readInt32LE();
}

/** The real parent pid from the kernel, not Node's value cached at start-up. */
export function getppid(): number {
  return libc().getppid([]).value;
}

/** setpgid(2); setpgid(0, 0) makes the caller a process-group leader. */
export function setpgid(pid = 0, pgid = 0): void {
  check(libc().setpgid([pid, pgid]), 'setpgid', `pid ${pid}`);
}

const WNOHANG = 1;
const ECHILD = 10;

/**
 * waitpid(pid, WNOHANG): reaps `pid` if it has exited. Returns true when it
 * was reaped, false when it is still running or is not our child (ECHILD).
 * Only for processes Node did not spawn: reaping one of Node's own children
 * here would hide its exit from Node forever.
 */
export function reapChild(pid: number): boolean {
  const r = libc().waitpid([pid, Buffer.alloc(4), WNOHANG]);
  if (r.value === -1 && r.errnoCode !== ECHILD) check(r, 'waitpid', `pid ${pid}`);
  return r.value === pid;
}

const sysconfCache = new Map<number, number>();

function sysconf(name: number, what: string): number {
  let value = sysconfCache.get(name);
  if (value === undefined) {
    value = check(call('sysconf', [DataType.I32], [name]), 'sysconf', what);
    sysconfCache.set(name, value);
  }
  return value;
}

/** Clock ticks per second, the unit of the CPU times in /proc/<pid>/stat. */
export function clockTicksPerSecond(): number {
  return sysconf(SC_CLK_TCK, '_SC_CLK_TCK');
}

/** Bytes per page, the unit of /proc/<pid>/statm. */
export function pageSize(): number {
  return sysconf(SC_PAGESIZE, '_SC_PAGESIZE');
}
