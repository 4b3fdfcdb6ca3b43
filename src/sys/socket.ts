// Socket system calls on raw descriptors. Every failure throws SyscallError
// naming the call and the caller's target (an address, or `fd 12`).

import type { SocketAddress } from '../config/types.js';
import {
  AF_INET, AF_INET6, F_DUPFD_CLOEXEC, F_GETFD, FD_CLOEXEC, IPPROTO_TCP, SHUT_RDWR,
  SK_MEMINFO_DROPS, SO_ACCEPTCONN, SO_COOKIE, SO_MEMINFO, SOCK_CLOEXEC, SOCK_STREAM,
  SOL_SOCKET, TCP_INFO, TCP_INFO_SIZE, TCP_LISTEN_STATE, TCPI_SACKED_OFFSET, TCPI_UNACKED_OFFSET,
} from './constants.js';
import { SyscallError } from './errno.js';
import { check, libc } from './libc.js';
import { decodeSockaddr, encodeSockaddr } from './sockaddr.js';

const fdTarget = (fd: number): string => `fd ${fd}`;

/** A new TCP socket (SOCK_STREAM | SOCK_CLOEXEC), blocking, unbound. */
export function socket(family: 4 | 6, target?: string): number {
  const domain = family === 6 ? AF_INET6 : AF_INET;
  return check(libc().socket([domain, SOCK_STREAM | SOCK_CLOEXEC, 0]), 'socket', target);
}

export function setsockoptInt(fd: number, level: number, name: number, value: number, target = fdTarget(fd)): void {
  const buf = Buffer.alloc(4);
  buf.writeInt32LE(value);
  check(libc().setsockopt([fd, level, name, buf, 4]), 'setsockopt', target);
}

/** getsockopt into a buffer of `size` bytes; returns the bytes the kernel wrote. */
export function getsockoptBuffer(fd: number, level: number, name: number, size: number, target = fdTarget(fd)): Buffer {
  const buf = Buffer.alloc(size);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(size);
  check(libc().getsockopt([fd, level, name, buf, len]), 'getsockopt', target);
  return buf.subarray(0, Math.min(size, len.readUInt32LE()));
}

export function getsockoptInt(fd: number, level: number, name: number, target = fdTarget(fd)): number {
  const buf = getsockoptBuffer(fd, level, name, 4, target);
  return buf.length >= 4 ? buf.readInt32LE() : 0;
}

export function bind(fd: number, address: SocketAddress, target = address.text): void {
  const sa = encodeSockaddr(address, target);
  check(libc().bind([fd, sa, sa.length]), 'bind', target);
}

/**
 * listen(2). The master never calls this on a worker's socket (a worker's
 * `server.listen({ fd, backlog })` does, FACTS.md "must know" 2); it exists
 * for probes and tests.
 */
export function listen(fd: number, backlog: number, target = fdTarget(fd)): void {
  check(libc().listen([fd, backlog]), 'listen', target);
}

/** The address a socket is bound to (port resolved when it was bound to 0). */
export function getsockname(fd: number, target = fdTarget(fd)): SocketAddress {
  const buf = Buffer.alloc(128); // sizeof(struct sockaddr_storage)
  const len = Buffer.alloc(4);
  len.writeUInt32LE(buf.length);
  check(libc().getsockname([fd, buf, len]), 'getsockname', target);
  return decodeSockaddr(buf.subarray(0, len.readUInt32LE()), target);
}

export function shutdown(fd: number, how: number = SHUT_RDWR, target = fdTarget(fd)): void {
  check(libc().shutdown([fd, how]), 'shutdown', target);
}

/** close(2). Never retried: on Linux the descriptor is gone even on EINTR. */
export function close(fd: number, target = fdTarget(fd)): void {
  check(libc().close([fd]), 'close', target);
}

/** A new descriptor (lowest free ≥ `min`) for the same socket, with FD_CLOEXEC. */
export function dupCloexec(fd: number, min = 0, target = fdTarget(fd)): number {
  return check(libc().fcntl([fd, F_DUPFD_CLOEXEC, min]), 'fcntl', target);
}

export function isCloexec(fd: number, target = fdTarget(fd)): boolean {
  return (check(libc().fcntl([fd, F_GETFD, 0]), 'fcntl', target) & FD_CLOEXEC) !== 0;
}

/** SO_ACCEPTCONN: whether the socket is in LISTEN. */
export function isListening(fd: number, target = fdTarget(fd)): boolean {
  return getsockoptInt(fd, SOL_SOCKET, SO_ACCEPTCONN, target) === 1;
}

export interface AcceptQueue {
  /** Connections waiting in the accept queue (tcpi_unacked of a LISTEN socket). */
  readonly queued: number;
  /** The backlog listen(2) set, after the somaxconn cap (tcpi_sacked). */
  readonly backlog: number;
}

/** Accept-queue length and backlog of a LISTEN socket, from TCP_INFO. Meaningless for other states. */
export function tcpInfoQueue(fd: number, target = fdTarget(fd)): AcceptQueue {
  const info = getsockoptBuffer(fd, IPPROTO_TCP, TCP_INFO, TCP_INFO_SIZE, target);
  if (info.length < TCPI_SACKED_OFFSET + 4) {
    throw new Error(`getsockopt TCP_INFO ${target}: short answer (${info.length} bytes)`);
  }
  return { queued: info.readUInt32LE(TCPI_UNACKED_OFFSET), backlog: info.readUInt32LE(TCPI_SACKED_OFFSET) };
}

/**
 * Accept-queue length and backlog if the socket is in LISTEN (tcpi_state,
 * byte 0 of TCP_INFO), else null: one system call where SO_ACCEPTCONN and
 * TCP_INFO take two (each ffi call costs ~20 µs of CPU).
 */
export function listeningQueue(fd: number, target = fdTarget(fd)): AcceptQueue | null {
  const info = getsockoptBuffer(fd, IPPROTO_TCP, TCP_INFO, TCP_INFO_SIZE, target);
  if (info.length < TCPI_SACKED_OFFSET + 4) {
    throw new Error(`getsockopt TCP_INFO ${target}: short answer (${info.length} bytes)`);
  }
  if (info.readUInt8(0) !== TCP_LISTEN_STATE) return null;
  return { queued: info.readUInt32LE(TCPI_UNACKED_OFFSET), backlog: info.readUInt32LE(TCPI_SACKED_OFFSET) };
}

/** SO_COOKIE: the socket's unique, never-reused 64-bit id (what reuseport maps report). */
export function socketCookie(fd: number, target = fdTarget(fd)): bigint {
  const buf = getsockoptBuffer(fd, SOL_SOCKET, SO_COOKIE, 8, target);
  if (buf.length !== 8) throw new SyscallError('getsockopt', 22 /* EINVAL */, target);
  return buf.readBigUInt64LE();
}

/**
 * SO_MEMINFO's SK_MEMINFO_DROPS: packets the kernel dropped on this socket.
 * For a listener that is its share of TcpExt ListenDrops (a full accept
 * queue, ListenOverflows, included), counted per socket rather than per
 * network namespace.
 */
export function socketDrops(fd: number, target = fdTarget(fd)): number {
  const size = (SK_MEMINFO_DROPS + 1) * 4;
  const info = getsockoptBuffer(fd, SOL_SOCKET, SO_MEMINFO, size, target);
  if (info.length < size) throw new Error(`getsockopt SO_MEMINFO ${target}: short answer (${info.length} bytes)`);
  return info.readUInt32LE(SK_MEMINFO_DROPS * 4);
}
