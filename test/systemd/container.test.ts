// handover as PID 1, as in a container started without an init: SIGTERM
// still means a graceful stop (PID 1 gets no default signal actions, only
// the handlers it installs), and orphans re-parented to it are reaped
// instead of piling up as zombies. A PID namespace of the test's own.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { APPS, MasterProcess, until } from '../harness/master.js';
import { needsRoot } from '../harness/netns.js';

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const command = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
  } catch {
    return '';
  }
};

describe('handover as PID 1', () => {
  it("reaps orphans re-parented to it, and SIGTERM is a graceful stop", async (t) => {
    if (!needsRoot(t)) return;
    // The app leaves an orphan (`sleep 0.2 &` from a shell that exits) at each worker start.
    const master = MasterProcess.start({
      yaml: `app: ${APPS}/orphans.js\nworkers: 1\nlisten: [{ address: 127.0.0.1:0 }]\nreload: { watch: false, settle: 0s, drain_timeout: 2s }\n`,
      wrapper: ['unshare', '--pid', '--fork', '--mount-proc', '--kill-child'],
    });
    try {
      await master.serving();
      const pid = await until(() => children(master.pid)[0], 5_000, 'the master under unshare');
      assert.match(readFileSync(`/proc/${pid}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m, 'the master is PID 1 of its namespace');
      assert.ok(master.logs.some((l) => l.msg?.startsWith('running as PID 1')));
      // The orphan appears as the master's child (`sleep 1`), then goes, zombie included. Workers run node.
      const orphans = (): number[] => children(pid).filter((c) => command(c) !== process.execPath);
      await until(() => (orphans().length > 0 ? true : undefined), 5_000, 'the orphan re-parented to the master');
      await until(() => (orphans().length === 0 ? true : undefined), 4_000, 'the orphan reaped once it exited');
      process.kill(pid, 'SIGTERM');
      assert.equal((await master.exited).code, 0);
      assert.ok(master.logs.some((l) => l.msg === 'stopped'), 'a graceful stop');
    } finally {
      await master.dispose();
    }
  });
});
