// Self-test of the test harness: namespaces, load client, fixture server.
// Run: node --import tsx --test test/harness/harness.test.ts
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkRoot, needsRoot, Netns, parseNetstat, parseSsListeners } from './netns.ts';
import { errorCount, LOAD_SCRIPT, runLoad, startFixtureServer, startLoad, waitForJsonLine, type FixtureServer } from './load.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const NETNS_TS = fileURLToPath(new URL('./netns.ts', import.meta.url));
const T = { timeout: 60_000 };

function nsList(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** true if pid exists and is not a zombie */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitFor(what: string, pred: () => boolean | Promise<boolean>, ms = 5000, step = 25): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(step);
  }
}

/** GET a URL from inside the namespace and parse the body as JSON. */
async function getJson<T>(ns: Netns, url: string): Promise<T> {
  const out = await ns.exec(process.execPath, ['-e', 'fetch(process.argv[1]).then((r) => r.text()).then((t) => process.stdout.write(t))', url]);
  return JSON.parse(out) as T;
}

// ---------------------------------------------------------------------------
// no root needed

describe('harness units', () => {
  it('needsRoot: true as root, skips otherwise, fails under CI', () => {
    const skipped: (string | undefined)[] = [];
    const fake = { skip: (m?: string) => void skipped.push(m) };
    assert.equal(checkRoot(fake, { uid: 0, ci: false }), true);
    assert.equal(checkRoot(fake, { uid: 0, ci: true }), true);
    assert.deepEqual(skipped, []);
    assert.equal(checkRoot(fake, { uid: 1000, ci: false }), false);
    assert.deepEqual(skipped, ['needs root: network namespaces']);
    assert.throws(() => checkRoot(fake, { uid: 1000, ci: true }), /needs root: network namespaces.*CI/);
    assert.equal(skipped.length, 1);
  });

  it('parseNetstat pairs header and value lines', () => {
    const text = 'TcpExt: SyncookiesSent ListenOverflows TCPMigrateReqSuccess\nTcpExt: 1 22 333\nIpExt: InNoRoutes\nIpExt: 4\n';
    assert.deepEqual(parseNetstat(text), {
      TcpExt: { SyncookiesSent: 1, ListenOverflows: 22, TCPMigrateReqSuccess: 333 },
      IpExt: { InNoRoutes: 4 },
    });
    assert.throws(() => parseNetstat('TcpExt: A\nIpExt: 1\n'), /mismatch/);
  });

  it('parseSsListeners reads queues and pids, with or without the State column', () => {
    const text =
      'LISTEN 3      511    127.0.0.1:8080 0.0.0.0:* users:(("node",pid=10,fd=19),("node",pid=11,fd=5))\n' +
      '0      128    [::1]:8080 [::]:*\n';
    const ls = parseSsListeners(text);
    assert.equal(ls.length, 2);
    assert.equal(ls[0]!.local, '127.0.0.1:8080');
    assert.equal(ls[0]!.recvQ, 3);
    assert.equal(ls[0]!.sendQ, 511);
    assert.equal(ls[0]!.pid, 10);
    assert.deepEqual(ls[0]!.pids, [10, 11]);
    assert.equal(ls[1]!.local, '[::1]:8080');
    assert.equal(ls[1]!.pid, undefined);
    assert.deepEqual(ls[1]!.pids, []);
  });

  it('load.mjs exits 2 on bad flags and refuses non-loopback targets (sends nothing)', () => {
    const cases: string[][] = [
      [],
      ['--url', 'http://127.0.0.1:1/'], // no --requests/--duration
      ['--url', 'http://127.0.0.1:1/', '--requests', '1', '--bogus'],
      ['--url', 'http://127.0.0.1:1/', '--requests', 'x'],
      ['--url', 'http://127.0.0.1:1/', '--requests', '1', '--mode', 'fast'],
      ['--url', 'http://127.0.0.1:1/', '--mode', 'hold'], // no --connections
      ['--url', 'http://10.1.2.3:80/', '--requests', '1'],
      ['--url', 'https://127.0.0.1:1/', '--requests', '1'],
    ];
    for (const args of cases) {
      const r = spawnSync(process.execPath, [LOAD_SCRIPT, ...args], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 2, `args ${args.join(' ')}: status ${r.status}, stderr ${r.stderr}`);
      assert.equal(r.stdout, '', `args ${args.join(' ')} printed to stdout`);
      assert.match(r.stderr, /^load\.mjs: /);
    }
  });
});

// ---------------------------------------------------------------------------
// namespace + real sockets

describe('netns + load (root)', () => {
  let shared: { ns: Netns; server: FixtureServer } | null = null;
  const others: Netns[] = [];

  async function setup(): Promise<{ ns: Netns; server: FixtureServer }> {
    if (!shared) {
      const ns = await Netns.create('self');
      try {
        const server = await startFixtureServer(ns);
        shared = { ns, server };
      } catch (e) {
        await ns.destroy();
        throw e;
      }
    }
    return shared;
  }

  async function fresh(t: TestContext, prefix: string): Promise<Netns> {
    const ns = await Netns.create(prefix);
    others.push(ns);
    t.after(() => ns.destroy());
    return ns;
  }

  after(async () => {
    await shared?.ns.destroy();
    await Promise.all(others.map((ns) => ns.destroy()));
  });

  it('creates a namespace with lo up and a private tcp_migrate_req', T, async (t) => {
    if (!needsRoot(t)) return;
    const { ns } = await setup();
    assert.ok(nsList().includes(ns.name), `${ns.name} not in ip netns list`);
    assert.match(ns.name, /^ho-self-\d+-[0-9a-f]{6}$/);
    const link = await ns.exec('ip', ['-o', 'link', 'show', 'lo']);
    assert.match(link, /<[^>]*\bUP\b[^>]*>/, link);
    const hostBefore = readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim();
    assert.equal(await ns.sysctl('net.ipv4.tcp_migrate_req'), '0');
    assert.equal(await ns.sysctl('net.ipv4.tcp_migrate_req', 1), '1');
    assert.equal(await ns.sysctl('net.ipv4.tcp_migrate_req'), '1');
    assert.equal(readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim(), hostBefore, 'host sysctl changed');
    assert.equal(await ns.sysctl('net.ipv4.tcp_migrate_req', 0), '0');
    await assert.rejects(ns.sysctl('net.ipv4.no_such_key'), /exited/);
    await assert.rejects(ns.sysctl('../etc/passwd'), /bad sysctl key/);
  });

  it('spawn runs the command itself (ip netns exec execs in place)', T, async (t) => {
    if (!needsRoot(t)) return;
    const { ns, server } = await setup();
    assert.equal(server.child.pid, server.pid);
    assert.ok(ns.pids().includes(server.pid));
    const r = await ns.run('sh', ['-c', 'echo out; echo err >&2; exit 7']);
    assert.deepEqual({ code: r.code, stdout: r.stdout, stderr: r.stderr }, { code: 7, stdout: 'out\n', stderr: 'err\n' });
    await assert.rejects(ns.run('sleep', ['10'], { timeoutMs: 200 }), /timed out/);
  });

  it('newconn: 500 requests, all 200, one connection each', T, async (t) => {
    if (!needsRoot(t)) return;
    const { ns, server } = await setup();
    const before = await getJson<{ connections: number }>(ns, server.url('/stats'));
    const s = await runLoad(ns, { url: server.url('/'), mode: 'newconn', requests: 500, concurrency: 16 });
    const afterStats = await getJson<{ connections: number }>(ns, server.url('/stats'));
    assert.equal(s.mode, 'newconn');
    assert.equal(s.requests, 500, JSON.stringify(s));
    assert.equal(s.ok, 500, JSON.stringify(s));
    assert.deepEqual(s.statuses, { '200': 500 });
    assert.deepEqual(s.errors, {});
    assert.equal(s.timeouts, 0);
    assert.deepEqual(s.workers, { [String(server.pid)]: 500 });
    assert.equal(s.stoppedBy, 'requests');
    assert.equal(afterStats.connections - before.connections - 1, 500, 'one TCP connection per request');
    assert.ok(s.latencyMs.p50 > 0 && s.latencyMs.p50 <= s.latencyMs.p99 && s.latencyMs.p99 <= s.latencyMs.max);
    assert.ok(s.rps > 0 && s.elapsedMs > 0);
  });

  it('keepalive: 500 requests over at most `concurrency` connections', T, async (t) => {
    if (!needsRoot(t)) return;
    const { ns, server } = await setup();
    const before = await getJson<{ connections: number }>(ns, server.url('/stats'));
    const s = await runLoad(ns, { url: server.url('/'), mode: 'keepalive', requests: 500, concurrency: 8 });
    const afterStats = await getJson<{ connections: number }>(ns, server.url('/stats'));
    assert.equal(s.requests, 500, JSON.stringify(s));
    assert.equal(s.ok, 500, JSON.stringify(s));
    assert.deepEqual(s.workers, { [String(server.pid)]: 500 });
    const conns = afterStats.connections - before.connections - 1;
    assert.ok(conns >= 1 && conns <= 8, `keep-alive used ${conns} connections`);
  });

  it('hold: 10 connections written at once, answered later', T, async (t) => {
    if (!needsRoot(t)) return;
    const { ns, server } = await setup();
    const h = startLoad(ns, { url: server.url('/slow?ms=1000'), mode: 'hold', connections: 10, timeout: 10_000 });
    let finished = false;
    void h.done.then(() => (finished = true), () => (finished = true));
    const sent = await h.sent;
    assert.equal(sent.connections, 10);
    assert.equal(sent.failed, 0);
    assert.equal(finished, false, 'summary arrived before the server answered');
    const s = await h.done;
    assert.equal(s.mode, 'hold');
    assert.equal(s.connections, 10);
    assert.equal(s.sent, 10);
    assert.equal(s.ok, 10, JSON.stringify(s));
    assert.deepEqual(s.workers, { [String(server.pid)]: 10 });
    assert.ok(s.latencyMs.p50 >= 900, `p50 ${s.latencyMs.p50} < server pause`);
  });

  it('counts timeouts, resets, closes and statuses by code', T, async (t) => {
    if (!needsRoot(t)) return;
    const { ns, server } = await setup();
    const hang = await runLoad(ns, { url: server.url('/hang'), mode: 'newconn', requests: 3, concurrency: 3, timeout: 300 });
    assert.deepEqual({ errors: hang.errors, timeouts: hang.timeouts, ok: hang.ok }, { errors: { ETIMEDOUT: 3 }, timeouts: 3, ok: 0 });
    const reset = await runLoad(ns, { url: server.url('/reset'), mode: 'hold', connections: 3 });
    assert.deepEqual(reset.errors, { ECONNRESET: 3 }, JSON.stringify(reset));
    const closed = await runLoad(ns, { url: server.url('/close'), mode: 'hold', connections: 3 });
    assert.deepEqual(closed.errors, { EOF: 3 }, JSON.stringify(closed));
    const resetKa = await runLoad(ns, { url: server.url('/reset'), mode: 'keepalive', requests: 3, concurrency: 1 });
    assert.deepEqual(resetKa.errors, { ECONNRESET: 3 }, JSON.stringify(resetKa));
    const st = await runLoad(ns, { url: server.url('/status?code=503'), mode: 'keepalive', requests: 5, concurrency: 2 });
    assert.deepEqual({ statuses: st.statuses, ok: st.ok, errors: st.errors }, { statuses: { '503': 5 }, ok: 0, errors: {} });
    const refused = await runLoad(ns, { url: 'http://127.0.0.1:1/', mode: 'newconn', requests: 2, concurrency: 1 });
    assert.deepEqual(refused.errors, { ECONNREFUSED: 2 });
    assert.equal(refused.requests, errorCount(refused));
  });

  it('stops on the stop-file, on SIGTERM, and at --duration', T, async (t) => {
    if (!needsRoot(t)) return;
    const { ns, server } = await setup();
    // Wait until the load is really running (node start-up is slow on a busy machine).
    const running = async (min: number): Promise<void> => {
      const base = (await getJson<{ requests: number }>(ns, server.url('/stats'))).requests;
      await waitFor('load to start', async () => (await getJson<{ requests: number }>(ns, server.url('/stats'))).requests > base + min, 15_000, 50);
    };
    const h = startLoad(ns, { url: server.url('/'), mode: 'keepalive', duration: 60_000, concurrency: 4 });
    await running(20);
    const s = await h.stop();
    assert.equal(s.stoppedBy, 'stop-file');
    assert.ok(s.requests > 0 && s.ok === s.requests, JSON.stringify(s));
    assert.ok(s.elapsedMs < 15_000, `took ${s.elapsedMs} ms`);

    const h2 = startLoad(ns, { url: server.url('/slow?ms=300'), mode: 'newconn', duration: 60_000, concurrency: 4 });
    await running(2);
    h2.child.kill('SIGTERM');
    const s2 = await h2.done;
    assert.equal(s2.stoppedBy, 'signal');
    assert.ok(s2.requests > 0 && s2.ok === s2.requests, `in-flight requests must finish: ${JSON.stringify(s2)}`);

    assert.ok(!existsSync(h.stopFile) && !existsSync(h2.stopFile), 'stop-file left behind');

    // stop() after the load ended on its own: same summary, no stop-file left.
    const h4 = startLoad(ns, { url: server.url('/'), mode: 'newconn', requests: 5 });
    const s4 = await h4.done;
    assert.equal(await h4.stop(), s4);
    assert.ok(!existsSync(h4.stopFile), 'stop-file left behind');

    const s3 = await runLoad(ns, { url: server.url('/'), mode: 'keepalive', duration: 300, concurrency: 2 });
    assert.equal(s3.stoppedBy, 'duration');
    assert.ok(s3.elapsedMs >= 300 && s3.elapsedMs < 5000, `elapsed ${s3.elapsedMs}`);
    assert.equal(s3.ok, s3.requests);
  });

  it('tcpExt returns the namespace TcpExt counters', T, async (t) => {
    if (!needsRoot(t)) return;
    const { ns, server } = await setup();
    const viaCat = await ns.tcpExt();
    const viaPid = await ns.tcpExt(server.pid);
    for (const c of [viaCat, viaPid]) {
      for (const k of ['TCPMigrateReqSuccess', 'TCPMigrateReqFailure', 'ListenOverflows', 'ListenDrops']) {
        assert.equal(typeof c[k], 'number', `${k} missing`);
        assert.ok(Number.isFinite(c[k]));
      }
      assert.ok(Object.values(c).every((v) => Number.isFinite(v)));
    }
    assert.equal(viaPid.ListenOverflows, viaCat.ListenOverflows);
    // Fresh namespace: its counters are its own, nothing migrated here.
    assert.equal(viaPid.TCPMigrateReqSuccess, 0);
  });

  it('listeners(port) shows the socket, its backlog and its owner', T, async (t) => {
    if (!needsRoot(t)) return;
    const { ns, server } = await setup();
    const ls = await ns.listeners(server.port);
    assert.equal(ls.length, 1, JSON.stringify(ls));
    assert.equal(ls[0]!.local, `127.0.0.1:${server.port}`);
    assert.equal(ls[0]!.pid, server.pid);
    assert.equal(ls[0]!.sendQ, 511);
    assert.equal(ls[0]!.recvQ, 0);
    assert.deepEqual(await ns.listeners(1), []);
  });

  it('a SIGSTOPped server shows its accept queue in Recv-Q', T, async (t) => {
    if (!needsRoot(t)) return;
    const ns = await fresh(t, 'stop');
    const srv = await startFixtureServer(ns, { backlog: 64 });
    t.after(() => srv.stop());
    process.kill(srv.pid, 'SIGSTOP');
    t.after(() => {
      try {
        process.kill(srv.pid, 'SIGCONT');
      } catch {
        /* gone */
      }
    });
    try {
      const h = startLoad(ns, { url: srv.url('/'), mode: 'hold', connections: 10, timeout: 15_000 });
      const sent = await h.sent;
      assert.equal(sent.connections, 10);
      let q = 0;
      await waitFor('accept queue of 10', async () => {
        q = (await ns.listeners(srv.port))[0]?.recvQ ?? -1;
        return q >= 10;
      });
      assert.equal(q, 10);
      const ls = await ns.listeners(srv.port);
      assert.equal(ls[0]!.sendQ, 64);
      process.kill(srv.pid, 'SIGCONT');
      const s = await h.done;
      assert.equal(s.ok, 10, JSON.stringify(s));
      assert.equal((await ns.listeners(srv.port))[0]!.recvQ, 0);
    } finally {
      process.kill(srv.pid, 'SIGCONT');
    }
  });

  it('ListenOverflows counts SYNs dropped on a full accept queue', T, async (t) => {
    if (!needsRoot(t)) return;
    const ns = await fresh(t, 'ovf');
    const srv = await startFixtureServer(ns, { backlog: 2 });
    t.after(() => srv.stop());
    const before = await ns.tcpExt(srv.pid);
    process.kill(srv.pid, 'SIGSTOP');
    try {
      const h = startLoad(ns, { url: srv.url('/'), mode: 'hold', connections: 8, timeout: 10_000 });
      let now = before;
      await waitFor('ListenOverflows to grow', async () => {
        now = await ns.tcpExt(srv.pid);
        return (now.ListenOverflows ?? 0) > (before.ListenOverflows ?? 0);
      });
      assert.ok(now.ListenOverflows! - before.ListenOverflows! > 0);
      process.kill(srv.pid, 'SIGCONT');
      // Dropped SYNs are retransmitted (1 s, 3 s): every request gets through.
      const s = await h.done;
      assert.equal(s.ok, 8, JSON.stringify(s));
    } finally {
      process.kill(srv.pid, 'SIGCONT');
    }
  });

  it('destroy kills children and grandchildren, deletes the ns, and is idempotent', T, async (t) => {
    if (!needsRoot(t)) return;
    const ns = await Netns.create('gone');
    others.push(ns);
    const child = ns.spawn('sh', ['-c', 'sleep 60 & echo $!; trap "" TERM; sleep 60'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const grandchild = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    assert.ok(alive(child.pid!) && alive(grandchild));
    assert.ok(Netns.alive().includes(ns.name));
    await Promise.all([ns.destroy(500), ns.destroy(500)]);
    await ns.destroy();
    assert.ok(!nsList().includes(ns.name), 'namespace still listed');
    assert.ok(!Netns.alive().includes(ns.name));
    await waitFor('children to die', () => !alive(child.pid!) && !alive(grandchild), 3000);
    assert.throws(() => ns.spawn('true'), /destroyed/);
  });

  it('a crashing or killed test process leaves no namespace and no process behind', T, async (t) => {
    if (!needsRoot(t)) return;
    const script = (end: string): string =>
      `import { Netns } from ${JSON.stringify(NETNS_TS)};
       const ns = await Netns.create('crash');
       const c = ns.spawn('sleep', ['60']);
       console.log(JSON.stringify({ name: ns.name, pid: c.pid }));
       ${end}`;
    const variants: { end: string; sig?: NodeJS.Signals }[] = [
      { end: 'process.exit(3);' },
      { end: "setTimeout(() => { throw new Error('boom'); }, 10);" },
      { end: 'setInterval(() => {}, 1000);', sig: 'SIGTERM' },
      { end: 'setInterval(() => {}, 1000);', sig: 'SIGINT' },
    ];
    for (const v of variants) {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(v.end)], {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      t.after(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      const info = await waitForJsonLine<{ name: string; pid: number }>(child, (o) => typeof o.name === 'string', 20_000);
      if (v.sig) child.kill(v.sig);
      const [code, sig] = await new Promise<[number | null, string | null]>((r) => {
        if (child.exitCode !== null || child.signalCode !== null) r([child.exitCode, child.signalCode]);
        else child.once('exit', (c, s) => r([c, s]));
      });
      if (v.sig) assert.equal(sig, v.sig, 'the signal must still kill the process');
      else assert.notEqual(code, 0);
      assert.ok(!nsList().includes(info.name), `${info.name} left behind (${v.end} ${v.sig ?? ''})`);
      assert.ok(!alive(info.pid), `process ${info.pid} left behind`);
    }
  });
});
