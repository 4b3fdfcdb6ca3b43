// Scenario 3: reload under load. Per contender and repeat: a calm keep-alive
// run (the same contender without reloads, right before), then wrk
// keep-alive while the contender is reloaded every second (throughput,
// wrk's error categories, requests per time bucket, CPU by who spent it),
// then the bench's own client (half keep-alive, half a new connection per
// request) through another series, counting every failure by kind.
import { RELOADING } from '../contenders/index.js';
import type { Contender } from '../contenders/contender.js';
import { push, type SeriesRun } from '../lib/results.js';
import { wrkErrorTotal } from '../lib/wrk.js';
import { contenderCpuMs, masterSelfMs, sleep, type Ctx } from './context.js';
import { clientFailures, clientWhile, reloadEverySecond } from './series.js';

/** Between the wrk series and the client's: the old generations finish draining. */
const BETWEEN_SERIES_MS = 3000;

export async function reloadSeries(ctx: Ctx): Promise<void> {
  const ids = RELOADING.filter((id) => ctx.o.contenders.includes(id));
  for (let repeat = 0; repeat < ctx.o.repeats; repeat++) {
    for (const id of ctx.order(ids, repeat)) {
      const c = ctx.contender(id);
      try {
        await c.start();
        const run = await oneRun(ctx, c, repeat);
        push(ctx.results.reloadSeries, id, run);
        await ctx.note(c, `reload series ${id} #${repeat + 1}`);
        ctx.log(
          `  ${id} #${repeat + 1}: ${run.rps.toFixed(0)} req/s during ${run.reloads} reloads (${((run.rps / run.calmRps) * 100).toFixed(0)}% of calm), ` +
            `wrk errors ${wrkErrorTotal(run.errors)}, client failures ${run.kinds ? clientFailures(run.kinds) : '-'}`,
        );
      } catch (err) {
        ctx.results.errors.push(`reload series ${id} #${repeat + 1}: ${String(err)}`);
        ctx.log(`  ${id}: FAILED ${String(err).split('\n')[0]}`);
      } finally {
        await c.stop();
      }
    }
  }
}

async function oneRun(ctx: Ctx, c: Contender, repeat: number): Promise<SeriesRun> {
  const { d } = ctx.o;
  const port = c.options.port;
  await ctx.wrk(port, d.warmupS, false, false);

  const calmCpu0 = contenderCpuMs(c);
  const calmMaster0 = masterSelfMs(c);
  const calm = await ctx.wrk(port, d.calmS, false, true);
  const calmCpuMs = contenderCpuMs(c) - calmCpu0;
  const calmMasterMs = masterSelfMs(c) - calmMaster0;
  const calmWorkersMs = calmCpuMs - (Number.isFinite(calmMasterMs) ? calmMasterMs : 0);

  const cpu0 = contenderCpuMs(c);
  const master0 = masterSelfMs(c);
  const until = Date.now() + d.seriesS * 1000;
  const [w, series] = await Promise.all([ctx.wrk(port, d.seriesS, false, true), reloadEverySecond(ctx, c, until)]);
  const totalMs = contenderCpuMs(c) - cpu0;
  const masterMs = masterSelfMs(c) - master0;

  await sleep(BETWEEN_SERIES_MS);
  const kinds = await clientWhile(ctx, port, d.seriesS, false, (end) => reloadEverySecond(ctx, c, end));

  return {
    repeat,
    calmRps: calm.rps,
    calmCpuMs,
    calmSeconds: calm.durationMs / 1000,
    rps: w.rps,
    seconds: w.durationMs / 1000,
    requests: w.requests,
    errors: w.errors,
    reloads: series.marks.length,
    reloadsFailed: series.failed,
    cpu: {
      totalMs,
      masterMs: Number.isFinite(masterMs) ? masterMs : 0,
      commandMs: series.commandCpuMs,
      startupMs: series.startupMs,
      workersStarted: series.newPids,
      calmCpuPerRequestMs: calm.requests > 0 ? calmWorkersMs / calm.requests : Number.NaN,
    },
    marks: series.marks,
    timeline: w.timeline,
    kinds,
  };
}
