// Classic-BPF steering and probe scenarios, run by bpf.test.ts inside a
// network namespace of their own and, for the unprivileged ones, with no
// capabilities at all (setpriv). Prints one JSON result line.
//
//   layout PORT   the kernel's socket array is what ReuseportLayout says,
//                 in join order read from /proc, before and after a leave
//   steer PORT    steering to the new generation, before and after an old
//                 listener's shutdown; the naive re-attach that is wrong
//   probe         the host's probe, the choice for each configured strategy
//                 (with and without a changed listener spec) and the lines
//                 `handover check --kernel` would print

import { fstatSync, readFileSync } from 'node:fs';
import type net from 'node:net';
import {
  chooseStrategy, formatKernelCheck, probeKernel, ReuseportLayout, steerToNew, steerToSlots,
} from '../../src/bpf/index.js';
import type { Handoff } from '../../src/bpf/index.js';
import { joinOrder, listenerSpec, openListeners, socketAddress } from '../../src/net/index.js';
import type { Listener } from '../../src/net/index.js';
import { attachReuseportCbpf, effectiveCapabilities, listen } from '../../src/sys/index.js';
import { Client, connectMany, finish, serve, tally, until } from './scenario-kit.js';

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

/** Three old listeners nobody accepts from, three new ones served: where do new SYNs go? */
async function steer(port: number) {
  const ls = openListeners(listenerSpec({ address: socketAddress('127.0.0.1', port, 4), backlog: BACKLOG }), 6, port);
  const old = ls.slice(0, 3);
  const fresh = ls.slice(3);
  const servers: net.Server[] = [];
  const clients: Client[] = [];
  const onOld = (): number => old.reduce((n, l) => n + queued(l), 0);
  try {
    for (const l of old) listen(l.fd, BACKLOG);
    for (const l of fresh) servers.push(await serve(l.fd, 'B'));
    const keys = ls.map((_, i) => i);
    const model = new ReuseportLayout(keys);
    attachReuseportCbpf(old[0]!.fd, steerToNew(3, 3));
    const first = await connectMany(60, port);
    clients.push(...first);
    const steered = await tally(first);
    const onOldSteered = onOld();
    // Retire old listener 1 as the drain would: a program right on both sides of the shutdown, then the exact one.
    const surviving = model.slotsSurviving([3, 4, 5], 1);
    attachReuseportCbpf(old[0]!.fd, steerToSlots(surviving));
    old[1]!.shutdown();
    const left = model.leave(1);
    attachReuseportCbpf(old[0]!.fd, steerToSlots(model.slotsOf([3, 4, 5])));
    const second = await connectMany(60, port);
    clients.push(...second);
    const afterLeave = await tally(second);
    const onOldAfterLeave = onOld();
    // What the naive re-attach does: assume "old, then new" still holds.
    attachReuseportCbpf(old[0]!.fd, steerToNew(2, 3));
    const third = await connectMany(60, port);
    clients.push(...third);
    return {
      capEff: effectiveCapabilities().effective.toString(16), steered, onOldSteered, surviving, left, slots: model.slots,
      afterLeave, onOldAfterLeave, naiveOnOld: onOld() - onOldAfterLeave,
    };
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
