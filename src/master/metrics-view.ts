// What the metrics see of the master: its generations as plain views
// (metrics/ never imports master/), the readiness flag, and the mapping of a
// worker's end to a bounded exit reason. The supervisor calls in here from a
// handful of hooks; everything else about metrics lives in src/metrics/.
import type { SocketAddress } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { MasterMetrics, MetricsEndpoint, type GenerationView, type MasterView, type WorkerExitReason } from '../metrics/index.js';
import { addressText } from '../net/index.js';
import type { Generation } from './generation.js';
import type { WorkerExit, WorkerHandle } from './worker-handle.js';

export interface MetricsSource {
  /** Every generation with processes: active, being built, draining. */
  generations(): readonly Generation[];
  active(): Generation | undefined;
  stopping(): boolean;
}

export function masterView(source: MetricsSource): MasterView {
  return {
    generations: () => source.generations().map(describe),
    activeGeneration: () => source.active()?.id ?? null,
    ready: () => source.active()?.state === 'active' && !source.stopping(),
    certificates: () => {
      const g = source.active();
      if (!g) return new Map();
      // The TLS material is keyed by the configured address; labels show the resolved port.
      const resolved = new Map(g.listeners().map((l) => [l.spec.address.text, l.address.text]));
      return new Map([...g.tls].map(([address, material]) => [resolved.get(address) ?? address, material.notAfter]));
    },
  };
}

function describe(g: Generation): GenerationView {
  // A generation being built shares inherited sockets with the active one: count them there only.
  const own = g.state === 'starting' ? g.listeners().filter((l) => !g.inherited.has(l)) : g.listeners();
  const live = g.liveWorkers();
  return {
    id: g.id,
    state: g.state,
    workers: live.map((w) => ({ slot: w.index, pid: w.pid, state: w.state })),
    listeners: own.filter((l) => !l.closed).map((l) => ({ address: l.address.text, socket: l })),
    emptySlots: g.slots.length - live.length,
  };
}

/** Workers the master killed because they missed their heartbeat. */
const heartbeatKills = new WeakSet<WorkerHandle>();

/** Call just before killing a worker for a missed heartbeat, so that its exit is counted as such. */
export function markHeartbeatKill(worker: WorkerHandle): void {
  heartbeatKills.add(worker);
}

/**
 * The bounded reason for a worker's end. `draining`: the master had asked
 * it to drain (its generation is draining, or the master is stopping).
 * Signals are counted as `killed` when the master may have sent them
 * (SIGKILL, SIGTERM) and as `crashed` otherwise; `oom` needs the cgroup's
 * oom_kill count and is not told apart yet.
 */
export function exitReasonOf(worker: WorkerHandle, exit: WorkerExit, draining: boolean): WorkerExitReason {
  if (heartbeatKills.has(worker)) return 'heartbeat';
  if (worker.failure) return worker.failure.phase === 'serve' ? 'crashed' : 'failed_start';
  if (exit.signal) return exit.signal === 'SIGKILL' || exit.signal === 'SIGTERM' ? 'killed' : 'crashed';
  if (exit.code === 0) return draining || worker.drainResult ? 'drained' : 'exited';
  return worker.servedAt === undefined ? 'failed_start' : 'crashed';
}

export interface OpenMetrics {
  readonly metrics: MasterMetrics;
  readonly endpoint: MetricsEndpoint;
}

/** The registry and its HTTP endpoint on `listen`; throws MetricsEndpointError when it cannot listen. */
export async function openMetrics(listen: SocketAddress, view: MasterView, log: Logger): Promise<OpenMetrics> {
  const metrics = new MasterMetrics(view);
  const endpoint = new MetricsEndpoint(listen, metrics, view);
  const port = await endpoint.listen();
  metrics.start();
  const address = addressText(listen.host, port, listen.family);
  log.info({ metrics: address }, `metrics on http://${address}/metrics (also /healthz, /readyz)`);
  return { metrics, endpoint };
}

export async function closeMetrics(open: OpenMetrics | undefined): Promise<void> {
  if (!open) return;
  open.metrics.stop();
  await open.endpoint.close();
}
