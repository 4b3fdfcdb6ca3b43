// The master's HTTP endpoint on `metrics.listen`: GET /metrics (Prometheus
// text), /healthz (the master's event loop answers) and /readyz (a
// generation is active and no stop has begun: a load balancer takes the
// host out the moment a graceful stop starts, during stop_delay). Small and
// bounded: GET and HEAD only, no request bodies, few connections, every
// request and idle connection with a deadline, one rendering at a time.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { SocketAddress } from '../config/types.js';
import type { MasterMetrics } from './registry.js';
import type { MasterView } from './view.js';

/** Deadline for a whole request, headers included. */
export const REQUEST_TIMEOUT_MS = 5_000;
/** An idle keep-alive connection (a scraper's) is closed after this. */
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** Connections beyond this are refused: a few scrapers and probes, not a crowd. */
export const MAX_CONNECTIONS = 32;
const MAX_HEADER_BYTES = 8 * 1024;
/** How often Node checks the two timeouts above (its default, 30 s, would let a slow client hold a connection that long). */
const TIMEOUT_CHECK_MS = 1_000;

export class MetricsEndpointError extends Error {
  override name = 'MetricsEndpointError';
}

export class MetricsEndpoint {
  private readonly server: Server;
  /** The scrape being rendered; concurrent scrapes share it. */
  private rendering: Promise<Buffer> | undefined;

  constructor(
    readonly address: SocketAddress,
    private readonly metrics: MasterMetrics,
    private readonly view: MasterView,
  ) {
    this.server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, connectionsCheckingInterval: TIMEOUT_CHECK_MS }, (req, res) => this.handle(req, res));
    this.server.requestTimeout = REQUEST_TIMEOUT_MS;
    this.server.headersTimeout = REQUEST_TIMEOUT_MS;
    this.server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    this.server.maxConnections = MAX_CONNECTIONS;
  }

  /** Listens; resolves with the port (resolved when the address asks for 0). Throws MetricsEndpointError. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const hint = err.code === 'EADDRINUSE' ? ' (another process listens there: change metrics.listen)' : err.code === 'EACCES' ? ' (a port below 1024 needs privileges)' : '';
        reject(new MetricsEndpointError(`metrics.listen ${this.address.text}: ${err.code ?? err.message}${hint}`));
      };
      this.server.once('error', onError);
      this.server.listen({ host: this.address.host, port: this.address.port }, () => {
        this.server.off('error', onError);
        const bound = this.server.address();
        resolve(typeof bound === 'object' && bound ? bound.port : this.address.port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    res.setHeader('Cache-Control', 'no-store');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return reply(res, 405, 'only GET and HEAD\n');
    }
    if (req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0') {
      res.setHeader('Connection', 'close');
      return reply(res, 400, 'no request body expected\n');
    }
    const path = (req.url ?? '/').split('?', 1)[0];
    switch (path) {
      case '/metrics':
        return this.scrape(res);
      case '/healthz':
        return reply(res, 200, 'ok\n');
      case '/readyz':
        return this.view.ready() ? reply(res, 200, 'ready\n') : reply(res, 503, 'not ready\n');
      default:
        return reply(res, 404, 'not found: try /metrics, /healthz or /readyz\n');
    }
  }

  private scrape(res: ServerResponse): void {
    this.rendering ??= this.metrics.render().finally(() => (this.rendering = undefined));
    this.rendering.then(
      (text) => reply(res, 200, text, this.metrics.contentType),
      (err: unknown) => reply(res, 500, `could not render the metrics: ${err instanceof Error ? err.message : String(err)}\n`),
    );
  }
}

function reply(res: ServerResponse, status: number, body: string | Buffer, type = 'text/plain; charset=utf-8'): void {
  if (res.destroyed) return;
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  res.end(body);
}
