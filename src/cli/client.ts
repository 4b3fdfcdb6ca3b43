// Control-socket client used by `stop`, `status` and `reload`.
import { connect, type Socket } from 'node:net';
import type { ControlRequest, ControlResponse } from '../protocol/control.js';

export class NotRunningError extends Error {
  override name = 'NotRunningError';
}

export interface Exchange {
  readonly response: ControlResponse;
  /** Resolves when the master closes the connection (for `stop`: when it has exited). */
  readonly closed: Promise<void>;
}

export function request(path: string, req: ControlRequest, timeoutMs: number): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(path);
    let buffer = '';
    let settled = false;
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`no answer from ${path} within ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(req)}\n`));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        fail(new NotRunningError(`no handover master is running for this configuration (no answer on ${path})`));
      } else fail(new Error(`control socket ${path}: ${err.message}`));
    });
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline < 0 || settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        resolve({ response: JSON.parse(buffer.slice(0, newline)) as ControlResponse, closed });
      } catch {
        reject(new Error(`control socket ${path}: the answer is not JSON`));
      }
    });
    socket.on('end', () => fail(new Error(`control socket ${path}: closed without an answer`)));
  });
}
