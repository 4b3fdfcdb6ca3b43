// Reading PEM files the way a person needs to hear about them: which file,
// and what is wrong with it (missing, unreadable, empty, cut short, not the
// kind of object expected). A file being written while we read it looks cut
// short or empty; the watch waits for such files, so those reasons say so.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ResourceShortage } from '../config/index.js';

export interface TlsProblem {
  /** The file at fault. */
  readonly file: string;
  readonly reason: string;
  /** The configuration key that names the file, e.g. `listen.0.tls.cert`. */
  readonly key?: string;
}

/**
 * One or more TLS files that cannot be served. Messages name the file and the
 * reason, never key material (OpenSSL's own messages carry none either).
 */
export class TlsError extends Error {
  override name = 'TlsError';
  readonly problems: readonly TlsProblem[];

  constructor(problems: readonly TlsProblem[]) {
    super(problems.map((p) => `${p.file}: ${p.reason}`).join('\n'));
    this.problems = problems;
  }

  static of(file: string, reason: string): TlsError {
    return new TlsError([{ file, reason }]);
  }
}

const READ_ERRORS: Readonly<Record<string, string>> = {
  ENOENT: 'not found',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory, not a file',
  ELOOP: 'too many levels of symbolic links',
};

/** The file's text; a TlsError naming the file and the errno otherwise (ResourceShortage for EMFILE, ENFILE, ENOMEM). */
export function readPem(file: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    ResourceShortage.check(err, file, `read the ${what} ${file}`);
    const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
    const who = (code === 'EACCES' || code === 'EPERM') && uid !== undefined ? ` for uid ${uid}` : '';
    throw TlsError.of(file, `cannot read the ${what}: ${code} (${READ_ERRORS[code] ?? String((err as Error).message)}${who})`);
  }
  if (text.trim() === '') throw TlsError.of(file, `the ${what} file is empty (still being written?)`);
  return text;
}

export interface PemBlock {
  readonly label: string;
  /** The block with its BEGIN and END lines. */
  readonly text: string;
  /** 1-based line of its BEGIN line. */
  readonly line: number;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const BEGIN = /-----BEGIN ([A-Z0-9 ]+)-----/g;

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/** Every complete PEM block; a BEGIN without its END is a truncated file. */
export function pemBlocks(text: string, file: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  const complete = new Set<number>();
  for (const m of text.matchAll(BLOCK)) {
    const line = lineAt(text, m.index);
    if (m[1] !== m[3]) throw TlsError.of(file, `PEM block "BEGIN ${m[1]}" at line ${line} ends with "END ${m[3]}"`);
    complete.add(m.index);
    blocks.push({ label: m[1] ?? '', text: m[0], line });
  }
  for (const m of text.matchAll(BEGIN)) {
    if (!complete.has(m.index)) {
      throw TlsError.of(file, `truncated PEM: the "BEGIN ${m[1]}" block at line ${lineAt(text, m.index)} has no END line (still being written?)`);
    }
  }
  return blocks;
}

/** Every certificate in the file, in file order. */
export function readCertificates(file: string, what = 'certificate'): X509Certificate[] {
  const blocks = pemBlocks(readPem(file, what), file).filter((b) => b.label === 'CERTIFICATE' || b.label === 'TRUSTED CERTIFICATE');
  if (blocks.length === 0) throw TlsError.of(file, `no PEM certificate in the file ("-----BEGIN CERTIFICATE-----" expected)`);
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b.text);
    } catch (err) {
      throw TlsError.of(file, `certificate ${i + 1} (line ${b.line}) does not parse: ${(err as Error).message}`);
    }
  });
}

const KEY_LABELS = new Set(['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY', 'ENCRYPTED PRIVATE KEY']);

/** The one private key in the file, decrypted with `passphrase` when it is encrypted. */
export function readPrivateKey(file: string, passphrase: string | undefined): KeyObject {
  const blocks = pemBlocks(readPem(file, 'private key'), file).filter((b) => KEY_LABELS.has(b.label));
  const block = blocks[0];
  if (!block) throw TlsError.of(file, 'no PEM private key in the file ("-----BEGIN PRIVATE KEY-----" expected)');
  if (blocks.length > 1) throw TlsError.of(file, `holds ${blocks.length} private keys; expected one`);
  const encrypted = block.label === 'ENCRYPTED PRIVATE KEY' || /^Proc-Type: 4,ENCRYPTED/m.test(block.text);
  if (encrypted && passphrase === undefined) throw TlsError.of(file, 'the private key is encrypted: set passphrase next to it');
  try {
    return createPrivateKey({ key: block.text, format: 'pem', ...(passphrase === undefined ? {} : { passphrase }) });
  } catch (err) {
    const message = (err as Error).message;
    if (encrypted && /bad decrypt|decrypt/i.test(message)) throw TlsError.of(file, 'cannot decrypt the private key: wrong passphrase');
    // A wrong passphrase passes the padding check about once in 256 tries
    // and the garbage then fails to decode ("DECODER routines::unsupported").
    if (encrypted) throw TlsError.of(file, `cannot decrypt the private key: wrong passphrase, or the file is damaged (${message})`);
    throw TlsError.of(file, `the private key does not parse: ${message}`);
  }
}
