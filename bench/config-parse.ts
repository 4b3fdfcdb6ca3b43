// Configuration parsing against the bare YAML parse, in the same run
// (bench/README.md "config-parse.ts"). Run: node --import tsx bench/config-parse.ts [--keys 40000] [--runs 5]
//
// Three figures per size, each the median of --runs:
//   bare      yaml's parseDocument alone, uniqueKeys off (the baseline)
//   load      parseConfig: parse, the linear duplicate-key visit, schema, checks
//   yaml dup  parseDocument with yaml's own uniqueKeys (what the loader used to do; skipped above 20,000 keys: quadratic)
// and, for the thread path, the longest event-loop stall while loadConfigAsync
// parses the file in a worker thread, against the in-line parse time.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { parseDocument } from 'yaml';
import { ConfigError, parseConfig } from '../src/config/index.js';

const { values } = parseArgs({ options: { keys: { type: 'string', default: '40000' }, runs: { type: 'string', default: '5' } } });
const KEYS = Number(values.keys);
const RUNS = Number(values.runs);
const QUADRATIC_SKIP_ABOVE = 20_000;

const dir = mkdtempSync(join(tmpdir(), 'handover-bench-config-'));
writeFileSync(join(dir, 'app.js'), 'export default (req, res) => res.end("ok");\n');

function text(keys: number): string {
  const env = Array.from({ length: keys }, (_, i) => `  KEY_${i}: v${i}\n`).join('');
  return `app: app.js\nlisten: [{ address: 127.0.0.1:0 }]\nenv:\n${env}  KEY_0: again\n`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

function time(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

try {
  for (const keys of [KEYS / 4, KEYS].map(Math.round)) {
    const yaml = text(keys);
    const bare = median(Array.from({ length: RUNS }, () => time(() => parseDocument(yaml, { uniqueKeys: false }))));
    const load = median(Array.from({ length: RUNS }, () => time(() => {
      try {
        parseConfig(yaml, join(dir, 'bench.yaml'));
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
      }
    })));
    const dup = keys > QUADRATIC_SKIP_ABOVE ? undefined : median(Array.from({ length: Math.min(RUNS, 3) }, () => time(() => parseDocument(yaml, { uniqueKeys: true }))));
    console.log(
      `${keys} keys (${(yaml.length / 1024).toFixed(0)} KiB): bare ${bare.toFixed(0)} ms, load ${load.toFixed(0)} ms (${(load / bare).toFixed(2)}x)` +
        (dup === undefined ? '' : `, yaml uniqueKeys ${dup.toFixed(0)} ms (${(dup / bare).toFixed(1)}x)`),
    );
  }

  const file = join(dir, 'async.yaml');
  writeFileSync(file, text(KEYS));
  const { loadConfigAsync } = (await import(pathToFileURL(join(process.cwd(), 'dist/config/load-async.js')).href)) as typeof import('../src/config/load-async.js');
  let worst = 0;
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 5);
  const started = performance.now();
  await loadConfigAsync(file).catch(() => undefined);
  const total = performance.now() - started;
  clearInterval(tick);
  console.log(`loadConfigAsync, ${KEYS} keys in a thread: ${total.toFixed(0)} ms in all, longest event-loop stall ${worst.toFixed(0)} ms`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
