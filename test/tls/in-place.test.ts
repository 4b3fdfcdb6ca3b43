// tls.rotate: in-place, and every way a replacement can be wrong. The master
// runs as nobody when the test is root (root reads any file, so an
// unreadable key would prove nothing), in the test's own network namespace
// on port 0: no load, no sysctl. Each bad set is waited for with a message
// naming the file and the reason, refused by a reload with the same, the old
// certificate is served meanwhile, and a later correct pair is picked up.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { TICKET_KEY_PER_WORKER_ENV } from '../../src/tls/ticket-key.js';
import { HELLO, MasterProcess, runCli, sleep, type LogLine } from '../harness/master.js';
import { NOBODY, nobodyCannotRead } from '../harness/nobody.js';
import { ask, resumeAcrossWorkers, servedBy } from './client.js';
import { CertStore } from './layouts.js';
import { days, issue, makeCa, type Issued } from './pki.js';

const root = process.getuid?.() === 0;
const ca = makeCa();
const dir = mkdtempSync(join(tmpdir(), 'handover-tlsip-'));
chmodSync(dir, 0o755);
const caPem = ca.certPem;
let nextSerial = 0x7000;
const leaf = (o: Partial<Parameters<typeof issue>[1]> = {}): Issued => issue('localhost', { serial: ++nextSerial, issuer: ca, names: ['127.0.0.1'], ...o });
const issued: Issued[] = [];
const track = (p: Issued): Issued => (issued.push(p), p);

let started: Promise<{ master: MasterProcess; store: CertStore; port: number; pids: number[] }> | undefined;
function serve(): Promise<{ master: MasterProcess; store: CertStore; port: number; pids: number[] }> {
  started ??= (async () => {
    const store = new CertStore(join(dir, 'certs'), 'rename', track(leaf()));
    const yaml =
      `app: ${HELLO}\nworkers: 2\nlisten:\n  - address: 127.0.0.1:0\n    tls: { cert: ${store.cert}, key: ${store.key} }\n` +
      `reload: { watch: true, drain_timeout: 3s }\ntls: { rotate: in-place, pair_wait: 2s }\n`;
    const master = MasterProcess.start({ yaml, env: { [TICKET_KEY_PER_WORKER_ENV]: '1' }, ...(root ? { uid: NOBODY } : {}) });
    const pids = await master.serving();
    const port = Number((await master.status()).listen[0]?.split(':')[1]);
    return { master, store, port, pids };
  })();
  return started;
}

after(async () => {
  const s = await started?.catch(() => undefined);
  await s?.master.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** The checkout must be readable by nobody for a master running as nobody. */
function reachable(t: TestContext): boolean {
  if (!root) return true;
  const why = nobodyCannotRead(HELLO);
  if (why === undefined) return true;
  t.skip(`${why}, and a root master reads any file`);
  return false;
}

const lineWith = (from: number, ...parts: string[]) => (l: LogLine): boolean =>
  typeof l.msg === 'string' && parts.every((p) => (l.msg as string).includes(p));

describe('tls.rotate: in-place', () => {
  it('each bad replacement waits with the file and the reason, a reload refuses it, the old certificate serves, a correct pair is picked up', { timeout: 60_000 }, async (t) => {
    if (!reachable(t)) return;
    const { master, store, port } = await serve();
    const ask1 = { port, ca: caPem };
    let current = issued[0]!;
    assert.equal((await ask(ask1)).serial, current.serial);
    const other = leaf();

    interface Case {
      name: string;
      /** Puts a bad set on disk. */
      bad: () => Promise<void> | void;
      /** The file named and the reason, in the wait message and the refusal. */
      file: string;
      reason: RegExp;
      /** Puts the good pair `next` on disk. */
      fix: (next: Issued) => Promise<void> | void;
    }
    const cases: Case[] = [
      {
        name: 'mismatched key', file: store.key, reason: /the private key does not match the certificate/,
        bad: () => store.replace(track(leaf()), 0, 'in-place').then(() => writeFileSync(store.key, other.keyPem)),
        fix: (next) => store.replace(next),
      },
      {
        name: 'truncated PEM', file: store.cert, reason: /truncated PEM/,
        bad: () => writeFileSync(store.cert, current.certPem.slice(0, 200)),
        fix: (next) => store.replace(next),
      },
      {
        name: 'expired certificate', file: store.cert, reason: /expired on/,
        bad: () => store.replace(track(leaf({ notBefore: new Date(Date.now() - days(10)), notAfter: new Date(Date.now() - days(1)) }))),
        fix: (next) => store.replace(next),
      },
      {
        name: 'missing key file', file: store.key, reason: /not found/,
        bad: () => unlinkSync(store.key),
        fix: (next) => store.replace(next),
      },
      {
        name: 'unreadable key file', file: store.key, reason: /EACCES/,
        bad: () => chmodSync(store.key, 0o000),
        fix: (next) => store.replace(next),
      },
    ];
    for (const c of cases) {
      const from = master.logs.length;
      await c.bad();
      const waiting = await master.waitForLog(lineWith(from, 'not a valid set yet', c.file), 10_000, from);
      assert.match(String(waiting.msg), c.reason, `${c.name}: the wait names the reason`);
      const answer = await master.control({ cmd: 'reload' });
      const report = answer.result as { result: string; reason: string };
      assert.equal(report.result, 'invalid', `${c.name}: a reload refuses it: ${JSON.stringify(report)}`);
      assert.ok(report.reason.includes(c.file), `${c.name}: the refusal names ${c.file}: ${report.reason}`);
      assert.equal((await ask(ask1)).serial, current.serial, `${c.name}: the old certificate is served meanwhile`);
      const next = track(leaf());
      await c.fix(next);
      await servedBy(ask1, next.serial);
      current = next;
      t.diagnostic(`${c.name}: ${waiting.msg}`);
    }
  });

  it('a set that stays invalid is refused after tls.pair_wait; one written a second apart is waited for', { timeout: 30_000 }, async (t) => {
    if (!reachable(t)) return;
    const { master, store, port } = await serve();
    const ask1 = { port, ca: caPem };
    const served = (await ask(ask1)).serial;
    let from = master.logs.length;
    const t0 = Date.now();
    writeFileSync(store.cert, leaf().certPem);
    const gaveUp = await master.waitForLog(lineWith(from, 'still not a valid set after'), 10_000, from);
    const refused = await master.waitForLog((l) => lineWith(from, 'reload ')(l) && (l['reload'] as { trigger?: string })?.trigger === 'tls', 5_000, from);
    const report = refused['reload'] as { result: string; reason: string };
    assert.ok(Date.now() - t0 >= 2_000, 'not before pair_wait (2 s)');
    assert.equal(report.result, 'invalid');
    assert.match(report.reason, /does not match the certificate/);
    assert.match(String(gaveUp.msg), new RegExp(store.key));
    assert.equal((await ask(ask1)).serial, served, 'the old certificate is still served');

    // The certificate a second before its key: waited for, never refused.
    const next = track(leaf());
    from = master.logs.length;
    const written = store.replace(next, 1_000, 'in-place');
    await sleep(600);
    assert.equal((await ask(ask1)).serial, served, 'the old certificate serves while the key is missing');
    await written;
    const picked = await servedBy(ask1, next.serial, 5_000);
    assert.equal(picked.serial, next.serial);
    assert.ok(master.logs.slice(from).some(lineWith(from, 'not a valid set yet')), 'it was waited for');
    assert.ok(!master.logs.slice(from).some((l) => (l['reload'] as { result?: string } | undefined)?.result === 'invalid'), 'and not refused');
  });

  it('rotates in the running workers: same generation and pids, reported as in-place; check and logs never show key material', { timeout: 30_000 }, async (t) => {
    if (!reachable(t)) return;
    const { master, store, port, pids } = await serve();
    const next = track(leaf());
    await store.replace(next);
    await servedBy({ port, ca: caPem }, next.serial);
    const status = await master.status();
    assert.equal(status.generation, 1, 'every rotation so far was in place');
    assert.deepEqual(status.generations[0]?.workers.map((w) => w.pid), pids, 'by the same workers');
    const reports = (status as unknown as { reloads: { trigger: string; result: string; generation: number; tls?: { rotate: string; certificates: { serial: string }[] } }[] }).reloads;
    const ok = reports.filter((r) => r.result === 'ok');
    assert.ok(ok.length >= 1, `in-place rotations reported: ${ok.length}`);
    for (const r of ok) {
      assert.equal(r.tls?.rotate, 'in-place');
      assert.equal(r.generation, 1);
    }
    assert.equal(ok.at(-1)?.tls?.certificates[0]?.serial, (await ask({ port, ca: caPem })).serial, 'the report shows the serial served');

    // Nothing of any private key in logs, status or reports (the workers log to the same stream).
    const text = JSON.stringify(master.logs) + JSON.stringify(status) + master.stderr;
    for (const p of issued) {
      const body = p.keyPem.split('\n').slice(1, -2).join('');
      assert.ok(!text.includes(body.slice(0, 40)), `key of serial ${p.serial} not in any log line or status`);
    }

    // `handover check` runs the same validation: a garbage certificate is refused, exit 2.
    const garbage = join(dir, 'garbage.crt');
    writeFileSync(garbage, 'not a certificate\n');
    const cfg = join(dir, 'check.yaml');
    writeFileSync(cfg, `app: ${HELLO}\nlisten:\n  - address: 127.0.0.1:0\n    tls: { cert: ${garbage}, key: ${join(dir, 'certs/tls.key')} }\n`);
    const r = await runCli(['check', '-c', cfg]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`${cfg}: listen\\.0\\.tls\\.cert: ${garbage}: no PEM certificate in the file`));
  });

  it('without a shared ticket key, a session resumes on its own worker only', { timeout: 30_000 }, async (t) => {
    if (!reachable(t)) return;
    const { port } = await serve();
    const resumed = await resumeAcrossWorkers({ port, ca: caPem });
    t.diagnostic(JSON.stringify(resumed));
    assert.equal(resumed.same, true, 'the worker that issued the ticket resumes it');
    assert.equal(resumed.other, false, 'another worker (its own key) makes a full handshake');
  });
});
