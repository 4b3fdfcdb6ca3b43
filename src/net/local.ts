// Local (Unix-domain) sockets: who is on the other end of a control
// connection, and the lock that makes one master per control socket.
//
// Node 20 has no API for SO_PEERCRED, so the descriptor comes from the
// socket's libuv handle (`socket._handle.fd`, a Pipe on Unix). That is an
// internal field, used here under three rules: it is read synchronously in
// the 'connection' callback, while the handle is open (so the number cannot
// have been reused); it is checked to be a Unix socket bound to our own path
// before it is trusted; and anything unexpected fails closed (the caller
// refuses the connection). It is never closed here: the Socket owns it.

import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { peerCredentials, tryLockExclusive, unixSocketPath, type PeerCredentials } from '../sys/index.js';

export type { PeerCredentials } from '../sys/index.js';

/** The peer of an accepted control connection, or an error saying why it cannot be known. */
export function peerOf(socket: Socket, listenPath: string): PeerCredentials | Error {
  const handle: unknown = (socket as unknown as { _handle?: unknown })._handle;
  const fd = (handle as { fd?: unknown } | null | undefined)?.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) return new Error('no descriptor for the connection');
  try {
    const bound = unixSocketPath(fd);
    if (bound !== listenPath) return new Error(`fd ${fd} is not a connection on ${listenPath}`);
    return peerCredentials(fd);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * An exclusive flock on `<socket>.lock`, held for the master's life. The
 * kernel releases it when the master dies however it dies, so a stale lock
 * file never blocks a restart, while two masters starting at the same
 * moment cannot both pass (a connect-then-bind check alone would let both
 * through and the second would unlink the first's socket). The file holds
 * the owner's pid, for the error message; it is left in place on exit
 * (unlinking a lock file races with the next taker).
 */
export class ControlLock {
  private constructor(
    readonly path: string,
    private fd: number | undefined,
  ) {}

  /** Takes the lock, or returns the pid written by the master that holds it (0 when unknown). */
  static acquire(path: string): ControlLock | { readonly heldBy: number } {
    const fd = openSync(path, 'a+', 0o600);
    try {
      if (!tryLockExclusive(fd, path)) {
        const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
        closeSync(fd);
        return { heldBy: Number.isInteger(pid) ? pid : 0 };
      }
      ftruncateSync(fd, 0);
      writeSync(fd, `${process.pid}\n`);
      return new ControlLock(path, fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  release(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}
