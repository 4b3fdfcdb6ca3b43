// Which configuration file a command uses when -c is not given. The order is
// what a user standing in their project expects: the environment (set by a
// unit file or a shell), the project's own file, then the default that ships
// with handover. The choice is always said out loud, on stderr, so that a
// command never silently talks about another configuration than the user's.
import { statSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './usage.js';

/** The default shipped with handover: serves its examples/hello. */
export const EMBEDDED_CONFIG = fileURLToPath(new URL('../../config/handover.yaml', import.meta.url));

export const CONFIG_ENV = 'HANDOVER_CONFIG';

/** Looked for in the current directory, in this order. */
export const PROJECT_CONFIGS = ['handover.yaml', 'handover.yml', 'config/handover.yaml'] as const;

export type ConfigOrigin = 'option' | 'env' | 'project' | 'embedded';

export interface ConfigChoice {
  readonly file: string;
  readonly origin: ConfigOrigin;
}

/** The file a command uses. Throws UsageError when the choice is ambiguous or names a missing file. */
export function chooseConfig(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ConfigChoice {
  if (explicit !== undefined) return { file: explicit, origin: 'option' };
  const fromEnv = env[CONFIG_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    // A variable naming a missing file is a mistake to report, not a reason
    // to quietly fall back to another configuration.
    if (!isFile(resolve(cwd, fromEnv))) throw new UsageError(`$${CONFIG_ENV} names ${fromEnv}, which is not a file`);
    return { file: fromEnv, origin: 'env' };
  }
  const present = PROJECT_CONFIGS.filter((name) => isFile(resolve(cwd, name)));
  if (present.includes('handover.yaml') && present.includes('handover.yml')) {
    throw new UsageError(`both ./handover.yaml and ./handover.yml exist here: remove one, or choose with -c FILE`);
  }
  const found = present[0];
  if (found) return { file: found, origin: 'project' };
  return { file: EMBEDDED_CONFIG, origin: 'embedded' };
}

/** The line that says which file is used, or undefined when the user named it with -c. */
export function describeChoice(choice: ConfigChoice, cwd = process.cwd()): string | undefined {
  switch (choice.origin) {
    case 'option':
      return undefined;
    case 'env':
      return `handover: using ${choice.file} (from $${CONFIG_ENV})`;
    case 'project':
      return `handover: using ./${choice.file} (in the current directory; -c FILE picks another)`;
    case 'embedded':
      return `handover: using the default configuration ${displayPath(choice.file, cwd)} (no ./handover.yaml here; \`handover init APP\` writes one)`;
  }
}

function displayPath(file: string, cwd: string): string {
  const rel = relative(cwd, file);
  return rel.startsWith('..') ? file : `./${rel}`;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false; // absent, or not ours to see: either way not a file we can use
  }
}
