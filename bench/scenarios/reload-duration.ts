// Scenario 5: how long a reload takes, at idle. For handover (migrate and
// inherit, each with `settle: 0s` and with the build's default): the CLI's
// wall time (`handover reload`, as a caller waits) and the report's
// durationMs (and settleMs once reports carry it), interleaved with the
// baselines measured in the same run: one handover worker alone, spawn to
// ready; as many handover workers as a generation has, spawned at once,
// spawn to the last ready (what a reload's spawning costs at the least on
// these CPUs); and one bare SO_REUSEPORT process, spawn to listening. The
// workers are started confined, as the master starts them. The other
// contenders' reloads (signal to "reloaded", `pm2 reload`) for comparison.
// No load generator runs here, so nothing is pinned: a generation's workers
// start side by side on every CPU, as on a machine of this size; pinned to
// the servers' one CPU, two workers took twice one worker's time, and the
// ratio to one worker measured that.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, SERVERS, type Contender } from '../contenders/contender.js';
import { Handover, type Strategy } from '../contenders/handover.js';
import type { ContenderId } from '../contenders/index.js';
import { Reuseport } from '../contenders/reuseport.js';
import { drained } from '../lib/control.js';
import { CLK_TCK } from '../lib/procfs.js';
import type { DurationResults, DurationSamples } from '../lib/results.js';
import { percentile } from '../lib/stats.js';
import { sleep, type Ctx } from './context.js';

const BARE_WORKER = fileURLToPath(new URL('../lib/bare-worker.mjs', import.meta.url));
const WARMUP_RELOADS = 2;
const DRAIN_WAIT_MS = 5_000;
/** Between measurements, so that exiting processes do not overlap the next one. */
const PAUSE_MS = 100;

/** What this scenario writes: always with the generation baseline (results from before it may lack it). */
type Durations = DurationResults & { readonly generationMs: number[] };

interface Config {
  readonly key: string;
  readonly id: ContenderId;
  readonly strategy?: Strategy;
  readonly settle?: string;
}

/** The `reload.settle` default of this build, from its config schema. */
export function settleDefault(): string {
  const file = join(ROOT, 'config/handover.schema.json');
  if (!existsSync(file)) return '?';
  const schema = JSON.parse(readFileSync(file, 'utf8')) as { properties?: { reload?: { properties?: { settle?: { default?: unknown } } } } };
  return String(schema.properties?.reload?.properties?.settle?.default ?? '?');
}

function configs(ctx: Ctx): Config[] {
  const all: Config[] = [];
  for (const strategy of ['migrate', 'inherit'] as const) {
    const id: ContenderId = `handover-${strategy}`;
    if (!ctx.o.contenders.includes(id)) continue;
    all.push({ key: `${id} settle 0s`, id, strategy, settle: '0s' }, { key: `${id} settle default`, id, strategy });
  }
  for (const id of ['cluster-none', 'cluster-rr', 'pm2'] as const) if (ctx.o.contenders.includes(id)) all.push({ key: id, id });
  return all;
}

/** At idle: no load generator runs, so the servers (and the baselines) may use every CPU (Box.idleServers). */
export function reloadDuration(ctx: Ctx): Promise<void> {
  return ctx.box.idleServers(() => measureAll(ctx));
}

async function measureAll(ctx: Ctx): Promise<void> {
  const results: Durations = { configs: {}, bareWorkerMs: [], bareWorkerCpuMs: [], generationMs: [], generationWorkers: ctx.o.workers, reuseportMs: [], settleDefault: settleDefault(), unpinned: ctx.box.serversCpus === null };
  ctx.results.duration = results;
  const all = configs(ctx);
  for (let repeat = 0; repeat < ctx.o.repeats; repeat++) {
    for (const cfg of ctx.order(all, repeat)) {
      const samples = (results.configs[cfg.key] ??= { wallMs: [], durationMs: [], settleMs: [], commandCpuMs: [], failed: 0, repeatP50: [] });
      const c = cfg.strategy ? ctx.contender(cfg.id, cfg.settle ? { settle: cfg.settle } : {}) : ctx.contender(cfg.id);
      try {
        await c.start();
        const walls = await measure(ctx, c, samples, results);
        await ctx.note(c, `reload duration ${cfg.key} #${repeat + 1}`);
        samples.repeatP50.push(percentile([...walls].sort((a, b) => a - b), 50));
        ctx.log(`  ${cfg.key} #${repeat + 1}: reload p50 ${samples.repeatP50.at(-1)!.toFixed(0)} ms as the caller waits`);
      } catch (err) {
        ctx.results.errors.push(`reload duration ${cfg.key} #${repeat + 1}: ${String(err)}`);
        ctx.log(`  ${cfg.key}: FAILED ${String(err).split('\n')[0]}`);
      } finally {
        await c.stop();
      }
    }
  }
}

async function measure(ctx: Ctx, c: Contender, s: DurationSamples, results: Durations): Promise<number[]> {
  const walls: number[] = [];
  const handover = c instanceof Handover ? c : undefined;
  for (let i = -WARMUP_RELOADS; i < ctx.o.d.reloads; i++) {
    const keep = i >= 0;
    if (handover) {
      // The baselines, interleaved with the reloads so that a drifting machine slows both alike.
      const bare = await bareWorkers(ctx, 1);
      const generation = await bareWorkers(ctx, ctx.o.workers);
      const spawnMs = await reuseportSpawn(ctx);
      if (keep) {
        results.bareWorkerMs.push(bare.ms);
        results.bareWorkerCpuMs.push(bare.cpuMs);
        results.generationMs.push(generation.ms);
        results.reuseportMs.push(spawnMs);
      }
      await sleep(PAUSE_MS);
    }
    const t = await c.reload();
    if (handover) await drained(handover.socket, DRAIN_WAIT_MS);
    await sleep(PAUSE_MS);
    if (!keep) continue;
    if (!t.ok) {
      s.failed++;
      continue;
    }
    walls.push(t.wallMs);
    s.wallMs.push(t.wallMs);
    if (t.durationMs !== undefined) s.durationMs.push(t.durationMs);
    if (t.settleMs !== undefined) s.settleMs.push(t.settleMs);
    if (t.commandCpuMs !== undefined && Number.isFinite(t.commandCpuMs)) s.commandCpuMs.push(t.commandCpuMs);
  }
  return walls;
}

/** `count` handover workers spawned at once with no master: spawn to the last one's ready, and their CPU by then. */
async function bareWorkers(ctx: Ctx, count: number): Promise<{ ms: number; cpuMs: number }> {
  const r = await ctx.box.run('servers', process.execPath, [BARE_WORKER, join(SERVERS, 'ok.mjs'), String(CLK_TCK), String(count)], 30_000);
  if (r.code !== 0) throw new Error(`bare worker: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout.trim()) as { ms: number; cpuMs: number };
}

async function reuseportSpawn(ctx: Ctx): Promise<number> {
  const c = ctx.contender('reuseport', { workers: 1 });
  if (!(c instanceof Reuseport)) throw new Error('reuseport contender expected');
  try {
    return await c.spawnOne();
  } finally {
    await c.stop();
  }
}
