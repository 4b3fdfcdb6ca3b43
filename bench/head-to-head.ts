// Two contenders loaded at the same time, on the same server CPU, each in a
// CPU cgroup of its own with equal weights: the ratio of their rates in one
// round is then taken over the same seconds of the same machine, and each
// pays for its own master and helpers out of its own half. The throughput
// scenario of `npm run bench` measures one contender at a time, seconds
// apart; on this shared machine its keep-alive rounds move by ±25% from one
// run to the next, enough to hide a 5% difference in either direction.
// `npm run bench` measures its own pairs the same way (scenario "pairs",
// bench/scenarios/pairs.ts, which this script runs for the pairs given).
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
import { CONTENDERS, VARIANTS, type ContenderId } from './contenders/index.js';
import { Box } from './lib/box.js';
import type { PairResult } from './lib/results.js';
import { writeWrkScripts } from './lib/wrk.js';
import { measurePair } from './scenarios/pairs.js';

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

const box = await Box.open();
const results: PairResult[] = [];
try {
  const scripts = writeWrkScripts(box.dir);
  for (const [i, [a, b]] of pairs.entries()) {
    process.stderr.write(`${a} against ${b}, ${values.mode}, ${rounds} rounds of ${seconds} s (${box.pinning.note})\n`);
    results.push(
      await measurePair(box, scripts.plain, a, b, {
        rounds,
        seconds,
        newConnection,
        workers: 2,
        port: FIRST_PORT + 2 * i,
        log: (line) => process.stderr.write(`${line}\n`),
      }),
    );
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
