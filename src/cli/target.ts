// Where the master for a configuration file listens, found cheaply. status,
// stop and reload need only the control socket (reload also its deadlines,
// to bound its wait), while validating the whole file loads zod and yaml and
// costs twice what the rest of a CLI run does. So, in order:
//  1. Without a parser, for the files most people write: one that cannot
//     name a control socket (no "control" outside its comment lines) uses
//     the default socket, derived from its path; `control: { socket: P }`
//     or `control:` + `socket: P` with P a plain path (bare or quoted) is
//     read as written.
//     For reload's deadlines an upper bound is enough (they only bound how
//     long the CLI waits for the master, which keeps its own deadlines):
//     the longest value written for each key anywhere, else the defaults.
//  2. Otherwise yaml alone reads control.socket (and the deadlines).
//  3. Anything unexpected (a syntax error, a value of the wrong type) falls
//     back to the full validation, which explains the problem.
// It reaches the same socket the master computed from the same file: the
// same defaultControlSocket(), the same resolution against the file's
// directory, the same yaml options as config/load.ts (test/cli/target.test.ts).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { defaultControlSocket, socketPathProblem } from '../config/control-path.js';
import { parseDuration } from '../config/notation.js';

export interface Deadlines {
  readonly readyTimeoutMs: number;
  readonly settleMs: number;
  readonly drainTimeoutMs: number;
}

export interface ControlTarget {
  readonly socket: string;
  readonly deadlines: Deadlines;
}

/**
 * For files that do not set them: at least the schema's defaults (a test
 * checks). Only an upper bound on how long the CLI waits for an answer the
 * master gives by its own deadlines, so erring long is harmless.
 */
export const DEFAULT_DEADLINES: Deadlines = Object.freeze({ readyTimeoutMs: 10_000, settleMs: 1_000, drainTimeoutMs: 30_000 });

const DEADLINE_KEYS = { readyTimeoutMs: 'ready_timeout', settleMs: 'settle', drainTimeoutMs: 'drain_timeout' } as const;

/**
 * A line whose first non-blank character is `#` holds no key: it is a
 * comment, or the content of a block scalar or multi-line string. Dropping
 * it can hide a value, never a key.
 */
function withoutCommentLines(text: string): string {
  return text.replace(/^[ \t]*#.*$/gm, '');
}

/** The control socket and deadlines `file` gives the master. Throws ConfigError (from the full validation) when they cannot be read. */
export async function locateMaster(file: string, wantDeadlines: boolean): Promise<ControlTarget> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return validated(file); // it says why it cannot be read
  }
  const visible = withoutCommentLines(text);
  // A key can be spelt without its letters only through an escape sequence.
  if (!visible.includes('\\')) {
    const socket = plainSocket(visible, file);
    const deadlines = wantDeadlines ? deadlineBounds(visible) : DEFAULT_DEADLINES;
    if (socket !== undefined && deadlines !== undefined) return { socket, deadlines };
  }
  return (await fromYaml(text, file)) ?? validated(file);
}

/**
 * A path YAML reads as the very string written: a slash, no flow or special
 * characters, bare or in quotes (the caller has ruled out backslashes, so a
 * double-quoted one holds no escape). Its text is the first capture that matched.
 */
const PATH = String.raw`(?:/|\.\.?/)[\w./+=-]*`;
const PLAIN_PATH = String.raw`(?:(${PATH})|"(${PATH})"|'(${PATH})')`;
const TRAILER = String.raw`[ \t]*(?:[ \t]#.*)?`;
const FLOW_SOCKET = new RegExp(String.raw`^control:[ \t]*\{[ \t]*socket:[ \t]+${PLAIN_PATH}[ \t]*\}${TRAILER}$`, 'm');
const BLOCK_SOCKET = new RegExp(String.raw`^control:${TRAILER}\n(?:[ \t]*\n)* +socket:[ \t]+${PLAIN_PATH}${TRAILER}$`, 'm');

/** control.socket when the file writes it in one of the two plain forms, or names no control at all; undefined when a parser must tell. */
function plainSocket(visible: string, file: string): string | undefined {
  const mentions = (word: string): number => visible.split(word).length - 1;
  if (mentions('control') === 0) return defaultControlSocket(file);
  if (mentions('control') > 1 || mentions('socket') !== 1) return undefined;
  const m = FLOW_SOCKET.exec(visible) ?? BLOCK_SOCKET.exec(visible);
  const given = m?.[1] ?? m?.[2] ?? m?.[3];
  if (given === undefined) return undefined;
  const socket = resolve(dirname(resolve(file)), given);
  return socketPathProblem(socket) ? undefined : socket;
}

/** Per deadline, the longest value written for its key anywhere (or the default); undefined when one does not read as a duration. */
function deadlineBounds(visible: string): Deadlines | undefined {
  const bounds: Record<keyof Deadlines, number> = { ...DEFAULT_DEADLINES };
  for (const [key, name] of Object.entries(DEADLINE_KEYS) as [keyof Deadlines, string][]) {
    for (const m of visible.matchAll(new RegExp(String.raw`\b${name}["']?[ \t]*:[ \t]*["']?([^\s,}#"']+)`, 'g'))) {
      const parsed = parseDuration(m[1] ?? '');
      if (!parsed.ok) return undefined;
      bounds[key] = Math.max(bounds[key], parsed.value);
    }
  }
  return bounds;
}

/** control.socket and reload.* by the yaml parser alone; undefined when anything is not as the schema wants. */
async function fromYaml(text: string, file: string): Promise<ControlTarget | undefined> {
  const { parseDocument } = await import('../vendor/yaml.js');
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) return undefined;
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch {
    return undefined;
  }
  const control = field(raw, 'control');
  let socket: string;
  if (control === undefined) socket = defaultControlSocket(file);
  else {
    const given = field(control, 'socket');
    if (typeof given !== 'string' || given === '') return undefined;
    socket = resolve(dirname(resolve(file)), given);
    if (socketPathProblem(socket)) return undefined;
  }
  const reload = field(raw, 'reload');
  const deadlines: Record<keyof Deadlines, number> = { ...DEFAULT_DEADLINES };
  for (const [key, name] of Object.entries(DEADLINE_KEYS) as [keyof Deadlines, string][]) {
    const value = field(reload, name);
    if (value === undefined) continue;
    const parsed = typeof value === 'string' || typeof value === 'number' ? parseDuration(value) : undefined;
    if (!parsed?.ok) return undefined;
    deadlines[key] = parsed.value;
  }
  return { socket, deadlines };
}

function field(value: unknown, key: string): unknown {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
}

async function validated(file: string): Promise<ControlTarget> {
  const { loadConfig } = await import('../config/index.js');
  const config = loadConfig(file);
  return { socket: config.controlSocket, deadlines: config.reload };
}
