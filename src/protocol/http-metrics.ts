// Request counters a worker sends to the master, about once a second: plain
// numbers, so that a worker needs no metrics library (prom-client costs
// start-up time on every spawn, FACTS.md "Toolchain") and the master can sum
// what every worker of every generation served into totals that never go
// backwards when a worker exits.

/** Upper bounds (seconds) of the request-duration histogram buckets; +Inf is implied after the last. */
export const HTTP_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/** Status classes, in the order of `HttpMetricsMessage.requests`. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

/** How often a worker sends its counters (when they changed). */
export const HTTP_METRICS_INTERVAL_MS = 1_000;

/**
 * What a worker served since its previous message (deltas), and how many
 * requests it has in flight now (a level, not a delta).
 */
export interface HttpMetricsMessage {
  readonly type: 'metrics';
  /** Completed responses per status class, in STATUS_CLASSES order (a status of 600 or more counts as 5xx). */
  readonly requests: readonly number[];
  /** Completed responses per duration bucket, not cumulative: one per bound, then one for +Inf. */
  readonly buckets: readonly number[];
  /** Sum of their durations, seconds. */
  readonly seconds: number;
  readonly inFlight: number;
}

function counts(o: Record<string, unknown>, key: string, length: number): number[] | string {
  const v = o[key];
  if (!Array.isArray(v) || v.length !== length) return `${key}: expected a list of ${length} counts`;
  for (const n of v) if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return `${key}: expected integers >= 0`;
  return v as number[];
}

/**
 * Validates a `metrics` message (an object whose type is 'metrics').
 * Returns the message, or what is wrong with it.
 */
export function parseHttpMetrics(o: Record<string, unknown>): HttpMetricsMessage | string {
  const requests = counts(o, 'requests', STATUS_CLASSES.length);
  if (typeof requests === 'string') return requests;
  const buckets = counts(o, 'buckets', HTTP_DURATION_BUCKETS.length + 1);
  if (typeof buckets === 'string') return buckets;
  const seconds = o['seconds'];
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return 'seconds: expected a number >= 0';
  const inFlight = o['inFlight'];
  if (typeof inFlight !== 'number' || !Number.isSafeInteger(inFlight) || inFlight < 0) return 'inFlight: expected an integer >= 0';
  const completed = requests.reduce((a, b) => a + b, 0);
  if (buckets.reduce((a, b) => a + b, 0) !== completed) return 'buckets: their sum differs from the sum of requests';
  return { type: 'metrics', requests, buckets, seconds, inFlight };
}
