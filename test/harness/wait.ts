// Waiting for an item (a log line, an IPC message) that a child process
// appends to a list, with a deadline, failing early when the child exits.
import type { ChildProcess } from 'node:child_process';

/** After 'exit', how long a child's pipes may stay open (held by a process it left behind) before it counts as ended anyway. */
const PIPES_AFTER_EXIT_MS = 2_000;

export interface Ended {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * Resolves once `child` has exited and its output has been read to the end
 * ('close'), so that whatever it wrote last is in the lists; `onEnded` is
 * called first. 'exit' alone can come before the last lines.
 */
export function ended(child: ChildProcess, onEnded: () => void): Promise<Ended> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      child.off('close', finish);
      onEnded();
      resolve({ code, signal });
    };
    child.once('close', finish);
    child.once('exit', (code, signal) => {
      timer = setTimeout(() => finish(code, signal), PIPES_AFTER_EXIT_MS);
    });
  });
}

export interface ListWait<T> {
  readonly items: readonly T[];
  readonly from: number;
  readonly match: (item: T) => boolean;
  /** True once the child has ended (see `ended`): nothing more will come. */
  readonly done: () => boolean;
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
      } else if (w.done()) {
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
