// The metrics endpoint of a real master (no root: this namespace, port 0):
// every metric is there with its type and label names, the text parses,
// promtool finds nothing wrong with handover's series, the health paths
// answer, the endpoint refuses what it does not serve, and `status` shows
// each worker's CPU and memory.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HELLO, MasterProcess, ROOT, until } from '../harness/master.js';
import { parsePrometheusText, sumOf, valueOf } from './prom-text.js';
import { EXPECTED, findPromtool, get, metricsAddress, promtoolComplaints, scrape } from './scrape.js';

/** prom-client's own gauges named *_total: promtool's only allowed complaints. */
const ALLOWED_COMPLAINTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

const dir = mkdtempSync(join(tmpdir(), 'handover-metrics-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function selfSigned(): { cert: string; key: string } {
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.2', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

/** The exposition of the test above, for promtool. */
let lastText: string | undefined;

describe('metrics exposition', () => {
  it('the parser refuses what a scraper would refuse', () => {
    const bad: [string, RegExp][] = [
      ['x 1\n', /no # TYPE/],
      ['# TYPE x gauge\nx{a="1} 1\n', /unterminated/],
      ['# TYPE x gauge\nx{a=1} 1\n', /expected ="/],
      ['# TYPE x gauge\nx one\n', /not a number/],
      ['# TYPE x gauge\nx 1\nx 2\n', /appears twice/],
      ['# TYPE x gauge\nx 1', /end with a newline/],
      ['# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', /not cumulative/],
      ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /no \+Inf/],
    ];
    for (const [text, message] of bad) assert.throws(() => parsePrometheusText(text), message, JSON.stringify(text));
    const ok = parsePrometheusText('# HELP x_total a \\\\ b\n# TYPE x_total counter\nx_total{a="q\\"\\n",b="2"} 3 1700000000000\n\n# TYPE y gauge\ny -Inf\n');
    assert.equal(ok.get('x_total')?.help, 'a \\ b');
    assert.deepEqual(ok.get('x_total')?.samples, [{ name: 'x_total', labels: { a: 'q"\n', b: '2' }, value: 3 }]);
    assert.equal(valueOf(ok, 'y'), -Infinity);
  });

  it('every metric with its type and labels, parsed; health paths answer; status shows CPU and RSS', { timeout: 60_000 }, async () => {
    const tls = selfSigned();
    const master = MasterProcess.start({
      yaml: `app: ${HELLO}\nworkers: 2\nlisten:\n  - address: 127.0.0.1:0\n  - address: 127.0.0.2:0\n    tls: { cert: ${tls.cert}, key: ${tls.key} }\nreload: { watch: false }\nmetrics: { listen: 127.0.0.1:0 }\n`,
    });
    try {
      const address = await metricsAddress(master);
      await master.serving();
      const base = `http://${address}`;
      const status = await master.status();
      const plain = status.listen[0]!;
      const secure = status.listen[1]!;
      for (let i = 0; i < 5; i++) assert.equal((await get(`http://${plain}/`)).status, 200);
      // Workers send their counters about once a second.
      const families = await until(async () => {
        const f = await scrape(`${base}/metrics`);
        return valueOf(f, 'handover_http_requests_total', { code: '2xx' }) === 5 ? f : undefined;
      }, 5_000, 'the 5 requests counted in handover_http_requests_total', 100);
      lastText = (await get(`${base}/metrics`)).body;

      for (const [name, want] of Object.entries(EXPECTED)) {
        const f = families.get(name);
        assert.ok(f, `${name} is exported`);
        assert.equal(f.type, want.type, `${name} is a ${want.type}`);
        assert.ok(f.help.length > 0, `${name} has a HELP line`);
        assert.ok(f.samples.length > 0, `${name} has samples`);
        for (const s of f.samples) {
          const names: string[] = Object.keys(s.labels).filter((l) => !(want.type === 'histogram' && l === 'le')).sort();
          assert.deepEqual(names, [...want.labels].sort(), `${s.name} labels ${JSON.stringify(s.labels)}`);
        }
      }
      const unexpected = [...families.keys()].filter((n) => n.startsWith('handover_') && !(n in EXPECTED));
      assert.deepEqual(unexpected, [], 'every handover_* metric is in the test\'s list');
      const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
      const undocumented = Object.keys(EXPECTED).filter((n) => n.startsWith('handover_') && !readme.includes(`\`${n}`));
      assert.deepEqual(undocumented, [], 'the README lists every handover_* metric');

      // Values that follow from the setup.
      assert.equal(valueOf(families, 'handover_generation'), 1);
      assert.equal(valueOf(families, 'handover_workers', { state: 'serving' }), 2);
      assert.equal(sumOf(families, 'handover_workers'), 2);
      for (const a of [plain, secure]) {
        assert.equal(valueOf(families, 'handover_accept_queue_length', { address: a, generation: '1' }), 0, a);
        assert.equal(valueOf(families, 'handover_accept_queue_backlog', { address: a }), 511, a);
        assert.equal(valueOf(families, 'handover_listen_drops_total', { address: a }), 0, a);
      }
      const notAfter = new Date(new X509Certificate(readFileSync(tls.cert)).validTo).getTime() / 1000;
      assert.equal(valueOf(families, 'handover_tls_certificate_not_after_timestamp_seconds', { address: secure }), notAfter);
      assert.equal(valueOf(families, 'handover_tls_certificate_not_after_timestamp_seconds', { address: plain }), undefined);
      assert.equal(valueOf(families, 'handover_http_request_duration_seconds_count'), 5);
      assert.equal(valueOf(families, 'handover_generation_http_requests_total', { generation: '1', code: '2xx' }), 5);
      for (const w of ['0', '1']) {
        assert.ok(valueOf(families, 'handover_worker_resident_memory_bytes', { worker: w })! > 10e6, `worker ${w} RSS`);
        assert.ok(valueOf(families, 'handover_worker_cpu_seconds_total', { worker: w })! > 0, `worker ${w} CPU`);
      }
      assert.ok(valueOf(families, 'handover_kernel_tcpext_total', { counter: 'ListenOverflows' }) !== undefined);
      assert.equal(valueOf(families, 'handover_reloads_total', { trigger: 'signal', result: 'ok' }), 0);

      // Health and the endpoint's bounds.
      assert.deepEqual([(await get(`${base}/healthz`)).status, (await get(`${base}/readyz`)).status], [200, 200]);
      const post = await get(`${base}/metrics`, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(post.headers['allow'], 'GET, HEAD');
      assert.equal((await get(`${base}/metrics`, { body: 'x'.repeat(10) })).status, 400, 'a GET with a body is refused');
      assert.equal((await get(`${base}/elsewhere`)).status, 404);
      const head = await get(`${base}/metrics`, { method: 'HEAD' });
      assert.deepEqual([head.status, head.body], [200, '']);

      // `handover status` carries each live worker's CPU and memory.
      const workers = (await master.control({ cmd: 'status' })).result as { generations: { workers: { cpuSeconds?: number; rssBytes?: number }[] }[] };
      for (const w of workers.generations[0]!.workers) {
        assert.ok(typeof w.cpuSeconds === 'number' && w.cpuSeconds > 0, JSON.stringify(w));
        assert.ok(typeof w.rssBytes === 'number' && w.rssBytes > 10e6, JSON.stringify(w));
      }
    } finally {
      await master.dispose();
    }
  });

  it('one app server on two addresses (a wildcard listen): each request counted once', { timeout: 30_000 }, async () => {
    const port = await new Promise<number>((resolve, reject) => {
      const probe = createNetServer().once('error', reject).listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const app = join(dir, 'wildcard.mjs');
    writeFileSync(app, `import { createServer } from 'node:http';\ncreateServer((req, res) => res.end('ok')).listen(${port});\n`);
    const master = MasterProcess.start({
      yaml: `app: ${app}\nworkers: 1\nlisten:\n  - address: 127.0.0.1:${port}\n  - address: 127.0.0.2:${port}\nreload: { watch: false }\nmetrics: { listen: 127.0.0.1:0 }\n`,
    });
    try {
      const address = await metricsAddress(master);
      await master.serving();
      for (let i = 0; i < 6; i++) assert.equal((await get(`http://127.0.0.1:${port}/`)).status, 200);
      for (let i = 0; i < 4; i++) assert.equal((await get(`http://127.0.0.2:${port}/`)).status, 200);
      const families = await until(async () => {
        const f = await scrape(`http://${address}/metrics`);
        return (valueOf(f, 'handover_http_requests_total', { code: '2xx' }) ?? 0) >= 10 ? f : undefined;
      }, 5_000, 'the 10 requests counted', 100);
      // Counted twice (20) before: the server was given to the counters once per address.
      await new Promise((r) => setTimeout(r, 1_500)); // one more flush: nothing further arrives
      assert.equal(valueOf(await scrape(`http://${address}/metrics`), 'handover_http_requests_total', { code: '2xx' }), 10);
      assert.equal(valueOf(families, 'handover_http_request_duration_seconds_count'), 10);
    } finally {
      await master.dispose();
    }
  });

  it('promtool check metrics: nothing about handover_* (prom-client\'s nodejs_*_total gauges are the only complaints allowed)', (t) => {
    const promtool = findPromtool();
    if (!promtool) {
      const reason = 'promtool not found ($PROMTOOL, PATH, .cache/prometheus/usr/bin): .ci/run unpacks it from Debian\'s prometheus package';
      if (process.env['CI']) assert.fail(reason);
      t.skip(reason);
      return;
    }
    assert.ok(lastText, 'the exposition test ran first');
    const complaints = promtoolComplaints(promtool, lastText);
    const ours = complaints.filter((c) => !ALLOWED_COMPLAINTS.some((name) => c.startsWith(`${name} `)));
    assert.deepEqual(ours, [], `promtool check metrics: ${complaints.join(' | ')}`);
    assert.ok(complaints.every((c) => !c.includes('handover_')));
  });

  it('the Grafana dashboard queries only metrics that exist, and promtool parses every query', (t) => {
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'examples/grafana/handover.json'), 'utf8')) as {
      panels: { title: string; targets?: { expr: string }[] }[];
      annotations: { list: { expr?: string }[] };
    };
    const exprs = [...dashboard.panels.flatMap((p) => p.targets ?? []).map((x) => x.expr), ...dashboard.annotations.list.flatMap((a) => (a.expr ? [a.expr] : []))];
    assert.ok(exprs.length >= 20, `${exprs.length} queries`);
    const exported = new Set(Object.keys(EXPECTED).flatMap((n) => (EXPECTED[n]!.type === 'histogram' ? [n, `${n}_bucket`, `${n}_sum`, `${n}_count`] : [n])));
    exported.add('nodejs_eventloop_lag_p99_seconds');
    const unknown = exprs.flatMap((e) => e.match(/\b(handover|process|nodejs)_[a-z0-9_]+\b/g) ?? []).filter((n) => !exported.has(n));
    assert.deepEqual([...new Set(unknown)], [], 'every metric the dashboard uses is exported');
    for (const title of ['Reloads by result', 'Migrated, drained and dropped', 'Accept queues per generation', 'Request rate per generation', 'Latency per generation']) {
      assert.ok(dashboard.panels.some((p) => p.title === title), `a panel "${title}"`);
    }
    const promtool = findPromtool();
    if (!promtool) {
      if (process.env['CI']) assert.fail('promtool not found');
      t.skip('promtool not found: the queries are not parsed');
      return;
    }
    // Grafana's variables replaced by what they stand for, each query a recording rule.
    const rules = exprs.map((e, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(e.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '1h').replaceAll('$instance', '.*'))}\n`);
    const file = join(dir, 'dashboard-rules.yml');
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('')}`);
    const r = spawnSync(promtool, ['check', 'rules', file], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, `promtool check rules: ${r.stdout} ${r.stderr}`);
  });
});
