// Runs one kernel experiment with handover's own socket layer and prints
// its measurements as one JSON line. Meant to run inside a throw-away
// network namespace (`ip netns exec NS node --import tsx fact-probe.ts …`),
// since facts.test.ts changes namespace-wide sysctls; it refuses to run in
// the namespace named by HO_OUTER_NETNS (the caller's).
//
//   migrate <K> [--no-sibling]   K connections queued on listener A, then shutdown(A)
//   holders                      close() by one holder vs shutdown() by another
//   spin                         a Node worker still polling a shut-down listener

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fstatSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { listenerSpec, openListeners, readTcpTable, socketAddress, TCP_LISTEN } from '../../src/net/index.js';
import type { Listener } from '../../src/net/index.js';
import { dupCloexec, listen } from '../../src/sys/index.js';

const DEADLINE_MS = 5_000;
const POLL_MS = 5;
const BACKLOG = 128;
const SPIN_WINDOW_MS = 500;

type Outcome = 'served' | 'reset' | 'refused' | 'other-error' | 'closed';

async function main(): Promise<void> {
  const outer = process.env.HO_OUTER_NETNS;
  if (outer === undefined || readlinkSync('/proc/self/ns/net') === outer) {
    throw new Error('fact-probe must run in a network namespace of its own (ip netns exec), with HO_OUTER_NETNS set');
  }
  const [scenario, ...args] = process.argv.slice(2);
  const base = {
    netns: readlinkSync('/proc/self/ns/net'),
    tcpMigrateReq: Number(readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8')),
  };
  let result: object;
  if (scenario === 'migrate') result = await migrate(Number(args[0] ?? 20), args.includes('--no-sibling'));
  else if (scenario === 'holders') result = await holders();
  else if (scenario === 'spin') result = await spin();
  else throw new Error(`unknown scenario ${scenario}`);
  process.stdout.write(`${JSON.stringify({ ...base, ...result })}\n`);
}

/**
 * Listener A listens (via listen(2), never accepting) while B is bound but
 * not listening; K clients connect, so all land on A. Then B listens through
 * a Node server that answers "B" (unless --no-sibling) and A is shut down.
 */
async function migrate(k: number, noSibling: boolean) {
  const spec = listenerSpec({ address: socketAddress('127.0.0.1', 0, 4), backlog: BACKLOG });
  const [a, b] = openListeners(spec, 2) as [Listener, Listener];
  const clients: Client[] = [];
  let server: net.Server | undefined;
  try {
    listen(a.fd, BACKLOG);
    for (let i = 0; i < k; i++) clients.push(await Client.connect(a.port));
    await until(() => a.queue()?.queued === k, `${k} connections queued on A`);
    const before = {
      queuedOnA: a.queue()?.queued,
      procRxQueueOfA: rxQueue(a.fd),
      bListeningWhileQueued: b.isListening(),
    };
    const counters = tcpExt();
    let accepted = 0;
    if (!noSibling) {
      server = net.createServer((socket) => {
        accepted++;
        socket.end('B');
      });
      await new Promise<void>((resolve) => server?.listen({ fd: dupCloexec(b.fd) }, BACKLOG, resolve));
    }
    a.shutdown();
    const aListeningAfterShutdown = a.isListening();
    await until(() => clients.every((c) => c.outcome !== undefined), 'every client answered or reset');
    const after = tcpExt();
    return {
      k,
      sibling: !noSibling,
      ...before,
      aListeningAfterShutdown,
      acceptedByB: accepted,
      outcomes: tally(clients.map((c) => c.outcome ?? 'closed')),
      migrateReqSuccess: delta(counters, after, 'TCPMigrateReqSuccess'),
      migrateReqFailure: delta(counters, after, 'TCPMigrateReqFailure'),
    };
  } finally {
    for (const c of clients) c.socket.destroy();
    server?.close();
    a.retire();
    b.retire();
  }
}

/**
 * The master's copy M and a worker process W hold one socket; W listens on
 * it. W closes its server: the socket must stay in LISTEN. Then M shuts it
 * down: out of LISTEN, for everyone.
 */
async function holders() {
  const spec = listenerSpec({ address: socketAddress('127.0.0.1', 0, 4), backlog: BACKLOG });
  const [m] = openListeners(spec, 1) as [Listener];
  const worker = spawnWorker(m.fd);
  const clients: Client[] = [];
  try {
    await worker.request('listen');
    const listeningWithWorker = m.isListening();
    const servedByWorker = await (await Client.connect(m.port)).settled();

    await worker.request('close');
    const listeningAfterWorkerClose = m.isListening();
    const lingering = await Client.connect(m.port);
    clients.push(lingering);
    await until(() => m.queue()?.queued === 1, 'a connection queued after the worker closed');
    const queuedAfterWorkerClose = m.queue()?.queued;

    m.shutdown();
    const listeningAfterShutdown = m.isListening();
    const lingeringOutcome = await lingering.settled();
    const late = await Client.attempt(m.port);
    return {
      listeningWithWorker,
      servedByWorker,
      listeningAfterWorkerClose,
      queuedAfterWorkerClose,
      listeningAfterShutdown,
      lingeringOutcome,
      connectAfterShutdown: late,
    };
  } finally {
    for (const c of clients) c.socket.destroy();
    worker.kill();
    m.retire();
  }
}

/**
 * A worker listens on the socket; the master shuts it down while the
 * worker's server is still open, then the worker closes it. The worker's
 * CPU time over SPIN_WINDOW_MS is measured in both states.
 */
async function spin() {
  const spec = listenerSpec({ address: socketAddress('127.0.0.1', 0, 4), backlog: BACKLOG });
  const [m] = openListeners(spec, 1) as [Listener];
  const worker = spawnWorker(m.fd);
  try {
    await worker.request('listen');
    const idle = await worker.cpuShare();
    m.shutdown();
    const afterShutdown = await worker.cpuShare();
    await worker.request('close');
    const afterClose = await worker.cpuShare();
    return { spinWindowMs: SPIN_WINDOW_MS, cpuIdle: idle, cpuAfterShutdown: afterShutdown, cpuAfterClose: afterClose, errorEvents: await worker.errors() };
  } finally {
    worker.kill();
    m.retire();
  }
}

/** A child node process holding the socket at fd 4; listens and closes on request over IPC. */
function spawnWorker(fd: number) {
  const code = `
    const net = require('node:net');
    let server;
    let errors = 0;
    process.on('message', (msg) => {
      if (msg === 'listen') {
        server = net.createServer((s) => s.end('W'));
        server.on('error', () => errors++);
        server.listen({ fd: 4 }, ${BACKLOG}, () => process.send('listen'));
      } else if (msg === 'cpu') {
        const start = process.cpuUsage();
        setTimeout(() => {
          const used = process.cpuUsage(start);
          process.send({ cpu: (used.user + used.system) / 1000 / ${SPIN_WINDOW_MS} });
        }, ${SPIN_WINDOW_MS});
      } else if (msg === 'errors') {
        process.send({ errors });
      } else if (msg === 'close') {
        server.close();
        process.send('close');
      }
    });`;
  const child: ChildProcess = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'inherit', 'inherit', 'ipc', fd] });
  const ask = <T>(msg: string, accept: (reply: unknown) => T | undefined): Promise<T> =>
    withDeadline(
      new Promise<T>((resolve, reject) => {
        child.once('exit', (codeOrNull) => reject(new Error(`worker exited (${codeOrNull}) before '${msg}'`)));
        child.on('message', (reply) => {
          const value = accept(reply);
          if (value !== undefined) resolve(value);
        });
        child.send(msg);
      }),
      `worker '${msg}'`,
    );
  const field = (name: string) => (reply: unknown) =>
    typeof reply === 'object' && reply !== null && name in reply ? Number((reply as Record<string, unknown>)[name]) : undefined;
  return {
    request: async (msg: string): Promise<void> => {
      await ask(msg, (reply) => (reply === msg ? true : undefined));
    },
    /** The worker's CPU time over SPIN_WINDOW_MS, as a share of one core. */
    cpuShare: (): Promise<number> => ask('cpu', field('cpu')),
    errors: (): Promise<number> => ask('errors', field('errors')),
    kill(): void {
      child.kill('SIGKILL');
    },
  };
}

class Client {
  outcome: Outcome | undefined;
  #data = '';
  #done: Promise<Outcome>;

  private constructor(readonly socket: net.Socket) {
    this.#done = new Promise((resolve) => {
      socket.on('data', (d) => (this.#data += d.toString()));
      socket.on('error', (err: NodeJS.ErrnoException) => {
        this.outcome ??= err.code === 'ECONNRESET' ? 'reset' : err.code === 'ECONNREFUSED' ? 'refused' : 'other-error';
        resolve(this.outcome);
      });
      socket.on('close', () => {
        this.outcome ??= this.#data.length > 0 ? 'served' : 'closed';
        resolve(this.outcome);
      });
    });
  }

  /** Connects; resolves once the handshake completed (the connection sits in an accept queue). */
  static connect(port: number): Promise<Client> {
    const socket = net.connect({ host: '127.0.0.1', port });
    const client = new Client(socket);
    return withDeadline(
      new Promise<Client>((resolve, reject) => {
        socket.once('connect', () => resolve(client));
        socket.once('error', reject);
      }),
      `connect to ${port}`,
    );
  }

  /** Connects and reports how it ended. */
  static attempt(port: number): Promise<Outcome> {
    return new Client(net.connect({ host: '127.0.0.1', port })).settled();
  }

  settled(): Promise<Outcome> {
    return withDeadline(this.#done, 'client outcome');
  }
}

function tally(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  return counts;
}

/** rx_queue of this socket's LISTEN entry in /proc/self/net/tcp. */
function rxQueue(fd: number): number | undefined {
  const inode = fstatSync(fd).ino;
  return readTcpTable().find((e) => e.inode === inode && e.state === TCP_LISTEN)?.rxQueue;
}

/** TcpExt counters of this network namespace. */
function tcpExt(): Map<string, number> {
  const lines = readFileSync('/proc/self/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]?.split(/\s+/).slice(1) ?? [];
  const values = lines[1]?.split(/\s+/).slice(1) ?? [];
  return new Map(names.map((n, i) => [n, Number(values[i])]));
}

function delta(before: Map<string, number>, after: Map<string, number>, name: string): number {
  const a = after.get(name);
  const b = before.get(name);
  if (a === undefined || b === undefined) throw new Error(`TcpExt ${name} missing`);
  return a - b;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${DEADLINE_MS} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function withDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${DEADLINE_MS} ms: ${what}`)), DEADLINE_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`fact-probe: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
