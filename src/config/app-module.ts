// Whether the workers' node can load the app module, decided from its file
// name and `node_args` alone. The app is never imported here: an
// unmodified app runs its listen() when imported.
import { createRequire } from 'node:module';
import { extname, join } from 'node:path';

const JAVASCRIPT = new Set(['.js', '.mjs', '.cjs']);
const TYPESCRIPT = new Set(['.ts', '.mts', '.cts']);
const NEEDS_LOADER = new Set(['.tsx', '.jsx']);

/** Options whose value is a module Node loads before the app (a loader or preload). */
const LOADER_OPTIONS = new Set(['--import', '--loader', '--experimental-loader', '--require', '-r']);
/** Options that make Node itself run TypeScript (erasable syntax), where it has them. */
const STRIP_TYPES = new Set(['--experimental-strip-types', '--experimental-transform-types']);

export interface LoaderArg {
  /** Index in node_args of the item that names the module. */
  readonly index: number;
  readonly specifier: string;
}

/** The modules node_args makes Node load first: `--import tsx`, `--import=tsx`, `-r ts-node/register`. */
export function loaders(nodeArgs: readonly string[]): LoaderArg[] {
  const found: LoaderArg[] = [];
  nodeArgs.forEach((arg, i) => {
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!LOADER_OPTIONS.has(name)) return;
    if (eq > 0) found.push({ index: i, specifier: arg.slice(eq + 1) });
    else if (nodeArgs[i + 1] !== undefined) found.push({ index: i + 1, specifier: nodeArgs[i + 1]! });
  });
  return found;
}

/** Whether this Node strips TypeScript types by default (22.18+, 23.6+). */
function stripsTypesByDefault(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18);
}

/** What keeps the workers from loading `app` with `nodeArgs`, or undefined. */
export function appModuleProblem(app: string, nodeArgs: readonly string[]): string | undefined {
  const ext = extname(app).toLowerCase();
  if (ext === '' || JAVASCRIPT.has(ext)) return undefined;
  if (loaders(nodeArgs).length > 0) return undefined;
  const fix = 'add node_args: ["--import", "tsx"] (development; npm install --save-dev tsx), or compile it and point app at the .js file';
  if (TYPESCRIPT.has(ext)) {
    if (nodeArgs.includes('--no-experimental-strip-types')) return `${app} is TypeScript, and node_args turn Node's type stripping off: ${fix}`;
    if (stripsTypesByDefault() || nodeArgs.some((a) => STRIP_TYPES.has(a))) return undefined;
    return `${app} is TypeScript, which Node ${process.version} cannot run by itself: ${fix}`;
  }
  if (NEEDS_LOADER.has(ext)) return `${app} needs a loader for ${ext}: ${fix}`;
  return `${app}: Node cannot import a "${ext}" file as the app; use a .js, .mjs or .cjs module`;
}

/** Whether `specifier` (a package or a relative path, as node_args names it) resolves from the workers' directory. */
export function loaderProblem(specifier: string, cwd: string): string | undefined {
  if (specifier.startsWith('data:') || specifier.startsWith('node:')) return undefined;
  try {
    createRequire(join(cwd, 'index.js')).resolve(specifier.startsWith('file:') ? new URL(specifier).pathname : specifier);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // The package is there, but exports no CommonJS entry: `import` finds it.
    if (code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') return undefined;
    const install = specifier.startsWith('.') || specifier.startsWith('/') ? '' : ` (npm install --save-dev ${specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/')})`;
    return `cannot find "${specifier}" from the workers' directory ${cwd}: install it there${install}, or set cwd: to the project that has it`;
  }
}
