// `handover init`: a commented starter configuration next to an app. It is
// the shipped default (every key, explained) with the app and the schema
// reference pointed at the user's files, so the two cannot drift apart.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Output } from './commands.js';
import { EMBEDDED_CONFIG } from './discover.js';
import { UsageError } from './usage.js';

const SCHEMA = fileURLToPath(new URL('../../config/handover.schema.json', import.meta.url));

export const INIT_DEFAULT_FILE = 'handover.yaml';

export class InitRefused extends Error {
  override name = 'InitRefused';
}

/** `to` as written in a file in `dir`: relative (./ or ../), unless the two share no directory but the root. */
function pathFrom(dir: string, to: string): string {
  const rel = relative(dir, to);
  if (isAbsolute(rel) || dir.split(sep)[1] !== to.split(sep)[1]) return to;
  return rel.startsWith('..') ? rel : `./${rel}`;
}

/** The app named on the command line, else package.json's "main". */
function appOf(given: string | undefined, cwd: string): string {
  if (given !== undefined) return resolve(cwd, given);
  let main: unknown;
  try {
    main = (JSON.parse(readFileSync(resolve(cwd, 'package.json'), 'utf8')) as { main?: unknown }).main;
  } catch {
    main = undefined;
  }
  if (typeof main !== 'string' || main === '') {
    throw new UsageError('init: name the app module, e.g. handover init dist/server.js (package.json here has no "main")');
  }
  return resolve(cwd, main);
}

/** The starter text for a configuration at `file` serving `app` (both absolute). */
export function starterConfig(file: string, app: string): string {
  const dir = dirname(file);
  const text = readFileSync(EMBEDDED_CONFIG, 'utf8');
  const body = text.slice(text.indexOf('\n\n') + 2); // past the default's own header
  const appLine = /^app: .*$/m;
  if (!appLine.test(body)) throw new Error(`${EMBEDDED_CONFIG} has no "app:" line to start from`);
  return [
    `# yaml-language-server: $schema=${pathFrom(dir, SCHEMA)}`,
    '# handover configuration, written by `handover init`. Check it with',
    '# `handover check`, run it with `handover start` (without -c, both look for',
    '# ./handover.yaml, then ./config/handover.yaml).',
    "# Relative paths are resolved against this file's directory. Durations are",
    '# "500ms", "10s", "2m", "1h" or a number of seconds.',
    '',
    body.replace(appLine, `app: ${pathFrom(dir, app)}`),
  ].join('\n');
}

export function init(target: string | undefined, appArg: string | undefined, out: Output, warn: Output, cwd = process.cwd()): number {
  const file = resolve(cwd, target ?? INIT_DEFAULT_FILE);
  const app = appOf(appArg, cwd);
  const text = starterConfig(file, app);
  mkdirSync(dirname(file), { recursive: true });
  try {
    writeFileSync(file, text, { flag: 'wx' }); // never overwrite
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new InitRefused(`init: ${file} already exists; not overwriting it`);
    throw err;
  }
  const shown = pathFrom(cwd, file);
  out(`wrote ${shown} for ${pathFrom(cwd, app)}; edit listen and workers to taste`);
  if (!existsSync(app)) warn(`handover: note: ${pathFrom(cwd, app)} does not exist yet; build it before \`handover start\``);
  out(`next: handover check${target ? ` -c ${shown}` : ''} && handover start${target ? ` -c ${shown}` : ''}`);
  return 0;
}
