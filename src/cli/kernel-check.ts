// `handover check --kernel`: every probe of this host (in this process's
// network namespace and with its privileges: run it the way the master
// runs), its result, and the strategy a start would use, with the reason
// each better one was passed over.
import { chooseStrategy, formatKernelCheck, kernelProbe } from '../bpf/index.js';
import type { Config } from '../config/index.js';

export interface KernelCheck {
  readonly lines: readonly string[];
  /** False when the configured strategy is one this host cannot do (start would fail). */
  readonly ok: boolean;
}

export async function kernelCheck(config: Config): Promise<KernelCheck> {
  const probe = await kernelProbe();
  const options = { setTcpMigrateReq: config.reload.setTcpMigrateReq };
  const decision = chooseStrategy(config.reload.strategy, probe, true, options);
  const lines = formatKernelCheck(probe, decision, true, options);
  if (decision.ok && decision.configured === 'auto') {
    const changed = chooseStrategy('auto', probe, false, options);
    if (changed.ok && changed.strategy !== decision.strategy) {
      lines.push(`  a reload that changes a listener's protocol or removes one: auto -> ${changed.strategy} (inherit needs every listener unchanged)`);
    }
  }
  return { lines, ok: decision.ok };
}
