// The control server on its own, in this process: the socket's mode under a
// permissive umask, one server per path even when two start at the same
// moment, a stale socket replaced, anything else at the path left alone.
// No root needed.
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createLogger } from '../../src/log/logger.js';
import { ControlServer, ControlSocketError, ControlSocketInUse } from '../../src/master/control-server.js';

const dir = mkdtempSync(join(tmpdir(), 'handover-ctl-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const log = createLogger({ level: 'silent' });
const answer = (path: string, line: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const s = connect(path, () => s.write(line));
    let text = '';
    s.on('data', (d) => (text += d.toString()));
    s.on('close', () => resolve(text));
    s.on('error', reject);
  });

describe('control server', () => {
  it('binds 0600 (directories 0700) under umask 000, and answers', async () => {
    const path = join(dir, 'a', 'b', 'c.sock');
    const server = new ControlServer(path, log, (_req, reply) => reply({ ok: true, result: 'pong' }));
    const previous = process.umask(0);
    try {
      await server.listen();
    } finally {
      process.umask(previous);
    }
    try {
      assert.equal(lstatSync(path).mode & 0o777, 0o600);
      assert.equal(lstatSync(join(dir, 'a')).mode & 0o777, 0o700);
      assert.equal(lstatSync(join(dir, 'a', 'b')).mode & 0o777, 0o700);
      assert.equal(process.umask(), previous, 'the umask is restored');
      assert.deepEqual(JSON.parse(await answer(path, '{"cmd":"status"}\n')), { ok: true, result: 'pong' });
    } finally {
      await server.close();
    }
  });

  it('two servers starting at the same moment on one path: exactly one wins, and keeps its socket', async () => {
    const path = join(dir, 'race.sock');
    const servers = [1, 2].map((n) => new ControlServer(path, log, (_req, reply) => reply({ ok: true, result: n })));
    const outcomes = await Promise.allSettled(servers.map((s) => s.listen()));
    try {
      const won = outcomes.filter((o) => o.status === 'fulfilled').length;
      assert.equal(won, 1, JSON.stringify(outcomes));
      const lost = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      assert.ok(lost.reason instanceof ControlSocketInUse, String(lost.reason));
      assert.match(lost.reason.message, new RegExp(`another handover master \\(pid ${process.pid}\\) is already running`));
      const winner = outcomes.findIndex((o) => o.status === 'fulfilled') + 1;
      assert.equal(JSON.parse(await answer(path, '{"cmd":"status"}\n')).result, winner, 'the winner still answers on the path');
      assert.equal(readFileSync(`${path}.lock`, 'utf8').trim(), String(process.pid));
    } finally {
      for (const s of servers) await s.close();
    }
  });

  it('replaces a socket nobody answers on; refuses a regular file at the path and leaves it', async () => {
    const stale = join(dir, 'stale.sock');
    // A process that dies by SIGKILL leaves its socket file behind (a clean close unlinks it).
    spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.ok(lstatSync(stale).isSocket());
    const server = new ControlServer(stale, log, (_req, reply) => reply({ ok: true, result: 'new' }));
    await server.listen();
    try {
      assert.equal(JSON.parse(await answer(stale, '{"cmd":"status"}\n')).result, 'new');
    } finally {
      await server.close();
    }

    const precious = join(dir, 'precious');
    writeFileSync(precious, 'data');
    const refused = new ControlServer(precious, log, () => {});
    await assert.rejects(refused.listen(), (err: unknown) => err instanceof ControlSocketError && /exists and is not a socket; refusing to replace it/.test(err.message));
    assert.equal(readFileSync(precious, 'utf8'), 'data');
    // The lock was released: a later attempt is refused for the file again, not for a lock.
    await assert.rejects(new ControlServer(precious, log, () => {}).listen(), ControlSocketError);
  });
});
