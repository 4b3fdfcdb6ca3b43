// Part of `npm run build`, after tsc: replaces dist/vendor/*.js, which tsc
// emits as plain re-exports of zod and yaml, with one bundled module each
// holding only what src/vendor/*.ts exports (esbuild, which tsx already
// brings). Why: Node 20's ESM loader pays per module, and zod's entry loads
// 94 of them (its 50 locales included) and yaml's some 60 CommonJS files, on
// every `handover check`, `status`, `reload` and master start. The bundles
// have no source maps: the code is the libraries', unchanged. Each starts
// with its package's name, version and license text, which both licenses
// ask to travel with copies.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

for (const name of ['zod', 'yaml']) {
  const manifest = require.resolve(`${name}/package.json`);
  const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
  const license = readFileSync(join(dirname(manifest), 'LICENSE'), 'utf8').trim().replaceAll('*/', '* /');
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
    banner: {
      js: [
        `/*! ${name} ${version}, bundled by handover's scripts/vendor.mjs from src/vendor/${name}.ts\n\n${license}\n*/`,
        // yaml is CommonJS and requires node:process: an ES module has no require of its own (zod's bundle does not use it).
        `import { createRequire as __vendorRequire } from 'node:module';`,
        `const require = __vendorRequire(import.meta.url);`,
      ].join('\n'),
    },
  });
  rmSync(`${root}dist/vendor/${name}.js.map`, { force: true });
}
