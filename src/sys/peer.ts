// The control socket's calls: who is on the other end of a Unix stream
// connection (SO_PEERCRED), what a descriptor is bound to, and an advisory
// lock that the kernel drops when its holder dies.

import { AF_UNIX, LOCK_EX, LOCK_NB, SO_PEERCRED, SOL_SOCKET, SUN_PATH_OFFSET, SUN_PATH_SIZE, UCRED_SIZE } from './constants.js';
import { SyscallError } from './errno.js';
import { call, check, DataType, libc } from './libc.js';
import { getsockoptBuffer } from './socket.js';

const EWOULDBLOCK = 11;

/** The credentials the kernel recorded when the peer called connect(2) (or socketpair). */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** SO_PEERCRED of a connected Unix socket. */
export function peerCredentials(fd: number, target = `fd ${fd}`): PeerCredentials {
  const buf = getsockoptBuffer(fd, SOL_SOCKET, SO_PEERCRED, UCRED_SIZE, target);
  if (buf.length < UCRED_SIZE) throw new SyscallError('getsockopt', 22 /* EINVAL */, target);
  return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8) };
}

/**
 * The filesystem path a Unix socket descriptor is bound to (an accepted
 * connection reports its listener's path), or undefined when the
 * descriptor is not a Unix socket or is unnamed/abstract.
 */
export function unixSocketPath(fd: number, target = `fd ${fd}`): string | undefined {
  const buf = Buffer.alloc(SUN_PATH_OFFSET + SUN_PATH_SIZE);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(buf.length);
  check(libc().getsockname([fd, buf, len]), 'getsockname', target);
  const size = Math.min(len.readUInt32LE(), buf.length);
  if (size <= SUN_PATH_OFFSET || buf.readUInt16LE(0) !== AF_UNIX || buf[SUN_PATH_OFFSET] === 0) return undefined;
  const path = buf.subarray(SUN_PATH_OFFSET, size);
  const nul = path.indexOf(0);
  return path.subarray(0, nul < 0 ? path.length : nul).toString('utf8');
}

/**
 * flock(LOCK_EX | LOCK_NB): true when this descriptor now holds the lock,
 * false when another open file description holds it. The lock lasts until
 * the descriptor is closed, or its process dies.
 */
export function tryLockExclusive(fd: number, target = `fd ${fd}`): boolean {
  const result = call('flock', [DataType.I32, DataType.I32], [fd, LOCK_EX | LOCK_NB]);
  if (result.value === 0) return true;
  if (result.errnoCode === EWOULDBLOCK) return false;
  return check(result, 'flock', target) === 0;
}
