// CLOCK_MONOTONIC, read from the kernel. systemd compares the MONOTONIC_USEC
// of a RELOADING=1 notification with its own CLOCK_MONOTONIC, so this is the
// clock to read, not whatever a runtime's timer happens to use.

import { CLOCK_MONOTONIC } from './constants.js';
import { check, libc } from './libc.js';

/** clock_gettime(CLOCK_MONOTONIC) in microseconds (struct timespec: two 64-bit fields). */
export function monotonicMicros(): bigint {
  const ts = Buffer.alloc(16);
  check(libc().clock_gettime([CLOCK_MONOTONIC, ts]), 'clock_gettime', 'CLOCK_MONOTONIC');
  return ts.readBigInt64LE(0) * 1_000_000n + ts.readBigInt64LE(8) / 1_000n;
}
