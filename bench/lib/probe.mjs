// Exits 0 once http(s)://127.0.0.1:PORT/ answers 200, 1 after TIMEOUT ms.
//   node bench/lib/probe.mjs PORT plain|tls TIMEOUT_MS
// With mode "fingerprint": prints the SHA-256 fingerprint of the certificate
// that a new TLS connection to PORT is served.
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';

const [port, mode, timeout] = process.argv.slice(2);
if (mode === 'fingerprint') {
  const socket = tls.connect({ host: '127.0.0.1', port: Number(port), rejectUnauthorized: false }, () => {
    process.stdout.write(`${socket.getPeerCertificate().fingerprint256}\n`);
    socket.destroy();
  });
  socket.setTimeout(Number(timeout), () => process.exit(1));
  socket.on('error', (err) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  });
} else {
  const deadline = Date.now() + Number(timeout);
  const get = mode === 'tls' ? https.get : http.get;
  const attempt = () =>
    new Promise((resolve) => {
      const req = get({ host: '127.0.0.1', port: Number(port), path: '/', agent: false, rejectUnauthorized: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      req.setTimeout(1000, () => req.destroy());
      req.on('error', () => resolve(false));
    });
  while (!(await attempt())) {
    if (Date.now() > deadline) {
      process.stderr.write(`no 200 from port ${port}\n`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
