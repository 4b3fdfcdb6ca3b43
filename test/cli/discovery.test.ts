// Without -c, every command finds the user's configuration the same way:
// $HANDOVER_CONFIG, ./handover.yaml (.yml), ./config/handover.yaml, the
// shipped default; and says which one it uses, on stderr, so that --json
// output stays machine-clean. Real masters, started the way a user would.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HELLO, MAIN, ROOT, runCli, until, type CliOptions } from '../harness/master.js';

const root = mkdtempSync(join(tmpdir(), 'handover-discovery-'));
const project = join(root, 'project');
const other = join(project, 'staging.yaml');
mkdirSync(project);
const masters: ChildProcess[] = [];
after(async () => {
  for (const m of masters) {
    if (m.exitCode === null && m.signalCode === null) {
      m.kill('SIGKILL');
      await new Promise((r) => m.once('exit', r));
    }
  }
  rmSync(root, { recursive: true, force: true });
});

const config = (extra = ''): string =>
  `app: ${HELLO}\nworkers: 1\nlisten: [{ address: 127.0.0.1:0 }]\nreload: { watch: false, drain_timeout: 2s }\n${extra}`;
// The project's own file: default control socket (derived from its path).
writeFileSync(join(project, 'handover.yaml'), config());
// Another one, as a unit file would name it: a control socket of its own.
writeFileSync(other, config('control: { socket: ./staging.sock }\n'));

const cli = (args: string[], options: CliOptions = {}) => runCli(args, 30_000, { cwd: project, ...options });

/** `handover start` without -c in `cwd`, as a user runs it; resolves once it serves. */
async function startMaster(env: Record<string, string> = {}): Promise<{ child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, [MAIN, 'start'], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HANDOVER_LOG_PRETTY: '0', ...env } });
  masters.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  await until(() => (stdout.includes('"msg":"serving ') ? true : child.exitCode !== null ? assert.fail(`master exited: ${stderr}`) : undefined), 20_000, 'the master to serve');
  return { child, stderr: () => stderr };
}

describe('configuration discovery', () => {
  it('status, check and reload without -c talk to the master started from ./handover.yaml; HANDOVER_CONFIG picks another', async () => {
    const a = await startMaster();
    assert.match(a.stderr(), /^handover: using \.\/handover\.yaml \(in the current directory/m);
    const projectFile = join(project, 'handover.yaml');

    const status = await cli(['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`^handover master pid ${a.child.pid},`));
    assert.ok(status.stdout.includes(`config:      ${projectFile}\n`), status.stdout);
    assert.match(status.stderr, /using \.\/handover\.yaml/);

    const json = await cli(['status', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { pid: number; config: string };
    assert.deepEqual([parsed.pid, parsed.config], [a.child.pid, projectFile], 'stdout is the JSON alone');

    const check = await cli(['check']);
    assert.equal(check.code, 0, check.stderr);
    assert.ok(check.stdout.startsWith(`configuration ok: ${projectFile}\n`), check.stdout);

    const reload = await cli(['reload']);
    assert.equal(reload.code, 0, reload.stderr);
    assert.match(reload.stdout, /^reloaded: generation 1 -> 2/);

    // With HANDOVER_CONFIG the other file rules, also over ./handover.yaml.
    const env = { HANDOVER_CONFIG: other };
    const none = await cli(['status'], { env });
    assert.equal(none.code, 1, none.stderr);
    assert.match(none.stderr, /using .*staging\.yaml \(from \$HANDOVER_CONFIG\)/);
    assert.match(none.stderr, /no handover master is running .*staging\.sock/);
    const b = await startMaster(env);
    const staged = await cli(['status', '--json'], { env });
    assert.equal(staged.code, 0, staged.stderr);
    assert.deepEqual((JSON.parse(staged.stdout) as { pid: number }).pid, b.child.pid);
    const envCheck = await cli(['check'], { env });
    assert.ok(envCheck.stdout.startsWith(`configuration ok: ${other}\n`), envCheck.stdout);

    for (const [m, options] of [[b, { env }], [a, {}]] as const) {
      const stop = await cli(['stop'], options);
      assert.equal(stop.code, 0, stop.stderr);
      assert.match(stop.stdout, /stopped/);
      assert.equal(m.child.exitCode ?? (await new Promise((r) => m.child.once('exit', r))), 0);
    }
  });

  it('falls back to ./config/handover.yaml, then to the shipped default, and says so', async () => {
    const empty = mkdtempSync(join(root, 'empty-'));
    const fallback = await runCli(['check'], 30_000, { cwd: empty, env: { HANDOVER_CONFIG: undefined } });
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.match(fallback.stderr, /^handover: using the default configuration .*config\/handover\.yaml \(no \.\/handover\.yaml here; `handover init APP` writes one\)$/m);
    assert.ok(fallback.stdout.startsWith(`configuration ok: ${join(ROOT, 'config/handover.yaml')}\n`));

    mkdirSync(join(empty, 'config'));
    writeFileSync(join(empty, 'config/handover.yaml'), config());
    const nested = await runCli(['check'], 30_000, { cwd: empty, env: { HANDOVER_CONFIG: undefined } });
    assert.equal(nested.code, 0, nested.stderr);
    assert.match(nested.stderr, /using \.\/config\/handover\.yaml/);
    assert.ok(nested.stdout.startsWith(`configuration ok: ${join(empty, 'config/handover.yaml')}\n`));

    const named = await runCli(['check', '-c', 'config/handover.yaml'], 30_000, { cwd: empty });
    assert.equal(named.stderr, '', 'a file named with -c needs no announcement');
  });

  it('refuses an ambiguous directory and a HANDOVER_CONFIG that names no file (exit 2, one line)', async () => {
    const both = mkdtempSync(join(root, 'both-'));
    writeFileSync(join(both, 'handover.yaml'), config());
    writeFileSync(join(both, 'handover.yml'), config());
    const ambiguous = await runCli(['status'], 30_000, { cwd: both, env: { HANDOVER_CONFIG: undefined } });
    assert.equal(ambiguous.code, 2);
    assert.equal(ambiguous.stderr, 'handover: both ./handover.yaml and ./handover.yml exist here: remove one, or choose with -c FILE\n');
    const missing = await cli(['check'], { env: { HANDOVER_CONFIG: join(root, 'nope.yaml') } });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^handover: \$HANDOVER_CONFIG names .*nope\.yaml, which is not a file\n$/);
  });
});
