// The kernel and Node facts handover is built on (/work/shared/FACTS.md),
// each measured in a network namespace of its own so that setting
// net.ipv4.tcp_migrate_req touches nothing else on the machine. The socket
// work happens in fact-probe.ts, run inside the namespace (Node cannot
// setns); this file sets the namespace up, judges the numbers and always
// deletes the namespace.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PROBE = fileURLToPath(new URL('./fact-probe.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CAP_SYS_ADMIN = 21n;
const PROBE_TIMEOUT_MS = 30_000;
const K = 20;

/** Why these tests cannot run here, or undefined when they can. */
async function missingPrivilege(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root: creates network namespaces';
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  if (capEff !== undefined && ((BigInt(`0x${capEff}`) >> CAP_SYS_ADMIN) & 1n) === 0n) {
    return 'needs CAP_SYS_ADMIN: creates network namespaces';
  }
  try {
    await run('ip', ['-V']);
  } catch {
    return 'needs iproute2 (`ip netns`)';
  }
  return undefined;
}

/** Skips (or, under CI, fails) when the test cannot run here; true when it may go on. */
async function canRun(t: TestContext): Promise<boolean> {
  const reason = await missingPrivilege();
  if (reason === undefined) return true;
  if (process.env.CI) assert.fail(`${reason} (CI is set, so this is a failure, not a skip)`);
  t.skip(reason);
  return false;
}

/**
 * Runs fact-probe.ts with `args` in a fresh namespace where lo is up and
 * tcp_migrate_req has `migrateReq`; returns its JSON. The namespace is
 * deleted whatever happens.
 */
async function probe(migrateReq: 0 | 1, ...args: string[]): Promise<Record<string, unknown>> {
  const ns = `ho-k-${process.pid}-${randomBytes(3).toString('hex')}`;
  await run('ip', ['netns', 'add', ns]);
  try {
    const inNs = (cmd: string, ...rest: string[]) => run('ip', ['netns', 'exec', ns, cmd, ...rest], { timeout: PROBE_TIMEOUT_MS });
    await inNs('ip', 'link', 'set', 'lo', 'up');
    await inNs('sysctl', '-qw', `net.ipv4.tcp_migrate_req=${migrateReq}`);
    const env = { ...process.env, HO_OUTER_NETNS: readlinkSync('/proc/self/ns/net') };
    const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', PROBE, ...args], {
      timeout: PROBE_TIMEOUT_MS,
      env,
      cwd: ROOT,
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
    assert.equal(result.tcpMigrateReq, migrateReq, 'the probe saw the sysctl of its namespace');
    assert.notEqual(result.netns, env.HO_OUTER_NETNS, 'the probe ran in a namespace of its own');
    return result;
  } finally {
    await run('ip', ['netns', 'delete', ns]);
  }
}

describe('kernel facts (FACTS.md), each in a network namespace of its own', () => {
  it('tcp_migrate_req=1: shutdown() of a listener migrates its whole accept queue to a sibling in LISTEN', async (t) => {
    if (!(await canRun(t))) return;
    const r = await probe(1, 'migrate', String(K));
    t.diagnostic(JSON.stringify(r));
    // Bound-but-not-listening B got none of them: "must know" 2.
    assert.equal(r.bListeningWhileQueued, false);
    assert.equal(r.queuedOnA, K, 'TCP_INFO tcpi_unacked is the accept-queue length');
    assert.equal(r.procRxQueueOfA, K, '/proc/net/tcp rx_queue shows the same');
    assert.equal(r.aListeningAfterShutdown, false);
    assert.equal(r.acceptedByB, K, 'every queued connection was accepted through B');
    assert.deepEqual(r.outcomes, { served: K });
    assert.ok(Number(r.migrateReqSuccess) >= K, `TCPMigrateReqSuccess rose by ${r.migrateReqSuccess}, expected ≥ ${K}`);
  });

  it('tcp_migrate_req=0: the same shutdown() resets every queued connection; TCP_INFO counted them', async (t) => {
    if (!(await canRun(t))) return;
    const r = await probe(0, 'migrate', String(K));
    t.diagnostic(JSON.stringify(r));
    assert.equal(r.queuedOnA, K, 'the TCP_INFO snapshot before the shutdown equals what is lost');
    assert.equal(r.acceptedByB, 0);
    assert.deepEqual(r.outcomes, { reset: K }, 'each client sees ECONNRESET');
    assert.equal(r.migrateReqSuccess, 0);
  });

  it('tcp_migrate_req=1 but no sibling in LISTEN: migration fails and the queue is reset', async (t) => {
    if (!(await canRun(t))) return;
    const r = await probe(1, 'migrate', String(K), '--no-sibling');
    t.diagnostic(JSON.stringify(r));
    assert.equal(r.queuedOnA, K);
    assert.deepEqual(r.outcomes, { reset: K });
    assert.equal(r.migrateReqSuccess, 0);
    assert.ok(Number(r.migrateReqFailure) >= K, `TCPMigrateReqFailure rose by ${r.migrateReqFailure}, expected ≥ ${K}`);
  });

  it('close() by one holder leaves a shared socket in LISTEN; shutdown() by another takes it out', async (t) => {
    if (!(await canRun(t))) return;
    const r = await probe(0, 'holders');
    t.diagnostic(JSON.stringify(r));
    assert.equal(r.listeningWithWorker, true);
    assert.equal(r.servedByWorker, 'served');
    assert.equal(r.listeningAfterWorkerClose, true, "the worker's close() left the socket in LISTEN");
    assert.equal(r.queuedAfterWorkerClose, 1, 'and it still takes connections that nobody will accept');
    assert.equal(r.listeningAfterShutdown, false, "the master's shutdown() took it out of LISTEN");
    assert.equal(r.lingeringOutcome, 'reset', 'what was queued is reset (no sibling, no migration)');
    assert.equal(r.connectAfterShutdown, 'refused');
  });

  it('a Node worker still polling a shut-down listener spins with no error until it closes its server', async (t) => {
    if (!(await canRun(t))) return;
    const r = await probe(0, 'spin');
    t.diagnostic(JSON.stringify(r));
    assert.ok(Number(r.cpuIdle) < 0.2, `idle worker used ${r.cpuIdle} of a core`);
    // ~0.9–1.0 of a core measured on an idle 2-core machine, but a busy machine
    // gives a spinning process only its share: compare with the same worker
    // idle and after it closed its server (~0.001), not with a fixed bar.
    const quiet = Math.max(Number(r.cpuIdle), Number(r.cpuAfterClose), 0.005);
    assert.ok(Number(r.cpuAfterShutdown) > 10 * quiet && Number(r.cpuAfterShutdown) > 0.05, `worker used ${r.cpuAfterShutdown} of a core after the shutdown (${quiet} when quiet)`);
    assert.equal(r.errorEvents, 0, "no 'error' event tells the worker");
    assert.ok(Number(r.cpuAfterClose) < 0.2, `worker used ${r.cpuAfterClose} of a core after closing its server`);
  });
});
