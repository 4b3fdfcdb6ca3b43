// Where the control socket lives when the configuration does not say. The
// path is derived from the config file's absolute path, so `handover status
// -c FILE` finds the master started with the same FILE, two services never
// share a socket, and nothing needs to be written down between runs.

import { lstatSync, mkdirSync } from 'node:fs';
import { basename, extname, isAbsolute, join, resolve } from 'node:path';
import { sha256Hex } from './sha256.js';

/** sun_path is 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

const HASH_HEX_CHARS = 10;

function currentUid(): number {
  // Linux-only project (package.json "os"), where getuid always exists.
  return process.getuid?.() ?? 0;
}

/** The directory the default socket goes in, by the precedence systemd and XDG users expect. */
export function controlDir(env: NodeJS.ProcessEnv = process.env, uid: number = currentUid()): string {
  // systemd sets RUNTIME_DIRECTORY to every RuntimeDirectory=, colon-separated.
  const runtime = env['RUNTIME_DIRECTORY']?.split(':').find((d) => isAbsolute(d));
  if (runtime) return runtime;
  // The XDG spec says a relative XDG_RUNTIME_DIR must be ignored.
  const xdg = env['XDG_RUNTIME_DIR'];
  if (xdg && isAbsolute(xdg)) return join(xdg, 'handover');
  return `/tmp/handover-${uid}`;
}

/**
 * `<dir>/<config name>-<10 hex of sha256(absolute config path)>.sock`. The
 * name is only there for people listing the directory; the hash makes it
 * unique, so the name is shortened first when the path would not fit.
 */
export function defaultControlSocket(configFile: string, env: NodeJS.ProcessEnv = process.env, uid: number = currentUid()): string {
  const abs = resolve(configFile);
  const dir = controlDir(env, uid);
  const hash = sha256Hex(abs).slice(0, HASH_HEX_CHARS);
  const suffix = `-${hash}.sock`;
  const room = MAX_SOCKET_PATH_BYTES - Buffer.byteLength(join(dir, suffix));
  if (room < 0) {
    throw new Error(
      `control socket directory ${dir} is too long for a Unix socket path (limit ${MAX_SOCKET_PATH_BYTES} bytes); set control.socket`,
    );
  }
  const name = truncateBytes(basename(abs, extname(abs)), room);
  return join(dir, `${name}${suffix}`);
}

/** Cuts at a character boundary so that a multi-byte name never leaves half a character. */
function truncateBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const size = Buffer.byteLength(ch);
    if (bytes + size > maxBytes) break;
    out += ch;
    bytes += size;
  }
  return out;
}

/** Why a socket path cannot be bound, or undefined when it can. */
export function socketPathProblem(path: string): string | undefined {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    return `socket path is ${bytes} bytes, more than the ${MAX_SOCKET_PATH_BYTES} a Unix socket allows: ${path}`;
  }
  if (path.includes('\0')) return 'socket path contains NUL';
  return undefined;
}

/**
 * Creates the socket's directory (mode 0700) or checks an existing one. In a
 * shared place like /tmp another user may have created it first, possibly as
 * a symlink to a directory they control, and could then replace our socket
 * with theirs; so it must be a real directory, ours, and closed to others.
 */
export function ensureControlDir(dir: string, uid: number = currentUid()): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new Error(`control socket directory ${dir}: cannot create: ${errorCode(err)}`);
  }
  const problem = controlDirProblem(dir, uid);
  if (problem) throw new Error(problem);
}

/**
 * Why an existing directory is not safe for the socket, or undefined (also
 * when it does not exist yet: then it will be created 0700).
 */
export function controlDirProblem(dir: string, uid: number = currentUid()): string | undefined {
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return `control socket directory ${dir}: cannot stat: ${errorCode(err)}`;
  }
  if (st.isSymbolicLink()) return `control socket directory ${dir} is a symbolic link; it must be a real directory`;
  if (!st.isDirectory()) return `control socket directory ${dir} is not a directory`;
  if (st.uid !== uid) return `control socket directory ${dir} is owned by uid ${st.uid}, not by us (uid ${uid})`;
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    return (
      `control socket directory ${dir} has mode ${mode.toString(8).padStart(4, '0')}; ` +
      'group and others must have no access (chmod 700, or RuntimeDirectoryMode=0700 under systemd)'
    );
  }
  return undefined;
}

function errorCode(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ?? err.message;
  return String(err);
}
