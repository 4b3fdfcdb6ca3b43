// The one place that creates handover's own servers, for handler apps: plain
// HTTP, or for a TLS address the server of tls-server.ts (HTTPS, or HTTP/2
// with HTTP/1.1) with the key material the master read and the
// generation's ticket key. An app that makes its own server (a server app)
// never comes here. TLS servers are kept so that an in-place certificate
// rotation reaches them, including several sockets of one address (inherit,
// after the worker count shrank), and one that arrives while the worker
// starts applies to the servers made after it.
import { createServer } from 'node:http';
import type { Server } from 'node:net';
import type { TlsRotateMessage } from '../protocol/tls.js';
import type { WorkerListener } from '../protocol/worker.js';
import type { RequestListener } from './app.js';
import { createTlsListener, type TlsListener } from './tls-server.js';

export class OwnServers {
  private readonly tls = new Map<string, TlsListener[]>();
  private rotation: TlsRotateMessage | undefined;
  /** The generation's session ticket key, base64, from the start message. */
  ticketKey: string | undefined;

  /** A server for `listener` answering with `handler`; not listening yet. */
  async create(listener: WorkerListener, handler: RequestListener): Promise<Server> {
    if (!listener.tls) return createServer(handler);
    const settings = this.rotation?.listeners.find((r) => r.address === listener.address)?.tls ?? listener.tls;
    const key = this.rotation?.ticketKey ?? this.ticketKey;
    const made = await createTlsListener(listener.address, settings, key === undefined ? undefined : Buffer.from(key, 'base64'), handler);
    this.tls.set(listener.address, [...(this.tls.get(listener.address) ?? []), made]);
    return made.server;
  }

  /** tls.rotate: in-place. Throws when a secure context cannot be built (the worker then refuses the rotation). */
  rotate(msg: TlsRotateMessage): void {
    this.rotation = msg;
    const key = Buffer.from(msg.ticketKey, 'base64');
    for (const l of msg.listeners) for (const t of this.tls.get(l.address) ?? []) t.rotate(l.tls, key);
  }
}
