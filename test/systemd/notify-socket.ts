// The test's side of sd_notify: an AF_UNIX datagram socket bound by the
// test (through the project's own sys/ bindings: Node has no datagram Unix
// sockets), polled for datagrams, each kept with the CLOCK_MONOTONIC time it
// was read at, as systemd would see it.
import { unlinkSync } from 'node:fs';
import { bindUnix, close, monotonicMicros, receiveDatagram, unixDatagramSocket } from '../../src/sys/index.js';
import { until } from '../harness/master.js';

export interface Notification {
  readonly fields: ReadonlyMap<string, string>;
  readonly text: string;
  /** CLOCK_MONOTONIC µs when the test read it (at most POLL_MS late). */
  readonly receivedUsec: bigint;
}

const POLL_MS = 10;

export class NotifySocket {
  readonly messages: Notification[] = [];
  private readonly fd: number;
  private readonly timer: NodeJS.Timeout;

  /** `path` is a file path or `@name` (abstract namespace). */
  constructor(readonly path: string) {
    this.fd = unixDatagramSocket(path);
    try {
      bindUnix(this.fd, path);
    } catch (err) {
      close(this.fd);
      throw err;
    }
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  private poll(): void {
    for (let d = receiveDatagram(this.fd); d !== undefined; d = receiveDatagram(this.fd)) {
      const text = d.toString('utf8');
      const fields = new Map<string, string>();
      for (const line of text.split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
      }
      this.messages.push({ fields, text, receivedUsec: monotonicMicros() });
    }
  }

  /** The first message from index `from` on that matches, within `timeoutMs`. */
  next(match: (n: Notification) => boolean, timeoutMs: number, from = 0): Promise<Notification> {
    return until(() => this.messages.slice(from).find(match), timeoutMs, 'a matching notification', POLL_MS).catch((err: Error) => {
      throw new Error(`${err.message}; got:\n${this.messages.map((m) => JSON.stringify(m.text)).join('\n')}`);
    });
  }

  /** The state changes received (READY=1, RELOADING=1, STOPPING=1), in order. */
  states(): string[] {
    return this.messages.flatMap((m) => ['READY', 'RELOADING', 'STOPPING'].filter((k) => m.fields.get(k) === '1'));
  }

  close(): void {
    clearInterval(this.timer);
    this.poll();
    close(this.fd);
    if (!this.path.startsWith('@')) {
      try {
        unlinkSync(this.path);
      } catch {
        /* already gone */
      }
    }
  }
}

export const has = (key: string, value = '1') => (n: Notification): boolean => n.fields.get(key) === value;
