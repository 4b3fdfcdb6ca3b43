// What the metrics see of the master: its generations as plain views
// (metrics/ never imports master/) and the readiness flag. The supervisor calls in here from a
// handful of hooks; everything else about metrics lives in src/metrics/.
import type { SocketAddress } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { MasterMetrics, MetricsEndpoint, type GenerationView, type MasterView } from '../metrics/index.js';
import { addressText } from '../net/index.js';
import type { Generation } from './generation.js';

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
    workers: live.flatMap((w) => (w.pid === undefined ? [] : [{ slot: w.index, pid: w.pid, state: w.state }])),
    listeners: own.filter((l) => !l.closed).map((l) => ({ address: l.address.text, socket: l })),
    emptySlots: g.slots.length - live.length,
  };
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
