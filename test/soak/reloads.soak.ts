// The reload soak (`npm run test:soak`; not part of `npm test`): per
// strategy (migrate, inherit), 500 reloads back to back under continuous
// new-connection load, with a random worker SIGKILLed at a random moment
// every ~10 reloads. It checks:
//   - no failed request except what a killed worker had accepted: every
//     error within 1 s of a kill, at most the load's concurrency per kill;
//   - descriptors and processes equal at start and end (after the drains
//     and the half-open grace);
//   - the master's RSS grows less than 10 MB between reloads 250 and 500.
// SOAK_RELOADS and SOAK_KILL_EVERY change the counts (e.g. a quick run:
// SOAK_RELOADS=60 npm run test:soak).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startLoad, type LoadHandle, type LoadSummary } from '../harness/load.js';
import { HELLO, MasterProcess, sleep, until, type Status } from '../harness/master.js';
import { needsRoot, Netns } from '../harness/netns.js';

const PORT = 8080;
const URL_ = `http://127.0.0.1:${PORT}/`;
const RELOADS = Number(process.env['SOAK_RELOADS'] ?? 500);
const KILL_EVERY = Number(process.env['SOAK_KILL_EVERY'] ?? 10);
const CONCURRENCY = 16;
/** load.mjs stops itself at 120 s: overlapping clients are rotated well before. */
const LOAD_ROTATE_MS = 45_000;
/** The master keeps a retired listener's copy this long (generation.ts HALF_OPEN_GRACE_MS), then closes it. */
const HALF_OPEN_GRACE_MS = 3_000;
const RSS_GROWTH_LIMIT_KB = 10 * 1024;

const config = (strategy: string): string =>
  `app: ${HELLO}\nworkers: 2\nlisten: [{ address: 127.0.0.1:${PORT} }]\nreload: { watch: false, drain_timeout: 1s, strategy: ${strategy} }\n`;

/** Continuous load across load.mjs's 120 s cap: a new client starts before the old one stops. */
class RotatingLoad {
  private current: LoadHandle;
  private readonly done: Promise<LoadSummary>[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly ns: Netns) {
    this.current = this.start();
    this.timer = setInterval(() => {
      const old = this.current;
      this.current = this.start();
      this.done.push(old.stop());
    }, LOAD_ROTATE_MS);
  }

  private start(): LoadHandle {
    return startLoad(this.ns, { url: URL_, concurrency: CONCURRENCY, duration: 110_000, timeout: 5_000 });
  }

  async stop(): Promise<LoadSummary[]> {
    clearInterval(this.timer);
    this.done.push(this.current.stop());
    return Promise.all(this.done);
  }
}

function activePids(s: Status): number[] {
  return s.generations.find((g) => g.generation === s.generation)?.workers.flatMap((w) => (w.pid ? [w.pid] : [])) ?? [];
}

describe('soak: reloads under load with worker kills', () => {
  for (const [strategy, migrate] of [['migrate', 1], ['inherit', 0]] as const) {
    it(`${strategy}: ${RELOADS} reloads, a worker SIGKILL every ~${KILL_EVERY}`, { timeout: 30 * 60_000 }, async (t) => {
      if (!needsRoot(t)) return;
      const ns = await Netns.create(`soak-${strategy}`);
      let master: MasterProcess | undefined;
      let load: RotatingLoad | undefined;
      try {
        await ns.sysctl('net.ipv4.tcp_migrate_req', migrate);
        // V8's young generation would grow RSS to a plateau over the first
        // hundreds of reloads: pin it, so that RSS shows what is retained.
        master = MasterProcess.start({ yaml: config(strategy), ns, env: { NODE_OPTIONS: '--max-semi-space-size=1' } });
        await master.serving();
        const m = master;
        const fds = (): number => readdirSync(`/proc/${m.pid}/fd`).length;
        const rssKb = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${m.pid}/status`, 'utf8'))?.[1]);
        // The master's children (the load clients share the namespace, so not ns.pids()).
        const children = (): number =>
          readdirSync(`/proc/${m.pid}/task`).reduce((n, tid) => n + readFileSync(`/proc/${m.pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).length, 0);
        const settled = async (): Promise<number> =>
          until(async () => {
            const s = await m.status();
            const n = children();
            return s.generations.length === 1 && n === activePids(s).length ? n : undefined;
          }, 30_000, 'old generations drained', 100);

        for (let i = 0; i < 10; i++) await m.control({ cmd: 'reload' }); // warm-up: lazy state is no leak
        await settled();
        await sleep(HALF_OPEN_GRACE_MS + 500);
        const fds0 = fds();
        const procs0 = children();

        load = new RotatingLoad(ns);
        const kills: number[] = [];
        const results: Record<string, number> = {};
        let rss250 = 0;
        let nextKill = KILL_EVERY;
        for (let i = 1; i <= RELOADS; i++) {
          if (i === nextKill) {
            nextKill += Math.max(1, KILL_EVERY + Math.round((Math.random() - 0.5) * KILL_EVERY * 0.6));
            const victims = activePids(await m.status());
            const victim = victims[Math.floor(Math.random() * victims.length)];
            // At a random moment of the next reload, not between two.
            setTimeout(() => {
              if (victim === undefined) return;
              try {
                process.kill(victim, 'SIGKILL');
                kills.push(Date.now());
              } catch {
                /* already gone */
              }
            }, Math.random() * 300);
          }
          const r = (await m.control({ cmd: 'reload' })).result as { result: string };
          results[r.result] = (results[r.result] ?? 0) + 1;
          if (i === Math.floor(RELOADS / 2)) {
            await settled();
            rss250 = rssKb();
          }
        }
        const summaries = await load.stop();
        load = undefined;
        await settled();
        await sleep(HALF_OPEN_GRACE_MS + 500);
        const rss500 = rssKb();
        const fds1 = await until(() => (fds() === fds0 ? fds0 : undefined), 5_000, 'descriptors back').catch(() => fds());
        const procs1 = children();

        const errorsAt = summaries.flatMap((s) => s.errorsAt);
        const ok = summaries.reduce((n, s) => n + s.ok, 0);
        const timeouts = summaries.reduce((n, s) => n + s.timeouts, 0);
        const codes: Record<string, number> = {};
        for (const s of summaries) for (const [code, n] of Object.entries(s.errors)) codes[code] = (codes[code] ?? 0) + n;
        const unexplained = errorsAt.filter((at) => !kills.some((k) => at >= k - 50 && at <= k + 1_000));
        const perKill = kills.map((k) => errorsAt.filter((at) => at >= k - 50 && at <= k + 1_000).length);
        t.diagnostic(
          `${strategy}: reloads ${JSON.stringify(results)}; ${ok} requests ok, ${errorsAt.length} failed ${JSON.stringify(codes)} ` +
            `(${unexplained.length} not near a kill), ${timeouts} timed out; ${kills.length} kills, lost per kill ${perKill.join(',')}; ` +
            `fds ${fds0} -> ${fds1}; processes ${procs0} -> ${procs1}; RSS at ${Math.floor(RELOADS / 2)} ${rss250} kB, at ${RELOADS} ${rss500} kB`,
        );
        assert.deepEqual(results, { ok: RELOADS }, 'every reload succeeded');
        assert.equal(timeouts, 0, 'no request hung');
        assert.equal(unexplained.length, 0, 'every failed request failed within 1 s of a kill');
        assert.ok(perKill.every((n) => n <= CONCURRENCY), `at most ${CONCURRENCY} lost per kill: ${perKill.join(',')}`);
        assert.equal(fds1, fds0, 'descriptors equal at start and end');
        assert.equal(procs1, procs0, 'processes equal at start and end');
        assert.ok(rss500 - rss250 < RSS_GROWTH_LIMIT_KB, `RSS grew ${rss500 - rss250} kB between reloads ${Math.floor(RELOADS / 2)} and ${RELOADS}`);
      } finally {
        await load?.stop().catch(() => []);
        await master?.dispose(20_000);
        await ns.destroy();
      }
    });
  }
});

before(() => Netns.reapStale());
after(() => Netns.reapStale());
