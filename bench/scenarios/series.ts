// What scenarios 3 and 4 share: a reload every second while load runs, each
// reload marked on the timeline (requested, and when the caller's wait
// ended), and the bench's own client counting every failure by kind.
import { fileURLToPath } from 'node:url';
import type { Contender } from '../contenders/contender.js';
import { descendants, processCpu } from '../lib/procfs.js';
import type { ClientRun, ReloadMark } from '../lib/results.js';
import { sleep, type Ctx } from './context.js';

const CLIENT = fileURLToPath(new URL('../lib/client.mjs', import.meta.url));
/** The client's per-request deadline (a request with no answer by then is a timeout). */
export const CLIENT_TIMEOUT_MS = 2000;

export interface Series {
  readonly marks: ReloadMark[];
  readonly commandCpuMs: number;
  readonly failed: number;
  /** Processes seen in the contender's trees that were not there at the start. */
  readonly newPids: number;
  /** The new processes' own CPU when the reload that started them ended (start-up, up to ready). */
  readonly startupMs: number;
}

/**
 * Reloads `c` every `everyMs` until `untilEpochMs`; a reload that overruns
 * its second is followed by the next at once. `before` runs before each
 * reload (e.g. swapping certificate files). Also watches the contender's
 * trees for new processes.
 */
export async function reloadEverySecond(
  ctx: Ctx,
  c: Contender,
  untilEpochMs: number,
  before?: () => Promise<void> | void,
): Promise<Series> {
  const tree = (): number[] => c.roots().flatMap((r) => [r, ...descendants(r)]);
  const initial = new Set<number>(tree());
  const seen = new Set<number>(initial);
  const counted = new Set<number>(initial);
  let startupMs = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const r of c.roots()) for (const pid of descendants(r)) seen.add(pid);
      await sleep(200);
    }
  })();
  const marks: ReloadMark[] = [];
  let commandCpuMs = 0;
  let failed = 0;
  let next = Date.now() + ctx.o.reloadEveryMs;
  for (;;) {
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
    if (Date.now() >= untilEpochMs) break;
    await before?.();
    const at = Date.now();
    const t = await c.reload();
    for (const pid of tree()) {
      if (counted.has(pid)) continue;
      counted.add(pid);
      startupMs += processCpu(pid)?.selfMs ?? 0;
    }
    marks.push({ at, end: Date.now(), ok: t.ok, ...(t.error ? { error: t.error } : {}) });
    if (!t.ok) failed++;
    commandCpuMs += Number.isFinite(t.commandCpuMs) ? (t.commandCpuMs ?? 0) : 0;
    next = Math.max(next + ctx.o.reloadEveryMs, Date.now());
  }
  sampling = false;
  await sampler;
  return { marks, commandCpuMs, failed, newPids: seen.size - initial.size, startupMs };
}

/** Runs the bench's client against `port` for `seconds` while `during()` runs; returns its counts. */
export async function clientWhile(
  ctx: Ctx,
  port: number,
  seconds: number,
  tls: boolean,
  during: (untilEpochMs: number) => Promise<Series>,
): Promise<ClientRun> {
  const half = Math.max(1, Math.floor(ctx.o.connections / 2));
  const args = [CLIENT, '--port', String(port), '--keepalive', String(half), '--newconn', String(half),
    '--duration', String(seconds * 1000), '--timeout', String(CLIENT_TIMEOUT_MS), ...(tls ? ['--tls'] : [])];
  const until = Date.now() + seconds * 1000;
  const client = ctx.box.run('load', process.execPath, args, (seconds + 30) * 1000);
  const series = await during(until);
  const r = await client;
  if (r.code !== 0) throw new Error(`client exited ${r.code}: ${r.stderr.trim()}`);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Omit<ClientRun, 'marks' | 'reloads'>;
  return { ...out, marks: series.marks, reloads: series.marks.length };
}

export function clientFailures(run: ClientRun, mode?: 'keepalive' | 'newconn'): number {
  const modes = mode ? [run.modes[mode]] : Object.values(run.modes);
  return modes.reduce((n, m) => n + Object.values(m.failed).reduce((a, b) => a + b, 0), 0);
}
