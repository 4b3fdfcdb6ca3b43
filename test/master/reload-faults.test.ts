// The reload under faults (issue: the core's correctness holes): a spawn
// that fails, fewer workers under inherit, a protocol change with queued
// connections, a rollback of workers that already served, a worker dying
// during stop_delay, one drain deadline per generation, refusals, a stop
// during a reload, an old worker dying mid-reload. Each runs a real master
// in a network namespace of its own, with real clients inside it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { errorCount, runLoad, startLoad } from '../harness/load.js';
import { alivePids, APPS, HELLO, MasterProcess, sleep, until, withMaster, type LogLine, type ReloadReport, type Status } from '../harness/master.js';
import { Netns } from '../harness/netns.js';
import { HALF_OPEN_GRACE_MS } from '../../src/master/generation.js';

const PORT = 8080;
const URL_ = `http://127.0.0.1:${PORT}/`;

function yaml(o: { app?: string; workers?: number; strategy?: string; drain?: string; settle?: string; ready?: string; extra?: string } = {}): string {
  return [
    `app: ${o.app ?? HELLO}`,
    `workers: ${o.workers ?? 2}`,
    'listen:',
    `  - address: 127.0.0.1:${PORT}`,
    'reload:',
    `  strategy: ${o.strategy ?? 'auto'}`,
    `  drain_timeout: ${o.drain ?? '5s'}`,
    `  ready_timeout: ${o.ready ?? '10s'}`,
    `  settle: ${o.settle ?? '0s'}`,
    '  watch: false',
    o.extra ?? '',
  ].join('\n') + '\n';
}

function rewrite(master: MasterProcess, text: string): void {
  writeFileSync(master.configFile, `${text}control: { socket: ${master.controlSocket} }\n`);
}

async function reload(master: MasterProcess): Promise<ReloadReport> {
  const answer = await master.control({ cmd: 'reload' });
  return answer.result as ReloadReport;
}

function activeWorkers(s: Status): { pid: number | null; state: string }[] {
  return s.generations.find((g) => g.generation === s.generation)?.workers ?? [];
}

function signalAll(pids: readonly number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  }
}

const logged = (text: string) => (l: LogLine): boolean => typeof l.msg === 'string' && l.msg.includes(text);

describe('reload faults', () => {
  before(() => Netns.reapStale());
  after(() => Netns.reapStale());

  it('a spawn that fails for want of descriptors rolls the reload back; a replacement that cannot spawn backs off', { timeout: 90_000 }, async (t) => {
    await withMaster(t, 'rf-emfile', yaml(), async (ns, master, pids) => {
      // The master's own descriptor limit, lowered while it runs: 60 new workers cannot all be spawned.
      execFileSync('prlimit', ['--pid', String(master.pid), '--nofile=100:']);
      rewrite(master, yaml({ workers: 60 }));
      const report = await reload(master);
      assert.equal(report.result, 'rolled_back', JSON.stringify(report));
      assert.match(report.reason ?? '', /EMFILE/, 'the reason names EMFILE');
      assert.equal(master.child.exitCode, null, 'the master is alive');
      assert.deepEqual(alivePids(pids), pids, 'the old workers serve on');
      const served = await runLoad(ns, { url: URL_, requests: 200, concurrency: 4 });
      assert.equal(served.ok, 200, JSON.stringify(served));

      // No descriptor left to spawn with: a dead worker's replacement fails, backs off, and is logged.
      rewrite(master, yaml());
      await sleep(HALF_OPEN_GRACE_MS + 1_000); // the rolled-back listeners' copies are closed by now
      // RLIMIT_NOFILE bounds descriptor numbers: at the lowest free one, no new descriptor can be made.
      const open = new Set(readdirSync(`/proc/${master.pid}/fd`).map(Number));
      let lowestFree = 0;
      while (open.has(lowestFree)) lowestFree++;
      execFileSync('prlimit', ['--pid', String(master.pid), `--nofile=${lowestFree}:`]);
      const from = master.logs.length;
      process.kill(pids[0] as number, 'SIGKILL');
      await master.waitForLog((l) => logged('could not be spawned')(l) || logged('could not start a replacement')(l), 10_000, from);
      await master.waitForLog(logged('restarting in'), 10_000, from);
      execFileSync('prlimit', ['--pid', String(master.pid), '--nofile=4096:']);
      await master.waitForLog(logged('replaced'), 15_000, from);
      const after = await master.status();
      assert.equal(activeWorkers(after).filter((w) => w.state === 'serving').length, 2, JSON.stringify(after));
    });
  });

  it('inherit with fewer workers keeps every socket: connections queued on busy old workers all get a 200', { timeout: 60_000 }, async (t) => {
    await withMaster(t, 'rf-shrink', yaml({ workers: 4 }), async (ns, master, pids) => {
      signalAll(pids, 'SIGSTOP');
      const hold = startLoad(ns, { url: URL_, mode: 'hold', connections: 40, timeout: 20_000 });
      try {
        await hold.sent;
        await until(async () => ((await ns.listeners(PORT)).reduce((n, l) => n + l.recvQ, 0) >= 40 ? true : undefined), 5_000, '40 queued');
        rewrite(master, yaml({ workers: 2 }));
        const report = await reload(master);
        assert.equal(report.result, 'ok', JSON.stringify(report));
        assert.equal(report.strategy, 'inherit');
        const summary = await hold.done;
        t.diagnostic(`report ${JSON.stringify(report)}; hold ${JSON.stringify(summary)}`);
        assert.equal(summary.ok, 40, `every queued connection got a 200: ${JSON.stringify(summary)}`);
        assert.equal(report.dropped, 0);
        assert.equal((await ns.listeners(PORT)).length, 4, 'no socket closed: the two new workers listen on all four');
        const s = await master.status();
        assert.equal(activeWorkers(s).length, 2);
      } finally {
        signalAll(pids, 'SIGCONT');
        await hold.stop();
      }
    }, { migrateReq: 0 });
  });

  it('a listener whose protocol changes is not migrated into: queued plaintext connections are served in plaintext', { timeout: 60_000 }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'handover-rf-tls-'));
    try {
      const cert = join(dir, 'tls.crt');
      const key = join(dir, 'tls.key');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
      await withMaster(t, 'rf-proto', yaml(), async (ns, master, pids) => {
        signalAll(pids, 'SIGSTOP');
        const hold = startLoad(ns, { url: URL_, mode: 'hold', connections: 30, timeout: 20_000 });
        try {
          await hold.sent;
          await until(async () => ((await ns.listeners(PORT)).reduce((n, l) => n + l.recvQ, 0) >= 30 ? true : undefined), 5_000, '30 queued');
          rewrite(master, yaml().replace(`  - address: 127.0.0.1:${PORT}\n`, `  - address: 127.0.0.1:${PORT}\n    tls: { cert: ${cert}, key: ${key} }\n`));
          const from = master.logs.length;
          const answer = reload(master);
          await master.waitForLog(logged('(protocol changed) before it closes'), 20_000, from);
          signalAll(pids, 'SIGCONT');
          const report = await answer;
          const summary = await hold.done;
          t.diagnostic(`report ${JSON.stringify(report)}; hold ${JSON.stringify(summary)}`);
          assert.equal(report.result, 'ok', JSON.stringify(report));
          assert.deepEqual(report.listeners.map((l) => l.action), ['replace']);
          assert.equal(summary.ok, 30, `every queued plaintext client got its 200 in plaintext: ${JSON.stringify(summary)}`);
          assert.equal(report.dropped, 0);
        } finally {
          signalAll(pids, 'SIGCONT');
          await hold.stop();
        }
      }, { migrateReq: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a rollback drains new workers that already served instead of killing them', { timeout: 60_000 }, async (t) => {
    const app = join(APPS, 'hang-one.js');
    await withMaster(t, 'rf-rb', yaml({ app, ready: '3s' }), async (ns, master, pids) => {
      const from = master.logs.length;
      const answer = reload(master);
      // Wait until new worker 0 listens (new worker 1 hangs in init until the ready timeout).
      await until(async () => ((await ns.listeners(PORT)).length === 3 ? true : undefined), 5_000, 'three listeners in LISTEN');
      const slow = startLoad(ns, { url: `${URL_}slow?ms=3000`, mode: 'hold', connections: 30, timeout: 15_000 });
      const report = await answer;
      const summary = await slow.done;
      t.diagnostic(`report ${JSON.stringify(report)}; slow ${JSON.stringify(summary)}`);
      assert.equal(report.result, 'rolled_back', JSON.stringify(report));
      const workers = Object.keys(summary.workers).map(Number);
      assert.ok(workers.some((pid) => !pids.includes(pid)), `some slow requests were served by the rolled-back worker: ${JSON.stringify(summary.workers)}`);
      assert.equal(summary.ok, 30, `every in-flight request finished, also on the rolled-back worker: ${JSON.stringify(summary)}`);
      assert.deepEqual(alivePids(pids), pids, 'the old generation serves on');
      await until(async () => ((await master.status()).generations.length === 1 ? true : undefined), 15_000, 'the rolled-back generation drained');
      assert.equal(master.logs.slice(from).filter(logged('killed by SIGKILL')).length, 1, 'only the worker hung in init was killed');
    }, { migrateReq: 1 });
  });

  it('a worker that dies during stop_delay does not leave its socket in LISTEN without an acceptor', { timeout: 60_000 }, async (t) => {
    await withMaster(t, 'rf-delay', yaml({ extra: 'stop_delay: 4s' }), async (ns, master, pids) => {
      master.signal('SIGTERM');
      await sleep(300);
      process.kill(pids[0] as number, 'SIGKILL');
      await sleep(300);
      const load = await runLoad(ns, { url: URL_, mode: 'newconn', duration: 2_000, concurrency: 8, timeout: 1_500 });
      t.diagnostic(`during stop_delay after the kill: ${JSON.stringify(load)}`);
      assert.equal(load.timeouts, 0, `no client hangs on a socket nobody accepts from: ${JSON.stringify(load)}`);
      assert.equal(errorCount(load), 0, JSON.stringify(load));
      assert.ok(load.ok > 50, 'the surviving worker served on');
      const exit = await master.exited;
      assert.equal(exit.code, 0);
    }, { migrateReq: 0 });
  });

  it('one generation, one deadline: old workers are killed at their own drain_timeout, not the new one', { timeout: 60_000 }, async (t) => {
    await withMaster(t, 'rf-deadline', yaml({ drain: '2s' }), async (ns, master, pids) => {
      const slow = startLoad(ns, { url: `${URL_}slow?ms=20000`, mode: 'hold', connections: 4, timeout: 30_000 });
      await slow.sent;
      await sleep(300);
      rewrite(master, yaml({ drain: '25s' }));
      const r = await master.control({ cmd: 'reload', waitDrain: true }, 40_000);
      const report = r.result as ReloadReport;
      t.diagnostic(JSON.stringify(report));
      assert.equal(report.result, 'ok');
      assert.ok(report.drain, 'drain figures');
      assert.ok(report.drain.durationMs < 10_000, `drained by the old deadline (2 s + grace), not the new 25 s: ${report.drain.durationMs} ms`);
      // The workers themselves cut the 4 slow connections at their deadline and exit: the master has nothing to kill.
      assert.equal(report.drain.killed, 4, `the slow connections were cut by the workers: ${JSON.stringify(report.drain)}`);
      assert.ok(!master.logs.some(logged('still running after drain_timeout')), 'no worker had to be killed: worker and master agree on the deadline');
      assert.deepEqual(alivePids(pids), []);
      await slow.stop();
    });
  });

  it('a reload while stopping is refused (not "invalid"), and the CLI exits 1', { timeout: 60_000 }, async (t) => {
    await withMaster(t, 'rf-refuse', yaml({ extra: 'stop_delay: 5s' }), async (_ns, master) => {
      master.signal('SIGTERM');
      await master.waitForLog(logged('stopping (graceful)'), 5_000);
      const report = await reload(master);
      assert.equal(report.result, 'refused', JSON.stringify(report));
      assert.equal(report.refusal, 'stopping');
      const cli = await master.cli(['reload']);
      t.diagnostic(`${cli.code} ${cli.stdout} ${cli.stderr}`);
      assert.equal(cli.code, 1, `exit 1 for a refusal: ${cli.stdout}${cli.stderr}`);
      assert.match(cli.stdout, /refused/);
    });
  });

  it('SIGTERM during a reload: the reload gives way, the master drains and exits 0', { timeout: 60_000 }, async (t) => {
    await withMaster(t, 'rf-term', yaml({ settle: '4s' }), async (ns, master, pids) => {
      const load = startLoad(ns, { url: URL_, mode: 'newconn', duration: 20_000, concurrency: 8 });
      await sleep(500);
      const from = master.logs.length;
      const answer = reload(master);
      await until(async () => ((await ns.listeners(PORT)).length === 4 ? true : undefined), 10_000, 'the new generation listens (settling)');
      master.signal('SIGTERM');
      const report = await answer;
      const exit = await master.exited;
      const summary = await load.stop();
      t.diagnostic(`report ${JSON.stringify(report)}; load ${JSON.stringify(summary)}`);
      assert.equal(report.result, 'rolled_back');
      assert.match(report.reason ?? '', /stop/);
      assert.equal(exit.code, 0, `the master exits 0: ${master.stderr}`);
      assert.deepEqual(alivePids(pids), [], 'old workers gone');
      assert.deepEqual(alivePids(ns.pids()), [], `nothing left running in the namespace: ${master.logs.slice(from).map((l) => l.msg).join(' | ')}`);
    }, { migrateReq: 1 });
  });

  it('an old worker dying mid-reload: the reload completes and loses at most what that worker held', { timeout: 60_000 }, async (t) => {
    await withMaster(t, 'rf-olddie', yaml({ settle: '2s' }), async (ns, master, pids) => {
      const load = startLoad(ns, { url: URL_, mode: 'newconn', duration: 20_000, concurrency: 8, timeout: 3_000 });
      await sleep(500);
      const answer = reload(master);
      await until(async () => ((await ns.listeners(PORT)).length >= 4 ? true : undefined), 10_000, 'new generation settling');
      process.kill(pids[0] as number, 'SIGKILL');
      const report = await answer;
      await sleep(1_000);
      const summary = await load.stop();
      t.diagnostic(`report ${JSON.stringify(report)}; load ${JSON.stringify(summary)}`);
      assert.equal(report.result, 'ok', JSON.stringify(report));
      assert.equal(summary.timeouts, 0, 'nothing hangs');
      assert.ok(errorCount(summary) <= 8, `at most the killed worker's in-flight requests failed: ${JSON.stringify(summary.errors)}`);
      await until(async () => ((await master.status()).generations.length === 1 ? true : undefined), 15_000, 'old generation drained');
      assert.equal((await ns.listeners(PORT)).length, 2);
    }, { migrateReq: 1 });
  });

  it("an app's own IPC messages are never taken for the worker runtime's: a fake 'ready' does not count", { timeout: 30_000 }, async (t) => {
    await withMaster(t, 'rf-fake', yaml(), async (_ns, master, pids) => {
      rewrite(master, yaml({ app: join(APPS, 'fake-ready.js'), ready: '1500ms' }));
      const report = await reload(master);
      assert.equal(report.result, 'rolled_back', JSON.stringify(report));
      assert.match(report.reason ?? '', /not ready within 1500 ms/, 'the app\'s "ready" was ignored: the worker timed out');
      assert.deepEqual(alivePids(pids), pids);
    });
  });
});
