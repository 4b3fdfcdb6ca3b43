// Faults around the master's own loop and its neighbours: a stall of the
// master itself, a keep-alive client idle when the drain starts, a foreign
// listener on a port a reload adds, every worker crash-looping at once.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startLoad } from '../harness/load.js';
import { alivePids, APPS, HELLO, MasterProcess, ROOT, sleep, until, withMaster, type ReloadReport } from '../harness/master.js';
import { Netns } from '../harness/netns.js';

const PORT = 8080;
const base = (extra = ''): string =>
  `app: ${HELLO}\nworkers: 2\nlisten:\n  - address: 127.0.0.1:${PORT}\nreload: { watch: false, settle: 0s, drain_timeout: 3s }\n${extra}`;

function rewrite(master: MasterProcess, text: string): void {
  writeFileSync(master.configFile, `${text}control: { socket: ${master.controlSocket} }\n`);
}

describe('master faults', () => {
  before(() => Netns.reapStale());
  after(() => Netns.reapStale());

  it("a stall of the master's own loop is not counted against its workers' heartbeats", { timeout: 40_000 }, async (t) => {
    await withMaster(t, 'mf-stall', base(), async (_ns, master, pids) => {
      // Longer than the 5 s heartbeat timeout; the workers' heartbeats pile up unread in the IPC pipes.
      master.signal('SIGSTOP');
      await sleep(6_500);
      master.signal('SIGCONT');
      await sleep(2_500);
      assert.deepEqual(alivePids(pids), pids, 'no worker was killed for heartbeats the master had not read');
      assert.ok(master.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('event loop was stalled')), 'the stall is logged');
    });
  });

  it('a keep-alive connection idle when the drain starts may still send its next request: 200 with Connection: close', { timeout: 40_000 }, async (t) => {
    await withMaster(t, 'mf-idle', base(), async (ns, master) => {
      const client = ns.run(process.execPath, ['-e', `
        const net = require('node:net');
        const s = net.connect(${PORT}, '127.0.0.1');
        const answers = [];
        let buf = '';
        s.on('data', (d) => { buf += d; });
        s.on('error', (e) => { console.log(JSON.stringify({ error: e.code, answers: buf.split('\\r\\n\\r\\n').length })); process.exit(0); });
        s.on('close', () => { console.log(JSON.stringify({ closed: true, raw: buf })); process.exit(0); });
        const ask = () => s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n');
        s.on('connect', () => { ask(); setTimeout(() => { console.log('IDLE'); }, 200); setTimeout(ask, 2500); });
      `], { timeoutMs: 20_000 });
      await sleep(800); // the connection is idle by now
      const report = (await master.control({ cmd: 'reload' })).result as ReloadReport;
      assert.equal(report.result, 'ok');
      const out = (await client).stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { closed?: boolean; raw?: string; error?: string });
      const end = out.at(-1);
      t.diagnostic(JSON.stringify(end));
      assert.ok(end?.closed, `closed by the server after answering, not reset: ${JSON.stringify(end)}`);
      const responses = (end?.raw ?? '').split('HTTP/1.1 ').filter(Boolean);
      assert.equal(responses.length, 2, 'both requests answered');
      assert.match(responses[1] ?? '', /^200/);
      assert.match(responses[1] ?? '', /connection: close/i, 'the draining worker says it closes');
    });
  });

  it('a foreign listener on a port that a reload adds is refused: the reload rolls back naming it', { timeout: 40_000 }, async (t) => {
    await withMaster(t, 'mf-foreign', base(), async (ns, master) => {
      // Same uid, SO_REUSEPORT: the kernel would let us join its group silently.
      const foreign = ns.spawn(process.execPath, ['--input-type=module', '-e', `
        import net from 'node:net';
        const { listenerSpec, openListener, socketAddress } = await import(${JSON.stringify(join(ROOT, 'dist/net/index.js'))});
        const l = openListener(listenerSpec({ address: socketAddress('127.0.0.1', 8081, 4), backlog: 16 }));
        net.createServer((s) => s.end('HTTP/1.1 200 OK\\r\\ncontent-length: 7\\r\\nx-handover-worker: foreign\\r\\n\\r\\nforeign')).listen({ fd: l.fd }, 16, () => console.log('listening'));
      `], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => foreign.stdout!.once('data', () => resolve()));
      try {
        rewrite(master, base().replace(`  - address: 127.0.0.1:${PORT}\n`, `  - address: 127.0.0.1:${PORT}\n  - address: 127.0.0.1:8081\n`));
        const report = (await master.control({ cmd: 'reload' })).result as ReloadReport;
        t.diagnostic(JSON.stringify(report));
        assert.equal(report.result, 'rolled_back', JSON.stringify(report));
        // A master that dropped its capabilities after start-up may not see who holds it (ptrace rules for /proc/PID/fd).
        assert.match(report.reason ?? '', new RegExp(`127\\.0\\.0\\.1:8081 is already in use by (pid ${foreign.pid}|127\\.0\\.0\\.1:8081, owner unknown)`));
        assert.equal((await ns.listeners(8081)).length, 1, 'we did not join the foreign group');
      } finally {
        foreign.kill('SIGKILL');
      }
    });
  });

  it('every worker crash-looping at once: the last slot restarts after restart.backoff, never dark for the backoff maximum', { timeout: 60_000 }, async (t) => {
    const app = join(APPS, 'exit-after-ready.js');
    const yaml = base('restart: { min_uptime: 10s, backoff: 500ms, backoff_max: 8s }\nenv: { EXIT_AFTER_MS: "500" }\n').replace(HELLO, app);
    await withMaster(t, 'mf-dark', yaml, async (ns, master) => {
      const load = startLoad(ns, { url: `http://127.0.0.1:${PORT}/`, mode: 'newconn', duration: 12_000, concurrency: 4, timeout: 2_000 });
      // Sample whether anything serves, every 100 ms.
      let dark = 0;
      let samples = 0;
      let longest = 0;
      let run = 0;
      const end = Date.now() + 10_000;
      while (Date.now() < end) {
        const s = await master.status();
        const up = s.generations.some((g) => g.workers.some((w) => w.state === 'serving'));
        samples++;
        if (up) run = 0;
        else {
          dark++;
          run++;
          longest = Math.max(longest, run);
        }
        await sleep(100);
      }
      const summary = await load.stop();
      t.diagnostic(`dark ${dark}/${samples} samples, longest dark run ${longest} samples; load ${JSON.stringify({ ...summary, latencyMs: undefined, workers: undefined })}`);
      // restart.backoff (500 ms) and a worker's start-up, with room for a busy machine; doubling would reach 4 s and 8 s.
      assert.ok(longest * 100 <= 2_500, `never dark for long: longest ${longest * 100} ms`);
      assert.ok(master.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('crash-looping')), 'the crash loop is logged');
      await until(() => (master.child.exitCode === null ? true : undefined), 1_000, 'the master is stable');
    });
  });
});
