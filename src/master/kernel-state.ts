// What the kernel of the master's network namespace allows, probed once at
// start (kernel version, capabilities, whether the select-or-migrate
// program loads, whether classic steering attaches, the canaries) and
// refreshed at each reload for what can change under a running master (the
// sysctl: an operator may set it in between), never at every worker death:
// the answer is cached here and passed to whoever decides.
import { kernelProbe, refreshSysctl, type KernelProbe } from '../bpf/index.js';
import type { Logger } from '../log/logger.js';
import { writeTcpMigrateReq } from '../metrics/kernel.js';
import { monotonic } from './clock.js';

export interface KernelState {
  /** net.ipv4.tcp_migrate_req in this namespace; null before Linux 5.14. */
  readonly tcpMigrateReq: 0 | 1 | null;
  /** Everything probed (bpf/probe.ts), for the choice of strategy and `check --kernel`. */
  readonly probe: KernelProbe;
  /** Monotonic ms of the probe. */
  readonly probedAt: number;
}

function stateOf(probe: KernelProbe): KernelState {
  return Object.freeze({ tcpMigrateReq: probe.tcpMigrateReq.value, probe, probedAt: monotonic() });
}

/** The start-up probe, canaries included (cached for the process: a second call returns the same). */
export async function probeKernel(): Promise<KernelState> {
  return stateOf(await kernelProbe());
}

/** `previous` with the sysctl read again (and its canary run when it became 1): what each reload decides on. */
export async function refreshKernel(previous: KernelState): Promise<KernelState> {
  return stateOf(await refreshSysctl(previous.probe));
}

/**
 * Sets tcp_migrate_req to 1 (reload.set_tcp_migrate_req, only once the
 * choice is `migrate`): it is namespace-wide and changes every other
 * SO_REUSEPORT user there. Never reset on exit. Returns the state probed
 * again (the canary runs on the new value); on failure, `kernel` unchanged.
 */
export async function setTcpMigrateReq(kernel: KernelState, log: Logger): Promise<KernelState> {
  try {
    writeTcpMigrateReq(1);
  } catch (err) {
    log.error({ err }, `could not set net.ipv4.tcp_migrate_req: ${err instanceof Error ? err.message : String(err)}`);
    return kernel;
  }
  log.warn('set net.ipv4.tcp_migrate_req=1 in this network namespace (reload.set_tcp_migrate_req); it applies to every SO_REUSEPORT user here');
  return refreshKernel(kernel);
}
