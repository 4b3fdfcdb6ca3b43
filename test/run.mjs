// Runs every test/**/*.test.ts with node:test (Node 20's --test expands no
// globs and finds no .ts files by itself), in two lanes side by side:
//
//  - the load lane: the files that drive a master under sustained load and
//    count every failed request (LOAD below), one at a time, so that two of
//    them never compete for the 2 cores;
//  - the other lane: everything else (unit tests, kernel facts, CLI, timers
//    and deadlines that mostly wait), one at a time too.
//
// So at most two files run at once, and never two load tests. The load
// lane's output streams; the other lane's is printed when it ends (each
// lane's own summary, then a line per lane, then again the failing tests of
// any lane that failed). `node test/run.mjs PATTERN...`
// runs only the files whose path contains one of the patterns.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const only = process.argv.slice(2);

/** Files whose tests keep a master under load throughout. */
const LOAD = [
  'test/master/reload.test.ts',
  'test/master/reload-edges.test.ts',
  'test/master/reload-faults.test.ts',
  'test/master/kill-reload.test.ts',
  'test/master/core.test.ts',
  'test/master/strategies.test.ts',
  'test/master/pod.test.ts',
  'test/examples/',
  'test/tls/rotation.test.ts',
  'test/metrics/reload-figures.test.ts',
];

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'fixtures' ? [] : find(path);
    return e.name.endsWith('.test.ts') ? [path] : [];
  });
}

let files = find(join(root, 'test')).sort();
if (only.length) files = files.filter((f) => only.some((o) => relative(root, f).includes(o)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const isLoad = (f) => LOAD.some((p) => relative(root, f).startsWith(p));
const lanes = [
  { name: 'load', files: files.filter(isLoad), stream: true },
  { name: 'other', files: files.filter((f) => !isLoad(f)), stream: false },
].filter((l) => l.files.length > 0);
if (lanes.length === 1) lanes[0].stream = true;

function run(lane) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...lane.files],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const chunks = [];
    const keep = (out) => (d) => {
      chunks.push(d);
      if (lane.stream) out.write(d);
    };
    child.stdout.on('data', keep(process.stdout));
    child.stderr.on('data', keep(process.stderr));
    // Interrupted: stop the lanes (their tests clean up on SIGTERM), then exit.
    const stop = () => child.kill('SIGTERM');
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    child.once('close', (code, signal) => {
      const output = Buffer.concat(chunks);
      if (!lane.stream) {
        process.stdout.write(`\n===== lane "${lane.name}" (${lane.files.length} files) =====\n`);
        process.stdout.write(output);
      }
      resolve({ lane, code: code ?? (signal ? 1 : 0), seconds: (Date.now() - started) / 1000, output: output.toString() });
    });
  });
}

/**
 * The reporter's "failing tests" section of a lane's output, long lines cut:
 * printed again last, so that the end of the log (all a CI summary may keep)
 * says which test failed and why, whichever lane it was in.
 */
function failures(output) {
  const at = output.lastIndexOf('failing tests:');
  if (at < 0) return undefined;
  const lines = output.slice(at).split('\n').filter((l) => l.trim() !== '');
  const cut = lines.slice(0, 80).map((l) => (l.length > 400 ? `${l.slice(0, 400)} …` : l));
  if (lines.length > cut.length) cut.push(`… ${lines.length - cut.length} more lines above, in the lane's output`);
  return cut.join('\n');
}

const results = await Promise.all(lanes.map(run));
for (const r of results) {
  const f = r.code === 0 ? undefined : failures(r.output);
  if (f) console.log(`\n===== lane "${r.lane.name}": ${f}`);
}
for (const r of results) {
  console.log(`lane "${r.lane.name}": ${r.lane.files.length} files, ${r.seconds.toFixed(0)} s, ${r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`}`);
}
process.exit(results.every((r) => r.code === 0) ? 0 : 1);
