// Classic-BPF steering and probe scenarios, run by bpf.test.ts inside a
// network namespace of their own and, for the unprivileged ones, with no
// capabilities at all (setpriv). Prints one JSON result line. They drive
// the master's own pieces: ReuseportGroup (the one model of the kernel's
// socket array, fed by the Listeners) and ClassicSteering (the group's
// steering under `drain`).
//
//   layout PORT   the kernel's socket array is what the group records, with
//                 sockets that joined in any order and are reported in
//                 another, before and after a leave
//   steer PORT    steering to the new generation, before and after an old
//                 listener's shutdown; the naive re-attach that is wrong
//   drain PORT    half-open requests on old listeners finish there before
//                 they are retired (the test holds them with nftables)
//   probe         the host's probe, the choice for each configured strategy
//                 (with and without a changed listener spec) and the lines
//                 `handover check --kernel` would print

import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { chooseStrategy, detachSteering, formatKernelCheck, probeKernel, steerToNew, steerToSlots } from '../../src/bpf/index.js';
import type { Handoff } from '../../src/bpf/index.js';
import { createLogger } from '../../src/log/logger.js';
import { ClassicSteering } from '../../src/master/handoff/classic-steering.js';
import { countSynRecv, HalfOpenSnapshot, listenerSpec, ReuseportGroup, socketAddress } from '../../src/net/index.js';
import type { Listener } from '../../src/net/index.js';
import { attachReuseportCbpf, effectiveCapabilities, listen } from '../../src/sys/index.js';
import { Client, connectMany, finish, serve, step, tally, until } from './scenario-kit.js';

const BACKLOG = 512;
const log = createLogger({ level: 'silent', name: 'scenario' });
const queued = (l: Listener): number => (l.isListening() ? (l.queue()?.queued ?? 0) : 0);

function groupOf(port: number, family: 4 | 6, count: number): { group: ReuseportGroup; ls: Listener[] } {
  const spec = listenerSpec({ address: socketAddress(family === 4 ? '127.0.0.1' : '::1', port, family), backlog: BACKLOG });
  const group = new ReuseportGroup(spec.address);
  return { group, ls: group.openMany(spec, count) };
}

/**
 * Five listeners join in a shuffled order, in two batches, each batch
 * reported (markListening, as verifyListening does when a worker says
 * ready) in index order; a classic program returning k shows which socket
 * sits in slot k (its accept queue grows). Checked against the group's
 * record, then again after one socket leaves.
 */
async function layout(port: number, family: 4 | 6) {
  const host = family === 4 ? '127.0.0.1' : '::1';
  const { group, ls } = groupOf(port, family, 5);
  const clients: Client[] = [];
  try {
    const order = [3, 0, 4, 1, 2];
    for (const i of order.slice(0, 2)) listen(ls[i]!.fd, BACKLOG);
    for (const i of [0, 3]) ls[i]!.markListening();
    for (const i of order.slice(2)) listen(ls[i]!.fd, BACKLOG);
    for (const i of [1, 2, 4]) ls[i]!.markListening();
    const joined = group.members.map((l) => ls.indexOf(l));
    const probeSlots = async (n: number): Promise<number[]> => {
      const seen: number[] = [];
      for (let slot = 0; slot < n; slot++) {
        const before = ls.map(queued);
        const anchor = ls.find((l) => l.isListening())!;
        attachReuseportCbpf(anchor.fd, steerToSlots([slot]));
        clients.push(...(await connectMany(1, port, host)));
        await until(() => ls.some((l, i) => queued(l) > before[i]!), `a connection steered to slot ${slot}`);
        seen.push(ls.findIndex((l, i) => queued(l) > before[i]!));
      }
      return seen;
    };
    const kernelBefore = await probeSlots(5);
    const modelBefore = [...joined];
    const leaving = ls[0]!; // in slot 1
    const slot = group.members.indexOf(leaving);
    leaving.shutdown();
    const left = { slot, moved: ls.indexOf(group.members[slot]!) };
    const kernelAfter = await probeSlots(4);
    return { family, order, joined, kernelBefore, modelBefore, left, kernelAfter, modelAfter: group.members.map((l) => ls.indexOf(l)) };
  } finally {
    for (const c of clients) c.socket.destroy();
    for (const l of ls) l.close();
  }
}

/**
 * Three old listeners nobody accepts from, three new ones served: where do
 * new SYNs go, with the group steered by ClassicSteering, before and after
 * old listeners are retired one by one?
 */
async function steer(port: number) {
  const { group, ls } = groupOf(port, 4, 6);
  const old = ls.slice(0, 3);
  const fresh = ls.slice(3);
  const servers: net.Server[] = [];
  const clients: Client[] = [];
  const onOld = (): number => old.reduce((n, l) => n + queued(l), 0);
  try {
    for (const l of old) listen(l.fd, BACKLOG);
    old[0]!.markListening();
    for (const l of fresh) servers.push(await serve(l.fd, 'B'));
    fresh[2]!.markListening();
    const steering = ClassicSteering.steer(group, fresh, (l) => fresh.includes(l), log);
    const first = await connectMany(60, port);
    clients.push(...first);
    const steered = await tally(first);
    const onOldSteered = onOld();
    // Retire old listener 1 while connections keep coming.
    const during: Client[] = [];
    const load = (async () => {
      for (let i = 0; i < 30; i++) {
        during.push(new Client(port));
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const slot = group.members.indexOf(old[1]!);
    old[1]!.shutdown();
    const retired = { slot, moved: ls.indexOf(group.members[slot]!), window: steering.windows > 0 };
    await load;
    clients.push(...during);
    const second = await connectMany(60, port);
    clients.push(...second);
    const afterLeave = await tally([...during, ...second]);
    const onOldAfterLeave = onOld();
    const slots = group.members.map((l) => ls.indexOf(l));
    // What the naive re-attach does: assume "old, then new" still holds.
    attachReuseportCbpf(old[0]!.fd, steerToNew(2, 3));
    const third = await connectMany(60, port);
    clients.push(...third);
    const detached = [steering.end(), detachSteering(fresh[0]!.fd, group.members.length)];
    return {
      detached,
      capEff: effectiveCapabilities().effective.toString(16), steered, onOldSteered, retired,
      slots, afterLeave, onOldAfterLeave, naiveOnOld: onOld() - onOldAfterLeave,
    };
  } finally {
    for (const c of clients) c.socket.destroy();
    for (const s of servers) s.close();
    for (const l of ls) l.close();
  }
}

/**
 * The drain, at the kernel level: requests half-open on the old listeners
 * (the test's nftables rule holds them between the steps "listening" and
 * "steered") complete into the old accept queues once released, the old
 * "workers" accept them, and only then are the old listeners retired.
 */
async function drain(port: number) {
  const { group, ls } = groupOf(port, 4, 4);
  const [old, fresh] = [ls.slice(0, 2), ls.slice(2)];
  const servers: net.Server[] = [];
  const clients: Client[] = [];
  try {
    for (const l of old) servers.push(await serve(l.fd, 'A'));
    old[1]!.markListening();
    await step('listening');
    for (let i = 0; i < 10; i++) clients.push(new Client(port));
    await Promise.all(clients.map((c) => c.connected()));
    await until(() => countSynRecv(port) === 10, '10 half-open requests on the old listeners');
    for (const l of fresh) servers.push(await serve(l.fd, 'B'));
    fresh[0]!.markListening();
    const steering = ClassicSteering.steer(group, fresh, (l) => fresh.includes(l), log);
    const snapshot = HalfOpenSnapshot.capture(port);
    const later = await connectMany(20, port);
    await step('steered');
    const wait = await snapshot.waitGone(8_000);
    await until(() => old.every((l) => queued(l) === 0), 'the old accept queues to empty');
    for (const l of old) l.retire(1_000);
    const after = await connectMany(20, port);
    steering.end();
    return { captured: snapshot.size, wait, held: await tally(clients), later: await tally([...later, ...after]) };
  } finally {
    for (const c of clients) c.socket.destroy();
    for (const s of servers) s.close();
    for (const l of ls) l.close();
  }
}

async function probe() {
  const p = await probeKernel();
  const configured: readonly ('auto' | Handoff)[] = ['auto', 'bpf', 'migrate', 'inherit', 'drain', 'none'];
  const choices: Record<string, string> = {};
  for (const c of configured) {
    for (const specsUnchanged of [true, false]) {
      const d = chooseStrategy(c, p, specsUnchanged);
      choices[`${c}${specsUnchanged ? '' : ' (spec changed)'}`] = d.ok ? d.strategy : `error: ${d.error.message}`;
    }
  }
  return {
    probe: { ...p, ebpf: p.ebpf.ok ? 'ok' : p.ebpf.reason, cbpf: p.cbpf.ok ? 'ok' : p.cbpf.reason },
    choices,
    lines: formatKernelCheck(p, chooseStrategy('auto', p, true)),
  };
}

async function main(): Promise<void> {
  const [name, portText] = process.argv.slice(2);
  const port = Number(portText);
  const base = { tcpMigrateReq: readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() };
  let result: object;
  if (name === 'layout') result = { v4: await layout(port, 4), v6: await layout(port, 6) };
  else if (name === 'steer') result = await steer(port);
  else if (name === 'drain') result = await drain(port);
  else if (name === 'probe') result = await probe();
  else throw new Error(`unknown scenario ${name}`);
  finish({ ...base, ...result });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`steering-scenario: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
