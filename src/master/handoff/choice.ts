// Which strategy a start or a reload uses: the configured one when the host
// can do it, or under `auto` the first in bpf > migrate > inherit (only
// when every listener keeps its spec) > drain > none that it can
// (bpf/choice.ts decides from the probe; this applies it to the master:
// the sysctl it may set, and what it logs).
import { chooseStrategy, SYSCTL_HINT, type StrategyDecision } from '../../bpf/index.js';
import type { Config } from '../../config/index.js';
import type { Logger } from '../../log/logger.js';
import type { ListenerPlan } from '../../protocol/control.js';
import { setTcpMigrateReq, type KernelState } from '../kernel-state.js';

export interface StrategyPick {
  readonly decision: StrategyDecision;
  /** The kernel state decided on (the sysctl may have been set on the way). */
  readonly kernel: KernelState;
}

/**
 * Whether `inherit` could hand every address over: none changed its
 * protocol or was removed (a new address is just opened, under any
 * strategy). At start-up: true.
 */
export function specsUnchanged(plans: readonly ListenerPlan[]): boolean {
  return plans.every((p) => p.action === 'handoff' || p.action === 'open');
}

/**
 * The decision for `config` on `kernel`. When it is `migrate` with the
 * sysctl at 0 and reload.set_tcp_migrate_req on, the sysctl is set and
 * the choice made again on what the kernel then says (its canary run).
 */
export async function pickStrategy(config: Config, kernel: KernelState, unchanged: boolean, log: Logger): Promise<StrategyPick> {
  const configured = config.reload.strategy;
  const decision = chooseStrategy(configured, kernel.probe, unchanged, { setTcpMigrateReq: config.reload.setTcpMigrateReq });
  if (!decision.ok || decision.strategy !== 'migrate' || kernel.tcpMigrateReq !== 0 || !config.reload.setTcpMigrateReq) return { decision, kernel };
  const set = await setTcpMigrateReq(kernel, log);
  return { decision: chooseStrategy(configured, set.probe, unchanged), kernel: set };
}

/**
 * Logs a decision: the choice with the strategies passed over, a failed
 * canary as a warning (a kernel whose migration is present but broken),
 * and the sysctl.d line when kernel migration is off.
 */
export function logDecision(log: Logger, pick: StrategyPick): void {
  const { decision, kernel } = pick;
  if (!decision.ok) return;
  const rejected = decision.rejected.map((r) => `${r.strategy}: ${r.reason}`);
  log.info(
    { configured: decision.configured, strategy: decision.strategy, passedOver: rejected },
    decision.configured === 'auto' ? `reload strategy auto -> ${decision.strategy}` : `reload strategy ${decision.strategy}`,
  );
  for (const [mechanism, result] of Object.entries(kernel.probe.canary)) {
    if (result.status === 'failed') log.warn({ canary: mechanism, reason: result.reason }, `start-up canary (${mechanism} migration) failed: ${result.reason}; strategies relying on it are not used`);
  }
  for (const note of decision.notes) log.info(note);
  if (kernel.tcpMigrateReq === 0 && decision.strategy !== 'bpf' && decision.strategy !== 'migrate') {
    log.info(`net.ipv4.tcp_migrate_req is 0: reloads use ${decision.strategy}; for kernel migration ${SYSCTL_HINT}`);
  }
}
