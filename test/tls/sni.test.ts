// Several certificates on one address (SNI), client certificates, and
// session resumption across the workers of a generation, with the default
// rotation (a new generation). A master on port 0 in the test's own
// namespace; no root needed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HELLO, MasterProcess } from '../harness/master.js';
import { ask, resumeAcrossWorkers, servedBy } from './client.js';
import { CertStore } from './layouts.js';
import { issue, makeCa, type Issued } from './pki.js';

const ca = makeCa();
const dir = mkdtempSync(join(tmpdir(), 'handover-tlssni-'));
let nextSerial = 0x9000;
const named = (cn: string, names: string[]): Issued => issue(cn, { serial: ++nextSerial, issuer: ca, names });
const caFile = join(dir, 'clients-ca.pem');
writeFileSync(caFile, ca.certPem);

const stores = {
  default: new CertStore(join(dir, 'default'), 'rename', named('default', ['127.0.0.1', '127.0.0.2'])),
  a: new CertStore(join(dir, 'a'), 'rename', named('a.test', ['a.test'])),
  b: new CertStore(join(dir, 'b'), 'kubernetes', named('b.test', ['b.test'])),
  wild: new CertStore(join(dir, 'wild'), 'rename', named('wild', ['*.w.test'])),
};
const pair = (s: CertStore): string => `{ cert: ${s.cert}, key: ${s.key} }`;
const yaml =
  `app: ${HELLO}\nworkers: 2\nlisten:\n` +
  `  - address: 127.0.0.1:0\n    tls:\n      cert: ${stores.default.cert}\n      key: ${stores.default.key}\n` +
  `      sni:\n        a.test: ${pair(stores.a)}\n        b.test: ${pair(stores.b)}\n        "*.w.test": ${pair(stores.wild)}\n` +
  `  - address: 127.0.0.2:0\n    tls: { cert: ${stores.default.cert}, key: ${stores.default.key}, ca: ${caFile} }\n` +
  `reload: { watch: true, drain_timeout: 3s }\n`;

let started: Promise<{ master: MasterProcess; port: number; mtls: number }> | undefined;
function serve(): Promise<{ master: MasterProcess; port: number; mtls: number }> {
  started ??= (async () => {
    const master = MasterProcess.start({ yaml });
    await master.serving();
    const [first, second] = (await master.status()).listen.map((a) => Number(a.split(':')[1]));
    return { master, port: first ?? 0, mtls: second ?? 0 };
  })();
  return started;
}

after(async () => {
  const s = await started?.catch(() => undefined);
  await s?.master.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const serialAt = async (port: number, servername?: string, anyName = false): Promise<string> =>
  (await ask({ port, ca: ca.certPem, anyName, ...(servername ? { servername } : {}) })).serial;

describe('SNI, client certificates and tickets', () => {
  it('each server name gets its own certificate; rotating one leaves the others unchanged', { timeout: 30_000 }, async () => {
    const { master, port } = await serve();
    const before = {
      a: await serialAt(port, 'a.test'),
      b: await serialAt(port, 'B.Test'),
      w: await serialAt(port, 'x.w.test'),
      d: await serialAt(port),
      other: await serialAt(port, 'c.test', true),
    };
    assert.equal(before.a, '9002');
    assert.equal(before.b, '9003', 'names match case-insensitively');
    assert.equal(before.w, '9004', 'a one-label wildcard');
    assert.equal(before.d, '9001', 'no name: the default pair');
    assert.equal(before.other, '9001', 'an unknown name: the default pair');
    const from = master.logs.length;
    const next = named('a.test', ['a.test']);
    await stores.a.replace(next);
    await servedBy({ port, ca: ca.certPem, servername: 'a.test' }, next.serial);
    assert.equal(await serialAt(port, 'b.test'), before.b, 'b.test keeps its certificate');
    assert.equal(await serialAt(port, 'x.w.test'), before.w);
    assert.equal(await serialAt(port), before.d);
    // The new certificate is served once the new workers listen; the report follows at the cutover.
    const report = (await master.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('reload '), 10_000, from))['reload'] as
      | { trigger: string; listeners: { action: string }[]; tls: { rotate: string; certificates: { name: string; serial: string }[] } }
      | undefined;
    assert.equal(report?.trigger, 'tls');
    assert.deepEqual(report?.listeners.map((l) => l.action), ['handoff', 'handoff']);
    assert.equal(report?.tls.rotate, 'new-generation');
    assert.deepEqual(report?.tls.certificates.map((c) => [c.name, c.serial]), [['*', '9001'], ['a.test', next.serial], ['b.test', '9003'], ['*.w.test', '9004'], ['*', '9001']]);
    // The Kubernetes-style store of b.test, too.
    const b2 = named('b.test', ['b.test']);
    const fromB = master.logs.length;
    await stores.b.replace(b2);
    await servedBy({ port, ca: ca.certPem, servername: 'b.test' }, b2.serial);
    assert.equal(await serialAt(port, 'a.test'), next.serial);
    // Served once the new workers listen; the old ones stop at the cutover, which the report follows.
    await master.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('reload '), 10_000, fromB);
  });

  it('a ticket from one worker resumes on another worker of the generation, not on the next generation', { timeout: 30_000 }, async (t) => {
    const { master, port } = await serve();
    const resumed = await resumeAcrossWorkers({ port, ca: ca.certPem, servername: 'a.test' });
    t.diagnostic(JSON.stringify(resumed));
    assert.equal(resumed.other, true, 'resumed on a different worker pid of the same generation');
    assert.equal(resumed.same, true);
    // A ticket of this generation, presented to the next one: a full handshake.
    const ticket = (await ask({ port, ca: ca.certPem, servername: 'a.test' })).session;
    const next = named('a.test', ['a.test']);
    const from = master.logs.length;
    await stores.a.replace(next);
    await servedBy({ port, ca: ca.certPem, servername: 'a.test' }, next.serial);
    await master.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('reload '), 10_000, from);
    const later = await ask({ port, ca: ca.certPem, servername: 'a.test', ...(ticket ? { session: ticket } : {}) });
    assert.equal(later.reused, false, 'the previous generation\'s ticket is not accepted');
    assert.equal(later.serial, next.serial);
  });

  it('with a client CA, a client without a certificate is refused and one with a certificate it issued is served', { timeout: 30_000 }, async () => {
    const { mtls } = await serve();
    await assert.rejects(ask({ host: '127.0.0.2', port: mtls, ca: ca.certPem }), /certificate required|alert|socket hang up|ECONNRESET/i);
    const client = issue('client', { serial: 0x77, issuer: ca });
    const r = await ask({ host: '127.0.0.2', port: mtls, ca: ca.certPem, cert: client.certPem, key: client.keyPem });
    assert.equal(r.status, 200);
    const stranger = issue('stranger', { serial: 0x78, issuer: makeCa('another CA', 2) });
    await assert.rejects(ask({ host: '127.0.0.2', port: mtls, ca: ca.certPem, cert: stranger.certPem, key: stranger.keyPem }), /unknown ca|alert|ECONNRESET|hang up/i);
  });
});
