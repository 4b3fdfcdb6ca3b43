// The workers' request counters, summed in the master. Each worker sends
// what it served since its previous message (protocol/http-metrics.ts); the
// master adds that to totals that belong to no worker, so a scrape covers
// every worker and the totals never go backwards when one exits or a
// generation drains. The per-generation series exist while the generation
// has processes and are removed when it is gone, so their number stays
// bounded (active, draining, starting).
import { Counter, Gauge, type Registry } from 'prom-client';
import { HTTP_DURATION_BUCKETS, STATUS_CLASSES, type HttpMetricsMessage } from '../protocol/http-metrics.js';
import { MergedHistogram } from './merged-histogram.js';

export class HttpTotals {
  private readonly requests: Counter<'code'>;
  private readonly duration: MergedHistogram;
  private readonly inFlight: Gauge;
  private readonly byGeneration: Counter<'generation' | 'code'>;
  private readonly durationByGeneration: MergedHistogram<'generation'>;
  /** The last in-flight level each live worker reported, by pid. */
  private readonly levels = new Map<number, number>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'handover_http_requests_total',
      help: 'Responses the workers completed, by status class, summed over every worker and generation',
      labelNames: ['code'],
      registers,
    });
    for (const code of STATUS_CLASSES) this.requests.inc({ code }, 0);
    this.duration = new MergedHistogram({
      name: 'handover_http_request_duration_seconds',
      help: 'Time from request to response completed, in the workers',
      buckets: HTTP_DURATION_BUCKETS,
      registers,
    });
    this.duration.add({}, new Array<number>(HTTP_DURATION_BUCKETS.length + 1).fill(0), 0);
    this.inFlight = new Gauge({
      name: 'handover_http_requests_in_flight',
      help: 'Requests the live workers are serving, as each last reported it',
      registers,
    });
    this.byGeneration = new Counter({
      name: 'handover_generation_http_requests_total',
      help: 'Responses completed by the workers of one generation, by status class; removed when the generation is gone',
      labelNames: ['generation', 'code'],
      registers,
    });
    this.durationByGeneration = new MergedHistogram({
      name: 'handover_generation_http_request_duration_seconds',
      help: 'Request duration in the workers of one generation; removed when the generation is gone',
      labelNames: ['generation'],
      buckets: HTTP_DURATION_BUCKETS,
      registers,
    });
  }

  /** Adds what worker `pid` of `generation` served since its previous message. */
  add(pid: number, generation: number, message: HttpMetricsMessage): void {
    const g = String(generation);
    message.requests.forEach((n, i) => {
      if (n === 0) return;
      const code = STATUS_CLASSES[i]!;
      this.requests.inc({ code }, n);
      this.byGeneration.inc({ generation: g, code }, n);
    });
    this.duration.add({}, message.buckets, message.seconds);
    this.durationByGeneration.add({ generation: g }, message.buckets, message.seconds);
    this.levels.set(pid, message.inFlight);
  }

  /**
   * Before a scrape: in-flight is summed over the workers alive now (a
   * worker's last level goes with it), and the series of generations that
   * are gone are removed.
   */
  refresh(livePids: ReadonlySet<number>, liveGenerations: ReadonlySet<number>): void {
    let inFlight = 0;
    for (const [pid, level] of this.levels) {
      if (livePids.has(pid)) inFlight += level;
      else this.levels.delete(pid);
    }
    this.inFlight.set(inFlight);
    for (const labels of this.durationByGeneration.labelSets()) {
      const generation = labels['generation'];
      if (generation === undefined || liveGenerations.has(Number(generation))) continue;
      this.durationByGeneration.removeSeries(labels);
      for (const code of STATUS_CLASSES) this.byGeneration.remove({ generation, code });
    }
  }
}
