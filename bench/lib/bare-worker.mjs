#!/usr/bin/env node
// One handover worker alone, started the way the master starts one (IPC in
// slot 3, a bound but not listening SO_REUSEPORT socket in slot 4, its own
// process group, the `start` message), timed from spawn() to its `ready`;
// then SIGKILLed. Run inside the bench's namespace and CPUs, so the socket
// and the worker are where a master's would be. Prints one JSON line:
// {"ms": spawn to ready, "cpuMs": the worker's CPU by then}.
//   node bench/lib/bare-worker.mjs APP [CLK_TCK]
// The `start` message follows src/protocol/worker.ts, in its envelope.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { listenerSpec, openListener, socketAddress } from '../../dist/net/index.js';
import { envelope, FIRST_LISTENER_FD, openEnvelope } from '../../dist/protocol/worker.js';

const READY_TIMEOUT_MS = 10_000;
const WORKER = fileURLToPath(new URL('../../dist/worker/main.js', import.meta.url));
const app = process.argv[2];
const TICK_MS = 1000 / Number(process.argv[3] ?? 100);
const BACKLOG = 511;

const listener = openListener(listenerSpec({ address: socketAddress('127.0.0.1', 0, 4), backlog: BACKLOG }));
const started = performance.now();
const child = spawn(process.execPath, [WORKER], { stdio: ['ignore', 'ignore', 'inherit', 'ipc', listener.fd], detached: true });
const timer = setTimeout(() => fail(`not ready within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);

function cpuMs(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[14 - 3]) + Number(rest[15 - 3])) * TICK_MS;
}

function fail(why) {
  process.stderr.write(`bare worker: ${why}\n`);
  child.kill('SIGKILL');
  process.exit(1);
}

child.on('message', (raw) => {
  const msg = openEnvelope(raw);
  if (msg?.type === 'ready') {
    const ms = performance.now() - started;
    const cpu = cpuMs(child.pid);
    clearTimeout(timer);
    child.kill('SIGKILL');
    listener.retire();
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
  index: 0,
  app,
  listeners: [{ fd: FIRST_LISTENER_FD, address: listener.address.text, backlog: BACKLOG }],
  drainTimeoutMs: 1000,
  heartbeatMs: 1000,
}));
