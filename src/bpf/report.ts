// The lines `handover check --kernel` prints: each probe with its result,
// then the strategy chosen and why every better one was passed over. Pure;
// the CLI prints them, the master logs them at start.

import type { CanaryResult } from './canary.js';
import { AUTO_ORDER, availability, SYSCTL_LINE } from './choice.js';
import type { ChoiceOptions, StrategyDecision } from './choice.js';
import type { FeatureProbe, KernelProbe } from './probe.js';

const feature = (f: FeatureProbe, yes: string): string => (f.ok ? yes : `no: ${f.reason}`);

function canary(c: CanaryResult): string {
  if (c.status === 'passed') return `passed (${c.ms} ms)`;
  return `${c.status}: ${c.reason}`;
}

/** One line per probe, indented under a heading. */
export function formatProbe(probe: KernelProbe): string[] {
  const s = probe.tcpMigrateReq;
  const sysctl = s.value === null
    ? 'absent (Linux < 5.14: no kernel migration)'
    : `${s.value} in this network namespace, ${s.writable ? 'writable by this process' : `not writable (${s.why ?? 'denied'})`}`;
  return [
    `kernel: Linux ${probe.kernel.release} (${probe.arch})`,
    `  capabilities:                   ${probe.capabilities.names.length > 0 ? probe.capabilities.names.join(' ') : 'none of CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN'} (CapEff ${probe.capabilities.effective})`,
    `  net.ipv4.tcp_migrate_req:       ${sysctl}`,
    `  eBPF select-or-migrate program: ${feature(probe.ebpf, 'loads')}`,
    `  classic BPF steering:           ${feature(probe.cbpf, 'attaches')}`,
    `  canary, sysctl migration:       ${canary(probe.canary.sysctl)}`,
    `  canary, eBPF migration:         ${canary(probe.canary.ebpf)}`,
    `  canary, classic steering:       ${canary(probe.canary.cbpf)}`,
  ];
}

/**
 * The probe's lines, then the decision: under `auto` every strategy in
 * order with "chosen", "passed over: …" or "available"; a forced one with
 * "ok" or the error. Ends with the sysctl.d line when kernel migration is
 * off but the kernel has it.
 */
export function formatKernelCheck(probe: KernelProbe, decision: StrategyDecision, specsUnchanged = true, options: ChoiceOptions = {}): string[] {
  const lines = formatProbe(probe);
  if (!decision.ok) {
    lines.push(`reload.strategy: ${decision.configured}: cannot run here: ${decision.error.message}`);
  } else {
    lines.push(`reload.strategy: ${decision.configured} -> ${decision.strategy}`);
    if (decision.configured === 'auto') {
      for (const strategy of AUTO_ORDER) {
        const rejected = decision.rejected.find((r) => r.strategy === strategy);
        if (rejected !== undefined) lines.push(`  ${strategy.padEnd(8)} passed over: ${rejected.reason}`);
        else if (strategy === decision.strategy) lines.push(`  ${strategy.padEnd(8)} chosen`);
        else {
          const a = availability(strategy, probe, specsUnchanged, options);
          lines.push(`  ${strategy.padEnd(8)} ${a.ok ? 'available' : `not available: ${a.error.message}`}`);
        }
      }
    }
    for (const note of decision.notes) lines.push(`  note: ${note}`);
  }
  if (probe.tcpMigrateReq.value === 0) {
    lines.push(`  for kernel migration add "${SYSCTL_LINE}" to /etc/sysctl.d/99-handover.conf (systemd/99-handover.conf ships it)`);
  }
  return lines;
}
