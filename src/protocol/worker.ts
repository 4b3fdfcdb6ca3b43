// The master <-> worker vocabulary, shared by both sides (as Node's cluster
// module shares `{ act, seq, ack }`). Every request that expects an answer
// carries a sequence number; the asking side holds the deadline.
import { z } from 'zod';

/** What a worker needs to know about one listener it was handed. */
export const WorkerListener = z.object({
  fd: z.number().int().min(3),
  address: z.string(),
  backlog: z.number().int().positive(),
  /** PEM, read by the master: workers need no access to the key files. */
  tls: z.object({ cert: z.string(), key: z.string() }).optional(),
});
export type WorkerListener = z.infer<typeof WorkerListener>;

export const StartMessage = z.object({
  type: z.literal('start'),
  generation: z.number().int().positive(),
  index: z.number().int().nonnegative(),
  app: z.string(),
  listeners: z.array(WorkerListener),
  drainTimeoutMs: z.number().int().nonnegative(),
  heartbeatMs: z.number().int().positive(),
});
export type StartMessage = z.infer<typeof StartMessage>;

/** Stop accepting (close the server handles) and drain; answered by `ack`, then `drained`. */
export const DrainMessage = z.object({
  type: z.literal('drain'),
  seq: z.number().int(),
  drainTimeoutMs: z.number().int().nonnegative(),
});
export type DrainMessage = z.infer<typeof DrainMessage>;

export const MasterMessage = z.discriminatedUnion('type', [StartMessage, DrainMessage]);
export type MasterMessage = z.infer<typeof MasterMessage>;

export const ErrorInfo = z.object({ name: z.string(), message: z.string(), stack: z.string().optional() });
export type ErrorInfo = z.infer<typeof ErrorInfo>;

export const WorkerMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('failed'), phase: z.enum(['load', 'init', 'listen', 'serve']), error: ErrorInfo }),
  z.object({ type: z.literal('ack'), seq: z.number().int() }),
  z.object({ type: z.literal('heartbeat') }),
  z.object({
    type: z.literal('drained'),
    connections: z.number().int().nonnegative(),
    killed: z.number().int().nonnegative(),
    durationMs: z.number().nonnegative(),
  }),
]);
export type WorkerMessage = z.infer<typeof WorkerMessage>;

export function errorInfo(err: unknown): ErrorInfo {
  if (err instanceof Error) {
    return err.stack === undefined
      ? { name: err.name, message: err.message }
      : { name: err.name, message: err.message, stack: err.stack };
  }
  return { name: 'Error', message: String(err) };
}

/** Descriptor slots: 0-2 stdio, 3 the IPC channel, listeners from 4 on. */
export const IPC_FD = 3;
export const FIRST_LISTENER_FD = 4;
