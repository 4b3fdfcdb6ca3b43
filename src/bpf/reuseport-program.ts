// One address's select-or-migrate program and its maps (the `bpf`
// strategy): owns three descriptors (program, socket array, control map)
// and releases them once.
//
//   const prog = ReuseportProgram.load({ name: '127.0.0.1:8080' });
//   prog.attach(listeningFd);            // any member of the group, in LISTEN
//   prog.setActive(newGenerationFds);    // once they all listen
//   ...shutdown the old listeners: their queues migrate to the active set
//   prog.release();                      // at exit; the group keeps the program
//
// Kernel rules this class leans on (FACTS.md, test/kernel/bpf.test.ts):
// a socket enters the socket array only while it listens with SO_REUSEPORT,
// and leaves it by itself when it is shut down; a socket can sit in one slot
// of one map only; the program stays attached to the group after its
// descriptors are closed, until another is attached or it is detached.

import {
  atLeast, attachReuseportEbpf, close, createMap, detachReuseportBpf, isListening, kernelVersion,
  loadProgram, mapDelete, mapLookup, mapUpdate, NotSupportedError, socketCookie,
} from '../sys/index.js';
import {
  BPF_ANY, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, BPF_PROG_TYPE_SK_REUSEPORT, BPF_SK_REUSEPORT_SELECT_OR_MIGRATE,
} from '../sys/constants.js';
import {
  CONTROL_CONFIG_KEY, CONTROL_COUNTERS_KEY, CONTROL_ENTRIES, CONTROL_VALUE_SIZE, COUNTER_OFFSET, FLAG_DROP_MIGRATING,
  selectOrMigrateProgram,
} from './programs.js';

/** How many listeners one address's active generation may have. */
export const DEFAULT_CAPACITY = 256;
/** The verifier log buffer: 64 KiB holds the log of any program here many times over. */
export const VERIFIER_LOG_SIZE = 64 * 1024;
export const SELECT_OR_MIGRATE_MIN_KERNEL = 'Linux 5.14';

/** `select`: migrating requests go to the active set; `drop`: they are refused and counted. */
export type MigrationMode = 'select' | 'drop';

export interface ReuseportCounters {
  /** Requests and connections the program moved onto the active set. */
  readonly migrated: number;
  /** Migrating requests refused in drop mode (each one a reset client). */
  readonly dropped: number;
  /** Selections that found the slot empty and fell back to the kernel's hash. */
  readonly fallback: number;
}

export interface ReuseportProgramOptions {
  /** Shown in errors and as the bpf object names, e.g. the address. */
  readonly name: string;
  readonly capacity?: number;
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

export class ReuseportProgram {
  readonly name: string;
  readonly capacity: number;
  #fds: { prog: number; sockets: number; control: number } | undefined;
  /** Slots [0, highWater) may be occupied; the rest never were. */
  #highWater = 0;

  private constructor(name: string, capacity: number, fds: { prog: number; sockets: number; control: number }) {
    this.name = name;
    this.capacity = capacity;
    this.#fds = fds;
  }

  /**
   * Creates the maps and loads the program. Throws NotSupportedError when
   * the kernel is older than 5.14 or the process lacks CAP_BPF and
   * CAP_SYS_ADMIN, VerifierError (with the log) when the kernel refuses the
   * program; closes whatever it opened on every failure.
   */
  static load(options: ReuseportProgramOptions): ReuseportProgram {
    const capacity = options.capacity ?? DEFAULT_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 65535) {
      throw new RangeError(`reuseport program capacity must be 1..65535 (got ${capacity})`);
    }
    const kernel = kernelVersion();
    if (!atLeast(kernel, 5, 14)) {
      throw new NotSupportedError(`eBPF select-or-migrate (kernel ${kernel.release})`, { minKernel: SELECT_OR_MIGRATE_MIN_KERNEL });
    }
    const opened: number[] = [];
    try {
      const sockets = createMap({ type: BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, keySize: 4, valueSize: 8, maxEntries: capacity, name: 'ho_sockets' });
      opened.push(sockets);
      const control = createMap({ type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: CONTROL_VALUE_SIZE, maxEntries: CONTROL_ENTRIES, name: 'ho_control' });
      opened.push(control);
      const prog = loadProgram({
        type: BPF_PROG_TYPE_SK_REUSEPORT,
        expectedAttachType: BPF_SK_REUSEPORT_SELECT_OR_MIGRATE,
        instructions: selectOrMigrateProgram({ sockets, control }),
        license: 'GPL',
        name: 'ho_select',
        logSize: VERIFIER_LOG_SIZE,
      });
      opened.push(prog);
      return new ReuseportProgram(options.name, capacity, { prog, sockets, control });
    } catch (err) {
      for (const fd of opened.reverse()) quietly(() => close(fd));
      throw err;
    }
  }

  get released(): boolean {
    return this.#fds === undefined;
  }

  /**
   * Attaches the program to the reuseport group of `listenerFd`, which must
   * be in LISTEN: a program attached to a socket that has not joined its
   * group yet is dropped when it joins one. Replaces any program the group
   * had (e.g. a classic BPF one). Call once per group; a new generation
   * joining the group needs no new attach.
   */
  attach(listenerFd: number): void {
    const { prog } = this.#open();
    if (!isListening(listenerFd, this.#target(listenerFd))) {
      throw new Error(`reuseport program ${this.name}: attach needs a listener in LISTEN (fd ${listenerFd} is not)`);
    }
    attachReuseportEbpf(listenerFd, prog, this.#target(listenerFd));
  }

  /** Takes the program off the group of `listenerFd` (the kernel's hash decides again). False when none was attached. */
  detach(listenerFd: number): boolean {
    return detachReuseportBpf(listenerFd, this.#target(listenerFd));
  }

  /**
   * Makes `fds` (the active generation's listeners, all in LISTEN with
   * SO_REUSEPORT, in this group) the only targets of new SYNs and of
   * migrating requests. Writes the slots first, then n, then clears the
   * surplus slots, so every slot below n holds a listening socket of the old
   * or the new set throughout. Sockets already in the map keep their slot.
   * An empty list hands selection back to the kernel's hash.
   */
  setActive(fds: readonly number[], mode: MigrationMode = 'select'): void {
    const { sockets } = this.#open();
    if (fds.length > this.capacity) throw new RangeError(`reuseport program ${this.name}: ${fds.length} listeners exceed its capacity of ${this.capacity}`);
    const wanted = new Map<bigint, number>();
    for (const fd of fds) wanted.set(socketCookie(fd, this.#target(fd)), fd);
    if (wanted.size !== fds.length) throw new Error(`reuseport program ${this.name}: the same socket was given twice`);
    const present = this.#slots();
    const m = fds.length;
    const placed = new Set<bigint>();
    for (let slot = 0; slot < m; slot++) {
      const cookie = present[slot];
      if (cookie !== undefined && cookie !== null && wanted.has(cookie)) placed.add(cookie);
    }
    let slot = 0;
    for (const [cookie, fd] of wanted) {
      if (placed.has(cookie)) continue;
      while (slot < m && isKept(present[slot], placed)) slot++;
      // A socket can sit in one slot only: take it out of a slot at or beyond m first.
      const elsewhere = present.indexOf(cookie);
      if (elsewhere >= 0) {
        mapDelete(sockets, u32(elsewhere), `${this.name} slot ${elsewhere}`);
        present[elsewhere] = null;
      }
      this.#put(slot, fd);
      placed.add(cookie);
      present[slot] = cookie;
      slot++;
    }
    this.#writeConfig(m, mode === 'drop' ? FLAG_DROP_MIGRATING : 0);
    for (let s = m; s < this.#highWater; s++) mapDelete(sockets, u32(s), `${this.name} slot ${s}`);
    this.#highWater = m;
  }

  /** Cookies (SO_COOKIE) of the sockets in slots 0.., null for an empty slot. */
  slots(): (bigint | null)[] {
    return this.#slots();
  }

  counters(): ReuseportCounters {
    const { control } = this.#open();
    const v = mapLookup(control, u32(CONTROL_COUNTERS_KEY), CONTROL_VALUE_SIZE, `${this.name} counters`);
    if (v === null) return { migrated: 0, dropped: 0, fallback: 0 };
    return {
      migrated: Number(v.readBigUInt64LE(COUNTER_OFFSET.migrated)),
      dropped: Number(v.readBigUInt64LE(COUNTER_OFFSET.dropped)),
      fallback: Number(v.readBigUInt64LE(COUNTER_OFFSET.fallback)),
    };
  }

  /** Migrating requests refused in drop mode since load. */
  dropped(): number {
    return this.counters().dropped;
  }

  /**
   * Closes the three descriptors. The group keeps running the program (the
   * kernel holds its own references) until the group's last socket closes
   * or another program replaces it; detach() first to stop it. Idempotent.
   */
  release(): void {
    const fds = this.#fds;
    if (fds === undefined) return;
    this.#fds = undefined;
    let first: unknown;
    for (const fd of [fds.prog, fds.sockets, fds.control]) {
      try {
        close(fd, `fd ${fd} (reuseport program ${this.name})`);
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }

  #slots(): (bigint | null)[] {
    const { sockets } = this.#open();
    const out: (bigint | null)[] = [];
    for (let s = 0; s < this.#highWater; s++) {
      const v = mapLookup(sockets, u32(s), 8, `${this.name} slot ${s}`);
      out.push(v === null ? null : v.readBigUInt64LE());
    }
    return out;
  }

  #put(slot: number, fd: number): void {
    const value = Buffer.alloc(8);
    value.writeBigUInt64LE(BigInt(fd));
    mapUpdate(this.#open().sockets, u32(slot), value, BPF_ANY, `${this.name} slot ${slot} (fd ${fd}: it must listen with SO_REUSEPORT)`);
    this.#highWater = Math.max(this.#highWater, slot + 1);
  }

  #writeConfig(n: number, flags: number): void {
    const value = Buffer.alloc(CONTROL_VALUE_SIZE);
    value.writeUInt32LE(n, 0);
    value.writeUInt32LE(flags, 4);
    mapUpdate(this.#open().control, u32(CONTROL_CONFIG_KEY), value, BPF_ANY, `${this.name} configuration`);
  }

  #open(): { prog: number; sockets: number; control: number } {
    if (this.#fds === undefined) throw new Error(`reuseport program ${this.name} is released`);
    return this.#fds;
  }

  #target(fd: number): string {
    return `fd ${fd} (${this.name})`;
  }
}

function isKept(cookie: bigint | null | undefined, placed: ReadonlySet<bigint>): boolean {
  return cookie !== null && cookie !== undefined && placed.has(cookie);
}

function quietly(release: () => void): void {
  try {
    release();
  } catch {
    // already failing: the first error is the one to report
  }
}
