// Classic-BPF steering and probe scenarios, run by bpf.test.ts inside a
// network namespace of their own and, for the unprivileged ones, with no
// capabilities at all (setpriv). Prints one JSON result line.
//
//   layout PORT   the kernel's socket array is what ReuseportLayout says,
//                 in join order read from /proc, before and after a leave
//   steer PORT    steering to the new generation, before and after an old
//                 listener's shutdown; the naive re-attach that is wrong
//   drain PORT    half-open requests on old listeners finish there before
//                 they are retired (the test holds them with nftables)
//   probe         the host's probe, the choice for each configured strategy
//                 (with and without a changed listener spec) and the lines
//                 `handover check --kernel` would print

import { fstatSync, readFileSync } from 'node:fs';
import type net from 'node:net';
import {
  chooseStrategy, formatKernelCheck, probeKernel, ReuseportLayout, SteeredGroup, steerToNew, steerToSlots,
} from '../../src/bpf/index.js';
import type { Handoff } from '../../src/bpf/index.js';
import { countSynRecv, HalfOpenSnapshot, joinOrder, listenerSpec, openListeners, socketAddress } from '../../src/net/index.js';
import type { Listener } from '../../src/net/index.js';
import { attachReuseportCbpf, effectiveCapabilities, listen } from '../../src/sys/index.js';
import { Client, connectMany, finish, serve, step, tally, until } from './scenario-kit.js';

const BACKLOG = 512;
const queued = (l: Listener): number => (l.isListening() ? (l.queue()?.queued ?? 0) : 0);

/**
 * Five listeners join in a shuffled order; a classic program returning k
 * shows which socket sits in slot k (its accept queue grows). Checked
 * against ReuseportLayout fed with /proc's join order, then again after one
 * socket leaves.
 */
async function layout(port: number, family: 4 | 6) {
  const host = family === 4 ? '127.0.0.1' : '::1';
  const ls = openListeners(listenerSpec({ address: socketAddress(host, port, family), backlog: BACKLOG }), 5, port);
  const clients: Client[] = [];
  try {
    const order = [3, 0, 4, 1, 2];
    for (const i of order) listen(ls[i]!.fd, BACKLOG);
    const inodes = ls.map((l) => fstatSync(l.fd).ino);
    const joined = joinOrder(inodes, family).map((ino) => inodes.indexOf(ino));
    const model = new ReuseportLayout(joined);
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
    const modelBefore = [...model.slots];
    const leaving = ls[0]!; // in slot 1
    const left = model.leave(0);
    leaving.shutdown();
    const kernelAfter = await probeSlots(4);
    return { family, order, joined, kernelBefore, modelBefore, left, kernelAfter, modelAfter: [...model.slots] };
  } finally {
    for (const c of clients) c.socket.destroy();
    for (const l of ls) l.close();
  }
}

/**
 * Three old listeners nobody accepts from, three new ones served: where do
 * new SYNs go, with the group steered by SteeredGroup, before and after
 * old listeners are retired one by one?
 */
async function steer(port: number) {
  const ls = openListeners(listenerSpec({ address: socketAddress('127.0.0.1', port, 4), backlog: BACKLOG }), 6, port);
  const old = ls.slice(0, 3);
  const fresh = ls.slice(3);
  const servers: net.Server[] = [];
  const clients: Client[] = [];
  const onOld = (): number => old.reduce((n, l) => n + queued(l), 0);
  try {
    for (const l of old) listen(l.fd, BACKLOG);
    const group = new SteeredGroup(old.map((l) => l.fd));
    for (const l of fresh) servers.push(await serve(l.fd, 'B'));
    const inodes = new Map(fresh.map((l) => [fstatSync(l.fd).ino, l.fd]));
    group.join(joinOrder([...inodes.keys()], 4).map((ino) => inodes.get(ino)!));
    const newFds = fresh.map((l) => l.fd);
    group.steerTo(newFds);
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
    const retired = group.retire(old[1]!.fd, () => old[1]!.shutdown());
    await load;
    clients.push(...during);
    const second = await connectMany(60, port);
    clients.push(...second);
    const afterLeave = await tally([...during, ...second]);
    const onOldAfterLeave = onOld();
    const slots = group.layout.slots.map((fd) => ls.findIndex((l) => l.fd === fd));
    // What the naive re-attach does: assume "old, then new" still holds.
    attachReuseportCbpf(old[0]!.fd, steerToNew(2, 3));
    const third = await connectMany(60, port);
    clients.push(...third);
    const detached = [group.detach(), group.detach()];
    return {
      detached,
      capEff: effectiveCapabilities().effective.toString(16), steered, onOldSteered, retired: { ...retired, moved: ls.findIndex((l) => l.fd === retired.moved) },
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
  const ls = openListeners(listenerSpec({ address: socketAddress('127.0.0.1', port, 4), backlog: BACKLOG }), 4, port);
  const [old, fresh] = [ls.slice(0, 2), ls.slice(2)];
  const servers: net.Server[] = [];
  const clients: Client[] = [];
  try {
    for (const l of old) servers.push(await serve(l.fd, 'A'));
    const group = new SteeredGroup(old.map((l) => l.fd));
    await step('listening');
    for (let i = 0; i < 10; i++) clients.push(new Client(port));
    await Promise.all(clients.map((c) => c.connected()));
    await until(() => countSynRecv(port) === 10, '10 half-open requests on the old listeners');
    for (const l of fresh) servers.push(await serve(l.fd, 'B'));
    group.join(fresh.map((l) => l.fd));
    group.steerTo(fresh.map((l) => l.fd));
    const snapshot = HalfOpenSnapshot.capture(port);
    const later = await connectMany(20, port);
    await step('steered');
    const wait = await snapshot.waitGone(8_000);
    await until(() => old.every((l) => queued(l) === 0), 'the old accept queues to empty');
    for (const l of old) group.retire(l.fd, () => l.shutdown());
    const after = await connectMany(20, port);
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
