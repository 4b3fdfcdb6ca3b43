// What the kernel scenarios (bpf-scenario.ts) share: clients whose fate is
// recorded, listeners served by Node servers as a worker's would be, waits
// with deadlines, the namespace's TcpExt counters, and the step protocol
// with the test that drives them (JSON lines out, one line in per step).

import net from 'node:net';
import { createInterface } from 'node:readline';
import { readFileSync } from 'node:fs';
import { dupCloexec } from '../../src/sys/index.js';

export const DEADLINE_MS = 10_000;
const POLL_MS = 5;

export type Outcome = 'served' | 'reset' | 'refused' | 'timeout' | 'other-error' | 'closed';

/** A client that connects, sends a line, and records who answered (or how it failed). */
export class Client {
  outcome: Outcome | undefined;
  answer = '';
  readonly socket: net.Socket;
  readonly done: Promise<Outcome>;

  constructor(port: number, host = '127.0.0.1') {
    this.socket = net.connect({ host, port });
    this.socket.setNoDelay(true);
    this.done = new Promise((resolve) => {
      this.socket.on('data', (d: Buffer) => (this.answer += d.toString()));
      this.socket.on('error', (err: NodeJS.ErrnoException) => {
        this.outcome ??= err.code === 'ECONNRESET' ? 'reset' : err.code === 'ECONNREFUSED' ? 'refused' : 'other-error';
        resolve(this.outcome);
      });
      this.socket.on('close', () => {
        this.outcome ??= this.answer.length > 0 ? 'served' : 'closed';
        resolve(this.outcome);
      });
    });
    this.socket.once('connect', () => this.socket.write('hello\n'));
  }

  /** Resolves when the handshake is done from the client's side (SYN-ACK received). */
  connected(): Promise<void> {
    return withDeadline(
      new Promise<void>((resolve, reject) => {
        if (this.socket.readyState === 'open') resolve();
        this.socket.once('connect', () => resolve());
        this.socket.once('error', reject);
      }),
      'connect',
    );
  }

  settled(): Promise<Outcome> {
    return withDeadline(this.done, 'client outcome').catch(() => (this.outcome ??= 'timeout'));
  }
}

/** Opens `n` clients one after another, each connected before the next. */
export async function connectMany(n: number, port: number, host?: string): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < n; i++) {
    const c = new Client(port, host);
    clients.push(c);
    await c.connected();
  }
  return clients;
}

/** Tally of outcomes and of who answered ("A", "B"). */
export async function tally(clients: readonly Client[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const c of clients) {
    const o = await c.settled();
    const key = o === 'served' ? `served:${c.answer}` : o;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** A Node server on a duplicate of `fd` (listen(2) happens here, as in a worker), answering `name`. */
export async function serve(fd: number, name: string, backlog = 512): Promise<net.Server> {
  const server = net.createServer((conn) => {
    conn.on('error', () => undefined);
    conn.end(name);
  });
  await withDeadline(
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ fd: dupCloexec(fd) }, backlog, resolve);
    }),
    `server ${name} listening`,
  );
  return server;
}

export async function until(condition: () => boolean, what: string, deadlineMs = DEADLINE_MS): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function withDeadline<T>(promise: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** TcpExt counters of this network namespace. */
export function tcpExt(): Map<string, number> {
  const lines = readFileSync('/proc/self/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]?.split(/\s+/).slice(1) ?? [];
  const values = lines[1]?.split(/\s+/).slice(1) ?? [];
  return new Map(names.map((n, i) => [n, Number(values[i])]));
}

export function counterDelta(before: Map<string, number>, name: string): number {
  return (tcpExt().get(name) ?? 0) - (before.get(name) ?? 0);
}

const input = createInterface({ input: process.stdin });
const lines: string[] = [];
const waiting: ((line: string) => void)[] = [];
input.on('line', (line) => {
  const w = waiting.shift();
  if (w !== undefined) w(line);
  else lines.push(line);
});

/** Tells the driving test that `name` is reached, and waits for its go-ahead (one line on stdin). */
export function step(name: string, data: object = {}): Promise<string> {
  process.stdout.write(`${JSON.stringify({ step: name, ...data })}\n`);
  const queued = lines.shift();
  if (queued !== undefined) return Promise.resolve(queued);
  return withDeadline(new Promise<string>((resolve) => waiting.push(resolve)), `the test's go-ahead after ${name}`);
}

export function finish(result: object): void {
  process.stdout.write(`${JSON.stringify({ result })}\n`);
  input.close();
}
