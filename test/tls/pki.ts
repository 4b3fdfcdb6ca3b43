// A certificate authority for tests: real X.509 certificates, signed with
// node:crypto (ECDSA P-256), with the serial, validity dates and names a test
// chooses (openssl 3.0's `x509 -req` cannot set dates, and a process per
// certificate costs time the suite does not have). The DER is written by
// hand from RFC 5280; OpenSSL parses and verifies the result like any other.
import { createHash, createPublicKey, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

// --- DER, as much of it as certificates need ---------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
};
const seq = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 + n, inner);
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bits = (b: Buffer, unused = 0): Buffer => tlv(0x03, Buffer.from([unused]), b);
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));

function integer(v: bigint): Buffer {
  let hex = v.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let b = Buffer.from(hex, 'hex');
  if ((b[0] ?? 0) & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(text: string): Buffer {
  const [a = 0, b = 0, ...rest] = text.split('.').map(Number);
  const out = [40 * a + b];
  for (const arc of rest) {
    const chunk = [arc & 0x7f];
    for (let v = arc >> 7; v > 0; v >>= 7) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  const year = d.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

const name = (cn: string): Buffer => seq(set(seq(oid('2.5.4.3'), utf8(cn))));
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

function altNames(names: readonly string[]): Buffer {
  return seq(
    ...names.map((n) => {
      if (isIP(n) === 4) return tlv(0x87, Buffer.from(n.split('.').map(Number)));
      return tlv(0x82, Buffer.from(n, 'ascii'));
    }),
  );
}

// --- certificates --------------------------------------------------------------

export interface Issued {
  readonly cert: X509Certificate;
  readonly certPem: string;
  /** PKCS#8 PEM, unencrypted. */
  readonly keyPem: string;
  readonly key: KeyObject;
  readonly subject: string;
  /** Upper-case hex, as TLS clients report it. */
  readonly serial: string;
}

export interface CertOptions {
  readonly serial: number | bigint;
  /** Default: an hour ago. */
  readonly notBefore?: Date;
  /** Default: 90 days from now. */
  readonly notAfter?: Date;
  /** DNS names and IPv4 addresses for subjectAltName. */
  readonly names?: readonly string[];
  /** Signs the certificate; default: self-signed. */
  readonly issuer?: Issued;
  readonly ca?: boolean;
  /** Reuse a key (a renewal that keeps its key). */
  readonly key?: KeyObject;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function toPem(der: Buffer, label: string): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

export function issue(cn: string, o: CertOptions): Issued {
  const key = o.key ?? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const keyId = createHash('sha1').update(spki).digest();
  const signer = o.issuer?.key ?? key;
  const issuerName = o.issuer ? name(o.issuer.subject) : name(cn);
  const extensions = [
    extension('2.5.29.19', true, o.ca ? seq(bool(true)) : seq()),
    extension('2.5.29.15', true, o.ca ? bits(Buffer.from([0x06]), 1) : bits(Buffer.from([0x80]), 7)),
    extension('2.5.29.14', false, octets(keyId)),
    ...(o.ca ? [] : [extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2')))]),
    ...(o.names?.length ? [extension('2.5.29.17', false, altNames(o.names))] : []),
  ];
  const now = Date.now();
  const tbs = seq(
    explicit(0, integer(2n)),
    integer(BigInt(o.serial)),
    ECDSA_SHA256,
    issuerName,
    seq(time(o.notBefore ?? new Date(now - HOUR)), time(o.notAfter ?? new Date(now + 90 * DAY))),
    name(cn),
    spki,
    explicit(3, seq(...extensions)),
  );
  const der = seq(tbs, ECDSA_SHA256, bits(sign('sha256', tbs, signer)));
  const certPem = toPem(der, 'CERTIFICATE');
  const cert = new X509Certificate(certPem);
  return { cert, certPem, keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(), key, subject: cn, serial: cert.serialNumber.toUpperCase() };
}

/** A root CA for a test. */
export function makeCa(cn = 'handover test CA', serial = 1): Issued {
  return issue(cn, { serial, ca: true, notAfter: new Date(Date.now() + 3650 * DAY) });
}

/** `serial` as TLS clients and X509Certificate show it (upper-case hex, even length). */
export function serialText(serial: number | bigint): string {
  let hex = BigInt(serial).toString(16).toUpperCase();
  if (hex.length % 2) hex = `0${hex}`;
  return hex;
}

export const days = (n: number): number => n * DAY;
