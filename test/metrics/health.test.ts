// Health endpoints for load balancers and orchestrators, on a real master in
// this namespace (no root, port 0): /readyz turns 503 as soon as a graceful
// stop begins while stop_delay keeps the app serving, and without a
// `metrics` section the master opens no endpoint at all.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { HELLO, MasterProcess, ROOT, sleep } from '../harness/master.js';
import { get, metricsAddress } from './scrape.js';

/** Inodes of the TCP sockets in LISTEN in this network namespace. */
function listeningInodes(): Set<string> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // no IPv6
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && f[9]) inodes.add(f[9]);
    }
  }
  return inodes;
}

/** How many listening TCP sockets `pid` holds a descriptor of. */
function listeningSocketsOf(pid: number): number {
  const listening = listeningInodes();
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      return inode !== undefined && listening.has(inode);
    } catch {
      return false; // closed meanwhile
    }
  }).length;
}

interface Probe {
  readonly sent: number;
  readonly at: number;
  readonly status: number | string;
}

/** GETs `url` back to back (a new connection each) until `running()` is false. */
async function probe(url: string, running: () => boolean, into: Probe[]): Promise<void> {
  while (running()) {
    const sent = Date.now();
    try {
      const r = await get(url, { timeoutMs: 1_000 });
      into.push({ sent, at: Date.now(), status: r.status });
    } catch (err) {
      into.push({ sent, at: Date.now(), status: (err as NodeJS.ErrnoException).code ?? String(err) });
    }
    await sleep(20);
  }
}

describe('health endpoints', () => {
  it('/readyz answers 503 within 500 ms of SIGTERM (stop_delay 2s) while the app is still served', { timeout: 60_000 }, async () => {
    const master = MasterProcess.start({
      yaml: `app: ${HELLO}\nworkers: 2\nlisten:\n  - address: 127.0.0.1:0\nreload: { watch: false }\nstop_delay: 2s\nmetrics: { listen: 127.0.0.1:0 }\n`,
    });
    try {
      const address = await metricsAddress(master);
      await master.serving();
      const app = (await master.status()).listen[0]!;
      assert.equal(listeningSocketsOf(master.pid), 3, 'the master holds its two listeners and the metrics endpoint');
      assert.equal((await get(`http://${address}/readyz`)).status, 200, 'ready while serving');
      let running = true;
      const ready: Probe[] = [];
      const served: Probe[] = [];
      const loops = Promise.all([probe(`http://${address}/readyz`, () => running, ready), probe(`http://${app}/`, () => running, served)]);
      await sleep(300);
      const t0 = Date.now();
      master.signal('SIGTERM');
      await sleep(1_700); // well inside stop_delay
      running = false;
      await loops;
      const first503 = ready.find((p) => p.sent >= t0 && p.status === 503);
      assert.ok(first503, `a 503 after SIGTERM: ${JSON.stringify(ready.slice(-5))}`);
      assert.ok(first503.at - t0 <= 500, `503 ${first503.at - t0} ms after SIGTERM`);
      assert.deepEqual(ready.filter((p) => p.sent > first503.at).map((p) => p.status).filter((s) => s !== 503), [], 'not ready from then on');
      // A probe sent just before the signal may be answered after it: only the ones answered before count.
      const before = ready.filter((p) => p.at < t0);
      assert.ok(before.length > 0 && before.every((p) => p.status === 200), `ready before: ${JSON.stringify(before.filter((p) => p.status !== 200))}`);
      const during = served.filter((p) => p.sent >= t0 && p.at <= t0 + 1_700);
      assert.ok(during.length >= 10, `requests were sent during stop_delay: ${during.length}`);
      assert.deepEqual(during.filter((p) => p.status !== 200), [], 'every request during stop_delay got a 200');
      assert.equal((await master.exited).code, 0);
      await assert.rejects(get(`http://${address}/healthz`), /ECONNREFUSED/, 'the endpoint closes with the master');
    } finally {
      await master.dispose();
    }
  });

  it('no endpoint without a metrics section; the shipped config has one on 127.0.0.1:9469', { timeout: 30_000 }, async () => {
    const master = MasterProcess.start({ yaml: `app: ${HELLO}\nworkers: 2\nlisten:\n  - address: 127.0.0.1:0\nreload: { watch: false }\n` });
    try {
      await master.serving();
      assert.equal(listeningSocketsOf(master.pid), 2, 'only the two listeners');
      assert.ok(!master.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('metrics on')));
    } finally {
      await master.dispose();
    }
    assert.equal(loadConfig(`${ROOT}/config/handover.yaml`).metrics?.listen.text, '127.0.0.1:9469');
  });
});
