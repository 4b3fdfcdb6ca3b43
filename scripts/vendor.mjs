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
//   - dist/config/config.cjs: handover's own configuration loader (the 12
//     modules behind src/config/index.ts) as one bundle, with its cache,
//     for the same reasons: each ES module cost Node 20's loader 0.5-1 ms
//     and its functions compiled again at every start. zod, yaml and the
//     error classes (config/problems.js, which the package's index exports
//     without loading a parser) stay out of it: dist/config/index.js, the
//     stub, hands the bundle its own ES modules of them, so a process holds
//     one ConfigError class. Under Node 22.1+ that stub imports tsc's
//     modules instead (dist/config/entry.js, tsc's index.js renamed), which
//     Node's compile cache covers.
// zod's and yaml's bundles have no source maps: the code is the libraries', unchanged.
// Each starts with its package's name, version and license text, which both
// licenses ask to travel with copies.
import { build } from 'esbuild';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const vendor = join(root, 'dist/vendor');
const configDir = join(root, 'dist/config');

/** The ES module that re-exports `names` from `bundle` (`enum` is a reserved word, so each is bound to a plain local first). */
function stub(comment, head, bundle, names) {
  return [
    `// Made by scripts/vendor.mjs: ${comment}`,
    ...head,
    `const bundle = ${bundle};`,
    ...names.map((n, i) => `const x${i} = bundle[${JSON.stringify(n)}];`),
    `export { ${names.map((n, i) => `x${i} as ${n}`).join(', ')} };`,
    '',
  ].join('\n');
}

/**
 * What every bundle is built with. They run through node:vm (bundles.ts),
 * which has no loader for import() (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING),
 * so a dynamic import becomes a require.
 */
const VM_BUNDLE = { bundle: true, format: 'cjs', platform: 'node', target: 'node20', logLevel: 'warning', supported: { 'dynamic-import': false } };

for (const name of ['zod', 'yaml']) {
  const manifest = require.resolve(`${name}/package.json`);
  const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
  const license = readFileSync(join(dirname(manifest), 'LICENSE'), 'utf8').trim().replaceAll('*/', '* /');
  const bundle = join(vendor, `${name}.cjs`);
  await build({
    entryPoints: [join(root, `src/vendor/${name}.ts`)],
    outfile: bundle,
    ...VM_BUNDLE,
    legalComments: 'inline',
    banner: { js: `/*! ${name} ${version}, bundled by handover's scripts/vendor.mjs from src/vendor/${name}.ts\n\n${license}\n*/` },
  });
  const names = Object.keys(require(bundle));
  const comment = `what src/vendor/${name}.ts exports, from the bundle ${name}.cjs (see bundles.js).`;
  writeFileSync(join(vendor, `${name}.js`), stub(comment, [`import { loadBundle } from './bundles.js';`], `loadBundle(new URL('./${name}.cjs', import.meta.url))`, names));
  rmSync(join(vendor, `${name}.js.map`), { force: true });
}

// The configuration loader. What the bundle leaves out, by the specifier its
// modules write (all of them sit in src/config/, as the stub in dist/config/).
const LEFT_OUT = ['../vendor/yaml.js', '../vendor/zod.js', './problems.js'];
const srcConfig = join(root, 'src/config');
await build({
  entryPoints: [join(srcConfig, 'index.ts')],
  outfile: join(configDir, 'config.cjs'),
  ...VM_BUNDLE, // load-async.ts imports node:worker_threads lazily
  // load-async.ts finds its thread's entry (dist/config/load-thread.js) beside itself.
  define: { 'import.meta.url': 'import_meta_url' },
  banner: { js: `// Made by scripts/vendor.mjs from src/config/index.ts: see dist/vendor/bundles.js.\nconst import_meta_url = require('node:url').pathToFileURL(__filename).href;` },
  plugins: [{
    name: 'left-out',
    setup(b) {
      b.onResolve({ filter: /\.js$/ }, (args) => {
        if (!LEFT_OUT.includes(args.path)) return undefined;
        if (dirname(args.importer) !== srcConfig) throw new Error(`${args.importer}: ${args.path} is left out of the config bundle only for src/config/`);
        return { path: args.path, external: true };
      });
    },
  }],
});
// tsc's index.js becomes entry.js (the stub below takes its name).
writeFileSync(join(configDir, 'entry.js'), readFileSync(join(configDir, 'index.js'), 'utf8').replace('//# sourceMappingURL=index.js.map', '//# sourceMappingURL=entry.js.map'));
renameSync(join(configDir, 'index.js.map'), join(configDir, 'entry.js.map'));
const configNames = Object.keys(await import(pathToFileURL(join(configDir, 'entry.js')).href));
const given = LEFT_OUT.map((spec, i) => `import * as i${i} from '${spec}';`);
writeFileSync(
  join(configDir, 'index.js'),
  stub(
    'what src/config/index.ts exports, from the bundle config.cjs (Node 20) or from tsc\'s modules (22.1+: see ../vendor/bundles.js).',
    [`import { NODE_COMPILE_CACHE, loadBundle } from '../vendor/bundles.js';`, ...given],
    `NODE_COMPILE_CACHE ? await import('./entry.js') : loadBundle(new URL('./config.cjs', import.meta.url), { ${LEFT_OUT.map((spec, i) => `${JSON.stringify(spec)}: i${i}`).join(', ')} })`,
    configNames,
  ),
);

// The caches: one validation of the shipped configuration through the stub,
// then what V8 compiled for it, bundle by bundle.
const bundles = await import(pathToFileURL(join(vendor, 'bundles.js')).href);
const { loadConfigAsync } = await import(pathToFileURL(join(configDir, 'index.js')).href);
try {
  await loadConfigAsync(join(root, 'config/handover.yaml'));
} catch (err) {
  // A build host can refuse what a user's would not (say, another user's
  // /tmp/handover-<uid>): the caches still cover everything that ran.
  process.stdout.write(`vendor: config/handover.yaml did not validate here (${String(err.message ?? err).split('\n')[0]}); caching what ran\n`);
}
for (const file of bundles.writeCaches()) process.stdout.write(`vendor: ${relative(root, file)}\n`);
