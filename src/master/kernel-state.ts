// What the kernel of the master's network namespace allows, probed once at
// start and again at each reload (an operator may have changed the sysctl
// in between), never at every worker death: the answer is cached here and
// passed to whoever decides.
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { readTcpMigrateReq, writeTcpMigrateReq } from '../metrics/kernel.js';
import { monotonic } from './clock.js';

export interface KernelState {
  /** net.ipv4.tcp_migrate_req in this namespace; null before Linux 5.14. */
  readonly tcpMigrateReq: 0 | 1 | null;
  /** Monotonic ms of the probe. */
  readonly probedAt: number;
}

/**
 * Reads the namespace's tcp_migrate_req and sets it to 1 only when the
 * configuration allows it: it is namespace-wide and changes every other
 * SO_REUSEPORT user there. Never reset on exit.
 */
export function probeKernel(config: Config, log: Logger): KernelState {
  let value = readTcpMigrateReq();
  if (value === 0 && config.reload.setTcpMigrateReq) {
    try {
      writeTcpMigrateReq(1);
      value = 1;
      log.warn('set net.ipv4.tcp_migrate_req=1 in this network namespace (reload.set_tcp_migrate_req); it applies to every SO_REUSEPORT user here');
    } catch (err) {
      log.error({ err }, `could not set net.ipv4.tcp_migrate_req: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return Object.freeze({ tcpMigrateReq: value, probedAt: monotonic() });
}
