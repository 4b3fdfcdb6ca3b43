// A process's credentials as /proc/PID/status shows them. Plain file
// reading, no ffi: a worker checks its own state with it before deciding
// whether it needs any system call at all (loading ffi-rs costs a worker
// ~15 ms of start-up). Import this file directly, not through sys/index.ts,
// to keep that saving.

import { readFileSync } from 'node:fs';

export interface Credentials {
  readonly uid: number;
  readonly gid: number;
  /** Capability sets as 64-bit masks (bit n = capability n). */
  readonly inheritable: bigint;
  readonly permitted: bigint;
  readonly effective: bigint;
  readonly bounding: bigint;
  readonly ambient: bigint;
  readonly noNewPrivs: boolean;
}

function field(text: string, name: string, file: string): string {
  const m = new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text);
  if (!m?.[1]) throw new Error(`${file}: no ${name} line`);
  return m[1].trim();
}

/** Parses the text of /proc/PID/status. */
export function parseCredentials(text: string, file = 'status'): Credentials {
  const mask = (name: string): bigint => BigInt(`0x${field(text, name, file)}`);
  const first = (name: string): number => Number(field(text, name, file).split(/\s+/)[0]);
  return {
    uid: first('Uid'),
    gid: first('Gid'),
    inheritable: mask('CapInh'),
    permitted: mask('CapPrm'),
    effective: mask('CapEff'),
    bounding: mask('CapBnd'),
    ambient: mask('CapAmb'),
    noNewPrivs: field(text, 'NoNewPrivs', file) === '1',
  };
}

/** The credentials of `pid` (default: this process; `self/task/TID` for one thread). */
export function readCredentials(pid: number | string = 'self'): Credentials {
  const file = `/proc/${pid}/status`;
  return parseCredentials(readFileSync(file, 'utf8'), file);
}
