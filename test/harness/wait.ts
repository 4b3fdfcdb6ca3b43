// Waiting for an item (a log line, an IPC message) that a child process
// appends to a list, with a deadline, failing early when the child exits.
import type { ChildProcess } from 'node:child_process';

export interface ListWait<T> {
  readonly items: readonly T[];
  readonly from: number;
  readonly match: (item: T) => boolean;
  readonly child: ChildProcess;
  /** Called whenever the list grows or the child exits. */
  readonly waiters: Set<() => void>;
  readonly timeoutMs: number;
  /** The error messages for an exit before the item, and for the deadline. */
  readonly exited: () => string;
  readonly late: () => string;
}

export function waitInList<T>(w: ListWait<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const found = w.items.slice(w.from).find(w.match);
      if (found) {
        done();
        resolve(found);
      } else if (w.child.exitCode !== null || w.child.signalCode !== null) {
        done();
        reject(new Error(w.exited()));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(w.late()));
    }, w.timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      w.waiters.delete(check);
    };
    w.waiters.add(check);
    check();
  });
}
