// Where each socket of a reuseport group sits in the kernel's socket array
// (struct sock_reuseport.socks[]), which is what a classic BPF program's
// return value indexes. The kernel appends a socket when it starts to
// listen and, when one leaves (shutdown, or the last close), moves the LAST
// socket into the freed slot (net/core/sock_reuseport.c). This class replays
// the same two rules, so it is right as long as it is told of every join and
// every leave of the group, in order; the join order of sockets that other
// processes put in LISTEN is read from /proc (net/tcp-table.ts: joinOrder).
//
// Keys identify sockets: inodes (fstat of a descriptor) or SO_COOKIE values,
// whatever the caller uses consistently.

export class ReuseportLayout<K> {
  readonly #socks: K[] = [];

  /** A group whose array holds `joined`, in this order. */
  constructor(joined: Iterable<K> = []) {
    for (const key of joined) this.join(key);
  }

  get size(): number {
    return this.#socks.length;
  }

  /** The array, slot by slot. */
  get slots(): readonly K[] {
    return [...this.#socks];
  }

  slotOf(key: K): number {
    return this.#socks.indexOf(key);
  }

  has(key: K): boolean {
    return this.slotOf(key) >= 0;
  }

  /** A socket starts to listen: it takes the next slot, which is returned. */
  join(key: K): number {
    if (this.has(key)) throw new Error(`reuseport layout: ${String(key)} joined twice`);
    this.#socks.push(key);
    return this.#socks.length - 1;
  }

  /** A socket leaves: the last socket moves into its slot. Returns the freed slot and the socket moved into it, if any. */
  leave(key: K): { slot: number; moved: K | undefined } {
    const slot = this.slotOf(key);
    if (slot < 0) throw new Error(`reuseport layout: ${String(key)} is not in the group`);
    const last = this.#socks.pop() as K;
    if (slot === this.#socks.length) return { slot, moved: undefined };
    this.#socks[slot] = last;
    return { slot, moved: last };
  }

  /** Slots of `keys` (those in the group), ascending. */
  slotsOf(keys: Iterable<K>): number[] {
    const out: number[] = [];
    for (const key of keys) {
      const slot = this.slotOf(key);
      if (slot >= 0) out.push(slot);
    }
    return out.sort((a, b) => a - b);
  }

  /**
   * Slots of `targets` that hold the same target both now and after
   * `leaving` leaves: a program steering to them is right on both sides of
   * the shutdown, so it can be attached before it. Empty when the only
   * target is the socket that will move (then attach right after).
   */
  slotsSurviving(targets: Iterable<K>, leaving: K): number[] {
    const after = this.clone();
    after.leave(leaving);
    const wanted = new Set(targets);
    return this.slotsOf(wanted).filter((slot) => slot < after.size && after.#socks[slot] === this.#socks[slot] && this.#socks[slot] !== leaving);
  }

  clone(): ReuseportLayout<K> {
    return new ReuseportLayout(this.#socks);
  }
}
