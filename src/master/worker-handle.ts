// One worker process, seen from the master. It owns the child process (and
// nothing else: the listeners belong to the slot). States change only in
// `transition()`, which refuses illegal moves, in the manner of grpc-js.
//
// Spawning never throws and never leaves an 'error' event unheard: a
// process that cannot be created (EMFILE, EAGAIN under a pids limit,
// ENOENT) becomes a worker that exits at once with reason `spawn_failed`,
// so every failure reaches the master through the same 'exit' path.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log/logger.js';
import type { HttpMetricsMessage } from '../protocol/http-metrics.js';
import {
  envelope,
  FIRST_LISTENER_FD,
  openEnvelope,
  parseWorkerMessage,
  type AckMessage,
  type ErrorInfo,
  type MasterMessage,
  type WorkerExitReason,
  type WorkerListener,
} from '../protocol/worker.js';
import type { WorkerTls } from '../protocol/tls.js';
import { descriptorRoom } from '../sys/descriptors.js';
import { monotonic } from './clock.js';
import { pipeWorkerOutput } from './worker-output.js';

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
/**
 * Descriptors a spawn needs at its peak: the IPC socket pair, the stdout and
 * stderr pipes, libuv's exec-status pipe. Node 20's child_process returns
 * early on EMFILE without closing the pipes it already made (three leaked
 * sockets per failed spawn, measured), so a spawn that would not fit is
 * refused before it starts.
 */
export const SPAWN_DESCRIPTORS = 8;

/** How long to wait for a process to go after SIGKILL (one in D state may never) before giving up on it. */
export const KILL_WAIT_MS = 5_000;

export interface WorkerOptions {
  readonly generation: number;
  readonly index: number;
  readonly app: string;
  /** Descriptors and their specs, in slot order (several may share an address). */
  readonly listeners: readonly (Omit<WorkerListener, 'fd'> & { readonly fd: number })[];
  /** The generation's session ticket key, base64 (with TLS listeners). */
  readonly ticketKey?: string;
  readonly env: Readonly<Record<string, string>>;
  /** Options for the worker's node (config node_args), before the worker entry. */
  readonly nodeArgs?: readonly string[];
  /** The worker's working directory (config cwd); unset: the master's. */
  readonly cwd?: string;
  readonly drainTimeoutMs: number;
  /** The master exports request metrics: the worker counts its responses. */
  readonly countRequests: boolean;
  readonly uid?: number;
  readonly gid?: number;
  readonly log: Logger;
}

export interface WorkerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly reason: WorkerExitReason;
  /** For people: the worker's own failure report or how it died. */
  readonly detail: string;
}

export class WorkerStartError extends Error {
  override name = 'WorkerStartError';
  constructor(message: string, readonly error?: ErrorInfo) {
    super(message);
  }
}

type KillReason = 'killed' | 'heartbeat';

export class WorkerHandle extends EventEmitter<{ exit: [WorkerExit]; state: [WorkerState]; drained: [unknown]; metrics: [HttpMetricsMessage] }> {
  readonly generation: number;
  readonly index: number;
  /** Undefined when the process could not be created. */
  readonly pid: number | undefined;
  /** Monotonic ms. */
  readonly startedAt = monotonic();
  state: WorkerState = 'starting';
  failure: { phase: string; error: ErrorInfo } | undefined;
  exit: WorkerExit | undefined;
  /** When the master verified its listeners and counted it as serving (monotonic ms). */
  servedAt: number | undefined;
  /** Monotonic ms of the last valid message. */
  lastHeard = monotonic();
  /** The worker's own figures once it has drained. */
  drainResult: { connections: number; killed: number; durationMs: number } | undefined;
  readonly exited: Promise<WorkerExit>;
  private readonly child: ChildProcess | undefined;
  private readonly log: Logger;
  private seq = 0;
  private readonly acks = new Map<number, (ack: AckMessage | undefined) => void>();
  private killedFor: KillReason | undefined;
  private resolveExited!: (exit: WorkerExit) => void;

  constructor(options: WorkerOptions) {
    super();
    this.generation = options.generation;
    this.index = options.index;
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    // stdout and stderr are read by the master, which writes each line labelled with the worker (worker-output.ts).
    const stdio: (number | 'ignore' | 'pipe' | 'ipc')[] = ['ignore', 'pipe', 'pipe', 'ipc'];
    options.listeners.forEach((l) => stdio.push(l.fd));
    const child = this.spawnChild(options, stdio);
    this.child = child;
    this.pid = child?.pid;
    this.log = options.log.child({ generation: this.generation, worker: this.index, ...(this.pid ? { workerPid: this.pid } : {}) });
    if (!child) return;
    if (this.pid !== undefined) pipeWorkerOutput(child, { generation: this.generation, worker: this.index, pid: this.pid });
    child.on('error', (err) => {
      if (this.pid === undefined) this.spawnFailed(err);
      else this.log.error({ err }, 'worker process error');
    });
    if (this.pid === undefined) return; // 'error' follows on the next tick
    child.once('exit', (code, signal) => this.onExit(code, signal));
    child.on('message', (raw: unknown) => this.onMessage(raw));
    this.send({
      type: 'start',
      generation: this.generation,
      index: this.index,
      app: options.app,
      listeners: options.listeners.map((l, i) => ({ ...l, fd: FIRST_LISTENER_FD + i })),
      drainTimeoutMs: options.drainTimeoutMs,
      heartbeatMs: HEARTBEAT_MS,
      countRequests: options.countRequests,
      ...(options.ticketKey === undefined ? {} : { ticketKey: options.ticketKey }),
    });
    this.log.debug('worker spawned');
  }

  /** The child process, or undefined when it cannot be made (spawnFailed follows on the next tick). */
  private spawnChild(options: WorkerOptions, stdio: (number | 'ignore' | 'pipe' | 'ipc')[]): ChildProcess | undefined {
    const room = descriptorRoom();
    if (room !== undefined && room < SPAWN_DESCRIPTORS) {
      const err = Object.assign(new Error(`too many open files: ${room} descriptors left, a spawn needs ${SPAWN_DESCRIPTORS}`), { code: 'EMFILE' });
      process.nextTick(() => this.spawnFailed(err));
      return undefined;
    }
    try {
      return spawn(process.execPath, [...(options.nodeArgs ?? []), WORKER_ENTRY], {
        stdio,
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
        // A process group of its own: a terminal's ^C reaches only the master,
        // and an orphaned group's SIGHUP cannot kill workers mid-drain.
        detached: true,
        env: { ...process.env, ...options.env },
        ...(options.uid === undefined ? {} : { uid: options.uid }),
        ...(options.gid === undefined ? {} : { gid: options.gid }),
      });
    } catch (err) {
      // Thrown for errors Node does not turn into an 'error' event (E2BIG, EINVAL...).
      process.nextTick(() => this.spawnFailed(err));
      return undefined;
    }
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** For logs: `pid 123`, or `no process` when it could not be created. */
  get who(): string {
    return this.pid === undefined ? 'no process' : `pid ${this.pid}`;
  }

  transition(from: readonly WorkerState[], to: WorkerState): boolean {
    if (!from.includes(this.state) || !LEGAL[this.state].includes(to)) {
      this.log.debug({ from: this.state, to }, 'refused worker state transition');
      return false;
    }
    this.log.debug({ from: this.state, to }, 'worker state');
    this.state = to;
    if (to === 'serving') this.servedAt = monotonic();
    this.emit('state', to);
    return true;
  }

  /** Resolves when the worker reports ready; rejects on failure, exit or deadline. */
  ready(timeoutMs: number): Promise<void> {
    if (this.state === 'ready' || this.state === 'serving') return Promise.resolve();
    if (!this.alive || this.state !== 'starting') return Promise.reject(this.notReady(this.exit?.detail ?? this.state));
    return new Promise((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.off('state', onState);
        if (err) reject(err);
        else resolve();
      };
      const onState = (state: WorkerState): void => {
        if (state === 'ready') done();
        else if (state === 'failed' || state === 'exited' || state === 'draining') done(this.notReady(this.exit?.detail ?? state));
      };
      const timer = setTimeout(() => done(new WorkerStartError(`worker ${this.index} (${this.who}) not ready within ${timeoutMs} ms`)), timeoutMs);
      this.on('state', onState);
    });
  }

  private notReady(what: string): WorkerStartError {
    return new WorkerStartError(`worker ${this.index} (${this.who}) ${what} before ready`, this.failure?.error);
  }

  /**
   * Asks the worker to stop accepting and drain; servers of the `keep`
   * addresses accept on until close() names them. A worker still starting
   * never listens after this. Resolves true once it has acknowledged,
   * false when it did not within `ackTimeoutMs` or is gone.
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

  /**
   * tls.rotate: in-place: new certificates (and ticket key) for the running
   * servers' new handshakes. Resolves like drain().
   */
  rotateTls(listeners: readonly { address: string; tls: WorkerTls }[], ticketKey: string, ackTimeoutMs: number): Promise<boolean> {
    if (!this.alive) return Promise.resolve(false);
    return this.request((seq) => ({ type: 'tls', seq, ticketKey, listeners }), ackTimeoutMs);
  }

  /** Sends a message that the worker acknowledges, with a deadline; true only for an `ok` answer. */
  private request(message: (seq: number) => MasterMessage, ackTimeoutMs: number): Promise<boolean> {
    const seq = ++this.seq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.acks.delete(seq);
        resolve(false);
      }, ackTimeoutMs);
      this.acks.set(seq, (ack) => {
        clearTimeout(timer);
        if (ack?.result === 'refused') this.log.warn({ seq, reason: ack.reason }, `worker refused: ${ack.reason ?? 'no reason'}`);
        resolve(this.alive && ack?.result === 'ok');
      });
      this.send(message(seq));
    });
  }

  /** Signals the process; `reason` is what its exit will be classified as (for SIGKILL and SIGTERM sent on purpose). */
  kill(signal: NodeJS.Signals = 'SIGKILL', reason: KillReason = 'killed'): void {
    if (!this.alive || !this.child) return;
    this.killedFor ??= reason;
    try {
      this.child.kill(signal);
    } catch (err) {
      this.log.warn({ err, signal }, 'could not signal worker');
    }
  }

  private send(message: MasterMessage): void {
    if (!this.child?.connected) return;
    this.child.send(envelope(message), (err) => {
      if (err) this.log.debug({ err, type: message.type }, 'message to worker not delivered');
    });
  }

  private spawnFailed(err: unknown): void {
    if (this.exit) return;
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const detail = `could not be spawned: ${code ?? (err instanceof Error ? err.message : String(err))}`;
    this.log.error({ err }, `worker ${this.index} ${detail}`);
    this.finish({ code: null, signal: null, reason: 'spawn_failed', detail });
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    const detail = this.failure
      ? `${this.failure.phase} failed: ${this.failure.error.message}`
      : signal
        ? `killed by ${signal}`
        : `exited with code ${code}`;
    this.finish({ code, signal, reason: this.classify(code, signal), detail });
  }

  private classify(code: number | null, signal: NodeJS.Signals | null): WorkerExitReason {
    if (this.failure) return 'failed_start';
    if (this.killedFor && signal) return this.killedFor;
    if (code === 0) return this.state === 'draining' ? 'drained' : 'exited';
    return 'crashed';
  }

  private finish(exit: WorkerExit): void {
    this.exit = exit;
    if (this.state !== 'failed' && this.state !== 'exited') {
      this.transition(['starting', 'ready', 'serving', 'draining'], this.failure || exit.reason === 'spawn_failed' ? 'failed' : 'exited');
    }
    for (const ack of this.acks.values()) ack(undefined);
    this.acks.clear();
    this.resolveExited(exit);
    this.emit('exit', exit);
  }

  private onMessage(raw: unknown): void {
    const inner = openEnvelope(raw);
    if (inner === undefined) return; // the app's own IPC traffic, not ours
    let msg;
    try {
      msg = parseWorkerMessage(inner);
    } catch (err) {
      this.log.warn({ err }, 'invalid message from worker');
      return;
    }
    this.lastHeard = monotonic();
    switch (msg.type) {
      case 'ready':
        this.transition(['starting'], 'ready');
        break;
      case 'failed':
        this.failure = { phase: msg.phase, error: msg.error };
        this.log.error({ phase: msg.phase, error: msg.error }, `worker failed during ${msg.phase}: ${msg.error.message}`);
        break;
      case 'ack':
        this.acks.get(msg.seq)?.(msg);
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
 * `deadlineMs` (each reported through `onKill` first); a process that does
 * not go within KILL_WAIT_MS of its SIGKILL (D state) is given up on, and
 * reported through `onStuck`. Resolves with how many had to be killed.
 */
export async function exitedOrKilled(
  workers: readonly WorkerHandle[],
  deadlineMs: number,
  onKill: (worker: WorkerHandle) => void,
  onStuck: (worker: WorkerHandle) => void = () => {},
): Promise<number> {
  let killed = 0;
  let giveUp: NodeJS.Timeout | undefined;
  const stuck = new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      for (const w of workers) {
        if (!w.alive) continue;
        killed++;
        onKill(w);
        w.kill('SIGKILL');
      }
      giveUp = setTimeout(resolve, KILL_WAIT_MS);
    }, deadlineMs);
    void Promise.all(workers.map((w) => w.exited)).then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  await stuck;
  clearTimeout(giveUp);
  for (const w of workers) if (w.alive) onStuck(w);
  return killed;
}
