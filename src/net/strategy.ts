// Which hand-off strategy a reload uses, from the configuration and what the
// kernel of the master's network namespace allows. Pure: the caller reads
// the sysctl.
import type { Strategy } from '../config/index.js';
import type { EffectiveStrategy } from '../protocol/control.js';

export type { EffectiveStrategy };

export interface StrategyChoice {
  readonly strategy: EffectiveStrategy;
  readonly warning?: string;
}

export const SYSCTL_HINT = 'add "net.ipv4.tcp_migrate_req = 1" to /etc/sysctl.d/99-handover.conf (systemd/99-handover.conf ships it)';

/**
 * `auto`: migrate when the namespace's tcp_migrate_req is 1, else inherit
 * (lossless where specs are unchanged). An explicit strategy is honoured,
 * with a warning when the kernel will not do what it implies.
 */
export function chooseStrategy(configured: Strategy, tcpMigrateReq: 0 | 1 | null): StrategyChoice {
  switch (configured) {
    case 'auto':
      return tcpMigrateReq === 1 ? { strategy: 'migrate' } : { strategy: 'inherit' };
    case 'migrate':
      return tcpMigrateReq === 1
        ? { strategy: 'migrate' }
        : {
            strategy: 'migrate',
            warning: `strategy migrate needs net.ipv4.tcp_migrate_req=1 but it is ${tcpMigrateReq ?? 'absent (Linux < 5.14)'}: connections queued on old listeners will be reset; ${SYSCTL_HINT}`,
          };
    case 'inherit':
    case 'none':
      return { strategy: configured };
    case 'bpf':
    case 'drain': {
      const fallback = tcpMigrateReq === 1 ? 'migrate' : 'inherit';
      return { strategy: fallback, warning: `strategy ${configured} is not available in this version; using ${fallback}` };
    }
  }
}

