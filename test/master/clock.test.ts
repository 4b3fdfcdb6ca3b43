// Deadlines follow the monotonic clock: the master's wall clock alone is
// stepped by an hour forward and back with libfaketime (CLOCK_REALTIME is
// not namespaced, so the machine's is never touched; the monotonic clock is
// left alone, as NTP or a VM resume would). Before the fix, heartbeats
// measured with Date.now() SIGKILLed every serving worker at the first step.
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { errorCount, startLoad } from '../harness/load.js';
import { alivePids, HELLO, sleep, withMaster, type ReloadReport } from '../harness/master.js';
import { Netns } from '../harness/netns.js';

const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1'].find((p) => existsSync(p));
const PORT = 8080;

describe('clock steps', () => {
  before(() => Netns.reapStale());
  after(() => Netns.reapStale());

  it('stepping the master\'s wall clock by an hour either way kills no worker and keeps reload figures sane', { timeout: 60_000 }, async (t) => {
    if (!LIBFAKETIME) {
      if (process.env['CI']) assert.fail('libfaketime is not installed (Debian package faketime); CI is set, so this fails instead of skipping');
      t.skip('needs libfaketime (Debian package faketime)');
      return;
    }
    const stamp = join(tmpdir(), `handover-faketime-${process.pid}`);
    writeFileSync(stamp, '+0\n');
    // The workers get an empty LD_PRELOAD through the config's env: only the master's clock moves.
    const yaml = `app: ${HELLO}\nworkers: 2\nlisten:\n  - address: 127.0.0.1:${PORT}\nreload: { watch: false, settle: 2s, drain_timeout: 2s }\nenv: { LD_PRELOAD: "" }\n`;
    const env = { LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: stamp, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
    try {
      await withMaster(t, 'clock', yaml, async (ns, master, pids) => {
        const load = startLoad(ns, { url: `http://127.0.0.1:${PORT}/`, mode: 'keepalive', duration: 30_000, concurrency: 4 });
        try {
          await sleep(1_500);
          // Steps in the middle of reloads (during their settle): a duration from the wall clock would be off by an hour.
          // A step in the middle of a reload (during its settle), then a wait
          // longer than the 5 s heartbeat timeout: figures and deadlines must
          // come from the monotonic clock.
          const stepDuringReload = async (step: string, what: string): Promise<number[]> => {
            const answer = master.control({ cmd: 'reload' });
            await sleep(1_000);
            writeFileSync(stamp, `${step}\n`);
            const report = (await answer).result as ReloadReport;
            assert.equal(report.result, 'ok', JSON.stringify(report));
            assert.ok(report.durationMs >= 0 && report.durationMs < 30_000, `${what}: duration from the monotonic clock: ${report.durationMs} ms`);
            assert.ok(report.settleMs >= 1_500 && report.settleMs < 30_000, `${what}: settle from the monotonic clock: ${report.settleMs} ms`);
            return (await master.status()).generations.find((g) => g.state === 'active')?.workers.map((w) => w.pid as number) ?? [];
          };
          const serving = await stepDuringReload('+1h', 'a step forward');
          await sleep(6_500); // a wall-clock heartbeat would have killed them all by now
          assert.deepEqual(alivePids(serving), serving, 'a step forward killed no worker');
          const later = await stepDuringReload('-1h', 'a step back');
          await sleep(1_500);
          assert.deepEqual(alivePids(later), later, 'a step back killed no worker');
          assert.deepEqual(alivePids(pids), [], 'the first generation drained');
          const summary = await load.stop();
          t.diagnostic(`load ${JSON.stringify(summary)}`);
          assert.equal(errorCount(summary), 0, JSON.stringify(summary));
          assert.ok(!master.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('missed its heartbeat')), 'no heartbeat kill');
        } finally {
          await load.stop();
        }
      }, { env });
    } finally {
      rmSync(stamp, { force: true });
    }
  });
});
