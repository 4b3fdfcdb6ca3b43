// Classic-BPF steering of one reuseport group (the unprivileged `drain`,
// and a `drain` rollback): every new SYN goes to one of the target
// listeners, whatever else is in the group, until end(). Installed as the
// group's steering, it is told of every join and leave (net/reuseport-group.ts),
// so whoever shuts a member down — the cutover retiring old listeners, a
// worker's death, a rollback — the program stays right:
//
//   - before a member leaves, a program right on both sides of its leave
//     (the slots of targets that do not move: the kernel moves the LAST
//     member into the freed slot), so no SYN reaches a non-target meanwhile;
//   - after it, the exact program for the new layout;
//   - a target that starts to listen (a replacement of the target
//     generation's dead worker) becomes a target at once.
//
// The one case no program can cover: the only target left is the member
// that moves. For the two system calls between the shutdown and the new
// program a SYN may then hash to any member (counted in `windows`).
//
// The naive alternative, re-attaching `random % N + N` after a leave, sent
// 16 of 60 connections to old listeners (test/kernel/bpf.test.ts).
import { attachSteering, detachSteering } from '../../bpf/index.js';
import type { Logger } from '../../log/logger.js';
import type { GroupChange, GroupSteering, Listener, ReuseportGroup } from '../../net/index.js';
import type { Generation } from '../generation.js';
import type { Groups } from '../spawn.js';
import { messageOf } from '../errors.js';

export class ClassicSteering implements GroupSteering {
  readonly #targets = new Set<Listener>();
  #ended = false;
  /** Leaves during which no program could be right (see above). */
  windows = 0;

  private constructor(
    private readonly group: ReuseportGroup,
    targets: Iterable<Listener>,
    /** Whether a listener that joins from now on is a target too. */
    private readonly isTarget: (listener: Listener) => boolean,
    private readonly log: Logger,
  ) {
    for (const t of targets) this.#targets.add(t);
  }

  /**
   * Steers every new SYN of `group` to `targets` (members, in LISTEN) from
   * now on, replacing any program the group had. Throws when the program
   * cannot be attached (before a reload's commit: it rolls back).
   */
  static steer(group: ReuseportGroup, targets: readonly Listener[], isTarget: (listener: Listener) => boolean, log: Logger): ClassicSteering {
    const missing = targets.filter((t) => !group.members.includes(t));
    if (missing.length > 0) throw new Error(`steering ${group.address.text}: ${missing.join(', ')} not in the group (not listening?)`);
    if (targets.length === 0) throw new Error(`steering ${group.address.text}: no target`);
    const steering = new ClassicSteering(group, targets, isTarget, log);
    steering.#attach(group.slotsOf(targets));
    group.steering = steering;
    return steering;
  }

  get targets(): readonly Listener[] {
    return [...this.#targets];
  }

  leaving(listener: Listener): void {
    if (this.#ended) return;
    const rest = [...this.#targets].filter((t) => t !== listener);
    if (rest.length === 0) return; // the last target goes: changed() hands the group back to the hash
    const surviving = this.group.slotsSurviving(rest, listener);
    if (surviving.length === 0) {
      this.windows++;
      return;
    }
    this.#tryAttach(surviving, listener);
  }

  changed(change: GroupChange): void {
    if (this.#ended) return;
    if (change.kind === 'joined') {
      if (!this.isTarget(change.listener)) return; // a join appends: every target keeps its slot
      this.#targets.add(change.listener);
    } else {
      this.#targets.delete(change.listener);
    }
    if (this.#targets.size > 0) this.#tryAttach(this.group.slotsOf(this.#targets));
    else this.#detach(); // nothing left to steer to: the kernel's hash over what remains (returns whether it did)
  }

  /**
   * Takes the program off the group (the kernel's hash decides again) and
   * uninstalls this steering; false when there was nothing to take off.
   * Never throws.
   */
  end(): boolean {
    if (this.#ended) return false;
    return this.#detach();
  }

  #detach(): boolean {
    this.#ended = true;
    if (this.group.steering === this) this.group.steering = undefined;
    const anchor = this.group.members.find((m) => !m.closed);
    if (anchor === undefined) return false; // no member left: the program goes with the group
    try {
      return detachSteering(anchor.fd, this.group.members.length);
    } catch (err) {
      this.log.error({ err, address: this.group.address.text }, `could not take the steering program off ${this.group.address.text}: ${messageOf(err)}`);
      return false;
    }
  }

  #tryAttach(slots: readonly number[], leaving?: Listener): void {
    try {
      this.#attach(slots, leaving);
    } catch (err) {
      this.log.error({ err, address: this.group.address.text }, `steering ${this.group.address.text}: could not attach the program for slots ${slots.join(', ')}: ${messageOf(err)}`);
    }
  }

  // Through a member that stays: a socket out of the group would take the program into a group of its own.
  #attach(slots: readonly number[], leaving?: Listener): void {
    const anchor = this.group.members.find((m) => m !== leaving && !m.closed);
    if (anchor === undefined) throw new Error(`steering ${this.group.address.text}: no member to attach through`);
    attachSteering(anchor.fd, slots);
  }
}

/**
 * Steers every address `to` serves and `from` listens on to `to`'s
 * listeners (an address whose listeners `to` shares with `from` needs
 * none). Throws, with nothing left attached, when a program cannot be
 * attached.
 */
export function steerGenerations(from: Generation, to: Generation, groups: Groups, log: Logger): ClassicSteering[] {
  const steerings: ClassicSteering[] = [];
  try {
    for (const spec of to.specs) {
      const address = spec.address.text;
      const group = groups.get(address);
      const targets = to.listenersOf(address).filter((l) => group?.members.includes(l) === true);
      const shared = (l: Listener): boolean => to.listenersOf(address).includes(l);
      if (!group || targets.length === 0 || from.listenersOf(address).every(shared)) continue;
      steerings.push(ClassicSteering.steer(group, targets, shared, log));
    }
  } catch (err) {
    for (const s of steerings) s.end();
    throw err;
  }
  return steerings;
}
