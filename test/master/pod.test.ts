// Kubernetes-like conditions (tool issue 10): the master runs with no
// capabilities at all (no CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN: setpriv
// empties its bounding set), tcp_migrate_req=0, and /proc/sys mounted
// read-only (a mount namespace of its own), as a pod's container runtime
// gives it. A forced bpf stops the start, and refuses a reload, naming the
// missing capability; auto picks a lossless strategy (inherit, or drain for
// a reload that changes a listener's spec), and 20 reloads under
// new-connection load, with the worker count changing, lose nothing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { startLoad, type LoadSummary } from '../harness/load.js';
import { MasterProcess, sleep, type ReloadReport } from '../harness/master.js';
import { needsRoot, Netns } from '../harness/netns.js';
import { failed, PORT, reload, rewrite, short, URL_, yaml } from './strategy-kit.js';

/** The second address, whose v6only setting some reloads toggle: a changed spec (inherit cannot keep it). */
const OTHER = 8081;
const RELOADS = 20;
const WORKERS = [3, 1, 2, 4, 2, 1, 3, 2, 4, 1, 2, 3, 1, 4, 2, 3, 2, 1, 2, 2];

/** A pod's master: /proc/sys read-only in a mount namespace of its own, then no capabilities whatsoever. */
const POD = [
  'unshare', '-m', 'sh', '-c', 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"', 'sh',
  'setpriv', '--inh-caps=-all', '--bounding-set=-all', '--',
];

function podYaml(strategy: string, workers: number, v6only: boolean): string {
  return yaml({ strategy, workers, drain: '5s', listen: [`  - { address: "[::1]:${OTHER}", v6only: ${v6only} }`] });
}

const capEff = (pid: number): string => /^CapEff:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';

describe('a pod-like master (no capabilities, tcp_migrate_req=0, /proc/sys read-only)', () => {
  it(`forced bpf fails naming CAP_BPF; auto picks inherit or drain and ${RELOADS} reloads under load, the worker count changing, lose nothing`, { timeout: 120_000 }, async (t) => {
    if (!needsRoot(t)) return;
    const ns = await Netns.create('pod');
    let master: MasterProcess | undefined;
    try {
      await ns.sysctl('net.ipv4.tcp_migrate_req', 0);
      const forced = MasterProcess.start({ yaml: podYaml('bpf', 2, false), ns, wrapper: POD });
      const exit = await forced.exited;
      await forced.dispose();
      t.diagnostic(`forced bpf: exit ${exit.code}; ${forced.stderr.trim()}`);
      assert.equal(exit.code, 1, 'the start fails');
      assert.match(forced.stderr, /strategy bpf is not supported here: needs CAP_BPF or CAP_SYS_ADMIN/);

      master = MasterProcess.start({ yaml: podYaml('auto', 2, false), ns, wrapper: POD });
      await master.serving();
      assert.equal(capEff(master.pid), '0000000000000000', 'the master runs with no capability');
      const choice = await master.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('reload strategy auto'));
      const passedOver = JSON.stringify(choice['passedOver']);
      t.diagnostic(`${choice.msg}: ${passedOver}`);
      assert.equal(choice['strategy'], 'inherit');
      assert.match(passedOver, /bpf: strategy bpf is not supported here: needs CAP_BPF or CAP_SYS_ADMIN/);
      assert.match(passedOver, /migrate: .*read-only file system/);

      rewrite(master, podYaml('bpf', 2, false));
      const refused = await reload(master);
      assert.equal(refused.result, 'refused', JSON.stringify(refused));
      assert.equal(refused.refusal, 'unsupported');
      assert.match(refused.reason ?? '', /strategy bpf is not supported here: needs CAP_BPF or CAP_SYS_ADMIN/);

      const load = startLoad(ns, { url: URL_, mode: 'newconn', concurrency: 8, duration: 100_000, timeout: 10_000 });
      const reports: ReloadReport[] = [];
      let summary: LoadSummary;
      let v6only = false;
      const started = Date.now();
      try {
        await sleep(300);
        for (let i = 0; i < RELOADS; i++) {
          const workers = WORKERS[i]!;
          if (i % 4 === 3) v6only = !v6only;
          rewrite(master, podYaml('auto', workers, v6only));
          const r = await reload(master);
          reports.push(r);
          assert.equal(r.result, 'ok', `reload ${i}: ${JSON.stringify(r)}`);
          assert.equal(r.strategy, i % 4 === 3 ? 'drain' : 'inherit', `reload ${i}: ${JSON.stringify(r)}`);
          if (r.strategy === 'drain') {
            assert.equal((await ns.listeners(PORT)).length, workers, `reload ${i}: drain retired every old listener, surplus ones included`);
          }
        }
        await sleep(300);
      } finally {
        summary = await load.stop();
      }
      const seconds = (Date.now() - started) / 1000;
      t.diagnostic(`${RELOADS} reloads in ${seconds.toFixed(1)} s (${reports.filter((r) => r.strategy === 'drain').length} drain); load ${short(summary)}`);
      assert.equal(failed(summary), 0, `no request failed: ${short(summary)}`);
      assert.equal(summary.ok, summary.requests);
      assert.ok(summary.requests >= 500, `the load kept running: ${summary.requests}`);
      for (const r of reports) assert.equal(r.dropped, 0, JSON.stringify(r));
    } finally {
      await master?.dispose();
      await ns.destroy();
    }
  });
});
