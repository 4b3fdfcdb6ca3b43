// Scenarios 1, 2 and 6: keep-alive and new-connection throughput with
// latency percentiles, and the master's CPU and RSS at idle and under load.
//
// Every contender is started first and stays up, idle, while the others are
// measured; then each round runs every contender once, in an order rotated
// per round, for a few seconds each. The two runs a ratio compares are thus
// seconds apart, not minutes: a shared machine drifts by a quarter or more
// over minutes (other tenants), and with one start per contender and repeat
// that drift, not the contenders, made the spread of the ratios. An idle
// contender costs the one under load nothing measurable (its master's idle
// CPU is in the table: well under 1% of a core).
import { CONTENDERS, type ContenderId } from '../contenders/index.js';
import type { Contender } from '../contenders/contender.js';
import { rssMiB, treeRssMiB } from '../lib/procfs.js';
import { push, type MasterCost, type ThroughputRun } from '../lib/results.js';
import { contenderCpuMs, masterSelfMs, sleep, type Ctx } from './context.js';

export async function throughput(ctx: Ctx): Promise<void> {
  const { d } = ctx.o;
  const ids = CONTENDERS.filter((id) => ctx.o.contenders.includes(id));
  const up: { readonly id: ContenderId; readonly c: Contender }[] = [];
  try {
    for (const id of ids) {
      const c = ctx.contender(id);
      try {
        await c.start();
        up.push({ id, c });
      } catch (err) {
        ctx.results.errors.push(`throughput ${id}: ${String(err)}`);
        ctx.log(`  ${id}: FAILED to start: ${String(err).split('\n')[0]}`);
        await c.stop();
      }
    }
    const idle = await idleWindow(up.map((u) => u.c), d.idleS);
    for (const newConnection of [false, true]) {
      const mode = newConnection ? 'new connection' : 'keep-alive';
      for (const { c } of up) await ctx.wrk(c.options.port, d.warmupS, newConnection, false);
      for (let round = 0; round < d.throughputRounds; round++) {
        for (const { id, c } of ctx.order(up, round)) {
          try {
            const run = await measured(ctx, c, newConnection, round, idle.get(c));
            push(ctx.results.throughput[newConnection ? 'newconn' : 'keepalive'], id, run);
            await ctx.note(c, `throughput ${c.id} round ${round + 1} ${mode}`);
            ctx.log(`  ${c.id} ${mode} round ${round + 1}: ${run.rps.toFixed(0)} req/s, p99 ${run.latency.p99.toFixed(2)} ms`);
          } catch (err) {
            ctx.results.errors.push(`throughput ${c.id} round ${round + 1} ${mode}: ${String(err)}`);
            ctx.log(`  ${c.id}: FAILED ${String(err).split('\n')[0]}`);
          }
        }
      }
    }
  } finally {
    for (const { c } of up) await c.stop();
  }
}

interface Idle {
  readonly cpuPct: number;
  readonly rssMiB: number;
}

/** Every master's CPU over one window with all contenders idle, and its RSS at the end. */
async function idleWindow(up: readonly Contender[], seconds: number): Promise<Map<Contender, Idle>> {
  await sleep(500); // start-up work (first logs, timers) out of the window
  const before = new Map(up.map((c) => [c, masterSelfMs(c)]));
  const started = performance.now();
  await sleep(seconds * 1000);
  const elapsed = performance.now() - started;
  const idle = new Map<Contender, Idle>();
  for (const c of up) {
    const pid = c.masterPid();
    if (pid === undefined) continue;
    idle.set(c, { cpuPct: ((masterSelfMs(c) - before.get(c)!) / elapsed) * 100, rssMiB: rssMiB(pid) ?? Number.NaN });
  }
  return idle;
}

async function measured(ctx: Ctx, c: Contender, newConnection: boolean, round: number, idle: Idle | undefined): Promise<ThroughputRun> {
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
    repeat: round,
    rps: w.rps,
    latency: w.latency,
    errors: w.errors,
    serverCpuMsPerS: ((contenderCpuMs(c) - cpu0) / elapsed) * 1000,
    ...(master ? { master } : {}),
  };
}
