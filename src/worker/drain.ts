// Keep-alive-safe draining (FACTS.md, "Node 20 and HTTP draining"):
// http.Server#close() on Node >= 19 resets keep-alive clients whose next
// request is already in flight, so we stop accepting with the net-level
// close, answer every further response with `Connection: close`, let idle
// connections run out the server's own advertised keep-alive timeout, and
// destroy whatever is left at the hard deadline (headersTimeout is no longer
// enforced after close, so a slow client would otherwise keep us alive).
//
// HTTP/2 sessions (a TLS address with `http2`) are drained with GOAWAY
// instead: `session.close()` refuses new streams and lets the open ones
// finish, and `Connection: close` is never set on an h2 response (the header
// is illegal there; Node drops it with a warning).
import type { ServerResponse, IncomingMessage } from 'node:http';
import type { Http2Session } from 'node:http2';
import { Server as NetServer, type Socket } from 'node:net';

export interface DrainResult {
  /** Connections open when the drain began. */
  readonly connections: number;
  /** Connections still open at the deadline, destroyed. */
  readonly killed: number;
  readonly durationMs: number;
}

/**
 * Tracks the connections of one listening handle. `server` is what accepts
 * (the handle on the inherited descriptor); `http` is the server that parses
 * requests on those connections: the same one, except for a second address
 * of one app server, whose connections a plain net.Server accepts and hands
 * over.
 *
 * With a new connection per request this is on the request path, so a
 * connection costs one Map.set with its descriptor as the key and nothing
 * else: no listener on the socket, nothing stored on it. Keyed by the
 * socket with a 'close' listener on each (as it was), tracking cost the
 * worker 5-6% of its new-connection throughput, and a Map, a Set or a slot
 * index kept on the socket all cost about as much (bench/tracking.ts; the
 * listener alone ~1%). Why is a guess: each gives every Socket an
 * identity hash or a property it did not have. An entry outlives its
 * connection until the descriptor number is reused, so the connections
 * open now are the entries not yet destroyed, sorted out only when a drain
 * asks.
 */
export class ConnectionTracker {
  /** Descriptor -> the transport socket accepted on it (the newest one: descriptor numbers are reused). */
  private readonly byFd = new Map<number, Socket>();
  /** Descriptor -> its TLSSocket once the handshake is done: the socket the HTTP layer writes responses to. */
  private readonly secureByFd = new Map<number, Socket>();
  /** Connections with no descriptor to key by (a socket some app emitted itself), until they close. */
  private readonly other = new Set<Socket>();
  private readonly sessions = new Set<Http2Session>();
  private stopping = false;
  private resolveClosed!: () => void;
  /** Resolves once the tracker stopped accepting and every connection has closed. */
  readonly closed = new Promise<void>((resolve) => (this.resolveClosed = resolve));

  constructor(
    /** The listen address this server serves, as the master names it. */
    readonly address: string,
    private readonly server: NetServer,
    private readonly http: NetServer = server,
  ) {
    server.on('connection', (socket: Socket) => {
      if (handedOver.has(socket)) return; // its own tracker counts it
      const fd = descriptorOf(socket);
      if (fd === undefined) {
        this.other.add(socket);
        socket.once('close', () => this.other.delete(socket));
        return;
      }
      this.byFd.set(fd, socket);
      if (this.secureByFd.size > 0) this.secureByFd.delete(fd); // a closed connection's, on a reused number
    });
    // An HTTPS response hangs off the TLSSocket, not the TCP socket that
    // 'connection' gave us; upgraded (WebSocket) sockets stay tracked until
    // they close, so they count in the drain like any connection.
    http.on('secureConnection', (secure: Socket) => {
      const transport = (secure as unknown as WithParent)._parent;
      const fd = transport ? descriptorOf(transport) : undefined;
      if (fd !== undefined && this.byFd.get(fd) === transport) this.secureByFd.set(fd, secure);
    });
    // Only an HTTP/2 server emits 'session'; one that starts after the drain
    // began (its handshake was under way) is told GOAWAY at once.
    http.on('session', (session: Http2Session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      if (this.stopping) session.close();
    });
  }

  /** The connections open now: transport socket -> the socket responses are written to. Forgets the closed ones. */
  private open(): Map<Socket, Socket> {
    const open = new Map<Socket, Socket>();
    for (const [fd, socket] of this.byFd) {
      if (socket.destroyed) {
        this.byFd.delete(fd);
        this.secureByFd.delete(fd);
      } else open.set(socket, this.secureByFd.get(fd) ?? socket);
    }
    for (const socket of this.other) open.set(socket, socket);
    return open;
  }

  get size(): number {
    return this.open().size;
  }

  /**
   * Stop accepting new connections (synchronously: the listening handle is
   * closed before this returns); already accepted ones are served on, and
   * `closed` resolves once they are all gone. Idempotent.
   */
  stopAccepting(): void {
    if (this.stopping) return;
    this.stopping = true;
    closeEveryResponse(this.http);
    for (const session of this.sessions) session.close();
    for (const socket of this.open().values()) {
      const res = currentResponse(socket);
      if (res && !res.headersSent) res.setHeader('Connection', 'close');
    }
    // The net-level close: it leaves keep-alive connections alone. A server
    // the app already closed itself reports ERR_SERVER_NOT_RUNNING: that is
    // closed too.
    if (this.server.listening) NetServer.prototype.close.call(this.server, () => this.resolveClosed());
    else this.whenIdle(() => this.resolveClosed());
  }

  /** Destroys what is left; returns how many connections that was. */
  destroyAll(): number {
    const open = this.open();
    for (const session of this.sessions) session.destroy();
    for (const socket of open.keys()) socket.destroy();
    return open.size;
  }

  private whenIdle(done: () => void): void {
    const open = this.open();
    if (open.size === 0) return done();
    let left = open.size;
    for (const socket of open.keys()) socket.once('close', () => --left === 0 && done());
  }
}

const closing = new WeakSet<NetServer>();
const handedOver = new WeakSet<Socket>();

/**
 * Gives `http` a connection that another handle accepted (one app server
 * serving a second address), the way Node documents injecting connections:
 * by emitting 'connection'.
 */
export function handOver(socket: Socket, http: NetServer): void {
  handedOver.add(socket);
  http.emit('connection', socket);
}

/** From now on every response of `http` says `Connection: close` (HTTP/1 only: HTTP/2 forbids the header). */
function closeEveryResponse(http: NetServer): void {
  if (closing.has(http)) return;
  closing.add(http);
  http.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.httpVersionMajor < 2 && !res.headersSent) res.setHeader('Connection', 'close');
  });
}

interface WithHandle {
  _handle?: { fd?: number } | null;
}

/** The descriptor of an accepted TCP socket (libuv's, on Linux); undefined for a socket without one. */
function descriptorOf(socket: Socket): number | undefined {
  const fd = (socket as unknown as WithHandle)._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

interface WithParent {
  _parent?: Socket | null;
}

interface WithResponse {
  _httpMessage?: ServerResponse | null;
}

function currentResponse(socket: Socket): ServerResponse | undefined {
  // Node keeps the response being written on the socket (and a TLSSocket
  // its TCP socket in `_parent`); undocumented but stable for many majors.
  return (socket as unknown as WithResponse)._httpMessage ?? undefined;
}

/**
 * Drains every tracker: those not in `keep` stop accepting at once (then
 * `onStoppedAccepting` runs); the kept ones go on accepting until
 * `stopAccepting()` is called on them later (an address the new generation
 * no longer serves: its queue is accepted here, not reset). Resolves once
 * every connection has closed or, at the deadline, after destroying the rest.
 */
export async function drain(
  trackers: readonly ConnectionTracker[],
  deadlineMs: number,
  onStoppedAccepting: () => void,
  keep: ReadonlySet<string> = new Set(),
): Promise<DrainResult> {
  const started = performance.now();
  const connections = trackers.reduce((n, t) => n + t.size, 0);
  for (const t of trackers) if (!keep.has(t.address)) t.stopAccepting();
  onStoppedAccepting();
  // A kept tracker counts as done only once it, too, was told to stop.
  const closed = Promise.all(trackers.map((t) => t.closed));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'deadline'>((resolve) => {
    timer = setTimeout(() => resolve('deadline'), deadlineMs);
  });
  const outcome = await Promise.race([closed.then(() => 'closed' as const), deadline]);
  clearTimeout(timer);
  let killed = 0;
  if (outcome === 'deadline') {
    for (const t of trackers) t.stopAccepting();
    killed = trackers.reduce((n, t) => n + t.destroyAll(), 0);
  }
  return { connections, killed, durationMs: performance.now() - started };
}
