// The test plays systemd: it binds the notify socket, starts `handover
// start` with NOTIFY_SOCKET (and WATCHDOG_USEC) pointing at it, and checks
// what a service manager would see. No root needed: port 0 on loopback.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { monotonicMicros } from '../../src/sys/index.js';
import { APPS, HELLO, MAIN, MasterProcess, sleep, until, type LogLine } from '../harness/master.js';
import { has, NotifySocket } from './notify-socket.js';

const dir = mkdtempSync(join(tmpdir(), 'handover-notify-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = (app: string, extra = '', workers = 2): string =>
  `app: ${app}\nworkers: ${workers}\nlisten: [{ address: 127.0.0.1:0 }]\nreload: { watch: false, settle: 0s, drain_timeout: 2s${extra} }\n`;

interface Report {
  result: string;
  reason?: string;
}

describe('sd_notify, as systemd sees it', () => {
  it('READY → RELOADING (MONOTONIC_USEC) → READY → RELOADING → READY naming the rollback → STOPPING', async () => {
    const socket = new NotifySocket(join(dir, 'notify.sock'));
    const master = MasterProcess.start({ yaml: config(`${APPS}/chatty.js`), env: { NOTIFY_SOCKET: socket.path } });
    try {
      await master.serving();
      const ready = await socket.next(has('READY'), 10_000);
      assert.match(ready.fields.get('STATUS') ?? '', /^generation 1: 2\/2 workers serving$/);

      // A reload: RELOADING=1 stamped with CLOCK_MONOTONIC, after the request and close to its receipt.
      let before = socket.messages.length;
      const askedAt = monotonicMicros();
      const ok = await master.control({ cmd: 'reload' });
      assert.equal((ok.result as Report).result, 'ok', JSON.stringify(ok));
      const reloading = await socket.next(has('RELOADING'), 5_000, before);
      const stamp = BigInt(reloading.fields.get('MONOTONIC_USEC') ?? '-1');
      assert.ok(stamp >= askedAt, `MONOTONIC_USEC ${stamp} is not before the request (${askedAt})`);
      const skew = reloading.receivedUsec - stamp;
      assert.ok(skew >= 0n && skew < 1_000_000n, `MONOTONIC_USEC within 1 s of CLOCK_MONOTONIC at receipt (off by ${skew} µs)`);
      const reloaded = await socket.next(has('READY'), 5_000, socket.messages.indexOf(reloading));
      assert.match(reloaded.fields.get('STATUS') ?? '', /^generation 2: 2\/2 workers serving(, 1 draining)?; last reload 1 \(control\) ok in \d+ ms/);

      // A reload that rolls back (the new app throws in init): READY=1 again, its STATUS says why.
      writeFileSync(master.configFile, `${config(`${APPS}/throw-at-init.js`)}control: { socket: ${master.controlSocket} }\n`);
      before = socket.messages.length;
      const failed = await master.control({ cmd: 'reload' });
      assert.equal((failed.result as Report).result, 'rolled_back');
      const again = await socket.next(has('RELOADING'), 5_000, before);
      const back = await socket.next(has('READY'), 5_000, socket.messages.indexOf(again));
      assert.match(back.fields.get('STATUS') ?? '', /generation 2: .*last reload 2 \(control\) rolled back: .*boom at init/);

      master.signal('SIGTERM');
      assert.equal((await master.exited).code, 0);
      await socket.next(has('STOPPING'), 5_000);
      assert.deepEqual(socket.states(), ['READY', 'RELOADING', 'READY', 'RELOADING', 'READY', 'STOPPING']);
      assert.ok(!socket.messages.some((m) => m.fields.has('MAINPID')), 'MAINPID is never sent');

      // Each line a worker wrote is in the master's log, labelled with its worker.
      const appLines = master.logs.filter((l) => l['name'] === 'app' || l.msg === 'app-json');
      for (const w of [0, 1]) {
        const mine = (l: LogLine): boolean => l['worker'] === w && l['generation'] === 1;
        assert.ok(appLines.some((l) => mine(l) && l.msg === `plain line from worker ${w}` && l['stream'] === 'stdout' && l.level === 30), `worker ${w}'s plain line`);
        assert.ok(appLines.some((l) => mine(l) && l.msg === 'an error by its prefix' && l.level === 50), `worker ${w}'s <3> line is an error`);
        assert.ok(appLines.some((l) => mine(l) && l.msg === 'app-json' && l['n'] === 1), `worker ${w}'s JSON line keeps its fields`);
        assert.ok(appLines.some((l) => mine(l) && l.msg === `last words of worker ${w}`), `worker ${w}'s last line, written at exit without a newline, is not lost`);
      }
      assert.match(master.stderr, /"generation":1,"worker":0,"stream":"stderr","msg":"a line on stderr"/);
    } finally {
      await master.dispose();
      socket.close();
    }
  });

  it('WATCHDOG=1 every WATCHDOG_USEC/2, and none once a reload is wedged past its deadline while the loop runs on', async () => {
    // The abstract namespace this time; the stall hook makes every reload wait forever after reading its config.
    const socket = new NotifySocket(`@handover-test-${process.pid}-${Date.now()}`);
    const intervalMs = 300;
    const master = MasterProcess.start({
      yaml: config(HELLO, ', ready_timeout: 20s', 1),
      env: { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: String(intervalMs * 2 * 1000), HANDOVER_TEST_STALL_RELOAD: '1' },
    });
    try {
      await master.serving();
      await socket.next(has('READY'), 10_000);
      // The reload re-arms its deadline from the configuration it reads: a short one keeps this test short.
      writeFileSync(master.configFile, `${config(HELLO, ', ready_timeout: 500ms', 1)}control: { socket: ${master.controlSocket} }\n`);
      const readyAt = socket.messages.length;
      master.signal('SIGHUP');
      await socket.next(has('RELOADING'), 5_000, readyAt);
      const overdue = await master.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('is past its deadline'), 20_000);
      const silentFrom = socket.messages.length;
      const pings = socket.messages.slice(readyAt, silentFrom).filter(has('WATCHDOG'));
      // The reload's deadline with these settings: 500 ms ready + 1 s drain ack + 3 s margin = 4.5 s of pings.
      assert.ok(pings.length >= 8, `pings while the reload was within its deadline: ${pings.length}`);
      const gaps = pings.slice(1).map((p, i) => Number(p.receivedUsec - (pings[i]?.receivedUsec ?? 0n)) / 1000);
      const median = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)] ?? 0;
      assert.ok(median > intervalMs * 0.7 && median < intervalMs * 1.6, `median gap ${median} ms for an interval of ${intervalMs} ms`);
      assert.equal(overdue['reload'], 1);

      await sleep(intervalMs * 5);
      const status = await master.status(); // the master's loop still answers
      assert.equal((status as unknown as { reloading: boolean }).reloading, true);
      const late = socket.messages.slice(silentFrom).filter(has('WATCHDOG'));
      assert.ok(late.length <= 1, `no pings once the reload is past its deadline (got ${late.length}; one may have been in flight)`);
      assert.ok(socket.messages.slice(silentFrom - 1).some((m) => /reload 1 wedged/.test(m.fields.get('STATUS') ?? '')), 'STATUS says the reload is wedged');
    } finally {
      await master.dispose();
      socket.close();
    }
  });
});

describe('logs that fit journald', () => {
  it('on a journal stream ($JOURNAL_STREAM = stdout device:inode): one <N>-prefixed line per event, worker lines labelled', async () => {
    // A file stands in for journald's stream: the master can only tell it is "the journal" by device and inode.
    const out = join(dir, 'journal.out');
    const err = join(dir, 'journal.err');
    const cfg = join(dir, 'journal.yaml');
    writeFileSync(cfg, `${config(`${APPS}/chatty.js`, '', 1)}control: { socket: ${join(dir, 'journal.sock')} }\n`);
    const [o, e] = [openSync(out, 'w'), openSync(err, 'w')];
    const st = fstatSync(o);
    const env: NodeJS.ProcessEnv = { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}`, NOTIFY_SOCKET: 'vsock:2:9' };
    delete env['HANDOVER_LOG_PRETTY'];
    delete env['HANDOVER_LOG_FORMAT'];
    const child = spawn(process.execPath, [MAIN, 'start', '-c', cfg], { stdio: ['ignore', o, e], env });
    closeSync(o);
    closeSync(e);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await until(() => (/serving 127\.0\.0\.1:\d+ with 1 workers/.test(readFileSync(out, 'utf8')) ? true : undefined), 15_000, 'serving');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    const bad = lines.filter((l) => !/^<[0-7]>\S/.test(l));
    assert.deepEqual(bad, [], 'every stdout line starts with a syslog priority');
    assert.ok(lines.some((l) => l.startsWith('<4>NOTIFY_SOCKET=vsock:2:9 is not a Unix socket path')), 'a warning is <4>');
    assert.ok(lines.some((l) => /^<6>serving 127\.0\.0\.1:\d+ with 1 workers listen=/.test(l)), 'info is <6>, fields as key=value');
    assert.ok(lines.some((l) => l === '<6>[g1 w0] plain line from worker 0'), 'an app line is labelled with generation and worker');
    assert.ok(lines.some((l) => l === '<3>[g1 w0] an error by its prefix'), "the app's own <3> is kept");
    assert.ok(lines.some((l) => l === '<6>[g1 w0] app-json n=1'), 'a JSON line becomes message and fields');
    assert.ok(lines.some((l) => /^<6>\[g1 w0\] drained connections=0/.test(l)), "the worker's own log events are rendered too");
    assert.ok(lines.some((l) => l === '<6>[g1 w0] last words of worker 0'));
    assert.ok(readFileSync(err, 'utf8').split('\n').includes('<4>[g1 w0] a line on stderr'), 'stderr lines are warnings, on stderr');
  });
});
