// How many descriptors this process has open and may open: RLIMIT_NOFILE's
// soft limit (from /proc/self/limits) and the entries of /proc/self/fd. The
// limit bounds descriptor numbers, and new descriptors take the lowest free
// number, so `limit - open` free numbers below the limit exist at least: a
// lower bound, good for refusing early. Plain file reading, no ffi: the
// worker imports this file directly.

import { readdirSync, readFileSync } from 'node:fs';

export interface DescriptorUse {
  readonly open: number;
  /** The soft limit. */
  readonly limit: number;
}

/** Open descriptors and the soft limit, or undefined when /proc does not say or there is no limit. */
export function descriptorUse(): DescriptorUse | undefined {
  let limits: string;
  let open: number;
  try {
    limits = readFileSync('/proc/self/limits', 'utf8');
    open = readdirSync('/proc/self/fd').length - 1; // less the one readdir itself holds
  } catch {
    return undefined;
  }
  const soft = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits)?.[1];
  if (soft === undefined || soft === 'unlimited') return undefined;
  return { open, limit: Number(soft) };
}

/** Free descriptors left under the soft limit, or undefined when /proc does not say. */
export function descriptorRoom(): number | undefined {
  const use = descriptorUse();
  return use && use.limit - use.open;
}
