// One address's SO_REUSEPORT group, as the kernel sees it, across
// generations: the port it resolved to (port 0 resolves once, every later
// socket binds the same), its members in the kernel's order, and what
// steers its new SYNs. A TCP socket joins its group when it enters LISTEN,
// after the members already there; when one leaves (shutdown or last close)
// the kernel moves the last member into its slot (`__reuseport_detach_sock`).
// Steering programs that pick sockets by index (the classic-BPF `drain`)
// depend on that order, so it is modelled here, in one place, and kept right
// by construction: every Listener of the group reports its opening, its
// entering LISTEN, its shutdown and its close here, whoever causes them (a
// reload's cutover, a rollback, a crashed worker's release, a stop).
//
// Workers of one generation listen in whatever order they boot, and the
// master only learns of it when each says ready: so the order of the
// sockets that joined since the model was last brought up to date is read
// from /proc (joinOrder), never assumed from the order of the reports.

import type { SocketAddress } from '../config/types.js';
import { Listener, openListener, openListeners, type GroupMembership } from './listener.js';
import { ReuseportLayout } from './reuseport-layout.js';
import type { ListenerSpec } from './spec.js';
import { joinOrder } from './tcp-table.js';

export type GroupChange = { readonly kind: 'joined' | 'left'; readonly listener: Listener };

/**
 * What steers a group's new SYNs (a classic or an eBPF program attached to
 * it). The group tells it of every change; neither method may throw (the
 * socket is shut down whatever the steering makes of it).
 */
export interface GroupSteering {
  /** `listener`, a member, is about to be shut down: make the program right on both sides of its leave. */
  leaving(listener: Listener): void;
  /** A join or a leave has happened and is recorded in the group's layout. */
  changed(change: GroupChange): void;
}

const listeningNow = (l: Listener): boolean => {
  try {
    return !l.closed && l.isListening();
  } catch {
    return false;
  }
};

export class ReuseportGroup implements GroupMembership {
  #port: number | undefined;
  readonly #layout = new ReuseportLayout<Listener>();
  /** Every socket of this group the master holds open, listening or not. */
  readonly #open = new Set<Listener>();
  readonly #watchers = new Set<(change: GroupChange) => void>();
  #steering: GroupSteering | undefined;

  constructor(readonly address: SocketAddress) {
    if (address.port !== 0) this.#port = address.port;
  }

  /** The bound port: the configured one, or the one port 0 resolved to (undefined until the first bind). */
  get port(): number | undefined {
    return this.#port;
  }

  /** The members in the kernel's order (sockets in LISTEN that master knows of), slot by slot. */
  get members(): readonly Listener[] {
    return this.#layout.slots;
  }

  /** Slots of `listeners` (those in the group), ascending. */
  slotsOf(listeners: Iterable<Listener>): number[] {
    return this.#layout.slotsOf(listeners);
  }

  /** Slots of `targets` that hold the same target before and after `leaving` leaves (ReuseportLayout.slotsSurviving). */
  slotsSurviving(targets: Iterable<Listener>, leaving: Listener): number[] {
    return this.#layout.slotsSurviving(targets, leaving);
  }

  get steering(): GroupSteering | undefined {
    return this.#steering;
  }

  /** Installs (or, with undefined, removes) what steers this group; the caller attaches or detaches its program. */
  set steering(steering: GroupSteering | undefined) {
    this.#steering = steering;
  }

  /** A new bound, non-listening socket of this group for `spec` (whose address must be this group's). */
  open(spec: ListenerSpec): Listener {
    this.#check(spec);
    return this.#resolved(openListener(spec, this.#port ?? spec.address.port, this));
  }

  /** `count` new sockets; on failure none stays open. */
  openMany(spec: ListenerSpec, count: number): Listener[] {
    this.#check(spec);
    const opened = openListeners(spec, count, this.#port, this);
    const first = opened[0];
    if (first) this.#resolved(first);
    return opened;
  }

  /** Calls `watcher` on every join and leave; returns the function that stops it. */
  watch(watcher: (change: GroupChange) => void): () => void {
    this.#watchers.add(watcher);
    return () => this.#watchers.delete(watcher);
  }

  /**
   * Records every socket of the group that has entered LISTEN since the
   * last call, in the kernel's join order: they joined after every member
   * already recorded, and among themselves /proc lists their order.
   */
  sync(): void {
    const pending = [...this.#open].filter((l) => !this.#layout.has(l) && listeningNow(l));
    for (const listener of this.#inJoinOrder(pending)) {
      this.#layout.join(listener);
      this.#changed({ kind: 'joined', listener });
    }
  }

  opened(listener: Listener): void {
    this.#open.add(listener);
  }

  listening(): void {
    this.sync();
  }

  leaving(listener: Listener): void {
    this.sync();
    if (this.#layout.has(listener)) this.#steering?.leaving(listener);
  }

  left(listener: Listener): void {
    if (!this.#layout.has(listener)) return;
    this.#layout.leave(listener);
    this.#changed({ kind: 'left', listener });
  }

  closed(listener: Listener): void {
    this.#open.delete(listener);
    this.left(listener);
  }

  toString(): string {
    return `ReuseportGroup(${this.address.text}, port ${this.#port ?? '?'}, ${this.#layout.size} listening)`;
  }

  #inJoinOrder(pending: Listener[]): Listener[] {
    if (pending.length < 2) return pending;
    const byInode = new Map(pending.map((l) => [l.inode, l]));
    const listed = joinOrder([...byInode.keys()], this.address.family).flatMap((ino) => byInode.get(ino) ?? []);
    return [...listed, ...pending.filter((l) => !listed.includes(l))];
  }

  #changed(change: GroupChange): void {
    this.#steering?.changed(change);
    for (const w of this.#watchers) w(change);
  }

  #resolved(listener: Listener): Listener {
    this.#port ??= listener.port;
    return listener;
  }

  #check(spec: ListenerSpec): void {
    if (spec.address.text !== this.address.text) {
      throw new Error(`listener ${spec.address.text} does not belong to the group of ${this.address.text}`);
    }
  }
}
