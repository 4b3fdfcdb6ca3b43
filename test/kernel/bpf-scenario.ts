// eBPF select-or-migrate scenarios, run by bpf.test.ts inside a network
// namespace of their own (`ip netns exec NS node --import tsx bpf-scenario.ts
// NAME PORT`), with handover's own listeners (src/net openListeners, sys
// listen) and the real kernel. Prints its steps and its result as JSON lines.
//
//   migrate PORT    (migrate6: on ::1) >= 50 connections queued on old listeners migrate to the
//                   active set only; new SYNs never reach the old listeners
//   drop PORT       drop mode: what migrates is refused and counted
//   half-open PORT  requests kept half-open by the test's nftables rule
//                   migrate when their final ACK finally arrives
//   facts PORT      the kernel rules ReuseportProgram relies on, and the
//                   verifier log in a refusal

import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import type net from 'node:net';
import { connect, createServer } from 'node:net';
import { passProgram, ReuseportProgram } from '../../src/bpf/index.js';
import { countSynRecv, HalfOpenSnapshot, listenerSpec, openListener, openListeners, socketAddress } from '../../src/net/index.js';
import type { Listener, ListenerSpec } from '../../src/net/index.js';
import { readTcpTable } from '../../src/net/tcp-table.js';
import {
  attachReuseportEbpf, close, constants as C, isNotSupported, listen, loadProgram, socketCookie, VerifierError,
} from '../../src/sys/index.js';
import { Assembler, R0, R1 } from '../../src/bpf/asm.js';
import { Client, connectMany, counterDelta, finish, serve, sleep, step, tally, tcpExt, until } from './scenario-kit.js';

const BACKLOG = 512;
const TCP_TIME_WAIT = 6;
const OLD = 4;
const NEW = 4;

interface Group {
  readonly old: Listener[];
  readonly fresh: Listener[];
  readonly servers: net.Server[];
  readonly program: ReuseportProgram;
}

/** OLD listeners in LISTEN that nobody accepts from (stopped workers), NEW ones not yet listening, the program on the group. */
function group(port: number, host = '127.0.0.1'): Group {
  const spec = listenerSpec({ address: socketAddress(host, port, host.includes(':') ? 6 : 4), backlog: BACKLOG });
  const all = openListeners(spec, OLD + NEW, port);
  const old = all.slice(0, OLD);
  for (const l of old) listen(l.fd, BACKLOG);
  const program = ReuseportProgram.load({ name: spec.address.text });
  program.attach(old[0]!.fd);
  program.setActive(old.map((l) => l.fd));
  return { old, fresh: all.slice(OLD), servers: [], program };
}

async function activateNew(g: Group, mode: 'select' | 'drop' = 'select'): Promise<void> {
  for (const l of g.fresh) g.servers.push(await serve(l.fd, 'B'));
  g.program.setActive(g.fresh.map((l) => l.fd), mode);
}

const queuedOn = (ls: readonly Listener[]): number => ls.reduce((n, l) => n + (l.isListening() ? (l.queue()?.queued ?? 0) : 0), 0);

function release(g: Group, clients: readonly Client[]): void {
  for (const c of clients) c.socket.destroy();
  for (const s of g.servers) s.close();
  g.program.release();
  for (const l of [...g.old, ...g.fresh]) l.close();
}

async function migrate(port: number, host = '127.0.0.1') {
  const g = group(port, host);
  const clients: Client[] = [];
  try {
    const before = tcpExt();
    clients.push(...(await connectMany(60, port, host)));
    await until(() => queuedOn(g.old) === 60, '60 connections queued on the old listeners');
    const queuedAtCutover = queuedOn(g.old);
    const perOld = g.old.map((l) => l.queue()?.queued ?? 0);
    await activateNew(g);
    const fresh = await connectMany(40, port, host);
    clients.push(...fresh);
    const freshOutcomes = await tally(fresh);
    const oldAfterNewSyns = queuedOn(g.old);
    // Continuous new connections while the old listeners are shut down one by one.
    const during: Client[] = [];
    const load = (async () => {
      for (let i = 0; i < 40; i++) {
        during.push(new Client(port, host));
        await sleep(1);
      }
    })();
    for (const l of g.old) l.shutdown();
    await load;
    clients.push(...during);
    const oldOutcomes = await tally(clients.slice(0, 60));
    return {
      queuedAtCutover, perOld, oldAfterNewSyns, freshOutcomes, oldOutcomes, duringOutcomes: await tally(during),
      counters: g.program.counters(),
      migrateReqSuccess: counterDelta(before, 'TCPMigrateReqSuccess'),
      migrateReqFailure: counterDelta(before, 'TCPMigrateReqFailure'),
    };
  } finally {
    release(g, clients);
  }
}

async function drop(port: number) {
  const g = group(port);
  const clients: Client[] = [];
  try {
    const before = tcpExt();
    clients.push(...(await connectMany(50, port)));
    await until(() => queuedOn(g.old) === 50, '50 connections queued on the old listeners');
    await activateNew(g, 'drop');
    const fresh = await connectMany(10, port);
    for (const l of g.old) l.shutdown();
    return {
      queuedAtCutover: 50,
      oldOutcomes: await tally(clients),
      freshOutcomes: await tally(fresh),
      counters: g.program.counters(),
      migrateReqFailure: counterDelta(before, 'TCPMigrateReqFailure'),
    };
  } finally {
    release(g, clients);
  }
}

/** The test holds handshakes to PORT half-open (nftables) between the steps "listening" and "cutover". */
/** Sockets in TIME_WAIT on their server's side (it closes first), as a new-connection load leaves them. */
async function timeWait(port: number, count: number): Promise<void> {
  const server = createServer((socket) => socket.end()).listen(port, '127.0.0.1');
  await once(server, 'listening');
  try {
    for (let done = 0; done < count; done += 100) {
      await Promise.all(Array.from({ length: 100 }, () => new Promise<void>((resolve, reject) => {
        const c = connect(port, '127.0.0.1').on('error', reject).on('close', () => resolve());
        c.resume();
      })));
    }
  } finally {
    server.close();
  }
}

/** Milliseconds to count the half-open requests (median of 5) through netlink and through /proc, with TIME_WAIT rows around. */
async function readCost(port: number): Promise<{ timeWait: number; diagMs: number; procMs: number }> {
  await timeWait(port + 1, 3_000);
  const ms = (read: () => number): number => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      read();
      times.push(performance.now() - t0);
    }
    return times.sort((a, b) => a - b)[2]!;
  };
  const timeWaitRows = readTcpTable().filter((e) => e.state === TCP_TIME_WAIT).length;
  return { timeWait: timeWaitRows, diagMs: ms(() => countSynRecv(port)), procMs: ms(() => countSynRecv(port, process.pid)) };
}

async function halfOpen(port: number) {
  const g = group(port);
  const clients: Client[] = [];
  try {
    await step('listening');
    const before = tcpExt();
    for (let i = 0; i < 20; i++) clients.push(new Client(port));
    await Promise.all(clients.map((c) => c.connected()));
    await until(() => countSynRecv(port) === 20, '20 half-open requests');
    const snapshot = HalfOpenSnapshot.capture(port);
    // The same namespace read both ways: this process's through netlink socket diagnostics, by pid through /proc.
    const fromProc = HalfOpenSnapshot.capture(port, process.pid);
    const sameAsProc = snapshot.size === fromProc.size && [...snapshot.tuples].every((t) => fromProc.tuples.has(t));
    const cost = await readCost(port);
    const synRecvAtCutover = countSynRecv(port);
    const acceptQueueAtCutover = queuedOn(g.old);
    await activateNew(g);
    // Shut down, but keep the descriptors: a half-open request can migrate only while its listener is in the group.
    for (const l of g.old) l.shutdown();
    const stillHalfOpen = snapshot.remaining().length;
    const early = await snapshot.waitGone(150);
    await step('cutover');
    const wait = await snapshot.waitGone(8_000);
    return {
      captured: snapshot.size, sameAsProc, cost, synRecvAtCutover, acceptQueueAtCutover, stillHalfOpen, early, wait,
      outcomes: await tally(clients),
      counters: g.program.counters(),
      migrateReqSuccess: counterDelta(before, 'TCPMigrateReqSuccess'),
    };
  } finally {
    release(g, clients);
  }
}

async function facts(port: number) {
  const spec = listenerSpec({ address: socketAddress('127.0.0.1', port, 4), backlog: BACKLOG });
  const [a, b, late] = openListeners(spec, 3, port) as [Listener, Listener, Listener];
  const program = ReuseportProgram.load({ name: 'facts' });
  const clients: Client[] = [];
  const servers: net.Server[] = [];
  try {
    // A map entry needs a socket in LISTEN.
    let notListening = '';
    try {
      program.setActive([b.fd]);
    } catch (err) {
      notListening = (err as Error).message;
    }
    let attachNotListening = '';
    try {
      program.attach(b.fd);
    } catch (err) {
      attachNotListening = (err as Error).message;
    }
    listen(a.fd, BACKLOG);
    servers.push(await serve(b.fd, 'B'));
    program.attach(a.fd);
    program.setActive([b.fd]);
    const slots = program.slots();
    // The program keeps steering once its descriptors are closed.
    program.release();
    clients.push(...(await connectMany(20, port)));
    const afterRelease = await tally(clients);
    const queuedOnAAfterRelease = a.queue()?.queued;
    // A socket that joins later is not in the map: the program never picks it.
    servers.push(await serve(late.fd, 'late'));
    const more = await connectMany(20, port);
    clients.push(...more);
    return {
      notListening, attachNotListening, slots: slots.map(String), afterRelease, queuedOnAAfterRelease,
      withLateJoiner: await tally(more), attachBeforeJoining: attachBeforeJoining(spec, port), verifier: verifierRefusal(),
      switches: switches(port + 1), hole: await hole(port + 2),
    };
  } finally {
    for (const c of clients) c.socket.destroy();
    for (const s of servers) s.close();
    program.release();
    for (const l of [a, b, late]) l.close();
  }
}

/** An active listener shut down: the kernel empties its slot, and the program's second try covers it. */
async function hole(port: number) {
  const spec = listenerSpec({ address: socketAddress('127.0.0.1', port, 4), backlog: BACKLOG });
  const ls = openListeners(spec, 3, port);
  const program = ReuseportProgram.load({ name: 'hole' });
  const servers: net.Server[] = [];
  const clients: Client[] = [];
  try {
    for (const [i, l] of ls.entries()) servers.push(await serve(l.fd, `B${i}`));
    program.attach(ls[0]!.fd);
    program.setActive(ls.map((l) => l.fd));
    ls[1]!.shutdown();
    const slots = program.slots().map((c) => (c === null ? null : 'socket'));
    clients.push(...(await connectMany(30, port)));
    return { slots, outcomes: await tally(clients), counters: program.counters() };
  } finally {
    for (const c of clients) c.socket.destroy();
    for (const s of servers) s.close();
    program.release();
    for (const l of ls) l.close();
  }
}

/** setActive() on overlapping sets: which socket ends up in which slot (as x, y, z). */
function switches(port: number): string[][] {
  const spec = listenerSpec({ address: socketAddress('127.0.0.1', port, 4), backlog: BACKLOG });
  const ls = openListeners(spec, 3, port);
  const program = ReuseportProgram.load({ name: 'switches', capacity: 4 });
  try {
    for (const l of ls) listen(l.fd, BACKLOG);
    program.attach(ls[0]!.fd);
    const names = new Map(ls.map((l, i) => [socketCookie(l.fd), 'xyz'[i]!]));
    const [x, y, z] = ls.map((l) => l.fd) as [number, number, number];
    const seen: string[][] = [];
    for (const set of [[x, y], [y, z], [y], [z, x, y], []]) {
      program.setActive(set);
      seen.push(program.slots().map((c) => (c === null ? '-' : (names.get(c) ?? '?'))));
    }
    return seen;
  } finally {
    program.release();
    for (const l of ls) l.close();
  }
}

/**
 * Why ReuseportProgram.attach() wants a listener in LISTEN: a program
 * attached to a bound socket before it joins a group that already has
 * listeners gives the socket a group of its own, and its listen() fails.
 */
function attachBeforeJoining(spec: ListenerSpec, port: number): string {
  const trap = openListener(spec, port);
  const fd = loadProgram({
    type: C.BPF_PROG_TYPE_SK_REUSEPORT, expectedAttachType: C.BPF_SK_REUSEPORT_SELECT_OR_MIGRATE,
    instructions: passProgram(), license: 'GPL', name: 'pass', logSize: 4096,
  });
  try {
    attachReuseportEbpf(trap.fd, fd);
    listen(trap.fd, BACKLOG);
    return 'listening';
  } catch (err) {
    return (err as Error).message;
  } finally {
    close(fd);
    trap.close();
  }
}

/** A program that returns without setting R0: the verifier must refuse it, with its log. */
function verifierRefusal() {
  const insns = new Assembler().mov64(R1, 1).exit().assemble();
  try {
    const fd = loadProgram({
      type: C.BPF_PROG_TYPE_SK_REUSEPORT, expectedAttachType: C.BPF_SK_REUSEPORT_SELECT_OR_MIGRATE,
      instructions: insns, license: 'GPL', name: 'bad', logSize: 64 * 1024,
    });
    return { loaded: fd };
  } catch (err) {
    return {
      name: (err as Error).name, isVerifier: err instanceof VerifierError, notSupported: isNotSupported(err),
      message: (err as Error).message, log: err instanceof VerifierError ? err.log : '',
      good: new Assembler().mov64(R0, 1).exit().length,
    };
  }
}

async function main(): Promise<void> {
  const [name, portText] = process.argv.slice(2);
  const port = Number(portText);
  const base = { tcpMigrateReq: Number(readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8')) };
  const scenarios: Record<string, (port: number) => Promise<object>> = {
    migrate, 'migrate6': (p) => migrate(p, '::1'), drop, 'half-open': halfOpen, facts,
  };
  const run = scenarios[name ?? ''];
  if (run === undefined) throw new Error(`unknown scenario ${name}`);
  finish({ ...base, ...(await run(port)) });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bpf-scenario: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
