// Fault catalogue: the master itself. One namespace and one configuration
// for the whole sequence: a reload storm coalesces; a second start is
// refused while the first keeps serving; a SIGKILLed master leaves nothing
// serving within 1 s; a restart binds the same port cleanly with the dead
// master's control socket still on disk.
import assert from 'node:assert/strict';
import { existsSync, lstatSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { runLoad } from '../harness/load.js';
import { alivePids, HELLO, MasterProcess, until, type Status } from '../harness/master.js';
import { needsRoot, Netns } from '../harness/netns.js';

const PORT = 8080;
const URL_ = `http://127.0.0.1:${PORT}/`;
const CONFIG = `app: ${HELLO}\nworkers: 2\nlisten: [{ address: 127.0.0.1:${PORT} }]\nreload: { watch: false, settle: 0s, drain_timeout: 3s }\n`;

/** Whether a TCP connect to the port succeeds, from inside the namespace. */
async function accepts(ns: Netns): Promise<boolean> {
  const r = await ns.run(process.execPath, ['-e', `
    const s = require('node:net').connect(${PORT}, '127.0.0.1');
    s.on('connect', () => { console.log('open'); s.destroy(); });
    s.on('error', (e) => console.log(e.code));`], { timeoutMs: 5_000 });
  return r.stdout.trim() === 'open';
}

describe('fault catalogue: master faults', () => {
  it('100 SIGHUPs make at most 3 reloads, two concurrent reload requests are both answered; a second start is refused and the first is unharmed; SIGKILL leaves nothing serving within 1 s; a restart binds cleanly over the stale socket', { timeout: 90_000 }, async (t) => {
    if (!needsRoot(t)) return;
    const ns = await Netns.create('f-master');
    let first: MasterProcess | undefined;
    let second: MasterProcess | undefined;
    try {
      first = MasterProcess.start({ yaml: CONFIG, ns });
      await first.serving();

      // 0. A reload storm: 100 SIGHUPs 1 ms apart (sent at once, the kernel
      // would merge them into one pending signal), then two CLI reloads at once.
      const pause = new Int32Array(new SharedArrayBuffer(4));
      for (let i = 0; i < 100; i++) {
        first.signal('SIGHUP');
        Atomics.wait(pause, 0, 0, 1);
      }
      type Reloads = Status & { reloading: boolean; reloads: { id: number; result: string }[] };
      const storm = await until(async () => {
        const s = (await first!.status()) as Reloads;
        return !s.reloading && s.reloads.length > 0 ? s : undefined;
      }, 30_000, 'the storm to pass');
      t.diagnostic(`100 SIGHUPs: ${storm.reloads.length} reloads`);
      assert.ok(storm.reloads.length <= 3, `${storm.reloads.length} reloads: ${JSON.stringify(storm.reloads)}`);
      assert.ok(storm.reloads.every((r) => r.result === 'ok'));
      // (Two clients of the control socket: what `handover reload` in two shells is.)
      const both = await Promise.all([first.control({ cmd: 'reload' }), first.control({ cmd: 'reload' })]);
      for (const r of both) assert.equal((r.result as { result: string }).result, 'ok', JSON.stringify(r));
      const pids = (await first.status()).generations.find((g) => g.state === 'active')?.workers.map((w) => w.pid as number) ?? [];

      // 1. A second start on the same configuration: refused, clearly, and harmless.
      const refused = await first.cli(['start'], 20_000);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, new RegExp(`another handover master \\(pid ${first.pid}\\) is already running with control socket ${first.controlSocket}`));
      assert.equal(refused.stderr.trim().split('\n').length, 1, 'one line, no stack');
      const status = await first.status();
      assert.deepEqual(status.generations.find((g) => g.state === 'active')?.workers.map((w) => w.pid), pids, 'the same workers serve');
      const load = await runLoad(ns, { url: URL_, requests: 200, concurrency: 8 });
      assert.equal(load.ok, 200, JSON.stringify(load));
      assert.equal((await ns.listeners(PORT)).length, 2, 'still exactly the first master\'s two listeners');

      // 2. SIGKILL: within 1 s no worker serves and nothing is in LISTEN.
      const killedAt = Date.now();
      first.signal('SIGKILL');
      await first.exited;
      await until(async () => ((await ns.listeners(PORT)).length === 0 ? true : undefined), 1_000, 'no LISTEN socket on the port', 20);
      await until(() => (alivePids(pids).length === 0 ? true : undefined), 1_000 - (Date.now() - killedAt) + 200, 'workers gone', 20);
      t.diagnostic(`nothing listening ${Date.now() - killedAt} ms after the SIGKILL`);
      assert.equal(await accepts(ns), false, 'a new connection is refused');
      assert.ok(lstatSync(first.controlSocket).isSocket(), 'the dead master left its control socket behind');

      // 3. Restart with the stale socket (and its lock file) on disk.
      second = first.again();
      const again = await second.serving();
      assert.ok(second.logs.some((l) => l.msg === 'replaced the stale control socket of a master that is gone'), 'the stale socket was replaced');
      assert.equal((await second.status()).pid, second.pid, 'the new master answers on the same control socket');
      const after = await runLoad(ns, { url: URL_, requests: 200, concurrency: 8 });
      assert.equal(after.ok, 200, JSON.stringify(after));
      assert.deepEqual(Object.keys(after.workers).map(Number).sort(), [...again].sort(), 'served by the new workers');
      assert.ok(existsSync(`${second.controlSocket}.lock`));
    } finally {
      if (second) await second.dispose();
      else await first?.dispose();
      await ns.destroy();
    }
  });
});

before(() => Netns.reapStale());
after(() => Netns.reapStale());
