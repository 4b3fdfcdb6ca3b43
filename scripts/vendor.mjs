// Part of `npm run build`, after tsc: replaces dist/vendor/*.js, which tsc
// emits as plain re-exports of zod and yaml, with one bundled module each
// holding only what src/vendor/*.ts exports (esbuild, which tsx already
// brings). Why: Node 20's ESM loader pays per module, and zod's entry loads
// 94 of them (its 50 locales included) and yaml's some 60 CommonJS files, on
// every `handover check`, `status`, `reload` and master start. The bundles
// have no source maps: the code is the libraries', unchanged.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

for (const name of ['zod', 'yaml']) {
  await build({
    entryPoints: [`${root}src/vendor/${name}.ts`],
    outfile: `${root}dist/vendor/${name}.js`,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    allowOverwrite: true,
    logLevel: 'warning',
    legalComments: 'inline',
    // yaml is CommonJS and requires node:process: an ES module has no require of its own.
    banner: { js: `import { createRequire as __vendorRequire } from 'node:module';\nconst require = __vendorRequire(import.meta.url);` },
  });
  rmSync(`${root}dist/vendor/${name}.js.map`, { force: true });
}
