// Fault catalogue: bad configuration, as a user meets it through the CLI
// and a running master. Every field with a wrong type (all reported in one
// pass), an empty and a huge file, a symlink loop as `app` (check, reload,
// and a watched file changed to it while serving), files unreadable by the
// user running the command, and a port held by another uid.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HELLO, MAIN, MasterProcess, runCli, until } from '../harness/master.js';
import { nobodyCannotRead } from '../harness/nobody.js';

const dir = mkdtempSync(join(tmpdir(), 'handover-fconf-'));
chmodSync(dir, 0o755); // the nobody cases read their files from here
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The problem lines of a failed CLI run ("handover: " prefixes the first). */
function problemLines(stderr: string): string[] {
  return stderr.replace(/^handover: /, '').trim().split('\n');
}

function expectLines(lines: readonly string[], path: string, expected: ReadonlyArray<readonly [line: number, key: string, fragment: string]>): void {
  assert.equal(lines.length, expected.length, lines.join('\n'));
  for (const [line, key, fragment] of expected) {
    const hit = lines.find((l) => l.startsWith(`${path}:${line}:`) && (key === '' || l.includes(`: ${key}: `)) && l.includes(fragment));
    assert.ok(hit, `no problem at line ${line}, ${key}, "${fragment}" in:\n${lines.join('\n')}`);
  }
}

function get(port: number): Promise<{ status: number; worker: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, worker: String(res.headers['x-handover-worker']) }));
    });
    req.on('error', reject);
    req.end();
  });
}

const isRoot = process.getuid?.() === 0;
const nobodySkip = !isRoot ? 'needs root to run the CLI as nobody (setpriv)' : nobodyCannotRead(MAIN) ?? false;

describe('fault catalogue: bad configuration', () => {
  it('every top-level field with a wrong type: exit 2, one located line each, in one pass', async () => {
    const path = file('types-top.yaml', [
      'app: 42', 'workers: many', 'listen: 127.0.0.1:80', 'reload: [1]', 'restart: soon', 'stop_delay: later',
      'metrics: on', 'control: sock', 'user: []', 'group: {}', 'log: loud', 'env: [A=1]', '',
    ].join('\n'));
    const r = await runCli(['check', '-c', path]);
    assert.equal(r.code, 2, r.stderr);
    expectLines(problemLines(r.stderr), path, [
      [1, 'app', 'expected a path to the app module'],
      [2, 'workers', 'must be a positive integer or "auto"'],
      [3, 'listen', 'expected a list of listeners'],
      [4, 'reload', 'expected object'],
      [5, 'restart', 'expected object'],
      [6, 'stop_delay', 'expected a duration'],
      [7, 'metrics', 'expected object'],
      [8, 'control', 'expected object'],
      [9, 'user', 'expected a user name or id'],
      [10, 'group', 'expected a group name or id'],
      [11, 'log', 'expected object'],
      [12, 'env', 'expected a map of environment variables'],
    ]);
  });

  it('every nested field with a wrong type, too', async () => {
    const path = file('types-nested.yaml', [
      `app: ${HELLO}`,
      'listen:',
      '  - address: 8080',
      '    backlog: big',
      '    v6only: "yes"',
      '    tls: { cert: 1, key: [] }',
      'reload: { strategy: 1, set_tcp_migrate_req: "no", ready_timeout: soon, settle: true, drain_timeout: [1], watch: 1 }',
      'restart: { min_uptime: {}, backoff: -1, backoff_max: x }',
      'metrics: { listen: 9469 }',
      'control: { socket: 1 }',
      'log: { level: loud }',
      'env: { X: {} }',
      '',
    ].join('\n'));
    const r = await runCli(['check', '-c', path]);
    assert.equal(r.code, 2, r.stderr);
    expectLines(problemLines(r.stderr), path, [
      [3, 'listen.0.address', 'expected host:port'],
      [4, 'listen.0.backlog', 'must be an integer'],
      [5, 'listen.0.v6only', 'expected boolean'],
      [6, 'listen.0.tls.cert', 'expected a path to the certificate'],
      [6, 'listen.0.tls.key', 'expected a path to the private key'],
      [7, 'reload.strategy', 'must be one of'],
      [7, 'reload.set_tcp_migrate_req', 'expected boolean'],
      [7, 'reload.ready_timeout', 'expected a duration'],
      [7, 'reload.settle', 'expected a duration'],
      [7, 'reload.drain_timeout', 'expected a duration'],
      [7, 'reload.watch', 'expected boolean'],
      [8, 'restart.min_uptime', 'expected a duration'],
      [8, 'restart.backoff', 'expected a duration'],
      [8, 'restart.backoff_max', 'expected a duration'],
      [9, 'metrics.listen', 'expected host:port'],
      [10, 'control.socket', 'expected a path to the control socket'],
      [11, 'log.level', 'must be one of'],
      [12, 'env.X', 'must be a string'],
    ]);
  });

  it('an empty file and a 2 MiB file: exit 2, located, the huge one refused without parsing it', async () => {
    const empty = file('empty.yaml', '');
    const r = await runCli(['check', '-c', empty]);
    assert.equal(r.code, 2, r.stderr);
    expectLines(problemLines(r.stderr), empty, [[1, 'app', 'is required'], [1, 'listen', 'is required']]);
    const huge = file('huge.yaml', `app: ${HELLO}\nlisten: [{ address: 127.0.0.1:0 }]\nenv:\n${'  K: v\n'.repeat(350_000)}`);
    const started = Date.now();
    const h = await runCli(['start', '-c', huge]);
    assert.equal(h.code, 2, h.stderr);
    assert.match(h.stderr, new RegExp(`^handover: ${huge}:1:1: the file is 2\\d{6} bytes; a configuration may have at most 1048576 bytes \\(1 MiB\\)\\n$`));
    assert.ok(Date.now() - started < 5_000, `refused in ${Date.now() - started} ms`);
  });

  it('a symlink loop as app: check and reload exit 2 with file:line:col; a watched file changed to it leaves the old generation serving', { timeout: 60_000 }, async () => {
    const loop = join(dir, 'loop.js');
    symlinkSync(loop, loop);
    const broken = `app: ${loop}\nworkers: 2\nlisten: [{ address: 127.0.0.1:0 }]\nreload: { watch: true, drain_timeout: 2s }\n`;
    const check = await runCli(['check', '-c', file('loop.yaml', broken)]);
    assert.equal(check.code, 2, check.stderr);
    assert.match(check.stderr, new RegExp(`^handover: ${join(dir, 'loop.yaml')}:1:6: app: app file cannot be reached: ELOOP \\(too many levels of symbolic links \\(a symlink loop\\?\\)\\): ${loop}\\n$`));

    const master = MasterProcess.start({ yaml: broken.replace(loop, HELLO) });
    try {
      const pids = await master.serving();
      const port = Number((await master.status()).listen[0]?.split(':')[1]);
      const from = master.logs.length;
      writeFileSync(master.configFile, `${broken}control: { socket: ${master.controlSocket} }\n`);
      // The watcher reloads by itself and is refused.
      const refused = await master.waitForLog((l) => typeof l.msg === 'string' && /reload \d+ \(watch\) invalid: .*app: app file cannot be reached: ELOOP/.test(l.msg), 15_000, from);
      assert.match(String(refused.msg), new RegExp(`${master.configFile}:1:6: app: `));
      const cli = await master.cli(['reload']);
      assert.equal(cli.code, 2, `${cli.stdout}${cli.stderr}`);
      assert.match(cli.stdout, new RegExp(`${master.configFile}:1:6: app: app file cannot be reached: ELOOP`));
      const status = await master.status();
      assert.equal(status.generation, 1, 'still generation 1');
      assert.deepEqual(status.generations[0]?.workers.map((w) => w.pid), pids);
      for (let i = 0; i < 20; i++) {
        const r = await get(port);
        assert.equal(r.status, 200);
        assert.ok(pids.includes(Number(r.worker)), `answered by an old worker: ${r.worker}`);
      }
    } finally {
      await master.dispose();
    }
  });

  it('files the user running the command cannot read: EACCES, located, exit 2 (as nobody)', { skip: nobodySkip }, () => {
    const secretApp = file('private-app.js', 'export default (req, res) => res.end("x");\n');
    chmodSync(secretApp, 0o600);
    const path = file('nobody.yaml', `app: ${secretApp}\nlisten: [{ address: 127.0.0.1:0 }]\ncontrol: { socket: /root/handover/c.sock }\n`);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, MAIN, 'check', '-c', path], { encoding: 'utf8', timeout: 15_000 });
    assert.equal(r.status, 2, r.stderr);
    expectLines(problemLines(r.stderr), path, [
      [1, 'app', `app file cannot be read: EACCES (permission denied): ${secretApp}`],
      [3, 'control.socket', 'cannot reach /root/handover/c.sock: EACCES (permission denied)'],
    ]);
  });

  it('a port held by a program of another uid: start exits 1 and names it', { skip: isRoot ? false : 'needs root to run a listener as nobody', timeout: 30_000 }, async () => {
    const holder = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e',
      `const s = require('node:net').createServer().listen(0, '127.0.0.1', () => console.log(s.address().port)); process.stdin.resume(); process.stdin.on('end', () => process.exit(0));`],
      { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      let out = '';
      holder.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      const port = await until(() => (/^\d+\n/.test(out) ? Number(out.trim()) : undefined), 10_000, 'the holder to listen');
      const path = file('held.yaml', `app: ${HELLO}\nlisten: [{ address: 127.0.0.1:${port} }]\ncontrol: { socket: ${join(dir, 'held.sock')} }\n`);
      const r = await runCli(['start', '-c', path], 20_000);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`^handover: 127\\.0\\.0\\.1:${port} is already in use by pid ${holder.pid} \\(node\\): stop it first\\n$`));
    } finally {
      holder.stdin.end();
      holder.kill('SIGKILL');
    }
  });
});
