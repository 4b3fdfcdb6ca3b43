// Where the master for a configuration file listens, found cheaply. status,
// stop and reload need only the control socket (reload also its deadlines,
// to bound its wait), while validating the whole file loads zod and yaml and
// costs twice what the rest of a CLI run does. So:
//  1. A file that cannot name a control socket (no "control" outside its
//     comment lines) uses the default socket, derived from its path: no
//     parser at all.
//  2. Otherwise yaml alone reads control.socket (and the deadlines).
//  3. Anything unexpected (a syntax error, a value of the wrong type) falls
//     back to the full validation, which explains the problem.
// It reaches the same socket the master computed from the same file: the
// same defaultControlSocket(), the same resolution against the file's
// directory, the same yaml options as config/load.ts.
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
  // A key can only be spelt without "control" through an escape sequence.
  const mayNameSocket = /control|\\/.test(visible);
  const maySetDeadlines = wantDeadlines && /ready_timeout|settle|drain_timeout|\\/.test(visible);
  if (!mayNameSocket && !maySetDeadlines) return { socket: defaultControlSocket(file), deadlines: DEFAULT_DEADLINES };
  return (await fromYaml(text, file)) ?? validated(file);
}

/** control.socket and reload.* by the yaml parser alone; undefined when anything is not as the schema wants. */
async function fromYaml(text: string, file: string): Promise<ControlTarget | undefined> {
  const { parseDocument } = await import('yaml');
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
  const { loadConfig } = await import('../config/load.js');
  const config = loadConfig(file);
  return { socket: config.controlSocket, deadlines: config.reload };
}
