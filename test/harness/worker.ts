// One worker process (the built dist/worker/main.js) driven straight from a
// test, the way the master drives it: real bound-but-not-listening sockets
// in descriptor slots 4.., the start message over IPC, then drain or close.
// No root and no master: the test keeps the master's copy of each socket,
// so it can see whether the worker ever put it in LISTEN.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './master.js';
import { ended, waitInList } from './wait.js';
import { listenerSpec, openListener, type Listener } from '../../src/net/index.js';
import { envelope, openEnvelope } from '../../src/protocol/worker.js';
import { socketAddress } from '../../src/sys/index.js';

export const WORKER_MAIN = join(ROOT, 'dist/worker/main.js');

export type Message = Record<string, unknown> & { type: string };

export interface WorkerSocket {
  readonly host: string;
  readonly family?: 4 | 6;
  /** 0: the kernel picks one; 'previous': the port of the socket before this one. */
  readonly port?: number | 'previous';
  readonly backlog?: number;
  readonly tls?: { readonly cert: string; readonly key: string };
}

export interface WorkerOptions {
  readonly app: string;
  readonly sockets: readonly WorkerSocket[];
  /** Extra environment; a function gets the sockets' real ports (e.g. to tell the app PORT). */
  readonly env?: Record<string, string> | ((ports: readonly number[]) => Record<string, string>);
  readonly drainTimeoutMs?: number;
  /** What the master tells the worker about request metrics (default: counted, as with `metrics.listen`). */
  readonly countRequests?: boolean;
}

export class TestWorker {
  readonly messages: Message[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout = '';
  stderr = '';
  private seq = 0;
  private waiters = new Set<() => void>();
  private ended = false;

  private constructor(
    readonly listeners: readonly Listener[],
    options: WorkerOptions,
  ) {
    const stdio: ('ignore' | 'pipe' | 'ipc' | number)[] = ['ignore', 'pipe', 'pipe', 'ipc', ...listeners.map((l) => l.fd)];
    const extra = typeof options.env === 'function' ? options.env(listeners.map((l) => l.port)) : options.env;
    this.child = spawn(process.execPath, [WORKER_MAIN], { stdio, env: { ...process.env, HANDOVER_LOG_PRETTY: '0', ...extra } });
    this.child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    this.child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.child.on('message', (raw: unknown) => {
      const m = openEnvelope(raw) as Message | undefined;
      if (m === undefined) return;
      this.messages.push(m);
      for (const w of this.waiters) w();
    });
    // Once its output is read to the end: lines written just before the exit are in.
    this.exited = ended(this.child, () => {
      this.ended = true;
      for (const w of this.waiters) w();
    });
    this.child.send(envelope({
      type: 'start',
      generation: 1,
      index: 0,
      app: options.app,
      listeners: listeners.map((l, i) => ({
        fd: 4 + i,
        address: l.address.text,
        backlog: l.spec.backlog,
        ...(options.sockets[i]?.tls ? { tls: { ...options.sockets[i]!.tls!, sni: [], http2: false } } : {}),
      })),
      drainTimeoutMs: options.drainTimeoutMs ?? 5_000,
      heartbeatMs: 1_000,
      countRequests: options.countRequests ?? true,
    }));
  }

  /** Opens the sockets (bound, not listening) and spawns the worker on them. */
  static start(options: WorkerOptions): TestWorker {
    const listeners: Listener[] = [];
    for (const s of options.sockets) {
      const family = s.family ?? (s.host.includes(':') ? 6 : 4);
      const port = s.port === 'previous' ? (listeners.at(-1)?.port ?? 0) : (s.port ?? 0);
      const address = socketAddress(s.host, port, family);
      listeners.push(openListener(listenerSpec({ address, backlog: s.backlog ?? 511, tls: s.tls !== undefined })));
    }
    return new TestWorker(listeners, options);
  }

  /** The address text of socket `i`, with its real port. */
  address(i = 0): string {
    return this.listeners[i]!.address.text;
  }

  port(i = 0): number {
    return this.listeners[i]!.port;
  }

  /** Waits for a message of `type` (the first one after `from`). */
  waitFor(type: string, timeoutMs = 15_000, from = 0): Promise<Message> {
    return waitInList({
      items: this.messages,
      from,
      match: (m) => m.type === type,
      done: () => this.ended,
      waiters: this.waiters,
      timeoutMs,
      exited: () => `worker exited (${this.child.exitCode ?? this.child.signalCode}) before '${type}'; messages ${JSON.stringify(this.messages)}; stderr ${this.stderr}; stdout ${this.stdout}`,
      late: () => `no '${type}' within ${timeoutMs} ms; messages ${JSON.stringify(this.messages)}; stdout ${this.stdout}`,
    });
  }

  ready(timeoutMs = 15_000): Promise<Message> {
    return this.waitFor('ready', timeoutMs);
  }

  /** Sends drain; resolves with its ack. */
  async drain(drainTimeoutMs = 5_000, keep: string[] = []): Promise<Message> {
    const seq = ++this.seq;
    const from = this.messages.length;
    this.child.send(envelope({ type: 'drain', seq, drainTimeoutMs, keep }));
    return this.waitFor('ack', 5_000, from);
  }

  /** Lines the worker printed to stdout that parse as JSON (its pino log and app output). */
  lines(): Record<string, unknown>[] {
    return this.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Kills the worker if still running and closes the test's copies of the sockets. */
  async dispose(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
    for (const l of this.listeners) l.close();
  }
}
