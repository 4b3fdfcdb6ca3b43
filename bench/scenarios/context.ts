// What every scenario gets: the box, the options, the results to fill, a
// fresh port per contender start, and wrk runs on the load generator's CPUs.
import type { Box } from '../lib/box.js';
import { makeContender, type ContenderId } from '../contenders/index.js';
import type { Contender, ContenderOptions } from '../contenders/contender.js';
import type { Options } from '../lib/options.js';
import { processCpu, treeCpuMs } from '../lib/procfs.js';
import type { Results } from '../lib/results.js';
import { runWrk, type WrkResult } from '../lib/wrk.js';

const FIRST_PORT = 8100;
/** wrk's own per-request timeout. */
export const WRK_TIMEOUT_S = 2;

export class Ctx {
  private port = FIRST_PORT;

  constructor(
    readonly box: Box,
    readonly o: Options,
    readonly scripts: { plain: string; timeline: string },
    readonly results: Results,
    readonly log: (line: string) => void,
  ) {}

  /** A contender on a port no earlier run used (no TIME_WAIT or lingering process in the way). */
  contender(id: ContenderId, extra: Partial<ContenderOptions> = {}): Contender {
    return makeContender(id, this.box, { port: this.port++, workers: this.o.workers, ...extra });
  }

  /** `count` consecutive ports no earlier run used; returns the first. */
  ports(count: number): number {
    const first = this.port;
    this.port += count;
    return first;
  }

  /** The contenders in the order of this repeat: rotated, so that none always runs first. */
  order<T>(ids: readonly T[], repeat: number): T[] {
    const k = ids.length === 0 ? 0 : repeat % ids.length;
    return [...ids.slice(k), ...ids.slice(0, k)];
  }

  /** Records what the contender reported as wrong during the measurement just taken. */
  async note(c: Contender, what: string): Promise<void> {
    for (const n of await c.notes()) this.results.notes.push(`${what}: ${n}`);
  }

  wrk(port: number, seconds: number, newConnection: boolean, timeline: boolean, tls = false): Promise<WrkResult> {
    return runWrk((cmd, args, timeoutMs) => this.box.run('load', cmd, args, timeoutMs), {
      url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/`,
      threads: this.box.pinning.loadCpus,
      connections: this.o.connections,
      seconds,
      newConnection,
      script: timeline ? this.scripts.timeline : this.scripts.plain,
      timeoutSeconds: WRK_TIMEOUT_S,
    });
  }
}

/** CPU ms used so far by all of a contender's processes. */
export function contenderCpuMs(c: Contender): number {
  return c.roots().reduce((sum, pid) => sum + treeCpuMs(pid), 0);
}

/** The master's own CPU ms (not its children's), or NaN. */
export function masterSelfMs(c: Contender): number {
  const pid = c.masterPid();
  return pid === undefined ? Number.NaN : (processCpu(pid)?.selfMs ?? Number.NaN);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
