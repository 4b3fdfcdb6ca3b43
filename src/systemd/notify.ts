// sd_notify(3), written from the protocol rather than linked: one datagram of
// newline-separated VAR=value assignments to the AF_UNIX socket systemd
// names in $NOTIFY_SOCKET (a path, or `@name` in the abstract namespace).
// Without $NOTIFY_SOCKET every call is a no-op, as with libsystemd.
//
// The watchdog: with WatchdogSec= systemd sets $WATCHDOG_USEC (and
// $WATCHDOG_PID, the pid it means); we send WATCHDOG=1 every half of it,
// as sd_watchdog_enabled(3) advises, but only while `healthy()` says so: a
// master whose loop still turns but whose reload is wedged must be
// restarted too, and withholding the ping is how it asks for that.
//
// MAINPID= is never sent: the master is the main process from start to end.
import { close, monotonicMicros, sendDatagram, unixDatagramSocket } from '../sys/index.js';

/** The variables systemd hands the main process for this protocol; children must not inherit them. */
export const NOTIFY_ENVIRONMENT = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

export interface NotifyEnvironment {
  /** $NOTIFY_SOCKET, when it names a socket this client can reach. */
  readonly socket: string | undefined;
  /** The ping period (half of $WATCHDOG_USEC), when the watchdog is meant for this process. */
  readonly watchdogIntervalMs: number | undefined;
  /** Why the variables were not usable, for a warning. */
  readonly problem: string | undefined;
}

/** Reads the notify variables without acting on them. */
export function readNotifyEnvironment(env: NodeJS.ProcessEnv = process.env, pid = process.pid): NotifyEnvironment {
  const raw = env['NOTIFY_SOCKET'];
  let socket: string | undefined;
  let problem: string | undefined;
  if (raw !== undefined && raw !== '') {
    // systemd 254+ may also name an AF_VSOCK address (vsock:CID:PORT): not for a service's main process.
    if (raw.startsWith('/') || (raw.startsWith('@') && raw.length > 1)) socket = raw;
    else problem = `NOTIFY_SOCKET=${raw} is not a Unix socket path or @name; systemd notifications are off`;
  }
  let watchdogIntervalMs: number | undefined;
  const usec = env['WATCHDOG_USEC'];
  const forPid = env['WATCHDOG_PID'];
  if (socket !== undefined && usec !== undefined && (forPid === undefined || forPid === '' || Number(forPid) === pid)) {
    const n = Number(usec);
    if (Number.isSafeInteger(n) && n > 0) watchdogIntervalMs = Math.max(1, Math.floor(n / 2 / 1000));
    else problem = `WATCHDOG_USEC=${usec} is not a positive number of microseconds; no watchdog pings`;
  }
  return { socket, watchdogIntervalMs, problem };
}

export type NotifyErrorHandler = (message: string) => void;

/** An sd_notify client; a no-op when there is no socket. */
export class Notifier {
  private fd: number | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(
    readonly socket: string | undefined,
    readonly watchdogIntervalMs: number | undefined,
    private readonly onError: NotifyErrorHandler = () => {},
  ) {}

  /**
   * A notifier for this process's environment, which it then removes (like
   * sd_notify's unset_environment): workers spawned from here on do not
   * inherit the variables, and could not notify on the master's behalf.
   */
  static fromEnvironment(onError?: NotifyErrorHandler, env: NodeJS.ProcessEnv = process.env): Notifier {
    const found = readNotifyEnvironment(env);
    for (const name of NOTIFY_ENVIRONMENT) delete env[name];
    if (found.problem) onError?.(found.problem);
    return new Notifier(found.socket, found.watchdogIntervalMs, onError);
  }

  get enabled(): boolean {
    return this.socket !== undefined;
  }

  get watchdogEnabled(): boolean {
    return this.enabled && this.watchdogIntervalMs !== undefined;
  }

  /**
   * Sends the assignments as one datagram. Never throws and never blocks: a
   * notification that cannot be delivered is reported to the error handler
   * (the first few times) and dropped.
   */
  send(assignments: Readonly<Record<string, string | number | bigint>>): boolean {
    if (this.socket === undefined) return false;
    const text = Object.entries(assignments)
      .map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`)
      .join('\n');
    try {
      this.fd ??= unixDatagramSocket('NOTIFY_SOCKET');
      sendDatagram(this.fd, Buffer.from(text, 'utf8'), this.socket);
      return true;
    } catch (err) {
      if (this.failures++ < MAX_REPORTED_FAILURES) {
        this.onError(`sd_notify ${text.split('\n')[0] ?? ''}: ${err instanceof Error ? err.message : String(err)}`);
      }
      return false;
    }
  }

  ready(status?: string): boolean {
    return this.send({ READY: 1, ...(status === undefined ? {} : { STATUS: status }) });
  }

  /** RELOADING=1 with the CLOCK_MONOTONIC time systemd (253+) orders it against its reload signal by. */
  reloading(status?: string): boolean {
    return this.send({ RELOADING: 1, MONOTONIC_USEC: monotonicMicros(), ...(status === undefined ? {} : { STATUS: status }) });
  }

  stopping(status?: string): boolean {
    return this.send({ STOPPING: 1, ...(status === undefined ? {} : { STATUS: status }) });
  }

  status(text: string): boolean {
    return this.send({ STATUS: text });
  }

  /** Pings every watchdogIntervalMs while `healthy()` is true; a no-op without a watchdog. */
  startWatchdog(healthy: () => boolean): void {
    if (!this.watchdogEnabled || this.watchdogTimer || this.watchdogIntervalMs === undefined) return;
    this.watchdogTimer = setInterval(() => {
      if (healthy()) this.send({ WATCHDOG: 1 });
    }, this.watchdogIntervalMs);
    this.watchdogTimer.unref();
  }

  close(): void {
    clearInterval(this.watchdogTimer);
    this.watchdogTimer = undefined;
    if (this.fd !== undefined) {
      const fd = this.fd;
      this.fd = undefined;
      try {
        close(fd);
      } catch {
        /* already gone: nothing to release */
      }
    }
  }
}

/** Notifications that fail are reported this many times, then dropped silently. */
const MAX_REPORTED_FAILURES = 3;
