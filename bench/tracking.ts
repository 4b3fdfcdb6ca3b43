// What tracking connections costs a worker (worker/drain.ts's
// ConnectionTracker, which every handover worker runs for the drain) with
// a new connection per request: the bench app served with the tracker,
// and, for comparison, with the way it used to track (a Map keyed by the
// socket and a 'close' listener on each), against the same app untracked.
//
//   node --import tsx bench/tracking.ts [--rounds 12] [--seconds 3] [--connections 64] [--check]
//
// Each variant is two processes with one SO_REUSEPORT socket each (as two
// workers are), all pinned to the servers' CPU. A variant and the baseline
// are loaded at the same time, by two wrk processes on the load CPUs: they
// share the one server CPU evenly (CFS), so a variant that needs more CPU
// per connection serves fewer, and whatever else runs on the machine slows
// both alike. An A/A round of two untracked servers shows the method's own
// spread. Target: tracked ≥ 0.97 × untracked, median of the per-round
// ratios. Needs `npm run build` first.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { choosePinning, pinned } from './lib/pinning.js';
import { median, wrk } from './wrk.js';

const PINNING = choosePinning(cpus().length);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TARGET = 0.97;
const START_TIMEOUT_MS = 10_000;

const VARIANTS = ['untracked', 'tracked', 'socket-keyed'] as const;
type Variant = (typeof VARIANTS)[number];

/** One worker-like process: the bench app on a SO_REUSEPORT socket of PORT, tracked as `variant` says. */
const SERVER = `
const [variant, root, port] = process.argv.slice(1);
const { listenerSpec, openListener, socketAddress } = await import(root + '/dist/net/index.js');
const { createServer } = await import('node:http');
const ok = (await import(root + '/bench/servers/ok.mjs')).default;
const server = createServer(ok);
if (variant === 'tracked') new (await import(root + '/dist/worker/drain.js')).ConnectionTracker('bench', server);
if (variant === 'socket-keyed') {
  const open = new Map();
  server.on('connection', (socket) => { open.set(socket, socket); socket.once('close', () => open.delete(socket)); });
}
const listener = openListener(listenerSpec({ address: socketAddress('127.0.0.1', Number(port), 4), backlog: 511 }));
server.listen({ fd: listener.fd }, 511, () => process.send('listening'));
process.on('disconnect', () => process.exit(0));
`;

function startProcess(variant: Variant, port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const [command, ...argv] = pinned(PINNING.servers, [process.execPath, '--input-type=module', '-e', SERVER, variant, ROOT, String(port)]);
    const child = spawn(command!, argv, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const timer = setTimeout(() => reject(new Error(`${variant} server did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    child.once('message', () => {
      clearTimeout(timer);
      resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`${variant} server exited ${code}`)));
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '12' },
      seconds: { type: 'string', default: '3' },
      connections: { type: 'string', default: '64' },
      check: { type: 'boolean', default: false },
    },
  });
  if (!existsSync(join(ROOT, 'dist/worker/drain.js'))) throw new Error('dist/ is missing: run npm run build first');
  const rounds = Number(values.rounds);
  const load = { seconds: Number(values.seconds), connections: Number(values.connections), threads: 1, cpus: PINNING.load, newConnection: true };
  const children: ChildProcess[] = [];
  const ports = new Map<Variant | 'baseline', number>();
  try {
    let port = 18_900 + (process.pid % 500) * 4;
    for (const variant of [...VARIANTS, 'baseline'] as const) {
      const p = port++;
      ports.set(variant, p);
      for (let i = 0; i < 2; i++) children.push(await startProcess(variant === 'baseline' ? 'untracked' : variant, p));
    }
    const url = (v: Variant | 'baseline'): string => `http://127.0.0.1:${ports.get(v)}/`;
    for (const v of ports.keys()) await wrk({ ...load, url: url(v), seconds: 1 }); // warm-up
    const ratios = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
    let errors = 0;
    for (let r = 0; r < rounds; r++) {
      const line: string[] = [];
      for (const v of VARIANTS) {
        // v against a second untracked server (for untracked itself: the A/A round), loaded together.
        const [a, b] = await Promise.all([wrk({ ...load, url: url(v) }), wrk({ ...load, url: url('baseline') })]);
        errors += a.errors + b.errors;
        ratios.get(v)!.push(a.requestsPerSecond / b.requestsPerSecond);
        line.push(`${v} ${a.requestsPerSecond.toFixed(0)} vs ${b.requestsPerSecond.toFixed(0)}`);
      }
      process.stderr.write(`round ${r + 1}: ${line.join(', ')}\n`);
    }
    const spreadOf = (v: Variant): string => {
      const x = ratios.get(v)!;
      return `${median(x).toFixed(3)} [${Math.min(...x).toFixed(3)}–${Math.max(...x).toFixed(3)}]`;
    };
    const tracked = median(ratios.get('tracked')!);
    const met = tracked >= TARGET && errors === 0;
    process.stdout.write(`new connection per request, ÷ an untracked server loaded at the same time, median of ${rounds} rounds of ${load.seconds} s:\n`);
    for (const v of VARIANTS) process.stdout.write(`  ${v.padEnd(13)} ${spreadOf(v)}\n`);
    process.stdout.write(`tracked ≥ ${TARGET}: ${met ? 'met' : 'NOT met'}${errors ? ` (${errors} wrk errors)` : ''}\n`);
    process.stdout.write(`| ${new Date().toISOString().slice(0, 10)} | ${process.version} | ${cpus().length} | ${loadavg()[0]!.toFixed(1)} | ${rounds} x ${load.seconds} s | ${spreadOf('untracked')} | ${spreadOf('tracked')} | ${spreadOf('socket-keyed')} | ${met ? 'yes' : 'no'} |\n`);
    return values.check && !met ? 1 : 0;
  } finally {
    for (const c of children) c.kill('SIGKILL');
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench/tracking: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
