#!/usr/bin/env node
// HTTPS / HTTP/2 load client for the TLS tests, run inside the test's network
// namespace like load.mjs. Records which certificate (serial) answered each
// request, so a test sees when a rotation took effect, and counts every
// failed handshake or request.
//
//   node tls-load.mjs --url https://127.0.0.1:PORT/ [--url ...] --ca FILE [--servername NAME]
//        --mode h1|h1-keepalive|h2 [--concurrency N] [--duration MS] [--timeout MS]
//        [--slow-every N --slow-ms MS] [--stop-file PATH]
//   node tls-load.mjs --url ... --ca FILE --mode h2-hold --streams K --slow-ms MS
//
// With several --url, request loop i goes to url i mod n (one process for
// several addresses: process start-up is what a busy machine makes slow).
// Output: {"event":"serial","serial":S,"at":EPOCH_MS} the first time a serial
// answers; in h2-hold mode {"event":"sent"} once all K streams are open; then,
// always, one summary line:
//   {mode, requests, ok, statuses, errors, retried, serials: {S: {count, first, last}},
//    protocols, slow: {sent, ok}, goaways, elapsedMs, workers}
// h2: a stream refused because the server's GOAWAY came first (REFUSED_STREAM,
// or opened on a session that had just received GOAWAY) was never processed;
// RFC 9113 §8.7 lets a client retry it, as browsers do. Those are retried on a
// fresh session (at most 3 times) and counted in `retried`, not as failures.
// Loopback only; hard cap 120 s.
import { existsSync, readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import { parseArgs } from 'node:util';

const HARD_CAP_MS = 120_000;
const MAX_RETRIES = 3;

const { values } = parseArgs({
  options: {
    url: { type: 'string', multiple: true }, ca: { type: 'string' }, servername: { type: 'string' }, mode: { type: 'string', default: 'h1' },
    concurrency: { type: 'string', default: '8' }, duration: { type: 'string', default: '10000' }, timeout: { type: 'string', default: '5000' },
    'slow-every': { type: 'string', default: '0' }, 'slow-ms': { type: 'string', default: '300' }, streams: { type: 'string', default: '4' },
    'stop-file': { type: 'string' },
  },
});
const fail = (msg) => {
  process.stderr.write(`tls-load.mjs: ${msg}\n`);
  process.exit(2);
};
if (!values.url?.length || !values.ca) fail('--url and --ca are required');
const urls = values.url.map((u) => new URL(u));
for (const u of urls) if (!(net.isIPv4(u.hostname) && u.hostname.startsWith('127.')) && u.hostname !== 'localhost') fail('loopback targets only');
const url = urls[0];
const ca = readFileSync(values.ca);
const servernameOf = (u) => values.servername ?? (net.isIP(u.hostname) ? undefined : u.hostname);
const mode = values.mode;
const concurrency = Number(values.concurrency);
const durationMs = Math.min(Number(values.duration), HARD_CAP_MS);
const timeoutMs = Number(values.timeout);
const slowEvery = Number(values['slow-every']);
const slowMs = Number(values['slow-ms']);

const started = Date.now();
const summary = {
  mode, requests: 0, ok: 0, statuses: {}, errors: {}, retried: 0, serials: {}, protocols: {}, slow: { sent: 0, ok: 0 }, goaways: 0, elapsedMs: 0, workers: {},
};
let stopping = false;
const stopAt = started + durationMs;
const emit = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const bump = (o, k) => (o[k] = (o[k] ?? 0) + 1);

function served(serial, protocol, status, worker) {
  const now = Date.now();
  summary.requests++;
  bump(summary.statuses, String(status));
  if (status === 200) summary.ok++;
  bump(summary.protocols, protocol || 'none');
  if (worker) bump(summary.workers, worker);
  const s = (summary.serials[serial] ??= { count: 0, first: now, last: now });
  if (s.count === 0) emit({ event: 'serial', serial, at: now, protocol });
  s.count++;
  s.last = now;
}
function failed(err) {
  summary.requests++;
  bump(summary.errors, err.code ?? err.message ?? 'error');
}
const pathFor = (u, i) => (slowEvery > 0 && i % slowEvery === 0 ? `/slow?ms=${slowMs}` : u.pathname);
const serialOf = (socket) => socket.getPeerCertificate?.()?.serialNumber?.toUpperCase() ?? '?';

// --- HTTP/1.1: a new connection per request, or keep-alive ---------------------
function h1Request(u, agent, path) {
  return new Promise((resolve) => {
    const servername = servernameOf(u);
    const req = https.request(
      { host: u.hostname, port: u.port, path, ca, servername, agent, ALPNProtocols: ['http/1.1'], timeout: timeoutMs },
      (res) => {
        const serial = serialOf(res.socket);
        const protocol = res.socket.alpnProtocol;
        res.resume();
        res.on('end', () => {
          served(serial, protocol, res.statusCode, res.headers['x-handover-worker']);
          resolve(res.statusCode === 200);
        });
        res.on('error', (e) => (failed(e), resolve(false)));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => (failed(e), resolve(false)));
    req.end();
  });
}

// --- HTTP/2: sessions replaced when the server sends GOAWAY --------------------
class H2Client {
  session = undefined;
  constructor(u) {
    this.url = u;
  }
  get() {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const servername = servernameOf(this.url);
    const s = http2.connect(this.url.origin, { ca, servername, ALPNProtocols: ['h2'] });
    s.on('error', () => {}); // reported per stream
    s.on('goaway', () => summary.goaways++);
    s.serial = new Promise((resolve) => s.once('connect', (_s, socket) => resolve(serialOf(socket))));
    this.session = s;
    return s;
  }
  async request(path, onOpen) {
    for (let attempt = 0; ; attempt++) {
      const r = await this.once(path, onOpen);
      if (r !== 'retry') return r;
      if (attempt >= MAX_RETRIES) return (failed({ code: 'REFUSED_STREAM_RETRIES' }), false);
      summary.retried++;
    }
  }
  once(path, onOpen) {
    return new Promise((resolve) => {
      let s;
      let stream;
      try {
        s = this.get();
        stream = s.request({ ':path': path });
      } catch (e) {
        if (e.code === 'ERR_HTTP2_GOAWAY_SESSION' || e.code === 'ERR_HTTP2_INVALID_SESSION') return resolve('retry');
        return (failed(e), resolve(false));
      }
      onOpen?.();
      let status = 0;
      let worker;
      const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), timeoutMs);
      stream.on('response', (h) => ((status = h[':status']), (worker = h['x-handover-worker'])));
      stream.resume();
      stream.on('end', async () => {
        clearTimeout(timer);
        served(await s.serial, 'h2', status, worker);
        resolve(status === 200);
      });
      stream.on('error', (e) => {
        clearTimeout(timer);
        const refused = stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM || e.code === 'ERR_HTTP2_GOAWAY_SESSION';
        if (refused && status === 0) return resolve('retry');
        failed(e);
        resolve(false);
      });
    });
  }
  close() {
    this.session?.close();
  }
}

async function loop(worker) {
  const u = urls[worker % urls.length];
  const agent = mode === 'h1-keepalive' ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : false;
  const h2 = mode === 'h2' ? new H2Client(u) : undefined;
  for (let i = worker; !stopping && Date.now() < stopAt; i += concurrency) {
    const path = pathFor(u, i);
    const slow = path !== u.pathname;
    if (slow) summary.slow.sent++;
    const ok = h2 ? await h2.request(path) : await h1Request(u, agent, path);
    if (slow && ok) summary.slow.ok++;
  }
  h2?.close();
  if (agent) agent.destroy();
}

async function hold() {
  // K streams on one session, all open before "sent"; then the test rotates.
  const h2 = new H2Client(url);
  let open = 0;
  const k = Number(values.streams);
  const all = Array.from({ length: k }, () => h2.request(`/slow?ms=${slowMs}`, () => {
    if (++open === k) setTimeout(() => emit({ event: 'sent', streams: k }), 50);
  }));
  summary.slow.sent = k;
  const results = await Promise.all(all);
  summary.slow.ok = results.filter(Boolean).length;
  h2.close();
}

const stopTimer = setInterval(() => {
  if (values['stop-file'] && existsSync(values['stop-file'])) stopping = true;
}, 50);
process.on('SIGTERM', () => (stopping = true));
const cap = setTimeout(() => finish(), HARD_CAP_MS + 10_000);

function finish() {
  clearInterval(stopTimer);
  clearTimeout(cap);
  summary.elapsedMs = Date.now() - started;
  emit(summary);
  process.exit(0);
}

if (mode === 'h2-hold') await hold();
else if (['h1', 'h1-keepalive', 'h2'].includes(mode)) await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i)));
else fail(`unknown --mode ${mode}`);
finish();
