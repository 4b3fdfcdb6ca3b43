// Capabilities and the one-way doors of privilege: capget/capset,
// PR_SET_NO_NEW_PRIVS, the ambient set and securebits. Sets are 64-bit
// masks (bit n = capability n), the same as /proc/PID/status prints them.

import {
  LINUX_CAPABILITY_VERSION_3, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, PR_GET_NO_NEW_PRIVS,
  PR_GET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_SET_SECUREBITS,
} from './constants.js';
import { check, libc } from './libc.js';

/** Linux capability numbers (include/uapi/linux/capability.h). */
export const CAPABILITIES = [
  'chown', 'dac_override', 'dac_read_search', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid',
  'setpcap', 'linux_immutable', 'net_bind_service', 'net_broadcast', 'net_admin', 'net_raw',
  'ipc_lock', 'ipc_owner', 'sys_module', 'sys_rawio', 'sys_chroot', 'sys_ptrace', 'sys_pacct',
  'sys_admin', 'sys_boot', 'sys_nice', 'sys_resource', 'sys_time', 'sys_tty_config', 'mknod',
  'lease', 'audit_write', 'audit_control', 'setfcap', 'mac_override', 'mac_admin', 'syslog',
  'wake_alarm', 'block_suspend', 'audit_read', 'perfmon', 'bpf', 'checkpoint_restore',
] as const;
export type Capability = (typeof CAPABILITIES)[number];

export function capabilityBit(name: Capability): bigint {
  return 1n << BigInt(CAPABILITIES.indexOf(name));
}

export function capabilityMask(names: readonly Capability[]): bigint {
  return names.reduce((mask, name) => mask | capabilityBit(name), 0n);
}

/** `cap_setuid, cap_kill`, or `none`; unnamed bits as `cap_<n>`. */
export function capabilityNames(mask: bigint): string {
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if ((mask >> BigInt(bit)) & 1n) names.push(`cap_${CAPABILITIES[bit] ?? bit}`);
  }
  return names.length === 0 ? 'none' : names.join(', ');
}

export interface CapabilitySets {
  readonly effective: bigint;
  readonly permitted: bigint;
  readonly inheritable: bigint;
}

// struct __user_cap_header_struct { u32 version; int pid; } and, for
// version 3, two struct __user_cap_data_struct { u32 effective, permitted,
// inheritable; } holding the low and the high 32 bits.
function header(): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  h.writeInt32LE(0, 4); // this thread
  return h;
}

const LOW = 0xffffffffn;

/** capget(2) of this thread. */
export function getCapabilities(): CapabilitySets {
  const data = Buffer.alloc(24);
  check(libc().capget([header(), data]), 'capget');
  const word = (i: number): bigint => BigInt(data.readUInt32LE(i * 4));
  return {
    effective: word(0) | (word(3) << 32n),
    permitted: word(1) | (word(4) << 32n),
    inheritable: word(2) | (word(5) << 32n),
  };
}

/**
 * capset(2) of this thread. Lowering any set is always allowed; raising one
 * is not (EPERM). Node runs JavaScript on one thread, but libuv's and V8's
 * helper threads keep their own credentials: they never execve or bind, so
 * only the main thread's sets matter for what handover does.
 */
export function setCapabilities(sets: CapabilitySets): void {
  const data = Buffer.alloc(24);
  const put = (i: number, value: bigint): void => {
    data.writeUInt32LE(Number(value & LOW), i * 4);
  };
  put(0, sets.effective);
  put(1, sets.permitted);
  put(2, sets.inheritable);
  put(3, sets.effective >> 32n);
  put(4, sets.permitted >> 32n);
  put(5, sets.inheritable >> 32n);
  check(libc().capset([header(), data]), 'capset');
}

/** PR_CAP_AMBIENT_CLEAR_ALL: an execve by this process no longer passes capabilities on. */
export function clearAmbientCapabilities(): void {
  check(libc().prctl([PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0]), 'prctl', 'PR_CAP_AMBIENT_CLEAR_ALL');
}

/**
 * PR_SET_NO_NEW_PRIVS: no execve by this process or its descendants can
 * grant privileges again (setuid bits and file capabilities are ignored).
 * Irreversible, inherited by every child.
 */
export function setNoNewPrivs(): void {
  check(libc().prctl([PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0]), 'prctl', 'PR_SET_NO_NEW_PRIVS');
}

export function getNoNewPrivs(): boolean {
  return check(libc().prctl([PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0]), 'prctl', 'PR_GET_NO_NEW_PRIVS') === 1;
}

export function getSecurebits(): number {
  return check(libc().prctl([PR_GET_SECUREBITS, 0, 0, 0, 0]), 'prctl', 'PR_GET_SECUREBITS');
}

/** PR_SET_SECUREBITS (needs CAP_SETPCAP). Inherited across fork and execve. */
export function setSecurebits(bits: number): void {
  check(libc().prctl([PR_SET_SECUREBITS, bits, 0, 0, 0]), 'prctl', 'PR_SET_SECUREBITS');
}
