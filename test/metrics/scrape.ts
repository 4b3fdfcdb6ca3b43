// What the metrics tests share: the metrics a master must export (name,
// type, label names), getting a URL from this namespace or from inside a
// test's own, and finding promtool.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { request } from 'node:http';
import { delimiter, join } from 'node:path';
import type { MasterProcess } from '../harness/master.js';
import { ROOT } from '../harness/master.js';
import type { Netns } from '../harness/netns.js';
import { parsePrometheusText, type Family, type MetricType } from './prom-text.js';

/** Every metric handover exports, with its type and label names (le aside). */
export const EXPECTED: Readonly<Record<string, { type: MetricType; labels: readonly string[] }>> = {
  handover_generation: { type: 'gauge', labels: [] },
  handover_workers: { type: 'gauge', labels: ['state'] },
  handover_reloads_total: { type: 'counter', labels: ['result', 'trigger'] },
  handover_reload_duration_seconds: { type: 'histogram', labels: [] },
  handover_worker_exits_total: { type: 'counter', labels: ['reason'] },
  handover_connections_migrated_total: { type: 'counter', labels: [] },
  handover_connections_dropped_total: { type: 'counter', labels: ['reason'] },
  handover_connections_drained_total: { type: 'counter', labels: [] },
  handover_accept_queue_length: { type: 'gauge', labels: ['address', 'generation'] },
  handover_accept_queue_backlog: { type: 'gauge', labels: ['address'] },
  handover_listen_drops_total: { type: 'counter', labels: ['address'] },
  handover_kernel_tcpext_total: { type: 'counter', labels: ['counter'] },
  handover_tls_certificate_not_after_timestamp_seconds: { type: 'gauge', labels: ['address'] },
  handover_http_requests_total: { type: 'counter', labels: ['code'] },
  handover_http_request_duration_seconds: { type: 'histogram', labels: [] },
  handover_http_requests_in_flight: { type: 'gauge', labels: [] },
  handover_generation_http_requests_total: { type: 'counter', labels: ['code', 'generation'] },
  handover_generation_http_request_duration_seconds: { type: 'histogram', labels: ['generation'] },
  handover_worker_resident_memory_bytes: { type: 'gauge', labels: ['worker'] },
  handover_worker_cpu_seconds_total: { type: 'counter', labels: ['worker'] },
  // prom-client's default process metrics, for the master (a sample of them)
  process_cpu_seconds_total: { type: 'counter', labels: [] },
  process_resident_memory_bytes: { type: 'gauge', labels: [] },
  process_open_fds: { type: 'gauge', labels: [] },
  nodejs_eventloop_lag_seconds: { type: 'gauge', labels: [] },
  nodejs_heap_size_used_bytes: { type: 'gauge', labels: [] },
};

export interface Got {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** One HTTP request from this process, new connection, with a deadline. */
export function get(url: string, options: { method?: string; body?: string; timeoutMs?: number } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', agent: false, timeout: options.timeoutMs ?? 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${options.timeoutMs ?? 5_000} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

const IN_NETNS_GET = `
const [url, timeout] = process.argv.slice(1);
require('node:http').get(url, { agent: false, timeout: Number(timeout) }, (res) => {
  let body = '';
  res.setEncoding('utf8').on('data', (d) => (body += d));
  res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, headers: res.headers, body })));
}).on('timeout', function () { this.destroy(new Error('timeout')); }).on('error', (e) => { process.stderr.write(String(e)); process.exit(1); });`;

/** GET from inside a test's namespace (where the master listens). */
export async function getIn(ns: Netns, url: string, timeoutMs = 5_000): Promise<Got> {
  const r = await ns.run(process.execPath, ['-e', IN_NETNS_GET, url, String(timeoutMs)], { timeoutMs: timeoutMs + 5_000 });
  if (r.code !== 0) throw new Error(`GET ${url} in ${ns.name}: ${r.stderr.trim() || `exit ${r.code}`}`);
  return JSON.parse(r.stdout) as Got;
}

/** Scrapes and parses /metrics (a non-200 answer or a parse error throws). */
export async function scrape(url: string, ns?: Netns): Promise<Map<string, Family>> {
  const r = ns ? await getIn(ns, url) : await get(url);
  if (r.status !== 200) throw new Error(`GET ${url}: ${r.status} ${r.body}`);
  return parsePrometheusText(r.body);
}

/** The host:port of the master's metrics endpoint, from its log. */
export async function metricsAddress(master: MasterProcess): Promise<string> {
  const line = await master.waitForLog((l) => typeof l['metrics'] === 'string' && typeof l.msg === 'string' && l.msg.startsWith('metrics on '));
  return line['metrics'] as string;
}

/**
 * promtool: $PROMTOOL, else on PATH, else where .ci/run unpacks Debian's
 * prometheus package (.cache/prometheus/usr/bin/promtool).
 */
export function findPromtool(): string | undefined {
  const candidates = [
    process.env['PROMTOOL'],
    ...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'promtool')),
    join(ROOT, '.cache/prometheus/usr/bin/promtool'),
  ];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return undefined;
}

/** `promtool check metrics` on `text`: its complaint lines (it exits 3 when it has any). */
export function promtoolComplaints(promtool: string, text: string): string[] {
  const r = spawnSync(promtool, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  if (r.error) throw r.error;
  if (r.status !== 0 && r.status !== 3) throw new Error(`promtool exited ${r.status}: ${r.stderr}`);
  return `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean);
}
