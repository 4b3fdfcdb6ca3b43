// Reload edges: listener changes, the sysctl opt-in, the drain's hard
// deadline and the app's close hook. Each test in a namespace of its own.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { runLoad, startLoad } from '../harness/load.js';
import { APPS, HELLO, MasterProcess, ROOT, sleep, until, withMaster as sharedWithMaster, type LogLine, type ReloadReport } from '../harness/master.js';
import { nobodyCannotRead } from '../harness/nobody.js';

const WORKER = join(ROOT, 'dist/worker/main.js');
import { needsRoot, Netns } from '../harness/netns.js';

type Report = ReloadReport;

/** This file's tests name the namespace's tcp_migrate_req first. */
function withMaster(t: TestContext, prefix: string, config: string, sysctl: 0 | 1, body: (ns: Netns, master: MasterProcess) => Promise<void>): Promise<void> {
  return sharedWithMaster(t, prefix, config, (ns, master) => body(ns, master), { migrateReq: sysctl });
}

function rewrite(master: MasterProcess, text: string): void {
  writeFileSync(master.configFile, `${text}control: { socket: ${master.controlSocket} }\n`);
}

async function reload(master: MasterProcess, waitDrain = false): Promise<Report> {
  const answer = await master.control(waitDrain ? { cmd: 'reload', waitDrain: true } : { cmd: 'reload' });
  return answer.result as Report;
}

const config = (listen: string[], extra = ''): string =>
  `app: ${HELLO}\nworkers: 2\nlisten:\n${listen.map((a) => `  - address: ${a}\n`).join('')}reload: { watch: false, drain_timeout: 2s }\n${extra}`;

describe('reload edges', () => {
  it('a new address is opened, a removed one closed, an unchanged one handed off', async (t) => {
    await withMaster(t, 'edge-l', config(['127.0.0.1:8080', '127.0.0.1:8081']), 1, async (ns, master) => {
      rewrite(master, config(['127.0.0.1:8080', '127.0.0.1:8082']));
      const report = await reload(master);
      assert.equal(report.result, 'ok', JSON.stringify(report));
      const actions = Object.fromEntries(report.listeners.map((l) => [l.address, l.action]));
      assert.deepEqual(actions, { '127.0.0.1:8080': 'handoff', '127.0.0.1:8082': 'open', '127.0.0.1:8081': 'close' });
      assert.ok(report.warnings.some((w) => w.includes('127.0.0.1:8081')), 'the removal is reported');
      await until(async () => ((await ns.listeners(8081)).length === 0 ? true : undefined), 5_000, '8081 closed');
      assert.equal((await ns.listeners(8082)).length, 2);
      assert.equal((await ns.listeners(8080)).length, 2);
      for (const port of [8080, 8082]) {
        const load = await runLoad(ns, { url: `http://127.0.0.1:${port}/`, requests: 100, concurrency: 4 });
        assert.equal(load.ok, 100, `port ${port}`);
      }
    });
  });

  it("a removed address's queue is accepted by its old workers before it closes", async (t) => {
    await withMaster(t, 'edge-r', config(['127.0.0.1:8080', '127.0.0.1:8081']), 0, async (ns, master) => {
      const old = (await master.status()).generations[0]?.workers.map((w) => w.pid as number) ?? [];
      for (const pid of old) process.kill(pid, 'SIGSTOP');
      const hold = startLoad(ns, { url: 'http://127.0.0.1:8081/', mode: 'hold', connections: 20, timeout: 15_000 });
      try {
        await hold.sent;
        await until(async () => ((await ns.listeners(8081)).reduce((n, l) => n + l.recvQ, 0) >= 20 ? true : undefined), 5_000, '20 queued on 8081');
        rewrite(master, config(['127.0.0.1:8080']));
        const from = master.logs.length;
        const answer = reload(master);
        await master.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('(removed) before it closes'), 15_000, from);
        for (const pid of old) process.kill(pid, 'SIGCONT');
        const report = await answer;
        assert.equal(report.result, 'ok', JSON.stringify(report));
        const summary = await hold.done;
        assert.equal(summary.ok, 20, `every queued client on the removed address got a 200: ${JSON.stringify(summary)}`);
        assert.equal((report as Report & { dropped: number }).dropped, 0);
        assert.equal((await ns.listeners(8081)).length, 0, '8081 is closed');
      } finally {
        for (const pid of old) {
          try {
            process.kill(pid, 'SIGCONT');
          } catch {
            /* gone */
          }
        }
        await hold.stop();
      }
    });
  });

  it('switching TLS on for an address replaces its listeners instead of handing plaintext over', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'handover-edge-tls-'));
    try {
      const cert = join(dir, 'tls.crt');
      const key = join(dir, 'tls.key');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', '/CN=localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
      await withMaster(t, 'edge-t', config(['127.0.0.1:8080']), 0, async (ns, master) => {
        rewrite(master, `app: ${HELLO}\nworkers: 2\nlisten:\n  - address: 127.0.0.1:8080\n    tls: { cert: ${cert}, key: ${key} }\nreload: { watch: false, drain_timeout: 2s }\n`);
        const report = await reload(master);
        assert.equal(report.result, 'ok', JSON.stringify(report));
        assert.deepEqual(report.listeners, [{ address: '127.0.0.1:8080', action: 'replace', inherit: false }]);
        assert.ok(report.warnings.some((w) => w.includes('not handed over')), JSON.stringify(report.warnings));
        const https = await ns.run('node', ['-e', `require('node:https').get('https://127.0.0.1:8080/', { rejectUnauthorized: false }, (r) => console.log(r.statusCode)).on('error', (e) => console.log(e.code))`]);
        assert.equal(https.stdout.trim(), '200');
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Only when the choice is migrate: auto as root would pick bpf and leave the namespace-wide sysctl alone.
  it('reload.set_tcp_migrate_req lets the master set the sysctl, and says so', async (t) => {
    await withMaster(t, 'edge-s', config(['127.0.0.1:8080'], 'reload: { watch: false, strategy: migrate, set_tcp_migrate_req: true }\n').replace('reload: { watch: false, drain_timeout: 2s }\n', ''), 0, async (ns, master) => {
      assert.equal((await ns.sysctl('net.ipv4.tcp_migrate_req')).trim(), '1');
      assert.ok(master.logs.some((l: LogLine) => typeof l.msg === 'string' && l.msg.includes('set net.ipv4.tcp_migrate_req=1')));
      const report = await reload(master);
      assert.equal(report.strategy, 'migrate');
    });
  });

  it('without the sysctl and without the opt-in, the start log names the missing sysctl line', async (t) => {
    await withMaster(t, 'edge-h', config(['127.0.0.1:8080']).replace('reload: { watch: false,', 'reload: { strategy: inherit, watch: false,'), 0, async (ns, master) => {
      assert.equal((await ns.sysctl('net.ipv4.tcp_migrate_req')).trim(), '0', 'left alone');
      assert.ok(master.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('net.ipv4.tcp_migrate_req = 1')), 'hint logged');
    });
  });

  it('a client that never sends its request cannot outlive drain_timeout', async (t) => {
    await withMaster(t, 'edge-d', config(['127.0.0.1:8080']), 1, async (ns, master) => {
      // Inside the namespace: a few idle connections that send nothing, held open.
      const idle = ns.spawn(process.execPath, ['-e', `
        const net = require('node:net'); const socks = [];
        for (let i = 0; i < 4; i++) socks.push(net.connect(8080, '127.0.0.1'));
        setTimeout(() => process.exit(0), 20000);`]);
      try {
        await sleep(500);
        const started = Date.now();
        const report = await reload(master, true);
        assert.equal(report.result, 'ok');
        assert.ok(report.drain, 'drain figures present');
        assert.ok(report.drain.killed >= 1, `killed at the deadline: ${JSON.stringify(report.drain)}`);
        assert.ok(Date.now() - started < 2_000 + 4_000, 'bounded by drain_timeout (+ grace)');
      } finally {
        idle.kill('SIGKILL');
      }
    });
  });

  it("old workers run the app's close hook with an aborted signal when they drain", async (t) => {
    const lifecycle = `${APPS}/lifecycle.js`;
    await withMaster(t, 'edge-c', config(['127.0.0.1:8080']).replace(HELLO, lifecycle), 1, async (_ns, master) => {
      const from = master.logs.length;
      const report = await reload(master, true);
      assert.equal(report.result, 'ok');
      const closes = master.logs.slice(from).filter((l) => l.msg === 'app-close');
      assert.equal(closes.length, 2, 'both old workers ran close');
      assert.ok(closes.every((l) => l['aborted'] === true), 'ctx.signal had fired');
      assert.equal(master.logs.slice(from).filter((l) => l.msg === 'app-init').length, 2, 'both new workers ran init');
    });
  });

  it('workers drop to the configured user and group', async (t) => {
    // The workers load dist/ and the app as nobody: a checkout under a 0700
    // directory (mktemp -d) is out of their reach, which says nothing of handover.
    const why = process.getuid?.() === 0 ? nobodyCannotRead(WORKER, HELLO) : undefined;
    if (why !== undefined) {
      t.skip(`${why}, so workers running as nobody could not load it`);
      return;
    }
    await withMaster(t, 'edge-u', `${config(['127.0.0.1:8080'])}user: nobody\ngroup: nogroup\n`, 0, async (ns, master) => {
      const status = await master.status();
      for (const w of status.generations[0]?.workers ?? []) {
        const text = readFileSync(`/proc/${w.pid}/status`, 'utf8');
        assert.match(text, /^Uid:\s+65534\s/m, `worker ${w.index} runs as nobody`);
        assert.match(text, /^Gid:\s+65534\s/m, `worker ${w.index} runs as nogroup`);
      }
      assert.match(readFileSync(`/proc/${master.pid}/status`, 'utf8'), /^Uid:\s+0\s/m, 'the master stays root');
      const load = await runLoad(ns, { url: 'http://127.0.0.1:8080/', requests: 100, concurrency: 4 });
      assert.equal(load.ok, 100);
    });
  });

  it('a worker whose event loop is blocked misses its heartbeat and is replaced', async (t) => {
    const marker = `/tmp/handover-block-${process.pid}-${Date.now()}`;
    const cfg = `app: ${APPS}/block-once.js\nworkers: 2\nlisten: [{ address: 127.0.0.1:8080 }]\nenv: { BLOCK_MARKER: ${marker} }\n`;
    await withMaster(t, 'edge-b', cfg, 0, async (ns, master) => {
      const line = await master.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('missed its heartbeat'), 15_000);
      assert.equal(line['worker'], 0);
      await until(async () => ((await master.status()).generations[0]?.workers.every((w) => w.state === 'serving') ? true : undefined), 10_000, 'replacement serving');
      const load = await runLoad(ns, { url: 'http://127.0.0.1:8080/', requests: 200, concurrency: 8, timeout: 3_000 });
      assert.equal(load.ok, 200);
    });
  });
});

before(() => Netns.reapStale());
after(() => Netns.reapStale());
