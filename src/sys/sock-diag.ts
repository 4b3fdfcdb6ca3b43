// The TCP sockets of this process's network namespace in chosen states,
// from the kernel's socket diagnostics (NETLINK_SOCK_DIAG, what `ss` uses):
// the kernel walks its tables and sends only the matching sockets, where
// /proc/net/tcp prints every socket of the namespace as text. Under a
// new-connection load that is the difference between ~1 ms and 120-150 ms
// of the master's event loop at 17,000 TIME_WAIT rows (26 ms at 3,000: the
// half-open case of test/kernel/bpf.test.ts measures both).
// No privileges needed. Request sockets (NEW_SYN_RECV) are reported when
// SYN_RECV is asked for, with the state SYN_RECV, as /proc prints them.

import {
  AF_INET, AF_INET6, AF_NETLINK, IPPROTO_TCP, NETLINK_SOCK_DIAG, NLM_F_DUMP, NLM_F_REQUEST,
  NLMSG_DONE, NLMSG_ERROR, SOCK_CLOEXEC, SOCK_DIAG_BY_FAMILY, SOCK_RAW,
} from './constants.js';
import { SyscallError } from './errno.js';
import { check, libc } from './libc.js';
import { receiveDatagram } from './unix.js';

export interface DiagSocket {
  readonly family: 4 | 6;
  /** Kernel state number (TCP_SYN_RECV is 3, TCP_LISTEN 10). */
  readonly state: number;
  /** Addresses as 4 (IPv4) or 16 (IPv6) bytes in network order. */
  readonly localBytes: Uint8Array;
  readonly localPort: number;
  readonly remoteBytes: Uint8Array;
  readonly remotePort: number;
}

const NLMSG_HDR = 16;
/** struct inet_diag_req_v2: family, protocol, ext, pad, states (u32), then struct inet_diag_sockid (48 bytes). */
const REQ_SIZE = 8 + 48;
/** struct inet_diag_msg up to idiag_inode: family, state, timer, retrans, the sockid, expires, rqueue, wqueue, uid, inode. */
const MSG_MIN = 4 + 48 + 20;
const SOCKADDR_NL_SIZE = 12;
const RECV_BYTES = 32 * 1024;
/** A dump ends with NLMSG_DONE; this many empty reads in a row mean it never will. */
const MAX_EMPTY_READS = 3;

const align4 = (n: number): number => (n + 3) & ~3;

/**
 * TCP sockets of the caller's network namespace whose state is in
 * `states` (a bit mask: 1 << state), both families. Throws SyscallError when
 * the kernel has no socket diagnostics (a sandbox without NETLINK_SOCK_DIAG).
 */
export function tcpSocketsInStates(states: number): DiagSocket[] {
  const fd = check(libc().socket([AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG]), 'socket', 'NETLINK_SOCK_DIAG');
  try {
    return [...dump(fd, 4, states, 1), ...dump(fd, 6, states, 2)];
  } finally {
    libc().close([fd]);
  }
}

function dump(fd: number, family: 4 | 6, states: number, seq: number): DiagSocket[] {
  const req = Buffer.alloc(NLMSG_HDR + REQ_SIZE);
  req.writeUInt32LE(req.length, 0);
  req.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
  req.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  req.writeUInt32LE(seq, 8);
  req.writeUInt8(family === 4 ? AF_INET : AF_INET6, NLMSG_HDR);
  req.writeUInt8(IPPROTO_TCP, NLMSG_HDR + 1);
  req.writeUInt32LE(states >>> 0, NLMSG_HDR + 4);
  const kernel = Buffer.alloc(SOCKADDR_NL_SIZE); // nl_pid 0: the kernel
  kernel.writeUInt16LE(AF_NETLINK, 0);
  check(libc().sendto([fd, req, req.length, 0, kernel, kernel.length]), 'sendto', 'NETLINK_SOCK_DIAG');
  const found: DiagSocket[] = [];
  // The kernel fills the dump as it is read, synchronously: a read never has to wait.
  for (let empty = 0; empty < MAX_EMPTY_READS; ) {
    const buf = receiveDatagram(fd, RECV_BYTES, 'NETLINK_SOCK_DIAG');
    if (buf === undefined) {
      empty++;
      continue;
    }
    empty = 0;
    for (let at = 0; at + NLMSG_HDR <= buf.length; ) {
      const len = buf.readUInt32LE(at);
      const type = buf.readUInt16LE(at + 4);
      if (len < NLMSG_HDR || at + len > buf.length) throw new Error(`NETLINK_SOCK_DIAG: malformed answer (message of ${len} bytes at ${at} of ${buf.length})`);
      if (buf.readUInt32LE(at + 8) === seq) {
        if (type === NLMSG_DONE) return found;
        if (type === NLMSG_ERROR) throw new SyscallError('sock_diag', -buf.readInt32LE(at + NLMSG_HDR), 'NETLINK_SOCK_DIAG');
        if (type === SOCK_DIAG_BY_FAMILY && len >= NLMSG_HDR + MSG_MIN) found.push(parse(buf, at + NLMSG_HDR));
      }
      at += align4(len);
    }
  }
  throw new Error('NETLINK_SOCK_DIAG: the dump did not end');
}

function parse(buf: Buffer, at: number): DiagSocket {
  const family = buf.readUInt8(at) === AF_INET6 ? 6 : 4;
  const size = family === 4 ? 4 : 16;
  return {
    family,
    state: buf.readUInt8(at + 1),
    localPort: buf.readUInt16BE(at + 4),
    remotePort: buf.readUInt16BE(at + 6),
    localBytes: Uint8Array.from(buf.subarray(at + 8, at + 8 + size)),
    remoteBytes: Uint8Array.from(buf.subarray(at + 24, at + 24 + size)),
  };
}
