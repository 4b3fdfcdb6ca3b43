#!/usr/bin/env node
// A small HTTP/1.1 load client that names every failure: reset, refused,
// eof (closed before a complete response), timeout (no response within
// --timeout), non2xx. wrk folds resets and EOFs into one "read" count and
// cannot tell when they happened; this client counts each kind per time
// bucket, for keep-alive connections and for a new connection per request
// at once. Raw sockets and a minimal parser (Content-Length or chunked), so
// the client costs little CPU per request.
//
//   node bench/lib/client.mjs --port 8080 [--host 127.0.0.1] [--tls]
//        [--keepalive 32] [--newconn 32] --duration MS [--timeout MS] [--bucket MS]
//
// Prints one JSON line when done: {startedAt, elapsedMs, bucketMs, modes:
// {keepalive|newconn: {ok, failed: {reset, refused, eof, timeout, non2xx,
// other}, timeline: [[bucketStartEpochMs, ok, reset, refused, eof, timeout,
// non2xx, other], ...]}}}. Loopback targets only; stops by itself.
import net from 'node:net';
import tls from 'node:tls';
import { parseArgs } from 'node:util';

const HARD_CAP_MS = 600_000;
const KINDS = ['reset', 'refused', 'eof', 'timeout', 'non2xx', 'other'];

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    tls: { type: 'boolean', default: false },
    keepalive: { type: 'string', default: '32' },
    newconn: { type: 'string', default: '32' },
    duration: { type: 'string' },
    timeout: { type: 'string', default: '2000' },
    bucket: { type: 'string', default: '250' },
  },
  strict: true,
});
const int = (name) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`client: --${name} must be a non-negative integer\n`);
    process.exit(2);
  }
  return n;
};
if (!/^127\.|^::1$|^localhost$/.test(values.host)) {
  process.stderr.write(`client: refusing non-loopback target ${values.host}\n`);
  process.exit(2);
}
const port = int('port');
const durationMs = Math.min(int('duration'), HARD_CAP_MS);
const timeoutMs = int('timeout');
const bucketMs = Math.max(1, int('bucket'));
const startedAt = Date.now();
const deadline = startedAt + durationMs;
let stopping = false;

function modeCounts() {
  return { ok: 0, failed: Object.fromEntries(KINDS.map((k) => [k, 0])), buckets: new Map() };
}
const modes = { keepalive: modeCounts(), newconn: modeCounts() };

function record(mode, kind) {
  const m = modes[mode];
  if (kind === 'ok') m.ok++;
  else m.failed[kind]++;
  const b = Math.floor(Date.now() / bucketMs) * bucketMs;
  let row = m.buckets.get(b);
  if (!row) m.buckets.set(b, (row = new Array(1 + KINDS.length).fill(0)));
  row[kind === 'ok' ? 0 : 1 + KINDS.indexOf(kind)]++;
}

function kindOf(err) {
  switch (err?.code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    case 'ECONNREFUSED':
      return 'refused';
    default:
      return 'other';
  }
}

/** Returns null (incomplete), or { status, close } once a whole response is in `buf`. */
function parseResponse(buf) {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const head = buf.toString('latin1', 0, headEnd);
  const status = Number(head.slice(9, 12));
  const lower = head.toLowerCase();
  const close = /\r\nconnection:\s*close/.test(lower);
  const body = headEnd + 4;
  const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
  if (cl) {
    const end = body + Number(cl[1]);
    return buf.length >= end ? { status, close, rest: buf.subarray(end) } : null;
  }
  if (/\r\ntransfer-encoding:\s*chunked/.test(lower)) {
    const end = buf.indexOf('0\r\n\r\n', body);
    return end >= 0 ? { status, close, rest: buf.subarray(end + 5) } : null;
  }
  return status === 204 || status === 304 ? { status, close, rest: buf.subarray(body) } : null;
}

const REQUEST = (close) => Buffer.from(`GET / HTTP/1.1\r\nHost: ${values.host}:${port}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`);
const KEEPALIVE_REQUEST = REQUEST(false);
const CLOSE_REQUEST = REQUEST(true);

function open() {
  const options = { host: values.host, port };
  return values.tls ? tls.connect({ ...options, rejectUnauthorized: false }) : net.connect(options);
}

/**
 * One connection's life: sends a request, waits for its response, and for
 * keep-alive sends the next on the same socket until the server closes it.
 * Resolves when the connection is finished (closed, failed or stopped).
 */
function connection(mode) {
  return new Promise((resolve) => {
    const keepAlive = mode === 'keepalive';
    const socket = open();
    let buf = Buffer.alloc(0);
    // A request is due from the moment its connection is opened: a connect or
    // handshake that fails or hangs fails that request.
    let waiting = true;
    let done = false;
    let timer = setTimeout(() => finish('timeout'), timeoutMs);
    const finish = (kind) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unfinished.delete(finish);
      if (waiting && kind) record(mode, kind);
      socket.destroy();
      resolve();
    };
    unfinished.add(finish);
    const send = () => {
      if (stopping || Date.now() >= deadline) return finish(null);
      waiting = true;
      clearTimeout(timer);
      timer = setTimeout(() => finish('timeout'), timeoutMs);
      socket.write(keepAlive ? KEEPALIVE_REQUEST : CLOSE_REQUEST);
    };
    socket.setNoDelay(true);
    socket.once(values.tls ? 'secureConnect' : 'connect', send);
    socket.on('data', (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const r = parseResponse(buf);
      if (!r) return;
      waiting = false;
      clearTimeout(timer);
      record(mode, r.status >= 200 && r.status < 300 ? 'ok' : 'non2xx');
      buf = r.rest;
      if (!keepAlive || r.close) return finish(null);
      send();
    });
    socket.on('error', (err) => finish(kindOf(err)));
    socket.on('close', () => finish('eof'));
  });
}

async function loop(mode) {
  while (!stopping && Date.now() < deadline) await connection(mode);
}

/** Every unfinished connection's finish(), for the hard stop. */
const unfinished = new Set();
// In-flight requests end within their timeout after the deadline; past that
// (and past the hard cap) whatever is left is cut, uncounted.
const hardStop = setTimeout(() => {
  stopping = true;
  for (const finish of [...unfinished]) finish(null);
}, Math.min(durationMs + timeoutMs + 2000, HARD_CAP_MS));
hardStop.unref();
process.once('SIGTERM', () => (stopping = true));

await Promise.all([
  ...Array.from({ length: int('keepalive') }, () => loop('keepalive')),
  ...Array.from({ length: int('newconn') }, () => loop('newconn')),
]);
clearTimeout(hardStop);
const out = { startedAt, elapsedMs: Date.now() - startedAt, bucketMs, kinds: KINDS, modes: {} };
for (const [name, m] of Object.entries(modes)) {
  out.modes[name] = { ok: m.ok, failed: m.failed, timeline: [...m.buckets].sort((a, b) => a[0] - b[0]).map(([b, row]) => [b, ...row]) };
}
process.stdout.write(`${JSON.stringify(out)}\n`);
