// Scenarios 1, 2 and 6: keep-alive and new-connection throughput with
// latency percentiles, and the master's CPU and RSS at idle and under load.
// One start per contender and repeat: idle window, warm-up, keep-alive run,
// warm-up, new-connection run, stop.
import { CONTENDERS } from '../contenders/index.js';
import type { Contender } from '../contenders/contender.js';
import { rssMiB, treeRssMiB } from '../lib/procfs.js';
import { push, type MasterCost, type ThroughputRun } from '../lib/results.js';
import { contenderCpuMs, masterSelfMs, sleep, type Ctx } from './context.js';

export async function throughput(ctx: Ctx): Promise<void> {
  const { d } = ctx.o;
  const ids = CONTENDERS.filter((id) => ctx.o.contenders.includes(id));
  for (let repeat = 0; repeat < ctx.o.repeats; repeat++) {
    for (const id of ctx.order(ids, repeat)) {
      const c = ctx.contender(id);
      try {
        await c.start();
        const idle = await idleWindow(c, d.idleS);
        for (const newConnection of [false, true]) {
          await ctx.wrk(c.options.port, d.warmupS, newConnection, false);
          const run = await measured(ctx, c, newConnection, repeat, idle);
          push(ctx.results.throughput[newConnection ? 'newconn' : 'keepalive'], id, run);
          await ctx.note(c, `throughput ${id} #${repeat + 1} ${newConnection ? 'new connection' : 'keep-alive'}`);
          ctx.log(`  ${id} ${newConnection ? 'new conn' : 'keep-alive'} #${repeat + 1}: ${run.rps.toFixed(0)} req/s, p99 ${run.latency.p99.toFixed(2)} ms`);
        }
      } catch (err) {
        ctx.results.errors.push(`throughput ${id} #${repeat + 1}: ${String(err)}`);
        ctx.log(`  ${id}: FAILED ${String(err).split('\n')[0]}`);
      } finally {
        await c.stop();
      }
    }
  }
}

interface Idle {
  readonly cpuPct: number;
  readonly rssMiB: number;
}

async function idleWindow(c: Contender, seconds: number): Promise<Idle | undefined> {
  const pid = c.masterPid();
  if (pid === undefined) return undefined;
  await sleep(500); // start-up work (first logs, timers) out of the window
  const before = masterSelfMs(c);
  const started = performance.now();
  await sleep(seconds * 1000);
  const cpuPct = ((masterSelfMs(c) - before) / (performance.now() - started)) * 100;
  return { cpuPct, rssMiB: rssMiB(pid) ?? Number.NaN };
}

async function measured(ctx: Ctx, c: Contender, newConnection: boolean, repeat: number, idle: Idle | undefined): Promise<ThroughputRun> {
  const cpu0 = contenderCpuMs(c);
  const master0 = masterSelfMs(c);
  const started = performance.now();
  const w = await ctx.wrk(c.options.port, ctx.o.d.throughputS, newConnection, false);
  const elapsed = performance.now() - started;
  const pid = c.masterPid();
  const master: MasterCost | undefined =
    pid === undefined || idle === undefined
      ? undefined
      : {
          idleCpuPct: idle.cpuPct,
          idleRssMiB: idle.rssMiB,
          loadCpuPct: ((masterSelfMs(c) - master0) / elapsed) * 100,
          loadRssMiB: rssMiB(pid) ?? Number.NaN,
          treeRssMiB: (rssMiB(pid) ?? 0) + treeRssMiB(pid),
        };
  return {
    repeat,
    rps: w.rps,
    latency: w.latency,
    errors: w.errors,
    serverCpuMsPerS: ((contenderCpuMs(c) - cpu0) / elapsed) * 1000,
    ...(master ? { master } : {}),
  };
}
