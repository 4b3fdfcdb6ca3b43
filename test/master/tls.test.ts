// HTTPS listeners: the master reads and checks the pair, the workers serve
// it. Certificates are made by the test with openssl. No root needed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HELLO, MasterProcess } from '../harness/master.js';

const dir = mkdtempSync(join(tmpdir(), 'handover-tls-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function selfSigned(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

describe('tls listeners', () => {
  it('serves HTTPS with the configured certificate', async () => {
    const { cert, key } = selfSigned('good');
    const master = MasterProcess.start({ yaml: `app: ${HELLO}\nworkers: 2\nlisten:\n  - address: 127.0.0.1:0\n    tls: { cert: ${cert}, key: ${key} }\n` });
    try {
      await master.serving();
      const status = await master.status();
      const address = status.listen[0];
      assert.ok(address);
      const r = await httpsGet(`https://${address}/`, readFileSync(cert, 'utf8'));
      assert.equal(r.status, 200);
      assert.match(r.body, /hello from worker/);
    } finally {
      await master.dispose();
    }
  });

  it('refuses to start with a key that does not match the certificate', async () => {
    const a = selfSigned('a');
    const b = selfSigned('b');
    const master = MasterProcess.start({ yaml: `app: ${HELLO}\nlisten:\n  - address: 127.0.0.1:0\n    tls: { cert: ${a.cert}, key: ${b.key} }\n` });
    const exit = await master.exited;
    await master.dispose();
    assert.equal(exit.code, 1);
    assert.match(master.stderr, /does not match the certificate/);
  });
});
