// The worker's connection tracker keys connections by descriptor and keeps
// no listener on them (a connection costs one Map.set: bench/tracking.ts),
// so a closed connection's entry stays until its number is reused. What a
// drain reads must still be exactly the connections open now: after
// connections closed, after their descriptors were reused by new ones, for
// the count, for destroyAll, and for a server that stopped accepting.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo, Socket } from 'node:net';
import { it } from 'node:test';
import { ConnectionTracker } from '../../src/worker/drain.js';

async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/**
 * Client connections from a process of their own, so that the numbers this
 * process frees go to the server's next accepts, not to new clients'
 * sockets. Each line on its stdin: a count to open, or "hangup" (closes the
 * oldest one still open).
 */
const CLIENTS = `
const net = require('node:net');
const open = [];
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'hangup') return open.find((s) => !s.destroyed)?.destroy();
  for (let i = 0; i < Number(line); i++) open.push(net.connect(Number(process.argv[1]), '127.0.0.1'));
});
`;

class Clients {
  readonly child: ChildProcess;
  constructor(port: number) {
    this.child = spawn(process.execPath, ['-e', CLIENTS, String(port)], { stdio: ['pipe', 'ignore', 'inherit'] });
  }
  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }
}

/** Has the client process open `n` connections; resolves with the server's sockets once it accepted them all. */
function open(server: Server, clients: Clients, n: number): Promise<Socket[]> {
  const accepted: Socket[] = [];
  const all = new Promise<Socket[]>((resolve) => {
    const on = (s: Socket): void => {
      accepted.push(s);
      if (accepted.length < n) return;
      server.off('connection', on);
      resolve(accepted);
    };
    server.on('connection', on);
  });
  clients.send(String(n));
  return all;
}

const fdOf = (s: Socket): number => (s as unknown as { _handle: { fd: number } })._handle.fd;

const closed = (s: Socket): Promise<void> => new Promise((resolve) => (s.closed ? resolve() : s.once('close', () => resolve())));

it('counts the connections open now, across closes and reused descriptors, and destroys exactly those', async () => {
  const server = createServer((_req, res) => res.end('ok'));
  const tracker = new ConnectionTracker('test', server);
  const clients = new Clients(await listening(server));
  try {
    const first = await open(server, clients, 6);
    assert.equal(tracker.size, 6);
    // The server side of three ends; the next accepts take their numbers again.
    const gone = first.slice(0, 3);
    const freed = new Set(gone.map(fdOf));
    for (const s of gone) s.destroy();
    await Promise.all(gone.map(closed));
    assert.equal(tracker.size, 3);
    const second = await open(server, clients, 4);
    const reused = second.filter((s) => freed.has(fdOf(s))).length;
    assert.ok(reused > 0, 'no descriptor was reused: the case this test is for did not happen');
    assert.equal(tracker.size, 7);
    // A client that hangs up: its server side closes, and stops counting.
    const before = [...first.slice(3), ...second];
    clients.send('hangup');
    const hungUp = await Promise.race(before.map((s) => closed(s).then(() => s)));
    assert.equal(tracker.size, 6);
    const still = before.filter((s) => s !== hungUp);
    assert.ok(still.every((s) => !s.destroyed));
    assert.equal(tracker.destroyAll(), 6);
    assert.ok(still.every((s) => s.destroyed));
    await Promise.all(still.map(closed));
    assert.equal(tracker.size, 0);
  } finally {
    clients.child.kill('SIGKILL');
    server.close();
  }
});

it('resolves closed once it stopped accepting and the last open connection is gone, not before', async () => {
  const server = createServer((_req, res) => res.end('ok'));
  const tracker = new ConnectionTracker('test', server);
  const clients = new Clients(await listening(server));
  try {
    const accepted = await open(server, clients, 3);
    accepted[0]!.destroy();
    await closed(accepted[0]!);
    let done = false;
    void tracker.closed.then(() => (done = true));
    tracker.stopAccepting();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(done, false, 'resolved with two connections open');
    for (const s of accepted.slice(1)) s.destroy();
    await tracker.closed;
    assert.equal(tracker.size, 0);
  } finally {
    clients.child.kill('SIGKILL');
    server.close();
  }
});
