// The one place that creates handover's own servers, for handler apps: plain
// HTTP, or HTTPS with the key material the master read. An app that makes
// its own server (a server app) never comes here.
import { createServer } from 'node:http';
import type { Server } from 'node:net';
import type { WorkerListener } from '../protocol/worker.js';
import type { RequestListener } from './app.js';

/** A server for `listener` answering with `handler`; not listening yet. */
export async function createServerFor(listener: WorkerListener, handler: RequestListener): Promise<Server> {
  if (!listener.tls) return createServer(handler);
  // node:https is loaded only when an address needs it (~20 ms of CPU per worker start).
  const { createServer: createHttpsServer } = await import('node:https');
  return createHttpsServer({ cert: listener.tls.cert, key: listener.tls.key }, handler);
}
