// Half-open requests on a port: handshakes the kernel has answered with a
// SYN-ACK but whose final ACK has not arrived (NEW_SYN_RECV requests,
// listed as SYN_RECV). They belong to one listener, but the kernel does not
// say which, and TCP_INFO does not count them; so the drain strategy notes
// the 4-tuples present when it steered new SYNs away and waits until those
// are gone (completed into an accept queue, or expired) before it shuts the
// old listeners down. Read in the master's own network namespace through
// the kernel's socket diagnostics (sys/sock-diag.ts: only the SYN_RECV
// sockets cross), or from /proc/<pid>/net/tcp and tcp6 for another
// process's namespace, or where netlink diagnostics are missing: /proc
// prints every socket of the namespace, 120-150 ms of a blocked event loop
// at 17,000 TIME_WAIT rows, at every cutover and every poll below.

import { formatIPv4, formatIPv6, isSyscallError, tcpSocketsInStates, type DiagSocket } from '../sys/index.js';
import { readTcpTable, TCP_SYN_RECV } from './tcp-table.js';

/** How often a wait re-reads the half-open requests. */
export const HALF_OPEN_POLL_MS = 25;

type Row = Pick<DiagSocket, 'family' | 'localPort' | 'remotePort'> & { readonly localHost: string; readonly remoteHost: string };

const tuple = (e: Row): string =>
  e.family === 4
    ? `${e.localHost}:${e.localPort} ${e.remoteHost}:${e.remotePort}`
    : `[${e.localHost}]:${e.localPort} [${e.remoteHost}]:${e.remotePort}`;

/** Errors after which the socket diagnostics are tried again at the next read. */
const TRANSIENT = ['EMFILE', 'ENFILE', 'ENOMEM', 'ENOBUFS', 'EINTR'];

/** False once the socket diagnostics failed here for good: /proc from then on. */
let diagnostics = true;

function synRecvOn(port: number, pid: number | 'self'): Row[] {
  if (pid === 'self' && diagnostics) {
    try {
      return tcpSocketsInStates(1 << TCP_SYN_RECV)
        .filter((s) => s.state === TCP_SYN_RECV && s.localPort === port)
        .map((s) => {
          const text = s.family === 4 ? formatIPv4 : formatIPv6;
          return { ...s, localHost: text(s.localBytes), remoteHost: text(s.remoteBytes) };
        });
    } catch (err) {
      // Short of descriptors or memory for a moment: /proc this time. Anything else (a sandbox without
      // NETLINK_SOCK_DIAG, a seccomp filter, a kernel that answers otherwise): /proc from now on.
      if (!isSyscallError(err, ...TRANSIENT)) diagnostics = false;
    }
  }
  return readTcpTable(pid).filter((e) => e.state === TCP_SYN_RECV && e.localPort === port);
}

/** SYN_RECV requests on local `port` (both families): an upper bound of the half-open requests a cutover there can lose. */
export function countSynRecv(port: number, pid: number | 'self' = 'self'): number {
  return synRecvOn(port, pid).length;
}

export interface HalfOpenWait {
  /** True when every captured request was gone before the deadline. */
  readonly gone: boolean;
  /** Captured requests still half-open at the end. */
  readonly remaining: number;
  readonly waitedMs: number;
}

/** The half-open requests on a port at one moment, to be checked again later. */
export class HalfOpenSnapshot {
  readonly port: number;
  readonly pid: number | 'self';
  /** "local remote" 4-tuples, e.g. `127.0.0.1:8080 127.0.0.1:51234`. */
  readonly tuples: ReadonlySet<string>;
  readonly takenAt: number;

  private constructor(port: number, pid: number | 'self', tuples: ReadonlySet<string>) {
    this.port = port;
    this.pid = pid;
    this.tuples = tuples;
    this.takenAt = Date.now();
  }

  /** Notes the SYN_RECV 4-tuples on `port` now. */
  static capture(port: number, pid: number | 'self' = 'self'): HalfOpenSnapshot {
    return new HalfOpenSnapshot(port, pid, new Set(synRecvOn(port, pid).map(tuple)));
  }

  get size(): number {
    return this.tuples.size;
  }

  /** The captured 4-tuples still in SYN_RECV now. */
  remaining(): string[] {
    if (this.tuples.size === 0) return [];
    const now = new Set(synRecvOn(this.port, this.pid).map(tuple));
    return [...this.tuples].filter((t) => now.has(t));
  }

  /**
   * Resolves once none of the captured requests is half-open, or at
   * `deadlineMs` from now, whichever comes first; `signal` ends it early
   * (reported as not gone).
   */
  async waitGone(deadlineMs: number, signal?: AbortSignal): Promise<HalfOpenWait> {
    const start = Date.now();
    for (;;) {
      const remaining = this.remaining().length;
      const waitedMs = Date.now() - start;
      if (remaining === 0) return { gone: true, remaining, waitedMs };
      if (waitedMs >= deadlineMs || signal?.aborted === true) return { gone: false, remaining, waitedMs };
      await new Promise((resolve) => setTimeout(resolve, Math.min(HALF_OPEN_POLL_MS, deadlineMs - waitedMs)));
    }
  }
}
