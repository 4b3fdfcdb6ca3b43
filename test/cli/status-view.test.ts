// `handover status` as a person reads it: one aligned table of generations
// and workers, CPU and RSS when the master measures them, the last reloads,
// and colours only when asked for.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RELOADS_SHOWN, renderStatus } from '../../src/cli/status-view.js';
import { table, wantColour } from '../../src/cli/style.js';
import type { MasterStatus, ReloadReport, WorkerStatus } from '../../src/protocol/control.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const ANSI = /\x1b\[/;

function report(id: number, extra: Partial<ReloadReport> = {}): ReloadReport {
  return {
    id, trigger: 'control', result: 'ok', generation: id + 1, previous: id, strategy: 'migrate',
    startedAt: new Date(NOW - (100 - id) * 1000).toISOString(), durationMs: 171.4, settleMs: 1000, queuedAtCutover: 12, migrated: 12, dropped: 0, drops: {},
    listeners: [], warnings: [], drain: { drained: 16, killed: 0, durationMs: 5004 }, ...extra,
  };
}

function worker(index: number, extra: Partial<WorkerStatus> = {}): WorkerStatus {
  return { index, pid: 4000 + index, state: 'serving', uptimeMs: 125_000, restarts: 0, ...extra };
}

function status(workers: WorkerStatus[], reloads: ReloadReport[] = []): MasterStatus {
  return {
    pid: 1234, config: '/srv/app/handover.yaml', uptimeMs: 3_600_000, state: 'running', generation: 3, strategy: 'migrate',
    reloading: false, listen: ['127.0.0.1:8080'],
    generations: [
      { generation: 3, state: 'active', workers },
      { generation: 2, state: 'draining', workers: [worker(0, { pid: 3999, state: 'draining' }), worker(1, { pid: null, state: 'exited (drained)', uptimeMs: 0 })] },
    ],
    reloads,
  };
}

describe('status table', () => {
  it('aligns one row per worker under its generation, without CPU and RSS columns when not measured', () => {
    const lines = renderStatus(status([worker(0), worker(1, { restarts: 2 })]), { colour: false, now: NOW });
    assert.match(lines[0] ?? '', /^handover master pid 1234, running, up 1h00m$/);
    const header = lines.findIndex((l) => l.startsWith('GENERATION'));
    assert.deepEqual(lines[header]?.split(/\s{2,}/), ['GENERATION', 'WORKER', 'PID', 'STATE', 'UPTIME', 'RESTARTS']);
    const rows = lines.slice(header + 1, header + 5);
    assert.deepEqual(rows.map((r) => r.split(/\s{2,}/).filter(Boolean)), [
      ['3 active', '0', '4000', 'serving', '2m05s', '0'],
      ['1', '4001', 'serving', '2m05s', '2'],
      ['2 draining', '0', '3999', 'draining', '2m05s', '0'],
      ['1', '-', 'exited (drained)', '-', '0'],
    ]);
    // Every column starts at the same offset in every row.
    const at = (line: string, text: string): number => line.indexOf(text);
    assert.equal(at(rows[0] ?? '', '4000'), at(rows[3] ?? '', '-'));
    assert.equal(at(rows[0] ?? '', 'serving'), at(rows[3] ?? '', 'exited'));
    assert.ok(!lines.some((l) => ANSI.test(l)), 'no colour codes');
  });

  it('shows CPU and RSS when the master reports them', () => {
    const lines = renderStatus(status([worker(0, { cpuSeconds: 1.234, rssBytes: 52_428_800 }), worker(1)]), { colour: false, now: NOW });
    const header = lines.find((l) => l.startsWith('GENERATION')) ?? '';
    assert.match(header, /RESTARTS\s+CPU\s+RSS$/);
    assert.match(lines.find((l) => l.includes('4000')) ?? '', /1\.23s\s+50 MiB$/);
    assert.match(lines.find((l) => l.includes('4001')) ?? '', /-\s+-$/);
  });

  it('lists the last reloads with migrated, dropped and drained, and why one failed', () => {
    const reloads = Array.from({ length: 14 }, (_, i) => report(i + 1));
    reloads[12] = report(13, { result: 'rolled_back', reason: 'worker 1 (pid 77) exited with code 1 before ready\nmore detail', generation: null, strategy: null });
    const draining = report(14, { dropped: 3, warnings: ['a', 'b'] });
    delete draining.drain;
    reloads[13] = draining;
    const lines = renderStatus(status([worker(0)], reloads), { colour: false, now: NOW });
    const header = lines.findIndex((l) => l.startsWith('RELOAD'));
    assert.deepEqual(lines[header]?.split(/\s{2,}/), ['RELOAD', 'WHEN', 'TRIGGER', 'RESULT', 'GENERATION', 'STRATEGY', 'TOOK', 'QUEUED', 'MIGRATED', 'DROPPED', 'DRAINED', 'NOTE']);
    const rows = lines.slice(header + 1);
    assert.equal(rows.length, RELOADS_SHOWN);
    assert.match(rows[0] ?? '', /^#5\s+1m35s ago\s+control\s+ok\s+5 -> 6\s+migrate\s+171 ms\s+12\s+12\s+0\s+16$/);
    assert.match(rows[8] ?? '', /^#13\s.*rolled back\s+13\s+-\s+\d+ ms\s+-\s+-\s+-\s+-\s+worker 1 \(pid 77\) exited with code 1 before ready$/);
    assert.match(rows[9] ?? '', /^#14\s.*\s3\s+draining\s+a \(\+1 more\)$/);
  });

  it('paints only when colour is on, and keeps the columns aligned then', () => {
    const plain = renderStatus(status([worker(0)]), { colour: false, now: NOW });
    const painted = renderStatus(status([worker(0)]), { colour: true, now: NOW });
    assert.ok(painted.some((l) => ANSI.test(l)));
    // eslint-disable-next-line no-control-regex
    assert.deepEqual(painted.map((l) => l.replace(/\x1b\[\d+m/g, '')), plain);
  });

  it('wants colour on a terminal only, and never with NO_COLOR or TERM=dumb', () => {
    assert.equal(wantColour({ isTTY: true }, {}), true);
    assert.equal(wantColour({ isTTY: false }, {}), false);
    assert.equal(wantColour({}, {}), false);
    assert.equal(wantColour({ isTTY: true }, { NO_COLOR: '1' }), false);
    assert.equal(wantColour({ isTTY: true }, { NO_COLOR: '' }), true, 'an empty NO_COLOR does not count (no-color.org)');
    assert.equal(wantColour({ isTTY: true }, { TERM: 'dumb' }), false);
  });

  it('pads by the visible text, not by escape codes', () => {
    const red = (s: string): string => `\x1b[31m${s}\x1b[39m`;
    assert.deepEqual(table([[{ text: 'a', paint: red }, 'x'], ['bbb', 'y']]), [`${red('a  ')}  x`, 'bbb  y']);
  });
});
