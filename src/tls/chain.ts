// Checks on a certificate chain as read from one file: leaf first, each
// certificate followed by its issuer, every one of them valid now, and the
// leaf the one the private key belongs to. What is public about a
// certificate (subject, serial, dates) may be shown; nothing of the key.
import type { KeyObject, X509Certificate } from 'node:crypto';
import { TlsError } from './pem.js';

/** The public facts of one certificate, for messages, reports and warnings. */
export interface CertificateInfo {
  readonly file: string;
  /** 1-based position in its file. */
  readonly position: number;
  /** e.g. `CN=example.com`. */
  readonly subject: string;
  /** Upper-case hex, as `openssl x509 -serial` and TLS clients show it. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly fingerprint256: string;
}

export function describe(cert: X509Certificate, file: string, position: number): CertificateInfo {
  return Object.freeze({
    file,
    position,
    subject: subjectOf(cert.subject),
    serial: cert.serialNumber.toUpperCase(),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    fingerprint256: cert.fingerprint256,
  });
}

/** `C=US\nO=Let's Encrypt\nCN=R3` becomes `CN=R3, O=Let's Encrypt, C=US` (most specific first). */
function subjectOf(subject: string): string {
  return subject.split('\n').filter(Boolean).reverse().join(', ') || '(empty subject)';
}

const label = (c: CertificateInfo): string => `certificate ${c.position} (${c.subject}, serial ${c.serial})`;

/** Refuses a certificate that is not valid at `now`. */
export function checkDates(c: CertificateInfo, now: Date): void {
  if (Number.isNaN(c.notBefore.getTime()) || Number.isNaN(c.notAfter.getTime())) {
    throw TlsError.of(c.file, `${label(c)} has validity dates that do not parse`);
  }
  if (now < c.notBefore) throw TlsError.of(c.file, `${label(c)} is not valid before ${c.notBefore.toISOString()} (check the clock)`);
  if (now > c.notAfter) throw TlsError.of(c.file, `${label(c)} expired on ${c.notAfter.toISOString()}`);
}

/**
 * The key must belong to the first certificate, and each certificate must be
 * issued (and signed) by the next one. Clients are told nothing more than
 * this order, so a chain out of order fails at the client, not here, unless
 * we refuse it.
 */
export function checkChain(certs: readonly X509Certificate[], infos: readonly CertificateInfo[], key: KeyObject, keyFile: string): void {
  const leaf = certs[0];
  const leafInfo = infos[0];
  if (!leaf || !leafInfo) return;
  if (!leaf.checkPrivateKey(key)) {
    const other = certs.findIndex((c) => c.checkPrivateKey(key));
    if (other > 0) {
      throw TlsError.of(leafInfo.file, `the private key ${keyFile} belongs to certificate ${other + 1}, not to the first: put the leaf first, then its issuers`);
    }
    throw TlsError.of(keyFile, `the private key does not match the certificate ${leafInfo.file} (${leafInfo.subject}, serial ${leafInfo.serial})`);
  }
  for (let i = 0; i + 1 < certs.length; i++) {
    const child = certs[i];
    const issuer = certs[i + 1];
    const childInfo = infos[i];
    const issuerInfo = infos[i + 1];
    if (!child || !issuer || !childInfo || !issuerInfo) continue;
    if (!child.checkIssued(issuer) || !child.verify(issuer.publicKey)) {
      throw TlsError.of(
        childInfo.file,
        `chain out of order: ${label(issuerInfo)} did not issue ${label(childInfo)}; the file must hold the leaf first, then each certificate's issuer`,
      );
    }
  }
}
