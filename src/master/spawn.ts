// Building generations and starting workers into their slots. Every socket
// opened here is owned by a slot (or closed again on the failure path), and
// a worker's listeners are verified in LISTEN before it counts as serving.
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { quietly, ReuseportGroup, type Listener, type ListenerSpec } from '../net/index.js';
import type { TlsMaterial } from '../tls/material.js';
import { workerTls } from '../tls/payload.js';
import { workerTicketKey } from '../tls/ticket-key.js';
import { Generation, type Slot } from './generation.js';
import type { Identity } from './identity.js';
import { WorkerHandle } from './worker-handle.js';

/** The reuseport groups of the master, by configured address text: they outlive generations. */
export type Groups = Map<string, ReuseportGroup>;

export function groupOf(groups: Groups, spec: ListenerSpec): ReuseportGroup {
  let group = groups.get(spec.address.text);
  if (!group) {
    group = new ReuseportGroup(spec.address);
    groups.set(spec.address.text, group);
  }
  return group;
}

/**
 * A generation with its sockets bound, not listening. `inherit` maps an
 * address to old listeners the new generation takes over: listener k goes
 * to slot k mod N, so with fewer workers than sockets a worker listens on
 * several; addresses not in the map get one fresh socket per slot (and
 * slots left without an inherited one get a fresh one too).
 */
export function createGeneration(
  id: number,
  config: Config,
  identity: Identity,
  tls: ReadonlyMap<string, TlsMaterial>,
  inherit: ReadonlyMap<string, readonly Listener[]>,
  groups: Groups,
): Generation {
  const generation = new Generation(id, config, identity, tls);
  const opened: Listener[] = [];
  try {
    for (const spec of generation.specs) {
      const shared = inherit.get(spec.address.text) ?? [];
      shared.forEach((l, k) => {
        generation.inherited.add(l);
        generation.slots[k % generation.slots.length]?.listeners.push(l);
      });
      const bare = generation.slots.filter((s) => !s.listeners.some((l) => l.spec.address.text === spec.address.text));
      const fresh = groupOf(groups, spec).openMany(spec, bare.length);
      opened.push(...fresh);
      bare.forEach((slot, i) => slot.listeners.push(fresh[i] as Listener));
    }
  } catch (err) {
    for (const l of opened) quietly(() => l.close());
    throw err;
  }
  return generation;
}

/** What every worker of the master is started with, whatever its generation. */
export interface SpawnHost {
  readonly groups: Groups;
  readonly log: Logger;
  /** The master has a metrics endpoint (fixed from its start: `metrics.listen` changes need a restart). */
  readonly countRequests: boolean;
}

/**
 * Starts a worker into `slot` (opening its sockets first when it has none:
 * a replacement whose predecessor's sockets were retired). Never throws
 * for a process that cannot be created: the handle exits at once with
 * reason `spawn_failed`. Throws only when the sockets cannot be opened.
 */
export function spawnWorker(generation: Generation, slot: Slot, host: SpawnHost): WorkerHandle {
  const { groups, log } = host;
  if (slot.listeners.length === 0) {
    const opened: Listener[] = [];
    try {
      for (const spec of generation.specs) opened.push(groupOf(groups, spec).open(spec));
    } catch (err) {
      for (const l of opened) quietly(() => l.close());
      throw err;
    }
    slot.listeners = opened;
  }
  const { config } = generation;
  const worker = new WorkerHandle({
    generation: generation.id,
    index: slot.index,
    app: config.app,
    listeners: slot.listeners.map((l) => {
      const tls = generation.tls.get(l.spec.address.text);
      return { fd: l.fd, address: l.spec.address.text, backlog: l.spec.backlog, ...(tls ? { tls: workerTls(tls) } : {}) };
    }),
    ...(generation.tls.size > 0 ? { ticketKey: workerTicketKey(generation.ticketKey) } : {}),
    env: config.env,
    nodeArgs: config.nodeArgs,
    ...(config.cwd === undefined ? {} : { cwd: config.cwd }),
    drainTimeoutMs: config.reload.drainTimeoutMs,
    countRequests: host.countRequests,
    ...generation.identity,
    log,
  });
  slot.worker = worker;
  return worker;
}

/**
 * After a worker said ready: every socket of its slot must be in LISTEN (a
 * worker that says ready without listening would leave its share of SYNs
 * parked). Its reuseport groups record what joined since they last looked,
 * in the kernel's order read from /proc, not in the order workers report
 * ready; whatever steers a group learns of the joins. Throws naming the listener.
 */
export function verifyListening(slot: Slot): void {
  for (const listener of slot.listeners) {
    try {
      listener.markListening();
    } catch (err) {
      throw new Error(`worker ${slot.index}: ${err instanceof Error ? err.message : String(err)} after it said ready`);
    }
  }
}
