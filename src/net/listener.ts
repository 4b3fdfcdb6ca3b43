// The master's copy of a listening socket. The master binds it but never
// listens on it (a worker's `server.listen({ fd, backlog })` does: FACTS.md
// "must know" 2); it keeps the copy so that it can take the socket out of
// LISTEN for every holder at once with shutdown(2), whatever the worker is
// doing ("must know" 1).

import type { SocketAddress } from '../config/types.js';
import {
  bind, close, constants as C, getsockname, isListening, isSyscallError, listeningQueue, setsockoptInt, shutdown,
  socket, socketAddress, socketDrops,
} from '../sys/index.js';
import type { AcceptQueue } from '../sys/index.js';
import type { ListenerSpec } from './spec.js';

/** What a Listener tells the reuseport group it belongs to (net/reuseport-group.ts). */
export interface GroupMembership {
  /** The socket entered LISTEN: it joined the kernel's group, after those before it. */
  joined(listener: Listener): void;
  /** The socket left LISTEN (shut down or closed): the kernel compacts the group. */
  left(listener: Listener): void;
}

export class Listener {
  readonly spec: ListenerSpec;
  /** The port actually bound (resolved when the spec asks for port 0). */
  readonly port: number;
  /** The bound address, with the resolved port: use its `text` in logs and errors. */
  readonly address: SocketAddress;
  #fd: number | undefined;
  #retiring = false;
  #joined = false;
  readonly #group: GroupMembership | undefined;

  /** Takes ownership of `fd`, a socket already bound for `spec`. */
  constructor(fd: number, spec: ListenerSpec, port: number, group?: GroupMembership) {
    this.#fd = fd;
    this.spec = spec;
    this.port = port;
    this.address = socketAddress(spec.address.host, port, spec.address.family);
    this.#group = group;
  }

  /** Whether it is being (or has been) released: a retired listener is never handed to a worker again. */
  get retiring(): boolean {
    return this.#retiring || this.closed;
  }

  /**
   * Records that a worker put the socket in LISTEN (checked: throws when it
   * is not), so that its group knows the kernel's order. Idempotent.
   */
  markListening(): void {
    if (!this.isListening()) throw new Error(`listener ${this.address.text} (fd ${this.fd}) is not in LISTEN`);
    if (this.#joined) return;
    this.#joined = true;
    this.#group?.joined(this);
  }

  /** The descriptor; throws once the listener is closed. */
  get fd(): number {
    if (this.#fd === undefined) throw new Error(`listener ${this.address.text} is closed`);
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd === undefined;
  }

  /** SO_ACCEPTCONN: whether some holder has put the socket in LISTEN. */
  isListening(): boolean {
    return isListening(this.fd, this.#target());
  }

  /** Accept-queue length and backlog (TCP_INFO), or null when not in LISTEN. */
  queue(): AcceptQueue | null {
    return listeningQueue(this.fd, this.#target());
  }

  /** Listen drops on this socket so far (SO_MEMINFO): SYNs and handshakes the kernel dropped, a full queue included. */
  drops(): number {
    return socketDrops(this.fd, this.#target());
  }

  /**
   * Takes the socket out of LISTEN for every process holding it; with
   * migration on, its queue moves to the group's other listeners. Safe to
   * repeat, and on a socket that never listened.
   */
  shutdown(): void {
    try {
      shutdown(this.fd, C.SHUT_RDWR, this.#target());
    } catch (err) {
      if (!isSyscallError(err, 'ENOTCONN')) throw err;
    }
  }

  /** Closes the master's copy only: other holders keep the socket (and its LISTEN state). Idempotent. */
  close(): void {
    const fd = this.#fd;
    if (fd === undefined) return;
    this.#fd = undefined;
    close(fd, `fd ${fd} (${this.address.text})`);
  }

  /**
   * The one way to release a listener for good; idempotent. A socket in
   * LISTEN is shut down now and closed after `closeAfterMs`: a shut-down
   * listener stays in its reuseport group (in TCP_CLOSE) until its last
   * descriptor closes, and only while it is there can its half-open requests
   * migrate when their final ACK arrives (closed at once, about one client
   * in 27,000 was reset across 50 reloads under load).
   *
   * A socket that never listened is closed at once and never shut down:
   * shutdown() before listen() poisons it (FACTS.md: a later listen()
   * succeeds, SYNs queue to it, and every connection it takes is reset).
   * Returns what it did.
   */
  retire(closeAfterMs = 0): 'shutdown' | 'closed' | 'already' {
    if (this.closed || this.#retiring) return 'already';
    this.#retiring = true;
    let listening: boolean;
    try {
      listening = this.isListening();
    } catch {
      listening = false;
    }
    if (!listening) {
      this.#leave();
      this.close();
      return 'closed';
    }
    try {
      this.shutdown();
    } finally {
      this.#leave();
      if (closeAfterMs > 0) setTimeout(() => this.close(), closeAfterMs).unref();
      else this.close();
    }
    return 'shutdown';
  }

  #leave(): void {
    if (!this.#joined) return;
    this.#joined = false;
    this.#group?.left(this);
  }

  toString(): string {
    return `Listener(${this.address.text}, ${this.#fd === undefined ? 'closed' : `fd ${this.#fd}`})`;
  }

  #target(): string {
    return `fd ${this.#fd} (${this.address.text})`;
  }
}

/**
 * Opens `count` bound, non-listening SO_REUSEPORT sockets for `spec`, all on
 * one port: `port` if given, else the spec's; when that is 0 the first bind
 * picks it. On failure closes what it opened and rethrows.
 */
export function openListeners(spec: ListenerSpec, count: number, port?: number, group?: GroupMembership): Listener[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`listener count must be an integer ≥ 0 (got ${count})`);
  const opened: Listener[] = [];
  let next = port ?? spec.address.port;
  try {
    for (let i = 0; i < count; i++) {
      const listener = openListener(spec, next, group);
      opened.push(listener);
      next = listener.port;
    }
  } catch (err) {
    for (const l of opened) quietly(() => l.close());
    throw err;
  }
  return opened;
}

/** Opens one bound, non-listening SO_REUSEPORT socket for `spec` on `port` (0: the kernel picks). */
export function openListener(spec: ListenerSpec, port: number = spec.address.port, group?: GroupMembership): Listener {
  const { host, family } = spec.address;
  const address = socketAddress(host, port, family);
  const fd = socket(family, address.text);
  try {
    setsockoptInt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 1, address.text);
    setsockoptInt(fd, C.SOL_SOCKET, C.SO_REUSEPORT, 1, address.text);
    if (family === 6) setsockoptInt(fd, C.IPPROTO_IPV6, C.IPV6_V6ONLY, spec.v6only ? 1 : 0, address.text);
    bind(fd, address, address.text);
    const bound = port === 0 ? getsockname(fd, address.text).port : port;
    return new Listener(fd, spec, bound, group);
  } catch (err) {
    quietly(() => close(fd));
    throw err;
  }
}

// On a failure path the first error is the one worth reporting.
export function quietly(release: () => void): void {
  try {
    release();
  } catch {
    // already failing
  }
}

/** Connections waiting in the accept queues of these listeners (TCP_INFO); closed ones count 0. */
export function queuedOn(listeners: readonly Listener[]): number {
  return listeners.reduce((n, l) => n + (l.closed ? 0 : (l.queue()?.queued ?? 0)), 0);
}
