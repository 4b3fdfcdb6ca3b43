// The shipped unit files and sysctl drop-in: what systemd itself says of
// them (systemd-analyze verify exits 0 even on bad values, so its output is
// what counts), the directives the deployment relies on, and the facts the
// comments claim (V8 under MemoryDenyWriteExecute; the drop-in's effect).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { KILL_GRACE_MS } from '../../src/master/handoff/cutover.js';
import { HELLO, MAIN, ROOT } from '../harness/master.js';
import { needsRoot, Netns } from '../harness/netns.js';

const UNITS = join(ROOT, 'systemd');
const dir = mkdtempSync(join(tmpdir(), 'handover-units-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** systemd-analyze's version, or undefined after skipping (failing under CI) when it is missing. */
function analyzeVersion(t: TestContext): number | undefined {
  const r = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  const version = /^systemd (\d+)/.exec(r.stdout ?? '')?.[1];
  if (version) return Number(version);
  if (process.env['CI']) throw new Error('systemd-analyze is missing (Debian package systemd); CI is set, so this fails instead of skipping');
  t.skip('systemd-analyze is not installed (Debian package systemd)');
  return undefined;
}

/** systemd-analyze verify on a copy of `unit` whose commands run the built dist/main.js; its whole output. */
function verify(unit: string, edit: (text: string) => string = (s) => s): string {
  const copy = join(dir, unit);
  writeFileSync(copy, edit(readFileSync(join(UNITS, unit), 'utf8').replaceAll('/usr/bin/handover', MAIN)));
  const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', cwd: dir });
  return `${r.stdout}${r.stderr}`.trim();
}

/** Directive → values, comments and section headers left out. */
function directives(unit: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of readFileSync(join(UNITS, unit), 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m?.[1]) map.set(m[1], [...(map.get(m[1]) ?? []), m[2] ?? '']);
  }
  return map;
}

const seconds = (v: string | undefined): number => Number(/^(\d+)s$/.exec(v ?? '')?.[1] ?? NaN);

describe('systemd units', () => {
  it('systemd-analyze verify: nothing to say about handover-notify.service; for handover.service only what systemd < 253 says of notify-reload', (t) => {
    const version = analyzeVersion(t);
    if (version === undefined) return;
    assert.equal(verify('handover-notify.service'), '');
    const out = verify('handover.service');
    if (version >= 253) assert.equal(out, '');
    else assert.match(out, /^\S*handover\.service:\d+: Failed to parse service type, ignoring: notify-reload$/);
    // The check itself can fail: a bad value is reported, though the exit code stays 0.
    assert.match(verify('handover-notify.service', (s) => s.replace('KillMode=mixed', 'KillMode=mixd')), /Failed to parse kill mode/);
  });

  it('carry the directives the deployment relies on, each capability explained', () => {
    const defaults = parseConfig(`app: ${HELLO}\nlisten: [{ address: 127.0.0.1:8080 }]\n`, join(dir, 'defaults.yaml'));
    for (const unit of ['handover.service', 'handover-notify.service']) {
      const d = directives(unit);
      const one = (key: string): string | undefined => d.get(key)?.[0];
      assert.equal(one('Type'), unit === 'handover.service' ? 'notify-reload' : 'notify', unit);
      assert.equal(one('NotifyAccess'), 'main');
      assert.match(one('ExecStart') ?? '', /^\/usr\/bin\/handover start -c \S+$/);
      if (unit === 'handover-notify.service') assert.match(one('ExecReload') ?? '', /^\/usr\/bin\/handover reload -c \S+$/);
      else assert.equal(d.has('ExecReload') || d.has('ReloadSignal'), false, 'notify-reload sends SIGHUP by default');
      assert.equal(one('KillMode'), 'mixed');
      assert.ok(seconds(one('TimeoutStopSec')) * 1000 > defaults.stopDelayMs + defaults.reload.drainTimeoutMs + KILL_GRACE_MS, `${unit}: TimeoutStopSec above stop_delay + drain_timeout + kill grace`);
      assert.equal(one('Restart'), 'on-failure');
      assert.equal(one('RuntimeDirectory'), 'handover');
      assert.equal(one('RuntimeDirectoryMode'), '0700');
      for (const [key, value] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'],
        ['RestrictAddressFamilies', 'AF_UNIX AF_INET AF_INET6 AF_NETLINK'], ['SystemCallArchitectures', 'native'], ['LockPersonality', 'yes']]) {
        assert.equal(one(key as string), value, `${unit}: ${key}`);
      }
      assert.equal(d.has('MemoryDenyWriteExecute'), false, 'MemoryDenyWriteExecute stays off (V8)');
      const text = readFileSync(join(UNITS, unit), 'utf8');
      for (const cap of (one('CapabilityBoundingSet') ?? '').split(' ')) {
        assert.match(text, new RegExp(`^#.*\\b${cap}\\b`, 'm'), `${unit}: ${cap} is explained in a comment`);
      }
    }
  });

  it("MemoryDenyWriteExecute would kill node: under the kernel's W^X (PR_SET_MDWE) V8's JIT aborts, only --jitless runs", (t) => {
    // The child sets PR_SET_MDWE on itself and runs two grandchildren, which inherit it.
    const script = `
      import { spawnSync } from 'node:child_process';
      import { libc } from ${JSON.stringify(join(ROOT, 'dist/sys/libc.js'))};
      const set = libc().prctl([65 /* PR_SET_MDWE */, 1 /* PR_MDWE_REFUSE_EXEC_GAIN */, 0, 0, 0]);
      const work = 'let s = 0; for (let i = 0; i < 1e5; i++) s += i; console.log(s)';
      const jit = spawnSync(process.execPath, ['-e', work]);
      const jitless = spawnSync(process.execPath, ['--jitless', '-e', work], { encoding: 'utf8' });
      console.log(JSON.stringify({ set: set.value, errno: set.errnoCode, jit: jit.signal ?? jit.status, jitless: jitless.status }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { set: number; errno: number; jit: string | number; jitless: number };
    if (out.set !== 0) {
      t.skip(`PR_SET_MDWE is not available on this kernel (errno ${out.errno}; Linux 6.3+)`);
      return;
    }
    assert.equal(out.jit, 'SIGTRAP', "V8's JIT aborts when it cannot make code executable");
    assert.equal(out.jitless, 0);
  });

  it('99-handover.conf sets net.ipv4.tcp_migrate_req = 1 (applied with sysctl -p in a namespace of its own)', async (t) => {
    if (!needsRoot(t)) return;
    const ns = await Netns.create('sysctl');
    try {
      assert.equal((await ns.sysctl('net.ipv4.tcp_migrate_req')).trim(), '0', 'a new namespace starts at 0');
      const r = await ns.run('sysctl', ['-p', join(UNITS, '99-handover.conf')]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await ns.sysctl('net.ipv4.tcp_migrate_req')).trim(), '1');
    } finally {
      await ns.destroy();
    }
  });
});
