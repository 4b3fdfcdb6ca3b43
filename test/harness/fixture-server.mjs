#!/usr/bin/env node
// Tiny HTTP server for harness tests. Run it inside a namespace:
//   ip netns exec NS node test/harness/fixture-server.mjs [--port 0] [--host 127.0.0.1]
//        [--backlog 511] [--exit-on-stdin-end]
// Prints one JSON line {"event":"listening","port":P,"pid":PID} once listening.
// Every response carries `x-handover-worker: <pid>`.
// Routes:
//   /            200 "ok"
//   /slow?ms=N   200 after N ms (default 500)
//   /hang        never answers
//   /reset       resets the connection (RST)
//   /close       closes the connection without answering (FIN)
//   /status?code=N  answers with status N
//   /stats       {"connections":n,"requests":n}  (this request included)
// SIGTERM: closes everything and exits 0. With --exit-on-stdin-end it also
// exits when its stdin closes (i.e. when the test process that spawned it
// with a stdin pipe dies).
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    backlog: { type: 'string', default: '511' },
    'exit-on-stdin-end': { type: 'boolean', default: false },
  },
});

let connections = 0;
let requests = 0;
const server = http.createServer((req, res) => {
  requests++;
  const url = new URL(req.url ?? '/', 'http://x');
  res.setHeader('x-handover-worker', String(process.pid));
  switch (url.pathname) {
    case '/slow':
      setTimeout(() => res.end('slow\n'), Number(url.searchParams.get('ms') ?? 500));
      return;
    case '/hang':
      return;
    case '/reset':
      req.socket.resetAndDestroy();
      return;
    case '/close':
      req.socket.destroy();
      return;
    case '/status':
      res.statusCode = Number(url.searchParams.get('code') ?? 500);
      res.end('status\n');
      return;
    case '/stats':
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ connections, requests }));
      return;
    default:
      res.end('ok\n');
  }
});
server.on('connection', () => connections++);

server.listen({ port: Number(values.port), host: values.host, backlog: Number(values.backlog) }, () => {
  process.stdout.write(JSON.stringify({ event: 'listening', port: server.address().port, pid: process.pid }) + '\n');
});

function shutdown() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (values['exit-on-stdin-end']) {
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}
