#!/usr/bin/env node
// Handover workers with no master, started the way the master starts them:
// confined first as the master confines its children (no_new_privs, no
// ambient or inheritable capabilities, SECBIT_NOROOT for root: a worker
// that starts with capabilities loads the libc bindings to drop them, ~40 ms
// a master's workers never pay), IPC in slot 3, a bound but not listening
// SO_REUSEPORT socket in slot 4, its own process group, the `start`
// message. COUNT workers (default 1) are spawned at once, as a reload
// spawns a generation, and timed from the first spawn() to the last
// `ready`; then SIGKILLed. Run inside the bench's namespace and CPUs, so
// the sockets and the workers are where a master's would be. Prints one
// JSON line: {"ms": spawn to the last ready, "cpuMs": the workers' CPU by
// their ready, summed}.
//   node bench/lib/bare-worker.mjs APP [CLK_TCK] [COUNT]
// The `start` message follows src/protocol/worker.ts, in its envelope.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { confineWorkers } from '../../dist/master/privileges.js';
import { listenerSpec, openListener, socketAddress } from '../../dist/net/index.js';
import { envelope, FIRST_LISTENER_FD, openEnvelope } from '../../dist/protocol/worker.js';

const READY_TIMEOUT_MS = 10_000;
const WORKER = fileURLToPath(new URL('../../dist/worker/main.js', import.meta.url));
const app = process.argv[2];
const TICK_MS = 1000 / Number(process.argv[3] ?? 100);
const COUNT = Number(process.argv[4] ?? 1);
const BACKLOG = 511;

if (!app || !Number.isInteger(COUNT) || COUNT < 1) {
  process.stderr.write('usage: bare-worker.mjs APP [CLK_TCK] [COUNT]\n');
  process.exit(2);
}
confineWorkers({ warn: (_fields, message) => process.stderr.write(`bare worker: ${message}\n`), debug: () => {} });

const children = [];
function fail(why) {
  process.stderr.write(`bare worker: ${why}\n`);
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
}

function cpuMs(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[14 - 3]) + Number(rest[15 - 3])) * TICK_MS;
}

// Sockets first, as the master opens a generation's before it spawns any worker.
const listeners = Array.from({ length: COUNT }, () => openListener(listenerSpec({ address: socketAddress('127.0.0.1', 0, 4), backlog: BACKLOG })));
const timer = setTimeout(() => fail(`not ready within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
const started = performance.now();
let cpu = 0;
let waiting = COUNT;
for (const listener of listeners) {
  const child = spawn(process.execPath, [WORKER], { stdio: ['ignore', 'ignore', 'inherit', 'ipc', listener.fd], detached: true });
  children.push(child);
  child.on('message', (raw) => {
    const msg = openEnvelope(raw);
    if (msg?.type === 'ready') {
      cpu += cpuMs(child.pid);
      if (--waiting > 0) return;
      const ms = performance.now() - started;
      clearTimeout(timer);
      for (const c of children) c.kill('SIGKILL');
      for (const l of listeners) l.retire();
      process.stdout.write(`${JSON.stringify({ ms, cpuMs: cpu })}\n`);
    } else if (msg?.type === 'failed') {
      fail(`failed: ${msg.error?.message}`);
    }
  });
  child.once('exit', (code, signal) => {
    if (signal !== 'SIGKILL') fail(`exited (${signal ?? code}) before ready`);
  });
  child.send(envelope({
    type: 'start',
    generation: 1,
    index: children.length - 1,
    app,
    listeners: [{ fd: FIRST_LISTENER_FD, address: listener.address.text, backlog: BACKLOG }],
    drainTimeoutMs: 1000,
    heartbeatMs: 1000,
    countRequests: false, // as from a master without metrics.listen
  }));
}
