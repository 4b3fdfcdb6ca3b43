// Kernel state that the reload depends on, read from /proc of the master's
// own network namespace: both the sysctl and the TcpExt counters are per
// namespace (FACTS.md), and the counters include every other SO_REUSEPORT
// user there, so they serve as a cross-check, not as the count.
import { readFileSync, writeFileSync } from 'node:fs';

export const TCP_MIGRATE_REQ = '/proc/sys/net/ipv4/tcp_migrate_req';

/** The counters a reload snapshots before and after its cutover. */
export const RELOAD_COUNTERS = ['TCPMigrateReqSuccess', 'TCPMigrateReqFailure', 'ListenDrops', 'ListenOverflows'] as const;
export type ReloadCounter = (typeof RELOAD_COUNTERS)[number];
export type CounterSnapshot = Readonly<Record<ReloadCounter, number>>;

/** 1 or 0; null when the kernel has no such sysctl (before 5.14). */
export function readTcpMigrateReq(): 0 | 1 | null {
  try {
    return readFileSync(TCP_MIGRATE_REQ, 'utf8').trim() === '1' ? 1 : 0;
  } catch {
    return null;
  }
}

export function writeTcpMigrateReq(value: 0 | 1): void {
  writeFileSync(TCP_MIGRATE_REQ, `${value}\n`);
}

/** All TcpExt counters of this process's network namespace. */
export function readTcpExt(): Record<string, number> {
  const text = readFileSync('/proc/self/net/netstat', 'utf8');
  const lines = text.split('\n');
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const names = (lines[i] ?? '').split(/\s+/);
    const values = (lines[i + 1] ?? '').split(/\s+/);
    if (names[0] !== 'TcpExt:') continue;
    names.forEach((name, k) => {
      if (k > 0 && name) out[name] = Number(values[k] ?? 0);
    });
  }
  return out;
}

export function snapshotCounters(): CounterSnapshot {
  const all = readTcpExt();
  return Object.fromEntries(RELOAD_COUNTERS.map((k) => [k, all[k] ?? 0])) as CounterSnapshot;
}

export function counterDelta(before: CounterSnapshot, after: CounterSnapshot): CounterSnapshot {
  return Object.fromEntries(RELOAD_COUNTERS.map((k) => [k, after[k] - before[k]])) as CounterSnapshot;
}
