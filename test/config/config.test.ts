// Configuration: loading, defaults, located errors, auto workers, and the
// control socket's path and directory. Run from the repository root:
//   node --import tsx --test test/config/config.test.ts

import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  ConfigError,
  autoWorkers,
  cgroupCpuLimit,
  configJsonSchema,
  defaultControlSocket,
  ensureControlDir,
  loadConfig,
  parseAddress,
  parseDuration,
  type Config,
} from '../../src/config/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'handover-config-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
writeFileSync(join(tmp, 'app.js'), 'export default (req, res) => res.end("ok");\n');
writeFileSync(join(tmp, 'tls.crt'), 'cert');
writeFileSync(join(tmp, 'tls.key'), 'key');

let counter = 0;
/** Writes a config into its own file, so every error names a distinct file. */
function write(text: string): string {
  const file = join(tmp, `case-${++counter}.yaml`);
  writeFileSync(file, text);
  return file;
}

const MINIMAL = 'app: app.js\nlisten:\n  - address: 127.0.0.1:0\n';

function load(text: string): Config {
  return loadConfig(write(text));
}

/** Loads a config that must fail and checks each expected problem's line and key path. */
function fails(text: string, expected: ReadonlyArray<readonly [line: number, path: string, fragment: string]>): ConfigError {
  const file = write(text);
  let error: unknown;
  try {
    loadConfig(file);
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
  const lines = error.message.split('\n');
  assert.equal(lines.length, expected.length, error.message);
  for (const [line, path, fragment] of expected) {
    const found = lines.find((l) => l.startsWith(`${file}:${line}:`) && (path === '' || l.includes(`: ${path}: `)) && l.includes(fragment));
    assert.ok(found, `no problem at line ${line}, ${path}, "${fragment}" in:\n${error.message}`);
  }
  return error;
}

describe('loading', () => {
  test('the embedded default config/handover.yaml loads and needs no root', () => {
    const config = loadConfig('config/handover.yaml');
    assert.equal(config.file, resolve('config/handover.yaml'));
    assert.equal(config.app, resolve('examples/hello/app.js'));
    assert.equal(config.workers, 2);
    assert.deepEqual(config.listen[0]?.address, { host: '127.0.0.1', port: 8080, family: 4, text: '127.0.0.1:8080' });
    assert.equal(config.listen.length, 1);
    assert.equal(config.user, undefined);
    assert.equal(config.group, undefined);
    assert.doesNotMatch(config.controlSocket, /^\/(etc|run)\//);
  });

  test('a minimal config gets every default', () => {
    const config = load(MINIMAL);
    assert.equal(config.app, join(tmp, 'app.js'));
    assert.ok(config.workers >= 1 && config.workers <= availableParallelism());
    assert.deepEqual(config.listen[0], {
      address: { host: '127.0.0.1', port: 0, family: 4, text: '127.0.0.1:0' },
      backlog: 511,
      v6only: false,
      http2: false,
    });
    assert.deepEqual(config.reload, {
      strategy: 'auto',
      setTcpMigrateReq: false,
      readyTimeoutMs: 10_000,
      settleMs: 1000,
      drainTimeoutMs: 30_000,
      watch: true,
    });
    assert.equal(config.stopDelayMs, 0);
    assert.equal(config.metrics, undefined);
    assert.deepEqual(config.log, { level: 'info', format: 'auto' });
    assert.deepEqual(config.env, {});
  });

  test('durations become milliseconds', () => {
    const config = load(
      `${MINIMAL}reload:\n  ready_timeout: 500ms\n  settle: 2.5\n  drain_timeout: 1m30s\nstop_delay: 2m\n`,
    );
    assert.equal(config.reload.readyTimeoutMs, 500);
    assert.equal(config.reload.settleMs, 2500);
    assert.equal(config.reload.drainTimeoutMs, 90_000);
    assert.equal(config.stopDelayMs, 120_000);
    const cases: ReadonlyArray<readonly [string | number, number | undefined]> = [
      ['10s', 10_000], ['1h', 3_600_000], ['0s', 0], [0, 0], ['30', 30_000], [0.25, 250],
      ['5x', undefined], ['10 s', undefined], ['', undefined], [-1, undefined], ['s', undefined], ['999h', undefined],
    ];
    for (const [input, ms] of cases) {
      const parsed = parseDuration(input);
      assert.deepEqual(parsed.ok ? parsed.value : undefined, ms, `parseDuration(${JSON.stringify(input)})`);
    }
  });

  test('IPv6, localhost, TLS paths, metrics, env and an explicit control socket', () => {
    const config = load(
      'app: ./app.js\nworkers: 3\nlisten:\n' +
        '  - address: "[::]:443"\n    v6only: true\n    tls: { cert: tls.crt, key: tls.key }\n' +
        '  - address: "[0:0::1]:0"\n  - address: localhost:8080\n    backlog: 1024\n' +
        'metrics: { listen: "[::1]:9469" }\ncontrol: { socket: run/web.sock }\n' +
        'user: www-data\ngroup: 33\nenv: { NODE_ENV: production, PORT: 8080 }\nlog: { level: debug, format: journal }\n',
    );
    assert.equal(config.workers, 3);
    assert.deepEqual(config.listen[0], {
      address: { host: '::', port: 443, family: 6, text: '[::]:443' },
      backlog: 511,
      v6only: true,
      tls: { cert: join(tmp, 'tls.crt'), key: join(tmp, 'tls.key'), sni: [] },
      http2: false,
    });
    assert.equal(config.listen[1]?.address.text, '[::1]:0');
    assert.deepEqual(config.listen[2]?.address, { host: '127.0.0.1', port: 8080, family: 4, text: '127.0.0.1:8080' });
    assert.equal(config.listen[2]?.backlog, 1024);
    assert.equal(config.metrics?.listen.text, '[::1]:9469');
    assert.equal(config.controlSocket, join(tmp, 'run/web.sock'));
    assert.equal(config.user, 'www-data');
    assert.equal(config.group, '33');
    assert.deepEqual(config.env, { NODE_ENV: 'production', PORT: '8080' });
    assert.equal(config.log.level, 'debug');
    assert.equal(config.log.format, 'journal');
  });

  test('address parsing', () => {
    const bad: ReadonlyArray<readonly [string, RegExp]> = [
      ['1.2.3.4:70000', /^port 70000 is out of range \(0-65535\)$/],
      ['1.2.3.4', /^expected host:port, e\.g\. 127\.0\.0\.1:8080 or \[::\]:443$/],
      ['1.2.3.4:http', /expected host:port/],
      [':8080', /expected host:port/],
      ['::1:80', /need brackets/],
      ['example.com:80', /not an IP address/],
      ['[1.2.3.4]:80', /not an IPv6 address/],
      ['256.1.1.1:80', /not an IP address/],
    ];
    for (const [text, message] of bad) {
      const parsed = parseAddress(text);
      assert.ok(!parsed.ok, text);
      assert.match(parsed.message, message, text);
    }
    const v6 = parseAddress('[::1]:0');
    assert.deepEqual(v6.ok && v6.value, { host: '::1', port: 0, family: 6, text: '[::1]:0' });
  });

  test('the result is deeply frozen', () => {
    const config = load(`${MINIMAL}env: { A: b }\n`);
    for (const part of [config, config.listen, config.listen[0], config.listen[0]?.address, config.reload, config.log, config.env]) {
      assert.ok(Object.isFrozen(part));
    }
    assert.throws(() => {
      (config.reload as { watch: boolean }).watch = false;
    }, TypeError);
  });

  test('the JSON Schema describes the input side for editors', () => {
    const schema = configJsonSchema();
    assert.deepEqual(schema['required'], ['app', 'listen']);
    assert.equal(schema['additionalProperties'], false);
    const reload = schema.properties?.['reload'];
    assert.equal(reload?.properties?.['ready_timeout']?.['default'], '10s');
    assert.deepEqual(reload?.properties?.['strategy']?.['enum'], ['auto', 'bpf', 'migrate', 'drain', 'inherit', 'none']);
  });
});

describe('problems name file, line and key path', () => {
  test('unknown keys, top-level and nested, with a suggestion', () => {
    fails(`${MINIMAL}listn: []\n`, [[4, 'listn', 'unknown key "listn" (did you mean "listen"?)']]);
    fails(`${MINIMAL}reload:\n  strategy: drain\n  ready_timout: 5s\n`, [[6, 'reload.ready_timout', 'did you mean "ready_timeout"']]);
    fails(`${MINIMAL}    tls: { cert: tls.crt, key: tls.key, chain: c }\n`, [[4, 'listen.0.tls.chain', 'unknown key "chain"']]);
  });

  test('wrong types', () => {
    fails(`${MINIMAL}workers: two\n`, [[4, 'workers', 'must be a positive integer or "auto"']]);
    fails(`${MINIMAL}reload:\n  watch: "yes"\n`, [[5, 'reload.watch', 'expected boolean']]);
    fails('app: app.js\nlisten: 127.0.0.1:80\n', [[2, 'listen', 'expected a list of listeners']]);
    fails(`${MINIMAL}    backlog: 70000\n`, [[4, 'listen.0.backlog', 'from 1 to 65535']]);
    fails(`${MINIMAL}reload: { strategy: fast }\n`, [[4, 'reload.strategy', 'must be one of auto, bpf']]);
    fails(`${MINIMAL}env:\n  OK: 1\n  "A=B": x\n`, [[6, 'env.A=B', 'cannot be empty or contain "="']]);
  });

  test('missing app file, missing key, missing TLS files', () => {
    const e = fails('app: dist/server.js\nlisten:\n  - address: 0.0.0.0:80\n', [[1, 'app', 'app file not found: ']]);
    assert.ok(e.problems[0]?.message.endsWith(join(tmp, 'dist/server.js')));
    fails('listen:\n  - address: 0.0.0.0:80\n', [[1, 'app', 'is required']]);
    fails(`${MINIMAL}    tls:\n      cert: none.crt\n      key: none.key\n`, [
      [5, 'listen.0.tls.cert', 'certificate file not found'],
      [6, 'listen.0.tls.key', 'key file not found'],
    ]);
  });

  test('addresses: out-of-range port, unparseable, v6only on IPv4, duplicates', () => {
    fails('app: app.js\nlisten:\n  - address: 0.0.0.0:70000\n', [[3, 'listen.0.address', 'port 70000 is out of range (0-65535)']]);
    fails('app: app.js\nlisten:\n  - address: web-1\n', [[3, 'listen.0.address', 'expected host:port, e.g. 127.0.0.1:8080 or [::]:443']]);
    fails('app: app.js\nlisten:\n  - address: 0.0.0.0:80\n    v6only: true\n', [[4, 'listen.0.v6only', 'is IPv4']]);
    fails('app: app.js\nlisten:\n  - address: "[::1]:80"\n  - address: "[0::1]:80"\n', [[4, 'listen.1.address', 'duplicate listen address [::1]:80']]);
    fails('app: app.js\nlisten: []\n', [[2, 'listen', 'at least one']]);
  });

  test('workers 0', () => {
    fails(`${MINIMAL}workers: 0\n`, [[4, 'workers', 'must be at least 1']]);
  });

  test('YAML syntax error', () => {
    const e = fails('app: app.js\nlisten:\n  - address: [127.0.0.1:80\nworkers: 2\n', [[4, '', 'Flow sequence']]);
    assert.equal(e.problems[0]?.path, '');
    fails(`${MINIMAL}env: *nowhere\n`, [[4, '', 'Unresolved alias']]);
  });

  test('every problem is reported at once, in file order', () => {
    const e = fails(
      'app: missing.js\nworkers: 0\nlisten:\n  - address: 1.2.3.4:99999\n    colour: red\n' +
        'reload:\n  drain_timeout: soon\nlog: { level: loud, format: xml }\n',
      [
        [1, 'app', 'app file not found'],
        [2, 'workers', 'at least 1'],
        [4, 'listen.0.address', 'out of range'],
        [5, 'listen.0.colour', 'unknown key'],
        [7, 'reload.drain_timeout', 'expected a duration'],
        [8, 'log.level', 'must be one of'],
        [8, 'log.format', 'must be one of auto, json, pretty, journal'],
      ],
    );
    assert.deepEqual(e.problems.map((p) => p.line), [1, 2, 4, 5, 7, 8, 8]);
    assert.ok(e.problems.every((p) => p.column !== undefined && p.column >= 1));
  });

  test('an unreadable file is a ConfigError too', () => {
    const file = join(tmp, 'absent.yaml');
    assert.throws(() => loadConfig(file), (err: unknown) => err instanceof ConfigError && err.message === `${file}: cannot read: ENOENT (no such file or directory)`);
  });
});

describe('workers: auto', () => {
  const files = (map: Record<string, string>) => (path: string) => map[path];
  const service = '0::/system.slice/web.service\n';

  test('honours the tightest cgroup v2 quota on the chain', () => {
    const read = files({
      '/proc/self/cgroup': service,
      '/sys/fs/cgroup/system.slice/web.service/cpu.max': '150000 100000\n',
      '/sys/fs/cgroup/system.slice/cpu.max': 'max 100000\n',
    });
    assert.equal(cgroupCpuLimit(read), 2);
    assert.equal(autoWorkers(read, 8), 2);
    assert.equal(autoWorkers(read, 1), 1);
    const tighterParent = files({
      '/proc/self/cgroup': service,
      '/sys/fs/cgroup/system.slice/web.service/cpu.max': '400000 100000',
      '/sys/fs/cgroup/system.slice/cpu.max': '100000 100000',
    });
    assert.equal(autoWorkers(tighterParent, 8), 1);
  });

  test('without a quota uses every CPU, and a container root quota counts', () => {
    assert.equal(autoWorkers(files({ '/proc/self/cgroup': service }), 6), 6);
    assert.equal(autoWorkers(files({ '/sys/fs/cgroup/cpu.max': 'max 100000' }), 6), 6);
    assert.equal(autoWorkers(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '200000 100000' }), 6), 2);
    assert.equal(autoWorkers(files({ '/sys/fs/cgroup/cpu.max': '5000 100000' }), 6), 1);
  });
});

describe('control socket', () => {
  const env = { XDG_RUNTIME_DIR: '/run/user/1000' };

  test('the default path is deterministic and distinct per config file', () => {
    const a = defaultControlSocket('/srv/web/handover.yaml', env, 1000);
    assert.match(a, /^\/run\/user\/1000\/handover\/handover-[0-9a-f]{10}\.sock$/);
    assert.equal(defaultControlSocket('/srv/web/handover.yaml', env, 1000), a);
    assert.equal(defaultControlSocket('/srv/web/../web/handover.yaml', env, 1000), a);
    assert.notEqual(defaultControlSocket('/srv/api/handover.yaml', env, 1000), a);
  });

  test('directory precedence: RUNTIME_DIRECTORY, XDG_RUNTIME_DIR, /tmp/handover-<uid>', () => {
    const both = { RUNTIME_DIRECTORY: '/run/web:/run/web2', XDG_RUNTIME_DIR: '/run/user/0' };
    assert.match(defaultControlSocket('/a/web.yaml', both, 0), /^\/run\/web\/web-[0-9a-f]{10}\.sock$/);
    assert.match(defaultControlSocket('/a/web.yaml', { XDG_RUNTIME_DIR: 'relative' }, 42), /^\/tmp\/handover-42\/web-/);
    assert.match(defaultControlSocket('/a/web.yaml', {}, 42), /^\/tmp\/handover-42\/web-/);
  });

  test('stays within the 108-byte sun_path, shortening the name but keeping the hash', () => {
    const longDir = `/var/lib/${'d'.repeat(60)}`;
    const file = `/etc/${'x'.repeat(200)}.yaml`;
    const path = defaultControlSocket(file, { RUNTIME_DIRECTORY: longDir }, 0);
    assert.ok(Buffer.byteLength(path) <= 107, `${Buffer.byteLength(path)} bytes`);
    assert.match(path, /\/x+-[0-9a-f]{10}\.sock$/);
    const wide = defaultControlSocket(`/etc/${'é'.repeat(100)}.yaml`, { RUNTIME_DIRECTORY: longDir }, 0);
    assert.ok(Buffer.byteLength(wide) <= 107 && !wide.includes('\uFFFD'));
    assert.throws(() => defaultControlSocket('/a.yaml', { RUNTIME_DIRECTORY: `/${'d'.repeat(100)}` }, 0), /too long/);
    fails(`${MINIMAL}control: { socket: ${'s'.repeat(120)} }\n`, [[4, 'control.socket', 'more than the 107']]);
  });

  test('ensureControlDir creates 0700 directories and refuses unsafe ones', () => {
    const uid = process.getuid?.() ?? 0;
    const fresh = join(tmp, 'ctl', 'nested');
    ensureControlDir(fresh, uid);
    assert.equal(lstatSync(fresh).mode & 0o777, 0o700);
    ensureControlDir(fresh, uid); // idempotent

    const open = join(tmp, 'ctl-open');
    mkdirSync(open);
    chmodSync(open, 0o755);
    assert.throws(() => ensureControlDir(open, uid), (e: unknown) => e instanceof Error && e.message.includes(open) && /mode 0755/.test(e.message));

    const file = join(tmp, 'ctl-file');
    writeFileSync(file, '');
    assert.throws(() => ensureControlDir(file, uid), /cannot create: EEXIST|not a directory/);

    const link = join(tmp, 'ctl-link');
    symlinkSync(fresh, link);
    assert.throws(() => ensureControlDir(link, uid), /symbolic link/);

    assert.throws(() => ensureControlDir(fresh, uid + 1), new RegExp(`owned by uid ${uid}`));
  });

  test('ensureControlDir refuses a directory another user created', { skip: process.getuid?.() !== 0 && 'needs root to chown' }, () => {
    const theirs = join(tmp, 'ctl-theirs');
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, 65534, 65534);
    assert.throws(() => ensureControlDir(theirs, 0), /owned by uid 65534, not by us \(uid 0\)/);
  });
});
