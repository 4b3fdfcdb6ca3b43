// One reuseport group under the `bpf` strategy: its select-or-migrate
// program and map (bpf/reuseport-program.ts), attached once through a
// member in LISTEN, and the active set the map holds. Installed as the
// group's steering, it follows the group by construction: a listener that
// joins (a new generation's, a dead worker's replacement) is added to the
// set, one that leaves (shut down by whoever) is taken out, so the map
// always holds exactly the group's listeners that should get new SYNs and
// migrating requests. A reload narrows the set to the new generation once
// it is ready (activate), which is what moves the old queues there.
import { ReuseportProgram, type MigrationMode, type ReuseportCounters } from '../../bpf/index.js';
import type { Logger } from '../../log/logger.js';
import type { GroupChange, GroupSteering, Listener, ReuseportGroup } from '../../net/index.js';
import { messageOf } from '../errors.js';

/** Listeners of one address the map can hold: two generations of many workers, with room to spare (8 bytes each). */
export const PROGRAM_CAPACITY = 1024;

export class ProgramSteering implements GroupSteering {
  #active = new Set<Listener>();
  #mode: MigrationMode = 'select';
  #attached = false;
  #released = false;

  private constructor(
    readonly group: ReuseportGroup,
    private readonly program: ReuseportProgram,
    private readonly log: Logger,
    /** Called once the group has no member left (the address was removed): the program is released. */
    private readonly onEmpty: (steering: ProgramSteering) => void,
  ) {}

  /**
   * Loads the program for `group`, attaches it through a member in LISTEN
   * (or, for a group nobody listens on yet, through the first that joins)
   * and installs it as the group's steering. Throws NotSupportedError or
   * VerifierError when the program does not load, SyscallError when it
   * does not attach; nothing stays open then.
   */
  static load(group: ReuseportGroup, log: Logger, onEmpty: (steering: ProgramSteering) => void): ProgramSteering {
    const program = ReuseportProgram.load({ name: group.address.text, capacity: PROGRAM_CAPACITY });
    const steering = new ProgramSteering(group, program, log, onEmpty);
    try {
      const anchor = group.members[0];
      if (anchor !== undefined) steering.#attach(anchor);
    } catch (err) {
      program.release();
      throw err;
    }
    group.steering = steering;
    return steering;
  }

  /**
   * Makes `listeners` (members, in LISTEN) the only targets of new SYNs and
   * of requests migrating off a listener being shut down; in `drop` mode
   * what migrates is refused and counted instead (an address whose protocol
   * changed). Throws when the map cannot be written.
   */
  activate(listeners: readonly Listener[], mode: MigrationMode): void {
    if (!this.#attached) {
      const anchor = this.group.members[0];
      if (anchor === undefined) throw new Error(`bpf ${this.group.address.text}: no listener in LISTEN to attach the program through`);
      this.#attach(anchor);
    }
    this.#active = new Set(listeners);
    this.#mode = mode;
    this.#write();
  }

  /** Back to selecting (after the cutover of an address whose protocol changed). Never throws. */
  select(): void {
    if (this.#mode === 'select') return;
    this.#mode = 'select';
    this.#tryWrite();
  }

  counters(): ReuseportCounters {
    try {
      return this.program.counters();
    } catch {
      return { migrated: 0, dropped: 0, fallback: 0 };
    }
  }

  // A shut-down listener leaves the map by itself; the program tries the next slot until the set is rewritten.
  leaving(): void {}

  changed(change: GroupChange): void {
    if (this.#released) return;
    if (change.kind === 'joined') {
      if (!this.#attached) {
        try {
          this.#attach(change.listener);
        } catch (err) {
          this.log.error({ err, address: this.group.address.text }, `bpf ${this.group.address.text}: could not attach the program: ${messageOf(err)}`);
        }
      }
      this.#active.add(change.listener);
    } else {
      this.#active.delete(change.listener);
      if (this.group.members.length === 0) {
        this.release();
        this.onEmpty(this);
        return;
      }
    }
    this.#tryWrite();
  }

  /** Takes the program off the group (when a member is left to do it through) and closes its descriptors. Never throws. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.group.steering === this) this.group.steering = undefined;
    const anchor = this.group.members.find((m) => !m.closed);
    try {
      if (anchor !== undefined && this.#attached) this.program.detach(anchor.fd);
    } catch (err) {
      this.log.warn({ err, address: this.group.address.text }, `bpf ${this.group.address.text}: could not detach the program: ${messageOf(err)}`);
    }
    try {
      this.program.release();
    } catch (err) {
      this.log.warn({ err }, `bpf ${this.group.address.text}: ${messageOf(err)}`);
    }
  }

  #attach(anchor: Listener): void {
    this.program.attach(anchor.fd);
    this.#attached = true;
  }

  #write(): void {
    this.program.setActive([...this.#active].filter((l) => !l.closed).map((l) => l.fd), this.#mode);
  }

  #tryWrite(): void {
    try {
      this.#write();
    } catch (err) {
      this.log.error({ err, address: this.group.address.text }, `bpf ${this.group.address.text}: could not update the map: ${messageOf(err)}`);
    }
  }
}
