// The files a configuration names: the configuration itself, the app module,
// the TLS files and the control socket. Every filesystem error on one of
// them becomes a problem the loader pins to the key that names the path
// (`file:line:col: app: ...`), so a symlink loop or a missing permission is
// refused like any other configuration error (exit 2), not as a bare errno.
// Running out of descriptors or memory is no fault of the file: that is
// thrown as a ResourceShortage instead.

import { closeSync, constants, accessSync, fstatSync, lstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
import { MAX_CONFIG_BYTES } from './limits.js';
import { ResourceShortage } from './problems.js';

const EXPLAIN: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ELOOP: 'too many levels of symbolic links (a symlink loop?)',
  ENOTDIR: 'a component of the path is not a directory',
  EISDIR: 'is a directory',
  ENAMETOOLONG: 'file name too long',
  EIO: 'input/output error',
  ENXIO: 'no such device or address',
};

/** `ELOOP (too many levels of symbolic links ...)`, or the bare code when it needs no words. EMFILE, ENFILE and ENOMEM never get here: they are a ResourceShortage (problems.ts has their words). */
export function describeCode(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string') return err instanceof Error ? err.message : String(err);
  const words = EXPLAIN[code];
  return words ? `${code} (${words})` : code;
}

function codeOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

/** A problem of the configuration file as a whole; `at` is set when it has a place (the size: the top). */
export class FileProblem extends Error {
  override name = 'FileProblem';
  constructor(
    message: string,
    readonly at: { readonly line?: number; readonly column?: number } = {},
  ) {
    super(message);
  }
}

/**
 * The configuration's text, at most MAX_CONFIG_BYTES. Opened without
 * blocking (a FIFO named as the configuration must not hang the master) and
 * measured before it is read; a file that grows meanwhile is caught by
 * reading one byte more than allowed. Throws FileProblem.
 */
export function readConfigText(file: string): string {
  let fd: number;
  try {
    // libuv adds O_CLOEXEC to every open.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    ResourceShortage.check(err, file);
    throw new FileProblem(`cannot read: ${describeCode(err)}`);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw new FileProblem('cannot read: EISDIR (is a directory)');
    if (!st.isFile()) throw new FileProblem('is not a regular file');
    if (st.size > MAX_CONFIG_BYTES) throw new FileProblem(tooLarge(`${st.size} bytes`), TOP);
    const buffer = Buffer.alloc(Math.min(st.size, MAX_CONFIG_BYTES) + 1);
    let length = 0;
    for (let n = 1; n > 0 && length < buffer.length; length += n) {
      n = readSync(fd, buffer, length, buffer.length - length, null);
    }
    if (length > MAX_CONFIG_BYTES) throw new FileProblem(tooLarge(`more than ${MAX_CONFIG_BYTES} bytes (it grew while read)`), TOP);
    return buffer.toString('utf8', 0, length);
  } catch (err) {
    if (err instanceof FileProblem) throw err;
    ResourceShortage.check(err, file);
    throw new FileProblem(`cannot read: ${describeCode(err)}`);
  } finally {
    closeSync(fd);
  }
}

const TOP = { line: 1, column: 1 } as const;

function tooLarge(size: string): string {
  return `the file is ${size}; a configuration may have at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`;
}

/**
 * Why a file the configuration names cannot be used, or undefined. It must
 * exist, be a regular file (after symlinks) and open for reading by this
 * process: a reload must not commit to files it cannot read.
 */
export function referencedFileProblem(abs: string, what: string): string | undefined {
  let st: Stats;
  try {
    st = statSync(abs);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return `${what} not found: ${abs}`;
    ResourceShortage.check(err, abs, `reach the ${what} ${abs}`);
    return `${what} cannot be reached: ${describeCode(err)}: ${abs}`;
  }
  if (st.isDirectory()) return `${what} is a directory, not a file: ${abs}`;
  if (!st.isFile()) return `${what} is not a file: ${abs}`;
  try {
    // Opening, not access(2): access checks the real uid, open the effective one.
    closeSync(openSync(abs, constants.O_RDONLY | constants.O_NONBLOCK));
  } catch (err) {
    ResourceShortage.check(err, abs, `read the ${what} ${abs}`);
    return `${what} cannot be read: ${describeCode(err)}: ${abs}`;
  }
  return undefined;
}

/** Why `abs` is not a directory the workers can run in, or undefined. */
export function directoryProblem(abs: string): string | undefined {
  let st: Stats;
  try {
    st = statSync(abs);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return `directory not found: ${abs}`;
    ResourceShortage.check(err, abs, `reach the directory ${abs}`);
    return `directory cannot be reached: ${describeCode(err)}: ${abs}`;
  }
  return st.isDirectory() ? undefined : `not a directory: ${abs}`;
}

/**
 * Why the master could not create its control socket at `path`, or
 * undefined. Nothing is created here: the path may name a stale socket (it
 * is replaced), nothing, or a directory still to be made (under a parent
 * this process may write to). Anything else at the path is refused rather
 * than deleted.
 */
export function controlSocketProblem(path: string): string | undefined {
  try {
    const st = lstatSync(path);
    if (st.isSocket()) return undefined;
    if (st.isDirectory()) return `${path} is a directory, not a socket`;
    return `${path} exists and is not a socket; refusing to replace it`;
  } catch (err) {
    ResourceShortage.check(err, path, `reach ${path}`);
    if (codeOf(err) !== 'ENOENT') return `cannot reach ${path}: ${describeCode(err)}`;
  }
  // The nearest directory that exists must be a directory we may create in.
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    try {
      if (!statSync(dir).isDirectory()) return `cannot use ${path}: ${dir} is not a directory`;
    } catch (err) {
      if (codeOf(err) === 'ENOENT' && dirname(dir) !== dir) continue;
      ResourceShortage.check(err, dir, `reach ${dir}`);
      return `cannot use ${path}: ${dir}: ${describeCode(err)}`;
    }
    try {
      accessSync(dir, constants.W_OK | constants.X_OK);
    } catch (err) {
      ResourceShortage.check(err, dir, `check access to ${dir}`);
      return `cannot use ${path}: ${dir}: ${describeCode(err)}`;
    }
    return undefined;
  }
}
