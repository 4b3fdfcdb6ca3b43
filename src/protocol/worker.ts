// The master <-> worker vocabulary, shared by both sides (as Node's cluster
// module shares `{ act, seq, ack }`). Every request that expects an answer
// carries a sequence number; the asking side holds the deadline.
//
// Validated by hand (fields.ts), not with zod: a worker loads this on every
// spawn, and zod cost ~60 ms of CPU per worker start (bench/), a third of a reload.
import { bool, int, num, object, ProtocolError, str, strings } from './fields.js';
import { parseHttpMetrics, type HttpMetricsMessage } from './http-metrics.js';
import { parseTicketKey, parseTlsRotate, parseWorkerTls, type TlsRotateMessage, type WorkerTls } from './tls.js';

export { ProtocolError };

export interface WorkerListener {
  readonly fd: number;
  readonly address: string;
  readonly backlog: number;
  /** PEM, read and checked by the master: workers need no access to the key files. */
  readonly tls?: WorkerTls;
}

export interface StartMessage {
  readonly type: 'start';
  readonly generation: number;
  readonly index: number;
  readonly app: string;
  readonly listeners: readonly WorkerListener[];
  readonly drainTimeoutMs: number;
  readonly heartbeatMs: number;
  /**
   * The master exports request metrics (`metrics.listen`): count each
   * response and send the deltas. Without an endpoint to show them, the
   * worker's request path is the app's own.
   */
  readonly countRequests: boolean;
  /** The generation's session ticket key (48 bytes, base64); present when a listener has tls. */
  readonly ticketKey?: string;
}

/**
 * Stop accepting (close the server handles) and drain; answered by `ack`,
 * then `drained`. Servers of the `keep` addresses go on accepting until a
 * `close` names them (an address the new generation no longer serves).
 */
export interface DrainMessage {
  readonly type: 'drain';
  readonly seq: number;
  readonly drainTimeoutMs: number;
  readonly keep: readonly string[];
}

/** Stop accepting on these addresses now; answered by `ack`. */
export interface CloseMessage {
  readonly type: 'close';
  readonly seq: number;
  readonly addresses: readonly string[];
}

export type MasterMessage = StartMessage | DrainMessage | CloseMessage | TlsRotateMessage;

export interface ErrorInfo {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

export type FailurePhase = 'load' | 'init' | 'listen' | 'serve';

/**
 * The answer to a request: `ok` once done; `refused` with a reason when the
 * worker cannot do it (e.g. told to close an address it never served).
 */
export type AckResult = 'ok' | 'refused';

export interface AckMessage {
  readonly type: 'ack';
  readonly seq: number;
  readonly result: AckResult;
  readonly reason?: string;
}

export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'failed'; readonly phase: FailurePhase; readonly error: ErrorInfo }
  | AckMessage
  | { readonly type: 'heartbeat' }
  | { readonly type: 'drained'; readonly connections: number; readonly killed: number; readonly durationMs: number }
  | HttpMetricsMessage;

/**
 * Why a worker ended, as the master classifies it: bounded, so usable as a
 * metric label. `drained`: exited after the drain it was asked for;
 * `exited`: exit code 0 unasked; `crashed`: a non-zero code or a signal the
 * master did not send; `failed_start`: reported a failure at load, init or
 * listen; `spawn_failed`: the process could not be created (EMFILE,
 * EAGAIN); `killed`: the master killed it (deadline, rollback, stop);
 * `heartbeat`: the master killed it for a missed heartbeat.
 */
export const WORKER_EXIT_REASONS = ['drained', 'exited', 'crashed', 'failed_start', 'spawn_failed', 'killed', 'heartbeat'] as const;
export type WorkerExitReason = (typeof WORKER_EXIT_REASONS)[number];

function listener(v: unknown): WorkerListener {
  const o = object(v, 'listener');
  const base = { fd: int(o, 'fd', 3), address: str(o, 'address'), backlog: int(o, 'backlog', 1) };
  if (o['tls'] === undefined) return base;
  return { ...base, tls: parseWorkerTls(o['tls']) };
}

/** Throws ProtocolError on anything that is not a message the master sends. */
export function parseMasterMessage(raw: unknown): MasterMessage {
  const o = object(raw, 'message');
  switch (o['type']) {
    case 'start': {
      const listeners = o['listeners'];
      if (!Array.isArray(listeners)) throw new ProtocolError('listeners: expected an array');
      return {
        type: 'start',
        generation: int(o, 'generation', 1),
        index: int(o, 'index'),
        app: str(o, 'app'),
        listeners: listeners.map(listener),
        drainTimeoutMs: int(o, 'drainTimeoutMs'),
        heartbeatMs: int(o, 'heartbeatMs', 1),
        countRequests: bool(o, 'countRequests'),
        ...(o['ticketKey'] === undefined ? {} : { ticketKey: parseTicketKey(o['ticketKey']) }),
      };
    }
    case 'drain':
      return { type: 'drain', seq: int(o, 'seq'), drainTimeoutMs: int(o, 'drainTimeoutMs'), keep: strings(o, 'keep') };
    case 'close':
      return { type: 'close', seq: int(o, 'seq'), addresses: strings(o, 'addresses') };
    case 'tls':
      return parseTlsRotate(o);
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(o['type'])}`);
  }
}

const PHASES: readonly FailurePhase[] = ['load', 'init', 'listen', 'serve'];

/** Throws ProtocolError on anything that is not a message a worker sends. */
export function parseWorkerMessage(raw: unknown): WorkerMessage {
  const o = object(raw, 'message');
  switch (o['type']) {
    case 'ready':
    case 'heartbeat':
      return { type: o['type'] };
    case 'ack': {
      const result = o['result'] ?? 'ok';
      if (result !== 'ok' && result !== 'refused') throw new ProtocolError('result: expected ok or refused');
      const reason = o['reason'];
      return { type: 'ack', seq: int(o, 'seq'), result, ...(typeof reason === 'string' ? { reason } : {}) };
    }
    case 'failed': {
      const phase = o['phase'] as FailurePhase;
      if (!PHASES.includes(phase)) throw new ProtocolError(`phase: expected one of ${PHASES.join(', ')}`);
      const e = object(o['error'], 'error');
      const stack = e['stack'];
      const error = { name: str(e, 'name'), message: str(e, 'message'), ...(typeof stack === 'string' ? { stack } : {}) };
      return { type: 'failed', phase, error };
    }
    case 'drained':
      return { type: 'drained', connections: int(o, 'connections'), killed: int(o, 'killed'), durationMs: num(o, 'durationMs') };
    case 'metrics': {
      const metrics = parseHttpMetrics(o);
      if (typeof metrics === 'string') throw new ProtocolError(metrics);
      return metrics;
    }
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(o['type'])}`);
  }
}

export function errorInfo(err: unknown): ErrorInfo {
  if (err instanceof Error) {
    return err.stack === undefined
      ? { name: err.name, message: err.message }
      : { name: err.name, message: err.message, stack: err.stack };
  }
  return { name: 'Error', message: String(err) };
}

/**
 * handover's messages travel in an envelope of their own on the IPC channel
 * the app may use too (`process.send`, PM2-style `process.send('ready')`):
 * anything without this key is the app's business and is ignored, so an app
 * can never be taken for its worker runtime.
 */
export const ENVELOPE_KEY = '__handover';
const ENVELOPE_VERSION = 1;

export interface Envelope<M> {
  readonly [ENVELOPE_KEY]: typeof ENVELOPE_VERSION;
  readonly message: M;
}

export function envelope<M extends MasterMessage | WorkerMessage>(message: M): Envelope<M> {
  return { [ENVELOPE_KEY]: ENVELOPE_VERSION, message };
}

/** The message inside one of our envelopes, or undefined for anything else (not ours: ignore it). */
export function openEnvelope(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object') return undefined;
  const o = raw as Record<string, unknown>;
  return o[ENVELOPE_KEY] === ENVELOPE_VERSION ? o['message'] : undefined;
}

/** Descriptor slots: 0-2 stdio, 3 the IPC channel, listeners from 4 on. */
export const IPC_FD = 3;
export const FIRST_LISTENER_FD = 4;
