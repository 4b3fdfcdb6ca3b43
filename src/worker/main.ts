// Worker entry: spawned by the master with its listeners in descriptor slots
// 4.. and an IPC channel in slot 3. Order matters (DESIGN.md): load the app,
// run init, listen on the inherited sockets (listen(2) happens here, not in
// the master), then report ready. A server app listens by itself while it
// loads (or later); ready waits until every configured address listens.
import type { Server } from 'node:net';
import type { Logger } from '../log/logger.js';
import {
  envelope,
  errorInfo,
  openEnvelope,
  parseMasterMessage,
  type CloseMessage,
  type DrainMessage,
  type FailurePhase,
  type StartMessage,
  type WorkerListener,
  type WorkerMessage,
} from '../protocol/worker.js';
import { loadApp, type App, type AppContext } from './app.js';
import { DescriptorWatch } from './descriptor-watch.js';
import { ConnectionTracker, drain, type DrainResult } from './drain.js';
import { countRequests } from './http-metrics.js';
import { InheritedListeners, waitForListening } from './inherited.js';
import type { TlsRotateMessage } from '../protocol/tls.js';
import { dropPrivileges } from './privileges.js';
import { OwnServers } from './servers.js';

/** How long a worker whose master vanished keeps draining before it exits. */
const ORPHAN_DRAIN_MS = 500;
/** The least time the app's close hook gets, even after a drain that ran to its deadline. */
const CLOSE_HOOK_MIN_MS = 1_000;

// pino is loaded off the path to ready: a reload waits for every new
// worker's start, and it costs ~20 ms of CPU (bench/).
let logger: Promise<Logger> | undefined;
let bindings: Record<string, unknown> = {};
function log(): Promise<Logger> {
  logger ??= import('../log/logger.js').then(({ createLogger }) => createLogger({ name: 'worker', bindings }));
  return logger;
}

type State = 'idle' | 'loading' | 'initialising' | 'listening' | 'serving' | 'draining';

const abort = new AbortController();
const servers = new Map<string, Server>();
const trackers: ConnectionTracker[] = [];
let state: State = 'idle';
/** A function, not a comparison: TypeScript keeps `state` narrowed across awaits. */
const isDraining = (): boolean => state === 'draining';
let app: App | undefined;
let initialised = false;
let ctx: AppContext | undefined;
let inherited: InheritedListeners | undefined;
let starting: Promise<void> = Promise.resolve();
const own = new OwnServers();

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve();
    process.send(envelope(message), undefined, {}, () => resolve());
  });
}

async function fail(phase: FailurePhase, err: unknown): Promise<never> {
  (await log()).error({ err, phase }, `worker failed during ${phase}`);
  await send({ type: 'failed', phase, error: errorInfo(err) });
  process.exit(1);
}

const PHASE: Record<State, FailurePhase> = {
  idle: 'load', loading: 'load', initialising: 'init', listening: 'listen', serving: 'serve', draining: 'serve',
};

/**
 * Every server that is given an inherited socket, the app's or ours, passes
 * here once per address. Its responses are counted only when the master
 * exports them.
 */
function track(address: string, listening: Server, http: Server, counting: boolean): void {
  trackers.push(new ConnectionTracker(address, listening, http));
  if (counting) countRequests(http);
  servers.set(address, http);
}

/** Handover's own servers, one per address, for a handler app: created, set up, then listening. */
async function listenForHandler(app: App & { kind: 'handler' }, msg: StartMessage, context: AppContext): Promise<void> {
  const made: [WorkerListener, Server][] = [];
  for (const l of msg.listeners) made.push([l, await own.create(l, app.handler)]);
  for (const [, server] of made) await app.setup?.(server, context);
  for (const [listener, server] of made) inherited?.serve(server, listener);
}

async function start(msg: StartMessage): Promise<void> {
  bindings = { generation: msg.generation, worker: msg.index };
  own.ticketKey = msg.ticketKey;
  const context: AppContext = Object.freeze({ generation: msg.generation, worker: msg.index, signal: abort.signal, servers });
  ctx = context;
  const sockets = new InheritedListeners(msg.listeners, {
    serve: (address, listening, http) => track(address, listening, http, msg.countRequests),
    warn: (message) => void log().then((l) => l.warn({ app: msg.app }, message)),
  });
  inherited = sockets;
  // Before the app is loaded: the process as the app will see it. The app
  // sees the argv of `node APP`, and its listen() calls reach the sockets.
  process.argv[1] = msg.app;
  sockets.install();

  state = 'loading';
  try {
    await dropPrivileges(); // before any of the app's code runs
    app = await loadApp(msg.app, () => sockets.claimed);
  } catch (err) {
    return fail('load', err);
  }
  initialised = app.init === undefined;
  if (isDraining()) return;
  state = 'initialising';
  try {
    await app.init?.(context);
  } catch (err) {
    return fail('init', err);
  }
  initialised = true;
  if (isDraining()) return;
  state = 'listening';
  try {
    if (app.kind === 'handler') await listenForHandler(app, msg, context);
    await waitForListening(sockets, msg.app, (line) => void log().then((l) => l.warn(line)));
  } catch (err) {
    return fail('listen', err);
  }
  if (isDraining()) return;
  state = 'serving';
  const descriptors = new DescriptorWatch((fields, line) => void log().then((l) => l.warn(fields, line)));
  setInterval(() => {
    void send({ type: 'heartbeat' });
    descriptors.check();
  }, msg.heartbeatMs).unref();
  await send({ type: 'ready' });
  void log();
}

/** Runs the app's close hook, bounded by `ms`. */
async function closeApp(ms: number): Promise<void> {
  if (!app?.close || !ctx || !initialised) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  try {
    const outcome = await Promise.race([Promise.resolve(app.close(ctx)), late]);
    if (outcome === 'late') (await log()).warn({ ms }, 'app close hook did not finish in time; exiting anyway');
  } catch (err) {
    (await log()).error({ err }, 'app close hook failed');
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Draining, in this order: ctx.signal aborts (the app ends WebSockets and
 * streams), the servers stop accepting (then `onStopped`), the connections
 * finish or are destroyed at the deadline, and only then the app's close
 * hook runs: pools and clients it closes were in use by those requests.
 * Told to drain before it was ready, the worker never listens at all.
 */
async function startDrain(timeoutMs: number, onStopped: () => void = () => {}, keep: readonly string[] = []): Promise<void> {
  if (isDraining()) return onStopped();
  const wasServing = state === 'serving';
  state = 'draining';
  const started = performance.now();
  abort.abort();
  inherited?.stop();
  const result: DrainResult = await drain(trackers, timeoutMs, onStopped, wasServing ? new Set(keep) : new Set());
  const left = (): number => Math.max(timeoutMs - (performance.now() - started), CLOSE_HOOK_MIN_MS);
  // Still loading or in init: the close hook needs an app that finished init.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([starting, new Promise((resolve) => (timer = setTimeout(resolve, left())))]);
  clearTimeout(timer);
  await closeApp(left());
  (await log()).info({ ...result }, 'drained');
  await send({ type: 'drained', ...result });
  process.exit(0);
}

function onDrain(msg: DrainMessage): void {
  void startDrain(msg.drainTimeoutMs, () => void send({ type: 'ack', seq: msg.seq, result: 'ok' }), msg.keep);
}

function onTls(msg: TlsRotateMessage): void {
  try {
    own.rotate(msg);
  } catch (err) {
    // Refused: the master reports this worker as still serving the old certificates.
    void log().then((l) => l.error({ err }, 'could not apply the new certificates'));
    void send({ type: 'ack', seq: msg.seq, result: 'refused', reason: `could not apply the new certificates: ${err instanceof Error ? err.message : String(err)}` });
    return;
  }
  void send({ type: 'ack', seq: msg.seq, result: 'ok' });
}

function onClose(msg: CloseMessage): void {
  inherited?.stop(msg.addresses);
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
  if (msg.type === 'start') starting = start(msg);
  else if (msg.type === 'drain') onDrain(msg);
  else if (msg.type === 'tls') onTls(msg);
  else onClose(msg);
});

// The master is gone (even SIGKILLed): exit on purpose rather than linger
// as an orphan holding a listener nobody supervises.
process.on('disconnect', () => {
  void log().then((l) => l.warn('master went away; exiting'));
  setTimeout(() => process.exit(1), ORPHAN_DRAIN_MS + CLOSE_HOOK_MIN_MS + 200).unref();
  void startDrain(ORPHAN_DRAIN_MS);
});

process.on('SIGTERM', () => process.exit(0));
process.on('uncaughtException', (err) => void fail(PHASE[state], err));
