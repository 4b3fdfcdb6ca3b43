// Loads the bundles scripts/vendor.mjs makes (dist/vendor/zod.cjs and
// yaml.cjs, and dist/config/config.cjs, handover's own configuration
// loader) with V8's code cache. Node 22 keeps compiled code on
// disk by itself (module.enableCompileCache, main.ts); Node 20 does not, and
// compiling zod and yaml, and compiling again each function a command calls,
// was the largest part of `handover check` after the bundles cut the module
// count (bench/cli-cost.ts). So the build runs a representative validation
// once and stores the code V8 compiled for it beside each bundle
// (<name>.cache); every later start reads it instead of compiling. A cache
// V8 refuses (another Node version, other V8 flags) or a missing one costs
// nothing but the compile it would have saved: the bundle runs from its
// source, as any module does.
//
// Node 22.1 and later load the bundles with require instead, so that their
// own compile cache (enabled in main.ts) covers them: a cache V8 made under
// another version would be refused there anyway. The configuration loader
// is not bundled for them: its stub imports tsc's modules (dist/config/
// entry.js), which that cache covers too.
//
// Only dist/ uses this: under tsx, src/vendor/*.ts are plain re-exports.
import { readFileSync, writeFileSync } from 'node:fs';
import module, { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

/** `node`: loaded with require, under Node's own compile cache (22.1+). */
export type CacheUse = 'accepted' | 'rejected' | 'absent' | 'node';

interface Loaded {
  readonly script?: Script;
  readonly cacheFile: string;
  readonly cache: CacheUse;
}

/** Node 22.1+: Node caches compiled code itself. */
export const NODE_COMPILE_CACHE = typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function';

const loaded = new Map<string, Loaded>();

/** The CommonJS wrapper Node itself puts around a module's source. */
const WRAP_BEFORE = '(function (exports, require, module, __filename, __dirname) {';
const WRAP_AFTER = '\n})';

/**
 * Runs the bundle at `file` (dist/<dir>/<name>.cjs) and returns its exports;
 * its ES module stub asks once per process. `imports` answers the bundle's
 * require() of the modules it leaves out (the config bundle's zod, yaml and
 * error classes), by the specifier as written, so that the process holds one
 * copy of each: Node 20's require cannot load an ES module, and a second
 * ConfigError class would fail `instanceof`. Under Node 22.1+ only bundles
 * without `imports` come here (their stubs say so).
 */
export function loadBundle(file: URL, imports: Readonly<Record<string, unknown>> = {}): Record<string, unknown> {
  const path = fileURLToPath(file);
  const name = basename(path, '.cjs');
  const cacheFile = join(dirname(path), `${name}.cache`);
  const require = createRequire(path);
  if (NODE_COMPILE_CACHE) {
    if (Object.keys(imports).length > 0) throw new Error(`${name}: a bundle with imports is loaded through vm under Node 20 only`);
    loaded.set(name, { cacheFile, cache: 'node' });
    return require(path) as Record<string, unknown>;
  }
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined; // not built yet (the build's own run), or removed: compile from source
  }
  const script = new Script(WRAP_BEFORE + readFileSync(path, 'utf8') + WRAP_AFTER, { filename: path, cachedData });
  const cache: CacheUse = cachedData === undefined ? 'absent' : script.cachedDataRejected === true ? 'rejected' : 'accepted';
  loaded.set(name, { script, cacheFile, cache });
  const commonjs = { exports: {} as Record<string, unknown> };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  const given = (id: string): unknown => (Object.hasOwn(imports, id) ? imports[id] : require(id));
  wrapper(commonjs.exports, given, commonjs, path, dirname(path));
  return commonjs.exports;
}

/** What happened to each bundle's cache in this process (a test checks the build's caches are taken). */
export function cacheUse(): Record<string, CacheUse> {
  return Object.fromEntries([...loaded].map(([name, l]) => [name, l.cache]));
}

/**
 * Writes each bundle's cache: the code V8 compiled for it so far, the
 * functions the process ran included. The build calls this after a
 * validation; returns the files written (none under Node 22.1+).
 */
export function writeCaches(): string[] {
  const written: string[] = [];
  for (const { script, cacheFile } of loaded.values()) {
    if (!script) continue;
    writeFileSync(cacheFile, script.createCachedData());
    written.push(cacheFile);
  }
  return written;
}
