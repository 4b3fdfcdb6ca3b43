// What a CLI command costs, against what starting node costs.
//
//   node --import tsx bench/cli-cost.ts [--runs 30] [--json] [--check]
//
// Baseline: `node -e 0`, spawned the same way, interleaved with the commands
// (baseline, each command, baseline, ...) so that a noisy machine slows all
// alike. Wall time is spawn to exit; CPU time is the children's user +
// system time from /proc/self/stat (cutime + cstime, clock ticks), summed
// over the runs. Targets: `status`, `--help` and `--version` at most 1.5x
// the baseline's wall time; `reload` back within 1.5x its own report's
// durationMs + settleMs + 100 ms (every few rounds; that bound has no
// baseline, so a loaded machine, where node alone takes 200 ms, misses it).
// `check` validates the whole file (zod, yaml) and is held too, as `npm run
// bench` holds it (the issue asks it of every command).
// Needs `npm run build` first.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'dist/main.js');
const HELLO = join(ROOT, 'examples/hello/app.js');
const TARGET_RATIO = 1.5;
const RELOAD_SLACK_MS = 100;
const WARMUP = 3;
const COMMAND_TIMEOUT_MS = 30_000;
const MASTER_START_TIMEOUT_MS = 20_000;
/** Linux's USER_HZ, the unit of cutime/cstime. */
const CLOCK_TICKS_PER_S = 100;

interface Command {
  readonly name: string;
  readonly args: readonly string[];
  readonly held: boolean;
}

const COMMANDS: readonly Command[] = [
  { name: 'node -e 0', args: ['-e', '0'], held: false },
  { name: 'handover --version', args: [MAIN, '--version'], held: true },
  { name: 'handover --help', args: [MAIN, '--help'], held: true },
  { name: 'handover status', args: [MAIN, 'status'], held: true },
  { name: 'handover status --json', args: [MAIN, 'status', '--json'], held: true },
  { name: 'handover check', args: [MAIN, 'check'], held: true },
];

/** CPU seconds used so far by this process's waited-for children. */
function childrenCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command: state is field 3; cutime and cstime are fields 16 and 17.
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS_PER_S;
}

function run(args: readonly string[], cwd: string): { wallMs: number; cpuS: number; stdout: string } {
  const cpu0 = childrenCpu();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS, env: { ...process.env, NO_COLOR: '1' } });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { wallMs, cpuS: childrenCpu() - cpu0, stdout: r.stdout };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
};

async function startMaster(dir: string): Promise<() => Promise<void>> {
  writeFileSync(join(dir, 'handover.yaml'), `app: ${HELLO}\nworkers: 1\nlisten: [{ address: 127.0.0.1:0 }]\nreload: { watch: false, drain_timeout: 2s }\n`);
  const master = spawn(process.execPath, [MAIN, 'start'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, HANDOVER_LOG_PRETTY: '0' } });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the master did not start in time')), MASTER_START_TIMEOUT_MS);
    master.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (chunk.includes('"msg":"serving ')) {
        clearTimeout(timer);
        resolve();
      }
    });
    master.once('exit', (code) => reject(new Error(`the master exited with ${code}`)));
  });
  master.stdout.resume();
  return async () => {
    master.kill('SIGTERM');
    await new Promise((resolve) => master.once('exit', resolve));
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' }, json: { type: 'boolean' }, check: { type: 'boolean' } } });
  const runs = Number(values.runs);
  const dir = mkdtempSync(join(tmpdir(), 'handover-cli-cost-'));
  const stop = await startMaster(dir);
  const wall = new Map<string, number[]>(COMMANDS.map((c) => [c.name, []]));
  const cpu = new Map<string, number>(COMMANDS.map((c) => [c.name, 0]));
  const reloads: { wallMs: number; durationMs: number; settleMs: number; boundMs: number }[] = [];
  try {
    for (let i = 0; i < WARMUP + runs; i++) {
      for (const c of COMMANDS) {
        const r = run(c.args, dir);
        if (i < WARMUP) continue;
        wall.get(c.name)?.push(r.wallMs);
        cpu.set(c.name, (cpu.get(c.name) ?? 0) + r.cpuS);
      }
      if (i >= WARMUP && i % 3 === 0) {
        const r = run([MAIN, 'reload', '--json'], dir);
        const report = JSON.parse(r.stdout) as { durationMs: number; settleMs?: number };
        reloads.push({ wallMs: r.wallMs, durationMs: report.durationMs, settleMs: report.settleMs ?? 0, boundMs: TARGET_RATIO * report.durationMs + (report.settleMs ?? 0) + RELOAD_SLACK_MS });
      }
    }
  } finally {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const base = median(wall.get('node -e 0') ?? []);
  const rows = COMMANDS.map((c) => {
    const w = median(wall.get(c.name) ?? []);
    return { command: c.name, wallMs: w, cpuMs: ((cpu.get(c.name) ?? 0) / runs) * 1000, ratio: w / base, target: c.held ? TARGET_RATIO : null };
  });
  const reloadsWithin = reloads.filter((r) => r.wallMs <= r.boundMs).length;
  let rowLine = '';
  const met = rows.every((r) => r.target === null || r.ratio <= r.target) && reloadsWithin === reloads.length;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ node: process.version, cpus: cpus().length, load: loadavg()[0], runs, rows, reloads, met }, null, 2)}\n`);
  } else {
    process.stdout.write(`${runs} runs each, interleaved; node ${process.version}, ${cpus().length} CPUs, load ${loadavg()[0]?.toFixed(1)}\n\n`);
    process.stdout.write('| command | wall p50 (ms) | CPU mean (ms) | wall / node -e 0 | target |\n|---|---|---|---|---|\n');
    for (const r of rows) {
      const target = r.target === null ? '-' : `<= ${r.target}x ${r.ratio <= r.target ? 'yes' : 'NO'}`;
      process.stdout.write(`| ${r.command} | ${r.wallMs.toFixed(1)} | ${r.cpuMs.toFixed(0)} | ${r.ratio.toFixed(2)}x | ${target} |\n`);
    }
    const worst = reloads.reduce((m, r) => Math.max(m, r.wallMs - r.boundMs), -Infinity);
    process.stdout.write(`\nhandover reload: ${reloadsWithin}/${reloads.length} back within 1.5x durationMs + settleMs + 100 ms (worst margin ${(-worst).toFixed(0)} ms)\n`);
    const overhead = median(reloads.map((r) => r.wallMs - r.durationMs - r.settleMs));
    const row = (name: string) => rows.find((r) => r.command === name);
    const [b, st, help, check] = [row('node -e 0'), row('handover status'), row('handover --help'), row('handover check')];
    const pair = (r: typeof b) => `${r?.wallMs.toFixed(0)} / ${r?.cpuMs.toFixed(0)}`;
    rowLine = `| ${new Date().toISOString().slice(0, 10)} | ${process.version} | ${loadavg()[0]?.toFixed(1)} | ${pair(b)} | ${pair(st)} | ${st?.ratio.toFixed(2)}× | ${help?.ratio.toFixed(2)}× | ${check?.ratio.toFixed(2)}× | ${met ? 'yes' : 'no'} |`;
    process.stdout.write(`  wall minus the report's durationMs and settleMs: p50 ${overhead.toFixed(0)} ms, against node -e 0's ${base.toFixed(0)} ms; report durationMs p50 ${median(reloads.map((r) => r.durationMs)).toFixed(0)} ms\n`);
  }
  if (rowLine) process.stdout.write(`\n${rowLine}\n`);
  return values.check && !met ? 1 : 0;
}

process.exitCode = await main();
