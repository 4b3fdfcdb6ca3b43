// Number formats for the tables: figures with their spread over repeats.
import { spread, summarize } from '../lib/stats.js';

export function num(v: number, digits = 0): string {
  if (!Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** 12,345 → "12.3k"; smaller numbers as they are. */
export function compact(v: number): string {
  if (!Number.isFinite(v)) return '–';
  return Math.abs(v) >= 10_000 ? `${(v / 1000).toFixed(1)}k` : num(v);
}

/** Median of per-repeat values, with [min–max] when there is more than one. */
export function withSpread(values: readonly number[], f: (v: number) => string = compact): string {
  const s = spread(values);
  if (s.values.length === 0) return '–';
  return s.values.length > 1 && s.min !== s.max ? `${f(s.median)} [${f(s.min)}–${f(s.max)}]` : f(s.median);
}

/** A load mode as the tables name it. */
export function modeName(mode: 'keepalive' | 'newconn'): string {
  return mode === 'keepalive' ? 'keep-alive' : 'new connection';
}

export function times(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(2)}×` : '–';
}

export function pct(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(0)}%` : '–';
}

export function ms(v: number): string {
  return Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : '–';
}

/** "p50 / p95" of samples, ms. */
export function p50p95(samples: readonly number[]): string {
  if (samples.length === 0) return '–';
  const s = summarize(samples);
  return `${ms(s.p50)} / ${ms(s.p95)}`;
}

export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}
