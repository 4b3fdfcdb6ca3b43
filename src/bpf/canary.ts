// The start-up canary: one real hand-off between two throw-away SO_REUSEPORT
// listeners on a loopback ephemeral port, per mechanism, to catch kernels
// where a feature is present but broken (a backport gone wrong, a sysctl
// that reads 1 and migrates nothing). Each run costs a few milliseconds and
// leaves nothing behind.
//
//   sysctl  one connection queued on A, B listening, A shut down: B accepts
//           it (kernel migration by net.ipv4.tcp_migrate_req = 1)
//   ebpf    the same with the select-or-migrate program choosing B, which
//           must count the migration (so the sysctl cannot have done it)
//   cbpf    A and B listening, classic steering to B: every new connection
//           lands on B (the drain strategy's steering)

import net from 'node:net';
import {
  attachReuseportCbpf, bind, close, constants as C, dupCloexec, getsockname, listen, setsockoptInt, shutdown, socket,
  socketAddress, tcpInfoQueue,
} from '../sys/index.js';
import { ReuseportProgram } from './reuseport-program.js';
import { steerToNew } from './steering.js';

export type CanaryMechanism = 'sysctl' | 'ebpf' | 'cbpf';

export type CanaryResult =
  | { readonly status: 'passed'; readonly ms: number }
  | { readonly status: 'failed'; readonly reason: string }
  | { readonly status: 'skipped'; readonly reason: string };

/** The longest a canary may take; loopback answers in microseconds, a busy host in milliseconds. */
export const CANARY_TIMEOUT_MS = 2_000;
const POLL_MS = 2;
const BACKLOG = 8;
/** Connections the steering canary sends: by chance all would land on B with probability 2^-8. */
const STEERED = 8;

/** Runs the canary for `mechanism`; never throws (a failure to even set up is `failed` with the reason). */
export async function runCanary(mechanism: CanaryMechanism, timeoutMs = CANARY_TIMEOUT_MS): Promise<CanaryResult> {
  const start = performance.now();
  const scene = new Scene(timeoutMs);
  try {
    if (mechanism === 'cbpf') await scene.steer();
    else await scene.migrate(mechanism === 'ebpf');
    return { status: 'passed', ms: Math.round(performance.now() - start) };
  } catch (err) {
    return { status: 'failed', reason: err instanceof Error ? err.message : String(err) };
  } finally {
    scene.release();
  }
}

/** The canary's sockets and program; every one released by release(). */
class Scene {
  readonly #deadline: number;
  readonly #fds: number[] = [];
  readonly #clients: net.Socket[] = [];
  #server: net.Server | undefined;
  #program: ReuseportProgram | undefined;
  #port = 0;

  constructor(timeoutMs: number) {
    this.#deadline = Date.now() + timeoutMs;
  }

  async migrate(ebpf: boolean): Promise<void> {
    const a = this.#listener();
    const b = this.#listener();
    listen(a, BACKLOG);
    if (ebpf) {
      this.#program = ReuseportProgram.load({ name: 'canary' });
      this.#program.attach(a);
      this.#program.setActive([a]);
    }
    const client = await this.#connect();
    await this.#until(() => tcpInfoQueue(a).queued === 1, 'the connection to queue on A');
    await this.#serve(b);
    if (this.#program !== undefined) this.#program.setActive([b]);
    const reply = this.#reply(client);
    shutdown(a, C.SHUT_RDWR);
    const outcome = await reply;
    if (outcome !== 'ok') throw new Error(`the connection queued on A was ${outcome} instead of migrating to B`);
    if (this.#program !== undefined) {
      const { migrated } = this.#program.counters();
      if (migrated !== 1) throw new Error(`the connection moved, but the program counted ${migrated} migrations (expected 1)`);
    }
  }

  async steer(): Promise<void> {
    const a = this.#listener();
    const b = this.#listener();
    listen(a, BACKLOG);
    listen(b, BACKLOG);
    attachReuseportCbpf(a, steerToNew(1, 1));
    for (let i = 0; i < STEERED; i++) await this.#connect();
    await this.#until(() => tcpInfoQueue(a).queued + tcpInfoQueue(b).queued === STEERED, `${STEERED} connections to queue`);
    const onA = tcpInfoQueue(a).queued;
    if (onA !== 0) throw new Error(`${onA} of ${STEERED} connections steered to B landed on A`);
  }

  release(): void {
    for (const c of this.#clients) c.destroy();
    this.#server?.close();
    try {
      this.#program?.release();
    } catch {
      // nothing to do about a failed close of a throw-away program
    }
    for (const fd of this.#fds.splice(0)) {
      try {
        close(fd);
      } catch {
        // likewise
      }
    }
  }

  /** A bound, not yet listening SO_REUSEPORT socket on 127.0.0.1, on the canary's port. */
  #listener(): number {
    const fd = socket(4, 'canary');
    this.#fds.push(fd);
    setsockoptInt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 1);
    setsockoptInt(fd, C.SOL_SOCKET, C.SO_REUSEPORT, 1);
    bind(fd, socketAddress('127.0.0.1', this.#port, 4));
    if (this.#port === 0) this.#port = getsockname(fd).port;
    return fd;
  }

  #connect(): Promise<net.Socket> {
    const client = net.connect({ host: '127.0.0.1', port: this.#port });
    this.#clients.push(client);
    return this.#race(
      new Promise<net.Socket>((resolve, reject) => {
        client.once('connect', () => resolve(client));
        client.once('error', reject);
      }),
      'the connection',
    );
  }

  /** B accepts through a Node server (as a worker would) and answers "ok". */
  #serve(fd: number): Promise<void> {
    const server = net.createServer((conn) => conn.end('ok'));
    this.#server = server;
    return this.#race(
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ fd: dupCloexec(fd) }, BACKLOG, resolve);
      }),
      'B to listen',
    );
  }

  #reply(client: net.Socket): Promise<string> {
    return this.#race(
      new Promise<string>((resolve) => {
        let data = '';
        client.on('data', (d: Buffer) => (data += d.toString()));
        client.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNRESET' ? 'reset' : `lost (${err.code ?? err.message})`));
        client.once('close', () => resolve(data === 'ok' ? 'ok' : 'closed without an answer'));
      }),
      'the answer from B',
    );
  }

  async #until(condition: () => boolean, what: string): Promise<void> {
    while (!condition()) {
      if (Date.now() > this.#deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  #race<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), Math.max(0, this.#deadline - Date.now()));
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}
