// Request counters in the worker: a few numbers per response, sent to the
// master as deltas about once a second (protocol/http-metrics.ts). No metrics
// library here: the worker's start-up is the reload's cost. The request path
// gains one listener on the response and a bucket search over 13 bounds;
// bench/http-metrics.ts measures what that costs against the bare path.
import { envelope } from '../protocol/worker.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as NetServer } from 'node:net';
import {
  HTTP_DURATION_BUCKETS,
  HTTP_METRICS_INTERVAL_MS,
  STATUS_CLASSES,
  type HttpMetricsMessage,
} from '../protocol/http-metrics.js';

const BOUNDS_MS = HTTP_DURATION_BUCKETS.map((s) => s * 1000);
const LAST_CLASS = STATUS_CLASSES.length - 1;

/** What this worker served since the last message it sent. */
class RequestCounters {
  readonly requests: number[] = STATUS_CLASSES.map(() => 0);
  readonly buckets: number[] = [...BOUNDS_MS.map(() => 0), 0];
  seconds = 0;
  inFlight = 0;
  /** Something changed since the last message (a response, or the in-flight level). */
  changed = false;

  started(): void {
    this.inFlight++;
    this.changed = true;
  }

  /** A response closed: counted when it was completely written, not when the client went away first. */
  closed(res: ServerResponse, startedAt: number): void {
    this.inFlight--;
    this.changed = true;
    if (!res.writableFinished) return;
    const ms = performance.now() - startedAt;
    const cls = Math.floor(res.statusCode / 100) - 1;
    this.requests[cls < 0 ? 0 : cls > LAST_CLASS ? LAST_CLASS : cls]!++;
    let b = 0;
    while (b < BOUNDS_MS.length && ms > BOUNDS_MS[b]!) b++;
    this.buckets[b]!++;
    this.seconds += ms / 1000;
  }

  /** The message for what changed, resetting the deltas; undefined when nothing did. */
  take(): HttpMetricsMessage | undefined {
    if (!this.changed) return undefined;
    const message: HttpMetricsMessage = {
      type: 'metrics',
      requests: [...this.requests],
      buckets: [...this.buckets],
      seconds: this.seconds,
      inFlight: this.inFlight,
    };
    this.requests.fill(0);
    this.buckets.fill(0);
    this.seconds = 0;
    this.changed = false;
    return message;
  }
}

const counters = new RequestCounters();
let timer: NodeJS.Timeout | undefined;
/** Servers counted already: one app server listening on two addresses passes here once per address. */
const counted = new WeakSet<NetServer>();

function onRequest(_req: IncomingMessage, res: ServerResponse): void {
  const startedAt = performance.now();
  counters.started();
  res.on('close', () => counters.closed(res, startedAt));
}

/** Sends what changed to the master, if it is still there. */
export function flushRequestCounters(): void {
  if (!process.send || !process.connected) return;
  const message = counters.take();
  if (message) process.send(envelope(message), undefined, {}, () => {});
}

/**
 * Counts the requests `server` answers. The counting listener runs before the
 * app's handler, so a response's duration includes the handler's own
 * synchronous work. What a server served in its last second is sent when it
 * closes (the end of a drain), before the worker reports `drained`. Any
 * server that emits 'request' fits: http, https, and HTTP/2's compatibility
 * API, whose request and response mirror http's. A server is counted once,
 * however many addresses it serves.
 */
export function countRequests(server: NetServer): void {
  if (counted.has(server)) return;
  counted.add(server);
  server.prependListener('request', onRequest);
  server.once('close', flushRequestCounters);
  timer ??= setInterval(flushRequestCounters, HTTP_METRICS_INTERVAL_MS).unref();
}
