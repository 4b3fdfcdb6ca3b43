// Worker entry: spawned by the master with its listeners in descriptor slots
// 4.. and an IPC channel in slot 3. Order matters (DESIGN.md): load the app,
// run init, listen on the inherited sockets (listen(2) happens here, not in
// the master), then report ready.
import { createServer } from 'node:http';
import type { Server as NetServer } from 'node:net';
import type { Logger } from '../log/logger.js';
import type { TlsRotateMessage } from '../protocol/tls.js';
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
import { createTlsListener, type TlsListener } from './tls-server.js';
import { dropPrivileges } from './privileges.js';

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
/** Per address: a worker may listen on several sockets of one address (inherit, after the worker count shrank). */
const tlsListeners = new Map<string, TlsListener[]>();
/** The latest in-place certificate rotation; one that arrives while we start applies to the servers not yet made. */
let rotation: TlsRotateMessage | undefined;

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

function listen(server: NetServer, fd: number, backlog: number): Promise<void> {
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
    await dropPrivileges(); // before any of the app's code runs
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
      let server: NetServer;
      if (l.tls) {
        const settings = rotation?.listeners.find((r) => r.address === l.address)?.tls ?? l.tls;
        const ticketKey = rotation?.ticketKey ?? msg.ticketKey;
        const tls = await createTlsListener(l.address, settings, ticketKey === undefined ? undefined : Buffer.from(ticketKey, 'base64'), app.handler);
        tlsListeners.set(l.address, [...(tlsListeners.get(l.address) ?? []), tls]);
        server = tls.server;
      } else {
        server = createServer(app.handler);
      }
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

function onTls(msg: TlsRotateMessage): void {
  rotation = msg;
  const key = Buffer.from(msg.ticketKey, 'base64');
  try {
    for (const l of msg.listeners) for (const t of tlsListeners.get(l.address) ?? []) t.rotate(l.tls, key);
  } catch (err) {
    // Refused: the master reports this worker as still serving the old certificates.
    void log().then((l) => l.error({ err }, 'could not apply the new certificates'));
    void send({ type: 'ack', seq: msg.seq, result: 'refused', reason: `could not apply the new certificates: ${err instanceof Error ? err.message : String(err)}` });
    return;
  }
  void send({ type: 'ack', seq: msg.seq, result: 'ok' });
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
  else if (msg.type === 'tls') onTls(msg);
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
