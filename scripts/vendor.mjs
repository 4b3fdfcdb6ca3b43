// Part of `npm run build`, after tsc: replaces dist/vendor/*.js, which tsc
// emits as plain re-exports of zod and yaml, with
//   - <name>.cjs: one bundle holding only what src/vendor/<name>.ts exports
//     (esbuild, which tsx already brings). Node 20's ESM loader pays per
//     module, and zod's entry loads 94 of them (its 50 locales included) and
//     yaml's some 60 CommonJS files, on every `handover check`, `status`,
//     `reload` and master start;
//   - <name>.js: the ES module the rest of dist imports, which runs the
//     bundle through dist/vendor/bundles.js with V8's code cache;
//   - <name>.cache: that cache, the code V8 compiled while this script
//     validated the shipped configuration (config/handover.yaml), so that a
//     command compiles neither the bundles nor the functions it calls.
// The bundles have no source maps: the code is the libraries', unchanged.
// Each starts with its package's name, version and license text, which both
// licenses ask to travel with copies.
import { build } from 'esbuild';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const vendor = join(root, 'dist/vendor');

for (const name of ['zod', 'yaml']) {
  const manifest = require.resolve(`${name}/package.json`);
  const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
  const license = readFileSync(join(dirname(manifest), 'LICENSE'), 'utf8').trim().replaceAll('*/', '* /');
  const bundle = join(vendor, `${name}.cjs`);
  await build({
    entryPoints: [join(root, `src/vendor/${name}.ts`)],
    outfile: bundle,
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
    legalComments: 'inline',
    banner: { js: `/*! ${name} ${version}, bundled by handover's scripts/vendor.mjs from src/vendor/${name}.ts\n\n${license}\n*/` },
  });
  // The names src/vendor/<name>.ts exports, as the bundle has them; `enum`
  // is a reserved word, so each is bound to a plain local first.
  const names = Object.keys(require(bundle));
  const lines = [
    `// Made by scripts/vendor.mjs: what src/vendor/${name}.ts exports, from the bundle ${name}.cjs (see bundles.js).`,
    `import { loadBundle } from './bundles.js';`,
    `const bundle = loadBundle(${JSON.stringify(name)});`,
    ...names.map((n, i) => `const x${i} = bundle[${JSON.stringify(n)}];`),
    `export { ${names.map((n, i) => `x${i} as ${n}`).join(', ')} };`,
    '',
  ];
  writeFileSync(join(vendor, `${name}.js`), lines.join('\n'));
  rmSync(join(vendor, `${name}.js.map`), { force: true });
}

// The caches: one validation of the shipped configuration, then what V8
// compiled for it, bundle by bundle.
const bundles = await import(pathToFileURL(join(vendor, 'bundles.js')).href);
const { loadConfig } = await import(pathToFileURL(join(root, 'dist/config/load.js')).href);
try {
  loadConfig(join(root, 'config/handover.yaml'));
} catch (err) {
  // A build host can refuse what a user's would not (say, another user's
  // /tmp/handover-<uid>): the caches still cover everything that ran.
  process.stdout.write(`vendor: config/handover.yaml did not validate here (${String(err.message ?? err).split('\n')[0]}); caching what ran\n`);
}
for (const file of bundles.writeCaches()) process.stdout.write(`vendor: ${relative(root, file)}\n`);
