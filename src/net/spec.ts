// What the configuration asks a listener to be. Plain frozen data, compared
// across configurations to decide whether a reload may hand connections
// over between old and new listeners (the seed: "the source and destination
// listeners MUST have the same settings").

import type { SocketAddress } from '../config/types.js';

export interface ListenerSpec {
  readonly address: SocketAddress;
  /** The backlog the worker's listen(2) sets (the kernel caps it at net.core.somaxconn). */
  readonly backlog: number;
  /** IPV6_V6ONLY; always false for an IPv4 address. */
  readonly v6only: boolean;
  readonly tls: boolean;
}

/** A frozen ListenerSpec; v6only is normalised to false for IPv4. */
export function listenerSpec(input: {
  address: SocketAddress;
  backlog: number;
  v6only?: boolean;
  tls?: boolean;
}): ListenerSpec {
  if (!Number.isInteger(input.backlog) || input.backlog < 1) {
    throw new RangeError(`listener ${input.address.text}: backlog must be a positive integer (got ${input.backlog})`);
  }
  return Object.freeze({
    address: Object.isFrozen(input.address) ? input.address : Object.freeze({ ...input.address }),
    backlog: input.backlog,
    v6only: input.address.family === 6 && input.v6only === true,
    tls: input.tls === true,
  });
}

/**
 * A string equal for two specs exactly when sameSpec() is true, for maps
 * keyed by spec: `127.0.0.1:8080 backlog=511` plus ` v6only` / ` tls`.
 */
export function specKey(spec: ListenerSpec): string {
  return `${spec.address.text} backlog=${spec.backlog}${v6only(spec) ? ' v6only' : ''}${spec.tls ? ' tls' : ''}`;
}

/** Same address (canonical text), backlog, v6only and tls. */
export function sameSpec(a: ListenerSpec, b: ListenerSpec): boolean {
  return (
    a.address.text === b.address.text &&
    a.backlog === b.backlog &&
    v6only(a) === v6only(b) &&
    a.tls === b.tls
  );
}

// IPV6_V6ONLY means nothing for an IPv4 socket, whatever a spec says.
const v6only = (spec: ListenerSpec): boolean => spec.address.family === 6 && spec.v6only;
