// sys/: the libc bindings, errno names and sockaddr encoding, on real
// descriptors of this process.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import {
  bind, close, constants as C, dupCloexec, encodeSockaddr, errnoName, formatIPv6, getppid, getsockname,
  isCloexec, isListening, libcName, listen, prctlGetPdeathsig, prctlSetPdeathsig, shutdown, socket,
  socketAddress, socketCookie, SyscallError, tcpInfoQueue,
} from '../../src/sys/index.js';

describe('errno', () => {
  it('names Linux errnos, preferring the socket spellings', () => {
    assert.equal(errnoName(98), 'EADDRINUSE');
    assert.equal(errnoName(11), 'EAGAIN');
    assert.equal(errnoName(95), 'EOPNOTSUPP');
    assert.equal(errnoName(107), 'ENOTCONN');
    assert.equal(errnoName(4242), 'ERRNO_4242');
  });

  it('SyscallError says call, target and code', () => {
    const e = new SyscallError('bind', 98, '0.0.0.0:8080');
    assert.equal(e.message, 'bind 0.0.0.0:8080: EADDRINUSE');
    assert.equal(e.name, 'SyscallError');
    assert.equal(new SyscallError('close', 9).message, 'close: EBADF');
    assert.equal('target' in new SyscallError('close', 9), false);
  });
});

describe('libc', () => {
  it('is glibc here', () => {
    assert.equal(libcName(), 'libc.so.6');
  });

  it('getppid() is the kernel’s answer', () => {
    assert.equal(getppid(), process.ppid);
  });

  it('PR_SET_PDEATHSIG round-trips (in a child, so this process keeps none)', () => {
    const code = `
      import { prctlGetPdeathsig, prctlSetPdeathsig } from './src/sys/index.ts';
      prctlSetPdeathsig('SIGTERM');
      const set = prctlGetPdeathsig();
      prctlSetPdeathsig(0);
      console.log(JSON.stringify([set, prctlGetPdeathsig()]));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      encoding: 'utf8',
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [15, 0]);
    assert.equal(typeof prctlGetPdeathsig, 'function');
    assert.equal(typeof prctlSetPdeathsig, 'function');
  });
});

describe('sockets', () => {
  it('socket → bind → getsockname → listen → TCP_INFO → shutdown → close', () => {
    const fd = socket(4);
    try {
      assert.ok(isCloexec(fd));
      bind(fd, socketAddress('127.0.0.1', 0, 4));
      const local = getsockname(fd);
      assert.equal(local.host, '127.0.0.1');
      assert.ok(local.port > 0);
      assert.equal(local.text, `127.0.0.1:${local.port}`);
      assert.equal(isListening(fd), false);
      listen(fd, 5);
      assert.equal(isListening(fd), true);
      assert.deepEqual(tcpInfoQueue(fd), { queued: 0, backlog: 5 });
      assert.equal(typeof socketCookie(fd), 'bigint');
      shutdown(fd);
      assert.equal(isListening(fd), false);
      assert.throws(() => shutdown(fd, C.SHUT_RDWR, 'x'), { message: 'shutdown x: ENOTCONN' });
    } finally {
      close(fd);
    }
    assert.throws(() => close(fd), { message: `close fd ${fd}: EBADF`, code: 'EBADF', errno: 9 });
  });

  it('a duplicate is the same socket (same cookie) and keeps CLOEXEC', () => {
    const fd = socket(6);
    const copy = dupCloexec(fd);
    try {
      assert.notEqual(copy, fd);
      assert.ok(isCloexec(copy));
      assert.equal(socketCookie(copy), socketCookie(fd));
    } finally {
      close(copy);
      close(fd);
    }
  });

  it('encodes sockaddr_in and sockaddr_in6 in network byte order', () => {
    assert.equal(encodeSockaddr(socketAddress('127.0.0.1', 8080, 4)).toString('hex'), '02001f907f0000010000000000000000');
    const sa6 = encodeSockaddr(socketAddress('2001:db8::1', 443, 6));
    assert.equal(sa6.length, 28);
    assert.equal(sa6.toString('hex'), `0a0001bb00000000${'20010db8000000000000000000000001'}00000000`);
    assert.equal(encodeSockaddr(socketAddress('[::1]', 1, 6)).subarray(8, 24).toString('hex'), `${'0'.repeat(30)}01`);
    assert.equal(encodeSockaddr(socketAddress('fe80::1%1', 1, 6)).readUInt32LE(24), 1);
    assert.throws(() => encodeSockaddr(socketAddress('localhost', 80, 4)), { message: 'inet_pton localhost:80: EINVAL' });
    assert.throws(() => encodeSockaddr(socketAddress('::1', 80, 4)), { code: 'EINVAL' });
    assert.throws(() => encodeSockaddr(socketAddress('1.2.3.4', 70000, 4)), { message: 'bind 1.2.3.4:70000: EINVAL' });
  });

  it('formats IPv6 like RFC 5952 (and like Node)', () => {
    const cases = ['::', '::1', '2001:db8::1', '2001:db8:0:1:1:1:1:1', '2001:0:0:1::1', 'fe80::1:0:0:1', '1::', '::ffff:10.0.0.1', '2001:db8:aa:bb:cc:dd:ee:ff'];
    for (const text of cases) {
      const bytes = encodeSockaddr(socketAddress(text, 0, 6)).subarray(8, 24);
      assert.equal(formatIPv6(bytes), text);
      assert.equal(formatIPv6(bytes), new net.SocketAddress({ address: text, family: 'ipv6' }).address);
    }
  });
});
