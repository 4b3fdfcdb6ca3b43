// What the running kernel is and what it lets this process do: the release
// (uname -r) and the effective capabilities. Plain reads, no side effects.

import { release } from 'node:os';
import { CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON, CAP_SYS_ADMIN } from './constants.js';
import { readCredentials } from './proc-status.js';

export interface KernelVersion {
  /** uname -r, e.g. "6.18.44-fc-v669" */
  readonly release: string;
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/** Parses a release such as "5.15.0-91-generic" or "6.1"; null when it does not start with numbers. */
export function parseKernelRelease(text: string): KernelVersion | null {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text.trim());
  if (m === null) return null;
  return Object.freeze({ release: text.trim(), major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) });
}

/** The running kernel's version; major 0 when its release cannot be parsed. */
export function kernelVersion(): KernelVersion {
  const text = release();
  return parseKernelRelease(text) ?? Object.freeze({ release: text, major: 0, minor: 0, patch: 0 });
}

/** Whether `v` is at least major.minor. */
export function atLeast(v: KernelVersion, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

/** Names handover reports; other bits are kept in the raw mask. */
const NAMED: ReadonlyArray<readonly [number, string]> = [
  [CAP_NET_ADMIN, 'CAP_NET_ADMIN'],
  [CAP_SYS_ADMIN, 'CAP_SYS_ADMIN'],
  [CAP_PERFMON, 'CAP_PERFMON'],
  [CAP_BPF, 'CAP_BPF'],
];

export interface Capabilities {
  /** CapEff from /proc/self/status. */
  readonly effective: bigint;
  /** The ones that matter to handover, among those held. */
  readonly names: readonly string[];
  has(cap: number): boolean;
}

/** The capabilities of an effective mask (bit n = capability n). */
function capabilitiesOf(effective: bigint): Capabilities {
  const has = (cap: number): boolean => ((effective >> BigInt(cap)) & 1n) === 1n;
  return Object.freeze({ effective, names: Object.freeze(NAMED.filter(([cap]) => has(cap)).map(([, n]) => n)), has });
}

/** Parses the CapEff line of a /proc/<pid>/status text (none: no capabilities). */
export function parseCapabilities(status: string): Capabilities {
  const hex = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status)?.[1];
  return capabilitiesOf(hex === undefined ? 0n : BigInt(`0x${hex}`));
}

/** This process's effective capabilities. */
export function effectiveCapabilities(): Capabilities {
  return capabilitiesOf(readCredentials().effective);
}
