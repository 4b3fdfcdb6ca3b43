// The worker's inherited, bound-but-not-listening sockets, and the one way a
// server comes to listen on them. Handover's own servers ask by address; an
// unmodified app's `server.listen(port)` is routed here too, the way Node's
// cluster module answers `listen()` in its workers (lib/net.js
// `listenInCluster` -> `cluster._getServer`): instead of binding, the server
// is given the descriptor of the configured address with that port.
import { Server as NetServer, type Socket } from 'node:net';
import { parseAddress } from '../config/notation.js';
import type { WorkerListener } from '../protocol/worker.js';
import { handOver } from './drain.js';
import { hostMatches, isWildcard, listenRequest, type ListenRequest } from './listen-request.js';

/** A configured address and who listens on it. */
interface Slot {
  readonly listener: WorkerListener;
  readonly host: string;
  readonly port: number;
  /** The server given this address (an app's may serve several). */
  owner?: NetServer;
  listening: boolean;
  /** Told to stop accepting, or draining: never listen(2) on it from now on. */
  closed: boolean;
}

export interface ListenEvents {
  /**
   * A server was given `address`: `listening` accepts on its descriptor,
   * `http` serves the connections (the same server, except for the second
   * address of one app server).
   */
  serve(address: string, listening: NetServer, http: NetServer): void;
  /** Something the person running the app should read (a listen handover refused). */
  warn(message: string): void;
}

/** Thrown into nothing: emitted as the server's 'error', asynchronously, like a failed bind. */
export class ListenRefused extends Error {
  override name = 'ListenRefused';
  readonly code = 'EADDRNOTAVAIL';
  readonly syscall = 'listen';
  constructor(
    message: string,
    readonly address: string | undefined,
    readonly port: number,
  ) {
    super(message);
  }
}

const nodeListen = NetServer.prototype.listen;

export class InheritedListeners {
  private readonly slots: Slot[];
  private stopped = false;
  private changed: () => void = () => {};
  private failure: Error | undefined;

  constructor(
    listeners: readonly WorkerListener[],
    private readonly events: ListenEvents,
  ) {
    this.slots = listeners.map((listener) => {
      const parsed = parseAddress(listener.address);
      if (!parsed.ok) throw new Error(`listener ${listener.address}: ${parsed.message}`);
      return { listener, host: parsed.value.host, port: parsed.value.port, listening: false, closed: false };
    });
  }

  /** Routes every TCP `listen()` in this process through `claim()` (handles, pipes and fds pass through). */
  install(): void {
    const self = this;
    NetServer.prototype.listen = function listen(this: NetServer, ...args: unknown[]): NetServer {
      const request = this.listening ? undefined : listenRequest(args);
      if (!request) return (nodeListen as (...a: unknown[]) => NetServer).apply(this, args);
      self.claim(this, request);
      return this;
    } as NetServer['listen'];
  }

  /** Handover's own server for one of the inherited sockets. */
  serve(server: NetServer, listener: WorkerListener): void {
    const slot = this.slots.find((s) => s.listener.fd === listener.fd);
    if (!slot) throw new Error(`no inherited socket fd ${listener.fd} (${listener.address})`);
    if (slot.owner) throw new Error(`${listener.address} (fd ${listener.fd}) already has a server`);
    if (slot.closed) return;
    this.give(server, [slot], undefined);
  }

  /** Addresses not listened on yet. */
  missing(): string[] {
    return this.slots.filter((s) => !s.listening && !s.closed).map((s) => s.listener.address);
  }

  /** Whether some server (the app's or ours) was given an address. */
  get claimed(): boolean {
    return this.slots.some((s) => s.owner !== undefined);
  }

  /** Resolves once every address still open listens; rejects when listening on a descriptor failed. */
  allListening(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.changed = () => {
        if (this.failure) reject(this.failure);
        else if (this.missing().length === 0) resolve();
      };
      this.changed();
    });
  }

  /**
   * No listen(2) on these addresses (all of them when omitted) from now on:
   * the master may already have shut their sockets down, and a socket shut
   * down before it ever listened takes connections only to reset them
   * (FACTS.md). Servers already listening are the drain's to close.
   */
  stop(addresses?: readonly string[]): void {
    if (!addresses) this.stopped = true;
    for (const s of this.slots) if (!addresses || addresses.includes(s.listener.address)) s.closed = true;
    this.changed();
  }

  private claim(server: NetServer, request: ListenRequest): void {
    if (request.callback) server.once('listening', request.callback);
    if (this.stopped) return; // draining: this worker will never listen
    const picked = this.pick(request);
    if (typeof picked === 'string') return this.refuse(server, request, `listen ${request.host ?? '*'}:${request.port}: ${picked}`);
    const tls = picked.find((s) => s.listener.tls);
    if (tls) {
      const why = "a tls: address, where handover serves HTTPS itself: export a request listener or { handler } instead of listening, or remove tls: from it and let the app's own server do TLS";
      return this.refuse(server, request, `listen ${tls.listener.address}: ${why}`);
    }
    this.give(server, picked, request.signal);
  }

  /** Fails the listen the way a failed bind does: an 'error' event, on a later tick, never a throw. */
  private refuse(server: NetServer, request: ListenRequest, message: string): void {
    const err = new ListenRefused(message, request.host, request.port);
    this.events.warn(message);
    process.nextTick(() => server.emit('error', err));
  }

  /** The configured addresses this request gets, or why it gets none. */
  private pick(request: ListenRequest): Slot[] | string {
    const configured = this.slots.map((s) => s.listener.address).join(', ');
    const samePort = this.slots.filter((s) => s.port === request.port);
    if (samePort.length === 0) {
      const port = request.port === 0 ? 'any free port (0)' : `port ${request.port}`;
      return `handover was not configured for ${port}; it serves ${configured}: listen on one of these ports, or add the address to listen:`;
    }
    const free = samePort.filter((s) => !s.owner && !s.closed);
    if (isWildcard(request.host)) {
      if (free.length > 0) return free;
    } else {
      const host = request.host ?? '';
      const exact = samePort.find((s) => hostMatches(host, s.host));
      if (exact && !exact.owner && !exact.closed) return [exact];
      if (!exact && free[0]) return [free[0]];
    }
    const taken = samePort.map((s) => s.listener.address).join(', ');
    return `${taken} ${samePort.length === 1 ? 'is' : 'are'} already served by another server of this worker; add the address to listen: to serve it as well`;
  }

  /** Puts `server` in LISTEN on the slots' descriptors (further slots through plain handles that hand their connections over). */
  private give(server: NetServer, slots: readonly Slot[], signal: AbortSignal | undefined): void {
    slots.forEach((slot, i) => {
      slot.owner = server;
      const listening = i === 0 ? server : new NetServer();
      if (listening !== server) {
        listening.on('connection', (socket: Socket) => handOver(socket, server));
        server.once('close', () => listening.close());
      }
      this.events.serve(slot.listener.address, listening, server);
      const onError = (err: Error): void => {
        this.failure ??= new Error(`listen on ${slot.listener.address} (fd ${slot.listener.fd}): ${err.message}`);
        this.changed();
      };
      listening.once('error', onError);
      listening.once('listening', () => {
        listening.off('error', onError);
        slot.listening = true;
        this.changed();
      });
      // The backlog must be positional: Node 20 ignores `backlog` inside the
      // options object when listening on an fd (measured: 511 instead of 7).
      const options = signal ? { fd: slot.listener.fd, signal } : { fd: slot.listener.fd };
      (nodeListen as (...a: unknown[]) => NetServer).call(listening, options, slot.listener.backlog);
    });
  }
}

/** How long a server app may take, once loaded, to listen on every configured address. */
export const LISTEN_DEADLINE_MS = 10_000;
/** When to say which addresses the worker still waits for. */
const LISTEN_HINT_MS = 2_000;

/**
 * Resolves once every configured address listens. Rejects at the deadline
 * with the addresses still missing and what to do about them.
 */
export async function waitForListening(
  sockets: InheritedListeners,
  file: string,
  hint: (line: string) => void,
  deadlineMs = LISTEN_DEADLINE_MS,
): Promise<void> {
  const timers: NodeJS.Timeout[] = [];
  const late = new Promise<never>((_, reject) => {
    timers.push(setTimeout(() => hint(`waiting for ${file} to listen on ${sockets.missing().join(', ')}`), Math.min(LISTEN_HINT_MS, deadlineMs / 2)));
    timers.push(
      setTimeout(() => {
        const missing = sockets.missing();
        const ports = [...new Set(missing.map((a) => a.slice(a.lastIndexOf(':') + 1)))].join(', ');
        const what = sockets.claimed
          ? `${file} listened, but not on ${missing.join(', ')}: listen on port ${ports} as well (or remove the address from listen:)`
          : `${file} neither exports a request listener or { handler } nor called listen(${ports}) for ${missing.join(', ')}`;
        reject(new Error(`${what}; waited ${deadlineMs / 1000} s`));
      }, deadlineMs),
    );
  });
  try {
    await Promise.race([sockets.allListening(), late]);
  } finally {
    for (const t of timers) clearTimeout(t);
  }
}
