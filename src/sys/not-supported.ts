// A kernel feature this host does not offer, or does not offer to us: the
// error names the feature and what it takes (a minimum kernel, a
// capability, a sysctl), so that `handover check --kernel` can print it as
// one line a person can act on. In the spirit of cilium/ebpf's
// ErrNotSupported.

export interface Requirement {
  /** e.g. "Linux 5.14" */
  readonly minKernel?: string;
  /** e.g. "CAP_BPF or CAP_SYS_ADMIN" */
  readonly capability?: string;
  /** Anything else that is missing, e.g. "net.ipv4.tcp_migrate_req = 1". */
  readonly detail?: string;
}

export class NotSupportedError extends Error {
  readonly feature: string;
  declare readonly minKernel?: string;
  declare readonly capability?: string;
  declare readonly detail?: string;

  constructor(feature: string, needs: Requirement) {
    const parts: string[] = [];
    if (needs.minKernel !== undefined) parts.push(needs.minKernel);
    if (needs.capability !== undefined) parts.push(needs.capability);
    if (needs.detail !== undefined) parts.push(needs.detail);
    super(`${feature} is not supported here: needs ${parts.join(', ') || 'a feature this host lacks'}`);
    this.name = 'NotSupportedError';
    this.feature = feature;
    if (needs.minKernel !== undefined) this.minKernel = needs.minKernel;
    if (needs.capability !== undefined) this.capability = needs.capability;
    if (needs.detail !== undefined) this.detail = needs.detail;
  }
}

export function isNotSupported(err: unknown): err is NotSupportedError {
  return err instanceof NotSupportedError;
}
