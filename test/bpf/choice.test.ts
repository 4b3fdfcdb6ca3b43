// The choice of hand-off strategy, and the lines `handover check --kernel`
// prints, from probe results as different hosts would give them (the probe
// itself runs on the real kernel in test/kernel/bpf.test.ts).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseStrategy, formatKernelCheck } from '../../src/bpf/index.js';
import type { CanaryResult, KernelProbe } from '../../src/bpf/index.js';
import { NotSupportedError, parseCapabilities, parseKernelRelease } from '../../src/sys/index.js';

const passed: CanaryResult = { status: 'passed', ms: 3 };
const refused = new NotSupportedError('bpf BPF_MAP_CREATE ho_sockets', { capability: 'CAP_BPF or CAP_SYS_ADMIN' });

/** A host: Linux 6.18 as root with tcp_migrate_req=1, unless `over` says otherwise. */
function host(over: Partial<KernelProbe> & { release?: string } = {}): KernelProbe {
  const kernel = parseKernelRelease(over.release ?? '6.18.44-fc-v669')!;
  return {
    kernel,
    arch: 'x64',
    capabilities: { effective: '000001ffffffffff', names: ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_BPF'] },
    tcpMigrateReq: { value: 1, writable: true },
    ebpf: { ok: true },
    cbpf: { ok: true },
    canary: { sysctl: passed, ebpf: passed, cbpf: passed },
    probedAt: '2025-01-01T00:00:00.000Z',
    ...over,
  };
}

const pod = (): KernelProbe =>
  host({
    capabilities: { effective: '0000000000000000', names: [] },
    tcpMigrateReq: { value: 0, writable: false, why: 'read-only file system' },
    ebpf: { ok: false, reason: refused.message, error: refused },
    canary: { sysctl: { status: 'skipped', reason: 'off' }, ebpf: { status: 'skipped', reason: 'no program' }, cbpf: passed },
  });

const pick = (probe: KernelProbe, specsUnchanged = true, configured: Parameters<typeof chooseStrategy>[0] = 'auto') => {
  const d = chooseStrategy(configured, probe, specsUnchanged);
  return d.ok ? d.strategy : `error: ${d.error.message}`;
};

describe('auto: bpf > migrate > inherit (specs unchanged) > drain > none', () => {
  it('takes the best this host allows', () => {
    assert.equal(pick(host()), 'bpf');
    assert.equal(pick(host({ ebpf: { ok: false, reason: refused.message, error: refused } })), 'migrate');
    assert.equal(pick(pod()), 'inherit');
    assert.equal(pick(pod(), false), 'drain');
    assert.equal(pick({ ...pod(), cbpf: { ok: false, reason: 'no', error: new Error('no') } }, false), 'none');
  });

  it('gives the reason for every strategy it passed over', () => {
    const d = chooseStrategy('auto', pod(), false);
    assert.ok(d.ok);
    assert.equal(d.strategy, 'drain');
    assert.deepEqual(d.rejected.map((r) => r.strategy), ['bpf', 'migrate', 'inherit']);
    assert.match(d.rejected[0]!.reason, /needs CAP_BPF or CAP_SYS_ADMIN/);
    assert.match(d.rejected[1]!.reason, /net.ipv4.tcp_migrate_req = 1 .*read-only file system/);
    assert.match(d.rejected[2]!.reason, /every listener spec unchanged/);
  });

  it('a failing canary demotes its mechanism', () => {
    const broken: CanaryResult = { status: 'failed', reason: 'the connection queued on A was reset instead of migrating to B' };
    assert.equal(pick(host({ canary: { sysctl: passed, ebpf: broken, cbpf: passed } })), 'migrate');
    assert.equal(pick(host({ canary: { sysctl: broken, ebpf: broken, cbpf: passed } })), 'inherit');
    assert.equal(pick(host({ canary: { sysctl: broken, ebpf: broken, cbpf: broken } }), false), 'none');
    const d = chooseStrategy('auto', host({ canary: { sysctl: passed, ebpf: broken, cbpf: passed } }), true);
    assert.ok(d.ok);
    assert.match(d.rejected[0]!.reason, /the canary failed: the connection queued on A was reset/);
  });

  it('kernels before 5.14 have neither bpf nor migrate; before 4.5 no drain', () => {
    const old = host({ release: '5.10.0-28-amd64', tcpMigrateReq: { value: null, writable: false, why: 'no such sysctl' } });
    const d = chooseStrategy('auto', old, false);
    assert.ok(d.ok);
    assert.equal(d.strategy, 'drain');
    assert.match(d.rejected[0]!.reason, /strategy bpf \(kernel 5.10.0-28-amd64\) is not supported here: needs Linux 5.14/);
    assert.match(d.rejected[1]!.reason, /needs Linux 5.14/);
    assert.equal(pick(host({ release: '4.4.0' }), false), 'none');
  });

  it('migrate with the sysctl at 0: available when the master may and can set it', () => {
    const off = host({ ebpf: { ok: false, reason: 'x', error: refused }, tcpMigrateReq: { value: 0, writable: true } });
    const d = chooseStrategy('auto', off, true, { setTcpMigrateReq: true });
    assert.ok(d.ok);
    assert.equal(d.strategy, 'migrate');
    assert.match(d.notes[0]!, /the master sets net.ipv4.tcp_migrate_req = 1/);
    assert.equal(pick(off), 'inherit', 'not without reload.set_tcp_migrate_req');
  });
});

describe('a forced strategy', () => {
  it('stands when the host can do it', () => {
    assert.equal(pick(host(), true, 'migrate'), 'migrate');
    assert.equal(pick(pod(), true, 'drain'), 'drain');
    assert.equal(pick(pod(), false, 'inherit'), 'inherit', 'inherit is per address; the plan handles changed ones');
    assert.equal(pick(pod(), false, 'none'), 'none');
  });

  it('fails naming the missing capability, kernel or sysctl', () => {
    const bpf = chooseStrategy('bpf', pod(), true);
    assert.ok(!bpf.ok);
    assert.ok(bpf.error instanceof NotSupportedError);
    assert.equal(bpf.error.capability, 'CAP_BPF or CAP_SYS_ADMIN');
    assert.equal(bpf.error.message, 'strategy bpf is not supported here: needs CAP_BPF or CAP_SYS_ADMIN');
    const old = chooseStrategy('migrate', host({ release: '5.4.0' }), true);
    assert.ok(!old.ok);
    assert.equal(old.error.minKernel, 'Linux 5.14');
    const off = chooseStrategy('migrate', pod(), true);
    assert.ok(!off.ok);
    assert.match(off.error.message, /needs net.ipv4.tcp_migrate_req = 1 in the master's network namespace \(it is 0\)/);
  });
});

describe('handover check --kernel', () => {
  it('prints each probe, the choice and why the better ones were passed over', () => {
    const p = pod();
    const lines = formatKernelCheck(p, chooseStrategy('auto', p, true));
    assert.deepEqual(lines, [
      'kernel: Linux 6.18.44-fc-v669 (x64)',
      '  capabilities:                   none of CAP_BPF, CAP_SYS_ADMIN, CAP_NET_ADMIN (CapEff 0000000000000000)',
      '  net.ipv4.tcp_migrate_req:       0 in this network namespace, not writable (read-only file system)',
      '  eBPF select-or-migrate program: no: bpf BPF_MAP_CREATE ho_sockets is not supported here: needs CAP_BPF or CAP_SYS_ADMIN',
      '  classic BPF steering:           attaches',
      '  canary, sysctl migration:       skipped: off',
      '  canary, eBPF migration:         skipped: no program',
      '  canary, classic steering:       passed (3 ms)',
      'reload.strategy: auto -> inherit',
      '  bpf      passed over: strategy bpf is not supported here: needs CAP_BPF or CAP_SYS_ADMIN',
      "  migrate  passed over: strategy migrate is not supported here: needs net.ipv4.tcp_migrate_req = 1 in the master's network namespace (it is 0), in /etc/sysctl.d/ (or reload.set_tcp_migrate_req: true, but it is not writable here: read-only file system)",
      '  inherit  chosen',
      '  drain    available',
      '  none     available',
      '  for kernel migration add "net.ipv4.tcp_migrate_req = 1" to /etc/sysctl.d/99-handover.conf (systemd/99-handover.conf ships it)',
    ]);
  });

  it('a forced strategy the host cannot do is one line', () => {
    const lines = formatKernelCheck(pod(), chooseStrategy('bpf', pod(), true));
    assert.equal(lines[8], 'reload.strategy: bpf: cannot run here: strategy bpf is not supported here: needs CAP_BPF or CAP_SYS_ADMIN');
  });
});

describe('kernel release and capabilities', () => {
  it('parses uname releases', () => {
    assert.deepEqual(parseKernelRelease('5.15.0-91-generic'), { release: '5.15.0-91-generic', major: 5, minor: 15, patch: 0 });
    assert.deepEqual(parseKernelRelease('6.1'), { release: '6.1', major: 6, minor: 1, patch: 0 });
    assert.equal(parseKernelRelease('linux'), null);
  });

  it('reads CapEff', () => {
    const caps = parseCapabilities('Name:\tnode\nCapEff:\t000001fffeffffff\n');
    assert.deepEqual(caps.names, ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_PERFMON', 'CAP_BPF']);
    assert.equal(caps.has(39), true);
    const bpfOnly = parseCapabilities(`CapEff:\t${(1n << 39n).toString(16).padStart(16, '0')}\n`);
    assert.deepEqual(bpfOnly.names, ['CAP_BPF']);
    assert.deepEqual(parseCapabilities('CapEff:\t0000000000000000').names, []);
  });
});
