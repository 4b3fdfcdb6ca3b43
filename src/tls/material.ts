// TLS key material, read and checked by the master (workers may run as a
// user with no access to the key files, and a file swapped between this
// check and its use can never be served: the workers get these bytes).
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.js';

export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  readonly notAfter: Date;
}

export class TlsError extends Error {
  override name = 'TlsError';
}

function read(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new TlsError(`${file}: cannot read the ${what}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

export function loadTlsPair(certFile: string, keyFile: string): TlsMaterial {
  const cert = read(certFile, 'certificate');
  const key = read(keyFile, 'private key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new TlsError(`${certFile}: not a PEM certificate (${(err as Error).message})`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new TlsError(`${keyFile}: not a PEM private key (${(err as Error).message})`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new TlsError(`${keyFile} does not match the certificate ${certFile}`);
  return Object.freeze({ cert, key, notAfter: new Date(x509.validTo) });
}

/** Material per listen address text, for every address with `tls`. Throws TlsError. */
export function loadTlsMaterial(config: Config): ReadonlyMap<string, TlsMaterial> {
  const out = new Map<string, TlsMaterial>();
  for (const l of config.listen) if (l.tls) out.set(l.address.text, loadTlsPair(l.tls.cert, l.tls.key));
  return out;
}
