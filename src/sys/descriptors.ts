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

/** The soft RLIMIT_NOFILE, or undefined when /proc does not say or there is no limit. */
export function descriptorLimit(): number | undefined {
  let limits: string;
  try {
    limits = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
  const soft = /^Max open files\s+(\d+|unlimited)\s/m.exec(limits)?.[1];
  return soft === undefined || soft === 'unlimited' ? undefined : Number(soft);
}

/**
 * The size of this process's descriptor table (FDSize in /proc/self/status):
 * at least one more than the highest descriptor open, so never below the
 * count of open ones, and read in constant time, where listing
 * /proc/self/fd takes ~1 ms per 1,000 descriptors. Undefined when /proc
 * does not say.
 */
export function descriptorTableSize(): number | undefined {
  try {
    const size = /^FDSize:\s*(\d+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return size === undefined ? undefined : Number(size);
  } catch {
    return undefined;
  }
}

/** Open descriptors and the soft limit, or undefined when /proc does not say or there is no limit. */
export function descriptorUse(limit = descriptorLimit()): DescriptorUse | undefined {
  if (limit === undefined) return undefined;
  let open: number;
  try {
    open = readdirSync('/proc/self/fd').length - 1; // less the one readdir itself holds
  } catch {
    return undefined;
  }
  return { open, limit };
}

/** Free descriptors left under the soft limit, or undefined when /proc does not say. */
export function descriptorRoom(): number | undefined {
  const use = descriptorUse();
  return use && use.limit - use.open;
}
