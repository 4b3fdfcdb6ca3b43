// The worker's request counters in a real child process with an IPC channel
// (as a worker has): what they send for responses of each status class and
// duration, an aborted request, the in-flight level, and the flush when the
// server closes; that a worker counts only when the master says it exports
// the counts; and how the master validates the message.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HTTP_DURATION_BUCKETS, parseHttpMetrics, type HttpMetricsMessage } from '../../src/protocol/http-metrics.js';
import { openEnvelope, parseWorkerMessage, ProtocolError } from '../../src/protocol/worker.js';
import { APPS, ROOT } from '../harness/master.js';
import { TestWorker } from '../harness/worker.js';

// Answers /status/N with N, /slow after 300 ms, /hang never; closes its server on a 'close' message.
const SERVER = `
const { createServer } = await import('node:http');
const { countRequests } = await import(process.argv[1]);
const server = createServer((req, res) => {
  const [, what, arg] = req.url.split('/');
  if (what === 'status') { res.statusCode = Number(arg); res.end(); }
  else if (what === 'slow') setTimeout(() => res.end('slow'), 300);
  else if (what === 'hang') {}
  else res.end('ok');
});
countRequests(server);
server.keepAliveTimeout = 100;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (m) => { if (m === 'close') { server.closeAllConnections(); server.close(); } });
process.on('disconnect', () => process.exit(0));
`;

function hit(port: number, path: string, abortAfterMs?: number): Promise<number | 'aborted'> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err) => (abortAfterMs === undefined ? reject(err) : resolve('aborted')));
    if (abortAfterMs !== undefined) setTimeout(() => req.destroy(), abortAfterMs);
    req.end();
  });
}

const total = (ms: readonly HttpMetricsMessage[], pick: (m: HttpMetricsMessage) => readonly number[]): number[] =>
  ms.reduce<number[]>((sum, m) => pick(m).map((n, i) => n + (sum[i] ?? 0)), []);

describe('worker request counters', () => {
  it('count completed responses by class and duration, not aborted ones; in flight as a level; flushed at close', { timeout: 20_000 }, async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SERVER, join(ROOT, 'dist/worker/http-metrics.js')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const messages: HttpMetricsMessage[] = [];
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.once('message', (m: { port: number }) => resolve(m.port));
        child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
      });
      child.on('message', (m: unknown) => {
        const inner = openEnvelope(m);
        if (inner === undefined) return; // the test server's own { port } message
        const parsed = parseWorkerMessage(inner);
        if (parsed.type === 'metrics') messages.push(parsed);
      });
      const statuses = await Promise.all([
        hit(port, '/'), hit(port, '/status/204'), hit(port, '/status/301'), hit(port, '/status/404'), hit(port, '/status/404'),
        hit(port, '/status/503'), hit(port, '/status/101'), hit(port, '/slow'), hit(port, '/hang', 200),
      ]);
      assert.deepEqual(statuses, [200, 204, 301, 404, 404, 503, 101, 200, 'aborted']);
      const open = hit(port, '/hang', 1_300); // in flight while the next message is sent
      await new Promise((r) => setTimeout(r, 1_200));
      const level = messages.at(-1)?.inFlight;
      await open;
      // Just after a timer tick (the one reporting the abort), one more
      // response, then the server closes: that is sent at the close, not at the next tick.
      const ticked = messages.length;
      const waitFrom = Date.now();
      while (messages.length === ticked && Date.now() - waitFrom < 2_000) await new Promise((r) => setTimeout(r, 5));
      assert.equal(await hit(port, '/'), 200);
      const before = messages.length;
      const closedAt = Date.now();
      child.send('close');
      while (messages.length === before && Date.now() - closedAt < 900) await new Promise((r) => setTimeout(r, 5));
      assert.ok(messages.length > before && Date.now() - closedAt < 400, `a message within 400 ms of the close (${Date.now() - closedAt} ms)`);
      assert.equal(level, 1, 'the hanging request was reported in flight');
      assert.deepEqual(total(messages, (m) => m.requests), [1, 4, 1, 2, 1], '1xx..5xx, the aborted ones not counted');
      const buckets = total(messages, (m) => m.buckets);
      assert.equal(buckets.reduce((a, b) => a + b, 0), 9);
      const slowBucket = HTTP_DURATION_BUCKETS.findIndex((b) => b >= 0.3);
      assert.ok(buckets.slice(slowBucket).reduce((a, b) => a + b, 0) >= 1, `the 300 ms response in a bucket of 0.3 s or more: ${buckets}`);
      const seconds = messages.reduce((s, m) => s + m.seconds, 0);
      assert.ok(seconds >= 0.3 && seconds < 5, `sum of durations ${seconds}`);
      assert.equal(messages.at(-1)?.inFlight, 0, 'nothing in flight after the close');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('a worker counts only when the master exports the counts (metrics.listen): otherwise it sends none, not even at its drain', { timeout: 30_000 }, async () => {
    const start = (countRequests: boolean) => TestWorker.start({
      app: join(APPS, 'listen-as.js'), sockets: [{ host: '127.0.0.1' }], countRequests, env: ([p]) => ({ LISTEN_FORM: 'port', PORT: String(p) }),
    });
    const [counted, quiet] = [start(true), start(false)];
    try {
      await Promise.all([counted.ready(), quiet.ready()]);
      for (const w of [counted, quiet]) for (let i = 0; i < 5; i++) assert.equal(await hit(w.port(), '/'), 200);
      // A counting worker sends what its server served when the server closes, before `drained`: no wait for the timer.
      await Promise.all([counted.drain(), quiet.drain()]);
      await Promise.all([counted.waitFor('drained'), quiet.waitFor('drained')]);
      const sent = (w: TestWorker) => w.messages.filter((m) => m.type === 'metrics') as unknown as HttpMetricsMessage[];
      assert.equal(total(sent(counted), (m) => m.requests)[1], 5, 'the counted worker reported its five 2xx');
      assert.deepEqual(sent(quiet), [], 'the other sent no counts');
    } finally {
      await Promise.all([counted.dispose(), quiet.dispose()]);
    }
  });

  it('the master refuses a malformed counters message', () => {
    const ok = { type: 'metrics', requests: [0, 2, 0, 0, 1], buckets: [1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0], seconds: 0.5, inFlight: 3 };
    assert.deepEqual(parseWorkerMessage(ok), ok);
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ ...ok, requests: [1, 2] }, /requests: expected a list of 5/],
      [{ ...ok, requests: [0, -1, 0, 0, 1] }, /requests: expected integers/],
      [{ ...ok, buckets: ok.buckets.slice(1) }, /buckets: expected a list of 14/],
      [{ ...ok, buckets: [4, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0] }, /sum differs/],
      [{ ...ok, seconds: Number.NaN }, /seconds/],
      [{ ...ok, inFlight: 1.5 }, /inFlight/],
    ];
    for (const [raw, message] of bad) {
      assert.equal(typeof parseHttpMetrics(raw), 'string');
      assert.throws(() => parseWorkerMessage(raw), (e: unknown) => e instanceof ProtocolError && message.test(e.message), JSON.stringify(raw));
    }
  });
});
