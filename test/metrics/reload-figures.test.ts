// The figures a reload exports, against the real kernel, each master in a
// network namespace of its own: connections queued on stopped old workers
// are counted as migrated (tcp_migrate_req=1) or dropped (strategy none,
// tcp_migrate_req=0) exactly, and the workers' request counters add up to
// what the load client received, across reloads and a worker SIGKILL.
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { errorCount, startLoad, type LoadSummary } from '../harness/load.js';
import { HELLO, MasterProcess, sleep, until, type Status } from '../harness/master.js';
import { needsRoot, Netns } from '../harness/netns.js';
import { sumOf, valueOf, type Family } from './prom-text.js';
import { metricsAddress, scrape } from './scrape.js';

const PORT = 8080;
const APP_URL = `http://127.0.0.1:${PORT}/`;
const METRICS_URL = 'http://127.0.0.1:9469/metrics';
/** Connections held in the stopped workers' accept queues (the issue asks for at least 50). */
const K = 60;
/** Reloads under load while the request totals are checked. */
const RELOADS = 2;

function yaml(strategy: string): string {
  return `app: ${HELLO}
workers: 2
listen:
  - address: 127.0.0.1:${PORT}
reload: { strategy: ${strategy}, drain_timeout: 3s, watch: false }
metrics: { listen: 127.0.0.1:9469 }
`;
}

interface Setup {
  readonly ns: Netns;
  readonly master: MasterProcess;
}

/**
 * A master in a namespace of its own, started by the first test of a
 * describe() that asks for it and shared by the rest; undefined without root
 * (the test is then skipped, or fails with CI set).
 */
function sharedMaster(prefix: string, strategy: string, migrateReq: 0 | 1): { get(t: TestContext): Promise<Setup> | undefined } {
  let setup: Promise<Setup> | undefined;
  let ns: Netns | undefined;
  let master: MasterProcess | undefined;
  after(async () => {
    await master?.dispose(15_000);
    await ns?.destroy();
  });
  const open = async (): Promise<Setup> => {
    ns = await Netns.create(prefix);
    await ns.sysctl('net.ipv4.tcp_migrate_req', migrateReq);
    master = MasterProcess.start({ yaml: yaml(strategy), ns });
    await master.serving();
    await metricsAddress(master);
    return { ns, master };
  };
  return {
    get: (t) => {
      if (!needsRoot(t)) return undefined;
      setup ??= open();
      return setup;
    },
  };
}

const activePids = (s: Status): number[] => s.generations.find((g) => g.generation === s.generation)!.workers.map((w) => w.pid!);
const requests = (f: ReadonlyMap<string, Family>): number => sumOf(f, 'handover_http_requests_total');
const dropped = (f: ReadonlyMap<string, Family>): number => sumOf(f, 'handover_connections_dropped_total');
const short = (s: LoadSummary): string => JSON.stringify({ ok: s.ok, requests: s.requests, errors: s.errors, workers: s.workers });

function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone
    }
  }
}

/**
 * K connections queued on the SIGSTOPped workers of the active generation, then a
 * reload: returns the scrapes before and after, the hold client's summary,
 * and the new generation's pids.
 */
async function reloadWithQueue(ns: Netns, master: MasterProcess): Promise<{ before: Map<string, Family>; after: Map<string, Family>; summary: LoadSummary; fresh: number[] }> {
  const old = activePids(await master.status());
  const before = await scrape(METRICS_URL, ns);
  signalAll(old, 'SIGSTOP');
  const hold = startLoad(ns, { url: APP_URL, mode: 'hold', connections: K, timeout: 15_000 });
  try {
    await hold.sent;
    await until(async () => ((await ns.listeners(PORT)).reduce((n, l) => n + l.recvQ, 0) === K ? true : undefined), 5_000, `${K} connections queued`);
    const queued = await scrape(METRICS_URL, ns);
    const generation = String(valueOf(queued, 'handover_generation'));
    assert.equal(sumOf(queued, 'handover_accept_queue_length', { generation }), K, 'handover_accept_queue_length shows the queue');
    const answer = await master.control({ cmd: 'reload' });
    assert.equal(answer.ok, true, JSON.stringify(answer));
    signalAll(old, 'SIGCONT');
    const summary = await hold.done;
    const fresh = activePids(await master.status());
    return { before, after: await scrape(METRICS_URL, ns), summary, fresh };
  } finally {
    signalAll(old, 'SIGCONT');
    await hold.stop();
  }
}

describe('metrics with strategy migrate, tcp_migrate_req=1', () => {
  const shared = sharedMaster('mx-mig', 'migrate', 1);

  it(`http_requests_total equals the responses the client counted, across ${RELOADS} reloads and a worker SIGKILL`, { timeout: 90_000 }, async (t) => {
    const setup = shared.get(t);
    if (!setup) return;
    const { ns, master } = await setup;
    const first = await scrape(METRICS_URL, ns);
    const start = requests(first);
    const exits = (f: ReadonlyMap<string, Family>, reason: string): number =>
      valueOf(f, 'handover_worker_exits_total', { reason })! - valueOf(first, 'handover_worker_exits_total', { reason })!;

    // Phase 1: reloads under keep-alive load; no scrape is below the one before.
    let seen = start;
    const load = startLoad(ns, { url: APP_URL, mode: 'keepalive', concurrency: 16, duration: 60_000, timeout: 5_000 });
    let phase1: LoadSummary;
    try {
      await sleep(300);
      for (let i = 0; i < RELOADS; i++) {
        const answer = await master.control({ cmd: 'reload' });
        assert.equal(answer.ok, true, JSON.stringify(answer));
        await sleep(300);
        const now = requests(await scrape(METRICS_URL, ns));
        assert.ok(now >= seen, `the total never goes backwards: ${now} after ${seen}`);
        seen = now;
      }
    } finally {
      phase1 = await load.stop();
    }
    t.diagnostic(`phase 1 load ${short(phase1)}`);
    assert.equal(errorCount(phase1), 0, short(phase1));
    // The load has stopped, so nothing is in flight: once the old generations
    // have drained (their last partial second sent as their servers closed)
    // and the live workers' next message is in, the count is exact.
    await until(async () => ((await master.status()).generations.length === 1 ? true : undefined), 10_000, 'old generations drained');
    let counted = NaN;
    await until(async () => {
      const f = await scrape(METRICS_URL, ns);
      counted = requests(f);
      return counted - start === phase1.ok && valueOf(f, 'handover_http_requests_in_flight') === 0 ? true : undefined;
    }, 5_000, 'the count', 200).catch(() => undefined);
    assert.equal(counted - start, phase1.ok, `every response of the drained generations was counted, none twice (counted ${counted - start}, client ${phase1.ok})`);

    // Phase 2: SIGKILL a serving worker under load; only what it served since its last message may be missing.
    const victim = activePids(await master.status())[0]!;
    const load2 = startLoad(ns, { url: APP_URL, mode: 'keepalive', concurrency: 16, duration: 60_000, timeout: 5_000 });
    const t0 = Date.now();
    let phase2: LoadSummary;
    let servedMs = 0;
    try {
      await sleep(2_000);
      process.kill(victim, 'SIGKILL');
      servedMs = Date.now() - t0;
      await sleep(300);
    } finally {
      phase2 = await load2.stop();
    }
    const victimRate = (phase2.workers[String(victim)] ?? 0) / (servedMs / 1000);
    // One send interval (1 s) is unsent at most; half as much again for timer slack on a busy machine.
    const allowance = Math.ceil(victimRate * 1.5);
    let lost = NaN;
    let final: Map<string, Family> | undefined;
    await until(async () => {
      final = await scrape(METRICS_URL, ns);
      lost = phase2.ok - (requests(final) - counted);
      return exits(final, 'crashed') === 1 && lost <= allowance && valueOf(final, 'handover_http_requests_in_flight') === 0 ? true : undefined;
    }, 5_000, 'the kill and the totals', 200).catch(() => undefined);
    t.diagnostic(`phase 2 load ${short(phase2)}; victim ${victim} killed after ${servedMs} ms; missing ${lost} (allowance ${allowance}, ${victimRate.toFixed(0)} req/s)`);
    assert.ok(lost >= 0, `never more than the client received: ${lost}`);
    assert.ok(lost <= allowance, `at most the killed worker's last second is missing: ${lost} > ${allowance}`);
    // Nobody in handover sent it: an outside SIGKILL (an operator, the OOM killer) is a crash; `killed` is the master's own.
    assert.equal(exits(final!, 'crashed'), 1, 'the outside SIGKILL counted as crashed');
    assert.equal(exits(final!, 'killed'), 0, 'the master killed nobody');
    assert.equal(exits(final!, 'drained'), RELOADS * 2, 'every old worker counted as drained');
  });

  it(`${K} queued connections all answered by the new generation: migrated_total +${K}, dropped unchanged`, { timeout: 60_000 }, async (t) => {
    const setup = shared.get(t);
    if (!setup) return;
    const { ns, master } = await setup;
    const { before, after: afterReload, summary, fresh } = await reloadWithQueue(ns, master);
    t.diagnostic(`hold ${short(summary)}`);
    assert.equal(summary.ok, K, `every held client got a 200: ${short(summary)}`);
    assert.ok(Object.keys(summary.workers).every((pid) => fresh.includes(Number(pid))), `answered by new pids ${fresh} only: ${short(summary)}`);
    const migrated = valueOf(afterReload, 'handover_connections_migrated_total')! - valueOf(before, 'handover_connections_migrated_total')!;
    assert.equal(migrated, K, 'handover_connections_migrated_total rose by K');
    assert.equal(dropped(afterReload), dropped(before), 'handover_connections_dropped_total did not move');
    const rise = (name: string, labels: Record<string, string> = {}): number => valueOf(afterReload, name, labels)! - valueOf(before, name, labels)!;
    assert.equal(rise('handover_reloads_total', { trigger: 'control', result: 'ok' }), 1);
    assert.equal(rise('handover_reload_duration_seconds_count'), 1);
    assert.equal(rise('handover_generation'), 1);
    // The old generation drains (its workers were stopped, now continued) and its series go.
    const drainedBefore = valueOf(before, 'handover_worker_exits_total', { reason: 'drained' })!;
    const drained = await until(async () => {
      const f = await scrape(METRICS_URL, ns);
      return valueOf(f, 'handover_worker_exits_total', { reason: 'drained' }) === drainedBefore + 2 ? f : undefined;
    }, 10_000, 'both old workers counted as drained', 200);
    const old = String(valueOf(before, 'handover_generation'));
    assert.ok(!drained.get('handover_accept_queue_length')!.samples.some((s) => s.labels['generation'] === old), `generation ${old}'s queue series are gone`);
    assert.equal(dropped(drained), dropped(before), 'nothing dropped by the drain either');
  });
});

describe('metrics with strategy none, tcp_migrate_req=0', () => {
  const shared = sharedMaster('mx-drop', 'none', 0);

  it(`${K} queued connections reset: dropped_total{closed_without_migration} +${K}`, { timeout: 60_000 }, async (t) => {
    const setup = shared.get(t);
    if (!setup) return;
    const { ns, master } = await setup;
    const { before, after: afterReload, summary } = await reloadWithQueue(ns, master);
    t.diagnostic(`hold ${short(summary)}`);
    assert.equal(errorCount(summary), K, `every held client failed: ${short(summary)}`);
    assert.equal(summary.ok, 0);
    const reason = { reason: 'closed_without_migration' };
    assert.equal(valueOf(afterReload, 'handover_connections_dropped_total', reason)! - valueOf(before, 'handover_connections_dropped_total', reason)!, K);
    assert.equal(dropped(afterReload) - dropped(before), K, 'no other reason moved');
    assert.equal(valueOf(afterReload, 'handover_connections_migrated_total'), valueOf(before, 'handover_connections_migrated_total'));
  });
});

// Leave nothing behind even when a test failed half-way.
before(() => Netns.reapStale());
after(() => Netns.reapStale());
