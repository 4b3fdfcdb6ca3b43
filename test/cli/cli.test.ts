// The CLI as a user meets it: help, exit codes, one-line errors. No root needed.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { commandHelp, COMMANDS, mainHelp, type CommandName } from '../../src/cli/usage.js';
import { readTcpTable } from '../../src/net/index.js';
import { APPS, HELLO, MasterProcess, ROOT, runCli, until } from '../harness/master.js';

const TCP_ESTABLISHED = 0x01;

const dir = mkdtempSync(join(tmpdir(), 'handover-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Whether one of `pids` has accepted a connection on local `port` (holds its socket). */
function acceptedBy(pids: readonly number[], port: number): boolean {
  const established = new Set(readTcpTable().filter((e) => e.localPort === port && e.state === TCP_ESTABLISHED && e.inode !== 0).map((e) => e.inode));
  return pids.some((pid) =>
    readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return established.has(Number(readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/^socket:\[(\d+)\]$/, '$1')));
      } catch {
        return false;
      }
    }),
  );
}

describe('cli', () => {
  it('prints help for the program and for every command, every flag explained with an example', async () => {
    const main = await runCli(['--help']);
    assert.equal(main.code, 0);
    assert.equal(main.stdout, mainHelp());
    const one = await runCli(['reload', '--help']);
    assert.deepEqual([one.code, one.stdout], [0, commandHelp('reload')]);
    for (const [cmd, spec] of Object.entries(COMMANDS)) {
      assert.match(main.stdout, new RegExp(`^  ${cmd}\\s+\\S`, 'm'));
      const help = commandHelp(cmd as CommandName);
      assert.match(help, new RegExp(`^Usage: handover ${cmd}`));
      for (const flag of [...Object.keys(spec.flags), 'help']) {
        assert.match(help, new RegExp(`^  (-\\w, |    )--${flag}( [A-Z]+)?  +\\w.{10,}$`, 'm'), `${cmd} --${flag} has a line of help`);
      }
      assert.match(help, /\nExamples:\n(  handover .+\n)+$/, `${cmd} has examples`);
    }
  });

  it('with no arguments prints the help on stderr and exits 2; --version prints the version', async () => {
    const bare = await runCli([]);
    assert.equal(bare.code, 2);
    assert.equal(bare.stdout, '');
    assert.match(bare.stderr, /^handover: zero-downtime supervisor/);
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const r = await runCli([flag]);
      assert.deepEqual([r.code, r.stdout, r.stderr], [0, `${version}\n`, '']);
    }
  });

  it('exits 2 on usage errors, with one line and no stack', async () => {
    for (const args of [['frobnicate'], ['status', '--bogus'], ['check', 'extra']]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });

  it('check accepts the embedded default configuration', async () => {
    const r = await runCli(['check', '-c', 'config/handover.yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configuration ok/);
  });

  const bad: [string, string, RegExp][] = [
    ['unknown key', `app: ${HELLO}\nlisten: [{ address: 127.0.0.1:0 }]\nbogus: 1\n`, /:3:\d+: bogus/],
    ['nested unknown key', `app: ${HELLO}\nlisten:\n  - address: 127.0.0.1:0\n    backlg: 5\n`, /:4:\d+: listen\.0\.backlg/],
    ['wrong type', `app: ${HELLO}\nworkers: many\nlisten: [{ address: 127.0.0.1:0 }]\n`, /:2:\d+: workers/],
    ['missing app file', `app: ./nope.js\nlisten: [{ address: 127.0.0.1:0 }]\n`, /:1:\d+: app: .*not found/],
    ['port out of range', `app: ${HELLO}\nlisten:\n  - address: 127.0.0.1:70000\n`, /:3:\d+: listen\.0\.address: .*range/],
    ['unparseable address', `app: ${HELLO}\nlisten:\n  - address: "not an address"\n`, /:3:\d+: listen\.0\.address/],
    ['workers < 1', `app: ${HELLO}\nworkers: 0\nlisten: [{ address: 127.0.0.1:0 }]\n`, /:2:\d+: workers/],
  ];
  for (const [name, text, pattern] of bad) {
    it(`refuses a configuration with ${name}: exit 2, file:line and key path`, async () => {
      const file = configFile(`${name.replace(/\W+/g, '-')}.yaml`, text);
      for (const cmd of ['check', 'start']) {
        const r = await runCli([cmd, '-c', file], 15_000);
        assert.equal(r.code, 2, `${cmd}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
        assert.match(r.stderr, pattern);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      }
    });
  }

  it('status and stop say clearly that no master runs, and exit 1', async () => {
    const file = configFile('idle.yaml', `app: ${HELLO}\nlisten: [{ address: 127.0.0.1:0 }]\ncontrol: { socket: ${join(dir, 'idle.sock')} }\n`);
    for (const cmd of ['status', 'stop']) {
      const r = await runCli([cmd, '-c', file]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no handover master is running/);
    }
  });

  it('refuses a port another process already listens on, naming it, without hanging', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      const file = configFile('taken.yaml', `app: ${HELLO}\nlisten: [{ address: 127.0.0.1:${port} }]\ncontrol: { socket: ${join(dir, 'taken.sock')} }\n`);
      const started = Date.now();
      const r = await runCli(['start', '-c', file], 15_000);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port} is already in use by pid ${process.pid} \\(node\\)`));
      assert.ok(Date.now() - started < 10_000);
    } finally {
      server.close();
    }
  });

  for (const [app, message] of [
    ['throw-at-load.js', /boom at load/],
    ['throw-at-init.js', /boom at init/],
  ] as const) {
    it(`start fails with exit 1 and the app's error when the app ${app.replace('.js', '').replaceAll('-', ' ')}`, async () => {
      const master = MasterProcess.start({ yaml: `app: ${join(APPS, app)}\nworkers: 2\nlisten: [{ address: 127.0.0.1:0 }]\n` });
      const exit = await master.exited;
      await master.dispose();
      assert.equal(exit.code, 1);
      assert.match(master.stderr, message);
      assert.ok(master.logs.some((l) => l.name === 'worker' && l.level === 50), 'the worker logged its failure');
    });
  }

  it('start, status, a second start refused, stop', async () => {
    const master = MasterProcess.start({ yaml: `app: ${HELLO}\nworkers: 2\nlisten: [{ address: 127.0.0.1:0 }]\n` });
    try {
      await master.serving();
      const status = await master.cli(['status']);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /^1 active +0 /m);
      assert.equal(status.stdout.match(/serving/g)?.length, 2);
      const second = await runCli(['start', '-c', master.configFile], 15_000);
      assert.equal(second.code, 1);
      assert.match(second.stderr, /already running/);
      const stop = await master.cli(['stop']);
      assert.equal(stop.code, 0, stop.stderr);
      assert.match(stop.stdout, /stopped/);
      assert.equal((await master.exited).code, 0);
    } finally {
      await master.dispose();
    }
  });
  it('check --json prints the result, or every problem with file, line and key, and nothing else', async () => {
    const good = configFile('good.yaml', `app: ${HELLO}\nlisten: [{ address: 127.0.0.1:0 }]\n`);
    const ok = await runCli(['check', '--json', '-c', good]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(
      (({ ok: o, file, listen }) => ({ o, file, listen }))(JSON.parse(ok.stdout) as { ok: boolean; file: string; listen: unknown }),
      { o: true, file: good, listen: [{ address: '127.0.0.1:0', tls: false }] },
    );
    const bad = configFile('bad-json.yaml', `app: ${HELLO}\nworkers: 0\nlisten: [{ address: 127.0.0.1:0 }]\nbogus: 1\n`);
    const r = await runCli(['check', '--json', '-c', bad]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, '');
    const { ok: valid, problems } = JSON.parse(r.stdout) as { ok: boolean; problems: { file: string; line: number; path: string }[] };
    assert.equal(valid, false);
    assert.deepEqual(problems.map((p) => [p.file, p.line, p.path]), [[bad, 2, 'workers'], [bad, 4, 'bogus']]);
  });

  it('init writes a commented starter configuration that check accepts, and never overwrites', async () => {
    const app = mkdtempSync(join(dir, 'app-'));
    mkdirSync(join(app, 'dist'));
    writeFileSync(join(app, 'dist/server.js'), 'export default (req, res) => res.end("ok");\n');
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', main: 'dist/server.js' }));
    const r = await runCli(['init'], 15_000, { cwd: app });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^wrote \.\/handover\.yaml for \.\/dist\/server\.js/);
    const text = readFileSync(join(app, 'handover.yaml'), 'utf8');
    assert.match(text, /^# yaml-language-server: \$schema=\S+\/config\/handover\.schema\.json\n/);
    assert.match(text, /^app: \.\/dist\/server\.js$/m);
    assert.ok(text.split('\n').filter((l) => l.includes('# ')).length > 20, 'commented');
    const check = await runCli(['check'], 15_000, { cwd: app, env: { HANDOVER_CONFIG: undefined } });
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, new RegExp(`app: +${join(app, 'dist/server.js')}`));

    const again = await runCli(['init', 'other.js'], 15_000, { cwd: app });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^handover: init: .*handover\.yaml already exists; not overwriting it\n$/);
    assert.equal(readFileSync(join(app, 'handover.yaml'), 'utf8'), text);

    // -c names the file to write; the app path is written relative to it.
    const nested = await runCli(['init', '-c', 'deploy/web.yaml', 'dist/server.js'], 15_000, { cwd: app });
    assert.equal(nested.code, 0, nested.stderr);
    assert.match(readFileSync(join(app, 'deploy/web.yaml'), 'utf8'), /^app: \.\.\/dist\/server\.js$/m);

    const bare = mkdtempSync(join(dir, 'bare-'));
    const noApp = await runCli(['init'], 15_000, { cwd: bare });
    assert.equal(noApp.code, 2);
    assert.match(noApp.stderr, /name the app module, e\.g\. handover init dist\/server\.js/);
  });

  it('status shows an old worker that finished draining as "exited (drained)", next to one still draining', async () => {
    const master = MasterProcess.start({ yaml: `app: ${HELLO}\nworkers: 2\nlisten: [{ address: 127.0.0.1:0 }]\nreload: { watch: false, drain_timeout: 20s }\n` });
    try {
      await master.serving();
      const [address] = (await master.status()).listen;
      // A slow request keeps its worker draining after the reload; the other old worker has none.
      const slow = fetch(`http://${address}/slow?ms=3000`).then(async (r) => [r.status, await r.text()] as const);
      const pids = (await master.status()).generations[0]?.workers.map((w) => w.pid ?? 0) ?? [];
      await until(() => (acceptedBy(pids, Number(address?.split(':')[1])) ? true : undefined), 5_000, 'an old worker to accept the request');
      const reload = await master.control({ cmd: 'reload' });
      assert.equal(reload.ok, true, reload.error);
      const table = await until(async () => {
        const r = await master.cli(['status']);
        return /exited \(drained\)/.test(r.stdout) && /draining/.test(r.stdout.replace(/\d+ draining/, '')) ? r.stdout : undefined;
      }, 10_000, 'one old worker exited (drained), one draining');
      assert.match(table, /^1 draining +\d +(\d+|-) +(exited \(drained\)|draining) /m);
      assert.doesNotMatch(table, /\bdown\b/);
      const [code, body] = await slow;
      assert.equal(code, 200);
      assert.match(body, /hello from worker/);
    } finally {
      await master.dispose();
    }
  });

  it('on a terminal-style log, a reload is a few single lines, not the report dumped field by field', async () => {
    const master = MasterProcess.start({
      yaml: `app: ${HELLO}\nworkers: 2\nlisten: [{ address: 127.0.0.1:0 }]\nreload: { watch: false, drain_timeout: 2s }\n`,
      env: { HANDOVER_LOG_PRETTY: '1' },
    });
    try {
      await master.waitForLog((l) => typeof l.msg === 'string' && / INFO .*serving /.test(l.msg));
      const from = master.logs.length;
      assert.equal((await master.control({ cmd: 'reload' })).ok, true);
      await master.waitForLog((l) => typeof l.msg === 'string' && /generation 1 drained/.test(l.msg), 15_000, from);
      const lines = master.logs.slice(from).map((l) => String(l.msg));
      assert.ok(lines.length <= 8, `${lines.length} lines for one reload:\n${lines.join('\n')}`);
      for (const line of lines) assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN) +\((master|worker)\/\d+\): \S/, 'one event, one line');
      assert.ok(lines.some((l) => /reload 1 \(control\) generation 1 -> 2/.test(l)));
      assert.ok(!lines.some((l) => l.includes('\x1b[')), 'no colours when stdout is not a terminal');
    } finally {
      await master.dispose();
    }
  });
});
