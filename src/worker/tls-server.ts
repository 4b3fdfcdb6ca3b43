// The TLS server of one address, built from what the master sent: HTTPS
// (HTTP/1.1), or with `http2` an HTTP/2 secure server that also speaks
// HTTP/1.1 (ALPN h2, then http/1.1), the app's request listener serving
// both. Server names with certificates of their own are answered by an SNI
// callback; the session ticket key is the generation's, so a ticket issued
// by one worker resumes on any other worker of the generation.
//
// node:https, node:http2 and node:tls are loaded here, on demand: a worker
// without TLS listeners never pays for them (FACTS.md: ~20 ms each).
import type { Http2SecureServer } from 'node:http2';
import type { Server as HttpsServer } from 'node:https';
import type { SecureContext, SecureContextOptions } from 'node:tls';
import type { WorkerTls, WorkerTlsPair } from '../protocol/tls.js';
import { SniTable } from '../tls/sni.js';
import type { RequestListener } from './app.js';

export type TlsServer = HttpsServer | Http2SecureServer;

export interface TlsListener {
  readonly server: TlsServer;
  /** New certificates and ticket key for new handshakes; open connections keep theirs. */
  rotate(settings: WorkerTls, ticketKey: Buffer): void;
}

export async function createTlsListener(
  address: string,
  settings: WorkerTls,
  ticketKey: Buffer | undefined,
  handler: RequestListener,
): Promise<TlsListener> {
  const [{ createSecureContext }, { createHash }] = await Promise.all([import('node:tls'), import('node:crypto')]);
  // Sessions are resumable across the workers of an address (same context id
  // everywhere, SNI contexts included), never across addresses.
  const sessionIdContext = createHash('sha256').update(`handover ${address}`).digest('hex').slice(0, 32);
  const contextOptions = (pair: WorkerTlsPair): SecureContextOptions => ({
    cert: pair.cert,
    key: pair.key,
    sessionIdContext,
    ...(settings.ca === undefined ? {} : { ca: settings.ca }),
  });
  const sniTable = (s: WorkerTls): SniTable<SecureContext> => new SniTable(s.sni.map((e) => [e.name, createSecureContext(contextOptions(e))] as const));
  let names = sniTable(settings);
  const options = {
    ...contextOptions(settings),
    ...(ticketKey ? { ticketKeys: ticketKey } : {}),
    requestCert: settings.ca !== undefined,
    rejectUnauthorized: settings.ca !== undefined,
    SNICallback: (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => cb(null, names.lookup(servername)),
  };
  let server: TlsServer;
  if (settings.http2) {
    const { createSecureServer } = await import('node:http2');
    // The compatibility API hands the listener Http2ServerRequest/Response,
    // which mirror IncomingMessage/ServerResponse (README: which apps cope).
    server = createSecureServer({ ...options, allowHTTP1: true }, handler as unknown as Parameters<typeof createSecureServer>[1]);
  } else {
    const { createServer } = await import('node:https');
    server = createServer({ ...options, ALPNProtocols: ['http/1.1'] }, handler);
  }
  return {
    server,
    rotate(next: WorkerTls, key: Buffer): void {
      const fresh = sniTable(next);
      server.setSecureContext({ ...contextOptions(next), ticketKeys: key });
      names = fresh;
    },
  };
}
