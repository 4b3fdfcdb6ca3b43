// The control socket: a Unix stream socket, mode 0600 in a 0700 directory.
// One JSON request line per connection, one JSON answer line. A `stop`
// caller's connection stays open until the master exits, so `handover stop`
// can wait for the end.
//
// Hardening, in the order a connection meets it: the socket file is created
// 0600 under a restrictive umask (no window in which it is wider); a peer
// whose uid is neither ours nor root's is refused (SO_PEERCRED), whatever
// the file modes let through; a request must arrive within a deadline, be
// one line of at most MAX_CONTROL_LINE bytes and parse; at most
// MAX_CONTROL_CONNECTIONS are open at once.
import { lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { controlDir, ensureControlDir } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { ControlLock, peerOf } from '../net/index.js';
import { MAX_CONTROL_LINE, type ControlResponse, type ParsedControlRequest } from '../protocol/control.js';
import { controlRequestSchema } from '../protocol/control-request.js';

export type Reply = (response: ControlResponse, options?: { keepOpen?: boolean }) => void;

/** How long the check for a live master may wait for its connect. */
const PROBE_TIMEOUT_MS = 1_000;
/** How long a connected client may take to send its request line. */
const REQUEST_TIMEOUT_MS = 5_000;
/** Control connections open at once (held `stop` callers included); more are closed on accept. */
export const MAX_CONTROL_CONNECTIONS = 64;
/** How long a `stop` caller gets to close its end once the master closes the socket. */
const CLOSE_GRACE_MS = 1_000;
/** At most one log line per this interval about refused peers, with a count of the rest. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;
/** While the socket is bound: the file gets 0600, new directories 0700. */
const SOCKET_UMASK = 0o177;
const DIRECTORY_UMASK = 0o077;

export class ControlSocketInUse extends Error {
  override name = 'ControlSocketInUse';
}

export class ControlSocketError extends Error {
  override name = 'ControlSocketError';
}

export class ControlServer {
  private server: Server | undefined;
  private lock: ControlLock | undefined;
  /** `stop` callers waiting for the master to exit: ended (not cut) at close. */
  private readonly held = new Set<Socket>();
  /** Every open control connection, so that close() never waits on one. */
  private readonly open = new Set<Socket>();
  private readonly uid = process.geteuid?.() ?? 0;
  private refusals = { logged: 0, since: 0 };

  constructor(
    readonly path: string,
    private readonly log: Logger,
    private readonly onRequest: (request: ParsedControlRequest, reply: Reply) => void,
  ) {}

  /** Takes the lock, replaces a stale socket, binds. Throws ControlSocketInUse or ControlSocketError. */
  async listen(): Promise<void> {
    this.prepareDirectory();
    let lock: ReturnType<typeof ControlLock.acquire>;
    try {
      lock = ControlLock.acquire(`${this.path}.lock`);
    } catch (err) {
      throw new ControlSocketError(`control socket lock ${this.path}.lock: ${describe(err)}`);
    }
    if (!(lock instanceof ControlLock)) throw this.inUse(lock.heldBy);
    try {
      // A master without the lock (an older version) still answers.
      if (await isAnswering(this.path)) throw this.inUse(0);
      this.removeStale();
      this.server = await this.bind();
      this.lock = lock;
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  private prepareDirectory(): void {
    const dir = dirname(this.path);
    const previous = process.umask(DIRECTORY_UMASK);
    try {
      // The shared fallback directories (/tmp/handover-<uid>, $XDG_RUNTIME_DIR/handover)
      // must be ours and private; a directory the user chose, or systemd's
      // RuntimeDirectory, is theirs to set up: the socket itself is 0600 and
      // peers of other uids are refused.
      if (dir === controlDir() && !process.env['RUNTIME_DIRECTORY']) ensureControlDir(dir);
      else mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new ControlSocketError(`control socket ${this.path}: ${describe(err)}`);
    } finally {
      process.umask(previous);
    }
  }

  private inUse(pid: number): ControlSocketInUse {
    const who = pid > 0 ? ` (pid ${pid})` : '';
    return new ControlSocketInUse(`another handover master${who} is already running with control socket ${this.path} (try: handover status)`);
  }

  /** A socket nobody answers on is a dead master's; anything else at the path is not ours to delete. */
  private removeStale(): void {
    let st;
    try {
      st = lstatSync(this.path);
    } catch {
      return; // nothing there
    }
    if (!st.isSocket()) throw new ControlSocketError(`control socket ${this.path}: exists and is not a socket; refusing to replace it`);
    unlinkSync(this.path);
    this.log.info({ control: this.path }, 'replaced the stale control socket of a master that is gone');
  }

  private async bind(): Promise<Server> {
    const server = createServer((socket) => this.accept(socket));
    server.maxConnections = MAX_CONTROL_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new ControlSocketError(`control socket ${this.path}: ${describe(err)}`)));
      // bind(2) runs inside listen(), synchronously: the umask covers exactly it.
      const previous = process.umask(SOCKET_UMASK);
      try {
        server.listen(this.path, () => resolve());
      } finally {
        process.umask(previous);
      }
    });
    server.removeAllListeners('error');
    server.on('error', (err) => this.log.error({ err }, 'control socket error'));
    const mode = lstatSync(this.path).mode & 0o777;
    if (mode !== 0o600) {
      server.close();
      throw new ControlSocketError(`control socket ${this.path} was created with mode ${mode.toString(8)}, not 600`);
    }
    return server;
  }

  private accept(socket: Socket): void {
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    const peer = peerOf(socket, this.path);
    if (peer instanceof Error || (peer.uid !== this.uid && peer.uid !== 0)) {
      this.refuse(socket, peer);
      return;
    }
    let buffer = '';
    let answered = false;
    socket.setEncoding('utf8');
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => {
      if (!answered) socket.destroy();
    });
    const reply: Reply = (response, options = {}) => {
      if (answered || socket.destroyed) return;
      answered = true;
      socket.setTimeout(0);
      socket.write(`${JSON.stringify(response)}\n`);
      if (options.keepOpen) this.held.add(socket);
      else socket.end();
    };
    socket.on('data', (chunk: string) => {
      if (answered) return;
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline > MAX_CONTROL_LINE || (newline < 0 && buffer.length > MAX_CONTROL_LINE)) {
        return reply({ ok: false, error: `request too long (more than ${MAX_CONTROL_LINE} bytes)`, code: 'EINVAL' });
      }
      if (newline < 0) return;
      let raw: unknown;
      try {
        raw = JSON.parse(buffer.slice(0, newline));
      } catch {
        return reply({ ok: false, error: 'request is not JSON', code: 'EINVAL' });
      }
      // Read: from here the answer may take as long as a reload (or its drain).
      socket.setTimeout(0);
      const parsed = controlRequestSchema.safeParse(raw);
      if (!parsed.success) {
        const why = parsed.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ');
        return reply({ ok: false, error: `invalid request: ${why}`, code: 'EINVAL' });
      }
      this.onRequest(parsed.data, reply);
    });
    socket.on('error', (err) => this.log.debug({ err }, 'control connection error'));
    socket.on('close', () => this.held.delete(socket));
  }

  /** Answers a refused peer with the reason, once, and logs refusals at a bounded rate. */
  private refuse(socket: Socket, peer: { uid: number; pid: number } | Error): void {
    const why = peer instanceof Error ? `cannot identify the peer: ${peer.message}` : `uid ${peer.uid} may not control this master (uid ${this.uid})`;
    socket.on('error', () => {});
    socket.end(`${JSON.stringify({ ok: false, error: `permission denied: ${why}`, code: 'EACCES' } satisfies ControlResponse)}\n`);
    // Read (and drop) what the peer sends, or its FIN is never seen and the
    // connection never closes; and cut a peer that does not close.
    socket.resume();
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
    const now = Date.now();
    this.refusals.since++;
    if (now - this.refusals.logged < REFUSAL_LOG_INTERVAL_MS) return;
    const details = peer instanceof Error ? { err: peer } : { peerUid: peer.uid, peerPid: peer.pid };
    this.log.warn({ ...details, refused: this.refusals.since }, `control connection refused: ${why}`);
    this.refusals = { logged: now, since: 0 };
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
    for (const socket of this.open) {
      if (!this.held.has(socket)) {
        socket.destroy();
        continue;
      }
      socket.end();
      socket.setTimeout(CLOSE_GRACE_MS, () => socket.destroy());
    }
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.lock?.release();
    this.lock = undefined;
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Whether a master answers on `path`. A connect that neither succeeds nor
 * fails within the deadline means something holds the socket: in use.
 */
function isAnswering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (answer: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
