// How the worker reads an app's listen() arguments (as Node's net.Server
// does), which of them it answers, and what it says when an app does not
// listen on every configured address in time.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InheritedListeners, waitForListening } from '../../src/worker/inherited.js';
import { hostMatches, isWildcard, listenRequest } from '../../src/worker/listen-request.js';

const cb = (): void => {};

describe('listenRequest', () => {
  it('reads the TCP forms the way Node does', () => {
    const cases: [unknown[], { port: number; host: string | undefined; callback: boolean }][] = [
      [[3000], { port: 3000, host: undefined, callback: false }],
      [['3000'], { port: 3000, host: undefined, callback: false }],
      [[3000, cb], { port: 3000, host: undefined, callback: true }],
      [[3000, '127.0.0.1'], { port: 3000, host: '127.0.0.1', callback: false }],
      [[3000, '::1', 511, cb], { port: 3000, host: '::1', callback: true }],
      [[3000, undefined, cb], { port: 3000, host: undefined, callback: true }],
      [[{ port: 3000, host: 'localhost' }], { port: 3000, host: 'localhost', callback: false }],
      [[{ port: 3000 }, cb], { port: 3000, host: undefined, callback: true }],
      [[], { port: 0, host: undefined, callback: false }],
      [[cb], { port: 0, host: undefined, callback: true }],
      [[null], { port: 0, host: undefined, callback: false }],
      [[{ port: undefined }], { port: 0, host: undefined, callback: false }],
      [[0], { port: 0, host: undefined, callback: false }],
    ];
    for (const [args, want] of cases) {
      const r = listenRequest(args);
      assert.ok(r, `${JSON.stringify(args)} is a TCP request`);
      assert.deepEqual({ port: r.port, host: r.host, callback: r.callback !== undefined }, want, JSON.stringify(args));
    }
    const signal = new AbortController().signal;
    assert.equal(listenRequest([{ port: 1, signal }])?.signal, signal);
  });

  it('leaves pipes, handles, descriptors and invalid ports to Node', () => {
    for (const args of [['/tmp/app.sock'], [{ path: '/tmp/app.sock' }], [{ fd: 4 }], [{ fd: 4 }, 7], [{ handle: {} }], [{ _handle: {} }], [70000], [-1], [{ port: 1.5 }], [{ port: '' }]]) {
      assert.equal(listenRequest(args), undefined, JSON.stringify(args));
    }
  });

  it('wildcards and host matches', () => {
    assert.ok(isWildcard(undefined) && isWildcard('::') && isWildcard('0.0.0.0'));
    assert.equal(isWildcard('127.0.0.1'), false);
    assert.ok(hostMatches('localhost', '127.0.0.1') && hostMatches('localhost', '::1') && hostMatches('[::1]', '::1'));
    assert.equal(hostMatches('127.0.0.2', '127.0.0.1'), false);
  });
});

describe('waitForListening', () => {
  const listeners = [{ fd: 90, address: '127.0.0.1:3000', backlog: 511 }, { fd: 91, address: '[::1]:3000', backlog: 511 }];
  const events = { serve: () => {}, warn: () => {} };

  it('names the addresses an app that never listened lacks, and both ways out', async () => {
    const hints: string[] = [];
    await assert.rejects(
      waitForListening(new InheritedListeners(listeners, events), '/srv/app.js', (h) => hints.push(h), 100),
      /^Error: \/srv\/app\.js neither exports a request listener or \{ handler \} nor called listen\(3000\) for 127\.0\.0\.1:3000, \[::1\]:3000; waited 0\.1 s$/,
    );
    assert.deepEqual(hints, ['waiting for /srv/app.js to listen on 127.0.0.1:3000, [::1]:3000']);
  });

  it('resolves at once when nothing is left to listen on (told to stop before it listened)', async () => {
    const sockets = new InheritedListeners(listeners, events);
    sockets.stop();
    await waitForListening(sockets, '/srv/app.js', () => {}, 100);
    assert.deepEqual(sockets.missing(), []);
  });
});
