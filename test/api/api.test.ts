// The programmatic API as a user's launcher script meets it: a master
// started from an object in this process (the built package, dist/index.js:
// workers run compiled JavaScript), real workers, real HTTP.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type * as Api from '../../src/index.js';
import { HELLO, ROOT } from '../harness/master.js';

// Types from the source, code from the build (what the package ships).
const DIST_INDEX = join(ROOT, 'dist/index.js');
const { start, ConfigError } = (await import(DIST_INDEX)) as typeof Api;

const logs: string[] = [];
const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });
const handles: Api.Handover[] = [];
after(async () => {
  for (const h of handles) await h.stop({ fast: true });
});

const config = {
  app: HELLO,
  workers: 2,
  listen: [{ address: '127.0.0.1:0' }],
  reload: { drain_timeout: '2s' },
  env: { HANDOVER_LOG_LEVEL: 'warn' }, // the workers' own log lines would land in the test's output
} satisfies Api.Config;

async function get(address: string | undefined): Promise<[number, string]> {
  const r = await fetch(`http://${address}/`);
  return [r.status, await r.text()];
}

describe('start() from an object', () => {
  it('serves, reloads (with and without new options), refuses invalid options without touching the master, and stops', async () => {
    const h = await start(config, { logger });
    handles.push(h);
    assert.equal(h.pid, process.pid);
    const s = h.status();
    assert.equal(s.generation, 1);
    assert.deepEqual(s.generations[0]?.workers.map((w) => w.state), ['serving', 'serving']);
    const [code, body] = await get(s.listen[0]);
    assert.equal(code, 200);
    assert.match(body, /^hello from worker \d+/);

    const same = await h.reload();
    assert.deepEqual([same.result, same.previous, same.generation], ['ok', 1, 2]);
    const fewer = await h.reload({ ...config, workers: 1 });
    assert.deepEqual([fewer.result, fewer.generation], ['ok', 3]);
    assert.equal(h.status().generations.find((g) => g.generation === 3)?.workers.length, 1);

    await assert.rejects(h.reload({ ...config, workers: 0, listen: [{ address: 'nowhere' }] }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((p) => [p.file, p.path]), [['start() options', 'workers'], ['start() options', 'listen.0.address']]);
      return true;
    });
    assert.equal(h.status().generation, 3, 'an invalid reload changes nothing');
    assert.equal((await get(h.status().listen[0]))[0], 200);

    const home = dirname(h.status().config);
    assert.ok(existsSync(home));
    await h.stop();
    await h.stopped;
    assert.ok(!existsSync(home), 'its private directory is removed');
    assert.ok(logs.some((l) => l.includes('"msg":"stopped"')), 'the given logger was used');
  });

  it('resolves relative paths against `dir`, and rejects invalid options naming each key', async () => {
    const h = await start({ ...config, app: 'examples/hello/app.js', workers: 1 }, { dir: ROOT, logger });
    handles.push(h);
    assert.equal((await get(h.status().listen[0]))[0], 200);
    await h.stop({ fast: true });

    await assert.rejects(start({ app: './nope.js', listen: [] }, { dir: ROOT, logger }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((p) => p.path), ['listen', 'app']);
      assert.match(err.message, /^start\(\) options: listen: at least one listen address is needed$/m);
      assert.match(err.message, /app file not found: .*nope\.js$/m);
      return true;
    });
    await assert.rejects(start({ ...config, reload: { watch: true } }, { logger }), /reload\.watch: there is no file to watch/);
  });
});
