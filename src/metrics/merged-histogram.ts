// A histogram whose observations happen elsewhere: workers count their
// requests into buckets and send the counts, and this adds them up. A
// prom-client Histogram only takes one observation at a time (and the
// master never sees the single durations), so this one keeps its own bucket
// counts and renders them as prom-client renders a histogram.
import { Histogram, type Registry } from 'prom-client';

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  /** Per bucket, not cumulative: one per bound, then +Inf. */
  readonly counts: number[];
  sum: number;
}

interface Rendered {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

type Exported<L extends string> = Awaited<ReturnType<Histogram<L | 'le'>['get']>>;

export class MergedHistogram<L extends string = never> extends Histogram<L | 'le'> {
  readonly name: string;
  readonly help: string;
  readonly bounds: readonly number[];
  // Not a class field initialised after super(): prom-client's constructor calls reset().
  private merged: Map<string, Series> | undefined;

  constructor(config: { name: string; help: string; labelNames?: readonly L[]; buckets: readonly number[]; registers: Registry[] }) {
    super({ name: config.name, help: config.help, labelNames: config.labelNames ?? [], buckets: [...config.buckets], registers: config.registers });
    this.name = config.name;
    this.help = config.help;
    this.bounds = config.buckets;
    this.merged ??= new Map();
  }

  /** Adds counts (one per bound, then +Inf, not cumulative) and their sum in seconds. */
  add(labels: Readonly<Record<L, string>>, counts: readonly number[], sum: number): void {
    if (counts.length !== this.bounds.length + 1) throw new RangeError(`${this.name}: expected ${this.bounds.length + 1} bucket counts, got ${counts.length}`);
    const key = keyOf(labels);
    const series = this.series();
    let s = series.get(key);
    if (!s) {
      s = { labels: { ...labels }, counts: counts.map(() => 0), sum: 0 };
      series.set(key, s);
    }
    for (let i = 0; i < counts.length; i++) s.counts[i]! += counts[i]!;
    s.sum += sum;
  }

  /** Label sets that have a series. */
  labelSets(): Readonly<Record<string, string>>[] {
    return [...this.series().values()].map((s) => s.labels);
  }

  /** Removes one series (a generation that is gone). */
  removeSeries(labels: Readonly<Record<string, string>>): void {
    this.series().delete(keyOf(labels));
  }

  override reset(): void {
    super.reset();
    this.merged?.clear();
  }

  override async get(): Promise<Exported<L>> {
    const values: Rendered[] = [];
    for (const s of this.series().values()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ labels: { ...s.labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      const count = cumulative + s.counts[this.bounds.length]!;
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: count, metricName: `${this.name}_count` });
    }
    // The shape prom-client's own histograms export (its typings call `type` an enum; at run time it is this string).
    const exported = { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
    return exported as unknown as Exported<L>;
  }

  /** The registry renders text from this when it exists (prom-client's Histogram has it too). */
  getForPromString(): Promise<Exported<L>> {
    return this.get();
  }

  private series(): Map<string, Series> {
    this.merged ??= new Map();
    return this.merged;
  }
}

function keyOf(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(',');
}
