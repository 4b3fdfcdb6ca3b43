// sd_notify's pieces, in this process, on real sockets: the sockaddr_un
// encoding (abstract namespace included), datagrams, CLOCK_MONOTONIC, the
// environment rules and the watchdog's gate.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Notifier, readNotifyEnvironment } from '../../src/systemd/notify.js';
import { close, encodeSockaddrUn, monotonicMicros, sendDatagram, unixDatagramSocket } from '../../src/sys/index.js';
import { sleep } from '../harness/master.js';
import { NotifySocket } from './notify-socket.js';

const dir = mkdtempSync(join(tmpdir(), 'handover-notify-client-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('sockaddr_un and datagrams', () => {
  it('encodes a path NUL-terminated and an @name with a leading NUL and no terminator', () => {
    assert.equal(encodeSockaddrUn('/run/x').toString('hex'), `0100${Buffer.from('/run/x').toString('hex')}00`);
    assert.equal(encodeSockaddrUn('@sd').toString('hex'), `010000${Buffer.from('sd').toString('hex')}`);
    assert.equal(encodeSockaddrUn(`/${'a'.repeat(106)}`).length, 110);
    assert.throws(() => encodeSockaddrUn(`/${'a'.repeat(107)}`), { message: /^sockaddr_un \/a+: EINVAL$/ });
    assert.throws(() => encodeSockaddrUn('/a\0b'), { code: 'EINVAL' });
  });

  it('sends one datagram to a path and to an abstract name; an absent receiver is an error, not a hang', async () => {
    for (const path of [join(dir, 'd.sock'), `@handover-dgram-${process.pid}`]) {
      const receiver = new NotifySocket(path);
      const fd = unixDatagramSocket();
      try {
        sendDatagram(fd, Buffer.from('A=1\nB=two'), path);
        await sleep(50);
        assert.deepEqual(receiver.messages.map((m) => m.text), ['A=1\nB=two']);
      } finally {
        close(fd);
        receiver.close();
      }
      const lonely = unixDatagramSocket();
      try {
        assert.throws(() => sendDatagram(lonely, Buffer.from('X=1'), path), { code: path.startsWith('@') ? 'ECONNREFUSED' : 'ENOENT' });
      } finally {
        close(lonely);
      }
    }
  });

  it("CLOCK_MONOTONIC through clock_gettime agrees with process.hrtime (libuv's uv_hrtime reads the same clock)", () => {
    for (let i = 0; i < 5; i++) {
      const before = process.hrtime.bigint() / 1000n;
      const mono = monotonicMicros();
      const afterwards = process.hrtime.bigint() / 1000n;
      assert.ok(before <= mono && mono <= afterwards + 1n, `${before} <= ${mono} <= ${afterwards}`);
    }
  });
});

describe('the notify environment', () => {
  it('no NOTIFY_SOCKET: every call is a no-op', () => {
    const n = new Notifier(undefined, undefined);
    assert.equal(n.enabled, false);
    assert.equal(n.ready('x'), false);
    n.startWatchdog(() => true);
    n.close();
  });

  it('the watchdog is for us when WATCHDOG_PID is unset or our pid; half of WATCHDOG_USEC', () => {
    const env = { NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '2000000' };
    assert.equal(readNotifyEnvironment(env, 42).watchdogIntervalMs, 1000);
    assert.equal(readNotifyEnvironment({ ...env, WATCHDOG_PID: '42' }, 42).watchdogIntervalMs, 1000);
    assert.equal(readNotifyEnvironment({ ...env, WATCHDOG_PID: '43' }, 42).watchdogIntervalMs, undefined);
    assert.equal(readNotifyEnvironment({ WATCHDOG_USEC: '2000000' }, 42).watchdogIntervalMs, undefined, 'no socket, no watchdog');
    assert.match(readNotifyEnvironment({ ...env, WATCHDOG_USEC: 'soon' }, 42).problem ?? '', /WATCHDOG_USEC=soon/);
    assert.match(readNotifyEnvironment({ NOTIFY_SOCKET: 'vsock:2:1' }, 42).problem ?? '', /not a Unix socket path/);
  });

  it('fromEnvironment takes the variables out, so that children cannot inherit them', () => {
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '@y', WATCHDOG_USEC: '1000000', WATCHDOG_PID: String(process.pid), KEEP: '1' };
    const n = Notifier.fromEnvironment(undefined, env);
    assert.deepEqual(env, { KEEP: '1' });
    assert.equal(n.socket, '@y');
    assert.equal(n.watchdogIntervalMs, 500);
  });

  it('sends READY, RELOADING with MONOTONIC_USEC, STATUS; undeliverable notifications are reported, never thrown', async () => {
    const receiver = new NotifySocket(join(dir, 'n.sock'));
    const errors: string[] = [];
    const n = new Notifier(receiver.path, 100, (m) => errors.push(m));
    try {
      n.ready('serving');
      const t0 = monotonicMicros();
      n.reloading('reloading\nnow');
      let healthy = true;
      n.startWatchdog(() => healthy);
      await sleep(350);
      healthy = false;
      const pings = receiver.messages.length;
      await sleep(350);
      assert.equal(receiver.messages[0]?.text, 'READY=1\nSTATUS=serving');
      const reloading = receiver.messages[1];
      assert.equal(reloading?.fields.get('RELOADING'), '1');
      assert.equal(reloading?.fields.get('STATUS'), 'reloading now', 'a value never spans lines');
      assert.ok(BigInt(reloading?.fields.get('MONOTONIC_USEC') ?? '0') >= t0);
      assert.ok(pings - 2 >= 2, `pinged while healthy (${pings - 2})`);
      assert.equal(receiver.messages.length, pings, 'no ping while unhealthy');
    } finally {
      receiver.close();
    }
    assert.equal(n.status('gone'), false);
    n.close();
    assert.match(errors[0] ?? '', /^sd_notify STATUS=gone: sendto .*n\.sock: ENOENT$/);
  });
});

describe("the watchdog's reload deadline", () => {
  it('ready_timeout + settle + the drain acknowledgement + a queue wait and a second acknowledgement per listener nobody may take over + a margin', async () => {
    const { writeFileSync } = await import('node:fs');
    const { parseConfig } = await import('../../src/config/index.js');
    const { reloadDeadlineMs, RELOAD_DEADLINE_MARGIN_MS } = await import('../../src/master/lifecycle.js');
    const { ACCEPT_QUEUE_WAIT_MS, DRAIN_ACK_TIMEOUT_MS } = await import('../../src/master/handoff/cutover.js');
    const acceptFirst = ACCEPT_QUEUE_WAIT_MS + DRAIN_ACK_TIMEOUT_MS;
    writeFileSync(join(dir, 'app.js'), 'export default () => {};\n');
    const config = (listen: string[], reload: string) =>
      parseConfig(`app: app.js\nlisten: [${listen.map((a) => `{ address: "${a}" }`).join(', ')}]\nreload: { ${reload} }\n`, join(dir, 'c.yaml'));
    const a = config(['127.0.0.1:1', '127.0.0.1:2'], 'ready_timeout: 4s, settle: 1s');
    const b = config(['127.0.0.1:1'], 'ready_timeout: 2s, settle: 0s');
    // Two listeners that might change protocol (or a rollback's accept-first wait).
    assert.equal(reloadDeadlineMs(a), 4000 + 1000 + DRAIN_ACK_TIMEOUT_MS + 2 * acceptFirst + RELOAD_DEADLINE_MARGIN_MS);
    // One removed, one that stays.
    assert.equal(reloadDeadlineMs(a, b), 2000 + DRAIN_ACK_TIMEOUT_MS + 2 * acceptFirst + RELOAD_DEADLINE_MARGIN_MS);
  });
});
