// Figures that only exist as the kernel's current values: each worker's CPU
// time and memory (/proc), each listener's drop count (SO_MEMINFO). Sampled
// every second and at each scrape, so that they can be kept as monotonic
// totals per slot and per address although the processes and sockets behind
// them come and go with every reload. What a worker uses in its last second
// before it exits is not seen (its /proc entry is gone when the master
// learns of the exit).
import { readProcessUsage } from './process-usage.js';
import type { MasterView, QueueSource } from './view.js';

/** How often the sampler reads /proc and the listeners between scrapes. */
export const SAMPLE_INTERVAL_MS = 1_000;

interface SeenWorker {
  readonly slot: number;
  cpuSeconds: number;
}

interface SeenListener {
  readonly address: string;
  drops: number;
}

export class ResourceSampler {
  /** CPU seconds of every process that ran in a slot, since the master started. */
  readonly cpuBySlot = new Map<number, number>();
  /** Resident memory of the processes alive in a slot now (several while a generation drains). */
  readonly rssBySlot = new Map<number, number>();
  /** Listen drops on the master's listeners, per address, since the master started. */
  readonly dropsByAddress = new Map<string, number>();
  private readonly workers = new Map<number, SeenWorker>();
  private readonly listeners = new Map<QueueSource, SeenListener>();
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() of the last sample. */
  sampledAt = -Infinity;

  /** `onDrops` is told of each new batch of listen drops (for handover_connections_dropped_total). */
  constructor(
    private readonly view: MasterView,
    private readonly onDrops: (count: number) => void,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.sample(), SAMPLE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  sample(): void {
    this.sampledAt = performance.now();
    const generations = this.view.generations();
    this.sampleWorkers(generations.flatMap((g) => g.workers));
    this.sampleListeners(generations.flatMap((g) => g.listeners));
  }

  private sampleWorkers(live: readonly { readonly slot: number; readonly pid: number }[]): void {
    this.rssBySlot.clear();
    const seen = new Set<number>();
    for (const { slot, pid } of live) {
      const usage = readProcessUsage(pid);
      if (!usage) continue;
      seen.add(pid);
      let w = this.workers.get(pid);
      if (!w) {
        // First sight: all its CPU so far (its start-up included) is new.
        w = { slot, cpuSeconds: 0 };
        this.workers.set(pid, w);
      }
      const delta = usage.cpuSeconds - w.cpuSeconds;
      if (delta > 0) this.cpuBySlot.set(slot, (this.cpuBySlot.get(slot) ?? 0) + delta);
      else if (!this.cpuBySlot.has(slot)) this.cpuBySlot.set(slot, 0);
      w.cpuSeconds = usage.cpuSeconds;
      this.rssBySlot.set(slot, (this.rssBySlot.get(slot) ?? 0) + usage.rssBytes);
    }
    for (const pid of this.workers.keys()) if (!seen.has(pid)) this.workers.delete(pid);
  }

  /**
   * A listener the master no longer lists is still read until its copy is
   * closed (a retired listener is kept open a few seconds), then forgotten.
   */
  private sampleListeners(live: readonly { readonly address: string; readonly socket: QueueSource }[]): void {
    for (const { address, socket } of live) {
      if (!this.listeners.has(socket)) this.listeners.set(socket, { address, drops: 0 });
      if (!this.dropsByAddress.has(address)) this.dropsByAddress.set(address, 0);
    }
    let fresh = 0;
    for (const [socket, seen] of this.listeners) {
      if (socket.closed) {
        this.listeners.delete(socket);
        continue;
      }
      let drops: number;
      try {
        drops = socket.drops();
      } catch {
        continue; // not expected on an open socket; read again at the next sample
      }
      const delta = drops - seen.drops;
      if (delta <= 0) continue;
      seen.drops = drops;
      fresh += delta;
      this.dropsByAddress.set(seen.address, (this.dropsByAddress.get(seen.address) ?? 0) + delta);
    }
    if (fresh > 0) this.onDrops(fresh);
  }
}
