// TLS key material, read and checked by the master before any worker sees
// it (workers may run as a user with no access to the key files, and a file
// swapped between this check and its use can never be served: the workers
// get these bytes). An invalid set never reaches a worker: the old
// generation keeps serving and the error names the file and the reason.
import { createHash, type X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { Config, ListenConfig, TlsPairFiles } from '../config/index.js';
import { checkChain, checkDates, describe, type CertificateInfo } from './chain.js';
import { readCertificates, readPrivateKey, TlsError, type TlsProblem } from './pem.js';

export { TlsError, type TlsProblem } from './pem.js';
export type { CertificateInfo } from './chain.js';

export interface TlsPair {
  readonly certFile: string;
  readonly keyFile: string;
  /** The file's certificates, in order, as PEM (nothing else the file held). */
  readonly cert: string;
  /**
   * The private key as unencrypted PKCS#8 PEM. Not enumerable, so that a log
   * line, a JSON dump or a status answer that includes the material cannot
   * carry it; only the worker payload reads it, by name.
   */
  readonly key: string;
  readonly chain: readonly CertificateInfo[];
}

export interface SniPair {
  /** Lower case; `*.example.org` covers one label. */
  readonly name: string;
  readonly pair: TlsPair;
}

export interface TlsMaterial {
  readonly address: string;
  /** ALPN offers h2 too. */
  readonly http2: boolean;
  readonly default: TlsPair;
  readonly sni: readonly SniPair[];
  /** Clients must present a certificate issued by one of these. */
  readonly ca?: { readonly file: string; readonly pem: string; readonly certs: readonly CertificateInfo[] };
  /** The earliest expiry of any served certificate. */
  readonly notAfter: Date;
  /** Problems that do not stop serving (a server name its certificate does not cover). */
  readonly warnings: readonly string[];
  /** Differs whenever anything the workers would serve differs. */
  readonly fingerprint: string;
}

/** Reads, decrypts and checks one certificate chain and its key. Throws TlsError. */
export function loadTlsPair(files: TlsPairFiles, now = new Date()): TlsPair {
  return readPair(files, now).pair;
}

function readPair(files: TlsPairFiles, now: Date): { pair: TlsPair; leaf: X509Certificate } {
  const certs = readCertificates(files.cert);
  const infos = certs.map((c, i) => describe(c, files.cert, i + 1));
  const key = readPrivateKey(files.key, files.passphrase);
  checkChain(certs, infos, key, files.key);
  for (const info of infos) checkDates(info, now);
  const pair = { certFile: files.cert, keyFile: files.key, cert: certs.map(pemOf).join(''), chain: Object.freeze(infos) };
  Object.defineProperty(pair, 'key', { value: key.export({ type: 'pkcs8', format: 'pem' }).toString(), enumerable: false });
  return { pair: Object.freeze(pair) as TlsPair, leaf: certs[0] as X509Certificate };
}

function pemOf(cert: X509Certificate): string {
  const der = cert.raw.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE-----\n${der}-----END CERTIFICATE-----\n`;
}

/** A server name the certificate does not cover; a wildcard is tried with a label of its own. */
function coverageWarning(address: string, name: string, pair: TlsPair, leaf: X509Certificate): string[] {
  const probe = name.startsWith('*.') ? `handover-sni-check${name.slice(1)}` : name;
  if (leaf.checkHost(probe) !== undefined) return [];
  return [`${address}: the certificate ${pair.certFile} (${pair.chain[0]?.subject}) does not cover the server name ${name}; clients will refuse it`];
}

/** Runs `load`, turning its TlsError into problems that say which configuration key names the file. */
class Problems {
  readonly list: TlsProblem[] = [];

  attempt<T>(certKey: string, keyKey: string, keyFile: string, load: () => T): T | undefined {
    try {
      return load();
    } catch (err) {
      if (!(err instanceof TlsError)) throw err;
      for (const p of err.problems) this.list.push({ ...p, key: p.file === keyFile ? keyKey : certKey });
      return undefined;
    }
  }
}

function loadAddress(l: ListenConfig, index: number, now: Date): TlsMaterial {
  const tls = l.tls;
  if (!tls) throw new Error(`listen.${index} has no tls`);
  const at = `listen.${index}.tls`;
  const problems = new Problems();
  const main = problems.attempt(`${at}.cert`, `${at}.key`, tls.key, () => readPair(tls, now));
  const sni = tls.sni.flatMap((s) => {
    const read = problems.attempt(`${at}.sni.${s.name}.cert`, `${at}.sni.${s.name}.key`, s.key, () => readPair(s, now));
    return read ? [{ name: s.name, ...read }] : [];
  });
  const caFile = tls.ca;
  const ca =
    caFile === undefined
      ? undefined
      : problems.attempt(`${at}.ca`, `${at}.ca`, caFile, () => {
          const certs = readCertificates(caFile, 'CA certificates');
          return Object.freeze({ file: caFile, pem: certs.map(pemOf).join(''), certs: Object.freeze(certs.map((c, i) => describe(c, caFile, i + 1))) });
        });
  if (problems.list.length > 0 || !main) throw new TlsError(problems.list);
  const served = [main.pair, ...sni.map((s) => s.pair)];
  // OpenSSL's own refusals (a key too weak for its security level, ...) show up here, not in a worker.
  for (const pair of served) {
    try {
      createSecureContext({ cert: pair.cert, key: pair.key, ...(ca ? { ca: ca.pem } : {}) });
    } catch (err) {
      throw new TlsError([{ file: pair.certFile, key: `${at}.cert`, reason: `OpenSSL refuses the certificate or key: ${(err as Error).message}` }]);
    }
  }
  const hash = createHash('sha256').update(`http2=${l.http2}\n`);
  for (const [name, pair] of [['*', main.pair] as const, ...sni.map((s) => [s.name, s.pair] as const)]) hash.update(`${name}\n${pair.cert}${pair.key}`);
  if (ca) hash.update(`ca\n${ca.pem}`);
  return Object.freeze({
    address: l.address.text,
    http2: l.http2,
    default: main.pair,
    sni: Object.freeze(sni.map((s) => Object.freeze({ name: s.name, pair: s.pair }))),
    ...(ca ? { ca } : {}),
    notAfter: new Date(Math.min(...served.flatMap((p) => p.chain.map((c) => c.notAfter.getTime())))),
    warnings: Object.freeze(sni.flatMap((s) => coverageWarning(l.address.text, s.name, s.pair, s.leaf))),
    fingerprint: hash.digest('hex'),
  });
}

/**
 * Material per listen address text, for every address with `tls`. Throws a
 * TlsError listing every problem of every address at once.
 */
export function loadTlsMaterial(config: Pick<Config, 'listen'>, now = new Date()): ReadonlyMap<string, TlsMaterial> {
  const out = new Map<string, TlsMaterial>();
  const problems: TlsProblem[] = [];
  config.listen.forEach((l, i) => {
    if (!l.tls) return;
    try {
      out.set(l.address.text, loadAddress(l, i, now));
    } catch (err) {
      if (!(err instanceof TlsError)) throw err;
      problems.push(...err.problems);
    }
  });
  if (problems.length > 0) throw new TlsError(problems);
  return out;
}

/** True when both would serve exactly the same certificates, keys, CAs and ALPN on the same addresses. */
export function sameMaterial(a: ReadonlyMap<string, TlsMaterial>, b: ReadonlyMap<string, TlsMaterial>): boolean {
  if (a.size !== b.size) return false;
  for (const [address, m] of a) if (b.get(address)?.fingerprint !== m.fingerprint) return false;
  return true;
}
