// node_args and cwd, and the check that the workers' node can load the app,
// decided without importing it (an unmodified app would run its listen()).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { ROOT, runCli } from '../harness/master.js';

const tmp = mkdtempSync(join(tmpdir(), 'handover-node-args-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const MARKER = join(tmp, 'imported');
// Importing this app would leave a marker file behind.
const body = `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(MARKER)}, 'x');\nexport default (req: unknown, res: { end(s: string): void }) => res.end('ok');\n`;
writeFileSync(join(tmp, 'app.ts'), body);
writeFileSync(join(tmp, 'app.js'), 'export default (req, res) => res.end("ok");\n');
writeFileSync(join(tmp, 'app.jsx'), 'export default () => null;\n');
mkdirSync(join(tmp, 'sub'));

let n = 0;
function write(text: string): string {
  const file = join(tmp, `case-${++n}.yaml`);
  writeFileSync(file, `${text}listen:\n  - address: 127.0.0.1:0\n`);
  return file;
}

function problems(text: string): string[] {
  try {
    loadConfig(write(text));
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message.split('\n');
  }
  return [];
}

const stripsTypes = (() => {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18);
})();

describe('node_args and cwd', () => {
  it('default to none and the master\'s directory', () => {
    const c = loadConfig(write('app: app.js\n'));
    assert.deepEqual(c.nodeArgs, []);
    assert.equal(c.cwd, undefined);
  });

  it('are passed through; cwd is resolved against the config file', () => {
    const c = loadConfig(write('app: app.js\nnode_args: ["--max-old-space-size=512", "--enable-source-maps"]\ncwd: sub\n'));
    assert.deepEqual(c.nodeArgs, ['--max-old-space-size=512', '--enable-source-maps']);
    assert.equal(c.cwd, join(tmp, 'sub'));
  });

  it('take one argument per item, and a cwd that is a directory', () => {
    const found = problems('app: app.js\nnode_args: ["--import tsx"]\ncwd: app.js\n');
    assert.equal(found.length, 2, found.join('\n'));
    assert.match(found[0]!, /:2:\d+: node_args\.0: one argument per item: write \["--import", "tsx"\] or "--import=tsx"/);
    assert.match(found[1]!, /:3:\d+: cwd: not a directory: .*app\.js$/);
  });

  it('a .ts app without a loader is an error naming the fix', { skip: stripsTypes && 'this Node strips types itself' }, () => {
    const found = problems('app: app.ts\n');
    assert.equal(found.length, 1, found.join('\n'));
    assert.match(found[0]!, /:1:\d+: app: .*app\.ts is TypeScript, which Node v[\d.]+ cannot run by itself: add node_args: \["--import", "tsx"\]/);
    assert.match(problems('app: app.jsx\n')[0]!, /app\.jsx needs a loader for \.jsx/);
  });

  it('a .ts app with --import tsx resolving from cwd is fine; a loader that does not resolve is an error', () => {
    assert.deepEqual(problems(`app: app.ts\nnode_args: ["--import", "tsx"]\ncwd: ${ROOT}\n`), []);
    assert.deepEqual(problems(`app: app.ts\nnode_args: ["--import=tsx"]\ncwd: ${ROOT}\n`), []);
    const found = problems('app: app.ts\nnode_args: ["--import", "no-such-loader-for-handover"]\ncwd: sub\n');
    assert.equal(found.length, 1, found.join('\n'));
    assert.match(found[0]!, /node_args\.1: cannot find "no-such-loader-for-handover" from the workers' directory .*sub: install it there \(npm install --save-dev no-such-loader-for-handover\)/);
  });

  it('handover check reports it (exit 2) and never imports the app', async () => {
    const file = write('app: app.ts\n');
    const r = await runCli(['check', '-c', file]);
    assert.equal(r.code, stripsTypes ? 0 : 2, r.stdout + r.stderr);
    if (!stripsTypes) assert.match(r.stderr + r.stdout, /is TypeScript.*--import", "tsx"/);
    const ok = write(`app: app.ts\nnode_args: ["--import", "tsx"]\ncwd: ${ROOT}\n`);
    assert.equal((await runCli(['check', '-c', ok])).code, 0);
    assert.equal(existsSync(MARKER), false, 'check imported the app');
  });
});
