// What `workers: auto` means. os.availableParallelism() sees the CPUs the
// scheduler lets us run on, but not a cgroup CPU quota: a container limited
// to 2 CPUs on a 64-core host would otherwise start 64 workers that the
// kernel then throttles in turn, which is slower than 2 and uses 32 times the
// memory.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { posix } from 'node:path';

/** Reads a small text file, or undefined when it is not there. */
export type ReadText = (path: string) => string | undefined;

const CGROUP_ROOT = '/sys/fs/cgroup';

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** Worker count for `auto`: CPUs available, capped by the cgroup quota, at least 1. */
export function autoWorkers(read: ReadText = readText, cpus: number = availableParallelism()): number {
  const quota = cgroupCpuLimit(read);
  return Math.max(1, Math.min(cpus, quota ?? cpus));
}

/**
 * The tightest cgroup v2 CPU limit on this process, in whole CPUs (rounded
 * up), or undefined when there is none. Under systemd the quota
 * (CPUQuota=) sits on the service's own cgroup, not at the mount's root, and
 * any ancestor may be tighter, so the whole chain up to the root is read. In
 * a container with its own cgroup namespace the chain is just the root.
 */
export function cgroupCpuLimit(read: ReadText = readText): number | undefined {
  let limit: number | undefined;
  for (const dir of cgroupChain(read)) {
    const cpus = parseCpuMax(read(posix.join(dir, 'cpu.max')));
    if (cpus !== undefined && (limit === undefined || cpus < limit)) limit = cpus;
  }
  return limit;
}

/** `"max 100000"` → undefined; `"200000 100000"` → 2; `"150000 100000"` → 2. */
export function parseCpuMax(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max') return undefined;
  const q = Number(quota);
  const p = Number(period ?? '100000');
  if (!Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return undefined;
  return Math.max(1, Math.ceil(q / p));
}

/** This process's cgroup directory and its ancestors, innermost first. */
function cgroupChain(read: ReadText): string[] {
  // cgroup v2 has a single line "0::/path"; v1-only hosts have none, and then
  // only the mount's root (the container's own cgroup under cgroupns) is read.
  const line = read('/proc/self/cgroup')
    ?.split('\n')
    .find((l) => l.startsWith('0::'));
  const own = line?.slice(3).trim() ?? '/';
  // A path outside our cgroup namespace shows as "/.."; it is not under the mount.
  if (!own.startsWith('/') || own.split('/').includes('..')) return [CGROUP_ROOT];
  const chain: string[] = [];
  for (let dir = posix.join(CGROUP_ROOT, own); ; dir = posix.dirname(dir)) {
    chain.push(dir);
    if (dir === CGROUP_ROOT || dir === '/') break;
  }
  return chain;
}
