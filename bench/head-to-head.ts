// Two contenders loaded at the same time, on the same server CPU, each in a
// CPU cgroup of its own with equal weights: the ratio of their rates in one
// round is then taken over the same seconds of the same machine, and each
// pays for its own master and helpers out of its own half. The throughput
// scenario of `npm run bench` measures one contender at a time, seconds
// apart; on this shared machine its keep-alive rounds move by ±25% from one
// run to the next, enough to hide a 5% difference in either direction.
//
//   node --import tsx bench/head-to-head.ts [--pair a,b ...] [--rounds 11] [--seconds 4]
//                                           [--mode keepalive|newconn] [--json]
//
// --pair may be given several times (default: reuseport,cluster-none and
// handover-migrate,reuseport). An A/A pair (a contender against itself) shows
// what the method itself reads. Prints per pair the median of the per-round
// ratios a ÷ b with their range, and each side's CPU per round (the groups
// should split the server CPU evenly). Needs root, `npm run build` and wrk.
import { parseArgs } from 'node:util';
import { CONTENDERS, makeContender, VARIANTS, type ContenderId } from './contenders/index.js';
import type { Contender } from './contenders/contender.js';
import { Box } from './lib/box.js';
import { descendants } from './lib/procfs.js';
import { spread, type Spread } from './lib/stats.js';
import { runWrk, writeWrkScripts, wrkErrorTotal } from './lib/wrk.js';
import { contenderCpuMs } from './scenarios/context.js';

const WARMUP_S = 2;
const CONNECTIONS = 64;
const FIRST_PORT = 8100;

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        pair: { type: 'string', multiple: true },
        rounds: { type: 'string', default: '11' },
        seconds: { type: 'string', default: '4' },
        mode: { type: 'string', default: 'keepalive' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    });
  } catch (err) {
    return refuse((err as Error).message);
  }
})();

/** A bad argument: one line and exit 2, no stack. */
function refuse(message: string): never {
  process.stderr.write(`head-to-head: ${message}\n`);
  process.exit(2);
}

function contenderId(text: string): ContenderId {
  const known: readonly string[] = [...CONTENDERS, ...VARIANTS];
  if (!known.includes(text)) refuse(`unknown contender "${text}" (one of: ${known.join(', ')})`);
  return text as ContenderId;
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) refuse(`--${name}: expected a whole number >= 1, got "${text}"`);
  return n;
}

const pairs = (values.pair ?? ['reuseport,cluster-none', 'handover-migrate,reuseport']).map((p) => {
  const ids = p.split(',');
  if (ids.length !== 2) refuse(`--pair: expected two contender ids separated by a comma, got "${p}"`);
  return [contenderId(ids[0]!), contenderId(ids[1]!)] as const;
});
const rounds = positive('rounds', values.rounds);
const seconds = positive('seconds', values.seconds);
if (values.mode !== 'keepalive' && values.mode !== 'newconn') refuse(`--mode: keepalive or newconn, got "${values.mode}"`);
const newConnection = values.mode === 'newconn';

interface PairResult {
  readonly a: ContenderId;
  readonly b: ContenderId;
  readonly mode: string;
  /** Per round: a's rate ÷ b's, measured over the same seconds. */
  readonly ratio: Spread;
  readonly rps: { readonly a: readonly number[]; readonly b: readonly number[] };
  /** Per round: a's server CPU ÷ b's (1 when the groups split the CPU evenly). */
  readonly cpuShare: Spread;
  readonly errors: number;
}

async function measurePair(box: Box, scripts: { plain: string }, port: number, a: ContenderId, b: ContenderId): Promise<PairResult> {
  const started: Contender[] = [];
  try {
    const sides = [a, b].map((id, i) => makeContender(id, box, { port: port + i, workers: 2 }));
    for (const [i, c] of sides.entries()) {
      await c.start();
      started.push(c);
      const group = box.serverGroup(`${i === 0 ? 'a' : 'b'}-${port}`);
      if (!group) throw new Error('no CPU cgroup below the servers\' group: the two sides would not get equal shares');
      group.adopt(c.roots().flatMap((root) => [root, ...descendants(root)]));
    }
    const wrk = (c: Contender, s: number) =>
      runWrk((cmd, args, timeoutMs) => box.run('load', cmd, args, timeoutMs), {
        url: `http://127.0.0.1:${c.options.port}/`,
        threads: 1, // one wrk per side, both on the load CPUs
        connections: CONNECTIONS,
        seconds: s,
        newConnection,
        script: scripts.plain,
        timeoutSeconds: 2,
      });
    await Promise.all(sides.map((c) => wrk(c, WARMUP_S)));
    const rps: [number[], number[]] = [[], []];
    const ratios: number[] = [];
    const shares: number[] = [];
    let errors = 0;
    for (let round = 0; round < rounds; round++) {
      const cpu0 = sides.map(contenderCpuMs);
      const runs = await Promise.all(sides.map((c) => wrk(c, seconds)));
      const cpu = sides.map((c, i) => contenderCpuMs(c) - cpu0[i]!);
      runs.forEach((r, i) => rps[i]!.push(r.rps));
      errors += runs.reduce((sum, r) => sum + wrkErrorTotal(r.errors), 0);
      ratios.push(runs[0]!.rps / runs[1]!.rps);
      shares.push(cpu[0]! / cpu[1]!);
      process.stderr.write(`  ${a} ${runs[0]!.rps.toFixed(0)} req/s (${cpu[0]!.toFixed(0)} ms CPU), ${b} ${runs[1]!.rps.toFixed(0)} (${cpu[1]!.toFixed(0)} ms): ${ratios.at(-1)!.toFixed(3)}\n`);
    }
    return { a, b, mode: values.mode!, ratio: spread(ratios), rps: { a: rps[0], b: rps[1] }, cpuShare: spread(shares), errors };
  } finally {
    for (const c of started) await c.stop();
  }
}

const box = await Box.open();
const results: PairResult[] = [];
try {
  const scripts = writeWrkScripts(box.dir);
  for (const [i, [a, b]] of pairs.entries()) {
    process.stderr.write(`${a} against ${b}, ${values.mode}, ${rounds} rounds of ${seconds} s (${box.pinning.note})\n`);
    results.push(await measurePair(box, scripts, FIRST_PORT + 2 * i, a, b));
  }
} finally {
  await box.close();
}
if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
else {
  for (const r of results) {
    const range = `${r.ratio.min.toFixed(2)}–${r.ratio.max.toFixed(2)}`;
    process.stdout.write(
      `${r.a} ÷ ${r.b} (${r.mode}): ${r.ratio.median.toFixed(3)} (rounds ${range}); CPU ${r.a} ÷ ${r.b} ${r.cpuShare.median.toFixed(2)}; ${r.errors} errors\n`,
    );
  }
}
