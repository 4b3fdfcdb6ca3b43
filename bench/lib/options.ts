// The bench's command line: which scenarios and contenders, how long each
// measurement runs (a full run, or --quick for development), how many
// alternating repeats.
import { parseArgs } from 'node:util';
import { CONTENDERS, type ContenderId } from '../contenders/index.js';

export const SCENARIOS = ['throughput', 'pairs', 'reload', 'tls', 'duration', 'cli'] as const;
export type ScenarioId = (typeof SCENARIOS)[number];

export interface Durations {
  /** Scenarios 1, 2: one measured wrk run of each contender per round. */
  readonly throughputS: number;
  /** Scenarios 1, 2: rounds; each runs every contender once, all started together beforehand. */
  readonly throughputRounds: number;
  readonly warmupS: number;
  /** Head to head (pairs): rounds per pair and mode, and each round's seconds. */
  readonly pairRounds: number;
  readonly pairS: number;
  /** Scenario 6: the master at idle, measured before the load. */
  readonly idleS: number;
  /** Scenario 3: keep-alive without reloads, right before the series. */
  readonly calmS: number;
  /** Scenarios 3, 4: a reload every second for this long. */
  readonly seriesS: number;
  /** Scenario 5: reloads per repeat and configuration. */
  readonly reloads: number;
  /** CLI cost: rounds of each command. */
  readonly cliRounds: number;
}

export const FULL: Durations = { throughputS: 4, throughputRounds: 9, pairRounds: 11, pairS: 4, warmupS: 2, idleS: 3, calmS: 10, seriesS: 30, reloads: 10, cliRounds: 10 };
export const QUICK: Durations = { throughputS: 2, throughputRounds: 2, pairRounds: 2, pairS: 1, warmupS: 1, idleS: 1, calmS: 3, seriesS: 6, reloads: 3, cliRounds: 3 };

export interface Options {
  readonly quick: boolean;
  readonly repeats: number;
  readonly scenarios: readonly ScenarioId[];
  readonly contenders: readonly ContenderId[];
  readonly workers: number;
  readonly connections: number;
  readonly reloadEveryMs: number;
  readonly d: Durations;
  readonly out: string;
  readonly readme: boolean;
  readonly maxMinutes: number;
  /** Only render: read DIR/latest.json and write the Markdown, SVG (and README section) again. */
  readonly render: boolean;
}

const USAGE = `usage: npm run bench [-- options]
  --quick                 a few seconds per scenario, 1 repeat (development); results in bench/results/quick/
  --repeats N             alternating repeats (default 3; --quick: 1)
  --only LIST             scenarios: ${SCENARIOS.join(',')} (default: all)
  --contenders LIST       ${CONTENDERS.join(',')} (default: all)
  --workers N             workers per contender (default 2)
  --connections N         wrk connections (default 64)
  --out DIR               where results go (default bench/results, or bench/results/quick)
  --no-readme             do not rewrite README.md's bench section (a full run does by default)
  --max-minutes M         abort and clean up after M minutes (default 120)
  --render                measure nothing: redraw the tables and the SVG from the results' latest.json
Needs root (a network namespace of its own), wrk, taskset, openssl; builds dist/ first.
`;

function list<T extends string>(text: string | undefined, all: readonly T[], what: string): readonly T[] {
  if (text === undefined) return all;
  const items = text.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!all.includes(item as T)) throw new Error(`unknown ${what} "${item}": one of ${all.join(', ')}`);
  return items as T[];
}

/** An integer option of at least `min`, `fallback` when absent; throws naming the option otherwise. */
export function int(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min} (got ${text})`);
  return n;
}

export function parseOptions(argv: readonly string[], resultsDir: string): Options | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      repeats: { type: 'string' },
      only: { type: 'string' },
      contenders: { type: 'string' },
      workers: { type: 'string' },
      connections: { type: 'string' },
      out: { type: 'string' },
      'no-readme': { type: 'boolean', default: false },
      'max-minutes': { type: 'string' },
      render: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const quick = values.quick;
  return {
    quick,
    repeats: int('repeats', values.repeats, quick ? 1 : 3, 1),
    scenarios: list(values.only, SCENARIOS, 'scenario'),
    contenders: list(values.contenders, CONTENDERS, 'contender'),
    workers: int('workers', values.workers, 2, 1),
    connections: int('connections', values.connections, 64, 1),
    reloadEveryMs: 1000,
    d: quick ? QUICK : FULL,
    out: values.out ?? (quick ? `${resultsDir}/quick` : resultsDir),
    readme: !quick && !values['no-readme'] && values.out === undefined,
    maxMinutes: int('max-minutes', values['max-minutes'], 120, 1),
    render: values.render,
  };
}

export function usage(): string {
  return USAGE;
}
