// What the master tells its service manager about its life: the hooks the
// supervisor and the reload call, and their systemd implementation (READY,
// RELOADING, STOPPING, STATUS and the watchdog through sd_notify).
//
// The watchdog is gated on health, and health is "no reload is past its own
// deadline": a reload registers a deadline when it starts (from the current
// configuration) and re-arms it once it has read the new one (its
// ready_timeout and settle may differ). Every wait inside a reload has its
// own deadline, so passing the sum means something waits without one: the
// master's loop still turns, but it will never finish the job, and
// withholding WATCHDOG=1 lets systemd restart it.
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import type { MasterStatus, ReloadReport, Trigger } from '../protocol/control.js';
import type { Notifier } from '../systemd/notify.js';
import { monotonic } from './clock.js';
import { ACCEPT_QUEUE_WAIT_MS, DRAIN_ACK_TIMEOUT_MS } from './handoff/cutover.js';
import { masterStatusLine } from './status-line.js';

/** Calls from the supervisor (stopping) and the reload (started, configured, ended). */
export interface LifecycleHooks {
  /** A reload starts (before its configuration is read). */
  reloadStarted(id: number, trigger: Trigger): void;
  /** The reload has read and validated `config`; it goes on once this resolves. */
  reloadConfigured(config: Config): Promise<void>;
  /** The reload is over, whatever its result (also after a rollback or a refusal). */
  reloadEnded(report: ReloadReport): void;
  /** A stop begins (graceful or fast). */
  stopping(mode: 'graceful' | 'fast'): void;
}

export const NO_HOOKS: LifecycleHooks = {
  reloadStarted: () => {},
  reloadConfigured: () => Promise.resolve(),
  reloadEnded: () => {},
  stopping: () => {},
};

/** Slack on top of a reload's own waits, for the CPU work between them (spawning, reading files). */
export const RELOAD_DEADLINE_MARGIN_MS = 3_000;
/** How often STATUS= is refreshed (only sent when it changed), so worker deaths and drains show up. */
export const STATUS_REFRESH_MS = 5_000;
/** Test-only: every reload waits forever once it has read its configuration (the master's loop runs on). */
export const STALL_RELOAD_VARIABLE = 'HANDOVER_TEST_STALL_RELOAD';

/**
 * How long a reload from `current` to `next` may take at most: the new
 * workers' start (ready_timeout), settle, and the longer of a cutover and a
 * rollback (each: the workers' acknowledgement of the drain, then, for every
 * listener nobody takes over, the wait for its queue and a second
 * acknowledgement); plus a margin. Before the new configuration is read,
 * `next` is the current one.
 */
export function reloadDeadlineMs(current: Config, next: Config = current): number {
  const kept = new Set(next.listen.map((l) => l.address.text));
  const removed = current.listen.filter((l) => !kept.has(l.address.text)).length;
  const { readyTimeoutMs, settleMs } = next.reload;
  const acceptFirst = Math.max(1, removed + next.listen.length) * (ACCEPT_QUEUE_WAIT_MS + DRAIN_ACK_TIMEOUT_MS);
  return readyTimeoutMs + settleMs + DRAIN_ACK_TIMEOUT_MS + acceptFirst + RELOAD_DEADLINE_MARGIN_MS;
}

/** What the link reads from the supervisor. */
export interface MasterView {
  readonly config: Config;
  status(): MasterStatus;
}

interface RunningReload {
  readonly id: number;
  readonly startedAt: number;
  deadline: number;
  overdueReported: boolean;
}

export class SystemdLink implements LifecycleHooks {
  private master: MasterView | undefined;
  private reload: RunningReload | undefined;
  private stopped = false;
  private lastStatus = '';
  private statusTimer: NodeJS.Timeout | undefined;
  private readonly stall: boolean;

  constructor(
    private readonly notifier: Notifier,
    private readonly log: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.stall = env[STALL_RELOAD_VARIABLE] === '1';
    if (this.stall) this.log.warn(`${STALL_RELOAD_VARIABLE}=1 (a test hook): every reload will hang after reading its configuration`);
  }

  attach(master: MasterView): void {
    this.master = master;
  }

  /** The first generation serves: READY=1, then the watchdog and the STATUS refresh. */
  serving(): void {
    this.notifier.ready(this.statusLine());
    this.notifier.startWatchdog(() => this.healthy());
    if (!this.notifier.enabled) return;
    this.statusTimer = setInterval(() => {
      this.healthy(); // reports a wedged reload even without a watchdog
      this.refreshStatus();
    }, STATUS_REFRESH_MS);
    this.statusTimer.unref();
  }

  /** The master could not start: say why in `systemctl status` before it exits. */
  startFailed(err: unknown): void {
    this.notifier.status(`start failed: ${err instanceof Error ? err.message : String(err)}`);
  }

  reloadStarted(id: number, trigger: Trigger): void {
    if (this.stopped) return;
    const now = monotonic();
    const budget = this.master ? reloadDeadlineMs(this.master.config) : RELOAD_DEADLINE_MARGIN_MS;
    this.reload = { id, startedAt: now, deadline: now + budget, overdueReported: false };
    this.notifier.reloading(this.sent(`reloading (reload ${id}, ${trigger}); ${this.statusLine()}`));
  }

  reloadConfigured(config: Config): Promise<void> {
    if (this.reload && this.master) this.reload.deadline = monotonic() + reloadDeadlineMs(this.master.config, config);
    // A promise that never settles: the reload waits, everything else goes on.
    return this.stall ? new Promise<void>(() => {}) : Promise.resolve();
  }

  reloadEnded(report: ReloadReport): void {
    const running = this.reload;
    this.reload = undefined;
    if (running?.overdueReported) {
      this.log.warn({ reload: report.id, elapsedMs: Math.round(monotonic() - running.startedAt) }, `reload ${report.id} ended after its deadline; the watchdog pings again`);
    }
    if (this.stopped) return;
    this.notifier.ready(this.sent(this.statusLine()));
  }

  stopping(mode: 'graceful' | 'fast'): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.statusTimer);
    this.notifier.stopping(`stopping (${mode})`);
  }

  /** False while a reload is past its deadline (the watchdog then stays silent). */
  healthy(now = monotonic()): boolean {
    const running = this.reload;
    if (!running || now <= running.deadline) return true;
    if (!running.overdueReported) {
      running.overdueReported = true;
      const why = this.notifier.watchdogEnabled ? 'withholding the watchdog ping so that systemd restarts the master' : 'no watchdog is configured to act on it';
      this.log.error(
        { reload: running.id, elapsedMs: Math.round(now - running.startedAt), overdueMs: Math.round(now - running.deadline) },
        `reload ${running.id} is past its deadline (${Math.round(now - running.startedAt)} ms); ${why}`,
      );
      this.notifier.status(this.sent(`reload ${running.id} wedged for ${Math.round((now - running.startedAt) / 1000)} s; ${this.statusLine()}`));
    }
    return false;
  }

  close(): void {
    clearInterval(this.statusTimer);
    this.notifier.close();
  }

  private statusLine(): string {
    return this.master ? masterStatusLine(this.master.status()) : 'starting';
  }

  private refreshStatus(): void {
    if (this.stopped || this.reload) return;
    const line = this.statusLine();
    if (line !== this.lastStatus) this.notifier.status(this.sent(line));
  }

  private sent(line: string): string {
    this.lastStatus = line;
    return line;
  }
}
