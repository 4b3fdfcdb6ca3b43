#!/usr/bin/env node
// Standalone HTTP load client for the handover test harness.
//
// Run it INSIDE a network namespace:
//   ip netns exec NS node test/harness/load.mjs --url http://127.0.0.1:PORT/ \
//      --mode newconn|keepalive --concurrency 16 --requests 500 [--duration MS]
//   ip netns exec NS node test/harness/load.mjs --url ... --mode hold --connections K
//
// Output: in hold mode one line {"event":"sent",...} once every connection is
// connected and its request written; a line {"event":"worker","worker":W}
// at the first response from each value W of the worker header; then,
// always, exactly one JSON summary line (the last line). Exit 0 after the summary, 2 on bad flags.
//
// Summary: {mode, requests, ok, statuses, errors, timeouts, elapsedMs, rps,
//           latencyMs:{p50,p99,max}, workers, stoppedBy, ...}
//   requests  = number of requests that finished (sum(statuses) + sum(errors))
//   statuses  = per HTTP status, counted only for complete responses
//   errors    = per error code (ECONNRESET, ECONNREFUSED, EOF, ETIMEDOUT, ABORTED, ...)
//   errorsAt  = epoch ms of each error (the first 10,000)
//   timeouts  = how many of errors.ETIMEDOUT were our own --timeout firing
//   workers   = per value of the x-handover-worker response header
//
// Bounds: stops issuing at --requests or --duration (whichever first), on
// --stop-file, or on SIGTERM/SIGINT (in-flight requests then finish, each
// within --timeout). A second signal, or the hard cap of 120 s, aborts what
// is still in flight (counted as errors.ABORTED) and prints at once.
// Only loopback targets are accepted.

import http from 'node:http';
import net from 'node:net';
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';

const HARD_CAP_MS = 120_000;
const WORKER_HEADER = 'x-handover-worker';

function usage(msg) {
  process.stderr.write(
    `load.mjs: ${msg}\n` +
      'usage: load.mjs --url http://127.0.0.1:PORT/path [--mode newconn|keepalive|hold]\n' +
      '       [--concurrency N] [--requests N] [--duration MS] [--timeout MS]\n' +
      '       [--connections K (hold)] [--stop-file PATH] [--log-errors]\n',
  );
  process.exit(2);
}

function intFlag(values, name, def, min = 1) {
  const v = values[name];
  if (v === undefined) return def;
  if (!/^\d+$/.test(v)) usage(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  const n = Number(v);
  if (n < min) usage(`--${name} must be >= ${min}`);
  return n;
}

function isLoopback(host) {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1') return true;
  return net.isIPv4(h) && h.startsWith('127.');
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      url: { type: 'string' },
      mode: { type: 'string', default: 'newconn' },
      concurrency: { type: 'string' },
      requests: { type: 'string' },
      duration: { type: 'string' },
      timeout: { type: 'string' },
      connections: { type: 'string' },
      'stop-file': { type: 'string' },
      'log-errors': { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (e) {
  usage(e.message);
}

if (!values.url) usage('--url is required');
let url;
try {
  url = new URL(values.url);
} catch {
  usage(`bad --url ${JSON.stringify(values.url)}`);
}
if (url.protocol !== 'http:') usage('--url must be http://');
if (!isLoopback(url.hostname)) usage(`refusing non-loopback target ${url.hostname}: load goes to loopback only`);
const mode = values.mode;
if (!['newconn', 'keepalive', 'hold'].includes(mode)) usage(`--mode must be newconn, keepalive or hold, got ${mode}`);
const concurrency = intFlag(values, 'concurrency', 16);
const maxRequests = intFlag(values, 'requests', undefined);
const durationMs = intFlag(values, 'duration', undefined);
const timeoutMs = Math.min(intFlag(values, 'timeout', 5000), HARD_CAP_MS);
const connections = intFlag(values, 'connections', undefined);
const stopFile = values['stop-file'];
// --log-errors: one {"event":"failure","code","at"} line per failed request
// (at: wall-clock ms), so a test can tell when each failure happened.
const logErrors = values['log-errors'];
if (mode === 'hold') {
  if (connections === undefined) usage('--mode hold needs --connections K');
} else if (maxRequests === undefined && durationMs === undefined) {
  usage('give --requests and/or --duration');
}

const host = url.hostname.replace(/^\[|\]$/g, '');
const port = Number(url.port || 80);
const reqPath = (url.pathname || '/') + url.search;

// ---------------------------------------------------------------------------
// state

const t0 = performance.now();
const issueDeadline = t0 + Math.min(durationMs ?? HARD_CAP_MS, HARD_CAP_MS);
let stopping = false;
let stoppedBy = null;
let finished = false;
const statuses = {};
const errors = {};
const workers = {};
let timeouts = 0;
let completed = 0;
const latencies = [];
const inflight = new Set(); // abort functions

function bump(obj, key) {
  obj[key] = (obj[key] ?? 0) + 1;
}

function recordStatus(status, worker, latency) {
  completed++;
  bump(statuses, String(status));
  if (worker !== undefined && worker !== null && worker !== '') {
    const key = String(worker);
    // The first answer from each worker, as it comes: a test can wait for every worker to be under load.
    if (workers[key] === undefined) process.stdout.write(`${JSON.stringify({ event: 'worker', worker: key })}\n`);
    bump(workers, key);
  }
  latencies.push(latency);
}

/** When each error happened (epoch ms), so a test can tie losses to an event; the first 10,000. */
const errorsAt = [];
const ERRORS_AT_KEPT = 10_000;

function recordError(code) {
  completed++;
  bump(errors, code || 'UNKNOWN');
  if (errorsAt.length < ERRORS_AT_KEPT) errorsAt.push(Date.now());
  if (logErrors) process.stdout.write(`${JSON.stringify({ event: 'failure', code: code || 'UNKNOWN', at: Date.now() })}\n`);
}

function stop(reason) {
  if (!stopping) {
    stopping = true;
    stoppedBy ??= reason;
  }
}

function percentile(sorted, p) {
  if (!sorted.length) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i];
}

const round = (x) => Math.round(x * 100) / 100;

function finish(extra = {}) {
  if (finished) return;
  finished = true;
  clearInterval(stopPoll);
  clearTimeout(hardCap);
  for (const abort of [...inflight]) abort();
  const elapsedMs = performance.now() - t0;
  const sorted = Float64Array.from(latencies).sort();
  const ok = statuses['200'] ?? 0;
  const summary = {
    mode,
    requests: completed,
    ok,
    statuses,
    errors,
    errorsAt,
    timeouts,
    elapsedMs: round(elapsedMs),
    rps: round(completed / Math.max(elapsedMs / 1000, 1e-3)),
    latencyMs: {
      p50: round(percentile(sorted, 0.5)),
      p99: round(percentile(sorted, 0.99)),
      max: round(sorted.length ? sorted[sorted.length - 1] : 0),
    },
    workers,
    stoppedBy: stoppedBy ?? 'done',
    ...extra,
  };
  process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(0));
}

// stop-file, signals, hard cap
const stopPoll = setInterval(() => {
  if (stopFile && existsSync(stopFile)) stop('stop-file');
  if (performance.now() >= issueDeadline) stop(durationMs !== undefined && durationMs <= HARD_CAP_MS ? 'duration' : 'cap');
}, 20);
stopPoll.unref();
if (stopFile && existsSync(stopFile)) stop('stop-file');

let signals = 0;
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    signals++;
    stop('signal');
    if (signals > 1) {
      stoppedBy = 'signal-abort';
      finish();
    }
  });
}

const hardCap = setTimeout(() => {
  stoppedBy = 'cap';
  stop('cap');
  finish();
}, HARD_CAP_MS);
hardCap.unref();

// ---------------------------------------------------------------------------
// newconn / keepalive

function httpRequest(agent) {
  return new Promise((resolve) => {
    const start = performance.now();
    let settled = false;
    const settle = (fn) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      inflight.delete(abort);
      fn();
      resolve();
    };
    const opts = { host, port, path: reqPath, method: 'GET', headers: {} };
    if (agent) {
      opts.agent = agent;
    } else {
      opts.agent = false;
      opts.headers.Connection = 'close';
    }
    const req = http.request(opts, (res) => {
      res.on('data', () => {});
      res.on('end', () => {
        if (!res.complete) return settle(() => recordError('EOF'));
        settle(() => recordStatus(res.statusCode, res.headers[WORKER_HEADER], performance.now() - start));
      });
      res.on('error', (err) => settle(() => recordError(err.code ?? 'EOF')));
      res.on('close', () => {
        if (!settled && !res.complete) settle(() => recordError('EOF'));
      });
    });
    req.on('error', (err) => settle(() => recordError(err.code ?? err.name)));
    req.on('close', () => {
      // closed with no response and no error event: treat as EOF
      setImmediate(() => {
        if (!settled && !req.res) settle(() => recordError('EOF'));
      });
    });
    const timer = setTimeout(() => {
      settle(() => {
        timeouts++;
        recordError('ETIMEDOUT');
      });
      req.destroy();
    }, timeoutMs);
    const abort = () => {
      settle(() => recordError('ABORTED'));
      req.destroy();
    };
    inflight.add(abort);
    req.end();
  });
}

async function runHttp() {
  const agent = mode === 'keepalive' ? new http.Agent({ keepAlive: true, maxSockets: concurrency }) : null;
  let issued = 0;
  const canIssue = () => {
    if (stopping || finished) return false;
    if (maxRequests !== undefined && issued >= maxRequests) {
      stop('requests');
      return false;
    }
    if (performance.now() >= issueDeadline) {
      stop(durationMs !== undefined && durationMs <= HARD_CAP_MS ? 'duration' : 'cap');
      return false;
    }
    return true;
  };
  const worker = async () => {
    while (canIssue()) {
      issued++;
      await httpRequest(agent);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent?.destroy();
  finish({ concurrency });
}

// ---------------------------------------------------------------------------
// hold: K raw connections, request written at once, then wait for responses

// Returns {status, worker} once a complete response is in buf, else null.
function parseResponse(buf, eof) {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const head = buf.subarray(0, headEnd).toString('latin1');
  const lines = head.split('\r\n');
  const m = /^HTTP\/\d\.\d (\d{3})/.exec(lines[0]);
  if (!m) return { bad: true };
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const status = Number(m[1]);
  const body = buf.subarray(headEnd + 4);
  const res = { status, worker: headers[WORKER_HEADER] };
  if (status === 204 || status === 304 || (status >= 100 && status < 200)) return res;
  if (headers['content-length'] !== undefined) {
    return body.length >= Number(headers['content-length']) ? res : null;
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const s = body.toString('latin1');
    return s === '0\r\n\r\n' || s.endsWith('\r\n0\r\n\r\n') ? res : null;
  }
  return eof ? res : null; // delimited by close
}

function runHold() {
  const K = connections;
  const request = `GET ${reqPath} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
  let written = 0;
  let failedBeforeWrite = 0;
  let sentPrinted = false;
  let pending = K;

  const maybeSent = () => {
    if (sentPrinted || written + failedBeforeWrite < K) return;
    sentPrinted = true;
    const ev = { event: 'sent', connections: written, failed: failedBeforeWrite, elapsedMs: round(performance.now() - t0) };
    process.stdout.write(JSON.stringify(ev) + '\n');
  };
  const done = () => {
    if (--pending === 0) finish({ connections: K, sent: written });
  };

  for (let i = 0; i < K; i++) {
    const start = performance.now();
    const chunks = [];
    let size = 0;
    let settled = false;
    let wasWritten = false;
    const sock = net.connect({ host, port });
    const settle = (fn) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      inflight.delete(abort);
      if (!wasWritten) {
        failedBeforeWrite++;
        maybeSent();
      }
      fn();
      sock.destroy();
      done();
    };
    const tryComplete = (eof) => {
      const buf = Buffer.concat(chunks, size);
      const r = parseResponse(buf, eof);
      if (r?.bad) return settle(() => recordError('BADRESPONSE'));
      if (r) return settle(() => recordStatus(r.status, r.worker, performance.now() - start));
      if (eof) settle(() => recordError('EOF'));
    };
    sock.on('connect', () => {
      sock.write(request, (err) => {
        if (err || settled) return;
        wasWritten = true;
        written++;
        maybeSent();
      });
    });
    sock.on('data', (d) => {
      chunks.push(d);
      size += d.length;
      tryComplete(false);
    });
    sock.on('end', () => tryComplete(true));
    sock.on('error', (err) => settle(() => recordError(err.code ?? 'EOF')));
    sock.on('close', () => {
      if (!settled) tryComplete(true);
    });
    const timer = setTimeout(() => {
      settle(() => {
        timeouts++;
        recordError('ETIMEDOUT');
      });
    }, timeoutMs);
    const abort = () => settle(() => recordError('ABORTED'));
    inflight.add(abort);
  }
}

// ---------------------------------------------------------------------------

if (mode === 'hold') runHold();
else runHttp();
