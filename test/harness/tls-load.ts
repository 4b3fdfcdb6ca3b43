/**
 * TypeScript wrapper around tls-load.mjs: HTTPS / HTTP/2 load that reports
 * the certificate serial behind every answer. Runs inside a Netns, or in the
 * test's own namespace for tests that need no root.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Netns } from './netns.ts';

export const TLS_LOAD_SCRIPT = fileURLToPath(new URL('./tls-load.mjs', import.meta.url));

export type TlsLoadMode = 'h1' | 'h1-keepalive' | 'h2' | 'h2-hold';

export interface TlsLoadOptions {
  /** https://127.0.0.1:PORT/; several: request loop i goes to url i mod n */
  url: string | readonly string[];
  /** CA file the client trusts. */
  ca: string;
  servername?: string;
  mode: TlsLoadMode;
  concurrency?: number;
  /** ms; the client stops by itself after this (default 10 s, at most 120 s). */
  duration?: number;
  timeout?: number;
  /** every Nth request goes to /slow?ms=slowMs */
  slowEvery?: number;
  slowMs?: number;
  /** h2-hold: streams held open on one session */
  streams?: number;
}

export interface SerialSeen {
  count: number;
  first: number;
  last: number;
}

export interface TlsLoadSummary {
  mode: TlsLoadMode;
  requests: number;
  ok: number;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  /** h2 streams refused by a GOAWAY before the server processed them, retried */
  retried: number;
  serials: Record<string, SerialSeen>;
  protocols: Record<string, number>;
  slow: { sent: number; ok: number };
  goaways: number;
  elapsedMs: number;
  workers: Record<string, number>;
}

export interface TlsLoadHandle {
  done: Promise<TlsLoadSummary>;
  stop(): Promise<TlsLoadSummary>;
  /** Resolves with the epoch ms at which `serial` first answered. */
  firstSeen(serial: string, timeoutMs: number): Promise<number>;
  /** h2-hold: all streams open */
  sent: Promise<void>;
  child: ChildProcess;
}

export function tlsErrors(s: TlsLoadSummary): number {
  return Object.values(s.errors).reduce((a, b) => a + b, 0);
}

function args(o: TlsLoadOptions, stopFile: string): string[] {
  const a = [...(typeof o.url === 'string' ? [o.url] : o.url).flatMap((u) => ['--url', u]), '--ca', o.ca, '--mode', o.mode, '--stop-file', stopFile];
  if (o.servername) a.push('--servername', o.servername);
  if (o.concurrency !== undefined) a.push('--concurrency', String(o.concurrency));
  a.push('--duration', String(o.duration ?? 10_000));
  if (o.timeout !== undefined) a.push('--timeout', String(o.timeout));
  if (o.slowEvery !== undefined) a.push('--slow-every', String(o.slowEvery));
  if (o.slowMs !== undefined) a.push('--slow-ms', String(o.slowMs));
  if (o.streams !== undefined) a.push('--streams', String(o.streams));
  return a;
}

export function startTlsLoad(ns: Netns | undefined, o: TlsLoadOptions): TlsLoadHandle {
  const stopFile = path.join(tmpdir(), `ho-tls-load-${process.pid}-${randomBytes(4).toString('hex')}.stop`);
  const argv = [TLS_LOAD_SCRIPT, ...args(o, stopFile)];
  const opts = { stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'] };
  const child = ns ? ns.spawn(process.execPath, argv, opts) : spawn(process.execPath, argv, opts);
  const events = new EventEmitter();
  const seen = new Map<string, number>();
  let summary: TlsLoadSummary | undefined;
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let resolveSent!: () => void;
  const sent = new Promise<void>((r) => (resolveSent = r));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (obj['event'] === 'serial') {
      seen.set(String(obj['serial']), Number(obj['at']));
      events.emit('serial');
    } else if (obj['event'] === 'sent') resolveSent();
    else summary = obj as unknown as TlsLoadSummary;
  });
  // The client stops itself at its duration; this is the backstop.
  const watchdog = setTimeout(() => child.kill('SIGKILL'), Math.min(o.duration ?? 10_000, 120_000) + 30_000);
  watchdog.unref();
  const done = new Promise<TlsLoadSummary>((resolve, reject) => {
    child.once('close', (code, signal) => {
      clearTimeout(watchdog);
      rmSync(stopFile, { force: true });
      if (code === 0 && summary) resolve(summary);
      else reject(new Error(`tls-load.mjs exited ${code ?? signal} without a summary; stderr: ${stderr}`));
    });
  });
  done.catch(() => {});
  return {
    done,
    child,
    sent,
    stop: () => {
      writeFileSync(stopFile, '');
      const kill = setTimeout(() => child.kill('SIGTERM'), (o.timeout ?? 5_000) + 5_000);
      return done.finally(() => clearTimeout(kill));
    },
    firstSeen: (serial, timeoutMs) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const at = seen.get(serial);
          if (at === undefined) return;
          cleanup();
          resolve(at);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`serial ${serial} not served within ${timeoutMs} ms (seen: ${[...seen.keys()].join(', ')})`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          events.off('serial', check);
        };
        events.on('serial', check);
        check();
      }),
  };
}
