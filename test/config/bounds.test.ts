// Bounded configuration: file size, counts, nesting, duplicate keys found in
// linear time, every filesystem error on a configured path located, and the
// loader that parses large files off the event loop. No root needed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { parseDocument } from 'yaml';
import { ConfigError, loadConfig, MAX_CONFIG_BYTES, MAX_ENV, MAX_LISTEN, MAX_NESTING, MAX_WORKERS, parseConfig, type Config } from '../../src/config/index.js';
import { ROOT } from '../harness/master.js';

const tmp = mkdtempSync(join(tmpdir(), 'handover-bounds-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
writeFileSync(join(tmp, 'app.js'), 'export default (req, res) => res.end("ok");\n');
const MINIMAL = 'app: app.js\nlisten:\n  - address: 127.0.0.1:0\n';

let counter = 0;
function write(text: string): string {
  const file = join(tmp, `case-${++counter}.yaml`);
  writeFileSync(file, text);
  return file;
}

function problemsOf(fn: () => unknown): { error: ConfigError; lines: string[] } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return { error: err, lines: err.message.split('\n') };
  }
  assert.fail('expected a ConfigError');
}

/** Asserts one problem line at `file:line:` containing `fragment`. */
function hasProblem(lines: readonly string[], file: string, line: number, fragment: string): void {
  assert.ok(lines.some((l) => l.startsWith(`${file}:${line}:`) && l.includes(fragment)), `no "${fragment}" at line ${line} in:\n${lines.join('\n')}`);
}

/** N env keys, the first repeated at the end (the case is 40,000: bench/config-parse.ts). */
function manyKeys(n: number): string {
  const keys = Array.from({ length: n }, (_, i) => `  KEY_${i}: v${i}\n`).join('');
  return `${MINIMAL}env:\n${keys}  KEY_0: again\n`;
}

describe('bounds', () => {
  test('workers above 1024 are refused; above 4 per CPU they are only a warning, located', () => {
    const file = write(`${MINIMAL}workers: ${MAX_WORKERS + 1}\n`);
    hasProblem(problemsOf(() => loadConfig(file)).lines, file, 4, `workers: must be at most ${MAX_WORKERS}`);
    const many = 4 * availableParallelism() + 1;
    const ok = loadConfig(write(`${MINIMAL}workers: ${many}\n`));
    assert.equal(ok.workers, many);
    assert.equal(ok.warnings.length, 1, ok.warnings.join('\n'));
    assert.match(ok.warnings[0] ?? '', new RegExp(`:4:10: workers: ${many} workers on \\d+ CPUs? available`));
    assert.deepEqual(loadConfig(write(MINIMAL)).warnings, []);
  });

  test('env and listen counts, and one environment string past the kernel limit', () => {
    const env = Array.from({ length: MAX_ENV + 1 }, (_, i) => `  E${i}: x\n`).join('');
    let file = write(`${MINIMAL}env:\n${env}`);
    hasProblem(problemsOf(() => loadConfig(file)).lines, file, 5, `env: has ${MAX_ENV + 1} entries; at most ${MAX_ENV}`);
    const listen = Array.from({ length: MAX_LISTEN + 1 }, (_, i) => `  - address: 127.0.0.1:${9000 + i}\n`).join('');
    file = write(`app: app.js\nlisten:\n${listen}`);
    hasProblem(problemsOf(() => loadConfig(file)).lines, file, 3, `listen: at most ${MAX_LISTEN} listen addresses`);
    file = write(`${MINIMAL}env:\n  SMALL: x\n  BIG: ${'b'.repeat(128 * 1024)}\n`);
    hasProblem(problemsOf(() => loadConfig(file)).lines, file, 6, 'env.BIG: BIG=... is 131076 bytes; the kernel refuses');
  });

  test('a file over 1 MiB is refused before it is read, at file:1:1', () => {
    const file = write(`${MINIMAL}# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    const { lines } = problemsOf(() => loadConfig(file));
    assert.deepEqual(lines, [`${file}:1:1: the file is ${MAX_CONFIG_BYTES + MINIMAL.length + 3} bytes; a configuration may have at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`]);
  });

  test('an empty file, a directory and a FIFO are refused without hanging', () => {
    const empty = write('');
    const { lines } = problemsOf(() => loadConfig(empty));
    hasProblem(lines, empty, 1, 'app: is required');
    hasProblem(lines, empty, 1, 'listen: is required');
    const dir = join(tmp, 'as-dir.yaml');
    mkdirSync(dir);
    assert.deepEqual(problemsOf(() => loadConfig(dir)).lines, [`${dir}: cannot read: EISDIR (is a directory)`]);
    const fifo = join(tmp, 'fifo.yaml');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    assert.deepEqual(problemsOf(() => loadConfig(fifo)).lines, [`${fifo}: is not a regular file`]);
  });

  test(`nesting deeper than ${MAX_NESTING} levels is refused where it starts; far deeper is a located syntax error`, () => {
    const deep = `${MINIMAL}env: ${'['.repeat(MAX_NESTING + 5)}${']'.repeat(MAX_NESTING + 5)}\n`;
    const file = write(deep);
    const { lines } = problemsOf(() => loadConfig(file));
    assert.equal(lines.length, 1, lines.join('\n'));
    hasProblem(lines, file, 4, `nested more than ${MAX_NESTING} levels deep`);
    const deeper = write(`${MINIMAL}env: ${'['.repeat(5000)}${']'.repeat(5000)}\n`);
    hasProblem(problemsOf(() => loadConfig(deeper)).lines, deeper, 4, 'nested too deeply to parse');
  });

  test('at most 50 problems are listed, then a count of the rest', () => {
    const keys = Array.from({ length: 200 }, (_, i) => `bogus${i}: 1\n`).join('');
    const { lines } = problemsOf(() => loadConfig(write(`${MINIMAL}${keys}`)));
    assert.equal(lines.length, 51);
    assert.match(lines[50] ?? '', /: and 150 more problems not shown$/);
  });
});

describe('duplicate keys', () => {
  test('at the repeated key, naming the first; nested, and 1 vs "1" (the same key in JavaScript)', () => {
    const file = write(`${MINIMAL}reload:\n  watch: true\n  settle: 1s\n  watch: false\nenv:\n  1: a\n  "1": b\n`);
    const { lines } = problemsOf(() => loadConfig(file));
    assert.equal(lines.length, 2, lines.join('\n'));
    hasProblem(lines, file, 7, 'reload.watch: duplicate key "watch" (first on line 5)');
    hasProblem(lines, file, 10, 'env.1: duplicate key "1" (first on line 9)');
    const top = write(`${MINIMAL}app: other.js\n`);
    hasProblem(problemsOf(() => loadConfig(top)).lines, top, 4, 'app: duplicate key "app" (first on line 1)');
  });

  test('20,000 env keys with one duplicate: found in linear time (40,000 took 11-12 s with yaml uniqueKeys)', (t) => {
    const text = manyKeys(20_000);
    // Baseline in the same run: yaml's parse alone, without any key check.
    let started = performance.now();
    parseDocument(text, { uniqueKeys: false });
    const baseline = performance.now() - started;
    started = performance.now();
    const { lines } = problemsOf(() => parseConfig(text, join(tmp, 'many.yaml')));
    const ms = performance.now() - started;
    hasProblem(lines, join(tmp, 'many.yaml'), 20_005, 'env.KEY_0: duplicate key "KEY_0" (first on line 5)');
    hasProblem(lines, join(tmp, 'many.yaml'), 5, 'env: has 20000 entries');
    // Measured 0.9-1.35x the bare parse; yaml's uniqueKeys is ~10x at this size (~23x at 40,000).
    assert.ok(ms < 3 * baseline + 300, `parseConfig took ${ms.toFixed(0)} ms, the bare parse ${baseline.toFixed(0)} ms`);
    t.diagnostic(`parseConfig ${ms.toFixed(0)} ms, bare yaml parse ${baseline.toFixed(0)} ms`);
  });
});

describe('filesystem errors on configured paths are located', () => {
  test('app: a symlink loop, a path through a file, a directory', () => {
    const loop = join(tmp, 'loop.js');
    symlinkSync(loop, loop);
    let file = write(`app: loop.js\nlisten: [{ address: 127.0.0.1:0 }]\n`);
    hasProblem(problemsOf(() => loadConfig(file)).lines, file, 1, `app: app file cannot be reached: ELOOP (too many levels of symbolic links (a symlink loop?)): ${loop}`);
    file = write(`app: app.js/index.js\nlisten: [{ address: 127.0.0.1:0 }]\n`);
    hasProblem(problemsOf(() => loadConfig(file)).lines, file, 1, 'app: app file cannot be reached: ENOTDIR');
    mkdirSync(join(tmp, 'appdir'));
    file = write(`app: appdir\nlisten: [{ address: 127.0.0.1:0 }]\n`);
    hasProblem(problemsOf(() => loadConfig(file)).lines, file, 1, 'app: app file is a directory, not a file');
  });

  test('cwd: a symlink loop, a file', () => {
    const loop = join(tmp, 'cwd-loop');
    symlinkSync(loop, loop);
    let file = write(`${MINIMAL}cwd: cwd-loop\n`);
    hasProblem(problemsOf(() => loadConfig(file)).lines, file, 4, `cwd: directory cannot be reached: ELOOP`);
    file = write(`${MINIMAL}cwd: app.js\n`);
    hasProblem(problemsOf(() => loadConfig(file)).lines, file, 4, `cwd: not a directory: ${join(tmp, 'app.js')}`);
  });

  test('TLS files: a symlink loop and a directory', () => {
    const loop = join(tmp, 'loop.crt');
    symlinkSync(loop, loop);
    const file = write(`${MINIMAL}    tls:\n      cert: loop.crt\n      key: appdir\n`);
    const { lines } = problemsOf(() => loadConfig(file));
    hasProblem(lines, file, 5, 'listen.0.tls.cert: certificate file cannot be reached: ELOOP');
    hasProblem(lines, file, 6, 'listen.0.tls.key: key file is a directory');
  });

  test('control socket: a regular file there is refused (never deleted), a parent that is a file, a directory', () => {
    const victim = join(tmp, 'precious.txt');
    writeFileSync(victim, 'keep me');
    let file = write(`${MINIMAL}control: { socket: precious.txt }\n`);
    hasProblem(problemsOf(() => loadConfig(file)).lines, file, 4, `control.socket: ${victim} exists and is not a socket; refusing to replace it`);
    assert.ok(existsSync(victim));
    file = write(`${MINIMAL}control: { socket: precious.txt/c.sock }\n`);
    hasProblem(problemsOf(() => loadConfig(file)).lines, file, 4, 'control.socket: cannot reach');
    file = write(`${MINIMAL}control: { socket: appdir }\n`);
    hasProblem(problemsOf(() => loadConfig(file)).lines, file, 4, 'control.socket: ' + join(tmp, 'appdir') + ' is a directory');
    const loopDir = join(tmp, 'loopdir');
    symlinkSync(loopDir, loopDir);
    file = write(`${MINIMAL}control: { socket: loopdir/c.sock }\n`);
    hasProblem(problemsOf(() => loadConfig(file)).lines, file, 4, 'ELOOP');
    assert.ok(lstatSync(loopDir).isSymbolicLink());
  });
});

describe('loadConfigAsync (dist/, the thread path)', () => {
  type AsyncModule = typeof import('../../src/config/index.js');
  // Through the stub the CLI and the master import (under Node 20 the bundle run by node:vm).
  const load = async (): Promise<AsyncModule> => (await import(pathToFileURL(join(ROOT, 'dist/config/index.js')).href)) as AsyncModule;

  test('10,000 keys parse in a thread: the same located error, and the event loop stalls far less than an in-line parse', async () => {
    const { loadConfigAsync } = await load();
    const file = write(manyKeys(10_000));
    const inline = performance.now();
    problemsOf(() => loadConfig(file));
    const inlineMs = performance.now() - inline;
    let worst = 0;
    let last = performance.now();
    const tick = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 5);
    let error: unknown;
    try {
      await loadConfigAsync(file);
    } catch (err) {
      error = err;
    } finally {
      clearInterval(tick);
    }
    assert.ok(error instanceof Error && error.name === 'ConfigError', String(error));
    assert.deepEqual(error.message.split('\n'), [
      `${file}:5:3: env: has 10000 entries; at most ${MAX_ENV} are allowed`,
      `${file}:10005:3: env.KEY_0: duplicate key "KEY_0" (first on line 5)`,
    ]);
    // In line, the parse is one stall of inlineMs; the thread leaves only scheduling noise.
    assert.ok(worst < Math.max(inlineMs / 2, 50), `event loop stalled for ${worst.toFixed(0)} ms (the in-line parse took ${inlineMs.toFixed(0)} ms)`);
  });

  test('a valid file gives the same frozen Config in line and in the thread', async () => {
    const { loadConfigAsync } = await load();
    const env = Array.from({ length: 100 }, (_, i) => `  VAR_${i}: "${'v'.repeat(200)}"\n`).join('');
    const file = write(`${MINIMAL}workers: 2\nenv:\n${env}`);
    const viaThread: Config = await loadConfigAsync(file, { inlineMaxBytes: 0 });
    assert.deepEqual(viaThread, loadConfig(file));
    assert.ok(Object.isFrozen(viaThread) && Object.isFrozen(viaThread.env) && Object.isFrozen(viaThread.listen[0]?.address));
    await assert.rejects(loadConfigAsync(join(tmp, 'absent.yaml')), /cannot read: ENOENT/);
  });
});
