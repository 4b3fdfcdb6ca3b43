// Fault catalogue: worker faults. One master (two workers,
// tcp_migrate_req=1, NODE_OPTIONS=--max-old-space-size=32 in the workers'
// env, the default reload.settle) goes through them in turn: an event loop
// blocked for seconds, a heap exhausted, a crash on every request, a reload
// to an app that throws at load, one to an app that crashes 300 ms after
// ready (caught by the default settle), and one whose spawns the pids
// cgroup refuses.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { errorCount, runLoad, startLoad } from '../harness/load.js';
import { alivePids, APPS, MasterProcess, sleep, until, type LogLine } from '../harness/master.js';
import { needsRoot, Netns } from '../harness/netns.js';

const PORT = 8080;
const URL_ = `http://127.0.0.1:${PORT}/`;
/** The master's heartbeat deadline (worker-handle.ts HEARTBEAT_TIMEOUT_MS) and check interval. */
const HEARTBEAT_TIMEOUT_MS = 5_000;
const HEARTBEAT_MS = 1_000;
const BACKOFF_MAX_MS = 400;
/** The crash storm lasts until the backoff reaches its cap, at most this long. */
const STORM_MAX_MS = 20_000;

/** No `settle` key: the default (1s) is what a bad deploy meets. */
const config = (app: string, env = ''): string =>
  `app: ${app}\nworkers: 2\nlisten: [{ address: 127.0.0.1:${PORT} }]\n` +
  `reload: { watch: false, drain_timeout: 2s }\n` +
  `restart: { min_uptime: 2s, backoff: 100ms, backoff_max: ${BACKOFF_MAX_MS}ms }\n` +
  `env: { NODE_OPTIONS: "--max-old-space-size=32"${env} }\n`;

/** A pids cgroup of our own (v2, or the v1 pids hierarchy), or why there is none. */
function pidsCgroup(): { dir: string; max: string; procs: string; current: string; home: string } | string {
  const v2 = '/sys/fs/cgroup';
  const v1 = existsSync(`${v2}/cgroup.controllers`) ? undefined : `${v2}/pids`;
  const root = v1 ?? v2;
  if (v1 ? !existsSync(`${v1}/tasks`) : !readFileSync(`${v2}/cgroup.controllers`, 'utf8').includes('pids')) return 'no pids cgroup controller here';
  const mine = readFileSync('/proc/self/cgroup', 'utf8');
  const home = (v1 ? /(?:^|\n)\d+:pids:(\/[^\n]*)/ : /(?:^|\n)0::(\/[^\n]*)/).exec(mine)?.[1] ?? '/';
  const dir = join(root, `handover-test-${process.pid}`);
  try {
    mkdirSync(dir);
  } catch (err) {
    return `cannot create a cgroup under ${root}: ${(err as Error).message}`;
  }
  return { dir, max: join(dir, 'pids.max'), procs: join(dir, 'cgroup.procs'), current: join(dir, 'pids.current'), home: join(root, home, 'cgroup.procs') };
}

/** One request from inside the namespace: status code or error code. */
async function fetchOnce(ns: Netns, path: string, timeoutMs: number): Promise<string> {
  const r = await ns.run(process.execPath, ['-e', `
    require('node:http').get('http://127.0.0.1:${PORT}${path}', (res) => { res.resume(); res.on('end', () => console.log(res.statusCode)); })
      .on('error', (e) => console.log(e.code)).setTimeout(${timeoutMs}, function () { console.log('timeout'); this.destroy(); });`], { timeoutMs: timeoutMs + 5_000 });
  return r.stdout.trim();
}

/** The active generation's two pids once both serve (and none of them is in `gone`). */
async function allServing(master: MasterProcess, timeoutMs: number, gone: readonly number[] = []): Promise<number[]> {
  return until(async () => {
    const ws = (await master.status()).generations.find((g) => g.state === 'active')?.workers ?? [];
    const ok = ws.length === 2 && ws.every((w) => w.state === 'serving' && !gone.includes(w.pid as number));
    return ok ? ws.map((w) => w.pid as number) : undefined;
  }, timeoutMs, 'both workers serving');
}

const exits = (master: MasterProcess, from: number): LogLine[] =>
  master.logs.slice(from).filter((l) => l.name === 'master' && typeof l.msg === 'string' && /^worker \d+ \(pid \d+\) (exited|killed|serve failed)/.test(l.msg));

describe('fault catalogue: worker faults', () => {
  it('a blocked event loop, an exhausted heap, a crash on every request, an app that throws at load or crashes during the default settle, a spawn refused by the pids cgroup', { timeout: 150_000 }, async (t) => {
    if (!needsRoot(t)) return;
    const ns = await Netns.create('f-work');
    let master: MasterProcess | undefined;
    try {
      await ns.sysctl('net.ipv4.tcp_migrate_req', 1);
      master = MasterProcess.start({ yaml: config(`${APPS}/faulty.js`), ns });
      let pids = await master.serving();

      // 1. A worker blocks its event loop for longer than the heartbeat
      // deadline: it is killed and replaced, its queue migrates, the other
      // worker serves on. Only the blocking request itself is lost.
      let from = master.logs.length;
      const load = startLoad(ns, { url: URL_, concurrency: 8, duration: 30_000, timeout: 10_000 });
      await sleep(300);
      const blocked = fetchOnce(ns, '/block?ms=30000', 15_000);
      const missed = await master.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('missed its heartbeat'), HEARTBEAT_TIMEOUT_MS + 2 * HEARTBEAT_MS + 3_000, from);
      const replaced = await allServing(master, 10_000, [missed['workerPid'] as number]);
      const summary = await load.stop();
      t.diagnostic(`blocked: ${missed.msg}; load ${JSON.stringify({ ok: summary.ok, errors: summary.errors, max: summary.latencyMs.max, workers: summary.workers })}`);
      const victim = missed['workerPid'] as number;
      assert.ok(pids.includes(victim));
      assert.ok(['ECONNRESET', 'EOF', 'ECONNREFUSED'].includes(await blocked) || /^[A-Z]+$/.test(await blocked), `the blocking request died with its worker: ${await blocked}`);
      assert.equal(summary.timeouts, 0, 'no request hung');
      assert.ok(errorCount(summary) <= 8, `at most what the blocked worker had accepted: ${JSON.stringify(summary.errors)}`);
      const other = pids.find((p) => p !== victim) as number;
      // Closed-loop clients stall one by one on the blocked listener's queue
      // until the kill migrates it, so throughput says little; that the
      // other worker answered, that nothing timed out and nothing else was
      // lost says it all.
      assert.ok((summary.workers[String(other)] ?? 0) > 0, 'the other worker kept serving');
      pids = replaced;
      assert.ok(!pids.includes(victim), 'replaced');

      // 2. A worker exhausts its heap (--max-old-space-size=32 from the
      // config's env, not the master's): it dies, is replaced, the other serves.
      const worker = pids[0] as number;
      assert.match(readFileSync(`/proc/${worker}/environ`, 'latin1'), /(^|\0)NODE_OPTIONS=--max-old-space-size=32(\0|$)/, 'the worker got NODE_OPTIONS');
      assert.doesNotMatch(readFileSync(`/proc/${master.pid}/environ`, 'latin1'), /NODE_OPTIONS=--max-old-space-size=32/, 'the master did not');
      from = master.logs.length;
      const leak = await fetchOnce(ns, '/leak', 20_000);
      const died = await until(() => exits(master!, from)[0], 20_000, 'a worker to die of its heap');
      t.diagnostic(`leak request: ${leak}; ${died.msg}`);
      assert.match(String(died.msg), /killed by SIGABRT|exited with code (134|1)\b/);
      const after = await runLoad(ns, { url: URL_, requests: 200, concurrency: 8 });
      assert.equal(after.ok, 200, JSON.stringify(after));
      pids = await allServing(master, 10_000, [died['workerPid'] as number]);

      // 3. Every request crashes its worker: restarts back off, capped at
      // backoff_max; the master answers promptly throughout and recovers.
      from = master.logs.length;
      // Until the cap shows in the log (a busy machine starts workers slowly), at most STORM_MAX_MS.
      const storm = startLoad(ns, { url: `http://127.0.0.1:${PORT}/crash`, concurrency: 4, duration: STORM_MAX_MS, timeout: 3_000 });
      const capped = (): boolean => master!.logs.slice(from).some((l) => l['backoffMs'] === BACKOFF_MAX_MS);
      let slowest = 0;
      while (storm.child.exitCode === null && !capped()) {
        const started = Date.now();
        assert.equal((await master.status()).pid, master.pid);
        slowest = Math.max(slowest, Date.now() - started);
        await sleep(200);
      }
      await storm.stop();
      const backoffs = master.logs.slice(from).filter((l) => typeof l['backoffMs'] === 'number').map((l) => l['backoffMs'] as number);
      t.diagnostic(`crash storm: ${exits(master, from).length} worker deaths, backoffs ${backoffs.join(',')}, slowest status ${slowest} ms`);
      assert.ok(exits(master, from).length >= 3, 'workers kept dying');
      assert.ok(backoffs.length >= 2 && backoffs.every((b) => b <= BACKOFF_MAX_MS), `backoff capped at ${BACKOFF_MAX_MS} ms: ${backoffs.join(',')}`);
      assert.ok(backoffs.includes(BACKOFF_MAX_MS), 'the cap was reached');
      assert.ok(slowest < 1_000, `status answered within ${slowest} ms during the storm`);
      pids = await allServing(master, BACKOFF_MAX_MS + 10_000);
      const healed = await runLoad(ns, { url: URL_, requests: 200, concurrency: 8 });
      assert.equal(healed.ok, 200, JSON.stringify(healed));

      // 4. A reload to an app that throws at load rolls back.
      writeFileSync(master.configFile, `${config(`${APPS}/throw-at-load.js`)}control: { socket: ${master.controlSocket} }\n`);
      const answer = await master.control({ cmd: 'reload' });
      const report = answer.result as { result: string; reason?: string };
      assert.equal(report.result, 'rolled_back', JSON.stringify(answer));
      assert.match(report.reason ?? '', /boom at load/);
      assert.deepEqual(await allServing(master, 5_000), pids, 'the same workers serve');
      assert.equal(alivePids(pids).length, 2);
      const still = await runLoad(ns, { url: URL_, requests: 200, concurrency: 8 });
      assert.equal(still.ok, 200, JSON.stringify(still));

      // 5. A bad deploy with the defaults: new workers exit 700 ms after
      // their init. The default settle (1s) catches it: rolled back, and no
      // client is refused meanwhile (before the 1s default: 7,791 refused in 10 s).
      // Not 300 ms: on a loaded CI runner one worker was ready 300 ms before
      // the other, so the death came before the generation was ready (also
      // a rollback, but not the settle this phase is about).
      writeFileSync(master.configFile, `${config(`${APPS}/exit-after-ready.js`, ', EXIT_AFTER_MS: "700"')}control: { socket: ${master.controlSocket} }\n`);
      const during = startLoad(ns, { url: URL_, concurrency: 8, duration: 30_000, timeout: 5_000 });
      let settled: { result: string; reason?: string };
      try {
        settled = (await master.control({ cmd: 'reload' })).result as { result: string; reason?: string };
        await sleep(1_000);
      } finally {
        const s = await during.stop();
        t.diagnostic(`default settle: ${JSON.stringify(settled!)}; load ${JSON.stringify({ ok: s.ok, errors: s.errors })}`);
        assert.equal(s.errors['ECONNREFUSED'] ?? 0, 0, 'no client refused');
        assert.ok(errorCount(s) <= 8, `at most what the crashing new workers had accepted: ${JSON.stringify(s.errors)}`);
      }
      assert.equal(settled.result, 'rolled_back', JSON.stringify(settled));
      assert.match(settled.reason ?? '', /settle/);
      assert.deepEqual(await allServing(master, 5_000), pids, 'the same workers serve');

      // 6. The pids cgroup refuses the new workers: rolled back naming
      // EAGAIN, the master (moved alone into the cgroup) survives.
      const cgroup = pidsCgroup();
      if (typeof cgroup === 'string') {
        t.diagnostic(`pids cgroup phase skipped: ${cgroup}`);
      } else {
        try {
          writeFileSync(master.configFile, `${config(`${APPS}/faulty.js`)}control: { socket: ${master.controlSocket} }\n`);
          writeFileSync(cgroup.procs, String(master.pid));
          writeFileSync(cgroup.max, readFileSync(cgroup.current, 'utf8').trim()); // not one more task: no process, no thread
          const refused = (await master.control({ cmd: 'reload' })).result as { result: string; reason?: string };
          writeFileSync(cgroup.max, 'max');
          t.diagnostic(`pids.max reached: ${refused.result}: ${refused.reason}`);
          assert.equal(refused.result, 'rolled_back');
          assert.match(refused.reason ?? '', /EAGAIN/);
          assert.deepEqual(await allServing(master, 5_000), pids);
          const room = (await master.control({ cmd: 'reload' })).result as { result: string };
          assert.equal(room.result, 'ok', 'with room again, the reload succeeds');
        } finally {
          writeFileSync(cgroup.max, 'max');
          for (const pid of readFileSync(cgroup.procs, 'utf8').split('\n').filter(Boolean)) {
            try {
              writeFileSync(cgroup.home, pid);
            } catch {
              /* exited */
            }
          }
          rmdirSync(cgroup.dir);
        }
      }
      assert.equal(master.child.exitCode, null, 'the master never died');
    } finally {
      await master?.dispose();
      await ns.destroy();
    }
  });
});

before(() => Netns.reapStale());
after(() => Netns.reapStale());
