// How many more descriptors this process may open: RLIMIT_NOFILE's soft
// limit (from /proc/self/limits) less the descriptors open now. The limit
// bounds descriptor numbers, and new descriptors take the lowest free
// number, so `limit - open` free numbers below the limit exist at least:
// a lower bound, good for refusing early. Plain file reading, no ffi.

import { readdirSync, readFileSync } from 'node:fs';

/** Free descriptors left under the soft limit, or undefined when /proc does not say. */
export function descriptorRoom(): number | undefined {
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
  return Number(soft) - open;
}
