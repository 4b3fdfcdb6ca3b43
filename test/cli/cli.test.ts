// The CLI as a user meets it: help, exit codes, one-line errors. No root needed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { APPS, HELLO, MasterProcess, runCli } from '../harness/master.js';

const dir = mkdtempSync(join(tmpdir(), 'handover-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('cli', () => {
  it('prints help for the program and for every command', async () => {
    const main = await runCli(['--help']);
    assert.equal(main.code, 0);
    for (const cmd of ['start', 'stop', 'status', 'check']) {
      assert.match(main.stdout, new RegExp(`\\b${cmd}\\b`));
      const r = await runCli([cmd, '--help']);
      assert.equal(r.code, 0, `${cmd} --help`);
      assert.match(r.stdout, new RegExp(`Usage: handover ${cmd}`));
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
      assert.match(status.stdout, /generation 1 \(active\)/);
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
});
