// metrics/: the master's Prometheus registry and endpoint, per-process usage
// from /proc, and the kernel counters (kernel.ts, imported directly).

export { MasterMetrics, RELOAD_DURATION_BUCKETS, TCPEXT_EXPORTED } from './registry.js';
export { MetricsEndpoint, MetricsEndpointError } from './endpoint.js';
export { readProcessUsage, type ProcessUsage } from './process-usage.js';
export {
  DROP_REASONS,
  WORKER_EXIT_REASONS,
  WORKER_STATES,
  type DropReason,
  type GenerationView,
  type ListenerView,
  type MasterView,
  type QueueSource,
  type WorkerExitReason,
  type WorkerView,
} from './view.js';
