// From checked material to what a worker is sent: the PEM to serve, per
// address, and the decision whether a reload can swap certificates in the
// running workers (`tls.rotate: in-place`) instead of starting a generation.
import type { Config } from '../config/index.js';
import type { ServedCertificate, WorkerTls } from '../protocol/tls.js';
import { sameMaterial, type TlsMaterial } from './material.js';

export function workerTls(m: TlsMaterial): WorkerTls {
  return {
    cert: m.default.cert,
    key: m.default.key,
    sni: m.sni.map((s) => ({ name: s.name, cert: s.pair.cert, key: s.pair.key })),
    ...(m.ca ? { ca: m.ca.pem } : {}),
    http2: m.http2,
  };
}

/**
 * In place only when asked for, when nothing but the TLS files' contents
 * changed (the same configuration, so the same listeners, app and workers),
 * and when they did change. Anything else is an ordinary reload.
 */
export function rotatesInPlace(
  running: Config,
  next: Config,
  served: ReadonlyMap<string, TlsMaterial>,
  fresh: ReadonlyMap<string, TlsMaterial>,
): boolean {
  return next.tls.rotate === 'in-place' && JSON.stringify(running) === JSON.stringify(next) && !sameMaterial(served, fresh);
}

export function servedCertificates(materials: ReadonlyMap<string, TlsMaterial>): ServedCertificate[] {
  return [...materials.values()].flatMap((m) =>
    [{ name: '*', pair: m.default }, ...m.sni].map(({ name, pair }) => {
      const leaf = pair.chain[0];
      return { address: m.address, name, file: pair.certFile, subject: leaf?.subject ?? '', serial: leaf?.serial ?? '', notAfter: leaf?.notAfter.toISOString() ?? '' };
    }),
  );
}
