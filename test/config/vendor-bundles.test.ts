// The vendored zod and yaml, and the configuration loader's bundle, as
// dist/ loads them (scripts/vendor.mjs, src/vendor/bundles.ts): under Node
// 20 from the code cache the build made,
// and from their source when that cache is refused or missing. A plain node
// each time, with no flags: V8 refuses a cache made under other flags.
// Needs the build (npm test builds first).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { ROOT } from '../harness/master.js';

const VENDOR = join(ROOT, 'dist/vendor');
const NODE_CACHES = typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function';

/** Runs `body` (an ES module) in a fresh node; returns what it printed as JSON. */
function inFreshNode(body: string): unknown {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', body], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `node exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const work = mkdtempSync(join(tmpdir(), 'handover-vendor-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('the vendored bundles', () => {
  it('load from the code cache the build made (Node 20), or under Node\'s own compile cache (22.1+)', () => {
    const use = inFreshNode(`
      const bundles = await import(${JSON.stringify(pathToFileURL(join(VENDOR, 'bundles.js')).href)});
      const { loadConfig } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/config/index.js')).href)});
      loadConfig(${JSON.stringify(join(ROOT, 'config/handover.yaml'))});
      console.log(JSON.stringify(bundles.cacheUse()));
    `);
    const expected = NODE_CACHES ? 'node' : 'accepted';
    // Under Node 22.1+ the configuration loader is tsc's modules, under Node's compile cache.
    assert.deepEqual(use, NODE_CACHES ? { zod: expected, yaml: expected } : { zod: expected, yaml: expected, config: expected });
  });

  it('hold one ConfigError class: the bundle throws the one the package exports', () => {
    const out = inFreshNode(`
      const config = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/config/index.js')).href)});
      const pkg = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist/index.js')).href)});
      let thrown;
      try { config.parseConfigObject({ workers: 'many' }, '/nowhere/handover.yaml'); } catch (err) { thrown = err; }
      console.log(JSON.stringify({ same: config.ConfigError === pkg.ConfigError, instance: thrown instanceof pkg.ConfigError, name: thrown?.name }));
    `);
    assert.deepEqual(out, { same: true, instance: true, name: 'ConfigError' });
  });

  it('run from their source when the cache is refused or missing', { skip: NODE_CACHES && "Node 22.1+ loads them with require, under its own compile cache" }, () => {
    for (const f of readdirSync(VENDOR)) if (/\.(js|cjs|cache)$/.test(f)) copyFileSync(join(VENDOR, f), join(work, f));
    writeFileSync(join(work, 'zod.cache'), Buffer.alloc(4096, 7)); // not a cache V8 takes
    rmSync(join(work, 'yaml.cache'));
    const out = inFreshNode(`
      const z = await import(${JSON.stringify(pathToFileURL(join(work, 'zod.js')).href)});
      const yaml = await import(${JSON.stringify(pathToFileURL(join(work, 'yaml.js')).href)});
      const bundles = await import(${JSON.stringify(pathToFileURL(join(work, 'bundles.js')).href)});
      const doc = yaml.parseDocument('workers: 3');
      const parsed = z.strictObject({ workers: z.int().min(1) }).safeParse(doc.toJS());
      const refused = z.enum(['a', 'b']).safeParse('c').success;
      console.log(JSON.stringify({ use: bundles.cacheUse(), parsed: parsed.data, refused }));
    `);
    assert.deepEqual(out, { use: { zod: 'rejected', yaml: 'absent' }, parsed: { workers: 3 }, refused: false });
  });
});
