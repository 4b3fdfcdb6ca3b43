// The worker runtime on its own: a real worker process on real inherited
// sockets (bound by the test, which keeps the master's copy), driven over
// IPC as the master drives it. No root needed: 127.0.0.1 and ::1, port 0.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { isListening, tcpInfoQueue } from '../../src/sys/index.js';
import { APPS, ROOT } from '../harness/master.js';
import { TestWorker, type WorkerOptions } from '../harness/worker.js';

const LISTEN_AS = join(APPS, 'listen-as.js');
const SLOW_START = join(APPS, 'slow-start.js');
const T = { timeout: 30_000 };

const workers: TestWorker[] = [];
after(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
});

function start(options: WorkerOptions): TestWorker {
  const w = TestWorker.start(options);
  workers.push(w);
  return w;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

function get(url: string, options: https.RequestOptions = {}): Promise<Reply> {
  const lib = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.get(url, options, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, at: Date.now() }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url}: no answer in 10 s`)));
  });
}

const appLine = (w: TestWorker, msg: string) => w.lines().find((l) => l['msg'] === msg);

describe('a server app that calls listen() itself', () => {
  for (const form of ['port', 'options', 'port-host-cb'] as const) {
    it(`listen in the form "${form}" gets the inherited socket, with the configured backlog`, T, async () => {
      const x = start({ app: LISTEN_AS, sockets: [{ host: '127.0.0.1', backlog: 7 }], env: ([p]) => ({ LISTEN_FORM: form, PORT: String(p), HOST: '127.0.0.1' }) });
      await x.ready();
      const fd = x.listeners[0]!.fd;
      assert.equal(isListening(fd), true, 'the inherited socket is in LISTEN');
      assert.equal(tcpInfoQueue(fd).backlog, 7, 'backlog passed positionally (Node ignores it inside the options of an fd listen)');
      const r = await get(`http://${x.address()}/`);
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-handover-worker'], String(x.child.pid));
      const listening = await until(() => appLine(x, 'app-listening'));
      assert.deepEqual(listening?.['address'], { address: '127.0.0.1', family: 'IPv4', port: x.port() }, "server.address() is the configured one");
      if (form === 'port-host-cb') assert.ok(await until(() => appLine(x, 'app-callback')), 'the listen callback ran');
    });
  }

  it('a listen on a port handover was not configured for fails with an asynchronous error naming the configured addresses', T, async () => {
    const x = start({ app: LISTEN_AS, sockets: [{ host: '127.0.0.1' }], env: ([p]) => ({ LISTEN_FORM: 'wrong-first', PORT: String(p), WRONG_PORT: String(p === 65535 ? 1 : p! + 1) }) });
    await x.ready();
    const port = String(x.port());
    // The app's lines come on stdout, `ready` over IPC: either may arrive first.
    assert.equal((await until(() => appLine(x, 'app-listen-returned')))?.['threw'], false, 'listen() did not throw');
    const err = await until(() => appLine(x, 'app-listen-error'));
    assert.equal(err?.['code'], 'EADDRNOTAVAIL');
    assert.match(String(err?.['message']), new RegExp(`not configured for port \\d+; it serves 127\\.0\\.0\\.1:${port}`));
    assert.equal((await get(`http://${x.address()}/`)).status, 200, 'the second listen, on the right port, serves');
  });

  it('one listen(port) serves every configured address with that port (127.0.0.1 and ::1)', T, async () => {
    const x = start({ app: LISTEN_AS, sockets: [{ host: '127.0.0.1' }, { host: '::1', port: 'previous' }], env: ([p]) => ({ LISTEN_FORM: 'port', PORT: String(p) }) });
    await x.ready();
    assert.equal((await get(`http://127.0.0.1:${x.port()}/`)).status, 200);
    assert.equal((await get(`http://[::1]:${x.port()}/`)).status, 200);
    assert.ok(x.listeners.every((l) => isListening(l.fd)));
  });

  it('a second server on the same port (Fastify\'s ::1 for localhost) is refused with the missing address; the first serves', T, async () => {
    const x = start({ app: LISTEN_AS, sockets: [{ host: '127.0.0.1' }], env: ([p]) => ({ LISTEN_FORM: 'second-server', PORT: String(p), HOST: 'localhost', SECOND_HOST: '::1' }) });
    await x.ready();
    const err = await until(() => appLine(x, 'app-listen-error'));
    assert.equal(err?.['code'], 'EADDRNOTAVAIL');
    assert.match(String(err?.['message']), new RegExp(`listen ::1:${x.port()}: 127\\.0\\.0\\.1:${x.port()} is already served by another server`));
    assert.equal((await get(`http://${x.address()}/`)).status, 200);
    const warned = await until(() => x.lines().find((l) => l['level'] === 40 && String(l['msg']).includes('add the address to listen:')));
    assert.ok(warned, 'the worker logs which address is missing');
  });

  it('an app-owned server on a tls: address is refused (handover serves HTTPS there)', T, async () => {
    const y = start({ app: LISTEN_AS, sockets: [{ host: '127.0.0.1', tls: { cert: 'unused', key: 'unused' } }], env: ([p]) => ({ LISTEN_FORM: 'refused-then-exit', PORT: String(p), HOST: '127.0.0.1' }) });
    const exit = await y.exited;
    assert.equal(exit.code, 3, 'the app saw the error and exited');
    assert.match(String(appLine(y, 'app-listen-error')?.['message']), /a tls: address, where handover serves HTTPS itself/);
    assert.equal(isListening(y.listeners[0]!.fd), false);
  });
});

async function until<T>(probe: () => T | undefined, ms = 5_000): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('drain before ready', () => {
  // init takes 300 ms; the close hook 600 ms. Told to drain during init, the
  // worker must never listen on its socket (the master may have shut it
  // down: a socket shut down before it listened resets every connection).
  it('a handler app told to drain during init acks, runs close after init, exits 0 and never listens', T, async () => {
    const w = start({ app: SLOW_START, sockets: [{ host: '127.0.0.1' }], env: { INIT_MS: '300', CLOSE_MS: '600' } });
    assert.ok(await until(() => appLine(w, 'app-init-start'), 10_000), 'init started');
    await w.drain();
    const drained = await w.waitFor('drained');
    const exit = await w.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.equal(drained['connections'], 0);
    assert.equal(isListening(w.listeners[0]!.fd), false, 'the worker never put its socket in LISTEN');
    assert.equal(w.messages.some((m) => m.type === 'ready'), false);
    const init = appLine(w, 'app-init-done');
    const close = appLine(w, 'app-close');
    assert.ok(init && close && Number(close['at']) >= Number(init['at']), 'close ran after init finished');
  });

  // It loads, its close hook keeps the worker 600 ms, and its listen() comes at 200 ms.
  it('a server app told to drain before it listens never listens, even when it calls listen() afterwards', T, async () => {
    const x = start({ app: LISTEN_AS, sockets: [{ host: '127.0.0.1' }], env: ([p]) => ({ LISTEN_FORM: 'later', PORT: String(p), LISTEN_DELAY_MS: '200', CLOSE_MS: '600' }) });
    await x.drain();
    await x.waitFor('drained');
    assert.deepEqual(await x.exited, { code: 0, signal: null });
    assert.ok(appLine(x, 'app-close-done'), 'the close hook ran (and kept the worker past the app\'s listen)');
    assert.equal(isListening(x.listeners[0]!.fd), false);
  });
});

describe('lifecycle of a drain', () => {
  it('close(ctx) runs after the in-flight keep-alive response finished (with Connection: close), not at drain start', T, async () => {
    const w = start({ app: SLOW_START, sockets: [{ host: '127.0.0.1' }] });
    await w.ready();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    assert.equal((await get(`http://${w.address()}/`, { agent })).headers.connection, 'keep-alive');
    const slow = get(`http://${w.address()}/slow?ms=600`, { agent });
    await new Promise((r) => setTimeout(r, 150));
    const drainAt = Date.now();
    await w.drain();
    const reply = await slow;
    await w.waitFor('drained');
    agent.destroy();
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.connection, 'close', 'the in-flight response says Connection: close');
    // The app's line comes on stdout, the ack over IPC: either may arrive first.
    const close = await until(() => appLine(w, 'app-close'));
    assert.equal(close?.['inFlight'], 0, 'no request in flight when close ran');
    assert.equal(close?.['aborted'], true, 'ctx.signal had fired');
    // The response needed ~450 ms more after the drain began; the old order ran close at once.
    assert.ok(Number(close?.['at']) - drainAt >= 300, `close ran ${Number(close?.['at']) - drainAt} ms after the drain began`);
  });

  it('HTTPS: a keep-alive response in flight at drain start gets Connection: close', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'handover-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
      const tls = { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
      const w = start({ app: SLOW_START, sockets: [{ host: '127.0.0.1', tls }] });
      await w.ready();
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: tls.cert });
      const first = await get(`https://${w.address()}/`, { agent });
      assert.equal(first.headers.connection, 'keep-alive');
      const slow = get(`https://${w.address()}/slow?ms=600`, { agent });
      await new Promise((r) => setTimeout(r, 150));
      await w.drain();
      const reply = await slow;
      const drained = await w.waitFor('drained');
      agent.destroy();
      assert.equal(reply.status, 200);
      assert.equal(reply.headers.connection, 'close', 'the HTTPS response in flight at drain start says Connection: close');
      assert.equal(drained['connections'], 1);
      assert.equal(drained['killed'], 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('WebSockets (examples/websocket): setup attaches ws, upgrades count as connections, clients get 1001 at the drain', T, async () => {
    const w = start({ app: join(ROOT, 'examples/websocket/app.js'), sockets: [{ host: '127.0.0.1' }] });
    await w.ready();
    const clients = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<{ ws: WebSocket; first: string; code: Promise<number> }>((resolve, reject) => {
            const ws = new WebSocket(`ws://${w.address()}/`);
            const code = new Promise<number>((r) => ws.once('close', (c) => r(c)));
            ws.once('message', (data) => resolve({ ws, first: String(data), code }));
            ws.once('error', reject);
          }),
      ),
    );
    for (const c of clients) assert.equal(JSON.parse(c.first).worker, w.child.pid);
    await w.drain(5_000);
    const codes = await Promise.all(clients.map((c) => c.code));
    const drained = await w.waitFor('drained');
    assert.deepEqual(codes, [1001, 1001, 1001]);
    assert.equal(drained['connections'], 3, 'the upgraded sockets were counted');
    assert.equal(drained['killed'], 0);
  });

  it('setup(server, ctx) sees every server, and ctx.servers maps each address to it', T, async () => {
    const w = start({ app: join(APPS, 'servers.js'), sockets: [{ host: '127.0.0.1' }, { host: '::1' }] });
    await w.ready();
    const r = JSON.parse((await get(`http://[::1]:${w.port(1)}/`)).body) as { addresses: string[]; same: boolean; setups: number };
    assert.deepEqual(r, { addresses: [w.address(0), w.address(1)], same: true, setups: 2 });
  });
});
