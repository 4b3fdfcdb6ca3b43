// The worker's request path against plain Node: keep-alive throughput of
// examples/hello served three ways, in the same run, alternating.
//
//   node --import tsx bench/apps.ts [--rounds 5] [--seconds 3] [--connections 32] [--json] [--check]
//                                   [--today DIR]
//
// - plain:   `node bench/apps/hello-listen.js`, no handover at all (the floor);
// - handler: handover, 1 worker, examples/hello/app.js (a request listener:
//            the worker creates the server; the path handover always had);
// - listen:  handover, 1 worker, bench/apps/hello-listen.js unchanged (its own
//            http.createServer().listen(port), routed to the inherited socket);
// - today:   with --today DIR (another build's dist/, e.g. of main), that
//            build's handler path on examples/hello/app.js.
// All three run at once on their own ports; each round measures each of
// them once with wrk (keep-alive), in a rotating order, after a warm-up.
// Targets: the medians of the per-round ratios listen / handler and
// handler / plain are >= 0.97.
// Needs `npm run build` and wrk.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'dist/main.js');
const HELLO = join(ROOT, 'examples/hello/app.js');
const HELLO_LISTEN = join(ROOT, 'bench/apps/hello-listen.js');
const TARGET = 0.97;
const START_TIMEOUT_MS = 20_000;
const WARMUP_SECONDS = 1;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    json: { type: 'boolean', default: false },
    check: { type: 'boolean', default: false },
    today: { type: 'string' },
  },
  strict: true,
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const connections = Number(values.connections);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once `url` answers 200, or rejects at the deadline. */
async function answering(url: string, child: ChildProcess): Promise<void> {
  const end = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`${url}: the server exited (${child.exitCode})`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url}: no answer within ${START_TIMEOUT_MS} ms`);
}

type Name = 'plain' | 'handler' | 'listen' | 'today';

interface Target {
  readonly name: Name;
  readonly url: string;
  readonly child: ChildProcess;
}

async function startTarget(name: Name, dir: string): Promise<Target> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  let child: ChildProcess;
  if (name === 'plain') {
    // A session of its own, like handover's workers: with the scheduler's
    // autogroups on, each session is a group that gets its own CPU share.
    child = spawn(process.execPath, [HELLO_LISTEN], { stdio: 'ignore', detached: true, env: { ...process.env, PORT: String(port) } });
  } else {
    const config = join(dir, `${name}.yaml`);
    const app = name === 'listen' ? HELLO_LISTEN : HELLO;
    const main = name === 'today' ? join(values.today ?? '', 'main.js') : MAIN;
    writeFileSync(config, `app: ${app}\nworkers: 1\nlisten:\n  - address: 127.0.0.1:${port}\nreload: { watch: false }\ncontrol: { socket: ${join(dir, `${name}.sock`)} }\nlog: { level: warn }\nenv: { PORT: "${port}" }\n`);
    child = spawn(process.execPath, [main, 'start', '-c', config], { stdio: 'ignore', env: { ...process.env, HANDOVER_LOG_PRETTY: '0' } });
  }
  await answering(url, child);
  return { name, url, child };
}

function wrk(url: string, secs: number): number {
  const r = spawnSync('wrk', ['-t1', `-c${connections}`, `-d${secs}s`, url], { encoding: 'utf8' });
  if (r.error) throw new Error(`wrk: ${r.error.message} (apt-get install wrk)`);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (!m || /Non-2xx|Socket errors/.test(r.stdout)) throw new Error(`wrk ${url}: unexpected output\n${r.stdout}${r.stderr}`);
  return Number(m[1]);
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'handover-bench-apps-'));
  const targets: Target[] = [];
  try {
    const names: Name[] = ['plain', 'handler', 'listen', ...(values.today ? (['today'] as const) : [])];
    for (const name of names) targets.push(await startTarget(name, dir));
    for (const t of targets) wrk(t.url, WARMUP_SECONDS);
    const rps: Record<Name, number[]> = { plain: [], handler: [], listen: [], today: [] };
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < targets.length; i++) {
        const t = targets[(round + i) % targets.length]!;
        rps[t.name].push(wrk(t.url, seconds));
      }
    }
    const m: Record<Name, number> = { plain: median(rps.plain), handler: median(rps.handler), listen: median(rps.listen), today: median(rps.today) };
    const perRound = (a: Name, b: Name): number => median(rps[a].map((x, i) => x / rps[b][i]!));
    const ratios = {
      listenOverHandler: m.listen / m.handler,
      handlerOverPlain: m.handler / m.plain,
      listenOverHandlerPerRound: perRound('listen', 'handler'),
      handlerOverPlainPerRound: perRound('handler', 'plain'),
      ...(values.today ? { handlerOverTodayPerRound: perRound('handler', 'today'), listenOverTodayPerRound: perRound('listen', 'today') } : {}),
    };
    // Per-round ratios are the figure: a shared machine's load moves between
    // rounds far more than within one round's three runs.
    const ok = ratios.listenOverHandlerPerRound >= TARGET && ratios.handlerOverPlainPerRound >= TARGET;
    if (values.json) {
      console.log(JSON.stringify({ rounds, seconds, connections, rps, medians: m, ratios, target: TARGET, ok, cpus: cpus().length, loadavg: loadavg() }, null, 2));
    } else {
      console.log(`keep-alive req/s, median of ${rounds} alternating wrk runs (-c${connections}, ${seconds} s each); load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs`);
      for (const name of names) console.log(`  ${name.padEnd(8)} ${m[name].toFixed(0).padStart(8)}   runs ${rps[name].map((x) => x.toFixed(0)).join(' ')}`);
      console.log(`  listen / handler  ${ratios.listenOverHandlerPerRound.toFixed(3)}x median of per-round ratios (of medians ${ratios.listenOverHandler.toFixed(3)}x)   target >= ${TARGET}`);
      console.log(`  handler / plain   ${ratios.handlerOverPlainPerRound.toFixed(3)}x median of per-round ratios (of medians ${ratios.handlerOverPlain.toFixed(3)}x)   target >= ${TARGET}`);
      if (ratios.handlerOverTodayPerRound !== undefined) {
        console.log(`  handler / today   ${ratios.handlerOverTodayPerRound.toFixed(3)}x median of per-round ratios`);
        console.log(`  listen / today    ${ratios.listenOverTodayPerRound?.toFixed(3)}x median of per-round ratios`);
      }
    }
    if (values.check && !ok) process.exitCode = 1;
  } finally {
    for (const t of targets) t.child.kill('SIGTERM');
    await Promise.all(targets.map((t) => (t.child.exitCode === null ? new Promise((r) => t.child.once('exit', r)) : undefined)));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
