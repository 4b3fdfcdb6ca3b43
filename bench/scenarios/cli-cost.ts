// The CLI's own cost: each command's wall and CPU time against `node -e 0`
// in the same run (alternating rounds, on the servers' CPUs), the floor a
// status command could reach (the project's socket client alone, then with
// yaml to read the config), and what importing each dependency and each of
// the project's entry modules costs a fresh process. Against an idle
// handover master.
import { fileURLToPath } from 'node:url';
import { Handover, MAIN } from '../contenders/handover.js';
import { timedCommand } from '../contenders/contender.js';
import type { CliResults } from '../lib/results.js';
import type { Ctx } from './context.js';

const IMPORT_COST = fileURLToPath(new URL('../lib/import-cost.mjs', import.meta.url));
const CLI_FLOOR = fileURLToPath(new URL('../lib/cli-floor.mjs', import.meta.url));

/** Modules whose import cost is measured alone, each in a fresh process. */
export const MODULES = [
  'zod', 'yaml', 'pino', 'pino-pretty', 'prom-client', 'ffi-rs', 'chokidar', 'node:https',
  'dist/protocol/control.js', 'dist/config/index.js', 'dist/log/logger.js', 'dist/net/index.js',
  'dist/cli/client.js', 'dist/cli/commands.js', 'dist/master/run.js',
] as const;

export const NODE_FLOOR = 'node -e 0';

export async function cliCost(ctx: Ctx): Promise<void> {
  const results: CliResults = { wallMs: {}, cpuMs: {}, imports: {} };
  ctx.results.cli = results;
  const master = ctx.contender('handover-migrate', { settle: '0s' });
  if (!(master instanceof Handover)) throw new Error('handover contender expected');
  const node = process.execPath;
  const commands: Record<string, readonly string[]> = {
    [NODE_FLOOR]: [node, '-e', '0'],
    'handover --version': [node, MAIN, '--version'],
    'handover status': [node, MAIN, 'status', '-c', master.config],
    'handover check': [node, MAIN, 'check', '-c', master.config],
    'handover reload': [node, MAIN, 'reload', '-c', master.config],
    'floor: socket client only': [node, CLI_FLOOR, master.socket],
    'floor: socket client + yaml': [node, CLI_FLOOR, '--yaml', master.config],
  };
  try {
    await master.start();
    for (let round = 0; round < ctx.o.d.cliRounds + 1; round++) {
      for (const [label, argv] of ctx.order(Object.entries(commands), round)) {
        const r = await timedCommand(ctx.box, argv[0]!, argv.slice(1));
        if (r.code !== 0) throw new Error(`${label} exited ${r.code}: ${r.stderr.trim()}`);
        if (round === 0) continue; // warm-up: page cache, first runs
        (results.wallMs[label] ??= []).push(r.wallMs);
        (results.cpuMs[label] ??= []).push(r.cpuMs);
      }
      if (round > 0 && round <= Math.min(5, ctx.o.d.cliRounds)) {
        for (const spec of MODULES) {
          const r = await ctx.box.run('servers', node, [IMPORT_COST, spec], 30_000);
          if (r.code !== 0) throw new Error(`import ${spec}: ${r.stderr.trim()}`);
          const m = JSON.parse(r.stdout.trim()) as { wallMs: number; cpuMs: number };
          const entry = (results.imports[spec] ??= { wallMs: [], cpuMs: [] });
          entry.wallMs.push(m.wallMs);
          entry.cpuMs.push(m.cpuMs);
        }
      }
    }
    const median = (xs: number[] = []): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
    const floor = median(results.wallMs[NODE_FLOOR]);
    ctx.log(`  node -e 0 ${floor.toFixed(0)} ms; handover status ${median(results.wallMs['handover status']).toFixed(0)} ms (${(median(results.wallMs['handover status']) / floor).toFixed(2)}×)`);
  } catch (err) {
    ctx.results.errors.push(`cli cost: ${String(err)}`);
    ctx.log(`  cli cost: FAILED ${String(err).split('\n')[0]}`);
  } finally {
    await master.stop();
  }
}
