// handover as PID 1 (a container started without an init): every orphan in
// the container is re-parented to the master, and the master must reap it,
// or it stays a zombie for the container's life (a slot in the pid table,
// and in a pods' pid limit). Node reaps only the children it spawned itself
// (libuv waits for each pid it knows, never for -1), so this reaps the
// others: the zombies whose parent is us and that are not our workers.
// Workers must be left to Node: reaping one here would hide its exit.
import { readdirSync, readFileSync } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { reapChild } from '../sys/index.js';

/** How often the master looks for orphans to reap when it is PID 1. */
export const ORPHAN_REAP_MS = 1_000;

/** Zombies whose parent is `parent`, other than `own`, from /proc. */
export function orphanZombies(parent: number, own: ReadonlySet<number>): number[] {
  const found: number[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return found; // EMFILE at the descriptor limit: the next round looks again
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (own.has(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z' && Number(ppid) === parent) found.push(pid);
  }
  return found;
}

export class OrphanReaper {
  private readonly timer: NodeJS.Timeout;
  reaped = 0;

  /** `own` lists the children Node spawned (the workers of every generation that still has processes). */
  constructor(private readonly own: () => Iterable<number>, private readonly log: Logger) {
    this.timer = setInterval(() => this.reap(), ORPHAN_REAP_MS);
    this.timer.unref();
  }

  reap(): void {
    for (const pid of orphanZombies(process.pid, new Set(this.own()))) {
      try {
        if (reapChild(pid)) this.reaped++;
      } catch (err) {
        this.log.warn({ err, pid }, `could not reap orphan ${pid}`);
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** An OrphanReaper when this process is PID 1 of its namespace; otherwise the real init reaps. */
export function reapOrphansAsInit(own: () => Iterable<number>, log: Logger): OrphanReaper | undefined {
  if (process.pid !== 1) return undefined;
  log.info('running as PID 1: the master reaps orphaned processes (or run it under an init such as tini)');
  return new OrphanReaper(own, log);
}
