// Fault catalogue: descriptors run out, in the master and in a worker.
// In the master, the soft RLIMIT_NOFILE is set to what it holds plus 1,
// 2, ... until a reload fits: each step fails somewhere else (reading the
// configuration, the new listener, the first worker's spawn, the second's),
// each must be refused or roll back naming EMFILE and
// leave no descriptor behind. Node 20's child_process leaks the pipes of a
// spawn that fails with EMFILE, so WorkerHandle refuses a spawn that
// would not fit (SPAWN_DESCRIPTORS): before that, +8 left three sockets.
// In a worker, libuv resets the connections it cannot accept and Node says
// nothing; the worker's own check with each heartbeat must.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runLoad } from '../harness/load.js';
import { HELLO, MasterProcess, sleep, until, withMaster, type Status } from '../harness/master.js';
import { Netns } from '../harness/netns.js';
import { hasPrlimit, setNofile } from '../harness/prlimit.js';

const PORT = 8080;
const URL_ = `http://127.0.0.1:${PORT}/`;

const config = (extra = '', reload = 'watch: false, drain_timeout: 2s'): string =>
  `app: ${HELLO}\nworkers: 2\nlisten: [{ address: 127.0.0.1:${PORT} }]\nreload: { ${reload} }\n${extra}`;

interface Report {
  id: number;
  result: string;
  refusal?: string;
  reason?: string;
  generation: number | null;
}

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;
/** `fd -> target` lines, for a failure message. */
const fdList = (pid: number): string[] =>
  readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return `${fd} -> ${readlinkSync(`/proc/${pid}/fd/${fd}`)}`;
    } catch {
      return `${fd} -> ?`;
    }
  });

function active(s: Status): Status['generations'][number] | undefined {
  return s.generations.find((g) => g.generation === s.generation);
}

async function serving(master: MasterProcess, timeoutMs: number): Promise<number[]> {
  return until(async () => {
    const ws = active(await master.status())?.workers ?? [];
    return ws.length > 0 && ws.every((w) => w.state === 'serving') ? ws.map((w) => w.pid as number) : undefined;
  }, timeoutMs, 'every worker of the active generation serving');
}

// Runs in a child whose descriptors are all taken (opened until EMFILE under
// a low limit), then again with them closed: each reader either throws a
// ResourceShortage (not a problem of the file) or gets its answer.
const src = (path: string): string => JSON.stringify(new URL(`../../src/${path}`, import.meta.url).pathname);
const SHORT_CHILD = `
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { loadConfig } from ${src('config/index.ts')};
import { readPem } from ${src('tls/pem.ts')};
import { resolveIdentity } from ${src('master/identity.ts')};
import { probeSysctl } from ${src('bpf/probe.ts')};
// The parser thread's entry is compiled JavaScript: this reader comes from dist/.
import { loadConfigAsync } from ${JSON.stringify(new URL('../../dist/config/index.js', import.meta.url).pathname)};
const [dir] = process.argv.slice(-1);
const config = dir + '/handover.yaml';
writeFileSync(dir + '/app.js', 'module.exports = () => {};');
writeFileSync(config, 'app: ./app.js\\nlisten: [{ address: 127.0.0.1:8080 }]\\n');
writeFileSync(dir + '/tls.crt', 'not a certificate');
const readers = {
  config: () => loadConfig(config).app,
  pem: () => readPem(dir + '/tls.crt', 'certificate').length,
  identity: () => resolveIdentity('root').uid,
  sysctl: () => probeSysctl(dir + '/app.js').value,
  thread: async () => (await loadConfigAsync(config, { inlineMaxBytes: 0 })).app,
};
const run = async () => Object.fromEntries(await Promise.all(Object.entries(readers).map(async ([name, read]) => {
  try {
    return [name, { value: String(await read()) }];
  } catch (err) {
    return [name, { shortage: err.name === 'ResourceShortage', code: err.code, message: err.message }];
  }
})));
const held = [];
for (;;) {
  try { held.push(openSync('/dev/null', 'r')); } catch (err) { if (err.code === 'EMFILE') break; throw err; }
}
const starved = await run();
for (const fd of held) closeSync(fd);
process.stdout.write(JSON.stringify({ held: held.length, starved, fed: await run() }));
`;

describe('fault catalogue: descriptors', () => {
  it('out of descriptors, the configuration (in line or in its parser thread), a TLS file, /etc/passwd and the sysctl are not called invalid or absent: each says EMFILE as a shortage, and reads with room', { skip: hasPrlimit ? false : 'no prlimit' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'handover-short-'));
    try {
      // A file, not -e: the parser thread inherits the process's flags, and --input-type would refuse it.
      writeFileSync(join(dir, 'child.mjs'), SHORT_CHILD);
      const r = spawnSync('prlimit', ['--nofile=256:256', '--', process.execPath, '--import', 'tsx', join(dir, 'child.mjs'), dir], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { held: number; starved: Record<string, Record<string, unknown>>; fed: Record<string, Record<string, unknown>> };
      for (const name of ['config', 'pem', 'identity', 'sysctl', 'thread']) {
        const starved = out.starved[name]!;
        assert.equal(starved.shortage, true, `${name} with no descriptor left: ${JSON.stringify(starved)}`);
        assert.equal(starved.code, 'EMFILE');
        assert.match(String(starved.message), /EMFILE/);
        assert.ok(out.fed[name]?.value !== undefined, `${name} with room: ${JSON.stringify(out.fed[name])}`);
      }
      assert.match(String(out.starved.config!.message), new RegExp(`^cannot read ${dir}/handover.yaml: EMFILE \\(too many open files in this process\\)$`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });


  it('descriptors run out in the master at every step of a reload: each rolls back naming EMFILE, nothing leaks, the old generation serves; with enough the reload goes through', { timeout: 120_000 }, async (t) => {
    await withMaster(t, 'p-emfile', config(), async (ns, master, pids) => {
      const hard = /Max open files\s+\d+\s+(\d+)/.exec(readFileSync(`/proc/${master.pid}/limits`, 'utf8'))?.[1] ?? '1024';
      // The master opens descriptors for a moment now and then (/proc reads): the fewest seen is its own.
      let before = fdList(master.pid);
      for (let i = 0; i < 10; i++, await sleep(20)) {
        const now = fdList(master.pid);
        if (now.length < before.length) before = now;
      }
      const baseline = before.length;
      const outcomes: string[] = [];
      try {
        for (let extra = 1; extra <= 40; extra++) {
          // The soft limit only: raising a hard limit back needs CAP_SYS_RESOURCE.
          setNofile(master.pid, `${baseline + extra}:${hard}`);
          const report = (await master.control({ cmd: 'reload' })).result as Report;
          setNofile(master.pid, `${hard}:${hard}`);
          outcomes.push(`+${extra}: ${report.result}${report.reason ? ` (${report.reason})` : ''}`);
          if (report.result === 'ok') break;
          // Before anything is built (the configuration, the sysctl) a reload is refused for want of
          // resources, not called invalid; from the first listener on it rolls back.
          const refused = report.result === 'refused' && report.refusal === 'resources';
          assert.ok(refused || report.result === 'rolled_back', outcomes.join('\n'));
          assert.match(report.reason ?? '', /EMFILE/, `the reason names EMFILE:\n${outcomes.join('\n')}`);
          assert.deepEqual(await serving(master, 5_000), pids, 'the old generation serves on');
          assert.equal((await ns.listeners(PORT)).length, 2, 'no listener lost, none left over');
          await until(() => (fdCount(master.pid) <= baseline ? true : undefined), 5_000, 'descriptors back').catch(() => {
            const now = fdList(master.pid);
            const inodes = now.filter((l) => !before.includes(l)).map((l) => /socket:\[(\d+)\]/.exec(l)?.[1]).filter(Boolean);
            const tables = ['tcp', 'tcp6', 'unix'].map((f) => readFileSync(`/proc/${master.pid}/net/${f}`, 'utf8').split('\n').filter((row) => inodes.some((i) => row.includes(` ${i} `) || row.endsWith(` ${i}`)) ).map((row) => `${f}: ${row.trim()}`)).flat();
            assert.fail(`after +${extra}: descriptors ${baseline} -> ${now.length}; new: ${now.filter((l) => !before.includes(l)).join(', ')}; gone: ${before.filter((l) => !now.includes(l)).join(', ')}; ${tables.join(' | ')}`);
          });
        }
      } finally {
        setNofile(master.pid, `${hard}:${hard}`);
      }
      t.diagnostic(outcomes.join('; '));
      assert.match(outcomes.at(-1) ?? '', /: ok$/, `with enough descriptors the reload goes through:\n${outcomes.join('\n')}`);
      const load = await runLoad(ns, { url: URL_, requests: 200, concurrency: 8 });
      assert.equal(load.ok, 200);
    }, { migrateReq: 1 });
  });


  it('descriptors run out in a worker: it says so within seconds, its listener stays, the master and the other worker serve, a reload brings fresh workers', { timeout: 60_000 }, async (t) => {
    await withMaster(t, 'f-wfd', config(), async (ns, master, pids) => {
      const victim = pids[0]!;
      const limit = fdCount(victim) + 4;
      setNofile(victim, `${limit}:${limit}`);
      const from = master.logs.length;
      const starved = await runLoad(ns, { url: URL_, requests: 4_000, concurrency: 32 });
      // libuv resets what it cannot accept; Node says nothing of it. The worker's own check does.
      const warned = await until(
        () => master.logs.slice(from).find((l) => typeof l.msg === 'string' && l.msg.startsWith('worker near its descriptor limit') && l['pid'] === victim),
        5_000,
        'the starved worker to warn',
      );
      t.diagnostic(`${JSON.stringify({ ok: starved.ok, errors: starved.errors, workers: starved.workers })}; ${warned.msg}`);
      assert.match(String(warned.msg), new RegExp(` of ${limit} open \\(RLIMIT_NOFILE\\)`));
      const said = (): string => master.logs.slice(from).filter((l) => Number(l['level'] ?? 0) >= 40).slice(-10).map((l) => JSON.stringify(l)).join('\n');
      assert.deepEqual(await serving(master, 5_000), pids, `both workers still serve: the starved one is alive; the master said:\n${said()}`);
      assert.equal((await ns.listeners(PORT)).length, 2, 'no listener lost');
      assert.ok(Object.keys(starved.workers).length === 2, 'the other worker kept answering');
      const report = (await master.control({ cmd: 'reload' })).result as Report;
      assert.equal(report.result, 'ok');
      const after = await runLoad(ns, { url: URL_, requests: 2_000, concurrency: 32 });
      assert.equal(after.ok, 2_000, `fresh workers, fresh limits: ${JSON.stringify(after.errors)}`);
    }, { migrateReq: 1 });
  });
});

before(() => Netns.reapStale());
after(() => Netns.reapStale());
