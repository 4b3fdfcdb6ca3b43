// What this host lets the master do with its listeners, probed once and
// cached (kernelProbe({ refresh: true }) probes again, e.g. on a reload):
// the kernel version, net.ipv4.tcp_migrate_req and whether we may write it,
// the effective capabilities, whether the select-or-migrate program loads,
// whether classic steering attaches, and the canaries. Everything is read
// in the master's own network namespace (sysctl and migration are per
// namespace). Pure reads, except the canaries' throw-away sockets.

import { closeSync, constants as fsConstants, openSync, readFileSync } from 'node:fs';
import { ResourceShortage } from '../config/index.js';
import {
  attachReuseportCbpf, close, constants as C, effectiveCapabilities, kernelVersion, setsockoptInt, socket,
} from '../sys/index.js';
import type { KernelVersion } from '../sys/index.js';
import { runCanary } from './canary.js';
import type { CanaryResult } from './canary.js';
import { ReuseportProgram } from './reuseport-program.js';
import { steerToNew } from './steering.js';

export const TCP_MIGRATE_REQ_PATH = '/proc/sys/net/ipv4/tcp_migrate_req';

export interface SysctlProbe {
  /** null: no such sysctl (Linux < 5.14). */
  readonly value: 0 | 1 | null;
  /** Whether this process could write it (what reload.set_tcp_migrate_req needs). */
  readonly writable: boolean;
  /** Why not, when it is not writable, e.g. "read-only file system". */
  readonly why?: string;
}

export type FeatureProbe = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly error: Error };

export interface KernelProbe {
  readonly kernel: KernelVersion;
  readonly arch: string;
  /** CapEff, as hex, and the names handover cares about among those held. */
  readonly capabilities: { readonly effective: string; readonly names: readonly string[] };
  readonly tcpMigrateReq: SysctlProbe;
  /** Whether the select-or-migrate program and its maps load. */
  readonly ebpf: FeatureProbe;
  /** Whether a classic BPF reuseport program attaches (no privilege needed). */
  readonly cbpf: FeatureProbe;
  readonly canary: { readonly sysctl: CanaryResult; readonly ebpf: CanaryResult; readonly cbpf: CanaryResult };
  readonly probedAt: string;
}

export interface ProbeOptions {
  /** Run the canaries (default true); false gives `skipped` for each. */
  readonly canary?: boolean;
}

let cached: Promise<KernelProbe> | undefined;

/** The probe, run once; `refresh` runs it again and caches the new result. */
export function kernelProbe(options: ProbeOptions & { readonly refresh?: boolean } = {}): Promise<KernelProbe> {
  if (cached === undefined || options.refresh === true) cached = probeKernel(options);
  return cached;
}

/** Runs every probe now (not cached). */
export async function probeKernel(options: ProbeOptions = {}): Promise<KernelProbe> {
  const kernel = kernelVersion();
  const caps = effectiveCapabilities();
  const tcpMigrateReq = probeSysctl();
  const ebpf = probeEbpf();
  const cbpf = probeCbpf();
  const canaries = options.canary !== false;
  const skip = (reason: string): CanaryResult => ({ status: 'skipped', reason });
  const sysctl = !canaries
    ? skip('canaries not run')
    : tcpMigrateReq.value === 1
      ? await runCanary('sysctl')
      : skip(`net.ipv4.tcp_migrate_req is ${tcpMigrateReq.value ?? 'absent'}`);
  const ebpfCanary = !canaries ? skip('canaries not run') : ebpf.ok ? await runCanary('ebpf') : skip('the program does not load');
  const cbpfCanary = !canaries ? skip('canaries not run') : cbpf.ok ? await runCanary('cbpf') : skip('classic steering does not attach');
  return Object.freeze({
    kernel,
    arch: process.arch,
    capabilities: Object.freeze({ effective: caps.effective.toString(16).padStart(16, '0'), names: caps.names }),
    tcpMigrateReq,
    ebpf,
    cbpf,
    canary: Object.freeze({ sysctl, ebpf: ebpfCanary, cbpf: cbpfCanary }),
    probedAt: new Date().toISOString(),
  });
}

/**
 * `probe` with net.ipv4.tcp_migrate_req read again (an operator may change
 * it while the master runs; nothing else a probe sees can change under a
 * running master), and the sysctl canary run when it became 1 untried.
 * What a reload uses: the eBPF load and the other canaries are not repeated.
 */
export async function refreshSysctl(probe: KernelProbe): Promise<KernelProbe> {
  const tcpMigrateReq = probeSysctl();
  const previous = probe.canary.sysctl;
  const sysctl: CanaryResult = tcpMigrateReq.value !== 1
    ? { status: 'skipped', reason: `net.ipv4.tcp_migrate_req is ${tcpMigrateReq.value ?? 'absent'}` }
    : previous.status === 'skipped' ? await runCanary('sysctl') : previous;
  return Object.freeze({ ...probe, tcpMigrateReq, canary: Object.freeze({ ...probe.canary, sysctl }), probedAt: new Date().toISOString() });
}

/** The sysctl's value, and whether opening it for writing is allowed (nothing is written). Throws ResourceShortage. */
export function probeSysctl(path = TCP_MIGRATE_REQ_PATH): SysctlProbe {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    // Out of descriptors says nothing of the kernel: not "absent".
    ResourceShortage.check(err, path);
    return { value: null, writable: false, why: describe(err) };
  }
  const value = text.trim() === '1' ? 1 : 0;
  try {
    closeSync(openSync(path, fsConstants.O_WRONLY));
    return { value, writable: true };
  } catch (err) {
    ResourceShortage.check(err, path, `open ${path} for writing`);
    return { value, writable: false, why: describe(err) };
  }
}

/** Loads the real program and maps, then releases them (refused before Linux 5.14 without trying). */
export function probeEbpf(): FeatureProbe {
  try {
    ReuseportProgram.load({ name: 'probe', capacity: 1 }).release();
    return { ok: true };
  } catch (err) {
    return failed(err);
  }
}

/** Attaches a classic steering program to a throw-away SO_REUSEPORT socket. */
export function probeCbpf(): FeatureProbe {
  let fd: number | undefined;
  try {
    fd = socket(4, 'classic BPF probe');
    setsockoptInt(fd, C.SOL_SOCKET, C.SO_REUSEPORT, 1);
    attachReuseportCbpf(fd, steerToNew(0, 1));
    return { ok: true };
  } catch (err) {
    return failed(err);
  } finally {
    if (fd !== undefined) close(fd);
  }
}

function failed(err: unknown): FeatureProbe {
  const error = err instanceof Error ? err : new Error(String(err));
  return { ok: false, reason: error.message.split('\n')[0] ?? error.message, error };
}

function describe(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EROFS') return 'read-only file system';
  if (code === 'EACCES' || code === 'EPERM') return `permission denied (${code})`;
  if (code === 'ENOENT') return 'no such sysctl (Linux < 5.14)';
  return err instanceof Error ? err.message : String(err);
}
