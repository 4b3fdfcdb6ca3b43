// A long-running process of a contender (a master, a cluster primary, a
// bare worker): its stdout read line by line (always: a master logging to a
// full pipe would block), the last lines kept for error messages, and waits
// for a line with a deadline.
import type { ChildProcess } from 'node:child_process';

const TAIL_LINES = 30;
const WARN_LEVEL = 40;
const MAX_WARNINGS = 20;

export class Watched {
  readonly exited: Promise<void>;
  private readonly tail: string[] = [];
  /** Log lines at warn level or above (pino's JSON: level ≥ 40), kept for the report. */
  readonly warnings: string[] = [];
  private readonly waiters = new Set<(line: string) => void>();

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    let buffered = '';
    const take = (chunk: string): void => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.tail.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
        if (this.tail.length > TAIL_LINES) this.tail.shift();
        const level = jsonLine(line)?.['level'];
        if (typeof level === 'number' && level >= WARN_LEVEL && this.warnings.length < MAX_WARNINGS) this.warnings.push(line.slice(0, 400));
        for (const waiter of [...this.waiters]) waiter(line);
      }
    };
    child.stdout?.setEncoding('utf8').on('data', take);
    child.stderr?.setEncoding('utf8').on('data', take);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name}: not started`);
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  diagnostics(): string {
    return `${this.name} (pid ${this.child.pid ?? '-'}), last lines:\n  ${this.tail.join('\n  ')}`;
  }

  /** Resolves with the first line (from now on) that `match` accepts. */
  waitFor<T>(what: string, timeoutMs: number, match: (line: string) => T | undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms\n${this.diagnostics()}`));
      }, timeoutMs);
      const waiter = (line: string): void => {
        const value = match(line);
        if (value === undefined) return;
        done();
        resolve(value);
      };
      this.waiters.add(waiter);
      void this.exited.then(() => {
        if (!this.waiters.has(waiter)) return;
        done();
        reject(new Error(`${this.name}: exited (${this.child.signalCode ?? this.child.exitCode}) before ${what}\n${this.diagnostics()}`));
      });
    });
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.alive) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Parses a JSON line, or undefined. */
export function jsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
