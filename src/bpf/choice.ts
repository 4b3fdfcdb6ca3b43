// Which hand-off strategy a reload uses, from the configured one and what
// the probe found. Pure. `auto` takes the first that this host allows, in
// the order of how much it keeps:
//
//   bpf      eBPF select-or-migrate: queues and half-open requests move to
//            the new generation only, whatever tcp_migrate_req says
//   migrate  kernel migration by net.ipv4.tcp_migrate_req = 1
//   inherit  the same sockets for the new generation (only when every
//            listener spec is unchanged)
//   drain    steer new SYNs to the new generation (classic BPF, no
//            privilege), let the old queues empty, then shut down
//   none     close; what is queued is lost and counted
//
// A forced strategy the host cannot do is an error that names what is
// missing, for the master to refuse to start with.

import type { Strategy } from '../config/index.js';
import { NotSupportedError } from '../sys/index.js';
import type { CanaryResult } from './canary.js';
import type { KernelProbe } from './probe.js';
import { SELECT_OR_MIGRATE_MIN_KERNEL } from './reuseport-program.js';

export type Handoff = 'bpf' | 'migrate' | 'inherit' | 'drain' | 'none';
export const AUTO_ORDER: readonly Handoff[] = Object.freeze(['bpf', 'migrate', 'inherit', 'drain', 'none']);

export const SYSCTL_LINE = 'net.ipv4.tcp_migrate_req = 1';
export const CLASSIC_STEERING_MIN_KERNEL = 'Linux 4.5';

export interface Rejection {
  readonly strategy: Handoff;
  readonly reason: string;
}

export type StrategyDecision =
  | {
      readonly ok: true;
      readonly configured: Strategy;
      readonly strategy: Handoff;
      /** Strategies ranked above the chosen one under `auto`, and why each was passed over. */
      readonly rejected: readonly Rejection[];
      /** Things to say even though the choice stands, e.g. that the master will set the sysctl. */
      readonly notes: readonly string[];
    }
  | { readonly ok: false; readonly configured: Strategy; readonly error: NotSupportedError; readonly rejected: readonly Rejection[] };

export interface ChoiceOptions {
  /** reload.set_tcp_migrate_req: the master may set the sysctl to 1 itself (when it can write it). */
  readonly setTcpMigrateReq?: boolean;
}

type Availability = { readonly ok: true; readonly notes: readonly string[] } | { readonly ok: false; readonly error: NotSupportedError };

const yes = (...notes: string[]): Availability => ({ ok: true, notes });
const no = (feature: string, needs: ConstructorParameters<typeof NotSupportedError>[1]): Availability => ({
  ok: false,
  error: new NotSupportedError(feature, needs),
});

function canaryFailed(c: CanaryResult): string | undefined {
  return c.status === 'failed' ? c.reason : undefined;
}

/** Whether `strategy` can run on this host, and if not, what it lacks. */
export function availability(strategy: Handoff, probe: KernelProbe, specsUnchanged: boolean, options: ChoiceOptions = {}): Availability {
  const kernel = `kernel ${probe.kernel.release}`;
  const older = (major: number, minor: number): boolean =>
    probe.kernel.major < major || (probe.kernel.major === major && probe.kernel.minor < minor);
  switch (strategy) {
    case 'bpf': {
      if (older(5, 14)) return no(`strategy bpf (${kernel})`, { minKernel: SELECT_OR_MIGRATE_MIN_KERNEL });
      if (!probe.ebpf.ok) {
        const e = probe.ebpf.error;
        if (e instanceof NotSupportedError) return { ok: false, error: new NotSupportedError('strategy bpf', needsOf(e)) };
        return no('strategy bpf', { detail: `a select-or-migrate program the kernel accepts (${probe.ebpf.reason})` });
      }
      const broken = canaryFailed(probe.canary.ebpf);
      if (broken !== undefined) return no('strategy bpf', { detail: `working eBPF migration (the canary failed: ${broken})` });
      return yes();
    }
    case 'migrate': {
      if (older(5, 14) || probe.tcpMigrateReq.value === null) return no(`strategy migrate (${kernel})`, { minKernel: 'Linux 5.14' });
      const broken = canaryFailed(probe.canary.sysctl);
      if (broken !== undefined) return no('strategy migrate', { detail: `working kernel migration (the canary failed: ${broken})` });
      if (probe.tcpMigrateReq.value === 1) return yes();
      if (options.setTcpMigrateReq === true && probe.tcpMigrateReq.writable) {
        return yes(`the master sets ${SYSCTL_LINE} (reload.set_tcp_migrate_req), untried by the canary`);
      }
      const how = options.setTcpMigrateReq === true
        ? `which this process cannot set (${probe.tcpMigrateReq.why ?? 'not writable'})`
        : `in /etc/sysctl.d/ (or reload.set_tcp_migrate_req: true${probe.tcpMigrateReq.writable ? '' : `, but it is not writable here: ${probe.tcpMigrateReq.why ?? 'denied'}`})`;
      return no('strategy migrate', { detail: `${SYSCTL_LINE} in the master's network namespace (it is 0), ${how}` });
    }
    case 'inherit':
      return specsUnchanged ? yes() : no('strategy inherit', { detail: 'every listener spec unchanged (a changed address cannot keep its sockets)' });
    case 'drain': {
      if (older(4, 5)) return no(`strategy drain (${kernel})`, { minKernel: CLASSIC_STEERING_MIN_KERNEL });
      if (!probe.cbpf.ok) return no('strategy drain', { detail: `classic BPF reuseport steering (${probe.cbpf.reason})` });
      const broken = canaryFailed(probe.canary.cbpf);
      if (broken !== undefined) return no('strategy drain', { detail: `working classic BPF steering (the canary failed: ${broken})` });
      return yes();
    }
    case 'none':
      return yes();
  }
}

function needsOf(e: NotSupportedError): ConstructorParameters<typeof NotSupportedError>[1] {
  return {
    ...(e.minKernel !== undefined ? { minKernel: e.minKernel } : {}),
    ...(e.capability !== undefined ? { capability: e.capability } : {}),
    ...(e.detail !== undefined ? { detail: e.detail } : {}),
  };
}

/**
 * The strategy for this host. `specsUnchanged`: every listener spec of the
 * reload is the same as before (at start-up: true). Under `auto`, every
 * strategy ranked above the chosen one comes with the reason it was passed
 * over; a forced strategy either stands or fails with what it lacks.
 */
export function chooseStrategy(configured: Strategy, probe: KernelProbe, specsUnchanged: boolean, options: ChoiceOptions = {}): StrategyDecision {
  if (configured !== 'auto') {
    const a = availability(configured, probe, specsUnchanged || configured === 'inherit', options);
    return a.ok
      ? { ok: true, configured, strategy: configured, rejected: [], notes: a.notes }
      : { ok: false, configured, error: a.error, rejected: [{ strategy: configured, reason: a.error.message }] };
  }
  const rejected: Rejection[] = [];
  for (const strategy of AUTO_ORDER) {
    const a = availability(strategy, probe, specsUnchanged, options);
    if (a.ok) return { ok: true, configured, strategy, rejected, notes: a.notes };
    rejected.push({ strategy, reason: a.error.message });
  }
  throw new Error('unreachable: strategy none is always available');
}
