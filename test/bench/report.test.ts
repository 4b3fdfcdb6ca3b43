// The bench's own parsing and drawing (bench/ is not run by npm test; these
// are the parts that must not silently go wrong): wrk's result line, /proc
// stat, percentiles and spreads, the reload report, the checks, the README
// section, the SVG.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseReport } from '../../bench/contenders/handover.ts';
import { parseStat } from '../../bench/lib/procfs.ts';
import type { Results, SeriesRun } from '../../bench/lib/results.ts';
import { percentile, ratio, spread, summarize } from '../../bench/lib/stats.ts';
import { BUCKET_MS, parseWrk, wrkArgv } from '../../bench/lib/wrk.ts';
import { checks } from '../../bench/report/checks.ts';
import { replaceSection } from '../../bench/report/readme.ts';
import { seriesSvg } from '../../bench/report/svg.ts';

const WRK_OUT = `Running 3s test @ http://127.0.0.1:8101/
  1 threads and 64 connections
BENCH-JSON {"requests":30000,"duration_us":3000000,"errors":{"connect":1,"read":2,"write":0,"status":3,"timeout":0},"latency_us":{"mean":1500.5,"p50":1200,"p90":2500,"p99":9000,"p999":20000,"max":31000},"timeline":[[6800000001,100,0],[6800000000,50,1],[6800000001,20,2]]}
Requests/sec:  10000.00
`;

function series(rps: number, failed: number): SeriesRun {
  const t0 = 1_700_000_000_000;
  return {
    repeat: 0, calmRps: rps * 2, calmCpuMs: 1000, calmSeconds: 10, rps, seconds: 30, requests: rps * 30,
    errors: { connect: 0, read: failed, write: 0, status: 0, timeout: 0 }, reloads: 2, reloadsFailed: 0,
    cpu: { totalMs: 20_000, masterMs: 300, commandMs: 500, startupMs: 800, workersStarted: 4, calmCpuPerRequestMs: 0.02 },
    marks: [{ at: t0 + 1000, end: t0 + 1400, ok: true }, { at: t0 + 2000, end: t0 + 2500, ok: false }],
    timeline: [[t0, 100, 0], [t0 + BUCKET_MS, 2000, 0], [t0 + 2 * BUCKET_MS, 1500, 0], [t0 + 3 * BUCKET_MS, 10, 0]],
    kinds: {
      startedAt: t0, elapsedMs: 3000, bucketMs: 250, kinds: ['reset', 'refused', 'eof', 'timeout', 'non2xx', 'other'], reloads: 1,
      marks: [{ at: t0 + 1000, end: t0 + 1200, ok: true }],
      modes: {
        keepalive: { ok: 10, failed: { reset: failed, refused: 0, eof: 0, timeout: 0, non2xx: 0, other: 0 }, timeline: [[t0 + 1000, 5, failed, 0, 0, 0, 0, 0]] },
        newconn: { ok: 10, failed: { reset: 0, refused: 0, eof: 0, timeout: 0, non2xx: 0, other: 0 }, timeline: [] },
      },
    },
  };
}

function results(): Results {
  const run = (rps: number) => ({ repeat: 0, rps, latency: { mean: 1, p50: 1, p90: 2, p99: 3, p999: 4, max: 5 }, errors: { connect: 0, read: 0, write: 0, status: 0, timeout: 0 }, serverCpuMsPerS: 900 });
  return {
    meta: {
      date: 'd', machine: 'm', kernel: 'k', node: 'v20', cpus: 2, pinning: 'p', wrk: 'wrk', pm2: '7', tcpMigrateReq: '1', quick: false, repeats: 1,
      workers: 2, connections: 64, durations: { seriesS: 3 }, loadAverage: { start: 0.1 },
      labels: { 'handover-migrate': 'handover <migrate>', 'cluster-rr': 'cluster rr', pm2: 'pm2' }, reloadHow: {},
    },
    throughput: { keepalive: { 'handover-migrate': [run(120)], 'cluster-rr': [run(100)], pm2: [run(100)] }, newconn: {} },
    reloadSeries: { 'handover-migrate': [series(1000, 0)], pm2: [series(800, 7)] },
    checks: [],
    errors: [],
    notes: [],
  };
}

describe('bench parsing and reports', () => {
  it('parses wrk\'s result line and merges the threads\' buckets', () => {
    const w = parseWrk(WRK_OUT);
    assert.equal(w.requests, 30000);
    assert.equal(w.rps, 10000);
    assert.deepEqual(w.errors, { connect: 1, read: 2, write: 0, status: 3, timeout: 0 });
    assert.equal(w.latency.p99, 9);
    assert.deepEqual(w.timeline, [[6800000000 * BUCKET_MS, 50, 1], [6800000001 * BUCKET_MS, 120, 2]]);
    assert.throws(() => parseWrk('Requests/sec: 1\n'), /no result line/);
  });

  it('asks wrk for a new connection per request with Connection: close', () => {
    const argv = wrkArgv({ url: 'http://127.0.0.1:1/', threads: 1, connections: 8, seconds: 2, newConnection: true, script: 's.lua', timeoutSeconds: 2 });
    assert.deepEqual(argv.slice(0, 7), ['-t1', '-c8', '-d2s', '--timeout', '2s', '-H', 'Connection: close']);
  });

  it('reads CPU times from /proc stat even when the command has spaces and parentheses', () => {
    const fields = ['S', '41', ...Array(9).fill('0'), '150', '50', '30', '20', ...Array(10).fill('0')];
    const cpu = parseStat(`1234 (node (worker) x) ${fields.join(' ')}`);
    assert.equal(cpu.ppid, 41);
    assert.ok(cpu.selfMs > 0 && cpu.childrenMs > 0);
    assert.equal(cpu.selfMs / cpu.childrenMs, 200 / 50);
  });

  it('computes percentiles, spreads and ratios of medians', () => {
    assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
    assert.equal(summarize([5, 1, 3]).p50, 3);
    assert.deepEqual(spread([3, Number.NaN, 1, 2]), { median: 2, min: 1, max: 3, values: [3, 1, 2] });
    const r = ratio([110, 90], [100, 100]);
    assert.equal(r.median, 1);
    assert.equal(r.min, 0.9);
  });

  it('reads the reload report out of the CLI\'s --json output', () => {
    const report = parseReport('{\n  "result": "ok",\n  "durationMs": 120,\n  "settleMs": 1000\n}\n\n');
    assert.equal(report.durationMs, 120);
    assert.equal(report.settleMs, 1000);
    assert.throws(() => parseReport('{"ok": true}'), /not a reload report/);
  });

  it('judges the issue\'s targets from the figures', () => {
    const c = checks(results());
    const find = (what: string) => c.find((x) => x.what.includes(what));
    assert.equal(find('keep-alive: handover <migrate> ÷ cluster rr')?.met, true); // 1.2 ≥ 1.1
    assert.equal(find('handover <migrate> failed requests')?.met, true);
    assert.equal(find('reload series: handover <migrate> ÷ pm2')?.met, true); // 1000 / 800
    assert.equal(find('pm2 failed requests')?.value, '14'); // wrk 7 + client 7
  });

  it('compares throughput round by round, not by the medians of runs minutes apart', () => {
    const r = results();
    const run = (repeat: number, rps: number) => ({ ...r.throughput.keepalive['pm2']![0]!, repeat, rps });
    // Round 2 of handover ran while a neighbour took the CPU: the medians (50 vs 102) say 0.49, the rounds 0.98.
    const keepalive = { 'handover-migrate': [run(0, 50), run(1, 100), run(2, 50), run(3, 80)], reuseport: [run(0, 51), run(1, 102), run(2, 102)] };
    const c = checks({ ...r, meta: { ...r.meta, labels: { ...r.meta.labels, reuseport: 'bare' } }, throughput: { keepalive, newconn: {} } });
    const bare = c.find((x) => x.what.includes('keep-alive: handover <migrate> ÷ bare'));
    assert.equal(bare?.value, '0.98× [0.49×–0.98×]'); // round 3, which bare lacks, left out
    assert.equal(bare?.met, true);
  });

  it('holds the throughput targets head to head where the run has the pair, run after run elsewhere', () => {
    const r = results();
    const pair = (b: string, values: number[]) => ({ a: 'handover-migrate', b, mode: 'keepalive' as const, ratio: spread(values), rps: { a: [100], b: [100] }, cpuShare: spread([1]), errors: 0 });
    const c = checks({ ...r, pairs: [pair('handover-migrate', [0.99, 1.01, 1.0]), pair('cluster-rr', [1.05, 1.08, 1.02])] });
    const find = (what: string) => c.find((x) => x.what.includes(what));
    // Head to head, rr reads 1.05 (< 1.1: not met) where run after run said 1.2 (met): the pair decides.
    assert.equal(find('keep-alive: handover <migrate> ÷ cluster rr, head to head')?.met, false);
    assert.equal(find('keep-alive: handover <migrate> ÷ cluster rr, head to head')?.value, '1.05× [1.02×–1.08×]');
    assert.equal(find('keep-alive: handover <migrate> ÷ cluster rr, run after run')?.met, null);
    assert.equal(find('keep-alive: handover <migrate> ÷ pm2, run after run')?.met, true); // no pair for pm2: held here
    const aa = find('keep-alive: handover <migrate> ÷ handover <migrate>, head to head');
    assert.equal(aa?.met, null);
    assert.equal(aa?.value, '1.00× [0.99×–1.01×]');
  });

  it('sets a reload\'s report against one worker\'s spawn and against a whole generation\'s', () => {
    const r = results();
    const samples = { wallMs: [400], durationMs: [260], settleMs: [0], commandCpuMs: [100], failed: 0, repeatP50: [400] };
    const duration = { configs: { 'handover-migrate settle 0s': samples }, bareWorkerMs: [130], bareWorkerCpuMs: [100], reuseportMs: [160], settleDefault: '1s' };
    const find = (c: ReturnType<typeof checks>, what: string) => c.find((x) => x.what.includes(what));
    const single = checks({ ...r, duration });
    assert.equal(find(single, 'a bare worker\'s spawn-to-ready')?.value, '2.00×');
    assert.equal(find(single, 'a bare worker\'s spawn-to-ready')?.met, false);
    assert.equal(find(single, 'spawned at once'), undefined); // results from before the generation baseline
    const both = checks({ ...r, duration: { ...duration, generationMs: [250], generationWorkers: 2 } });
    const breakdown = find(both, '2 bare workers spawned at once');
    assert.equal(breakdown?.value, '1.04×');
    assert.equal(breakdown?.met, null);
  });

  it('replaces only the README\'s bench section', () => {
    const readme = 'a\n<!-- bench:start -->\nold\n<!-- bench:end -->\nb\n';
    assert.equal(replaceSection(readme, 'new'), 'a\n<!-- bench:start -->\nnew\n<!-- bench:end -->\nb\n');
    assert.throws(() => replaceSection('no markers', 'x'), /no <!-- bench:start -->/);
  });

  it('draws one panel per contender with its rate, failures and reload marks', () => {
    const svg = seriesSvg(results());
    assert.match(svg, /^<svg [^>]*width="960"/);
    assert.ok(svg.trimEnd().endsWith('</svg>'));
    assert.match(svg, /handover &lt;migrate&gt;/);
    assert.equal(svg.match(/<polyline /g)?.length, 2);
    assert.match(svg, /fill="#d62728"\/>/); // pm2's resets, stacked
    assert.equal(svg.match(/stroke="#d62728" stroke-width="1"/g)?.length, 2); // one failed reload mark per panel
  });
});
