// The package as a user installs it: `npm pack`, then `npm install` of the
// tarball into an empty project (dependencies from the npm cache or the
// registry), and there: the bin, a master serving the shipped example, a
// strict TypeScript file against the shipped declarations, and an import
// that does nothing. Needs the build (npm test builds first).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ROOT, until } from '../harness/master.js';

const INSTALL_TIMEOUT_MS = 180_000;
const STEP_TIMEOUT_MS = 60_000;

const work = mkdtempSync(join(tmpdir(), 'handover-package-'));
const project = join(work, 'project');
after(() => rmSync(work, { recursive: true, force: true }));

/** The environment without what an outer `npm test` exports to its scripts (npm_config_*, npm_package_*...). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HANDOVER_LOG_PRETTY: '0', ...extra };
  for (const k of Object.keys(env)) if (/^npm_/i.test(k)) delete env[k];
  return env;
}

function run(cmd: string, args: readonly string[], cwd: string, timeout = STEP_TIMEOUT_MS): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: cleanEnv() });
  if (r.error) throw r.error;
  return r;
}

const ok = (r: SpawnSyncReturns<string>, what: string): string => {
  assert.equal(r.status, 0, `${what}: exit ${r.status}\n${r.stderr}`);
  return r.stdout;
};

describe('the installed package', () => {
  let files: string[] = [];

  it('packs what a user needs and nothing else', () => {
    const packed = JSON.parse(ok(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT), 'npm pack')) as {
      filename: string;
      files: { path: string }[];
    }[];
    files = packed[0]?.files.map((f) => f.path) ?? [];
    for (const needed of [
      'dist/main.js', 'dist/index.js', 'dist/index.d.ts', 'dist/api.d.ts', 'dist/worker/main.js', 'config/handover.yaml',
      'config/handover.schema.json', 'systemd/99-handover.conf', 'examples/hello/app.js', 'LICENSE', 'README.md', 'package.json',
    ]) {
      assert.ok(files.includes(needed), `${needed} is in the package`);
    }
    const stray = files.filter((f) => /^(src|test|bench|scripts|\.ci)\//.test(f) || f.includes('node_modules/') || f.endsWith('.ts') && !f.endsWith('.d.ts'));
    assert.deepEqual(stray, []);
    writeFileSync(join(work, 'tarball'), join(work, packed[0]?.filename ?? ''));
  });

  it('installs from the tarball into an empty project; its bin, example, types and import work', async () => {
    const tarball = readFileSync(join(work, 'tarball'), 'utf8');
    run('mkdir', ['-p', project], work);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    ok(run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], project, INSTALL_TIMEOUT_MS), 'npm install');
    const pkg = join(project, 'node_modules/handover');

    // Source maps carry their sources (src/ is not shipped).
    const map = JSON.parse(readFileSync(join(pkg, 'dist/main.js.map'), 'utf8')) as { sourcesContent?: unknown[] };
    assert.ok(map.sourcesContent?.length === 1 && typeof map.sourcesContent[0] === 'string', 'main.js.map embeds its source');

    const help = run('npx', ['handover', '--help'], project);
    assert.match(ok(help, 'npx handover --help'), /^handover: zero-downtime supervisor/);

    // init points editors at the installed schema.
    ok(run('npx', ['handover', 'init', '-c', 'starter.yaml', 'server.js'], project), 'npx handover init');
    assert.match(readFileSync(join(project, 'starter.yaml'), 'utf8'), /^# yaml-language-server: \$schema=\.\/node_modules\/handover\/config\/handover\.schema\.json\n/);

    // `import('handover')` loads the library, prints nothing and starts nothing.
    const imported = run(process.execPath, ['--input-type=module', '-e', "const m = await import('handover'); if (typeof m.start !== 'function') process.exit(3);"], project);
    assert.deepEqual([imported.status, imported.stdout, imported.stderr], [0, '', '']);

    // A strict TypeScript user of the declarations; the @ts-expect-error lines
    // fail the check if the types were too loose (any) to catch them.
    writeFileSync(join(project, 'server.ts'), `import { start, type App, type AppContext, type Config, type ReloadReport } from 'handover';

const app: App = {
  handler(req, res) {
    res.end(req.url ?? '/');
  },
  init(ctx: AppContext): number {
    ctx.signal.addEventListener('abort', () => undefined);
    return ctx.generation + ctx.worker;
  },
};
export default app;

const config: Config = { app: './server.js', workers: 'auto', listen: [{ address: '127.0.0.1:8080' }], reload: { settle: '1s' } };
// @ts-expect-error workers is a number or "auto"
export const wrong: Config = { app: './server.js', workers: 'many', listen: [] };

export async function main(): Promise<ReloadReport> {
  const handover = await start(config, { signals: true });
  const report = await handover.reload();
  // @ts-expect-error the result is a known set of strings
  if (report.result === 'fine') throw new Error('unreachable');
  await handover.stop({ fast: false });
  return report;
}
`);
    const tsc = run(join(ROOT, 'node_modules/.bin/tsc'), [
      '--noEmit', '--strict', '--module', 'nodenext', '--target', 'es2022',
      '--typeRoots', join(ROOT, 'node_modules/@types'), '--types', 'node', 'server.ts',
    ], project);
    ok(tsc, `tsc --strict on the installed declarations\n${tsc.stdout}`);

    // `npx handover start -c FILE` serves the shipped example.
    writeFileSync(join(project, 'handover.yaml'), 'app: ./node_modules/handover/examples/hello/app.js\nworkers: 1\nlisten: [{ address: 127.0.0.1:0 }]\nreload: { watch: false }\n');
    const master = spawn('npx', ['handover', 'start', '-c', 'handover.yaml'], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv(), detached: true });
    let stdout = '';
    let stderr = '';
    master.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    master.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => master.once('exit', (code) => resolve(code)));
    let masterPid: number | undefined;
    try {
      const serving = await until(() => /"pid":(\d+),.*"msg":"serving (\S+) with/.exec(stdout) ?? (master.exitCode !== null ? assert.fail(stderr) : undefined), 30_000, 'the master to serve');
      masterPid = Number(serving[1]);
      const res = await fetch(`http://${serving[2]}/`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /^hello from worker \d+/);
    } finally {
      // npx runs the bin in a child process: stop the master itself (npx passes on its exit code);
      // if it never served, the whole group, which is ours alone.
      if (masterPid !== undefined) process.kill(masterPid, 'SIGTERM');
      else if (master.pid !== undefined) process.kill(-master.pid, 'SIGKILL');
    }
    assert.equal(await exited, 0, stderr);
  });
});
