// What the master tells a worker about a TLS listener: PEM it read and
// checked itself (workers need no access to the key files), the server names
// with certificates of their own, the client CA, ALPN, and the generation's
// session ticket key. Validated by hand, like the rest of the worker
// protocol (zod is kept off the worker's start-up path).

import { object as objectOf, ProtocolError, type Obj } from './fields.js';

export interface WorkerTlsPair {
  readonly cert: string;
  /** Unencrypted PKCS#8 PEM: the master decrypted it. */
  readonly key: string;
}

export interface WorkerSni extends WorkerTlsPair {
  /** Lower case; `*.example.org` covers one label. */
  readonly name: string;
}

export interface WorkerTls extends WorkerTlsPair {
  readonly sni: readonly WorkerSni[];
  /** Client certificates are required, and must chain to these CAs. */
  readonly ca?: string;
  /** ALPN offers h2, then http/1.1. */
  readonly http2: boolean;
}

/**
 * `tls.rotate: in-place`: swap the secure contexts of running servers (new
 * handshakes get the new certificates; open connections keep theirs) and
 * the ticket key. Answered by `ack`.
 */
export interface TlsRotateMessage {
  readonly type: 'tls';
  readonly seq: number;
  /** 48 bytes, base64. */
  readonly ticketKey: string;
  readonly listeners: readonly { readonly address: string; readonly tls: WorkerTls }[];
}

/** What reports show of a certificate being served: public facts only. */
export interface ServedCertificate {
  readonly address: string;
  /** `*` for the address's default pair, else the SNI name. */
  readonly name: string;
  readonly file: string;
  readonly subject: string;
  /** Upper-case hex. */
  readonly serial: string;
  /** ISO 8601. */
  readonly notAfter: string;
}

/** `setTicketKeys` takes exactly one key of this size: 16 bytes name, 16 HMAC, 16 AES. */
export const TICKET_KEY_BYTES = 48;

/** A malformed TLS part of a master message (the worker logs it and ignores the message). */
export class TlsPayloadError extends ProtocolError {
  override name = 'TlsPayloadError';
}

const object = (v: unknown, what: string): Obj => objectOf(v, what, TlsPayloadError);

function str(o: Obj, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw new TlsPayloadError(`${what}.${key}: expected a non-empty string`);
  return v;
}

export function parseWorkerTls(v: unknown): WorkerTls {
  const o = object(v, 'tls');
  const sni = o['sni'];
  if (!Array.isArray(sni)) throw new TlsPayloadError('tls.sni: expected an array');
  if (typeof o['http2'] !== 'boolean') throw new TlsPayloadError('tls.http2: expected a boolean');
  return {
    cert: str(o, 'cert', 'tls'),
    key: str(o, 'key', 'tls'),
    sni: sni.map((s: unknown) => {
      const e = object(s, 'tls.sni[]');
      return { name: str(e, 'name', 'tls.sni[]'), cert: str(e, 'cert', 'tls.sni[]'), key: str(e, 'key', 'tls.sni[]') };
    }),
    ...(o['ca'] === undefined ? {} : { ca: str(o, 'ca', 'tls') }),
    http2: o['http2'],
  };
}

/** A base64 ticket key of exactly TICKET_KEY_BYTES bytes. */
export function parseTicketKey(v: unknown, what = 'ticketKey'): string {
  if (typeof v !== 'string' || Buffer.from(v, 'base64').length !== TICKET_KEY_BYTES) {
    throw new TlsPayloadError(`${what}: expected ${TICKET_KEY_BYTES} bytes in base64`);
  }
  return v;
}

export function parseTlsRotate(o: Obj): TlsRotateMessage {
  const seq = o['seq'];
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0) throw new TlsPayloadError('seq: expected an integer >= 0');
  const listeners = o['listeners'];
  if (!Array.isArray(listeners)) throw new TlsPayloadError('listeners: expected an array');
  return {
    type: 'tls',
    seq,
    ticketKey: parseTicketKey(o['ticketKey']),
    listeners: listeners.map((l: unknown) => {
      const e = object(l, 'listeners[]');
      return { address: str(e, 'address', 'listeners[]'), tls: parseWorkerTls(e['tls']) };
    }),
  };
}
