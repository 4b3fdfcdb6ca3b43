// A worker SIGKILLed at the very moment a reload starts: its replacement is
// still booting when the reload commits. Before the fix the commit shut the
// replacement's fresh, never-listening socket down, the replacement then
// listened on it anyway and exited, and the socket sat in LISTEN taking
// connections only to reset them (measured: ~1,030 resets in six rounds).
// Bound: each round fails at most the killed worker's in-flight requests,
// all within 1 s of the kill.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startLoad, type FailureEvent } from '../harness/load.js';
import { HELLO, sleep, withMaster, type ReloadReport, type Status } from '../harness/master.js';
import { Netns } from '../harness/netns.js';

const PORT = 8080;
const ROUNDS = 20;
const CONCURRENCY = 16;

const yaml = (strategy: string): string =>
  `app: ${HELLO}\nworkers: 2\nlisten:\n  - address: 127.0.0.1:${PORT}\nreload: { strategy: ${strategy}, watch: false, settle: 0s, drain_timeout: 2s }\n`;

function serving(s: Status): number[] {
  return (s.generations.find((g) => g.generation === s.generation)?.workers ?? []).filter((w) => w.state === 'serving').map((w) => w.pid as number);
}

describe('a worker killed as a reload starts', () => {
  before(() => Netns.reapStale());
  after(() => Netns.reapStale());

  for (const [strategy, migrateReq] of [['migrate', 1], ['inherit', 0]] as const) {
    it(`${strategy}: ${ROUNDS} rounds of SIGKILL + reload under new-connection load lose only the killed workers' in-flight requests`, { timeout: 120_000 }, async (t) => {
      await withMaster(t, `kr-${strategy}`, yaml(strategy), async (ns, master) => {
        const failures: FailureEvent[] = [];
        const load = startLoad(ns, { url: `http://127.0.0.1:${PORT}/`, mode: 'newconn', duration: 100_000, concurrency: CONCURRENCY, timeout: 3_000, logErrors: true });
        load.events.on('failure', (e: FailureEvent) => failures.push(e));
        const kills: number[] = [];
        const reports: ReloadReport[] = [];
        try {
          await sleep(500);
          for (let round = 0; round < ROUNDS; round++) {
            const pids = serving(await master.status());
            const victim = pids[round % pids.length];
            if (victim === undefined) {
              await sleep(200);
              continue;
            }
            kills.push(Date.now());
            process.kill(victim, 'SIGKILL');
            reports.push((await master.control({ cmd: 'reload' })).result as ReloadReport);
            await sleep(300);
          }
          await sleep(1_500);
        } finally {
          await load.stop();
        }
        const summary = await load.done;
        const perRound = kills.map(() => 0);
        const late: FailureEvent[] = [];
        for (const f of failures) {
          const round = kills.findLastIndex((k) => k <= f.at);
          if (round < 0 || f.at - (kills[round] as number) > 1_000) late.push(f);
          else perRound[round] = (perRound[round] ?? 0) + 1;
        }
        t.diagnostic(`${kills.length} kills; results ${reports.map((r) => r.result).join(',')}; failures per round ${perRound.join(',')}; late ${JSON.stringify(late.slice(0, 5))}; load ${JSON.stringify({ ...summary, latencyMs: undefined, workers: Object.keys(summary.workers).length })}`);
        assert.ok(kills.length >= ROUNDS - 2, `the rounds ran: ${kills.length}`);
        assert.ok(reports.every((r) => r.result === 'ok' || r.result === 'rolled_back'), reports.map((r) => `${r.result}: ${r.reason ?? ''}`).join('; '));
        assert.equal(late.length, 0, `every failure came within 1 s of a kill: ${JSON.stringify(late.slice(0, 10))}`);
        assert.ok(perRound.every((n) => n <= CONCURRENCY), `each round failed at most the requests in flight (${CONCURRENCY}): ${perRound.join(',')}`);
        assert.equal(summary.timeouts, 0, 'nothing hung');
        assert.ok(summary.ok > 1_000, `load kept being served: ${summary.ok}`);
      }, { migrateReq });
    });
  }
});
