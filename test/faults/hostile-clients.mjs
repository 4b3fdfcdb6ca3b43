// Slow and hostile clients against one handover worker (test/fixtures/apps/hostile.js),
// run inside the test's network namespace by test/faults/drain.test.ts.
//
//   node hostile-clients.mjs PORT RESUME_MS
//
// Prints {"event":"ready","at":ms} once every client is established, then
// one JSON line with how and when (epoch ms) each connection ended:
//   slowloris    sends a header line every 300 ms, never finishes the request
//   neverReads   asks for 256 MiB and never reads; resumes RESUME_MS after ready
//                to find out whether the server had given up on it
//   pipelined    three requests in one write on one connection, answered 300 ms after the drain began
//   stream       a 1.5 s streaming response
//   websocket    a raw upgrade; the server pushes frames
// Bounded: exits after 30 s whatever happens.
import { connect } from 'node:net';

const port = Number(process.argv[2]);
const resumeMs = Number(process.argv[3]);
const CAP_MS = 30_000;
const results = {};
const pending = new Set(['slowloris', 'neverReads', 'pipelined', 'stream', 'websocket']);
const established = new Set();
let readyAt = 0;

function finish(name, outcome) {
  if (!pending.has(name)) return;
  pending.delete(name);
  results[name] = { ...outcome, endedAt: Date.now() };
  if (pending.size === 0) done();
}

function done() {
  process.stdout.write(`${JSON.stringify({ results })}\n`);
  process.exit(0);
}
setTimeout(() => {
  for (const name of pending) results[name] = { outcome: 'still open at the cap' };
  done();
}, CAP_MS).unref();

function up(name) {
  established.add(name);
  if (established.size === 5 && readyAt === 0) {
    readyAt = Date.now();
    process.stdout.write(`${JSON.stringify({ event: 'ready', at: readyAt })}\n`);
    setTimeout(resumeNeverReader, resumeMs);
  }
}

function open(name, onData) {
  const socket = connect(port, '127.0.0.1');
  let bytes = 0;
  let text = '';
  socket.on('data', (d) => {
    bytes += d.length;
    if (text.length < 4096) text += d.toString('latin1');
    onData?.(d, text);
  });
  socket.on('end', () => finish(name, { outcome: 'end', bytes, text: text.slice(0, 2048) }));
  socket.on('error', (e) => finish(name, { outcome: e.code ?? 'error', bytes, text: text.slice(0, 2048) }));
  socket.on('close', () => finish(name, { outcome: 'close', bytes, text: text.slice(0, 2048) }));
  return socket;
}

// slowloris
const loris = open('slowloris');
loris.on('connect', () => {
  loris.write('GET / HTTP/1.1\r\nHost: localhost\r\n');
  up('slowloris');
  const timer = setInterval(() => {
    if (loris.writable) loris.write(`X-Slow-${Date.now()}: 1\r\n`);
    else clearInterval(timer);
  }, 300);
  loris.on('close', () => clearInterval(timer));
});

// never reads
let neverReader;
let neverReaderStarted = false;
function resumeNeverReader() {
  results.neverReadsResumedAt = Date.now();
  neverReader.resume();
}
neverReader = open('neverReads', () => {
  if (neverReaderStarted) return;
  neverReaderStarted = true;
  neverReader.pause();
  up('neverReads');
});
neverReader.on('connect', () => neverReader.write('GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n'));

// pipelined
const pipe = open('pipelined');
pipe.on('connect', () => {
  // Answered 300 ms after the drain began, not 1 s after the request: a reload slower than that on a busy machine left nothing in flight.
  const one = 'GET /slow?ms=300&after=drain HTTP/1.1\r\nHost: localhost\r\n\r\n';
  pipe.write(one + one + one);
  up('pipelined');
});

// a long streaming response
let streaming = false;
const stream = open('stream', (_d, text) => {
  if (!streaming && text.includes('tick')) {
    streaming = true;
    up('stream');
  }
});
stream.on('connect', () => stream.write('GET /stream?ms=1500 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));

// a WebSocket, by a raw upgrade (after one request, so that the app has hooked 'upgrade')
let upgraded = false;
const warm = connect(port, '127.0.0.1', () => warm.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
warm.resume();
warm.on('close', () => {
  const ws = open('websocket', (_d, text) => {
    if (!upgraded && text.startsWith('HTTP/1.1 101')) {
      upgraded = true;
      up('websocket');
    }
  });
  ws.on('connect', () =>
    ws.write('GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'));
});
