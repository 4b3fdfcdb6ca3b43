// CPUs split between the servers and the load generators, so that neither
// takes the other's time and the scheduler does not move them around (a
// pair of unpinned runs measured 0.79–1.12× for the same code).
export interface Pinning {
  /** taskset CPU list for the servers (masters, workers, reload commands), or null when not pinned. */
  readonly servers: string | null;
  /** taskset CPU list for the load generator, or null. */
  readonly load: string | null;
  readonly loadCpus: number;
  readonly note: string;
}

/** Servers on the first half of the CPUs, the load generator on the rest; none with one CPU. */
export function choosePinning(count: number): Pinning {
  if (count < 2) return { servers: null, load: null, loadCpus: 1, note: 'not pinned (1 CPU)' };
  const half = Math.floor(count / 2);
  const list = (from: number, to: number): string => (from === to ? String(from) : `${from}-${to}`);
  const servers = list(0, half - 1);
  const load = list(half, count - 1);
  return { servers, load, loadCpus: count - half, note: `taskset: servers on CPU ${servers}, load generator on CPU ${load}` };
}

/** `argv` pinned to `cpuList` through taskset, or as it is when nothing is pinned. */
export function pinned(cpuList: string | null, argv: readonly string[]): string[] {
  return cpuList === null ? [...argv] : ['taskset', '-c', cpuList, ...argv];
}
