// AF_UNIX datagram sockets, which Node does not offer: sd_notify is one
// datagram to $NOTIFY_SOCKET, and the tests that play systemd bind one to
// receive those datagrams.

import {
  AF_UNIX, MSG_DONTWAIT, MSG_NOSIGNAL, SOCK_CLOEXEC, SOCK_DGRAM, SUN_PATH_OFFSET, SUN_PATH_SIZE,
} from './constants.js';
import { SyscallError } from './errno.js';
import { check, libc } from './libc.js';

const EINVAL = 22;
const EAGAIN = 11;

/** A new AF_UNIX SOCK_DGRAM socket with SOCK_CLOEXEC (never inherited by a worker). */
export function unixDatagramSocket(target?: string): number {
  return check(libc().socket([AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0]), 'socket', target);
}

/**
 * struct sockaddr_un for `path`. A leading `@` names the abstract namespace
 * (sun_path[0] = NUL, no terminating NUL, and the length counts exactly the
 * name's bytes, as systemd writes and reads it); anything else is a file
 * path, NUL-terminated. Paths that do not fit sun_path → EINVAL.
 */
export function encodeSockaddrUn(path: string): Buffer {
  const abstract = path.startsWith('@');
  const name = Buffer.from(abstract ? path.slice(1) : path, 'utf8');
  // A path needs room for its NUL; an abstract name needs its leading NUL.
  if (path.length === 0 || name.length + 1 > SUN_PATH_SIZE || (!abstract && name.includes(0))) {
    throw new SyscallError('sockaddr_un', EINVAL, path);
  }
  const sa = Buffer.alloc(SUN_PATH_OFFSET + 1 + name.length);
  sa.writeUInt16LE(AF_UNIX, 0);
  name.copy(sa, SUN_PATH_OFFSET + (abstract ? 1 : 0));
  return sa;
}

/** bind(2) of a Unix socket to a path (or `@name`). */
export function bindUnix(fd: number, path: string): void {
  const sa = encodeSockaddrUn(path);
  check(libc().bind([fd, sa, sa.length]), 'bind', path);
}

/**
 * One datagram to `path`, never blocking (MSG_DONTWAIT: a receiver that
 * stopped reading must not stall the caller's event loop) and never raising
 * SIGPIPE. Throws SyscallError (EAGAIN when the receiver's queue is full,
 * ECONNREFUSED or ENOENT when nobody listens there).
 */
export function sendDatagram(fd: number, data: Buffer, path: string): void {
  const sa = encodeSockaddrUn(path);
  const sent = check(libc().sendto([fd, data, data.length, MSG_DONTWAIT | MSG_NOSIGNAL, sa, sa.length]), 'sendto', path);
  // A datagram is sent whole or not at all; anything else is a kernel surprise worth hearing of.
  if (sent !== data.length) throw new Error(`sendto ${path}: sent ${sent} of ${data.length} bytes`);
}

/** The next queued datagram (at most `maxBytes`), or undefined when none is queued. Never blocks. */
export function receiveDatagram(fd: number, maxBytes = 4096, target = `fd ${fd}`): Buffer | undefined {
  const buf = Buffer.alloc(maxBytes);
  const r = libc().recv([fd, buf, maxBytes, MSG_DONTWAIT]);
  if (r.value === -1) {
    if (r.errnoCode === EAGAIN) return undefined;
    throw new SyscallError('recv', r.errnoCode, target);
  }
  return buf.subarray(0, r.value);
}
