// TLS validation, in process: each way a certificate set can be wrong is
// refused with the file and the reason, and nothing of a private key leaks
// into messages or dumps. Certificates are made by test/tls/pki.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, parseConfig, type Config } from '../../src/config/index.js';
import { specsOf } from '../../src/master/generation.js';
import { planListeners } from '../../src/master/reload-plan.js';
import { parseMasterMessage } from '../../src/protocol/worker.js';
import { ExpiryMonitor, expiryWarnings } from '../../src/tls/expiry.js';
import { loadTlsMaterial, loadTlsPair, sameMaterial, TlsError } from '../../src/tls/material.js';
import { rotatesInPlace, workerTls } from '../../src/tls/payload.js';
import { SniTable } from '../../src/tls/sni.js';
import { ROOT, until } from '../harness/master.js';
import { nobodyCannotRead } from '../harness/nobody.js';
import { days, issue, makeCa, type Issued } from './pki.js';

const dir = mkdtempSync(join(tmpdir(), 'handover-tlsv-'));
after(() => rmSync(dir, { recursive: true, force: true }));
chmodSync(dir, 0o755);
writeFileSync(join(dir, 'app.js'), 'export default (req, res) => res.end("ok");\n');

const ca = makeCa();
let n = 0;
function files(cert: string, key: string): { cert: string; key: string } {
  const id = ++n;
  const paths = { cert: join(dir, `c${id}.pem`), key: join(dir, `k${id}.pem`) };
  writeFileSync(paths.cert, cert);
  writeFileSync(paths.key, key);
  return paths;
}
const leaf = (serial: number, extra: Partial<Parameters<typeof issue>[1]> = {}): Issued =>
  issue('localhost', { serial, issuer: ca, names: ['localhost', '127.0.0.1'], ...extra });

/** The TlsError `fn` throws (fails the test when it throws nothing or something else). */
function refusal(fn: () => unknown): TlsError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TlsError, `expected a TlsError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a TlsError');
}

function config(yaml: string): Config {
  const file = join(dir, `cfg${++n}.yaml`);
  return parseConfig(`app: app.js\n${yaml}`, file);
}

describe('tls validation', () => {
  it('loads a good pair; the key is decrypted, not enumerable, and in no dump', () => {
    const l = leaf(0x1001);
    const pair = loadTlsPair(files(l.certPem, l.keyPem));
    assert.equal(pair.chain[0]?.serial, '1001');
    assert.match(pair.key, /^-----BEGIN PRIVATE KEY-----/);
    assert.ok(!Object.keys(pair).includes('key'));
    const body = l.keyPem.split('\n')[1] ?? '';
    assert.ok(body.length > 20 && !JSON.stringify(pair).includes(body) && !JSON.stringify(pair).includes(pair.key.split('\n')[1] ?? 'x'));
  });

  it('refuses a key that belongs to another certificate, naming both files', () => {
    const a = leaf(0x1002);
    const b = leaf(0x1003);
    const p = files(a.certPem, b.keyPem);
    const e = refusal(() => loadTlsPair(p));
    assert.equal(e.message, `${p.key}: the private key does not match the certificate ${p.cert} (CN=localhost, serial 1002)`);
  });

  it('refuses a truncated PEM and an empty file as possibly still being written', () => {
    const l = leaf(0x1004);
    const cut = files(l.certPem.slice(0, l.certPem.length / 2), l.keyPem);
    assert.match(refusal(() => loadTlsPair(cut)).message, /truncated PEM: the "BEGIN CERTIFICATE" block at line 1 has no END line \(still being written\?\)/);
    const empty = files('', l.keyPem);
    assert.match(refusal(() => loadTlsPair(empty)).message, new RegExp(`^${empty.cert}: the certificate file is empty`));
    const cutKey = files(l.certPem, l.keyPem.slice(0, 60));
    assert.match(refusal(() => loadTlsPair(cutKey)).message, new RegExp(`^${cutKey.key}: truncated PEM`));
    const garbage = files('hello\n', l.keyPem);
    assert.match(refusal(() => loadTlsPair(garbage)).message, /no PEM certificate in the file/);
  });

  it('refuses certificates that expired or are not valid yet, the chain included', () => {
    const old = leaf(0x1005, { notBefore: new Date(Date.now() - days(30)), notAfter: new Date(Date.now() - days(1)) });
    assert.match(refusal(() => loadTlsPair(files(old.certPem, old.keyPem))).message, /certificate 1 \(CN=localhost, serial 1005\) expired on 20\d\d-/);
    const future = leaf(0x1006, { notBefore: new Date(Date.now() + days(1)) });
    assert.match(refusal(() => loadTlsPair(files(future.certPem, future.keyPem))).message, /is not valid before .* \(check the clock\)/);
    const oldCa = issue('old intermediate', { serial: 9, ca: true, issuer: ca, notBefore: new Date(Date.now() - days(9)), notAfter: new Date(Date.now() - days(2)) });
    const under = issue('localhost', { serial: 0x1007, issuer: oldCa, notBefore: new Date(Date.now() - days(3)) });
    assert.match(refusal(() => loadTlsPair(files(under.certPem + oldCa.certPem, under.keyPem))).message, /certificate 2 \(CN=old intermediate, serial 09\) expired/);
  });

  it('refuses a missing or unreadable file with the errno', async (t) => {
    const l = leaf(0x1008);
    const missing = { cert: join(dir, 'nope.pem'), key: files(l.certPem, l.keyPem).key };
    assert.equal(refusal(() => loadTlsPair(missing)).message, `${missing.cert}: cannot read the certificate: ENOENT (not found)`);
    const locked = files(l.certPem, l.keyPem);
    chmodSync(locked.key, 0o000);
    if (process.getuid?.() !== 0) {
      assert.match(refusal(() => loadTlsPair(locked)).message, /cannot read the private key: EACCES \(permission denied for uid \d+\)/);
      return;
    }
    // Root reads any file: ask as nobody, from the built module.
    const MODULE = join(ROOT, 'dist/tls/material.js');
    const why = nobodyCannotRead(MODULE);
    if (why !== undefined) {
      t.skip(why);
      return;
    }
    const r = spawnSync(process.execPath, ['--input-type=module', '-e',
      `const m = await import(${JSON.stringify(MODULE)});
       try { m.loadTlsPair(${JSON.stringify(locked)}); console.log('read'); } catch (e) { console.log(e.message); }`], { uid: 65534, gid: 65534, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), `${locked.key}: cannot read the private key: EACCES (permission denied for uid 65534)`);
  });

  it('wants the chain in order, leaf first', () => {
    const mid = issue('intermediate', { serial: 7, ca: true, issuer: ca });
    const l = issue('localhost', { serial: 0x1009, issuer: mid, names: ['localhost'] });
    const good = loadTlsPair(files(l.certPem + mid.certPem, l.keyPem));
    assert.deepEqual(good.chain.map((c) => c.subject), ['CN=localhost', 'CN=intermediate']);
    assert.match(refusal(() => loadTlsPair(files(mid.certPem + l.certPem, l.keyPem))).message, /belongs to certificate 2, not to the first: put the leaf first/);
    assert.match(refusal(() => loadTlsPair(files(l.certPem + ca.certPem + mid.certPem, l.keyPem))).message, /chain out of order: certificate 2 \(CN=handover test CA, serial 01\) did not issue certificate 1/);
  });

  it('decrypts an encrypted key with its passphrase, and says what is wrong without one', () => {
    const l = leaf(0x100a);
    const enc = l.key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'correct horse' }).toString();
    const p = files(l.certPem, enc);
    assert.match(refusal(() => loadTlsPair(p)).message, /the private key is encrypted: set passphrase/);
    // About one wrong passphrase in 256 gets past the padding check and fails later, in the decoder: try many.
    for (let i = 0; i < 1_000; i++) {
      assert.match(refusal(() => loadTlsPair({ ...p, passphrase: `wrong ${i}` })).message, /cannot decrypt the private key: wrong passphrase/, `passphrase "wrong ${i}"`);
    }
    const pair = loadTlsPair({ ...p, passphrase: 'correct horse' });
    assert.match(pair.key, /^-----BEGIN PRIVATE KEY-----/);
    assert.ok(!JSON.stringify(pair).includes('correct horse'));
  });

  it('loads SNI pairs and a client CA per address, warns of names not covered, and lists every problem with its key', () => {
    const a = issue('a.test', { serial: 0xa1, issuer: ca, names: ['a.test'] });
    const w = issue('wild', { serial: 0xb1, issuer: ca, names: ['*.b.test'] });
    const d = leaf(0x100b);
    const pa = files(a.certPem, a.keyPem);
    const pw = files(w.certPem, w.keyPem);
    const pd = files(d.certPem, d.keyPem);
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    const cfg = config(
      `listen:\n  - address: 127.0.0.1:0\n    http2: true\n    tls:\n      cert: ${pd.cert}\n      key: ${pd.key}\n      ca: ca.pem\n` +
        `      sni:\n        A.Test: { cert: ${pa.cert}, key: ${pa.key} }\n        "*.b.test": { cert: ${pw.cert}, key: ${pw.key} }\n        c.test: { cert: ${pa.cert}, key: ${pa.key} }\n`,
    );
    const m = loadTlsMaterial(cfg).get('127.0.0.1:0');
    assert.ok(m);
    assert.deepEqual(m.sni.map((s) => [s.name, s.pair.chain[0]?.serial]), [['a.test', 'A1'], ['*.b.test', 'B1'], ['c.test', 'A1']]);
    assert.equal(m.ca?.certs[0]?.subject, 'CN=handover test CA');
    assert.deepEqual(m.warnings, [`127.0.0.1:0: the certificate ${pa.cert} (CN=a.test) does not cover the server name c.test; clients will refuse it`]);
    const payload = workerTls(m);
    assert.equal(payload.http2, true);
    assert.equal(payload.sni.length, 3);
    assert.match(payload.key, /BEGIN PRIVATE KEY/);

    const bad = leaf(0x100c);
    const pb = files(bad.certPem, a.keyPem);
    const two = config(
      `listen:\n  - address: 127.0.0.1:0\n    tls: { cert: ${pb.cert}, key: ${pb.key}, sni: { a.test: { cert: ${pa.cert}, key: ${pd.key} } } }\n` +
        `  - address: 127.0.0.1:1\n    tls: { cert: ${pd.cert}, key: ${pd.key}, ca: ${pd.key} }\n`,
    );
    const e = refusal(() => loadTlsMaterial(two));
    assert.deepEqual(e.problems.map((p) => [p.key, p.file]), [
      ['listen.0.tls.key', pb.key],
      ['listen.0.tls.sni.a.test.key', pd.key],
      ['listen.1.tls.ca', pd.key],
    ]);
    assert.equal(e.message.split('\n').length, 3);
  });

  it('tells changed material from the same', () => {
    const l = leaf(0x100d);
    const p = files(l.certPem, l.keyPem);
    const cfg = config(`listen:\n  - address: 127.0.0.1:0\n    tls: { cert: ${p.cert}, key: ${p.key} }\n`);
    const first = loadTlsMaterial(cfg);
    assert.ok(sameMaterial(first, loadTlsMaterial(cfg)));
    const next = leaf(0x100e);
    writeFileSync(p.cert, next.certPem);
    writeFileSync(p.key, next.keyPem);
    const second = loadTlsMaterial(cfg);
    assert.ok(!sameMaterial(first, second));
    const inPlace = config(`listen:\n  - address: 127.0.0.1:0\n    tls: { cert: ${p.cert}, key: ${p.key} }\ntls: { rotate: in-place }\n`);
    assert.equal(rotatesInPlace(inPlace, inPlace, first, second), true);
    assert.equal(rotatesInPlace(inPlace, inPlace, second, second), false, 'nothing changed: an ordinary reload');
    assert.equal(rotatesInPlace(cfg, cfg, first, second), false, 'new-generation is the default');
    const other = config(`workers: 3\nlisten:\n  - address: 127.0.0.1:0\n    tls: { cert: ${p.cert}, key: ${p.key} }\ntls: { rotate: in-place }\n`);
    assert.equal(rotatesInPlace(inPlace, other, first, second), false, 'the configuration changed too');
  });
});

describe('expiry warnings', () => {
  it('warn within warn_before, naming address, file and serial, and repeat on the monitor', async () => {
    const soon = leaf(0x2001, { notAfter: new Date(Date.now() + days(5) + 60_000) });
    const p = files(soon.certPem, soon.keyPem);
    const cfg = config(`listen:\n  - address: 127.0.0.1:0\n    tls: { cert: ${p.cert}, key: ${p.key} }\n`);
    assert.equal(cfg.tls.warnBeforeMs, days(14));
    const m = loadTlsMaterial(cfg);
    const w = expiryWarnings(m, cfg.tls.warnBeforeMs);
    assert.equal(w.length, 1);
    assert.match(w[0] ?? '', new RegExp(`^127\\.0\\.0\\.1:0: certificate ${p.cert} \\(CN=localhost, serial 2001\\) expires in 5 days, on 20.*; renew it$`));
    assert.deepEqual(expiryWarnings(m, days(4)), []);
    const seen: string[] = [];
    const monitor = new ExpiryMonitor(() => ({ materials: m, warnBeforeMs: days(14) }), (x) => seen.push(x), 20);
    await until(() => (seen.length >= 2 ? true : undefined), 5_000, 'the monitor to repeat the warning', 10);
    monitor.close();
    const count = seen.length;
    assert.equal(seen[1], w[0]);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(seen.length, count, 'and stopped once closed');
  });
});

describe('sni table', () => {
  it('matches exact names first, then a one-label wildcard, case-insensitively', () => {
    const t = new SniTable([['a.test', 1], ['*.b.test', 2], ['x.b.test', 3]]);
    assert.equal(t.lookup('A.TEST'), 1);
    assert.equal(t.lookup('a.test.'), 1);
    assert.equal(t.lookup('y.b.test'), 2);
    assert.equal(t.lookup('x.b.test'), 3);
    assert.equal(t.lookup('b.test'), undefined);
    assert.equal(t.lookup('z.y.b.test'), undefined);
    assert.equal(t.lookup('other'), undefined);
  });
});

describe('tls configuration and protocol', () => {
  it('validates the new keys with located errors', () => {
    const l = leaf(0x3001);
    const p = files(l.certPem, l.keyPem);
    const ok = config(`listen:\n  - address: 127.0.0.1:0\n    http2: true\n    tls: { cert: ${p.cert}, key: ${p.key} }\ntls: { warn_before: 30d, pair_wait: 2s }\n`);
    assert.deepEqual(ok.tls, { rotate: 'new-generation', warnBeforeMs: days(30), pairWaitMs: 2000 });
    assert.equal(ok.listen[0]?.http2, true);
    const cases: [string, RegExp][] = [
      ['listen:\n  - address: 127.0.0.1:0\n    http2: true\n', /:4:\d+: listen\.0\.http2: needs tls on this address/],
      [`listen:\n  - address: 127.0.0.1:0\n    tls: { cert: ${p.cert}, key: ${p.key}, sni: { "a..b": { cert: ${p.cert}, key: ${p.key} } } }\n`, /expected a host name/],
      [`listen:\n  - address: 127.0.0.1:0\n    tls: { cert: ${p.cert}, key: ${p.key}, sni: { a.test: { cert: ${p.cert}, key: ${p.key} }, A.test: { cert: ${p.cert}, key: ${p.key} } } }\n`, /duplicate server name \(also "a\.test"/],
      [`listen:\n  - address: 127.0.0.1:0\n    tls: { cert: ${p.cert}, key: ${p.key}, sni: { a.test: { cert: /nope.pem, key: ${p.key} } } }\n`, /listen\.0\.tls\.sni\.a\.test\.cert: certificate file not found: \/nope\.pem/],
      ['listen:\n  - address: 127.0.0.1:0\ntls: { rotate: sideways }\n', /tls\.rotate: must be one of new-generation, in-place/],
      ['listen:\n  - address: 127.0.0.1:0\ntls: { warn_before: 500d }\n', /tls\.warn_before: duration 500d is too long/],
    ];
    for (const [yaml, message] of cases) {
      assert.throws(() => config(yaml), (e: unknown) => e instanceof ConfigError && message.test(e.message), `${yaml} -> ${message}`);
    }
  });

  it('hands over an address whose certificates, SNI map, CA or http2 changed; replaces one whose TLS was switched on', () => {
    const a = leaf(0x3002);
    const b = leaf(0x3003);
    const pa = files(a.certPem, a.keyPem);
    const pb = files(b.certPem, b.keyPem);
    const plain = config('listen:\n  - address: 127.0.0.1:8443\n');
    const one = config(`listen:\n  - address: 127.0.0.1:8443\n    tls: { cert: ${pa.cert}, key: ${pa.key} }\n`);
    const other = config(`listen:\n  - address: 127.0.0.1:8443\n    http2: true\n    tls: { cert: ${pb.cert}, key: ${pb.key}, ca: ${pa.cert}, sni: { a.test: { cert: ${pa.cert}, key: ${pa.key} } } }\n`);
    const action = (x: Config, y: Config): string | undefined => planListeners(specsOf(x), specsOf(y), 'migrate')[0]?.action;
    assert.equal(action(one, other), 'handoff', 'migration happens before the TLS handshake');
    assert.equal(action(other, one), 'handoff');
    assert.equal(action(plain, one), 'replace', 'TLS switched on');
    assert.equal(action(one, plain), 'replace', 'TLS switched off');
  });

  it('carries TLS payloads, the ticket key and the rotate message to workers', () => {
    const key = Buffer.alloc(48, 7).toString('base64');
    const tls = { cert: 'C', key: 'K', sni: [{ name: 'a.test', cert: 'C2', key: 'K2' }], ca: 'CA', http2: true };
    const start = { type: 'start', generation: 2, index: 0, app: '/a.js', drainTimeoutMs: 1, heartbeatMs: 1, countRequests: false, ticketKey: key, listeners: [{ fd: 4, address: 'x', backlog: 1, tls }] };
    assert.deepEqual(parseMasterMessage(start), start);
    const rotate = { type: 'tls', seq: 3, ticketKey: key, listeners: [{ address: 'x', tls }] };
    assert.deepEqual(parseMasterMessage(rotate), rotate);
    assert.throws(() => parseMasterMessage({ ...rotate, ticketKey: Buffer.alloc(32).toString('base64') }), /ticketKey: expected 48 bytes/);
    assert.throws(() => parseMasterMessage({ ...start, listeners: [{ fd: 4, address: 'x', backlog: 1, tls: { ...tls, http2: 'yes' } }] }), /tls\.http2: expected a boolean/);
  });
});
