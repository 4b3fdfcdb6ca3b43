// Fault catalogue: slow and hostile clients while the old generation drains.
// One worker (so every client lands on it), drain_timeout 2 s, a reload
// while a slowloris, a client that never reads, pipelined requests, a
// streaming response and a WebSocket are open: each must be finished or
// ended within drain_timeout, and the old worker gone soon after.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { alivePids, APPS, MasterProcess, until } from '../harness/master.js';
import { needsRoot, Netns } from '../harness/netns.js';

const PORT = 8080;
const DRAIN_MS = 2_000;
/** The master kills a worker still running this long after its drain deadline (reload.ts KILL_GRACE_MS). */
const KILL_GRACE_MS = 2_000;
/** Scheduling slack on a busy 2-core machine. */
const SLACK_MS = 1_500;
const CLIENTS = fileURLToPath(new URL('./hostile-clients.mjs', import.meta.url));
const CONFIG = `app: ${APPS}/hostile.js\nworkers: 1\nlisten: [{ address: 127.0.0.1:${PORT} }]\nreload: { watch: false, settle: 0s, drain_timeout: ${DRAIN_MS / 1000}s }\n`;

/** JSON lines of a child's stdout, awaited by predicate (a second readline would pause the first). */
function jsonLines(child: ChildProcess): (pred: (o: Record<string, unknown>) => boolean, timeoutMs: number) => Promise<Record<string, unknown>> {
  const seen: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let buffered = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      try {
        seen.push(JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>);
      } catch {
        /* not JSON */
      }
      buffered = buffered.slice(nl + 1);
    }
    for (const w of waiters) w();
  });
  return (pred, timeoutMs) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching line within ${timeoutMs} ms: ${JSON.stringify(seen)}`));
      }, timeoutMs);
      const check = (): void => {
        const hit = seen.find(pred);
        if (!hit) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(hit);
      };
      waiters.add(check);
      check();
    });
}

interface Ended {
  outcome: string;
  bytes: number;
  text: string;
  endedAt: number;
}

describe('fault catalogue: slow and hostile clients during drain', () => {
  it('slowloris, a client that never reads, pipelined requests, a long stream and a WebSocket all end within drain_timeout', { timeout: 60_000 }, async (t) => {
    if (!needsRoot(t)) return;
    const ns = await Netns.create('f-drain');
    let master: MasterProcess | undefined;
    try {
      master = MasterProcess.start({ yaml: CONFIG, ns });
      const [oldPid] = await master.serving();
      const clients = ns.spawn(process.execPath, [CLIENTS, String(PORT), String(DRAIN_MS + SLACK_MS)], { stdio: ['ignore', 'pipe', 'pipe'] });
      const next = jsonLines(clients);
      const finalLine = next((o) => 'results' in o, 40_000) as Promise<{ results: Record<string, Ended> & { neverReadsResumedAt: number } }>;
      await next((o) => o['event'] === 'ready', 10_000);

      const answer = await master.control({ cmd: 'reload' });
      const report = answer.result as { result: string; durationMs: number; settleMs?: number; startedAt: string };
      assert.equal(report.result, 'ok', JSON.stringify(answer));
      // durationMs leaves the settle out (settle is 0 here, but the report may carry it).
      const cutover = Date.parse(report.startedAt) + report.durationMs + (report.settleMs ?? 0);
      const { results } = await finalLine;
      t.diagnostic(`cutover at +0; ended at ${Object.entries(results).map(([k, v]) => `${k} +${Math.round(typeof v === 'object' ? v.endedAt - cutover : v - cutover)} ms`).join(', ')}`);
      const byDeadline = cutover + DRAIN_MS + SLACK_MS;

      // Finished in time: the stream completes, the pipelined connection gets
      // its answer with Connection: close, the WebSocket its close frame (1001).
      const { stream, pipelined, websocket, slowloris, neverReads } = results;
      assert.ok(stream && pipelined && websocket && slowloris && neverReads, JSON.stringify(results));
      assert.match(stream.text, /^HTTP\/1\.1 200 OK/);
      assert.match(stream.text, /done\n\r\n0\r\n\r\n$/, 'the streaming response finished (last chunk)');
      assert.match(pipelined.text, /^HTTP\/1\.1 200 OK\r\n[^]*connection: close\r\n/i, 'the pipelined request in flight is answered, with Connection: close');
      const answered = pipelined.text.match(/HTTP\/1\.1 200/g)?.length ?? 0;
      t.diagnostic(`pipelined: ${answered} of 3 answered before the connection closed (${pipelined.outcome})`);
      assert.equal(pipelined.outcome, 'end', 'closed with a FIN, not reset');
      assert.ok(websocket.text.startsWith('HTTP/1.1 101 Switching Protocols'));
      assert.ok(websocket.text.includes('\x88\x02\x03\xe9'), 'the app sent a close frame (1001) when the drain began');
      for (const [name, r] of Object.entries({ stream, pipelined, websocket, slowloris })) {
        assert.ok(r.endedAt <= byDeadline, `${name} ended ${r.endedAt - cutover} ms after the cutover (drain_timeout ${DRAIN_MS} ms)`);
      }
      assert.ok(websocket.endedAt <= cutover + SLACK_MS, `the WebSocket closed at the drain's start, ${websocket.endedAt - cutover} ms after the cutover`);

      // Ended at the deadline: the slowloris is cut; the client that never
      // read finds, once it reads, a truncated response.
      assert.ok(slowloris.endedAt >= cutover + DRAIN_MS - 500, `the slowloris was kept until the deadline (${slowloris.endedAt - cutover} ms)`);
      assert.ok(neverReads.bytes < 256 * 1024 * 1024, `the never-reading client got ${neverReads.bytes} bytes: cut short`);
      assert.ok(neverReads.endedAt - results.neverReadsResumedAt < SLACK_MS, 'its connection was already over when it read');

      // The old worker is gone soon after, and counted its victims.
      await until(() => (alivePids([oldPid as number]).length === 0 ? true : undefined), Math.max(0, cutover + DRAIN_MS + KILL_GRACE_MS + SLACK_MS - Date.now()), 'the old worker to exit');
      const drained = await master.waitForLog((l) => typeof l.msg === 'string' && /^generation 1 drained/.test(l.msg), 10_000);
      const figures = drained['drain'] as { drained: number; killed: number };
      t.diagnostic(`drain: ${JSON.stringify(figures)}`);
      assert.ok(figures.killed >= 2, 'the slowloris and the non-reader were cut at the deadline');
    } finally {
      await master?.dispose();
      await ns.destroy();
    }
  });
});

before(() => Netns.reapStale());
after(() => Netns.reapStale());
