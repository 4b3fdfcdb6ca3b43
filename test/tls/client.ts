// One HTTPS request from the test process: which certificate (serial) and
// which worker answered, whether the session was resumed, and the ticket the
// server issued (for the next resumption attempt).
import assert from 'node:assert/strict';
import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { sleep } from '../harness/master.js';

export interface Answer {
  readonly serial: string;
  readonly worker: number;
  readonly reused: boolean;
  readonly status: number;
  /** The newest session ticket the server sent on this connection, if any. */
  readonly session: Buffer | undefined;
}

export interface Ask {
  readonly port: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  readonly ca: string;
  readonly servername?: string;
  readonly session?: Buffer;
  /** Accept a certificate that does not name the host or servername (the chain is still verified). */
  readonly anyName?: boolean;
  /** A client certificate. */
  readonly cert?: string;
  readonly key?: string;
}

/** How long to wait after the response for TLS 1.3 tickets, which arrive after the handshake. */
const TICKET_WAIT_MS = 200;

export function ask(a: Ask, timeoutMs = 5_000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    const req = request(
      {
        host: a.host ?? '127.0.0.1', port: a.port, path: '/', agent: false, ca: a.ca, timeout: timeoutMs,
        ...(a.servername ? { servername: a.servername } : {}),
        ...(a.session ? { session: a.session } : {}),
        ...(a.cert ? { cert: a.cert, key: a.key } : {}),
        ...(a.anyName ? { checkServerIdentity: () => undefined } : {}),
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        // A resumed TLS 1.3 session carries no certificate: no serial then.
        const serial = (socket.getPeerCertificate().serialNumber as string | undefined)?.toUpperCase() ?? '';
        const reused = socket.isSessionReused();
        res.resume();
        res.on('end', () => {
          const finish = (): void => {
            socket.destroy();
            resolve({ serial, worker: Number(res.headers['x-handover-worker']), reused, status: res.statusCode ?? 0, session });
          };
          if (session) finish();
          else void sleep(TICKET_WAIT_MS).then(finish);
        });
      },
    );
    req.on('socket', (s) => s.on('session', (t: Buffer) => (session = t)));
    req.on('timeout', () => req.destroy(new Error(`no answer from ${a.host ?? '127.0.0.1'}:${a.port} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Asks until `serial` answers (the rotation took effect), at most `timeoutMs`. */
export async function servedBy(a: Ask, serial: string, timeoutMs = 10_000): Promise<Answer> {
  const deadline = Date.now() + timeoutMs;
  let last: Answer | undefined;
  while (Date.now() < deadline) {
    last = await ask(a);
    if (last.serial === serial) return last;
    await sleep(50);
  }
  throw new Error(`serial ${serial} not served within ${timeoutMs} ms (last: ${last?.serial})`);
}

/**
 * Gets a ticket from one worker, then connects until the same worker and a
 * different one have each answered, presenting that ticket each time.
 */
export async function resumeAcrossWorkers(base: Ask): Promise<{ same: boolean; other: boolean; workers: number[] }> {
  const first = await ask(base);
  assert.ok(first.session, 'the server issued a session ticket');
  let same: boolean | undefined;
  let other: boolean | undefined;
  const workers = [first.worker];
  for (let i = 0; i < 40 && (same === undefined || other === undefined); i++) {
    const a = await ask({ ...base, session: first.session });
    workers.push(a.worker);
    if (a.worker === first.worker) same ??= a.reused;
    else other ??= a.reused;
  }
  assert.ok(same !== undefined && other !== undefined, `both workers answered within 40 connections: ${workers.join(',')}`);
  return { same, other, workers };
}
