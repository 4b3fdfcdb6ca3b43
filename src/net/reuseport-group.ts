// One address's SO_REUSEPORT group, as the kernel sees it, across
// generations: the port it resolved to (port 0 resolves once, every later
// socket binds the same), and its members in the kernel's order. A TCP
// socket joins its group when it enters LISTEN, after the members already
// there; when one leaves (shutdown or last close) the kernel moves the last
// member into its slot (`__reuseport_detach_sock`). Steering programs that
// pick sockets by index (the classic-BPF `drain`, the eBPF map of `bpf`)
// depend on that order, so it is modelled here, in one place.

import type { SocketAddress } from '../config/types.js';
import { Listener, openListener, openListeners, type GroupMembership } from './listener.js';
import type { ListenerSpec } from './spec.js';

export type GroupChange = { readonly kind: 'joined' | 'left'; readonly listener: Listener };

export class ReuseportGroup implements GroupMembership {
  #port: number | undefined;
  readonly #members: Listener[] = [];
  readonly #watchers = new Set<(change: GroupChange) => void>();

  constructor(readonly address: SocketAddress) {
    if (address.port !== 0) this.#port = address.port;
  }

  /** The bound port: the configured one, or the one port 0 resolved to (undefined until the first bind). */
  get port(): number | undefined {
    return this.#port;
  }

  /** The members in the kernel's order (sockets in LISTEN that master knows of). */
  get members(): readonly Listener[] {
    return this.#members;
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

  joined(listener: Listener): void {
    if (this.#members.includes(listener)) return;
    this.#members.push(listener);
    this.#notify({ kind: 'joined', listener });
  }

  left(listener: Listener): void {
    const i = this.#members.indexOf(listener);
    if (i < 0) return;
    const last = this.#members.pop() as Listener;
    if (last !== listener) this.#members[i] = last;
    this.#notify({ kind: 'left', listener });
  }

  toString(): string {
    return `ReuseportGroup(${this.address.text}, port ${this.#port ?? '?'}, ${this.#members.length} listening)`;
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

  #notify(change: GroupChange): void {
    for (const w of this.#watchers) w(change);
  }
}
