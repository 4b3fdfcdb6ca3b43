// Head to head: two contenders loaded at the same time, on the same server
// CPU, each in a CPU cgroup of its own with equal weights. The ratio of
// their rates in one round is then taken over the same seconds of the same
// machine, and each pays for its own master and helpers out of its own half.
// The throughput scenario (1, 2) measures one contender at a time, seconds
// apart; on this shared machine its rounds move by ±25% from one run to the
// next, enough to hide a 5% difference either way, so the issue's
// throughput targets are held against these pairs. An A/A pair (handover
// against itself) shows what the method itself reads.
//
// Used by `npm run bench` (scenario "pairs") and by bench/head-to-head.ts.
import type { Contender } from '../contenders/contender.js';
import { makeContender, type ContenderId } from '../contenders/index.js';
import type { Box } from '../lib/box.js';
import { descendants } from '../lib/procfs.js';
import type { PairResult } from '../lib/results.js';
import { spread } from '../lib/stats.js';
import { runWrk, wrkErrorTotal } from '../lib/wrk.js';
import { contenderCpuMs, WRK_TIMEOUT_S, type Ctx } from './context.js';

/** wrk connections per side. */
export const PAIR_CONNECTIONS = 64;
const WARMUP_S = 2;

export interface PairOptions {
  readonly rounds: number;
  readonly seconds: number;
  readonly newConnection: boolean;
  readonly workers: number;
  /** Two free ports from here. */
  readonly port: number;
  readonly log: (line: string) => void;
}

/** a against b, `rounds` rounds of `seconds` each, both loaded at once. */
export async function measurePair(box: Box, script: string, a: ContenderId, b: ContenderId, o: PairOptions): Promise<PairResult> {
  const started: Contender[] = [];
  try {
    const sides = [a, b].map((id, i) => makeContender(id, box, { port: o.port + i, workers: o.workers }));
    for (const [i, c] of sides.entries()) {
      await c.start();
      started.push(c);
      const group = box.serverGroup(`${i === 0 ? 'a' : 'b'}-${o.port}`);
      if (!group) throw new Error('no CPU cgroup below the servers\' group: the two sides would not get equal shares');
      group.adopt(c.roots().flatMap((root) => [root, ...descendants(root)]));
    }
    const wrk = (c: Contender, s: number) =>
      runWrk((cmd, args, timeoutMs) => box.run('load', cmd, args, timeoutMs), {
        url: `http://127.0.0.1:${c.options.port}/`,
        threads: 1, // one wrk per side, both on the load CPUs
        connections: PAIR_CONNECTIONS,
        seconds: s,
        newConnection: o.newConnection,
        script,
        timeoutSeconds: WRK_TIMEOUT_S,
      });
    await Promise.all(sides.map((c) => wrk(c, WARMUP_S)));
    const rps: [number[], number[]] = [[], []];
    const ratios: number[] = [];
    const shares: number[] = [];
    let errors = 0;
    for (let round = 0; round < o.rounds; round++) {
      const cpu0 = sides.map(contenderCpuMs);
      const runs = await Promise.all(sides.map((c) => wrk(c, o.seconds)));
      const cpu = sides.map((c, i) => contenderCpuMs(c) - cpu0[i]!);
      runs.forEach((r, i) => rps[i]!.push(r.rps));
      errors += runs.reduce((sum, r) => sum + wrkErrorTotal(r.errors), 0);
      ratios.push(runs[0]!.rps / runs[1]!.rps);
      shares.push(cpu[0]! / cpu[1]!);
      o.log(`  ${a} ${runs[0]!.rps.toFixed(0)} req/s (${cpu[0]!.toFixed(0)} ms CPU), ${b} ${runs[1]!.rps.toFixed(0)} (${cpu[1]!.toFixed(0)} ms): ${ratios.at(-1)!.toFixed(3)}`);
    }
    const mode = o.newConnection ? 'newconn' : 'keepalive';
    return { a, b, mode, ratio: spread(ratios), rps: { a: rps[0], b: rps[1] }, cpuShare: spread(shares), errors };
  } finally {
    for (const c of started) await c.stop();
  }
}

const RIVALS: readonly ContenderId[] = ['reuseport', 'cluster-none', 'cluster-rr', 'pm2'];

/**
 * The pairs `npm run bench` measures: handover (migrate) against itself, and
 * each strategy against each rival of the throughput targets.
 */
export const BENCH_PAIRS: readonly (readonly [ContenderId, ContenderId])[] = [
  ['handover-migrate', 'handover-migrate'],
  ...(['handover-migrate', 'handover-inherit'] as const).flatMap((h) => RIVALS.map((rival) => [h, rival] as const)),
];

/** The scenario: every pair whose two contenders are in the run, keep-alive and new connection. */
export async function pairs(ctx: Ctx): Promise<void> {
  const results: PairResult[] = (ctx.results.pairs ??= []);
  const chosen = BENCH_PAIRS.filter(([a, b]) => ctx.o.contenders.includes(a) && ctx.o.contenders.includes(b));
  for (const newConnection of [false, true]) {
    for (const [a, b] of chosen) {
      const mode = newConnection ? 'new connection' : 'keep-alive';
      ctx.log(`  ${a} against ${b}, ${mode}, ${ctx.o.d.pairRounds} rounds of ${ctx.o.d.pairS} s`);
      try {
        const r = await measurePair(ctx.box, ctx.scripts.plain, a, b, {
          rounds: ctx.o.d.pairRounds,
          seconds: ctx.o.d.pairS,
          newConnection,
          workers: ctx.o.workers,
          port: ctx.ports(2),
          log: () => {},
        });
        results.push(r);
        ctx.log(`  ${a} ÷ ${b} (${mode}): ${r.ratio.median.toFixed(3)} [${r.ratio.min.toFixed(2)}–${r.ratio.max.toFixed(2)}], CPU split ${r.cpuShare.median.toFixed(2)}, ${r.errors} errors`);
      } catch (err) {
        ctx.results.errors.push(`head to head ${a} ÷ ${b} (${mode}): ${String(err)}`);
        ctx.log(`  ${a} ÷ ${b} (${mode}): FAILED ${String(err).split('\n')[0]}`);
      }
    }
  }
}
