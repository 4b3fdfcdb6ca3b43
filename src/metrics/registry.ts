// Every metric the master exports (README "Metrics"), in a registry of its
// own (not prom-client's global one). Events are recorded as they happen
// (reload reports, worker exits, the workers' request counters); levels
// (queues, workers, certificates, /proc, TcpExt) are read from the master's
// view and the kernel just before each scrape is rendered.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DrainFigures, ReloadReport } from '../protocol/control.js';
import type { HttpMetricsMessage } from '../protocol/http-metrics.js';
import { HttpTotals } from './http-totals.js';
import { readTcpExt } from './kernel.js';
import { ResourceSampler } from './sampler.js';
import {
  DROP_REASONS,
  WORKER_EXIT_REASONS,
  WORKER_STATES,
  type DropReason,
  type MasterView,
  type WorkerExitReason,
  type WorkerStateLabel,
} from './view.js';

export const RELOAD_DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Label values created at zero, so that rate() sees the first reload of each kind. */
export const RELOAD_TRIGGERS = ['signal', 'control', 'watch'] as const;
export const RELOAD_RESULTS = ['ok', 'invalid', 'rolled_back', 'refused'] as const;

/**
 * The TcpExt counters exported as handover_kernel_tcpext_total{counter}:
 * those about listeners, migration, SYN queues and resets. They count the
 * whole network namespace, other programs' sockets included.
 */
export const TCPEXT_EXPORTED = [
  'TCPMigrateReqSuccess', 'TCPMigrateReqFailure', 'ListenOverflows', 'ListenDrops',
  'TCPReqQFullDrop', 'TCPReqQFullDoCookies', 'SyncookiesSent', 'SyncookiesRecv', 'SyncookiesFailed',
  'EmbryonicRsts', 'TCPAbortOnClose', 'TCPAbortOnData', 'TCPAbortOnTimeout', 'TCPBacklogDrop',
] as const;

/**
 * The master's own process metrics (prom-client's defaults: CPU, memory,
 * heap, descriptors, event-loop lag) are rendered at most this often; later
 * scrapes reuse the text. They cost more to collect than all of handover's
 * series together, and a second's resolution is all they have anyway.
 */
export const PROCESS_METRICS_TTL_MS = 1_000;
/** A scrape reads /proc (workers' CPU and memory, TcpExt) only when the last read is older than this. */
const RESAMPLE_AFTER_MS = 250;

export class MasterMetrics {
  /** handover_* series, rendered fresh at every scrape. */
  readonly registry = new Registry();
  /** prom-client's default metrics for the master process. */
  readonly processRegistry = new Registry();
  private processText: { text: string; at: number } | undefined;
  /** Bumped by every recorded event: the rendered text is stale when it moved. */
  private version = 0;
  private rendered: { key: string; version: number; text: string } | undefined;
  private body: { handover: string; process: string; bytes: Buffer } | undefined;
  private tcpExtRead: { at: number; values: [string, number][] } | undefined;
  private readonly sampler: ResourceSampler;
  private readonly http: HttpTotals;
  private readonly generation: Gauge;
  private readonly workers: Gauge<'state'>;
  private readonly reloads: Counter<'trigger' | 'result'>;
  private readonly reloadDuration: Histogram;
  private readonly workerExits: Counter<'reason'>;
  private readonly migrated: Counter;
  private readonly dropped: Counter<'reason'>;
  private readonly drained: Counter;
  private readonly queueLength: Gauge<'address' | 'generation'>;
  private readonly queueBacklog: Gauge<'address'>;
  private readonly listenDrops: Counter<'address'>;
  private readonly tcpExt: Counter<'counter'>;
  private readonly certificateNotAfter: Gauge<'address'>;
  private readonly workerMemory: Gauge<'worker'>;
  private readonly workerCpu: Counter<'worker'>;
  /** Set by the TLS code when it swaps material within a generation; valid while that generation is active. */
  private readonly certificateOverrides = new Map<string, { notAfter: Date; generation: number | null }>();

  constructor(private readonly view: MasterView) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.processRegistry });
    this.generation = new Gauge({ name: 'handover_generation', help: 'The active generation (0 before the first is active)', registers });
    this.workers = new Gauge({
      name: 'handover_workers',
      help: 'Worker processes by state, every generation; down = a slot of the active generation with no live worker',
      labelNames: ['state'],
      registers,
    });
    this.reloads = new Counter({ name: 'handover_reloads_total', help: 'Reloads by trigger and result', labelNames: ['trigger', 'result'], registers });
    for (const trigger of RELOAD_TRIGGERS) for (const result of RELOAD_RESULTS) this.reloads.inc({ trigger, result }, 0);
    this.reloadDuration = new Histogram({
      name: 'handover_reload_duration_seconds',
      help: 'Reloads that built a generation (ok or rolled back): from the request to the old listeners shut down',
      buckets: RELOAD_DURATION_BUCKETS,
      registers,
    });
    this.workerExits = new Counter({ name: 'handover_worker_exits_total', help: 'Worker processes that ended, by reason', labelNames: ['reason'], registers });
    for (const reason of WORKER_EXIT_REASONS) this.workerExits.inc({ reason }, 0);
    this.migrated = new Counter({
      name: 'handover_connections_migrated_total',
      help: 'Connections queued on old listeners at a cutover that the kernel moved to the new generation (reload reports)',
      registers,
    });
    this.dropped = new Counter({ name: 'handover_connections_dropped_total', help: 'Connections lost, by reason', labelNames: ['reason'], registers });
    for (const reason of DROP_REASONS) this.dropped.inc({ reason }, 0);
    this.drained = new Counter({
      name: 'handover_connections_drained_total',
      help: 'Connections old workers had open when they stopped accepting, and finished serving or cut at the deadline',
      registers,
    });
    this.queueLength = new Gauge({
      name: 'handover_accept_queue_length',
      help: 'Connections waiting in the accept queues of a generation\'s listeners on an address (TCP_INFO, read at scrape)',
      labelNames: ['address', 'generation'],
      registers,
    });
    this.queueBacklog = new Gauge({
      name: 'handover_accept_queue_backlog',
      help: 'Accept-queue limit of the active generation\'s listeners on an address (after the net.core.somaxconn cap)',
      labelNames: ['address'],
      registers,
    });
    this.listenDrops = new Counter({
      name: 'handover_listen_drops_total',
      help: 'SYNs and handshakes the kernel dropped on the master\'s listeners for an address, a full accept queue included (SO_MEMINFO)',
      labelNames: ['address'],
      registers,
    });
    this.tcpExt = new Counter({
      name: 'handover_kernel_tcpext_total',
      help: 'TcpExt counters of the master\'s network namespace, raw: they include every other program\'s sockets there',
      labelNames: ['counter'],
      registers,
    });
    this.certificateNotAfter = new Gauge({
      name: 'handover_tls_certificate_not_after_timestamp_seconds',
      help: 'Expiry (notAfter, Unix seconds) of the certificate served on a TLS address',
      labelNames: ['address'],
      registers,
    });
    this.workerMemory = new Gauge({
      name: 'handover_worker_resident_memory_bytes',
      help: 'Resident memory of the worker processes in a slot (more than one while a generation drains)',
      labelNames: ['worker'],
      registers,
    });
    this.workerCpu = new Counter({
      name: 'handover_worker_cpu_seconds_total',
      help: 'CPU time (user and system) of every worker process that ran in a slot, sampled each second',
      labelNames: ['worker'],
      registers,
    });
    this.http = new HttpTotals(this.registry);
    this.sampler = new ResourceSampler(view, (n) => this.recordDropped('listen_overflow', n));
  }

  /** Starts the one-second sampler (per-slot CPU, listener drops). */
  start(): void {
    this.sampler.start();
  }

  stop(): void {
    this.sampler.stop();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * A reload report, as the reload records it (drain figures come later, in
   * recordDrain). `drops` (dropped by reason), where the report has it,
   * labels the losses; otherwise `dropped` counts as closed_without_migration.
   */
  recordReload(report: Pick<ReloadReport, 'trigger' | 'result' | 'durationMs' | 'migrated' | 'dropped'> & { readonly drops?: Readonly<Partial<Record<DropReason, number>>> }): void {
    this.version++;
    this.reloads.inc({ trigger: report.trigger, result: report.result });
    if (report.result !== 'ok' && report.result !== 'rolled_back') return;
    this.reloadDuration.observe(report.durationMs / 1000);
    this.migrated.inc(report.migrated);
    if (!report.drops) return this.recordDropped('closed_without_migration', report.dropped);
    for (const [reason, n] of Object.entries(report.drops) as [DropReason, number | undefined][]) this.recordDropped(reason, n ?? 0);
  }

  /** A drain's figures, once an old generation has drained. */
  recordDrain(drain: Pick<DrainFigures, 'drained' | 'killed'>): void {
    this.version++;
    this.drained.inc(drain.drained);
    this.recordDropped('killed_at_deadline', drain.killed);
  }

  recordWorkerExit(reason: WorkerExitReason): void {
    this.version++;
    this.workerExits.inc({ reason });
  }

  recordDropped(reason: DropReason, count: number): void {
    if (count <= 0) return;
    this.version++;
    this.dropped.inc({ reason }, count);
  }

  /** A worker's request counters (a `metrics` message). */
  recordRequests(pid: number, generation: number, message: HttpMetricsMessage): void {
    this.version++;
    this.http.add(pid, generation, message);
  }

  /**
   * For the TLS code: the certificate now served on `address` (host:port as
   * the labels show it, the port resolved), when it changes without a new
   * generation. A new active generation's own material takes over again.
   */
  setCertificateNotAfter(address: string, notAfter: Date): void {
    this.version++;
    this.certificateOverrides.set(address, { notAfter, generation: this.view.activeGeneration() });
  }

  /**
   * The text exposition: handover's series with every level read now, then
   * the master's process metrics. The handover part is rendered again only
   * when something changed since the last scrape (an event was recorded or
   * a level moved), so that a frequent scraper costs the master little.
   */
  async render(): Promise<Buffer> {
    const levels = this.read();
    const key = JSON.stringify(levels);
    if (this.rendered?.key !== key || this.rendered.version !== this.version) {
      const version = this.version;
      this.apply(levels);
      this.rendered = { key, version, text: await this.registry.metrics() };
    }
    const now = performance.now();
    if (!this.processText || now - this.processText.at >= PROCESS_METRICS_TTL_MS) {
      this.processText = { text: await this.processRegistry.metrics(), at: now };
    }
    // The same bytes for every scrape until a part changes: a scraper allocates nothing here.
    if (this.body?.handover !== this.rendered.text || this.body.process !== this.processText.text) {
      const bytes = Buffer.from(`${this.rendered.text}\n${this.processText.text}`);
      this.body = { handover: this.rendered.text, process: this.processText.text, bytes };
    }
    return this.body.bytes;
  }

  /** Every level, read now (the /proc ones at most every RESAMPLE_AFTER_MS). */
  private read(): Levels {
    const now = performance.now();
    if (now - this.sampler.sampledAt >= RESAMPLE_AFTER_MS) this.sampler.sample();
    if (!this.tcpExtRead || now - this.tcpExtRead.at >= RESAMPLE_AFTER_MS) {
      const all = safely(readTcpExt) ?? {};
      this.tcpExtRead = { at: now, values: TCPEXT_EXPORTED.flatMap((k): [string, number][] => (all[k] === undefined ? [] : [[k, all[k]]])) };
    }
    const generations = this.view.generations();
    const active = this.view.activeGeneration();
    const states = new Map<WorkerStateLabel, number>(WORKER_STATES.map((s) => [s, 0]));
    for (const g of generations) {
      for (const w of g.workers) {
        const state = w.state as WorkerStateLabel;
        if (states.has(state)) states.set(state, states.get(state)! + 1);
      }
      if (g.id === active) states.set('down', states.get('down')! + g.emptySlots);
    }
    const queues: [string, string, number][] = [];
    const backlogs = new Map<string, number>();
    for (const g of generations) {
      const queued = new Map<string, number>();
      for (const { address, socket } of g.listeners) {
        const queue = socket.closed ? null : safely(() => socket.queue());
        if (!queue) continue;
        queued.set(address, (queued.get(address) ?? 0) + queue.queued);
        if (g.id === active) backlogs.set(address, queue.backlog);
      }
      for (const [address, n] of queued) queues.push([address, String(g.id), n]);
    }
    const certificates = new Map(this.view.certificates());
    for (const [address, o] of this.certificateOverrides) {
      if (o.generation === active) certificates.set(address, o.notAfter);
      else this.certificateOverrides.delete(address);
    }
    return {
      generation: active ?? 0,
      workers: [...states],
      queues,
      backlogs: [...backlogs],
      drops: [...this.sampler.dropsByAddress],
      cpu: [...this.sampler.cpuBySlot].map(([slot, s]) => [String(slot), s]),
      rss: [...this.sampler.rssBySlot].map(([slot, b]) => [String(slot), b]),
      tcpExt: this.tcpExtRead.values,
      certificates: [...certificates].map(([address, d]) => [address, d.getTime() / 1000]),
      livePids: generations.flatMap((g) => g.workers.map((w) => w.pid)),
      liveGenerations: generations.map((g) => g.id),
    };
  }

  private apply(levels: Levels): void {
    this.generation.set(levels.generation);
    for (const [state, n] of levels.workers) this.workers.set({ state }, n);
    this.queueLength.reset();
    for (const [address, generation, n] of levels.queues) this.queueLength.set({ address, generation }, n);
    setGauges(this.queueBacklog, 'address', levels.backlogs);
    setCounters(this.listenDrops, 'address', levels.drops);
    setCounters(this.workerCpu, 'worker', levels.cpu);
    setGauges(this.workerMemory, 'worker', levels.rss);
    setCounters(this.tcpExt, 'counter', levels.tcpExt);
    setGauges(this.certificateNotAfter, 'address', levels.certificates);
    this.http.refresh(new Set(levels.livePids), new Set(levels.liveGenerations));
  }
}

/** What the levels were at a scrape: plain data, compared between scrapes. */
interface Levels {
  readonly generation: number;
  readonly workers: readonly [WorkerStateLabel, number][];
  readonly queues: readonly [string, string, number][];
  readonly backlogs: readonly [string, number][];
  readonly drops: readonly [string, number][];
  readonly cpu: readonly [string, number][];
  readonly rss: readonly [string, number][];
  readonly tcpExt: readonly [string, number][];
  readonly certificates: readonly [string, number][];
  readonly livePids: readonly number[];
  readonly liveGenerations: readonly number[];
}

/** Sets a gauge's series to exactly these (others removed). */
function setGauges<L extends string>(gauge: Gauge<L>, label: L, values: readonly [string, number][]): void {
  gauge.reset();
  for (const [key, value] of values) gauge.set({ [label]: key } as Partial<Record<L, string>>, value);
}

/** Sets a counter's series to totals kept elsewhere (each only grows). */
function setCounters<L extends string>(counter: Counter<L>, label: L, totals: readonly [string, number][]): void {
  counter.reset();
  for (const [key, value] of totals) counter.inc({ [label]: key } as Partial<Record<L, string>>, value);
}

/** A kernel read that may fail (a socket closed meanwhile, /proc unreadable): skip that figure this time. */
function safely<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}
