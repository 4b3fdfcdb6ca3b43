/**
 * TypeScript wrappers around load.mjs (run inside a Netns) and the fixture
 * HTTP server (fixture-server.mjs).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Netns } from './netns.ts';

export const LOAD_SCRIPT = fileURLToPath(new URL('./load.mjs', import.meta.url));
export const FIXTURE_SERVER = fileURLToPath(new URL('./fixture-server.mjs', import.meta.url));

/** load.mjs refuses to run longer than this, whatever the flags say. */
export const LOAD_HARD_CAP_MS = 120_000;

export type LoadMode = 'newconn' | 'keepalive' | 'hold';

export interface LoadOptions {
  /** http://127.0.0.1:PORT/path — loopback only */
  url: string;
  /** default 'newconn' */
  mode?: LoadMode;
  /** parallel request loops (newconn/keepalive); default 16 */
  concurrency?: number;
  /** total request cap (newconn/keepalive) */
  requests?: number;
  /** time cap in ms (newconn/keepalive); at least one of requests/duration */
  duration?: number;
  /** per-request (per-connection in hold mode) timeout, ms; default 5000 */
  timeout?: number;
  /** hold mode: number of raw connections */
  connections?: number;
  /** emit a 'failure' event ({ code, at }) per failed request */
  logErrors?: boolean;
  /** extra flags appended verbatim (for tests of the CLI itself) */
  extraArgs?: string[];
}

export interface LoadSummary {
  mode: LoadMode;
  /** finished requests: sum(statuses) + sum(errors) */
  requests: number;
  /** responses with status 200 */
  ok: number;
  /** per HTTP status, complete responses only */
  statuses: Record<string, number>;
  /** per error code: ECONNRESET, ECONNREFUSED, EOF, ETIMEDOUT, ABORTED, ... */
  errors: Record<string, number>;
  /** epoch ms of each error, in order (the first 10,000) */
  errorsAt: number[];
  /** how many of errors.ETIMEDOUT were the client's own --timeout */
  timeouts: number;
  elapsedMs: number;
  rps: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** per value of the x-handover-worker response header */
  workers: Record<string, number>;
  stoppedBy: 'requests' | 'duration' | 'stop-file' | 'signal' | 'signal-abort' | 'cap' | 'done';
  /** newconn/keepalive */
  concurrency?: number;
  /** hold: connections attempted / with the request written */
  connections?: number;
  sent?: number;
}

/** With `logErrors`: one per failed request. */
export interface FailureEvent {
  event: 'failure';
  code: string;
  /** wall-clock ms when it failed */
  at: number;
}

/** The first response from a worker (a value of the x-handover-worker header). */
export interface WorkerEvent {
  event: 'worker';
  worker: string;
}

export interface SentEvent {
  event: 'sent';
  /** connections connected with the request written */
  connections: number;
  /** connections that failed before the request was written */
  failed: number;
  elapsedMs: number;
}

export interface LoadHandle {
  /** resolves with the summary when load.mjs exits */
  done: Promise<LoadSummary>;
  /** stop issuing (stop-file, then SIGTERM, then SIGKILL), finish in-flight, resolve with the summary */
  stop(): Promise<LoadSummary>;
  /** 'sent' (SentEvent) in hold mode; 'worker' (WorkerEvent) at each worker's first answer; 'line' for every stdout line */
  events: EventEmitter;
  /** resolves when hold mode has written every request */
  sent: Promise<SentEvent>;
  child: ChildProcess;
  /** the --stop-file path (created by stop(), removed when load.mjs has exited) */
  stopFile: string;
}

/**
 * Resolves once each of `workers` (pids, as the worker header gives them)
 * has answered the load; rejects after `timeoutMs`, naming those that have
 * not. Call it right after startLoad(), before awaiting anything else.
 */
export function answeredBy(load: LoadHandle, workers: readonly (number | string)[], timeoutMs: number): Promise<void> {
  const waiting = new Set(workers.map(String));
  return new Promise((resolve, reject) => {
    const onWorker = (e: WorkerEvent): void => {
      waiting.delete(e.worker);
      if (waiting.size === 0) finish();
    };
    const timer = setTimeout(() => finish(new Error(`within ${timeoutMs} ms of the load's start, no answer from worker ${[...waiting].join(', ')}`)), timeoutMs);
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      load.events.off('worker', onWorker);
      if (err) reject(err);
      else resolve();
    };
    load.events.on('worker', onWorker);
    if (waiting.size === 0) finish();
  });
}

/** Total of all error counts. */
export function errorCount(s: LoadSummary): number {
  return Object.values(s.errors).reduce((a, b) => a + b, 0);
}

function loadArgs(opts: LoadOptions, stopFile: string | null): string[] {
  const a = ['--url', opts.url, '--mode', opts.mode ?? 'newconn'];
  if (opts.concurrency !== undefined) a.push('--concurrency', String(opts.concurrency));
  if (opts.requests !== undefined) a.push('--requests', String(opts.requests));
  if (opts.duration !== undefined) a.push('--duration', String(opts.duration));
  if (opts.timeout !== undefined) a.push('--timeout', String(opts.timeout));
  if (opts.connections !== undefined) a.push('--connections', String(opts.connections));
  if (stopFile) a.push('--stop-file', stopFile);
  if (opts.logErrors) a.push('--log-errors');
  if (opts.extraArgs) a.push(...opts.extraArgs);
  return a;
}

function waitClose(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Start load.mjs inside the namespace. */
export function startLoad(ns: Netns, opts: LoadOptions): LoadHandle {
  const stopFile = path.join(tmpdir(), `ho-load-${process.pid}-${randomBytes(4).toString('hex')}.stop`);
  const child = ns.spawn(process.execPath, [LOAD_SCRIPT, ...loadArgs(opts, stopFile)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events = new EventEmitter();
  let summary: LoadSummary | null = null;
  let stderr = '';
  const lines: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 64 * 1024) stderr += d;
  });
  const rl = createInterface({ input: child.stdout! });
  let resolveSent!: (e: SentEvent) => void;
  let rejectSent!: (e: Error) => void;
  const sent = new Promise<SentEvent>((res, rej) => {
    resolveSent = res;
    rejectSent = rej;
  });
  sent.catch(() => {}); // only an error if someone awaits it
  rl.on('line', (line) => {
    lines.push(line);
    events.emit('line', line);
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      return;
    }
    if (obj && typeof obj === 'object' && 'event' in obj) {
      const ev = obj as { event: string };
      events.emit(ev.event, obj);
      if (ev.event === 'sent') resolveSent(obj as SentEvent);
    } else {
      summary = obj as LoadSummary;
    }
  });

  // Watchdog: load.mjs stops itself within its caps; kill it if it does not.
  const capMs = Math.min(opts.duration ?? LOAD_HARD_CAP_MS, LOAD_HARD_CAP_MS) + (opts.timeout ?? 5000) + 15_000;
  const watchdog = setTimeout(() => {
    if (child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }, Math.min(capMs, LOAD_HARD_CAP_MS + 15_000));
  watchdog.unref();

  const done = new Promise<LoadSummary>((resolve, reject) => {
    child.once('error', (e) => {
      clearTimeout(watchdog);
      reject(e);
    });
    // 'close': stdout fully read
    child.once('close', (code, signal) => {
      clearTimeout(watchdog);
      rmSync(stopFile, { force: true });
      const err = (): Error =>
        new Error(
          `load.mjs exited ${code ?? signal}${summary ? '' : ' without a summary'}\nargs: ${loadArgs(opts, null).join(' ')}\nstdout: ${lines.join('\n')}\nstderr: ${stderr}`,
        );
      rejectSent(new Error('load.mjs ended before every request was sent'));
      if (code === 0 && summary) resolve(summary);
      else reject(err());
    });
  });

  let stopping: Promise<LoadSummary> | null = null;
  const stop = (): Promise<LoadSummary> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return done;
      writeFileSync(stopFile, '');
      done.then(
        () => rmSync(stopFile, { force: true }),
        () => rmSync(stopFile, { force: true }),
      );
      const grace = (opts.timeout ?? 5000) + 5000;
      if (!(await waitClose(child, grace)) && child.pid) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
        if (!(await waitClose(child, 3000)) && child.pid) {
          try {
            process.kill(child.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
      return done;
    })();
    return stopping;
  };

  return { done, stop, events, sent, child, stopFile };
}

/** Run load.mjs inside the namespace to completion. */
export function runLoad(ns: Netns, opts: LoadOptions): Promise<LoadSummary> {
  return startLoad(ns, opts).done;
}

// ---------------------------------------------------------------------------
// fixture server

export interface FixtureServer {
  port: number;
  pid: number;
  child: ChildProcess;
  url(pathname?: string): string;
  /** SIGTERM, then SIGKILL after 3 s */
  stop(): Promise<void>;
}

export interface FixtureServerOptions {
  port?: number;
  host?: string;
  backlog?: number;
  /** how long to wait for "listening"; default 10 s */
  startTimeoutMs?: number;
}

/** Wait for the first stdout line of `child` that parses as JSON and satisfies `pred`. */
export function waitForJsonLine<T = Record<string, unknown>>(
  child: ChildProcess,
  pred: (o: Record<string, unknown>) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let stderr = '';
    const onErr = (d: Buffer): void => {
      stderr += d.toString();
    };
    child.stderr?.on('data', onErr);
    const rl = createInterface({ input: child.stdout! });
    const cleanup = (): void => {
      clearTimeout(timer);
      rl.close();
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no matching line within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    const onExit = (code: number | null, sig: string | null): void => {
      cleanup();
      reject(new Error(`process exited (${code ?? sig}) before the expected line; stderr: ${stderr}`));
    };
    child.once('exit', onExit);
    rl.on('line', (line) => {
      try {
        const o = JSON.parse(line) as Record<string, unknown>;
        if (o && typeof o === 'object' && pred(o)) {
          cleanup();
          resolve(o as T);
        }
      } catch {
        /* not JSON */
      }
    });
  });
}

/** Start fixture-server.mjs inside the namespace and wait until it listens. */
export async function startFixtureServer(ns: Netns, opts: FixtureServerOptions = {}): Promise<FixtureServer> {
  const args = [FIXTURE_SERVER, '--exit-on-stdin-end'];
  if (opts.port !== undefined) args.push('--port', String(opts.port));
  if (opts.host !== undefined) args.push('--host', opts.host);
  if (opts.backlog !== undefined) args.push('--backlog', String(opts.backlog));
  const child = ns.spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const host = opts.host ?? '127.0.0.1';
  try {
    const ready = await waitForJsonLine<{ port: number; pid: number }>(child, (o) => o.event === 'listening', opts.startTimeoutMs ?? 10_000);
    child.stdout!.resume(); // keep draining
    const hostPart = host.includes(':') ? `[${host}]` : host;
    return {
      port: ready.port,
      pid: ready.pid,
      child,
      url: (p = '/') => `http://${hostPart}:${ready.port}${p}`,
      stop: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGCONT');
        child.kill('SIGTERM');
        if (!(await waitClose(child, 3000))) {
          child.kill('SIGKILL');
          await waitClose(child, 2000);
        }
      },
    };
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
}
