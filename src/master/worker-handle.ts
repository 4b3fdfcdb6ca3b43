// One worker process, seen from the master. It owns the child process (and
// nothing else: the listeners belong to the slot). States change only in
// `transition()`, which refuses illegal moves, in the manner of grpc-js.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log/logger.js';
import type { HttpMetricsMessage } from '../protocol/http-metrics.js';
import {
  FIRST_LISTENER_FD,
  parseWorkerMessage,
  type ErrorInfo,
  type MasterMessage,
} from '../protocol/worker.js';

export type WorkerState = 'starting' | 'ready' | 'serving' | 'draining' | 'exited' | 'failed';

const LEGAL: Record<WorkerState, readonly WorkerState[]> = {
  starting: ['ready', 'draining', 'failed', 'exited'],
  ready: ['serving', 'draining', 'failed', 'exited'],
  serving: ['draining', 'failed', 'exited'],
  draining: ['exited', 'failed'],
  exited: [],
  failed: [],
};

export const WORKER_ENTRY = fileURLToPath(new URL('../worker/main.js', import.meta.url));

/** How often a worker says it is alive, and how long a silence means it is stuck. */
export const HEARTBEAT_MS = 1000;
export const HEARTBEAT_TIMEOUT_MS = 5000;

export interface WorkerOptions {
  readonly generation: number;
  readonly index: number;
  readonly app: string;
  /** Descriptors and their specs, in slot order. */
  readonly listeners: readonly {
    readonly fd: number;
    readonly address: string;
    readonly backlog: number;
    readonly tls?: { readonly cert: string; readonly key: string };
  }[];
  readonly env: Readonly<Record<string, string>>;
  readonly drainTimeoutMs: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly log: Logger;
}

export interface WorkerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Why the master thinks it ended: the worker's own report or how it died. */
  readonly reason: string;
}

export class WorkerStartError extends Error {
  override name = 'WorkerStartError';
  constructor(message: string, readonly error?: ErrorInfo) {
    super(message);
  }
}

export class WorkerHandle extends EventEmitter<{ exit: [WorkerExit]; state: [WorkerState]; drained: [unknown]; metrics: [HttpMetricsMessage] }> {
  readonly generation: number;
  readonly index: number;
  readonly pid: number;
  readonly startedAt = Date.now();
  state: WorkerState = 'starting';
  failure: { phase: string; error: ErrorInfo } | undefined;
  exit: WorkerExit | undefined;
  /** When the master verified its listeners and counted it as serving. */
  servedAt: number | undefined;
  lastHeard = Date.now();
  /** The worker's own figures once it has drained. */
  drainResult: { connections: number; killed: number; durationMs: number } | undefined;
  readonly exited: Promise<WorkerExit>;
  private readonly child: ChildProcess;
  private readonly log: Logger;
  private seq = 0;
  private readonly acks = new Map<number, () => void>();

  constructor(options: WorkerOptions) {
    super();
    this.generation = options.generation;
    this.index = options.index;
    const stdio: (number | 'ignore' | 'inherit' | 'ipc')[] = ['ignore', 'inherit', 'inherit', 'ipc'];
    options.listeners.forEach((l) => stdio.push(l.fd));
    this.child = spawn(process.execPath, [WORKER_ENTRY], {
      stdio,
      // A process group of its own: a terminal's ^C reaches only the master,
      // and an orphaned group's SIGHUP cannot kill workers mid-drain.
      detached: true,
      env: { ...process.env, ...options.env },
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
    });
    if (this.child.pid === undefined) throw new WorkerStartError('spawn failed: no pid');
    this.pid = this.child.pid;
    this.log = options.log.child({ generation: this.generation, worker: this.index, workerPid: this.pid });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        const reason = this.failure
          ? `${this.failure.phase} failed: ${this.failure.error.message}`
          : signal
            ? `killed by ${signal}`
            : `exited with code ${code}`;
        this.exit = { code, signal, reason };
        if (this.state !== 'failed' && this.state !== 'exited') {
          this.transition(['starting', 'ready', 'serving', 'draining'], this.failure ? 'failed' : 'exited');
        }
        for (const ack of this.acks.values()) ack();
        this.acks.clear();
        resolve(this.exit);
        this.emit('exit', this.exit);
      });
    });
    this.child.on('error', (err) => this.log.error({ err }, 'worker process error'));
    this.child.on('message', (raw: unknown) => this.onMessage(raw));
    const listeners = options.listeners.map((l, i) => ({
      fd: FIRST_LISTENER_FD + i,
      address: l.address,
      backlog: l.backlog,
      ...(l.tls ? { tls: l.tls } : {}),
    }));
    this.send({
      type: 'start',
      generation: this.generation,
      index: this.index,
      app: options.app,
      listeners,
      drainTimeoutMs: options.drainTimeoutMs,
      heartbeatMs: HEARTBEAT_MS,
    });
    this.log.debug('worker spawned');
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  transition(from: readonly WorkerState[], to: WorkerState): boolean {
    if (!from.includes(this.state) || !LEGAL[this.state].includes(to)) {
      this.log.debug({ from: this.state, to }, 'refused worker state transition');
      return false;
    }
    this.log.debug({ from: this.state, to }, 'worker state');
    this.state = to;
    if (to === 'serving') this.servedAt = Date.now();
    this.emit('state', to);
    return true;
  }

  /** Resolves when the worker reports ready; rejects on failure, exit or deadline. */
  ready(timeoutMs: number): Promise<void> {
    if (this.state === 'ready' || this.state === 'serving') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.off('state', onState);
        if (err) reject(err);
        else resolve();
      };
      const onState = (state: WorkerState): void => {
        if (state === 'ready') done();
        else if (state === 'failed' || state === 'exited') {
          done(new WorkerStartError(`worker ${this.index} (pid ${this.pid}) ${this.exit?.reason ?? state} before ready`, this.failure?.error));
        }
      };
      const timer = setTimeout(
        () => done(new WorkerStartError(`worker ${this.index} (pid ${this.pid}) not ready within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.on('state', onState);
    });
  }

  /**
   * Asks the worker to stop accepting and drain; servers of the `keep`
   * addresses accept on until close() names them. Resolves true once it has
   * acknowledged, false when it did not within `ackTimeoutMs` or is gone.
   */
  drain(drainTimeoutMs: number, ackTimeoutMs: number, keep: readonly string[] = []): Promise<boolean> {
    if (!this.alive) return Promise.resolve(false);
    this.transition(['starting', 'ready', 'serving'], 'draining');
    return this.request((seq) => ({ type: 'drain', seq, drainTimeoutMs, keep }), ackTimeoutMs);
  }

  /** Asks a draining worker to stop accepting on `addresses` too; resolves like drain(). */
  close(addresses: readonly string[], ackTimeoutMs: number): Promise<boolean> {
    if (!this.alive) return Promise.resolve(false);
    return this.request((seq) => ({ type: 'close', seq, addresses }), ackTimeoutMs);
  }

  /** Sends a message that the worker acknowledges, with a deadline. */
  private request(message: (seq: number) => MasterMessage, ackTimeoutMs: number): Promise<boolean> {
    const seq = ++this.seq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.acks.delete(seq);
        resolve(false);
      }, ackTimeoutMs);
      this.acks.set(seq, () => {
        clearTimeout(timer);
        resolve(this.alive);
      });
      this.send(message(seq));
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.alive) return;
    try {
      this.child.kill(signal);
    } catch (err) {
      this.log.warn({ err, signal }, 'could not signal worker');
    }
  }

  private send(message: MasterMessage): void {
    if (!this.child.connected) return;
    this.child.send(message, (err) => {
      if (err) this.log.debug({ err, type: message.type }, 'message to worker not delivered');
    });
  }

  private onMessage(raw: unknown): void {
    this.lastHeard = Date.now();
    let msg;
    try {
      msg = parseWorkerMessage(raw);
    } catch (err) {
      this.log.warn({ err }, 'invalid message from worker');
      return;
    }
    switch (msg.type) {
      case 'ready':
        this.transition(['starting'], 'ready');
        break;
      case 'failed':
        this.failure = { phase: msg.phase, error: msg.error };
        this.log.error({ phase: msg.phase, error: msg.error }, `worker failed during ${msg.phase}: ${msg.error.message}`);
        break;
      case 'ack':
        this.acks.get(msg.seq)?.();
        this.acks.delete(msg.seq);
        break;
      case 'drained':
        this.drainResult = { connections: msg.connections, killed: msg.killed, durationMs: msg.durationMs };
        this.emit('drained', msg);
        break;
      case 'heartbeat':
        break;
      case 'metrics':
        this.emit('metrics', msg);
        break;
    }
  }
}

/**
 * Waits for every worker to exit, SIGKILLing those still alive after
 * `deadlineMs` (each reported through `onKill` first). Resolves with how
 * many had to be killed.
 */
export async function exitedOrKilled(
  workers: readonly WorkerHandle[],
  deadlineMs: number,
  onKill: (worker: WorkerHandle) => void,
): Promise<number> {
  let killed = 0;
  const timer = setTimeout(() => {
    for (const w of workers) {
      if (!w.alive) continue;
      killed++;
      onKill(w);
      w.kill('SIGKILL');
    }
  }, deadlineMs);
  await Promise.all(workers.map((w) => w.exited));
  clearTimeout(timer);
  return killed;
}
