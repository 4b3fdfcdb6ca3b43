// The reload operation's contracts and the descriptor ownership of its
// building blocks, on real sockets in this process (no worker processes):
// failure paths release what they opened; after the commit nothing throws
// (the report says ok, with a warning, and the drain is scheduled); a
// never-listened socket is closed, not shut down (a shutdown would poison it).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { KernelProbe } from '../../src/bpf/index.js';
import { loadConfig, type Config } from '../../src/config/index.js';
import { createLogger } from '../../src/log/logger.js';
import { Generation, retireAll } from '../../src/master/generation.js';
import type { HandoffStrategy } from '../../src/master/handoff/strategy.js';
import { NO_HOOKS } from '../../src/master/lifecycle.js';
import { ReloadOperation, type ReloadHost } from '../../src/master/reload-operation.js';
import { createGeneration, spawnWorker, type Groups } from '../../src/master/spawn.js';
import { listenerSpec, openListener, socketAddress } from '../../src/net/index.js';
import { close as sysClose, dupCloexec, listen, parseKernelRelease } from '../../src/sys/index.js';
import { HELLO } from '../harness/master.js';

const log = createLogger({ level: 'fatal', name: 'test' });
const fds = (): number => readdirSync('/proc/self/fd').length;

/** What a pod's master sees (no program, no sysctl): auto picks inherit; nothing here probes the real kernel. */
function unprivilegedProbe(): KernelProbe {
  const off = { status: 'skipped', reason: 'not probed' } as const;
  return {
    kernel: parseKernelRelease('6.18.0')!, arch: 'x64', capabilities: { effective: '0000000000000000', names: [] },
    tcpMigrateReq: { value: 0, writable: false, why: 'read-only file system' },
    ebpf: { ok: false, reason: 'not probed', error: new Error('not probed') }, cbpf: { ok: true },
    canary: { sysctl: off, ebpf: off, cbpf: off }, probedAt: new Date(0).toISOString(),
  };
}

function configFile(listen: string[]): { config: Config; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'handover-op-'));
  const file = join(dir, 'handover.yaml');
  writeFileSync(file, `app: ${HELLO}\nworkers: 3\nlisten:\n${listen.map((a) => `  - address: ${a}\n`).join('')}reload: { watch: false, settle: 0s }\ncontrol: { socket: ${join(dir, 'c.sock')} }\n`);
  return { config: loadConfig(file), dir };
}

describe('descriptors on failure paths', () => {
  // 192.0.2.0/24 (TEST-NET-1) is never a local address: bind fails with EADDRNOTAVAIL.
  it('a generation whose second address cannot be bound leaves no socket open', () => {
    const { config, dir } = configFile(['127.0.0.1:0', '192.0.2.1:8080']);
    try {
      const before = fds();
      const groups: Groups = new Map();
      assert.throws(() => createGeneration(1, config, {}, new Map(), new Map(), groups), /EADDRNOTAVAIL/);
      assert.equal(fds(), before, 'the first address\'s three sockets were closed again');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a replacement whose second socket cannot be opened leaves no socket open and starts no process', () => {
    const { config, dir } = configFile(['127.0.0.1:0', '192.0.2.1:8080']);
    try {
      const generation = new Generation(1, config, {}, new Map());
      const slot = generation.slots[0]!;
      const before = fds();
      assert.throws(() => spawnWorker(generation, slot, { groups: new Map(), log, countRequests: false }), /EADDRNOTAVAIL/);
      assert.equal(fds(), before);
      assert.equal(slot.listeners.length, 0);
      assert.equal(slot.worker, undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('releasing listeners goes on past one that fails', () => {
    const spec = listenerSpec({ address: socketAddress('127.0.0.1', 0, 4), backlog: 8 });
    const a = openListener(spec);
    const b = openListener(spec, a.port);
    const c = openListener(spec, a.port);
    // Its descriptor closed behind its back (and not reused: nothing is opened after): releasing it fails with EBADF.
    const bad = openListener(spec, a.port);
    sysClose(bad.fd);
    const before = fds();
    assert.equal(retireAll([a, bad, b, c], log, 0), 1, 'one failure reported');
    assert.ok(a.closed && b.closed && c.closed, 'the others were released');
    assert.equal(fds(), before - 3);
  });
});

describe('a never-listened socket', () => {
  it('is closed, not shut down: another holder that listens on it later serves normally', async () => {
    const spec = listenerSpec({ address: socketAddress('127.0.0.1', 0, 4), backlog: 8 });
    const listener = openListener(spec);
    // A second holder of the same socket (as a worker that is still booting would be).
    const server = net.createServer((s) => s.end('ok'));
    const dup = dupCloexec(listener.fd);
    assert.equal(listener.retire(3_000), 'closed', 'never listened: closed at once');
    listen(dup, 8);
    await new Promise<void>((resolve) => server.listen({ fd: dup }, resolve));
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const c = net.connect(listener.port, '127.0.0.1');
        let data = '';
        c.on('data', (d) => (data += d));
        c.on('end', () => resolve(data));
        c.on('error', reject);
      });
      assert.equal(answer, 'ok', 'not poisoned: a shutdown() before listen() would reset every connection');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('after the commit nothing throws', () => {
  it('a cutover that throws still yields an ok report with a warning, and the old generation is scheduled to drain', async () => {
    const { config, dir } = configFile(['127.0.0.1:0']);
    try {
      const old = new Generation(1, config, {}, new Map());
      old.transition(['starting'], 'active');
      const broken: HandoffStrategy = { name: 'none', cutover: () => Promise.reject(new Error('EBADF on an old listener')), migrates: () => false, prepare: () => new Map(), start: () => {}, afterBoot: () => {}, rollback: () => Promise.resolve(), release: () => {} };
      const draining: Generation[] = [];
      let committed: Generation | undefined;
      let active: Generation | undefined = old;
      const host: ReloadHost = {
        log, config, stopping: false, hooks: NO_HOOKS, metrics: undefined,
        get active() { return active; },
        strategy: broken,
        refreshKernel: () => Promise.resolve({ tcpMigrateReq: 0, probedAt: 0, probe: unprivilegedProbe() }),
        strategyFor: () => broken,
        createGeneration: (c) => new Generation(2, c, {}, new Map()),
        boot: () => Promise.resolve(),
        setBuilding: () => {},
        commit: (next, prev) => {
          committed = next;
          active = next;
          next.transition(['starting'], 'active');
          prev.transition(['active'], 'draining');
        },
        draining: (g) => draining.push(g),
      };
      const op = new ReloadOperation(host, 1, 'control', { wall: new Date(), mono: performance.now() });
      const report = await op.run();
      assert.equal(report.result, 'ok', JSON.stringify(report));
      assert.equal(committed?.id, 2);
      assert.ok(report.warnings.some((w) => w.includes('cutover failed after the commit') && w.includes('EBADF')), JSON.stringify(report.warnings));
      assert.deepEqual(draining, [old], 'the old generation drains');
      await op.drained;
      assert.ok(report.drain, 'the drain ran and added its figures');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
