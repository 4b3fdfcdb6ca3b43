// Worker entry: spawned by the master with its listeners in descriptor slots
// 4.. and an IPC channel in slot 3. Order matters (DESIGN.md): load the app,
// run init, listen on the inherited sockets (listen(2) happens here, not in
// the master), then report ready.
import { createServer, type Server } from 'node:http';
import type { Logger } from '../log/logger.js';
import {
  envelope,
  errorInfo,
  openEnvelope,
  parseMasterMessage,
  type CloseMessage,
  type DrainMessage,
  type StartMessage,
  type WorkerMessage,
} from '../protocol/worker.js';
import { loadApp, type App, type AppContext } from './app.js';
import { ConnectionTracker, drain } from './drain.js';

/** How long a worker whose master vanished keeps draining before it exits. */
const ORPHAN_DRAIN_MS = 500;

// pino and node:https are loaded off the path to ready: a reload waits for
// every new worker's start, and each module costs ~20 ms of CPU (bench/).
let logger: Promise<Logger> | undefined;
let bindings: Record<string, unknown> = {};
function log(): Promise<Logger> {
  logger ??= import('../log/logger.js').then(({ createLogger }) => createLogger({ name: 'worker', bindings }));
  return logger;
}

const abort = new AbortController();
let app: App | undefined;
let ctx: AppContext | undefined;
let trackers: ConnectionTracker[] = [];
let draining = false;

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve();
    process.send(envelope(message), undefined, {}, () => resolve());
  });
}

async function fail(phase: 'load' | 'init' | 'listen' | 'serve', err: unknown): Promise<never> {
  (await log()).error({ err, phase }, `worker failed during ${phase}`);
  await send({ type: 'failed', phase, error: errorInfo(err) });
  process.exit(1);
}

function listen(server: Server, fd: number, backlog: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // The backlog must be positional: Node 20 ignores `backlog` inside the
    // options object when listening on an fd (measured: 511 instead of 7).
    server.listen({ fd }, backlog, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function start(msg: StartMessage): Promise<void> {
  bindings = { generation: msg.generation, worker: msg.index };
  ctx = Object.freeze({ generation: msg.generation, worker: msg.index, signal: abort.signal });
  try {
    app = await loadApp(msg.app);
  } catch (err) {
    return fail('load', err);
  }
  try {
    await app.init?.(ctx);
  } catch (err) {
    return fail('init', err);
  }
  // Told to drain while loading: the master may already have released our
  // sockets, and listening on one it shut down would take connections only
  // to reset them (FACTS.md). Never listen after a drain.
  if (draining) return;
  try {
    for (const l of msg.listeners) {
      if (draining) return;
      const server = l.tls
        ? (await import('node:https')).createServer({ cert: l.tls.cert, key: l.tls.key }, app.handler)
        : createServer(app.handler);
      trackers.push(new ConnectionTracker(l.address, server));
      await listen(server, l.fd, l.backlog);
    }
  } catch (err) {
    return fail('listen', err);
  }
  setInterval(() => void send({ type: 'heartbeat' }), msg.heartbeatMs).unref();
  await send({ type: 'ready' });
  void log();
}

async function startDrain(timeoutMs: number, onStopped: () => void = () => {}, keep: readonly string[] = []): Promise<void> {
  if (draining) return;
  draining = true;
  abort.abort();
  const closeHook = Promise.resolve()
    .then(() => (app && ctx ? app.close?.(ctx) : undefined))
    .catch(async (err: unknown) => (await log()).error({ err }, 'app close hook failed'));
  const result = await drain(trackers, timeoutMs, onStopped, new Set(keep));
  await closeHook;
  (await log()).info({ ...result }, 'drained');
  await send({ type: 'drained', ...result });
  process.exit(0);
}

function onDrain(msg: DrainMessage): void {
  void startDrain(msg.drainTimeoutMs, () => void send({ type: 'ack', seq: msg.seq, result: 'ok' }), msg.keep);
}

function onClose(msg: CloseMessage): void {
  for (const t of trackers) if (msg.addresses.includes(t.address)) t.stopAccepting();
  void send({ type: 'ack', seq: msg.seq, result: 'ok' });
}

process.on('message', (raw: unknown) => {
  const inner = openEnvelope(raw);
  if (inner === undefined) return; // the app's own IPC traffic
  let msg;
  try {
    msg = parseMasterMessage(inner);
  } catch (err) {
    void log().then((l) => l.error({ err }, 'invalid message from master'));
    return;
  }
  if (msg.type === 'start') void start(msg);
  else if (msg.type === 'drain') onDrain(msg);
  else onClose(msg);
});

// The master is gone (even SIGKILLed): exit on purpose rather than linger
// as an orphan holding a listener nobody supervises.
process.on('disconnect', () => {
  void log().then((l) => l.warn('master went away; exiting'));
  setTimeout(() => process.exit(1), ORPHAN_DRAIN_MS + 200).unref();
  void startDrain(ORPHAN_DRAIN_MS);
});

process.on('SIGTERM', () => process.exit(0));
process.on('uncaughtException', (err) => void fail('serve', err));
