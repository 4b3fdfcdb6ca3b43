// One reuseport group under classic BPF steering (the unprivileged `drain`
// strategy): the model of its socket array, the sockets new SYNs must go
// to, and the one right way to retire a listener without sending a SYN to
// an old one. Keyed by the master's descriptors of the group's listeners
// (its copies), which stay unique while they are open.
//
//   const g = new SteeredGroup(joinedFds);     // the group as it is, in join order
//   g.join(newFdsInJoinOrder);                  // after the new generation listens
//   g.steerTo(newFds);                          // new SYNs only to them
//   ...old queues and half-open requests drain...
//   for (const fd of oldFds) g.retire(fd, () => listener.retire());
//   g.detach();                                 // back to hashing once only new ones are left
//
// Join order: a socket takes the next slot when it starts to listen; read
// the order of sockets put in LISTEN by workers with joinOrder() (net/).
// Every leave of the group must go through retire() (or left() when a
// socket was shut down elsewhere), or the model goes wrong.

import { attachReuseportCbpf, detachReuseportBpf, isNotSupported } from '../sys/index.js';
import { ReuseportLayout } from './layout.js';
import { steerToSlots } from './steering.js';

export interface Retirement {
  readonly slot: number;
  /** The socket the kernel moved into the freed slot. */
  readonly moved: number | undefined;
  /**
   * True when no program could be right on both sides of the shutdown (the
   * only target was the socket that moved): for the two system calls
   * between the shutdown and the new program, a SYN could be hashed to any
   * member. Avoided whenever two or more targets are listening.
   */
  readonly window: boolean;
}

export class SteeredGroup {
  readonly layout: ReuseportLayout<number>;
  #targets: number[] = [];

  constructor(joinedFds: readonly number[]) {
    this.layout = new ReuseportLayout(joinedFds);
  }

  /** The sockets new SYNs go to (empty: no program attached by this group). */
  get targets(): readonly number[] {
    return [...this.#targets];
  }

  /** Sockets that started to listen, in the order they did. */
  join(fds: readonly number[]): void {
    for (const fd of fds) this.layout.join(fd);
  }

  /** Attaches the program that sends every new SYN to one of `fds` (all in the group), replacing any other. */
  steerTo(fds: readonly number[]): void {
    const missing = fds.filter((fd) => !this.layout.has(fd));
    if (missing.length > 0) throw new Error(`steering: fd ${missing.join(', ')} not in the group (not listening yet?)`);
    this.#targets = [...fds];
    this.#attach(this.layout.slotsOf(fds));
  }

  /**
   * Retires `fd`: attaches a program right both before and after it leaves,
   * runs `shutdown` (which must take it out of LISTEN, e.g. Listener.retire),
   * updates the model, and attaches the exact program for the new layout.
   * If `fd` was a target it stops being one.
   */
  retire(fd: number, shutdown: () => void): Retirement {
    const targets = this.#targets.filter((t) => t !== fd);
    const steering = targets.length > 0;
    const surviving = steering ? this.layout.slotsSurviving(targets, fd) : [];
    if (surviving.length > 0) this.#attach(surviving, fd);
    shutdown();
    const { slot, moved } = this.layout.leave(fd);
    this.#targets = targets;
    if (steering) this.#attach(this.layout.slotsOf(targets));
    return { slot, moved, window: steering && surviving.length === 0 };
  }

  /** A member left without retire() (e.g. shut down by someone else): re-steers for the new layout. */
  left(fd: number): Retirement {
    return this.retire(fd, () => undefined);
  }

  /**
   * Takes the program off the group (the kernel's hash decides again); false
   * when none was attached. Before Linux 5.3 (no SO_DETACH_REUSEPORT_BPF)
   * it attaches a uniform pick over the current members instead, which a
   * later leave turns into the hash for the moved slot.
   */
  detach(): boolean {
    const anchor = this.layout.slots[0];
    this.#targets = [];
    if (anchor === undefined) return false;
    try {
      return detachReuseportBpf(anchor, `fd ${anchor} (steered group)`);
    } catch (err) {
      if (!isNotSupported(err)) throw err;
      this.#attach(this.layout.slots.map((_, slot) => slot));
      return true;
    }
  }

  // Through any member but the one about to leave: a socket out of the group would take the program into a group of its own.
  #attach(slots: readonly number[], leaving?: number): void {
    const anchor = this.layout.slots.find((fd) => fd !== leaving);
    if (anchor === undefined) throw new Error('steering: the group has no member to attach through');
    attachReuseportCbpf(anchor, steerToSlots(slots), `fd ${anchor} (steered group)`);
  }
}
