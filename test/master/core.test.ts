// The core supervisor against the real kernel: every test runs a real master
// inside a network namespace of its own, with the load client inside it too.
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startLoad, runLoad, errorCount } from '../harness/load.js';
import { alivePids, HELLO, MasterProcess, sleep, until, withMaster } from '../harness/master.js';
import { needsRoot, Netns } from '../harness/netns.js';

const PORT = 8080;
const URL_ = `http://127.0.0.1:${PORT}/`;

function yaml(workers: number, extra = ''): string {
  return `app: ${HELLO}
workers: ${workers}
listen:
  - address: 127.0.0.1:${PORT}
reload: { drain_timeout: 5s }
${extra}`;
}


describe('core supervisor', () => {
  it('serves requests from every worker, one LISTEN socket per worker', async (t) => {
    await withMaster(t, 'serve', yaml(3), async (ns, master, pids) => {
      const listeners = await ns.listeners(PORT);
      assert.equal(listeners.length, 3, `ss -ltn shows ${listeners.length} LISTEN sockets`);
      const load = await runLoad(ns, { url: URL_, mode: 'newconn', requests: 600, concurrency: 16 });
      assert.equal(load.ok, 600, JSON.stringify(load));
      assert.deepEqual(Object.keys(load.workers).map(Number).sort(), [...pids].sort(), 'every worker answered');
      const status = await master.status();
      assert.equal(status.generation, 1);
      assert.deepEqual(status.generations[0]?.workers.map((w) => w.state), ['serving', 'serving', 'serving']);
    });
  });

  it('tcp_migrate_req=1: a stopped worker killed with 50+ queued connections loses none of them', async (t) => {
    await withMaster(
      t,
      'mig',
      yaml(2),
      async (ns, master, pids) => {
        const victim = pids[0]!;
        process.kill(victim, 'SIGSTOP');
        const before = await ns.tcpExt(master.pid);
        const hold = startLoad(ns, { url: URL_, mode: 'hold', connections: 160, timeout: 15_000 });
        try {
          await hold.sent;
          const queued = await until(
            async () => {
              const max = Math.max(...(await ns.listeners(PORT)).map((l) => l.recvQ));
              return max >= 50 ? max : undefined;
            },
            5_000,
            '50 connections queued on the stopped worker',
          );
          process.kill(victim, 'SIGKILL');
          const summary = await hold.done;
          assert.equal(summary.ok, 160, `every held connection got a 200: ${JSON.stringify(summary)}`);
          const afterCounters = await ns.tcpExt(master.pid);
          const migrated = (afterCounters['TCPMigrateReqSuccess'] ?? 0) - (before['TCPMigrateReqSuccess'] ?? 0);
          assert.ok(migrated >= queued, `TCPMigrateReqSuccess rose by ${migrated}, queued was ${queued}`);
          await until(async () => ((await master.status()).generations[0]?.workers.every((w) => w.state === 'serving') ? true : undefined), 10_000, 'replacement serving');
        } finally {
          try {
            process.kill(victim, 'SIGKILL');
          } catch {
            /* gone */
          }
          await hold.stop();
        }
      },
      { migrateReq: 1 },
    );
  });

  it('under load, SIGKILL of a worker loses at most what it had accepted, and nothing hangs', async (t) => {
    const concurrency = 16;
    await withMaster(t, 'kill', yaml(2), async (ns, master, pids) => {
      const load = startLoad(ns, { url: URL_, mode: 'newconn', duration: 4_000, concurrency, timeout: 5_000 });
      await sleep(1_000);
      process.kill(pids[0]!, 'SIGKILL');
      const summary = await load.done;
      assert.equal(summary.timeouts, 0, `no request hung: ${JSON.stringify(summary)}`);
      assert.ok(errorCount(summary) <= concurrency, `lost ${errorCount(summary)} requests (at most ${concurrency} can be accepted and unanswered)`);
      assert.ok(summary.ok > 500, `load kept being served: ${summary.ok}`);
      const status = await until(async () => {
        const s = await master.status();
        return s.generations[0]?.workers.every((w) => w.state === 'serving') ? s : undefined;
      }, 10_000, 'replacement serving');
      assert.equal(status.generations[0]?.workers[0]?.restarts, 1);
    });
  });

  it('SIGTERM lets an in-flight slow request finish, then exits 0', async (t) => {
    await withMaster(t, 'term', yaml(2), async (ns, master, pids) => {
      const slow = ns.run(process.execPath, ['-e', `
        const http = require('node:http');
        http.get('http://127.0.0.1:${PORT}/slow?ms=1500', (res) => { let b=''; res.on('data', d => b += d); res.on('end', () => { console.log(res.statusCode); }); })
          .on('error', (e) => console.log('error ' + e.code));`], { timeoutMs: 10_000 });
      await sleep(400);
      master.signal('SIGTERM');
      const result = await slow;
      assert.equal(result.stdout.trim(), '200');
      const exit = await master.exited;
      assert.equal(exit.code, 0);
      assert.deepEqual(alivePids(pids), [], 'workers are gone');
    });
  });

  it('SIGQUIT stops fast: in-flight requests are cut, the master exits within seconds', async (t) => {
    await withMaster(t, 'quit', yaml(2), async (ns, master, pids) => {
      const slow = ns.run(process.execPath, ['-e', `
        require('node:http').get('http://127.0.0.1:${PORT}/slow?ms=8000', (res) => console.log(res.statusCode))
          .on('error', (e) => console.log('error ' + e.code));`], { timeoutMs: 15_000 });
      await sleep(400);
      const started = Date.now();
      master.signal('SIGQUIT');
      const exit = await master.exited;
      assert.equal(exit.code, 0);
      assert.ok(Date.now() - started < 3_000, `fast stop took ${Date.now() - started} ms`);
      assert.match((await slow).stdout, /^error /, 'the slow request was cut');
      await until(() => (alivePids(pids).length === 0 ? true : undefined), 2_000, 'workers gone');
    });
  });

  it('SIGKILL of the master leaves no worker behind', async (t) => {
    await withMaster(t, 'orphan', yaml(2), async (_ns, master, pids) => {
      master.signal('SIGKILL');
      await master.exited;
      await until(() => (alivePids(pids).length === 0 ? true : undefined), 1_500, 'workers to exit within a second');
    });
  });

  it('a worker that dies soon after ready backs off instead of spinning', async (t) => {
    const app = new URL('../fixtures/apps/exit-after-ready.js', import.meta.url).pathname;
    const config = `app: ${app}
workers: 1
listen: [{ address: 127.0.0.1:${PORT} }]
env: { EXIT_AFTER_MS: "1500" }
`;
    await withMaster(t, 'loop', config, async (_ns, master) => {
      await sleep(6_000);
      const spawned = master.logs.filter((l) => typeof l.msg === 'string' && /died early; restarting|crash-looping/.test(l.msg));
      assert.ok(spawned.length >= 2 && spawned.length <= 5, `${spawned.length} restarts in 6 s`);
      const delays = spawned.map((l) => l['backoffMs'] as number);
      assert.deepEqual(delays, [...delays].sort((a, b) => a - b), 'backoff grows');
      const status = await master.status();
      assert.ok((status.generations[0]?.workers[0]?.restarts ?? 0) >= 2);
    });
  });

  it('after 100 worker restarts the master holds as many descriptors as after start', async (t) => {
    await withMaster(t, 'fds', yaml(2, 'restart: { min_uptime: 0s }\n'), async (_ns, master, pids) => {
      const fdList = (): string[] =>
        readdirSync(`/proc/${master.pid}/fd`).map((fd) => {
          try {
            return `${fd} -> ${readlinkSync(`/proc/${master.pid}/fd/${fd}`)}`;
          } catch {
            return `${fd} -> ?`;
          }
        });
      const fds = (): number => fdList().length;
      const start = fdList();
      const baseline = start.length;
      let current = pids;
      for (let i = 0; i < 100; i++) {
        const victim = current[i % 2]!;
        process.kill(victim, 'SIGKILL');
        current = await until(async () => {
          const s = await master.status();
          const ws = s.generations[0]?.workers ?? [];
          const ok = ws.every((w) => w.state === 'serving' && w.pid !== null && w.pid !== victim);
          return ok ? ws.map((w) => w.pid as number) : undefined;
        }, 10_000, `replacement ${i}`, 20);
      }
      // A control connection of the last poll may still be closing: allow it a moment.
      await until(() => (fds() === baseline ? true : undefined), 2_000, `descriptor count back to ${baseline} (now ${fds()})`).catch(() => {});
      assert.equal(fds(), baseline, `descriptor count is flat; at start:\n${start.join('\n')}\nnow:\n${fdList().join('\n')}`);
    });
  });
});

// Leave nothing behind even when a test failed half-way.
before(() => Netns.reapStale());
after(() => Netns.reapStale());
