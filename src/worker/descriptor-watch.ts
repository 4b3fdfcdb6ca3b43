// A worker at its descriptor limit loses connections without a word: when
// accept(2) fails with EMFILE, libuv closes its spare descriptor, accepts
// and closes every queued connection (their clients see a reset), and Node
// emits nothing (measured: 4,031 of 13,699 new connections reset in 3 s,
// no log line). So the worker looks at its own headroom with each
// heartbeat and says so, at most once per WARN_EVERY_MS, while it is low.
// Plain /proc reads (sys/descriptors.ts), no ffi. Counting the open ones
// (listing /proc/self/fd) blocks the loop ~10 ms at 10,000 connections, so
// it is done only when the descriptor table's size says room may be low.

import { descriptorLimit, descriptorTableSize, descriptorUse } from '../sys/descriptors.js';

/** Low: under this share of the limit left, or under LOW_MIN descriptors. */
export const LOW_SHARE = 0.02;
export const LOW_MIN = 16;
export const WARN_EVERY_MS = 10_000;

export class DescriptorWatch {
  private lastWarned = -Infinity;

  constructor(private readonly warn: (fields: Record<string, unknown>, line: string) => void, private readonly now = () => performance.now()) {}

  /** Called with each heartbeat. */
  check(): void {
    const limit = descriptorLimit();
    if (limit === undefined) return;
    const low = Math.max(LOW_MIN, limit * LOW_SHARE);
    const table = descriptorTableSize();
    if (table !== undefined && limit - table >= low) return; // fewer are open than the table holds
    const use = descriptorUse(limit);
    if (use === undefined || use.limit - use.open >= low) return;
    const now = this.now();
    if (now - this.lastWarned < WARN_EVERY_MS) return;
    this.lastWarned = now;
    this.warn(
      { descriptorsOpen: use.open, descriptorLimit: use.limit },
      `worker near its descriptor limit: ${use.open} of ${use.limit} open (RLIMIT_NOFILE); at the limit new connections are reset as they are accepted: raise LimitNOFILE= (systemd) or ulimit -n, or add workers`,
    );
  }
}
