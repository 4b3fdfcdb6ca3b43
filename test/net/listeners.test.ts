// The master's listeners on real sockets in this process: bound with
// SO_REUSEPORT and CLOEXEC but not listening, listened on by a Node server
// the way a worker does, retired, and never leaked.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import type { SocketAddress } from '../../src/config/types.js';
import {
  findForeignListeners, listenerSpec, openListener, openListeners, readListeningTable, readTcpTable, ReuseportGroup, sameSpec, socketAddress,
  specKey, SyscallError, TCP_LISTEN,
} from '../../src/net/index.js';
import type { GroupChange, Listener, ListenerSpec } from '../../src/net/index.js';
import { constants as C, dupCloexec, getsockoptInt, listen } from '../../src/sys/index.js';

const BACKLOG = 7;
const O_CLOEXEC = 0o2000000;
const HAS_IPV6 = existsSync('/proc/net/if_inet6') && readFileSync('/proc/net/if_inet6', 'utf8').includes(' lo');

const v4 = (host: string, port = 0): SocketAddress => socketAddress(host, port, 4);
const v6 = (host: string, port = 0): SocketAddress => socketAddress(host, port, 6);
const spec = (address: SocketAddress, extra: Partial<Omit<ListenerSpec, 'address'>> = {}): ListenerSpec =>
  listenerSpec({ address, backlog: BACKLOG, ...extra });

const fdCount = (): number => readdirSync('/proc/self/fd').length;

/** Flags of a descriptor from /proc/self/fdinfo (octal, as the kernel prints them). */
function fdFlags(fd: number): number {
  const m = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  assert.ok(m?.[1], `no flags in /proc/self/fdinfo/${fd}`);
  return parseInt(m[1], 8);
}

/** Listens on a duplicate of the listener's fd, as a worker does with the copy it inherits. */
function serve(listener: Listener, onConnection: (s: net.Socket) => void = (s) => s.end('hi')): Promise<net.Server> {
  const server = net.createServer(onConnection);
  // Positional backlog: Node 20 ignores `backlog` inside the options object when listening on an fd.
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd: dupCloexec(listener.fd) }, listener.spec.backlog, () => resolve(server));
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function fetchGreeting(address: SocketAddress): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const socket = net.connect({ host: address.host, port: address.port });
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no answer from ${address.text}`)));
    socket.on('data', (d) => (data += d.toString()));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

function listenEntries(port: number) {
  return readTcpTable().filter((e) => e.state === TCP_LISTEN && e.localPort === port);
}

const cleanup: Array<() => unknown> = [];
after(async () => {
  for (const release of cleanup.reverse()) await release();
});

describe('openListeners', () => {
  it('opens N bound, non-listening, CLOEXEC, SO_REUSEPORT sockets sharing the resolved port', () => {
    const ls = openListeners(spec(v4('127.0.0.1')), 3);
    cleanup.push(() => ls.forEach((l) => l.retire()));
    assert.equal(ls.length, 3);
    const port = ls[0]?.port ?? 0;
    assert.ok(port > 0, 'port 0 was resolved');
    for (const l of ls) {
      assert.equal(l.port, port);
      assert.equal(l.address.text, `127.0.0.1:${port}`);
      assert.equal(l.isListening(), false);
      assert.equal(l.queue(), null);
      assert.ok((fdFlags(l.fd) & O_CLOEXEC) !== 0, `fd ${l.fd} has O_CLOEXEC`);
      assert.equal(getsockoptInt(l.fd, C.SOL_SOCKET, C.SO_REUSEPORT), 1);
      assert.equal(getsockoptInt(l.fd, C.SOL_SOCKET, C.SO_REUSEADDR), 1);
    }
    assert.equal(new Set(ls.map((l) => l.fd)).size, 3);
    assert.equal(listenEntries(port).length, 0, 'nothing in LISTEN before a worker listens');
  });

  it('a Node server listening on each copy puts all of them in LISTEN with the configured backlog', async () => {
    const ls = openListeners(spec(v4('127.0.0.1')), 3);
    const servers = await Promise.all(ls.map((l) => serve(l)));
    cleanup.push(() => ls.forEach((l) => l.retire()));
    const port = ls[0]?.port ?? 0;
    for (const l of ls) {
      assert.equal(l.isListening(), true);
      assert.deepEqual(l.queue(), { queued: 0, backlog: BACKLOG });
    }
    assert.equal(listenEntries(port).length, 3, 'three LISTEN sockets in /proc/self/net/tcp');
    for (let i = 0; i < 6; i++) assert.equal(await fetchGreeting(ls[0]?.address ?? v4('127.0.0.1', port)), 'hi');

    // The servers close their copies; the master's copies keep the sockets in LISTEN (FACTS.md "must know" 1)…
    await Promise.all(servers.map(closeServer));
    assert.deepEqual(ls.map((l) => l.isListening()), [true, true, true]);
    // …until the master shuts them down.
    for (const l of ls) l.shutdown();
    assert.deepEqual(ls.map((l) => l.isListening()), [false, false, false]);
    assert.equal(listenEntries(port).length, 0);
    for (const l of ls) l.shutdown(); // idempotent
  });

  it('binds a given port for a replacement socket (openListener) and for a later generation', async () => {
    const s = spec(v4('127.0.0.1'));
    const [first] = openListeners(s, 1);
    assert.ok(first);
    cleanup.push(() => first.retire());
    const replacement = openListener(s, first.port);
    const next = openListeners(s, 2, first.port);
    cleanup.push(() => [replacement, ...next].forEach((l) => l.retire()));
    assert.deepEqual([replacement.port, ...next.map((l) => l.port)], [first.port, first.port, first.port]);
  });

  it('opens IPv6 sockets with IPV6_V6ONLY as the spec says', { skip: HAS_IPV6 ? false : 'no IPv6 on lo' }, () => {
    const only = openListeners(spec(v6('::1'), { v6only: true }), 2);
    const dual = openListeners(spec(v6('::'), { v6only: false }), 1);
    cleanup.push(() => [...only, ...dual].forEach((l) => l.retire()));
    assert.equal(only[0]?.port, only[1]?.port);
    assert.match(only[0]?.address.text ?? '', /^\[::1\]:\d+$/);
    for (const l of only) assert.equal(getsockoptInt(l.fd, C.IPPROTO_IPV6, C.IPV6_V6ONLY), 1);
    assert.equal(getsockoptInt(dual[0]?.fd ?? -1, C.IPPROTO_IPV6, C.IPV6_V6ONLY), 0);
  });

  it('fails with a SyscallError naming bind, the address and EADDRINUSE when a plain server holds the port', async () => {
    const plain = net.createServer();
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => closeServer(plain));
    const port = (plain.address() as net.AddressInfo).port;
    const before = fdCount();
    assert.throws(
      () => openListeners(spec(v4('127.0.0.1', port)), 3),
      (err: unknown) => {
        assert.ok(err instanceof SyscallError);
        assert.equal(err.message, `bind 127.0.0.1:${port}: EADDRINUSE`);
        assert.equal(err.syscall, 'bind');
        assert.equal(err.code, 'EADDRINUSE');
        assert.equal(err.errno, 98);
        assert.equal(err.target, `127.0.0.1:${port}`);
        return true;
      },
    );
    assert.equal(fdCount(), before, 'the failed attempt left no descriptor open');
  });

  it('closes what it opened when a bind fails', () => {
    const before = fdCount();
    for (let i = 0; i < 50; i++) {
      // 192.0.2.0/24 is TEST-NET-1: not an address of this machine.
      assert.throws(() => openListeners(spec(v4('192.0.2.1', 1234)), 3), { code: 'EADDRNOTAVAIL' });
    }
    assert.equal(fdCount(), before);
  });
});

describe('Listener', () => {
  it('close() and retire() are idempotent; a closed listener throws on use', () => {
    const [l] = openListeners(spec(v4('127.0.0.1')), 1);
    assert.ok(l);
    l.shutdown(); // never listened: ENOTCONN, ignored
    l.close();
    l.close();
    l.retire();
    assert.equal(l.closed, true);
    assert.throws(() => l.fd, /closed/);
    assert.throws(() => l.isListening(), /closed/);
    assert.throws(() => l.shutdown(), /closed/);
  });

  it('leaks no descriptor over 200 open/retire cycles', () => {
    const s = spec(v4('127.0.0.1'));
    const before = fdCount();
    for (let i = 0; i < 200; i++) {
      const ls = openListeners(s, 3);
      for (const l of ls) l.close();
      for (const l of ls) l.retire();
    }
    assert.equal(fdCount(), before);
  });
});

describe('ReuseportGroup', () => {
  it('records the kernel\'s join order, not the order listeners are reported in; a leave moves the last member into its slot', () => {
    const hosts: [string, 4 | 6][] = [['127.0.0.1', 4], ...(HAS_IPV6 ? [['::1', 6] as [string, 6]] : [])];
    for (const [host, family] of hosts) {
      const address = socketAddress(host, 0, family);
      const group = new ReuseportGroup(address);
      const ls = group.openMany(spec(address), 4);
      const changes: string[] = [];
      const name = (l: Listener): number => ls.indexOf(l);
      group.steering = { leaving: (l) => changes.push(`leaving ${name(l)}`), changed: (c: GroupChange) => changes.push(`${c.kind} ${name(c.listener)}`) };
      try {
        // Workers listen in the order they boot, and say ready in another.
        for (const i of [2, 0, 3, 1]) listen(ls[i]!.fd, BACKLOG);
        for (const l of ls) l.markListening();
        assert.deepEqual(group.members.map(name), [2, 0, 3, 1], `IPv${family}: the order the kernel has`);
        ls[0]!.retire();
        assert.deepEqual(group.members.map(name), [2, 1, 3], `IPv${family}: the last member moved into slot 1`);
        ls[3]!.close(); // the master's copy is the last holder: it leaves too
        assert.deepEqual(group.members.map(name), [2, 1]);
        assert.deepEqual(changes, ['joined 2', 'joined 0', 'joined 3', 'joined 1', 'leaving 0', 'left 0', 'left 3']);
      } finally {
        for (const l of ls) l.close();
      }
      assert.deepEqual(group.members, []);
    }
  });

  it('a socket that joined unreported is recorded before it leaves, so the leave is modelled where the kernel makes it', () => {
    const address = socketAddress('127.0.0.1', 0, 4);
    const group = new ReuseportGroup(address);
    const ls = group.openMany(spec(address), 3);
    try {
      listen(ls[0]!.fd, BACKLOG);
      ls[0]!.markListening();
      listen(ls[1]!.fd, BACKLOG); // its worker dies before it says ready
      listen(ls[2]!.fd, BACKLOG);
      ls[1]!.retire();
      assert.deepEqual(group.members.map((l) => ls.indexOf(l)), [0, 2], 'socket 2 (joined last) took slot 1');
    } finally {
      for (const l of ls) l.close();
    }
  });
});

describe('readListeningTable', () => {
  // It stops at the first row that is not LISTEN: the kernel prints the
  // listening hash before the connections. Listeners made after hundreds of
  // connections (more than one 64 KiB read of rows) must still be found.
  it('finds every LISTEN row readTcpTable finds, listeners made after 400 connections included, and nothing else', async () => {
    const server = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const clients = await Promise.all(Array.from({ length: 400 }, () => new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => resolve(c));
      c.on('error', reject);
    })));
    const later = await Promise.all([0, 1].map(() => new Promise<net.Server>((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    })));
    try {
      const ours = new Set([server, ...later].map((s) => (s.address() as net.AddressInfo).port));
      const full = readTcpTable();
      assert.ok(full.length * 150 > 64 * 1024, `the table is longer than one read (${full.length} rows)`);
      const listening = readListeningTable();
      assert.ok(listening.every((e) => e.state === TCP_LISTEN), 'only LISTEN rows');
      const key = (e: { localPort: number; inode: number }): string => `${e.localPort}/${e.inode}`;
      const mine = (rows: typeof full): string[] => rows.filter((e) => e.state === TCP_LISTEN && ours.has(e.localPort)).map(key).sort();
      assert.deepEqual(mine(listening), mine(full));
      assert.equal(mine(listening).length, 3);
    } finally {
      for (const c of clients) c.destroy();
      for (const s of [server, ...later]) s.close();
    }
  });
});

describe('findForeignListeners', () => {
  it("finds a plain server on the port, with this process's pid and command", async () => {
    const plain = net.createServer();
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => closeServer(plain));
    const port = (plain.address() as net.AddressInfo).port;

    const start = performance.now();
    const found = findForeignListeners(v4('127.0.0.1', port));
    const ms = performance.now() - start;
    assert.equal(found.length, 1);
    assert.equal(found[0]?.local, `127.0.0.1:${port}`);
    assert.equal(found[0]?.pid, process.pid);
    assert.equal(found[0]?.command, 'node');
    assert.ok(ms < 1_000, `took ${ms} ms`);

    // Wildcards overlap everything of their family, and :: is taken to cover IPv4 too.
    assert.equal(findForeignListeners(v4('0.0.0.0', port)).length, 1);
    assert.equal(findForeignListeners(v6('::', port)).length, 1);
    assert.equal(findForeignListeners(v6('::ffff:127.0.0.1', port)).length, 1);
    assert.equal(findForeignListeners(v4('127.0.0.2', port)).length, 0);
    assert.equal(findForeignListeners(v4('0.0.0.0', 0)).length, 0);
  });

  // Node 24 names its main thread "MainThread", which is what /proc/<pid>/comm
  // shows; a child that renames its main thread stands in for it on any Node.
  for (const [what, setup, expected] of [
    ['a renamed main thread', "require('fs').writeFileSync('/proc/self/comm', 'MainThread')", 'node'],
    ['a rewritten process title', "process.title = 'myapp: master'", 'myapp: master'],
  ] as const) {
    it(`names the program of ${what} by its command line`, async () => {
      const script = `${setup}; const s = require('net').createServer().listen(0, '127.0.0.1', () => console.log(s.address().port));`;
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      cleanup.push(() => child.kill('SIGKILL'));
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      const found = findForeignListeners(v4('127.0.0.1', Number(line.toString().trim())));
      assert.deepEqual(found.map((f) => [f.pid, f.command]), [[child.pid, expected]]);
    });
  }

  it('finds a wildcard listener when asked about a specific address', async () => {
    const wild = net.createServer();
    await new Promise<void>((resolve) => wild.listen(0, '0.0.0.0', resolve));
    cleanup.push(() => closeServer(wild));
    const port = (wild.address() as net.AddressInfo).port;
    const found = findForeignListeners(v4('127.0.0.1', port));
    assert.deepEqual(found.map((f) => [f.local, f.pid]), [[`0.0.0.0:${port}`, process.pid]]);
  });

  it('does not count bound, non-listening sockets', () => {
    const ls = openListeners(spec(v4('127.0.0.1')), 2);
    cleanup.push(() => ls.forEach((l) => l.retire()));
    assert.deepEqual(findForeignListeners(v4('127.0.0.1', ls[0]?.port ?? 0)), []);
  });
});

describe('ListenerSpec', () => {
  it('is frozen, and compares by address text, backlog, v6only and tls', () => {
    const a = spec(v4('127.0.0.1', 8080));
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.address));
    assert.equal(specKey(a), '127.0.0.1:8080 backlog=7');
    assert.ok(sameSpec(a, spec(v4('127.0.0.1', 8080))));
    assert.ok(!sameSpec(a, spec(v4('127.0.0.1', 8081))));
    assert.ok(!sameSpec(a, spec(v4('127.0.0.1', 8080), { tls: true })));
    assert.ok(!sameSpec(a, spec(v4('127.0.0.1', 8080), { backlog: 511 })));
    const b = spec(v6('::', 443), { v6only: true, tls: true });
    assert.equal(specKey(b), '[::]:443 backlog=7 v6only tls');
    assert.ok(!sameSpec(b, spec(v6('::', 443), { tls: true })));
    assert.equal(spec(v4('0.0.0.0', 80), { v6only: true }).v6only, false, 'v6only means nothing for IPv4');
    assert.throws(() => spec(v4('0.0.0.0', 80), { backlog: 0 }), RangeError);
  });
});
