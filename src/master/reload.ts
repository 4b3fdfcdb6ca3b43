// The reload queue: one ReloadOperation at a time. Requests that arrive
// while one runs coalesce into a single follow-up reload, and every caller
// gets the report of the reload that served its request (tableflip answers
// "in progress"; we answer later, with the figures). Reports are kept for
// `handover status`.
import type { RefusalReason, ReloadReport, Trigger } from '../protocol/control.js';
import { monotonic } from './clock.js';
import type { Generation } from './generation.js';
import { ReloadOperation, type ReloadHost } from './reload-operation.js';
import type { WorkerExit } from './worker-handle.js';

/** Reload reports kept for `handover status`. */
export const REPORTS_KEPT = 20;

type Waiter = { readonly onReport: (report: ReloadReport) => void; readonly waitDrain: boolean };

interface PendingReload {
  readonly trigger: Trigger;
  readonly requestedAt: { readonly wall: Date; readonly mono: number };
  readonly waiters: Waiter[];
}

export class Reloader {
  private operation: ReloadOperation | undefined;
  private pending: PendingReload | undefined;
  private seq = 0;
  private readonly kept: ReloadReport[] = [];
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly host: ReloadHost) {}

  get inProgress(): boolean {
    return this.operation !== undefined;
  }

  get reports(): readonly ReloadReport[] {
    return this.kept;
  }

  /** Resolves once no reload runs and none is queued. */
  settled(): Promise<void> {
    return this.idle;
  }

  /** Queues a reload; `onReport` gets the report of the reload that serves it. */
  request(trigger: Trigger, onReport?: (report: ReloadReport) => void, waitDrain = false): void {
    const refusal: RefusalReason | undefined = this.host.stopping ? 'stopping' : this.host.active ? undefined : 'not_serving';
    if (refusal) {
      const report = this.refused(trigger, refusal);
      this.record(report);
      onReport?.(report);
      return;
    }
    this.pending ??= { trigger, requestedAt: { wall: new Date(), mono: monotonic() }, waiters: [] };
    if (onReport) this.pending.waiters.push({ onReport, waitDrain });
    if (!this.operation) this.idle = this.run();
  }

  /** A worker exited: the running reload takes it if it belongs to the generation being built. */
  onWorkerExit(generation: Generation, index: number, exit: WorkerExit, pid: number | undefined): boolean {
    if (!this.operation?.builds(generation)) return false;
    this.operation.onWorkerExit(generation, index, exit, pid);
    return true;
  }

  /** A stop began: a reload that has not committed gives way; queued ones are refused. */
  onStop(): void {
    this.operation?.onStop();
  }

  private async run(): Promise<void> {
    for (let batch = this.pending; batch; batch = this.pending) {
      this.pending = undefined;
      let report: ReloadReport;
      let operation: ReloadOperation | undefined;
      this.host.hooks.reloadStarted(this.seq + 1, batch.trigger);
      if (this.host.stopping) report = this.refused(batch.trigger, 'stopping');
      else {
        operation = new ReloadOperation(this.host, ++this.seq, batch.trigger, batch.requestedAt);
        this.operation = operation;
        report = await operation.run();
        this.operation = undefined;
      }
      this.record(report);
      this.host.hooks.reloadEnded(report); // systemd hears READY=1 before `handover reload` returns
      for (const waiter of batch.waiters) {
        if (waiter.waitDrain && operation && report.result === 'ok') void operation.drained.then(() => waiter.onReport(report));
        else waiter.onReport(report);
      }
    }
  }

  private refused(trigger: Trigger, refusal: RefusalReason): ReloadReport {
    return {
      id: ++this.seq, trigger, result: 'refused', refusal,
      reason: refusal === 'stopping' ? 'the master is stopping' : 'the master is not serving yet',
      generation: null, previous: this.host.active?.id ?? null, strategy: null, startedAt: new Date().toISOString(),
      durationMs: 0, settleMs: 0, queuedAtCutover: 0, migrated: 0, dropped: 0, drops: {}, listeners: [], warnings: [],
    };
  }

  private record(report: ReloadReport): void {
    this.kept.push(report);
    if (this.kept.length > REPORTS_KEPT) this.kept.shift();
    this.host.metrics?.recordReload(report);
    const level = report.result === 'ok' ? 'info' : report.result === 'refused' ? 'warn' : 'error';
    const what =
      report.tls?.rotate === 'in-place'
        ? `certificates replaced in place in generation ${report.generation} in ${report.durationMs.toFixed(0)} ms`
        : report.result === 'ok'
        ? `generation ${report.previous} -> ${report.generation} (${report.strategy}) in ${report.durationMs.toFixed(0)} ms` +
          `${report.settleMs > 0 ? ` + ${report.settleMs.toFixed(0)} ms settle` : ''}: ` +
          `${report.queuedAtCutover} queued at cutover, ${report.migrated} migrated, ${report.dropped} dropped`
        : `${report.result.replace('_', ' ')}: ${report.reason}`;
    this.host.log[level]({ reload: report }, `reload ${report.id} (${report.trigger}) ${what}`);
  }
}
